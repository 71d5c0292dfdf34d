//! Reading a segment definition from its JSON form, with errors that name the place.

use serde_json::{Map, Value};

use super::{Behaviour, Compare, DateTest, EventTest, Moment, Node, time_value};
use crate::DocumentError;
use crate::condition::{Condition, OPS};
use crate::span::Span;

/// How many tests and combinations one definition may hold, and how deep it may nest.
const MAX_NODES: usize = 200;
const MAX_DEPTH: usize = 10;
/// The largest count a `times` test may ask for.
const MAX_TIMES: u64 = 1_000_000;
const MAX_NAME: usize = 200;

/// The date operators segments add to the branch conditions' operators.
pub(super) const DATE_OPS: [&str; 3] = ["before", "after", "within_last"];

/// The keys that start a test, for the message about an object that has none.
const TESTS: &str = "\"all\", \"any\", \"not\", \"field\", \"performed\", \"not_performed\", \"first_performed\", \
                     \"last_performed\", \"email\", \"subscribed_to\", \"not_subscribed_to\" or \"member_of\"";

/// The keys of the tests on a topic subscription, and whether each asks for subscribed.
const TOPIC_KEYS: [(&str, bool); 2] = [("subscribed_to", true), ("not_subscribed_to", false)];

/// The email activities a definition may test, and the event each one is.
pub(super) const EMAIL_KINDS: [(&str, &str); 8] = [
    ("received", "email_sent"),
    ("sent", "email_sent"),
    ("delivered", "email_delivered"),
    ("opened", "email_opened"),
    ("clicked", "email_clicked"),
    ("bounced", "email_bounced"),
    ("complained", "email_complained"),
    ("unsubscribed", "email_unsubscribed"),
];

type Parsed<T> = Result<T, DocumentError>;

fn error(path: &str, message: impl Into<String>) -> DocumentError {
    DocumentError { path: path.to_owned(), message: message.into() }
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

pub(super) fn definition(value: &Value) -> Parsed<Node> {
    let mut nodes = 0;
    node(value, "", 0, &mut nodes)
}

fn node(value: &Value, path: &str, depth: usize, nodes: &mut usize) -> Parsed<Node> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(error(path, format!("a segment may hold at most {MAX_NODES} tests")));
    }
    if depth > MAX_DEPTH {
        return Err(error(path, format!("tests nest at most {MAX_DEPTH} deep")));
    }
    let Value::Object(object) = value else {
        return Err(error(path, format!("must be an object: one of {TESTS}")));
    };
    for (key, make) in [("all", Node::All as fn(Vec<Node>) -> Node), ("any", Node::Any)] {
        if let Some(items) = object.get(key) {
            only(object, &[key], path)?;
            let Value::Array(items) = items else { return Err(error(&at(path, key), "must be a list of tests")) };
            if items.is_empty() {
                return Err(error(&at(path, key), "must hold at least one test"));
            }
            let parsed = items
                .iter()
                .enumerate()
                .map(|(i, item)| node(item, &format!("{}[{i}]", at(path, key)), depth + 1, nodes))
                .collect::<Parsed<Vec<_>>>()?;
            return Ok(make(parsed));
        }
    }
    if let Some(inner) = object.get("not") {
        only(object, &["not"], path)?;
        return Ok(Node::Not(Box::new(node(inner, &at(path, "not"), depth + 1, nodes)?)));
    }
    if object.contains_key("field") {
        return attribute(object, path);
    }
    if let Some(id) = object.get("member_of") {
        only(object, &["member_of"], path)?;
        let id = id
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| error(&at(path, "member_of"), "must be a segment id (seg_…)"))?;
        return Ok(Node::MemberOf(id));
    }
    if let Some((key, subscribed)) = TOPIC_KEYS.into_iter().find(|(k, _)| object.contains_key(*k)) {
        only(object, &[key], path)?;
        let topic = object[key]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| error(&at(path, key), "must be a topic id (top_…)"))?;
        return Ok(Node::Topic { topic, subscribed });
    }
    if object.contains_key("email") {
        return email(object, path);
    }
    behaviour(object, path)
}

