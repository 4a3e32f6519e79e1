//! The filter language of `/api/v1/clients?query=...` and `/api/v2/clients?query=...`.
//!
//! ```text
//! query  := "" | clause ( "and" clause )*
//! clause := field op value
//! field  := last_event.timestamp | last_event.event | host_info.hostname | host_info.os
//!         | device_id | client_version | users.username | user_groups
//!         | users.user_groups | users.user_groups.username        (the last three: one field)
//! op     := eq | ne | gt | lt            (gt and lt: last_event.timestamp only)
//! value  := word | 'quoted' | "quoted"   (inside quotes, \' \" and \\ escape)
//! ```
//!
//! Words are separated by whitespace; `and` and the operators are case-insensitive.
//! `last_event.timestamp` takes a whole number of unix seconds. Text comparisons ignore
//! ASCII case (host names and user names are case-insensitive in the admin console too).
//! An empty query matches every client. Errors carry the 1-based column (in characters)
//! of what is wrong.

use std::fmt;

/// The longest query accepted, in characters.
pub const QUERY_CHARS_MAX: usize = 4096;

/// A parsed query: every clause must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// The clauses, in the order written.
    pub clauses: Vec<Clause>,
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// What is compared.
    pub field: Field,
    /// How.
    pub op: Op,
    /// With what.
    pub value: Value,
}

/// A field of a client record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `last_event.timestamp`: unix seconds of the device's last event.
    LastEventTimestamp,
    /// `last_event.event`: the last event's type.
    LastEventEvent,
    /// `host_info.hostname`.
    Hostname,
    /// `host_info.os`.
    Os,
    /// `device_id`.
    DeviceId,
    /// `client_version`.
    ClientVersion,
    /// `users.username`: true when any of the device's users has this name.
    Username,
    /// `user_groups` (also `users.user_groups`, `users.user_groups.username`): true when
    /// any of the device's users is in this group now.
    UserGroup,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `gt` (timestamps only)
    Gt,
    /// `lt` (timestamps only)
    Lt,
}

/// A literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Unix seconds (for `last_event.timestamp`).
    Seconds(i64),
    /// Text (every other field).
    Text(String),
}

/// What is wrong with a query, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// 1-based column, in characters, of the offending token (one past the end when
    /// something is missing).
    pub column: usize,
    /// What is wrong and what would be right.
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for QueryError {}

/// The values of one client record a query can look at.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// `device_id`
    pub device_id: &'a str,
    /// `host_info.hostname`
    pub hostname: &'a str,
    /// `host_info.os`
    pub os: &'a str,
    /// `client_version`
    pub client_version: &'a str,
    /// `last_event.timestamp`
    pub last_event_timestamp: i64,
    /// `last_event.event`
    pub last_event: &'a str,
    /// The device's users.
    pub usernames: &'a [&'a str],
    /// The groups those users are in now.
    pub groups: &'a [&'a str],
}

const FIELDS: &[(&str, Field)] = &[
    ("last_event.timestamp", Field::LastEventTimestamp),
    ("last_event.event", Field::LastEventEvent),
    ("host_info.hostname", Field::Hostname),
    ("host_info.os", Field::Os),
    ("device_id", Field::DeviceId),
    ("client_version", Field::ClientVersion),
    ("users.username", Field::Username),
    ("user_groups", Field::UserGroup),
    ("users.user_groups", Field::UserGroup),
    ("users.user_groups.username", Field::UserGroup),
];

