//! CloudTrail Lake style SQL over the store.
//!
//! CloudTrail Lake queries name an event data store in `FROM` and reach into events with
//! `eventData.field` paths whose names are case-insensitive. This module rewrites such a query
//! into SQLite over the `events` table: the `FROM` target becomes `events`, each
//! `eventData.a.b` becomes a `json_extract` of the stored record (with the schema's spelling of
//! known names), the fields CloudTrail adds (`eventID`, `eventCategory`, `eventType`,
//! `ingestionTime`, `channelARN`) are found the same way, and plain field references in the select
//! list are named after their last part. String literals are never touched, and `LIKE` is case
//! sensitive, as in CloudTrail Lake.

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::Value;

use crate::LakeError;

/// Why a query was not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A string or quoted name is not closed.
    #[error("unterminated {what} at character {at}")]
    Unterminated {
        /// `string` or `quoted name`.
        what: &'static str,
        /// Where it opens.
        at: usize,
    },
    /// Not a `SELECT` (or `WITH`) query.
    #[error("only SELECT queries are supported (this one starts with {0})")]
    NotSelect(String),
    /// More than one statement.
    #[error("only one statement is supported per query")]
    MultipleStatements,
    /// A query that would change the store.
    #[error("only SELECT queries are supported: this one would change the store")]
    WouldChange,
    /// SQLite refused the query as translated.
    #[error("as SQLite: {translated}")]
    Sqlite {
        /// The query as SQLite was given it.
        translated: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

/// The rows a query returned.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueryResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// The names of `eventData` and of `userIdentity`, in the schema's spelling.
const EVENT_DATA_FIELDS: &[&str] = &[
    "version",
    "userIdentity",
    "userAgent",
    "eventSource",
    "eventName",
    "eventTime",
    "UID",
    "requestParameters",
    "responseElements",
    "errorCode",
    "errorMessage",
    "sourceIPAddress",
    "recipientAccountId",
    "additionalEventData",
];
const USER_IDENTITY_FIELDS: &[&str] = &["type", "principalId", "details"];
const ADDED_FIELDS: &[&str] = &[
    "eventID",
    "eventCategory",
    "eventType",
    "ingestionTime",
    "channelARN",
];

fn canonical<'a>(names: &[&'a str], name: &'a str) -> &'a str {
    names
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or(name)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A string literal, with its quotes.
    Str(String),
    /// A name, possibly dotted (`eventData.uid`), or a keyword.
    Word(String),
    /// Anything else: blanks, numbers, operators, punctuation, quoted identifiers.
    Other(String),
    /// The name after `FROM` or `JOIN`: the event data store, unless a `WITH` clause defines it.
    Table(String),
}

fn tokenize(sql: &str) -> Result<Vec<Tok>, LakeError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut after_from = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => {
                        return Err(LakeError::Query(QueryError::Unterminated {
                            what: if c == '\'' { "string" } else { "quoted name" },
                            at: i,
                        }))
                    }
                    Some(&q) if q == c && chars.get(j + 1) == Some(&c) => j += 2,
                    Some(&q) if q == c => break,
                    Some(_) => j += 1,
                }
            }
            let text: String = chars[i..=j].iter().collect();
            if after_from && c == '"' {
                toks.push(Tok::Table(text));
                after_from = false;
            } else if c == '\'' {
                toks.push(Tok::Str(text));
            } else {
                toks.push(Tok::Other(text));
            }
            i = j + 1;
        } else if c.is_whitespace() {
            let start = i;
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            toks.push(Tok::Other(chars[start..i].iter().collect()));
        } else if after_from && c != '(' {
            // The event data store: an id or ARN, taken whole (it may hold `-`, `:` and `/`).
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], ';' | ')' | ',' | '(')
            {
                i += 1;
            }
            toks.push(Tok::Table(chars[start..i].iter().collect()));
            after_from = false;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            after_from = word.eq_ignore_ascii_case("from") || word.eq_ignore_ascii_case("join");
            toks.push(Tok::Word(word));
        } else {
            // `FROM (` opens a subquery: no table name follows.
            after_from = false;
            toks.push(Tok::Other(c.to_string()));
            i += 1;
        }
    }
    Ok(toks)
}

