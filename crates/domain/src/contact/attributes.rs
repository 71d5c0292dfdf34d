//! A contact's attributes: how an event's attributes merge into the stored ones, and the
//! limits on how many there are and how large each is.

use serde_json::{Map, Value};

/// Most attributes one contact holds (top-level keys), as Customer.io allows per person: enough
/// for any profile a campaign reads, and a bound on what each ingest reads and writes back.
pub const MAX_ATTRIBUTES: usize = 300;
/// Longest attribute name, in bytes of UTF-8.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 150;
/// Largest attribute value, in bytes of compact JSON (a string's quotes count): a long note or
/// a cart of a few dozen items fits; a whole document does not belong on a contact.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 8 * 1024;

/// Merges `incoming` attributes into `existing`: new keys are added, existing keys
/// overwritten, an object merged into an object key by key (so nested objects keep the keys
/// the event did not mention), and `null` removes the key.
pub fn merge_attributes(existing: &mut Map<String, Value>, incoming: &Map<String, Value>) -> bool {
    let mut changed = false;
    for (key, value) in incoming {
        match (existing.get_mut(key), value) {
            (Some(_), Value::Null) => {
                existing.remove(key);
                changed = true;
            }
            (None, Value::Null) => {}
            (Some(Value::Object(current)), Value::Object(update)) => {
                changed |= merge_attributes(current, update);
            }
            (Some(current), _) if current == value => {}
            _ => {
                existing.insert(key.clone(), value.clone());
                changed = true;
            }
        }
    }
    changed
}

/// An attribute a contact cannot take, and why; shown as `attributes.<name>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attributes.{name}: {reason}")]
pub struct AttributeError {
    pub name: String,
    pub reason: AttributeLimit,
}

impl AttributeError {
    /// The request field at fault: `attributes.<name>`.
    pub fn field(&self) -> String {
        format!("attributes.{}", self.name)
    }
}

/// Which attribute limit would be passed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeLimit {
    #[error("would be one attribute too many: a contact holds at most {MAX_ATTRIBUTES}")]
    TooMany,
    #[error("the name is longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes")]
    NameTooLong,
    #[error("the value is {0} bytes as JSON; an attribute holds at most {MAX_ATTRIBUTE_VALUE_BYTES}")]
    ValueTooLarge(usize),
}

/// Checks that merging `incoming` (`merge_attributes`) and then `once`
/// (`set_attributes_once`) into `existing` keeps the contact within the attribute limits.
///
/// Only what the merge adds or grows is judged, so a contact stored over a limit (before the
/// limits existed) can still change and shed attributes. Attributes the merge removes make
/// room for new ones. The attribute named is the first, in the maps' order, that does not
/// fit.
pub fn check_attribute_merge(
    existing: &Map<String, Value>,
    incoming: &Map<String, Value>,
    once: &Map<String, Value>,
) -> Result<(), AttributeError> {
    let removed = incoming.iter().filter(|(k, v)| v.is_null() && existing.contains_key(*k)).count();
    let mut count = existing.len() - removed;
    let refuse = |name: &str, reason| Err(AttributeError { name: name.to_owned(), reason });
    let held_after_incoming = |name: &str| match incoming.get(name) {
        Some(value) => !value.is_null(),
        None => existing.contains_key(name),
    };
    let news = incoming.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, v, existing.get(k)));
    let once_news = once.iter().filter(|(k, v)| !v.is_null() && !held_after_incoming(k));
    for (name, value, current) in news.chain(once_news.map(|(k, v)| (k, v, None))) {
        if current.is_none() {
            if name.len() > MAX_ATTRIBUTE_NAME_BYTES {
                return refuse(name, AttributeLimit::NameTooLong);
            }
            count += 1;
            if count > MAX_ATTRIBUTES && count > existing.len() {
                return refuse(name, AttributeLimit::TooMany);
            }
        }
        let size = match (current, value) {
            // Merged key by key: what counts is the object the contact would hold.
            (Some(Value::Object(current)), Value::Object(update)) => {
                let mut merged = current.clone();
                merge_attributes(&mut merged, update);
                json_len(&Value::Object(merged))
            }
            _ => json_len(value),
        };
        if size > MAX_ATTRIBUTE_VALUE_BYTES {
            return refuse(name, AttributeLimit::ValueTooLarge(size));
        }
    }
    Ok(())
}