/// Refuses keys other than `allowed`.
fn only(object: &Map<String, Value>, allowed: &[&str], path: &str) -> Parsed<()> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => {
            Err(error(&at(path, unknown), format!("unknown key here (this test takes {})", allowed.join(", "))))
        }
        None => Ok(()),
    }
}

fn attribute(object: &Map<String, Value>, path: &str) -> Parsed<Node> {
    let op = object.get("op").and_then(Value::as_str);
    match op {
        Some(date_op) if DATE_OPS.contains(&date_op) => {
            only(object, &["field", "op", "value"], path)?;
            let field = match object.get("field") {
                Some(Value::String(f)) if !f.is_empty() && f.split('.').all(|p| !p.is_empty()) => f.clone(),
                _ => return Err(error(&at(path, "field"), "must be a dotted path such as \"trial_ends_at\"")),
            };
            let value_path = at(path, "value");
            let value = object.get("value").ok_or_else(|| error(&value_path, format!("is required for {date_op}")))?;
            let test = if date_op == "within_last" {
                DateTest::WithinLast(span(value, &value_path)?)
            } else {
                let time = time_value(value).ok_or_else(|| {
                    error(&value_path, "must be a time such as \"2026-01-31T00:00:00Z\" or \"2026-01-31\"")
                })?;
                if date_op == "before" { DateTest::Before(time) } else { DateTest::After(time) }
            };
            Ok(Node::Date { field, test })
        }
        Some(name) if !OPS.iter().any(|(n, _)| *n == name) => {
            let names: Vec<&str> = OPS.iter().map(|(n, _)| *n).chain(DATE_OPS).collect();
            Err(error(&at(path, "op"), format!("unknown operator {name:?}; use one of {}", names.join(", "))))
        }
        _ => Condition::from_json(&Value::Object(object.clone())).map(Node::Attribute).map_err(|message| {
            // The condition's own message starts with the key it is about.
            match message.split_once(": ") {
                Some((key, rest)) => error(&at(path, key), rest),
                None => error(path, message),
            }
        }),
    }
}

/// `performed`, `not_performed`, `first_performed` and `last_performed`.
fn behaviour(object: &Map<String, Value>, path: &str) -> Parsed<Node> {
    let (key, test) = if object.contains_key("performed") {
        only(object, &["performed", "where", "times", "within"], path)?;
        let within = object.get("within").map(|w| span(w, &at(path, "within"))).transpose()?;
        let (compare, n) = match object.get("times") {
            Some(times) => self::times(times, &at(path, "times"))?,
            None => (Compare::AtLeast, 1),
        };
        ("performed", EventTest::Count { compare, n, within })
    } else if object.contains_key("not_performed") {
        only(object, &["not_performed", "where", "within"], path)?;
        let within = object.get("within").map(|w| span(w, &at(path, "within"))).transpose()?;
        ("not_performed", EventTest::Count { compare: Compare::AtMost, n: 0, within })
    } else if let Some(key) = ["first_performed", "last_performed"].into_iter().find(|k| object.contains_key(*k)) {
        only(object, &[key, "where", "before", "after"], path)?;
        let moment = match (object.get("before"), object.get("after")) {
            (Some(t), None) => Moment::Before(time(t, &at(path, "before"))?),
            (None, Some(t)) => Moment::After(time(t, &at(path, "after"))?),
            _ => return Err(error(path, format!("{key} takes one of \"before\" or \"after\""))),
        };
        (key, if key == "first_performed" { EventTest::First(moment) } else { EventTest::Last(moment) })
    } else {
        let first = object.keys().next().map_or(String::new(), |k| at(path, k));
        return Err(error(&first, format!("unknown test; a test is one of {TESTS}")));
    };
    let name = event_name(object.get(key), &at(path, key))?;
    let filter = object.get("where").map(|w| filter(w, &at(path, "where"))).transpose()?;
    Ok(Node::Behaviour(Behaviour { name, filter, test }))
}