/// The `json_extract` for a field reference, or `None` if `word` is not one.
fn field_ref(word: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = word.split('.').collect();
    let mut path: Vec<&str> = Vec::new();
    if parts.len() >= 2 && parts[0].eq_ignore_ascii_case("eventData") {
        path.push("eventData");
        let top = canonical(EVENT_DATA_FIELDS, parts[1]);
        path.push(top);
        for (k, p) in parts[2..].iter().enumerate() {
            if k == 0 && top == "userIdentity" {
                path.push(canonical(USER_IDENTITY_FIELDS, p));
            } else {
                path.push(p);
            }
        }
    } else if parts.len() == 1
        && ADDED_FIELDS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(parts[0]))
    {
        path.push(canonical(ADDED_FIELDS, parts[0]));
    } else {
        return None;
    }
    if path.iter().any(|p| p.is_empty()) {
        return None;
    }
    let json_path: String = path
        .iter()
        .map(|p| format!(".\"{}\"", p.replace('"', "\\\"").replace('\'', "''")))
        .collect();
    let last = parts.last().copied().unwrap_or(word).to_string();
    Some((format!("json_extract(record, '${json_path}')"), last))
}

/// Rewrites a CloudTrail Lake query into SQLite over the store.
pub fn translate(sql: &str) -> Result<String, LakeError> {
    let toks = tokenize(sql)?;
    let ctes = cte_names(&toks);
    let table = |name: &str| -> String {
        let bare = name.trim_matches('"');
        if ctes.iter().any(|c| c.eq_ignore_ascii_case(bare)) {
            name.to_string()
        } else {
            "events".to_string()
        }
    };
    let mut out = String::with_capacity(sql.len() * 2);
    let mut depth = 0i32;
    let mut in_select = false;
    // Select items at depth 0: collected so a lone field reference can be named.
    let mut item: Vec<Tok> = Vec::new();
    let flush_item = |item: &mut Vec<Tok>, out: &mut String| {
        let significant: Vec<&Tok> = item
            .iter()
            .filter(|t| !matches!(t, Tok::Other(s) if s.trim().is_empty()))
            .collect();
        let lone = match significant.as_slice() {
            [Tok::Word(w)] => field_ref(w),
            _ => None,
        };
        for t in item.iter() {
            match t {
                Tok::Word(w) => match (&lone, field_ref(w)) {
                    (Some((expr, name)), Some(_)) => {
                        out.push_str(expr);
                        out.push_str(&format!(" AS \"{}\"", name.replace('"', "\"\"")));
                    }
                    (_, Some((expr, _))) => out.push_str(&expr),
                    (_, None) => out.push_str(w),
                },
                Tok::Str(s) | Tok::Other(s) => out.push_str(s),
                Tok::Table(t) => out.push_str(&table(t)),
            }
        }
        item.clear();
    };
    for tok in toks {
        match &tok {
            Tok::Word(w) if w.eq_ignore_ascii_case("select") && depth == 0 => {
                flush_item(&mut item, &mut out);
                out.push_str(w);
                in_select = true;
                continue;
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("from") && depth == 0 && in_select => {
                flush_item(&mut item, &mut out);
                out.push_str(w);
                in_select = false;
                continue;
            }
            Tok::Other(s) if s == "(" => depth += 1,
            Tok::Other(s) if s == ")" => depth -= 1,
            Tok::Other(s) if s == "," && depth == 0 && in_select => {
                flush_item(&mut item, &mut out);
                out.push(',');
                continue;
            }
            _ => {}
        }
        if in_select {
            item.push(tok);
        } else {
            match tok {
                Tok::Word(w) => match field_ref(&w) {
                    Some((expr, _)) => out.push_str(&expr),
                    None => out.push_str(&w),
                },
                Tok::Str(s) | Tok::Other(s) => out.push_str(&s),
                Tok::Table(t) => out.push_str(&table(&t)),
            }
        }
    }
    flush_item(&mut item, &mut out);
    Ok(out)
}

/// The names a `WITH` clause defines (`name AS (`, or `name(columns) AS (`): tables of the query
/// itself, never the event data store.
fn cte_names(toks: &[Tok]) -> Vec<String> {
    let significant: Vec<&Tok> = toks
        .iter()
        .filter(|t| !matches!(t, Tok::Other(s) if s.trim().is_empty()))
        .collect();
    let mut names = Vec::new();
    for (i, t) in significant.iter().enumerate() {
        let Tok::Word(w) = t else { continue };
        if !w.eq_ignore_ascii_case("as")
            || !matches!(significant.get(i + 1), Some(Tok::Other(p)) if p == "(")
        {
            continue;
        }
        // Back over an optional column list to the name.
        let mut k = i;
        if matches!(significant.get(k.wrapping_sub(1)), Some(Tok::Other(p)) if p == ")") {
            while k > 0 && !matches!(significant[k - 1], Tok::Other(p) if p == "(") {
                k -= 1;
            }
            k = k.saturating_sub(1);
        }
        match significant.get(k.wrapping_sub(1)) {
            Some(Tok::Word(name)) => names.push(name.clone()),
            Some(Tok::Other(q)) if q.starts_with('"') => {
                names.push(q.trim_matches('"').to_string())
            }
            _ => {}
        }
    }
    names
}

/// The first keyword of `sql`, past blanks and comments.
fn first_keyword(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    rest.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Runs a CloudTrail Lake query on `conn`.
///
/// As in CloudTrail Lake, only one `SELECT` (optionally behind `WITH`) is run: anything that
/// could change the store, attach a file or write one is refused before it runs.
pub fn run(conn: &Connection, sql: &str) -> Result<QueryResult, LakeError> {
    let keyword = first_keyword(sql);
    if keyword != "SELECT" && keyword != "WITH" {
        return Err(LakeError::Query(QueryError::NotSelect(
            if keyword.is_empty() {
                "no keyword".to_string()
            } else {
                keyword
            },
        )));
    }
    let translated = translate(sql)?;
    let mut stmt = conn.prepare(&translated).map_err(|e| match e {
        rusqlite::Error::MultipleStatement => LakeError::Query(QueryError::MultipleStatements),
        source => LakeError::Query(QueryError::Sqlite {
            translated: translated.clone(),
            source,
        }),
    })?;
    if !stmt.readonly() {
        return Err(LakeError::Query(QueryError::WouldChange));
    }
    let columns: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let n = columns.len();
    let mut rows = Vec::new();
    let mut result = stmt.query([]).map_err(LakeError::Sql)?;
    while let Some(row) = result.next().map_err(LakeError::Sql)? {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            let v = match row.get_ref(i).map_err(LakeError::Sql)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::from(i),
                ValueRef::Real(f) => Value::from(f),
                ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::from(format!("<{} bytes>", b.len())),
            };
            values.push(v);
        }
        rows.push(values);
    }
    Ok(QueryResult { columns, rows })
}

