//! Conditions: the filters of triggers and the tests of branches.
//!
//! A condition is a rule (`{"field": "event.data.cart_value", "op": "gt", "value": 50}`) or a
//! combination (`{"all": [...]}`, `{"any": [...]}`), nested freely. Fields are dotted paths
//! into the same variables templates see (`event.data.*`, `contact.*`, `custom_variables.*`;
//! see [`crate::context`]), so what a user can print they can also test.
//!
//! Comparisons follow what people mean rather than JSON's types: a number sent as a string
//! (`"149.00"`) compares as the number 149 with numbers and numeric strings, `eq` between
//! strings ignores nothing (it is exact and case-sensitive), and a missing field is neither
//! equal, greater nor less than anything (only `not_exists`, `ne`, `not_in` and
//! `not_contains` hold for it).

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// How many rules and combinations one condition may hold, and how deep it may nest.
const MAX_NODES: usize = 200;
const MAX_DEPTH: usize = 8;

/// A test on the variables of a journey or a trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Rule(Rule),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub field: String,
    pub op: Op,
    /// Absent for `exists` and `not_exists`.
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    NotContains,
    Exists,
    NotExists,
    In,
    NotIn,
}

pub(crate) const OPS: [(&str, Op); 12] = [
    ("eq", Op::Eq),
    ("ne", Op::Ne),
    ("gt", Op::Gt),
    ("gte", Op::Gte),
    ("lt", Op::Lt),
    ("lte", Op::Lte),
    ("contains", Op::Contains),
    ("not_contains", Op::NotContains),
    ("exists", Op::Exists),
    ("not_exists", Op::NotExists),
    ("in", Op::In),
    ("not_in", Op::NotIn),
];

