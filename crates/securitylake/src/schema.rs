//! The fixed Arrow schema of each class: every attribute the OCSF mapping can write is a column
//! in every file of the class (null where an event has none), so that Glue sees one schema per
//! source whatever a batch held. No struct is without fields, `time` is in milliseconds (UTC),
//! and `unmapped` is `map<string,string>` as in Security Lake's own tables.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use aztrail_ocsf::Class;

fn s(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn i32f(name: &str) -> Field {
    Field::new(name, DataType::Int32, true)
}

fn st(name: &str, fields: Vec<Field>) -> Field {
    Field::new(name, DataType::Struct(Fields::from(fields)), true)
}

fn list(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("element", item, true))),
        true,
    )
}

fn user(name: &str) -> Field {
    st(
        name,
        vec![
            s("uid"),
            s("uid_alt"),
            s("name"),
            s("full_name"),
            s("email_addr"),
            s("type"),
            i32f("type_id"),
        ],
    )
}

fn api() -> Field {
    st(
        "api",
        vec![
            s("operation"),
            st("service", vec![s("name")]),
            st("request", vec![s("uid")]),
            st("response", vec![i32f("code"), s("message")]),
        ],
    )
}

fn actor() -> Field {
    st("actor", vec![s("invoked_by"), user("user")])
}

fn src_endpoint() -> Field {
    st(
        "src_endpoint",
        vec![
            s("ip"),
            s("svc_name"),
            st(
                "location",
                vec![
                    s("city"),
                    s("region"),
                    s("country"),
                    list("coordinates", DataType::Float64),
                ],
            ),
        ],
    )
}

fn http_request() -> Field {
    st(
        "http_request",
        vec![s("http_method"), s("uid"), s("user_agent")],
    )
}

/// The columns every class has.
fn common() -> Vec<Field> {
    vec![
        Field::new("class_uid", DataType::Int32, false),
        s("class_name"),
        Field::new("category_uid", DataType::Int32, false),
        s("category_name"),
        Field::new("activity_id", DataType::Int32, false),
        s("activity_name"),
        Field::new("type_uid", DataType::Int64, false),
        s("type_name"),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
            false,
        ),
        Field::new("severity_id", DataType::Int32, false),
        s("severity"),
        i32f("status_id"),
        s("status"),
        s("status_code"),
        s("status_detail"),
        st(
            "metadata",
            vec![
                s("uid"),
                s("version"),
                st("product", vec![s("name"), s("vendor_name")]),
                list("profiles", DataType::Utf8),
                s("original_time"),
                s("log_name"),
                s("correlation_uid"),
                s("tenant_uid"),
            ],
        ),
        st(
            "cloud",
            vec![
                s("provider"),
                s("region"),
                st("account", vec![s("uid"), s("type")]),
            ],
        ),
        http_request(),
        Field::new_map(
            "unmapped",
            "key_value",
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
            false,
            true,
        ),
        s("raw_data"),
    ]
}

/// The Arrow schema of `class`.
pub fn schema(class: Class) -> SchemaRef {
    let mut fields = common();
    match class {
        Class::ApiActivity => {
            fields.push(api());
            fields.push(actor());
            fields.push(src_endpoint());
            fields.push(list(
                "resources",
                DataType::Struct(Fields::from(vec![s("uid"), s("name"), s("type")])),
            ));
        }
        Class::Authentication => {
            fields.push(user("user"));
            fields.push(Field::new("is_mfa", DataType::Boolean, true));
            fields.push(src_endpoint());
            fields.push(st(
                "device",
                vec![
                    s("uid"),
                    s("name"),
                    s("ip"),
                    s("type"),
                    i32f("type_id"),
                    st("os", vec![s("name"), s("type"), i32f("type_id")]),
                    Field::new("is_compliant", DataType::Boolean, true),
                    Field::new("is_managed", DataType::Boolean, true),
                ],
            ));
            fields.push(st("service", vec![s("uid"), s("name")]));
        }
        Class::AccountChange => {
            fields.push(user("user"));
            fields.push(api());
            fields.push(actor());
            fields.push(src_endpoint());
        }
        Class::EntityManagement => {
            fields.push(st("entity", vec![s("uid"), s("name"), s("type")]));
            fields.push(api());
            fields.push(actor());
        }
    }
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_empty_struct(f: &Field) -> bool {
        match f.data_type() {
            DataType::Struct(children) => {
                !children.is_empty() && children.iter().all(|c| no_empty_struct(c))
            }
            DataType::List(item) => no_empty_struct(item),
            DataType::Map(entries, _) => no_empty_struct(entries),
            _ => true,
        }
    }

    #[test]
    fn every_class_has_the_required_attributes_and_no_empty_struct() {
        for class in Class::ALL {
            let schema = schema(class);
            for name in [
                "class_uid",
                "time",
                "metadata",
                "cloud",
                "type_uid",
                "severity_id",
            ] {
                assert!(schema.field_with_name(name).is_ok(), "{class:?} {name}");
            }
            assert!(schema.fields().iter().all(|f| no_empty_struct(f)));
        }
    }
}