/// The length of a value written as compact JSON, without writing it anywhere.
fn json_len(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` to a sink that cannot fail cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Sets keys that are absent (PostHog's `$set_once`); returns whether anything changed.
pub fn set_attributes_once(existing: &mut Map<String, Value>, incoming: &Map<String, Value>) -> bool {
    let mut changed = false;
    for (key, value) in incoming {
        if !value.is_null() && !existing.contains_key(key) {
            existing.insert(key.clone(), value.clone());
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_merge_deeply_and_null_removes() {
        let mut existing = serde_json::json!({"plan": "free", "company": {"name": "Acme", "size": 10}, "gone": 1})
            .as_object()
            .cloned()
            .expect("object");
        let incoming = serde_json::json!({"plan": "pro", "company": {"size": 50}, "gone": null, "new": [1, 2]});
        assert!(merge_attributes(&mut existing, incoming.as_object().expect("object")));
        assert_eq!(
            Value::Object(existing.clone()),
            serde_json::json!({"plan": "pro", "company": {"name": "Acme", "size": 50}, "new": [1, 2]})
        );
        assert!(!merge_attributes(&mut existing, incoming.as_object().expect("object")), "idempotent");
        let once = serde_json::json!({"plan": "enterprise", "first_seen": "2026-01-01"});
        assert!(set_attributes_once(&mut existing, once.as_object().expect("object")));
        assert_eq!(existing["plan"], "pro");
        assert_eq!(existing["first_seen"], "2026-01-01");
    }

    #[test]
    fn attribute_limits_judge_what_a_merge_adds() {
        let map = |value: Value| value.as_object().cloned().expect("object");
        let numbered = |prefix: &str, n: usize| -> Map<String, Value> {
            (0..n).map(|i| (format!("{prefix}{i}"), Value::from(i))).collect()
        };
        let none = Map::new();
        let full = numbered("a", MAX_ATTRIBUTES);
        assert_eq!(check_attribute_merge(&none, &full, &none), Ok(()));
        let over = check_attribute_merge(&full, &map(json!({"a0": "changed", "new": 1})), &none).expect_err("over");
        assert_eq!((over.field(), &over.reason), ("attributes.new".to_owned(), &AttributeLimit::TooMany));
        assert!(over.to_string().contains("at most 300"), "{over}");
        assert_eq!(check_attribute_merge(&full, &map(json!({"a1": null, "new": 1})), &none), Ok(()));
        let once = check_attribute_merge(&full, &none, &map(json!({"a2": 1, "late": 1}))).expect_err("once");
        assert_eq!(once.name, "late");
        assert_eq!(check_attribute_merge(&full, &map(json!({"a3": null})), &map(json!({"a3": 2}))), Ok(()));
        // A contact stored over the limit may change and shrink, not grow.
        let legacy = numbered("l", MAX_ATTRIBUTES + 5);
        assert_eq!(check_attribute_merge(&legacy, &map(json!({"l0": null, "l1": "x", "n": 1})), &none), Ok(()));
        assert!(check_attribute_merge(&legacy, &map(json!({"n": 1})), &none).is_err());

        let long = "k".repeat(MAX_ATTRIBUTE_NAME_BYTES + 1);
        let err = check_attribute_merge(&none, &map(json!({long.clone(): 1})), &none).expect_err("long name");
        assert_eq!((err.name, err.reason), (long, AttributeLimit::NameTooLong));
        let text = "x".repeat(MAX_ATTRIBUTE_VALUE_BYTES - 2);
        assert_eq!(check_attribute_merge(&none, &map(json!({"t": text})), &none), Ok(()), "quotes count");
        let err = check_attribute_merge(&none, &map(json!({"t": format!("{text}y")})), &none).expect_err("big");
        assert_eq!(err.reason, AttributeLimit::ValueTooLarge(MAX_ATTRIBUTE_VALUE_BYTES + 1));
        let half = "h".repeat(MAX_ATTRIBUTE_VALUE_BYTES / 2);
        let nested = map(json!({"p": {"a": half}}));
        assert_eq!(check_attribute_merge(&none, &nested, &none), Ok(()));
        let err = check_attribute_merge(&nested, &map(json!({"p": {"b": half}})), &none).expect_err("merged");
        assert_eq!(err.name, "p");
        assert_eq!(check_attribute_merge(&nested, &map(json!({"p": {"a": null, "b": half}})), &none), Ok(()));
    }
}