/// `{"email": "opened", "campaign_id": "cmp_…", "times": …, "within": …}`.
fn email(object: &Map<String, Value>, path: &str) -> Parsed<Node> {
    only(object, &["email", "campaign_id", "times", "within"], path)?;
    let kinds = || EMAIL_KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ");
    let name = object
        .get("email")
        .and_then(Value::as_str)
        .and_then(|kind| EMAIL_KINDS.iter().find(|(k, _)| *k == kind))
        .map(|(_, event)| (*event).to_owned())
        .ok_or_else(|| error(&at(path, "email"), format!("must be one of {}", kinds())))?;
    let filter = match object.get("campaign_id") {
        None => None,
        Some(Value::String(id)) if id.parse::<herald_domain::CampaignId>().is_ok() => Some(
            Condition::from_json(&serde_json::json!({"field": "campaign_id", "op": "eq", "value": id}))
                .map_err(|m| error(&at(path, "campaign_id"), m))?,
        ),
        Some(_) => return Err(error(&at(path, "campaign_id"), "must be a campaign id (cmp_…)")),
    };
    let within = object.get("within").map(|w| span(w, &at(path, "within"))).transpose()?;
    let (compare, n) = match object.get("times") {
        Some(times) => self::times(times, &at(path, "times"))?,
        None => (Compare::AtLeast, 1),
    };
    Ok(Node::Behaviour(Behaviour { name, filter, test: EventTest::Count { compare, n, within } }))
}

fn event_name(value: Option<&Value>, path: &str) -> Parsed<String> {
    match value {
        Some(Value::String(name)) if name.is_empty() => Err(error(path, "must not be empty")),
        Some(Value::String(name)) if name.trim() != name => {
            Err(error(path, format!("{name:?} has leading or trailing spaces; event names are exact")))
        }
        Some(Value::String(name)) if name.chars().count() > MAX_NAME => {
            Err(error(path, format!("is too long (at most {MAX_NAME} characters)")))
        }
        Some(Value::String(name)) => Ok(name.clone()),
        _ => Err(error(path, "must be an event name")),
    }
}

fn filter(value: &Value, path: &str) -> Parsed<Condition> {
    Condition::from_json(value).map_err(|message| match message.split_once(": ") {
        Some(("condition", rest)) => error(path, rest),
        Some((key, rest)) => error(&at(path, key), rest),
        None => error(path, message),
    })
}

/// `{"at_least": 3}`, `{"at_most": 0}` or `{"exactly": 1}`.
fn times(value: &Value, path: &str) -> Parsed<(Compare, u32)> {
    let wrong = || error(path, "must be {\"at_least\": N}, {\"at_most\": N} or {\"exactly\": N}");
    let Value::Object(object) = value else { return Err(wrong()) };
    let mut entries = object.iter();
    let (Some((key, n)), None) = (entries.next(), entries.next()) else { return Err(wrong()) };
    let compare = match key.as_str() {
        "at_least" => Compare::AtLeast,
        "at_most" => Compare::AtMost,
        "exactly" => Compare::Exactly,
        _ => return Err(wrong()),
    };
    let n = n
        .as_u64()
        .filter(|n| *n <= MAX_TIMES)
        .ok_or_else(|| error(&at(path, key), format!("must be a whole number from 0 to {MAX_TIMES}")))?;
    Ok((compare, u32::try_from(n).unwrap_or(u32::MAX)))
}

fn span(value: &Value, path: &str) -> Parsed<Span> {
    value
        .as_str()
        .ok_or_else(|| error(path, "must be a duration such as \"7d\""))?
        .parse()
        .map_err(|e: crate::span::SpanError| error(path, e.to_string()))
}

fn time(value: &Value, path: &str) -> Parsed<herald_domain::Timestamp> {
    time_value(value).ok_or_else(|| error(path, "must be a time such as \"2026-01-31T00:00:00Z\" or \"2026-01-31\""))
}