/// `names` with repeats told apart by a suffix (`type`, `type_2`, ...), never clashing with a
/// name already there.
fn unique_names(names: &[String]) -> Vec<String> {
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let mut candidate = name.clone();
        let mut n = 1;
        while seen.contains(&candidate) || (n > 1 && names.contains(&candidate)) {
            n += 1;
            candidate = format!("{name}_{n}");
        }
        seen.insert(candidate.clone());
        out.push(candidate);
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl QueryResult {
    /// An aligned text table with a row count, for a terminal.
    pub fn to_table(&self) -> String {
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(cell).collect())
            .collect();
        for r in &cells {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |vals: &[String]| -> String {
            vals.iter()
                .zip(&widths)
                .map(|(v, w)| {
                    // Padded by hand: format!'s width is limited to 65,535.
                    let pad = w.saturating_sub(v.chars().count());
                    format!("{v}{}", " ".repeat(pad))
                })
                .collect::<Vec<_>>()
                .join(" | ")
                .trim_end()
                .to_string()
        };
        let mut s = line(&self.columns);
        s.push('\n');
        s.push_str(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("-+-"),
        );
        s.push('\n');
        for r in &cells {
            s.push_str(&line(r));
            s.push('\n');
        }
        s.push_str(&format!(
            "({} row{})\n",
            self.rows.len(),
            if self.rows.len() == 1 { "" } else { "s" }
        ));
        s
    }

    /// A JSON array of objects, one per row.
    ///
    /// Columns that share a name are all kept: the second `type` becomes `type_2`, and so on.
    pub fn to_json(&self) -> String {
        let keys = unique_names(&self.columns);
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| Value::Object(keys.iter().cloned().zip(r.iter().cloned()).collect()))
            .collect();
        serde_json::to_string_pretty(&rows).unwrap_or_default()
    }

    /// CSV with a header row (RFC 4180 quoting).
    pub fn to_csv(&self) -> String {
        let quote = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|c| quote(c)).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for r in &self.rows {
            let line: Vec<String> = r.iter().map(|v| quote(&cell(v))).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALIDATION: &str = "SELECT eventData.uid, eventData.eventName, eventData.sourceipaddress, eventData.recipientaccountid, eventData.eventtime FROM a1b2c3d4-5678-90ab-cdef-EXAMPLE11111 WHERE eventData.eventSource = 'MICROSOFT.STORAGE' AND eventData.eventName LIKE 'MICROSOFT.STORAGE/STORAGEACCOUNTS%' AND eventData.uid IS NOT NULL";

    #[test]
    fn translates_the_validation_query() {
        let t = translate(VALIDATION).unwrap();
        assert!(
            t.contains("json_extract(record, '$.\"eventData\".\"UID\"') AS \"uid\""),
            "{t}"
        );
        assert!(
            t.contains("$.\"eventData\".\"sourceIPAddress\"') AS \"sourceipaddress\""),
            "{t}"
        );
        assert!(t.contains("FROM events WHERE"), "{t}");
        assert!(t.contains("= 'MICROSOFT.STORAGE'"), "{t}");
        assert!(
            t.contains("LIKE 'MICROSOFT.STORAGE/STORAGEACCOUNTS%'"),
            "{t}"
        );
        assert!(t.contains("\"UID\"') IS NOT NULL"), "{t}");
    }

    #[test]
    fn literals_and_functions_are_left_alone() {
        let t = translate(
            "select count(*), eventdata.userIdentity.principalid as who from \"my store\" where eventData.eventName = 'eventData.uid' group by 2",
        )
        .unwrap();
        assert!(t.contains("count(*),"), "{t}");
        assert!(
            t.contains("'$.\"eventData\".\"userIdentity\".\"principalId\"') as who"),
            "{t}"
        );
        assert!(t.contains("from events where"), "{t}");
        assert!(t.contains("= 'eventData.uid'"), "{t}");
        assert!(translate("select 'unterminated from x").is_err());
    }

    #[test]
    fn results_format_as_table_json_and_csv() {
        let r = QueryResult {
            columns: vec!["uid".into(), "n".into()],
            rows: vec![
                vec![Value::from("a,b"), Value::from(3)],
                vec![Value::Null, Value::from(1)],
            ],
        };
        assert_eq!(r.to_csv(), "uid,n\r\n\"a,b\",3\r\n,1\r\n");
        assert!(r.to_table().contains("(2 rows)"));
        let j: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(j[0]["uid"], "a,b");
    }

    fn store_with(events: &[(&str, &str)]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE events (uid TEXT, record TEXT);")
            .unwrap();
        for (uid, record) in events {
            conn.execute("INSERT INTO events VALUES (?1, ?2)", [uid, record])
                .unwrap();
        }
        conn
    }

    #[test]
    fn only_one_select_runs() {
        let conn = store_with(&[("a", r#"{"eventData":{"UID":"a"}}"#)]);
        for sql in [
            "DELETE FROM anystore",
            "DROP TABLE events",
            "CREATE TRIGGER t AFTER INSERT ON events BEGIN DELETE FROM events; END",
            "ATTACH '/tmp/aztrail-attached.db' AS x",
            "VACUUM INTO '/tmp/aztrail-vacuumed.db'",
            "SELECT 1; DELETE FROM events",
            "WITH t AS (SELECT 1) DELETE FROM events",
            "  -- a comment\n  PRAGMA writable_schema = 1",
        ] {
            let err = run(&conn, sql).expect_err(sql);
            assert!(
                matches!(
                    err,
                    LakeError::Query(
                        QueryError::NotSelect(_)
                            | QueryError::MultipleStatements
                            | QueryError::WouldChange
                    )
                ),
                "{sql}: {err:?}"
            );
        }
        assert!(!std::path::Path::new("/tmp/aztrail-vacuumed.db").exists());
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "nothing was deleted");
        assert!(run(&conn, "/* hello */ select count(*) from store").is_ok());
    }

    #[test]
    fn ctes_and_subqueries_keep_their_own_names() {
        let conn = store_with(&[
            ("a", r#"{"eventData":{"UID":"a","eventName":"X"}}"#),
            ("b", r#"{"eventData":{"UID":"b","eventName":"Y"}}"#),
            ("c", r#"{"eventData":{"UID":"c","eventName":"Y"}}"#),
        ]);
        let r = run(
            &conn,
            "WITH t AS (SELECT eventData.uid FROM my-store WHERE eventData.eventName = 'Y') SELECT COUNT(*) FROM t",
        )
        .unwrap();
        assert_eq!(r.rows, vec![vec![Value::from(2)]]);
        let r = run(
            &conn,
            "SELECT COUNT(*) AS n FROM (SELECT eventData.uid FROM store WHERE eventData.eventName = 'X')",
        )
        .unwrap();
        assert_eq!(r.rows, vec![vec![Value::from(1)]]);
        let r = run(
            &conn,
            "WITH \"y\"(u) AS (SELECT eventData.uid FROM s WHERE eventData.eventName = 'Y') SELECT a.u FROM \"y\" a JOIN \"y\" b ON a.u = b.u ORDER BY 1",
        )
        .unwrap();
        assert_eq!(r.rows.len(), 2);
    }

    #[test]
    fn columns_that_share_a_name_are_all_kept_and_wide_cells_print() {
        let r = QueryResult {
            columns: vec!["type".into(), "type".into(), "type_2".into()],
            rows: vec![vec![Value::from("a"), Value::from("b"), Value::from("c")]],
        };
        let j: Value = serde_json::from_str(&r.to_json()).unwrap();
        let row = j[0].as_object().unwrap();
        assert_eq!(row.len(), 3);
        assert_eq!(row["type"], "a");
        assert_eq!(row["type_3"], "b");
        assert_eq!(row["type_2"], "c");
        let wide = QueryResult {
            columns: vec!["x".repeat(70_000)],
            rows: vec![vec![Value::from("y".repeat(100_000))]],
        };
        assert!(wide.to_table().contains("(1 row)"));
    }
}