/// Parses a query; an empty (or all-blank) query matches everything.
pub fn parse(input: &str) -> Result<Query, QueryError> {
    if let Some((index, _)) = input.char_indices().nth(QUERY_CHARS_MAX) {
        return Err(QueryError {
            column: input[..index].chars().count() + 1,
            message: format!("the query is longer than {QUERY_CHARS_MAX} characters"),
        });
    }
    let tokens = tokenize(input)?;
    let end = input.chars().count() + 1;
    let mut tokens = tokens.into_iter().peekable();
    let mut clauses = Vec::new();
    if tokens.peek().is_none() {
        return Ok(Query { clauses });
    }
    loop {
        clauses.push(parse_clause(&mut tokens, end)?);
        match tokens.next() {
            None => return Ok(Query { clauses }),
            Some(t) if t.is_word("and") => {
                if tokens.peek().is_none() {
                    return Err(QueryError {
                        column: end,
                        message: "expected a clause after `and`".into(),
                    });
                }
            }
            Some(t) if t.is_word("or") => {
                return Err(t.error("`or` is not supported: combine clauses with `and`"));
            }
            Some(t) => {
                return Err(t.error(&format!(
                    "expected `and` or the end of the query, found {}",
                    t.describe()
                )));
            }
        }
    }
}

impl Query {
    /// Whether every clause holds for this record.
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        self.clauses.iter().all(|c| c.matches(s))
    }
}

impl Clause {
    fn matches(&self, s: &Subject<'_>) -> bool {
        let text = |have: &str| match &self.value {
            Value::Text(want) => have.eq_ignore_ascii_case(want),
            Value::Seconds(_) => false,
        };
        let any = |list: &[&str]| list.iter().any(|have| text(have));
        let equal = match self.field {
            Field::LastEventTimestamp => {
                let Value::Seconds(want) = self.value else {
                    return false;
                };
                return match self.op {
                    Op::Eq => s.last_event_timestamp == want,
                    Op::Ne => s.last_event_timestamp != want,
                    Op::Gt => s.last_event_timestamp > want,
                    Op::Lt => s.last_event_timestamp < want,
                };
            }
            Field::LastEventEvent => text(s.last_event),
            Field::Hostname => text(s.hostname),
            Field::Os => text(s.os),
            Field::DeviceId => text(s.device_id),
            Field::ClientVersion => text(s.client_version),
            Field::Username => any(s.usernames),
            Field::UserGroup => any(s.groups),
        };
        match self.op {
            Op::Eq => equal,
            Op::Ne => !equal,
            Op::Gt | Op::Lt => false,
        }
    }
}

#[derive(Debug)]
struct Token {
    /// 1-based column of the first character.
    column: usize,
    text: String,
    quoted: bool,
}

impl Token {
    fn is_word(&self, word: &str) -> bool {
        !self.quoted && self.text.eq_ignore_ascii_case(word)
    }

    fn error(&self, message: &str) -> QueryError {
        QueryError {
            column: self.column,
            message: message.to_string(),
        }
    }

    fn describe(&self) -> String {
        let shown: String = self.text.chars().take(40).collect();
        let more = if self.text.chars().count() > 40 {
            "..."
        } else {
            ""
        };
        if self.quoted {
            format!("the quoted text '{shown}{more}'")
        } else {
            format!("`{shown}{more}`")
        }
    }
}

fn tokenize(input: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().enumerate().peekable();
    while let Some(&(index, c)) = chars.peek() {
        let column = index + 1;
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' || c == '"' {
            chars.next();
            let mut text = String::new();
            let mut closed = false;
            while let Some((_, c2)) = chars.next() {
                if c2 == c {
                    closed = true;
                    break;
                }
                if c2 == '\\' {
                    match chars.next() {
                        Some((_, e)) if e == c || e == '\\' => text.push(e),
                        Some((i, e)) => {
                            return Err(QueryError {
                                column: i,
                                message: format!(
                                    "unknown escape `\\{e}`: inside quotes only \\{c} and \\\\ escape"
                                ),
                            });
                        }
                        None => break,
                    }
                } else {
                    text.push(c2);
                }
            }
            if !closed {
                return Err(QueryError {
                    column,
                    message: format!("this quote ({c}) is never closed"),
                });
            }
            tokens.push(Token {
                column,
                text,
                quoted: true,
            });
        } else {
            let mut text = String::new();
            while let Some(&(_, c2)) = chars.peek() {
                if c2.is_whitespace() || c2 == '\'' || c2 == '"' {
                    break;
                }
                text.push(c2);
                chars.next();
            }
            tokens.push(Token {
                column,
                text,
                quoted: false,
            });
        }
    }
    Ok(tokens)
}

