//! Writing values PostgreSQL cannot hold as given.
//!
//! Two kinds of input the domain accepts would make PostgreSQL refuse a whole statement, and
//! with it a whole ingest batch of unrelated requests (a poison pill):
//!
//! - U+0000: `text` cannot hold a NUL character and `jsonb` refuses `\u0000` in strings and
//!   keys. Untrusted text (event properties, attributes, names taken from attributes,
//!   idempotency keys, sample bodies) is written with each NUL replaced by U+FFFD, the
//!   replacement character. The raw request body is `bytea` and keeps the original bytes.
//! - instants before 4714-11-24 BC, PostgreSQL's lower bound, which `Timestamp` allows (it
//!   goes down to year -9999 and mapped sources accept any Unix time in that range). They are
//!   written as the earliest instant PostgreSQL can hold.
//!
//! Everything else is written exactly. Values are checked first and copied only when they
//! need the change, so the common case costs a scan and no allocation.

use std::borrow::Cow;

use herald_domain::Timestamp;
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// 4714-11-24T00:00:00Z BC (Julian day 0), the earliest `timestamptz`, in Unix milliseconds.
const PG_MIN_MILLIS: i64 = -210_866_803_200_000;

/// An instant as PostgreSQL can store it (see the module comment).
pub(crate) fn ts(t: Timestamp) -> OffsetDateTime {
    if t.unix_millis() < PG_MIN_MILLIS {
        Timestamp::from_unix_millis(PG_MIN_MILLIS).to_offset_date_time()
    } else {
        t.to_offset_date_time()
    }
}

const REPLACEMENT: &str = "\u{FFFD}";

/// Text without NUL characters.
pub(crate) fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') { Cow::Owned(s.replace('\0', REPLACEMENT)) } else { Cow::Borrowed(s) }
}

/// An optional text without NUL characters.
pub(crate) fn opt_text(s: Option<&str>) -> Option<Cow<'_, str>> {
    s.map(text)
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map_has_nul(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn map_has_nul(map: &Map<String, Value>) -> bool {
    map.iter().any(|(k, v)| k.contains('\0') || has_nul(v))
}

fn cleaned(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(text(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(cleaned).collect()),
        Value::Object(map) => Value::Object(cleaned_map(map)),
        other => other.clone(),
    }
}

fn cleaned_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter().map(|(k, v)| (text(k).into_owned(), cleaned(v))).collect()
}

/// A JSON value `jsonb` accepts.
pub(crate) fn json(value: &Value) -> Cow<'_, Value> {
    if has_nul(value) { Cow::Owned(cleaned(value)) } else { Cow::Borrowed(value) }
}

/// A JSON object `jsonb` accepts.
pub(crate) fn json_map(map: &Map<String, Value>) -> Cow<'_, Map<String, Value>> {
    if map_has_nul(map) { Cow::Owned(cleaned_map(map)) } else { Cow::Borrowed(map) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_replaced_only_where_present() {
        assert!(matches!(text("plain"), Cow::Borrowed("plain")));
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
        let clean = json!({"a": [1, "x", {"b": null}]});
        assert!(matches!(json(&clean), Cow::Borrowed(_)));
        let dirty = json!({"k\u{0}": ["x\u{0}", {"n": "\u{0}"}], "ok": 1});
        assert_eq!(json(&dirty).into_owned(), json!({"k\u{FFFD}": ["x\u{FFFD}", {"n": "\u{FFFD}"}], "ok": 1}));
    }

    #[test]
    fn instants_before_postgres_range_are_clamped() {
        let early = Timestamp::MIN;
        assert_eq!(Timestamp::from_offset_date_time(ts(early)).unix_millis(), PG_MIN_MILLIS);
        let normal = Timestamp::from_unix_millis(1_767_225_600_123);
        assert_eq!(Timestamp::from_offset_date_time(ts(normal)), normal);
    }
}
