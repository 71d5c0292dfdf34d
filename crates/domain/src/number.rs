//! Numbers a JSON text can write but Herald cannot keep as written, found with the path of
//! their field so that a request is refused naming the field instead of being changed.
//!
//! serde_json (without `arbitrary_precision`, which would change how every number in the
//! workspace is held) keeps integers from -2^63 to 2^64-1 exactly and every other number as
//! the nearest 64-bit float. That is the convention for fractions and exponents (`0.1`,
//! `6.02e23`), but an integer beyond 64 bits (an id, an amount in cents) would silently become
//! a rounded float, and a number beyond a float's range is no number at all. Both are
//! refused; senders keep such values by sending them as strings.
//!
//! The parsed value cannot tell `12345678901234567890123` from `1.2345678901234568e22`, so
//! the raw text is read again. [`may_hold_unkept`] says, from the parsed value, whether that is
//! needed at all (an integral float of 2^63 or more is the only trace an overflowed integer
//! leaves), which keeps the common payload to a single parse.

use serde_json::Value;

/// A number in a JSON text that cannot be kept as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", if path.is_empty() { "body" } else { path })]
pub struct UnkeptNumber {
    /// Path from the document's root (`data.big`, `[3].items[0].n`); empty for a bare number.
    pub path: String,
    pub reason: &'static str,
}

const BEYOND_64_BITS: &str = "is an integer beyond 64 bits (-9223372036854775808 to 18446744073709551615), \
     which would be rounded; send it as a string to keep it exactly";
const BEYOND_F64: &str = "is beyond the range of a 64-bit float; send it as a string to keep it";

/// 2^63: below it, every integral float could have been written as an `i64`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// Whether a parsed value holds a float that may be an integer beyond 64 bits rounded by the
/// parser (an integral float of magnitude 2^63 or more). Depth is bounded by the parser's.
pub fn may_hold_unkept(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64() && n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() >= TWO_POW_63),
        Value::Array(items) => items.iter().any(may_hold_unkept),
        Value::Object(map) => map.values().any(may_hold_unkept),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

/// Whether a serde_json error is its refusal of a number beyond a float's range.
pub fn is_out_of_range(error: &serde_json::Error) -> bool {
    error.to_string().starts_with("number out of range")
}

/// One open container while scanning.
enum Frame {
    /// `key` is the member being read; `None` until its key string has been seen.
    Object {
        key: Option<String>,
    },
    Array {
        index: usize,
    },
}

/// The first number in `json` that cannot be kept, with its path. Meant for text serde_json
/// accepted, or refused for a number out of range; on any other text it returns something or
/// nothing, and never panics.
pub fn first_unkept(json: &[u8]) -> Option<UnkeptNumber> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while let Some(&byte) = json.get(i) {
        match byte {
            b'{' => stack.push(Frame::Object { key: None }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { key }) => *key = None,
                None => {}
            },
            b'"' => {
                let end = string_end(json, i)?;
                // In an object, the first string after `{` or `,` is the member's key.
                if let Some(Frame::Object { key }) = stack.last_mut()
                    && key.is_none()
                {
                    let raw = &json[i..=end];
                    *key = Some(
                        serde_json::from_slice(raw)
                            .unwrap_or_else(|_| String::from_utf8_lossy(&raw[1..raw.len() - 1]).into_owned()),
                    );
                }
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while json.get(i + 1).is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')) {
                    i += 1;
                }
                if let Some(reason) = unkept(&json[start..=i]) {
                    return Some(UnkeptNumber { path: path(&stack), reason });
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match json.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
}

/// Why a number token cannot be kept, if it cannot.
fn unkept(token: &[u8]) -> Option<&'static str> {
    let text = std::str::from_utf8(token).ok()?;
    if token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        return text.parse::<f64>().ok().filter(|f| f.is_infinite()).map(|_| BEYOND_F64);
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    (integer && text.parse::<i64>().is_err() && text.parse::<u64>().is_err()).then_some(BEYOND_64_BITS)
}

/// The path of the value being read: keys joined by `.`, indexes in brackets.
fn path(stack: &[Frame]) -> String {
    let mut path = String::new();
    for frame in stack {
        match frame {
            Frame::Object { key: Some(key) } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object { key: None } => {}
            Frame::Array { index } => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan(json: &str) -> Option<String> {
        first_unkept(json.as_bytes()).map(|n| n.to_string())
    }

    #[test]
    fn finds_integers_beyond_64_bits_and_numbers_beyond_floats_with_their_path() {
        assert_eq!(
            scan(r#"{"data": {"big": 123456789012345678901234567890}}"#).as_deref(),
            Some(
                "data.big: is an integer beyond 64 bits (-9223372036854775808 to 18446744073709551615), which would be \
             rounded; send it as a string to keep it exactly"
            )
        );
        let path = |json: &str| first_unkept(json.as_bytes()).map(|n| n.path);
        assert_eq!(path(r#"{"a": [1, {"b": "x", "c": [0, -18446744073709551616]}]}"#).as_deref(), Some("a[1].c[1]"));
        assert_eq!(path(r#"[{"e": 1}, {"e": 1e400}]"#).as_deref(), Some("[1].e"));
        assert_eq!(path(r#"{"k\"ey": -1E+309}"#).as_deref(), Some("k\"ey"));
        assert_eq!(path(r#"{"s": "99999999999999999999999", "n": 1}"#), None, "strings are not numbers");
        assert_eq!(path("36893488147419103232").as_deref(), Some(""));
        assert_eq!(scan("1e999").as_deref().map(|s| s.starts_with("body: is beyond")), Some(true));
        for kept in [
            r#"{"u": 18446744073709551615, "i": -9223372036854775808, "f": 0.1, "e": 6.02e23, "m": 1.7976931348623157e308}"#,
            r#"{"tiny": 5e-324, "under": 1e-400, "zero": -0}"#,
        ] {
            assert_eq!(scan(kept), None, "{kept}");
        }
    }

    #[test]
    fn only_rounded_integral_floats_call_for_a_scan() {
        let parsed = |json: &str| serde_json::from_str::<Value>(json).expect("json");
        assert!(!may_hold_unkept(&parsed(r#"{"a": [18446744073709551615, -9223372036854775808, 0.5, 1e18]}"#)));
        assert!(may_hold_unkept(&parsed(r#"{"a": [1, {"b": 18446744073709551616}]}"#)));
        assert!(may_hold_unkept(&parsed("-9223372036854775809")));
        let error = serde_json::from_str::<Value>(r#"{"a": 1e400}"#).expect_err("out of range");
        assert!(is_out_of_range(&error), "{error}");
        assert!(!is_out_of_range(&serde_json::from_str::<Value>("{").expect_err("eof")));
    }

    proptest! {
        /// On any text the scan ends without panicking, and on JSON serde_json reads, it
        /// finds something exactly when the parsed value lost an integer.
        #[test]
        fn never_panics_and_agrees_with_the_parser(raw in ".{0,64}", big in any::<u128>(), neg in any::<bool>()) {
            let _ = first_unkept(raw.as_bytes());
            let text = format!(r#"{{"a": [{}{big}]}}"#, if neg { "-" } else { "" });
            let value: Value = serde_json::from_str(&text).expect("json");
            let lost = value["a"][0].is_f64();
            prop_assert_eq!(first_unkept(text.as_bytes()).is_some(), lost);
            prop_assert_eq!(may_hold_unkept(&value), lost);
        }
    }
}