impl Op {
    pub fn as_str(self) -> &'static str {
        OPS.iter().find(|(_, op)| *op == self).map_or("eq", |(name, _)| name)
    }

    pub(crate) fn parse(name: &str) -> Option<Op> {
        OPS.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Condition {
    /// Parses the JSON form, with errors that say where (`all[1].op`) and why.
    pub fn from_json(value: &Value) -> Result<Condition, String> {
        let mut nodes = 0;
        parse(value, "", 0, &mut nodes)
    }

    pub fn to_json(&self) -> Value {
        match self {
            Condition::All(items) => {
                serde_json::json!({ "all": items.iter().map(Condition::to_json).collect::<Vec<_>>() })
            }
            Condition::Any(items) => {
                serde_json::json!({ "any": items.iter().map(Condition::to_json).collect::<Vec<_>>() })
            }
            Condition::Rule(rule) => {
                let mut object = Map::new();
                object.insert("field".into(), Value::String(rule.field.clone()));
                object.insert("op".into(), Value::String(rule.op.as_str().into()));
                if let Some(value) = &rule.value {
                    object.insert("value".into(), value.clone());
                }
                Value::Object(object)
            }
        }
    }

    /// Whether the condition holds for `variables`.
    pub fn holds(&self, variables: &Value) -> bool {
        match self {
            Condition::All(items) => items.iter().all(|c| c.holds(variables)),
            Condition::Any(items) => items.iter().any(|c| c.holds(variables)),
            Condition::Rule(rule) => rule.holds(lookup(variables, &rule.field)),
        }
    }

    /// Why the condition holds or not, in words: the first rule that decided it.
    pub fn explain(&self, variables: &Value) -> String {
        match self {
            Condition::Rule(rule) => rule.explain(lookup(variables, &rule.field)),
            Condition::All(items) => match items.iter().find(|c| !c.holds(variables)) {
                Some(failing) => failing.explain(variables),
                None => "all rules hold".into(),
            },
            Condition::Any(items) => match items.iter().find(|c| c.holds(variables)) {
                Some(holding) => holding.explain(variables),
                None => "no rule holds".into(),
            },
        }
    }
}

fn parse(value: &Value, path: &str, depth: usize, nodes: &mut usize) -> Result<Condition, String> {
    let at = |field: &str| if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") };
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(format!("{}: a condition may hold at most {MAX_NODES} rules", at("")));
    }
    if depth > MAX_DEPTH {
        return Err(format!("{path}: conditions nest at most {MAX_DEPTH} deep"));
    }
    let Value::Object(object) = value else {
        return Err(format!(
            "{}: must be an object: a rule {{\"field\", \"op\", \"value\"}} or {{\"all\": [...]}} / {{\"any\": [...]}}",
            if path.is_empty() { "condition" } else { path }
        ));
    };
    for (key, make) in [("all", Condition::All as fn(Vec<Condition>) -> Condition), ("any", Condition::Any)] {
        if let Some(items) = object.get(key) {
            if object.len() != 1 {
                return Err(format!("{}: an {key:?} object takes no other keys", at(key)));
            }
            let Value::Array(items) = items else {
                return Err(format!("{}: must be a list of conditions", at(key)));
            };
            if items.is_empty() {
                return Err(format!("{}: must hold at least one condition", at(key)));
            }
            let parsed = items
                .iter()
                .enumerate()
                .map(|(i, item)| parse(item, &format!("{}[{i}]", at(key)), depth + 1, nodes))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(make(parsed));
        }
    }
    if let Some(unknown) = object.keys().find(|k| !matches!(k.as_str(), "field" | "op" | "value")) {
        return Err(format!("{}: unknown key (a rule has \"field\", \"op\" and \"value\")", at(unknown)));
    }
    let field = match object.get("field") {
        Some(Value::String(f)) if valid_field(f) => f.clone(),
        Some(Value::String(_)) => {
            return Err(format!(
                "{}: must be a dotted path such as \"event.data.cart_value\" or \"contact.plan\"",
                at("field")
            ));
        }
        Some(_) => return Err(format!("{}: must be a string", at("field"))),
        None => return Err(format!("{}: is required", at("field"))),
    };
    let op = match object.get("op") {
        Some(Value::String(name)) => Op::parse(name).ok_or_else(|| {
            let names: Vec<&str> = OPS.iter().map(|(n, _)| *n).collect();
            format!("{}: unknown operator {name:?}; use one of {}", at("op"), names.join(", "))
        })?,
        Some(_) => return Err(format!("{}: must be a string", at("op"))),
        None => return Err(format!("{}: is required", at("op"))),
    };
    let value = object.get("value").cloned();
    match (op, &value) {
        (Op::Exists | Op::NotExists, Some(_)) => {
            return Err(format!("{}: {op} takes no value", at("value")));
        }
        (Op::Exists | Op::NotExists, None) => {}
        (_, None) => return Err(format!("{}: is required for {op}", at("value"))),
        (Op::In | Op::NotIn, Some(Value::Array(_))) => {}
        (Op::In | Op::NotIn, Some(_)) => return Err(format!("{}: {op} needs a list", at("value"))),
        (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(v)) if number(v).is_none() && !v.is_string() => {
            return Err(format!("{}: {op} compares with a number or a string", at("value")));
        }
        _ => {}
    }
    Ok(Condition::Rule(Rule { field, op, value }))
}

fn valid_field(field: &str) -> bool {
    !field.is_empty() && field.len() <= 200 && field.split('.').all(|part| !part.is_empty())
}

