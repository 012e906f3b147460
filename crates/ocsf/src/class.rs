//! The four OCSF 1.1.0 classes aztrail writes, their ids, names and activities. Security Lake
//! takes one class per custom source, so the class also names the source and the file.

/// An OCSF event class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Account Change (3001): Entra user lifecycle, password and MFA changes.
    AccountChange,
    /// Authentication (3002): Entra sign-ins of every kind.
    Authentication,
    /// Entity Management (3004): Entra changes to apps, service principals, groups, devices
    /// and policies.
    EntityManagement,
    /// API Activity (6003): the Activity Log, and Entra audit records of no other class.
    ApiActivity,
}

impl Class {
    /// Every class, in `class_uid` order.
    pub const ALL: [Class; 4] = [
        Class::AccountChange,
        Class::Authentication,
        Class::EntityManagement,
        Class::ApiActivity,
    ];

    /// `class_uid`.
    pub fn uid(self) -> u32 {
        match self {
            Class::AccountChange => 3001,
            Class::Authentication => 3002,
            Class::EntityManagement => 3004,
            Class::ApiActivity => 6003,
        }
    }

    /// `class_name`.
    pub fn name(self) -> &'static str {
        match self {
            Class::AccountChange => "Account Change",
            Class::Authentication => "Authentication",
            Class::EntityManagement => "Entity Management",
            Class::ApiActivity => "API Activity",
        }
    }

    /// `category_uid`.
    pub fn category_uid(self) -> u32 {
        match self {
            Class::ApiActivity => 6,
            _ => 3,
        }
    }

    /// `category_name`.
    pub fn category_name(self) -> &'static str {
        match self {
            Class::ApiActivity => "Application Activity",
            _ => "Identity & Access Management",
        }
    }

    /// The class's snake-case name (`api_activity`), as OCSF and file names spell it.
    pub fn slug(self) -> &'static str {
        match self {
            Class::AccountChange => "account_change",
            Class::Authentication => "authentication",
            Class::EntityManagement => "entity_management",
            Class::ApiActivity => "api_activity",
        }
    }

    /// The class named by `slug` or by its uid.
    pub fn parse(s: &str) -> Option<Class> {
        Class::ALL
            .into_iter()
            .find(|c| c.slug().eq_ignore_ascii_case(s) || c.uid().to_string() == s)
    }

    /// The name of `activity_id` in this class (OCSF's caption).
    pub fn activity_name(self, activity_id: u32) -> &'static str {
        match (self, activity_id) {
            (_, 0) => "Unknown",
            (_, 99) => "Other",
            (Class::ApiActivity | Class::EntityManagement, 1) => "Create",
            (Class::ApiActivity | Class::EntityManagement, 2) => "Read",
            (Class::ApiActivity | Class::EntityManagement, 3) => "Update",
            (Class::ApiActivity | Class::EntityManagement, 4) => "Delete",
            (Class::Authentication, 1) => "Logon",
            (Class::Authentication, 2) => "Logoff",
            (Class::AccountChange, 1) => "Create",
            (Class::AccountChange, 2) => "Enable",
            (Class::AccountChange, 3) => "Password Change",
            (Class::AccountChange, 4) => "Password Reset",
            (Class::AccountChange, 5) => "Disable",
            (Class::AccountChange, 6) => "Delete",
            (Class::AccountChange, 10) => "MFA Factor Enable",
            (Class::AccountChange, 11) => "MFA Factor Disable",
            _ => "Other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_uids_name_one_class_each() {
        for c in Class::ALL {
            assert_eq!(Class::parse(c.slug()), Some(c));
            assert_eq!(Class::parse(&c.uid().to_string()), Some(c));
        }
        assert_eq!(Class::parse("findings"), None);
    }
}