fn parse_clause(
    tokens: &mut std::iter::Peekable<std::vec::IntoIter<Token>>,
    end: usize,
) -> Result<Clause, QueryError> {
    let missing = |what: &str| QueryError {
        column: end,
        message: format!("expected {what}, found the end of the query"),
    };
    let known = || {
        FIELDS
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let field_token = tokens.next().ok_or_else(|| missing("a field"))?;
    let field = FIELDS
        .iter()
        .find(|(name, _)| !field_token.quoted && field_token.text == *name)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            field_token.error(&format!(
                "unknown field {}; known fields: {}",
                field_token.describe(),
                known()
            ))
        })?;
    let op_token = tokens
        .next()
        .ok_or_else(|| missing("an operator (eq, ne, gt, lt)"))?;
    let op = if op_token.is_word("eq") {
        Op::Eq
    } else if op_token.is_word("ne") {
        Op::Ne
    } else if op_token.is_word("gt") {
        Op::Gt
    } else if op_token.is_word("lt") {
        Op::Lt
    } else {
        return Err(op_token.error(&format!(
            "expected an operator (eq, ne, gt, lt), found {}",
            op_token.describe()
        )));
    };
    if matches!(op, Op::Gt | Op::Lt) && field != Field::LastEventTimestamp {
        return Err(op_token.error(&format!(
            "`{}` compares numbers: use it with last_event.timestamp, or use eq / ne here",
            op_token.text.to_ascii_lowercase()
        )));
    }
    let value_token = tokens.next().ok_or_else(|| missing("a value"))?;
    if !value_token.quoted && (value_token.is_word("and") || value_token.is_word("or")) {
        return Err(value_token.error(&format!(
            "expected a value, found {}",
            value_token.describe()
        )));
    }
    let value = if field == Field::LastEventTimestamp {
        let seconds = value_token.text.parse::<i64>().map_err(|_| {
            value_token.error(&format!(
                "expected a whole number of unix seconds, found {}",
                value_token.describe()
            ))
        })?;
        Value::Seconds(seconds)
    } else {
        Value::Text(value_token.text)
    };
    Ok(Clause { field, op, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn subject() -> Subject<'static> {
        Subject {
            device_id: "dev-1",
            hostname: "JOHN-LAPTOP",
            os: "Windows",
            client_version: "96.1.0.900",
            last_event_timestamp: 1_724_829_100,
            last_event: "config_download",
            usernames: &["john@acme.example"],
            groups: &["Lost devices"],
        }
    }

    fn check(q: &str) -> bool {
        parse(q).unwrap().matches(&subject())
    }

    #[test]
    fn clauses_match() {
        assert!(check(""));
        assert!(check("   "));
        assert!(check("last_event.timestamp gt 1724829057"));
        assert!(!check("last_event.timestamp lt 1724829057"));
        assert!(check("last_event.timestamp eq 1724829100"));
        assert!(check("host_info.hostname eq john-laptop"));
        assert!(check("host_info.hostname eq 'JOHN-LAPTOP'"));
        assert!(!check("host_info.hostname ne john-laptop"));
        assert!(check("users.username eq john@acme.example"));
        assert!(check("user_groups eq 'Lost devices'"));
        assert!(check("users.user_groups.username eq \"Lost devices\""));
        assert!(check(
            "last_event.timestamp GT 1724829057 AND user_groups eq 'Lost devices' and device_id eq dev-1"
        ));
        assert!(!check(
            "last_event.timestamp gt 1724829057 and host_info.hostname eq other"
        ));
        assert!(check(
            "host_info.os eq windows and client_version eq 96.1.0.900"
        ));
        assert!(check("last_event.event eq config_download"));
        assert!(check(r"user_groups ne 'it\'s'"));
    }

    #[test]
    fn parse_result_shape() {
        let q = parse("last_event.timestamp gt 5 and users.username eq 'a b'").unwrap();
        assert_eq!(
            q.clauses,
            vec![
                Clause {
                    field: Field::LastEventTimestamp,
                    op: Op::Gt,
                    value: Value::Seconds(5),
                },
                Clause {
                    field: Field::Username,
                    op: Op::Eq,
                    value: Value::Text("a b".into()),
                },
            ]
        );
    }

    fn error(q: &str) -> QueryError {
        parse(q).unwrap_err()
    }

    #[test]
    fn errors_name_the_column() {
        let e = error("last_event.timestamp gt soon");
        assert_eq!(e.column, 25);
        assert!(e.message.contains("unix seconds"), "{e}");

        let e = error("host.name eq x");
        assert_eq!(e.column, 1);
        assert!(e.message.contains("unknown field `host.name`"), "{e}");
        assert!(e.message.contains("host_info.hostname"), "{e}");

        let e = error("host_info.hostname is x");
        assert_eq!(e.column, 20);
        assert!(e.message.contains("expected an operator"), "{e}");

        let e = error("host_info.hostname gt x");
        assert_eq!(e.column, 20);
        assert!(e.message.contains("compares numbers"), "{e}");

        let e = error("host_info.hostname eq");
        assert_eq!(e.column, 22);
        assert!(e.message.contains("expected a value"), "{e}");

        let e = error("host_info.hostname eq a and");
        assert_eq!(e.column, 28);
        assert!(e.message.contains("after `and`"), "{e}");

        let e = error("host_info.hostname eq a or device_id eq b");
        assert_eq!(e.column, 25);
        assert!(e.message.contains("`or` is not supported"), "{e}");

        let e = error("host_info.hostname eq a device_id eq b");
        assert_eq!(e.column, 25);
        assert!(e.message.contains("expected `and`"), "{e}");

        let e = error("host_info.hostname eq 'abc");
        assert_eq!(e.column, 23);
        assert!(e.message.contains("never closed"), "{e}");

        let e = error("user_groups eq 'a\\x'");
        assert_eq!(e.column, 18);
        assert!(e.message.contains("unknown escape"), "{e}");

        let e = error("ünïcode eq x and");
        assert_eq!(e.column, 1);
        let e = error("device_id eq ü and");
        assert_eq!(e.column, 19, "{e}");

        let e = error("last_event.timestamp gt 99999999999999999999");
        assert!(e.message.contains("unix seconds"), "{e}");

        let e = error(&"x".repeat(QUERY_CHARS_MAX + 1));
        assert_eq!(e.column, QUERY_CHARS_MAX + 1);
        assert!(e.to_string().starts_with("query column 4097: "), "{e}");
    }

    proptest! {
        #[test]
        fn arbitrary_queries_never_panic(q in any::<String>()) {
            match parse(&q) {
                Ok(query) => { let _ = query.matches(&subject()); }
                Err(e) => {
                    prop_assert!(e.column >= 1);
                    prop_assert!(e.column <= q.chars().count() + 1);
                }
            }
        }

        #[test]
        fn query_shaped_strings_never_panic(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("last_event.timestamp".to_string()),
                    Just("host_info.hostname".to_string()),
                    Just("user_groups".to_string()),
                    Just("eq".to_string()), Just("gt".to_string()), Just("and".to_string()),
                    Just("'".to_string()), Just("\"".to_string()), Just("\\".to_string()),
                    "[a-z0-9 .'\"\\\\-]{0,8}",
                    any::<i64>().prop_map(|n| n.to_string()),
                ],
                0..12,
            )
        ) {
            let q = parts.join(" ");
            match parse(&q) {
                Ok(query) => { let _ = query.matches(&subject()); }
                Err(e) => {
                    prop_assert!(e.column >= 1);
                    prop_assert!(e.column <= q.chars().count() + 1);
                }
            }
        }
    }
}