impl Rule {
    fn holds(&self, actual: Option<&Value>) -> bool {
        let actual = actual.filter(|v| !v.is_null());
        let expected = self.value.as_ref();
        match self.op {
            Op::Exists => actual.is_some(),
            Op::NotExists => actual.is_none(),
            Op::Eq => matches!((actual, expected), (Some(a), Some(e)) if equal(a, e)),
            Op::Ne => !matches!((actual, expected), (Some(a), Some(e)) if equal(a, e)),
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
                let Some(ordering) = actual.zip(expected).and_then(|(a, e)| compare(a, e)) else {
                    return false;
                };
                match self.op {
                    Op::Gt => ordering == Ordering::Greater,
                    Op::Gte => ordering != Ordering::Less,
                    Op::Lt => ordering == Ordering::Less,
                    _ => ordering != Ordering::Greater,
                }
            }
            Op::Contains => matches!((actual, expected), (Some(a), Some(e)) if contains(a, e)),
            Op::NotContains => !matches!((actual, expected), (Some(a), Some(e)) if contains(a, e)),
            Op::In => {
                matches!((actual, expected), (Some(a), Some(Value::Array(list))) if list.iter().any(|e| equal(a, e)))
            }
            Op::NotIn => {
                !matches!((actual, expected), (Some(a), Some(Value::Array(list))) if list.iter().any(|e| equal(a, e)))
            }
        }
    }

    fn explain(&self, actual: Option<&Value>) -> String {
        let verdict = if self.holds(actual) { "holds" } else { "does not hold" };
        let shown = match actual.filter(|v| !v.is_null()) {
            Some(v) => format!("is {}", brief(v)),
            None => "is missing".into(),
        };
        match &self.value {
            Some(expected) => format!("{} {shown}, so \"{} {}\" {verdict}", self.field, self.op, brief(expected)),
            None => format!("{} {shown}, so \"{}\" {verdict}", self.field, self.op),
        }
    }
}

fn brief(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 { format!("{}…", text.chars().take(60).collect::<String>()) } else { text }
}

/// The value at a dotted path, descending through objects and (by index) lists.
pub fn lookup<'a>(variables: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(variables, |current, part| match current {
        Value::Object(map) => map.get(part),
        Value::Array(list) => part.parse::<usize>().ok().and_then(|i| list.get(i)),
        _ => None,
    })
}

/// A number, or a string that reads as one (`"149.00"`, `" 42 "`).
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

fn equal(actual: &Value, expected: &Value) -> bool {
    match (number(actual), number(expected)) {
        // Both read as numbers, and at least one really is: "149.00" equals 149.
        (Some(a), Some(e)) if actual.is_number() || expected.is_number() => a == e,
        _ => match (actual, expected) {
            (Value::Bool(a), Value::String(e)) | (Value::String(e), Value::Bool(a)) => {
                e == if *a { "true" } else { "false" }
            }
            _ => actual == expected,
        },
    }
}

fn compare(actual: &Value, expected: &Value) -> Option<Ordering> {
    match (number(actual), number(expected)) {
        (Some(a), Some(e)) => a.partial_cmp(&e),
        _ => match (actual, expected) {
            // ISO-8601 timestamps and dates compare correctly as text.
            (Value::String(a), Value::String(e)) => Some(a.as_str().cmp(e.as_str())),
            _ => None,
        },
    }
}

