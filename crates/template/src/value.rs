//! Liquid's view of JSON values: truthiness, equality, ordering, numbers and output text.
//!
//! Numbers held as strings (common in contact attributes imported from CSV) count as numbers
//! wherever a number meets a string: `"149.00" > 50` and `"3" == 3` are true, and arithmetic
//! filters accept them. Two strings compare as strings (`"10" < "9"`), as in Liquid.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::Value;

/// Only nil and false are falsy; `0`, `""` and `[]` are true, as in Liquid.
pub(crate) fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

/// A number, as Liquid's arithmetic sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    pub(crate) fn into_value(self) -> Value {
        match self {
            Num::Int(i) => Value::from(i),
            // Non-finite results (overflow) have no JSON form; they become nil.
            Num::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        }
    }
}

/// A JSON number, or a string that reads as one (`" 42 "`, `"-1.5"`, `"1e3"`).
pub(crate) fn number(v: &Value) -> Option<Num> {
    match v {
        Value::Number(n) => Some(n.as_i64().map_or_else(|| Num::Float(n.as_f64().unwrap_or(0.0)), Num::Int)),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

pub(crate) fn parse_number(s: &str) -> Option<Num> {
    let s = s.trim();
    // Rust also reads "inf", "NaN" and "infinity": only digits count here.
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    if let Ok(i) = s.parse::<i64>() {
        return Some(Num::Int(i));
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite()).map(Num::Float)
}

/// A number for filters that need one: nil, missing and non-numeric values count as 0, as in
/// Liquid.
pub(crate) fn number_or_zero(v: &Value) -> Num {
    number(v).unwrap_or(Num::Int(0))
}

/// An integer argument (`limit`, `truncate`, `round`): floats are truncated.
pub(crate) fn int(v: &Value) -> Option<i64> {
    number(v).map(|n| match n {
        Num::Int(i) => i,
        Num::Float(f) => f as i64,
    })
}

fn cmp_numbers(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
        _ => a.as_f64().partial_cmp(&b.as_f64()),
    }
}

/// Numbers compare by value when at least one side is a JSON number (see the module comment).
fn numeric_pair(a: &Value, b: &Value) -> Option<(Num, Num)> {
    if !(a.is_number() || b.is_number()) {
        return None;
    }
    Some((number(a)?, number(b)?))
}

/// `==` in Liquid.
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match numeric_pair(a, b) {
        Some((x, y)) => cmp_numbers(x, y) == Some(Ordering::Equal),
        None => match (a, b) {
            (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| equal(x, y)),
            _ => a == b,
        },
    }
}

/// `<`, `>`, `<=`, `>=`: numbers by value, strings by bytes; anything else is not ordered, and
/// the comparison is false.
pub(crate) fn order(a: &Value, b: &Value) -> Option<Ordering> {
    if let Some((x, y)) = numeric_pair(a, b) {
        return cmp_numbers(x, y);
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// `contains`: a substring of a string, an element of an array, a key of an object.
pub(crate) fn contains(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::String(s) => s.contains(text(needle).as_str()),
        Value::Array(items) => items.iter().any(|item| equal(item, needle)),
        Value::Object(map) => map.contains_key(text(needle).as_str()),
        _ => false,
    }
}

/// Liquid's `empty`: an empty string, array or object.
pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Liquid's `blank`: nil, false, empty, or only whitespace.
pub(crate) fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.trim().is_empty(),
        _ => is_empty(v),
    }
}

/// The value as output text, unescaped.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        _ => {
            let mut out = String::new();
            write(&mut out, v, false);
            out
        }
    }
}

/// Appends the output form of `v`: nil as nothing, numbers as JSON writes them (`149.0`
/// stays `149.0`, as in Liquid), an array as its elements one after another (Liquid), an object
/// as JSON (Liquid prints a Ruby hash, which helps nobody).
pub(crate) fn write(out: &mut String, v: &Value, html: bool) {
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) if html => escape_html(out, s),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => items.iter().for_each(|item| write(out, item, html)),
        Value::Object(_) if html => escape_html(out, &v.to_string()),
        Value::Object(_) => out.push_str(&v.to_string()),
    }
}

/// Appends `s` with `& < > " '` escaped, the five characters that matter in HTML text and
/// quoted attributes.
pub(crate) fn escape_html(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn truthiness_is_liquids() {
        for (v, t) in
            [(json!(null), false), (json!(false), false), (json!(0), true), (json!(""), true), (json!([]), true)]
        {
            assert_eq!(truthy(&v), t, "{v}");
        }
    }

    #[test]
    fn numeric_strings_meet_numbers() {
        assert_eq!(order(&json!("149.00"), &json!(50)), Some(Ordering::Greater));
        assert!(equal(&json!("3"), &json!(3)));
        assert!(equal(&json!(3), &json!(3.0)));
        assert_eq!(order(&json!("10"), &json!("9")), Some(Ordering::Less));
        assert_eq!(order(&json!("abc"), &json!(1)), None);
        assert!(!equal(&json!("abc"), &json!(0)));
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number(" -1.5 "), Some(Num::Float(-1.5)));
    }

    #[test]
    fn output_forms() {
        let cases = [
            (json!(null), ""),
            (json!(true), "true"),
            (json!(149.0), "149.0"),
            (json!(42), "42"),
            (json!(["a", 1, null, ["b"]]), "a1b"),
            (json!({"a": 1}), r#"{"a":1}"#),
        ];
        for (v, want) in cases {
            assert_eq!(text(&v), want, "{v}");
        }
        let mut out = String::new();
        escape_html(&mut out, r#"<a href="x">Tom & 'Jerry'</a>"#);
        assert_eq!(out, "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
    }
}