fn contains(actual: &Value, expected: &Value) -> bool {
    match actual {
        Value::String(text) => match expected {
            Value::String(needle) => text.contains(needle.as_str()),
            other => text.contains(&other.to_string()),
        },
        Value::Array(items) => items.iter().any(|item| equal(item, expected)),
        Value::Object(map) => expected.as_str().is_some_and(|key| map.contains_key(key)),
        _ => false,
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Condition::from_json(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(value: Value) -> Condition {
        Condition::from_json(&value).expect("valid condition")
    }

    #[test]
    fn numbers_sent_as_strings_compare_as_numbers() {
        let vars = json!({"event": {"data": {"cart_value": "149.00", "items": 3}}});
        assert!(rule(json!({"field": "event.data.cart_value", "op": "gt", "value": 50})).holds(&vars));
        assert!(rule(json!({"field": "event.data.cart_value", "op": "eq", "value": 149})).holds(&vars));
        assert!(!rule(json!({"field": "event.data.cart_value", "op": "lt", "value": "50"})).holds(&vars));
        assert!(rule(json!({"field": "event.data.items", "op": "gte", "value": "3"})).holds(&vars));
        // "9" > "10" as text, but not as numbers.
        assert!(!rule(json!({"field": "event.data.items", "op": "gt", "value": "10"})).holds(&vars));
    }

    #[test]
    fn every_operator() {
        let vars =
            json!({"contact": {"plan": "free", "tags": ["a", "b"], "bio": "likes rust", "zero": 0, "flag": true}});
        let cases = [
            (json!({"field": "contact.plan", "op": "eq", "value": "free"}), true),
            (json!({"field": "contact.plan", "op": "eq", "value": "Free"}), false),
            (json!({"field": "contact.plan", "op": "ne", "value": "pro"}), true),
            (json!({"field": "contact.missing", "op": "ne", "value": "pro"}), true),
            (json!({"field": "contact.missing", "op": "eq", "value": "pro"}), false),
            (json!({"field": "contact.bio", "op": "contains", "value": "rust"}), true),
            (json!({"field": "contact.tags", "op": "contains", "value": "b"}), true),
            (json!({"field": "contact.tags", "op": "not_contains", "value": "c"}), true),
            (json!({"field": "contact.plan", "op": "exists"}), true),
            (json!({"field": "contact.zero", "op": "exists"}), true),
            (json!({"field": "contact.nope", "op": "not_exists"}), true),
            (json!({"field": "contact.plan", "op": "in", "value": ["free", "trial"]}), true),
            (json!({"field": "contact.plan", "op": "not_in", "value": ["pro"]}), true),
            (json!({"field": "contact.flag", "op": "eq", "value": "true"}), true),
            (json!({"field": "contact.tags.0", "op": "eq", "value": "a"}), true),
            (json!({"field": "contact.missing", "op": "gt", "value": 0}), false),
            (json!({"field": "contact.missing", "op": "lte", "value": 0}), false),
        ];
        for (json, expected) in cases {
            assert_eq!(rule(json.clone()).holds(&vars), expected, "{json}");
        }
    }

    #[test]
    fn all_and_any_combine_and_explain() {
        let vars = json!({"event": {"data": {"cart_value": 20}}, "contact": {"plan": "free"}});
        let both = rule(json!({"all": [
            {"field": "event.data.cart_value", "op": "gt", "value": 50},
            {"field": "contact.plan", "op": "eq", "value": "free"}
        ]}));
        assert!(!both.holds(&vars));
        assert_eq!(both.explain(&vars), "event.data.cart_value is 20, so \"gt 50\" does not hold");
        let either = rule(json!({"any": [
            {"field": "event.data.cart_value", "op": "gt", "value": 50},
            {"field": "contact.plan", "op": "eq", "value": "free"}
        ]}));
        assert!(either.holds(&vars));
    }

    #[test]
    fn malformed_conditions_name_the_place() {
        for (json, message) in [
            (json!({"field": "a", "op": "greater", "value": 1}), "op: unknown operator \"greater\""),
            (json!({"all": [{"field": "a", "op": "eq"}]}), "all[0].value: is required for eq"),
            (json!({"field": "a", "op": "exists", "value": 1}), "value: exists takes no value"),
            (json!({"field": "a", "op": "in", "value": 1}), "value: in needs a list"),
            (json!({"field": "a..b", "op": "eq", "value": 1}), "field: must be a dotted path"),
            (json!({"any": []}), "any: must hold at least one condition"),
            (json!({"field": "a", "op": "eq", "value": 1, "extra": 2}), "extra: unknown key"),
            (json!([1]), "condition: must be an object"),
            (json!({"all": [{"field": "a", "op": "gt", "value": true}]}), "all[0].value: gt compares"),
        ] {
            let error = Condition::from_json(&json).expect_err(&json.to_string());
            assert!(error.starts_with(message), "{json}: {error}");
        }
    }

    #[test]
    fn round_trips_through_json() {
        let json = json!({"any": [{"field": "a.b", "op": "in", "value": [1, 2]}, {"field": "c", "op": "exists"}]});
        assert_eq!(rule(json.clone()).to_json(), json);
    }
}
