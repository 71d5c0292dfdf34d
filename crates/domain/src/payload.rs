//! Reading an inbound request body into JSON, whatever way the sender wrote it: a JSON body
//! (also with no or a `text/plain` content type, as Zapier and Make send), a form post, or
//! query parameters (HighLevel's GET webhooks). Pure, so it can be fuzzed on its own.

use serde_json::Value;

use crate::inbound::object_from_pairs;
use crate::number::{self, UnkeptNumber};

/// Why a request's payload cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("malformed JSON: {0}")]
    InvalidJson(String),
    #[error("the request body is empty; send a JSON object")]
    EmptyBody,
    #[error("a GET request must carry the fields as query parameters")]
    EmptyQuery,
    #[error(
        "content type {0:?} is not accepted; send JSON (application/json, or text/plain with a JSON body), \
         a form (application/x-www-form-urlencoded), or use GET with query parameters"
    )]
    UnsupportedMediaType(String),
    /// A form field or query parameter whose name or value, once percent-decoded, is not
    /// UTF-8. `field` is the name (with U+FFFD where the name itself is not UTF-8).
    #[error("{field}: is not valid UTF-8; percent-encode text as UTF-8")]
    InvalidUtf8 { field: String },
    #[error(transparent)]
    UnkeptNumber(#[from] UnkeptNumber),
}

impl PayloadError {
    /// The field at fault, for refusals that have one.
    pub fn field(&self) -> Option<String> {
        match self {
            PayloadError::InvalidUtf8 { field } => Some(field.clone()),
            PayloadError::UnkeptNumber(n) if n.path.is_empty() => Some("body".to_owned()),
            PayloadError::UnkeptNumber(n) => Some(n.path.clone()),
            _ => None,
        }
    }
}

/// Parses JSON, reporting where it broke. serde_json refuses nesting deeper than 128 levels
/// (without recursing further), which is the depth limit for inbound payloads. A number that
/// cannot be kept as written (see `number`) is refused naming its field. NUL characters are
/// kept here, so that identity fields refuse them; the inbound parsers replace them in
/// free-form text (`InboundEvent::replace_nul`).
pub fn parse_json(bytes: &[u8]) -> Result<Value, PayloadError> {
    let value = serde_json::from_slice(bytes).map_err(|e| {
        if number::is_out_of_range(&e)
            && let Some(unkept) = number::first_unkept(bytes)
        {
            return PayloadError::UnkeptNumber(unkept);
        }
        let what = if e.to_string().contains("recursion limit") {
            "nested deeper than 128 levels".to_owned()
        } else {
            e.to_string()
        };
        PayloadError::InvalidJson(what)
    })?;
    if number::may_hold_unkept(&value)
        && let Some(unkept) = number::first_unkept(bytes)
    {
        return Err(unkept.into());
    }
    Ok(value)
}

/// Replaces NUL characters in every string and key with U+FFFD: PostgreSQL's `text` and
/// `jsonb` cannot hold them, and both backends must store the same values (the raw body is
/// kept exactly, separately). Depth is bounded by the parser's limit.
pub fn replace_nul(value: &mut Value) {
    const REPLACEMENT: &str = "\u{fffd}";
    match value {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', REPLACEMENT),
        Value::Array(items) => items.iter_mut().for_each(replace_nul),
        Value::Object(map) if map.keys().any(|k| k.contains('\0')) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                replace_nul(&mut item);
                map.insert(key.replace('\0', REPLACEMENT), item);
            }
        }
        Value::Object(map) => map.values_mut().for_each(replace_nul),
        _ => {}
    }
}

/// Form fields or query parameters as an object (`object_from_pairs`). Names and values are
/// percent-decoded (`+` is a space) and must then be UTF-8: replacing what is not would
/// change the sender's text without saying so.
fn pairs(raw: &[u8]) -> Result<Value, PayloadError> {
    let decode = |part: &[u8]| -> Result<String, Vec<u8>> {
        let spaced: Vec<u8> = part.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
        String::from_utf8(bytes).map_err(|e| e.into_bytes())
    };
    let mut fields = Vec::new();
    for pair in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let name = decode(name)
            .map_err(|bytes| PayloadError::InvalidUtf8 { field: String::from_utf8_lossy(&bytes).into_owned() })?;
        let value = decode(value).map_err(|_| PayloadError::InvalidUtf8 { field: name.clone() })?;
        fields.push((name, value));
    }
    Ok(object_from_pairs(fields))
}

/// The payload of a request to a source URL: `is_get` for GET requests, the `Content-Type`
/// header, the query string and the body.
pub fn payload(
    is_get: bool,
    content_type: Option<&str>,
    query: Option<&str>,
    body: &[u8],
) -> Result<Value, PayloadError> {
    let blank = body.iter().all(u8::is_ascii_whitespace);
    if is_get || (blank && query.is_some_and(|q| !q.is_empty())) {
        return match query.filter(|q| !q.is_empty()) {
            Some(query) => pairs(query.as_bytes()),
            None => Err(PayloadError::EmptyQuery),
        };
    }
    if blank {
        return Err(PayloadError::EmptyBody);
    }
    let essence =
        content_type.map(|ct| ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()).unwrap_or_default();
    match essence.as_str() {
        "" | "application/json" | "text/plain" | "text/json" => parse_json(body),
        "application/x-www-form-urlencoded" => pairs(body),
        json if json.starts_with("application/") && json.ends_with("+json") => parse_json(body),
        other => Err(PayloadError::UnsupportedMediaType(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_json_however_labelled_forms_and_queries() {
        let body = br#"{"email":"a@example.com"}"#;
        for ct in [
            None,
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("text/plain"),
            Some("application/vnd.api+json"),
        ] {
            assert_eq!(payload(false, ct, None, body), Ok(json!({"email": "a@example.com"})), "{ct:?}");
        }
        let form =
            payload(false, Some("application/x-www-form-urlencoded"), None, b"email=a%40example.com&data.plan=pro");
        assert_eq!(form, Ok(json!({"email": "a@example.com", "data": {"plan": "pro"}})));
        let query = payload(true, None, Some("email=a@example.com&event=signup"), b"");
        assert_eq!(query, Ok(json!({"email": "a@example.com", "event": "signup"})));
        let post_with_query = payload(false, None, Some("email=a@example.com"), b"");
        assert_eq!(post_with_query, Ok(json!({"email": "a@example.com"})));
    }

    #[test]
    fn nul_characters_are_kept_for_the_parsers_and_replaced_on_request() {
        let mut value = parse_json(br#"{"a\u0000b": ["x\u0000", {"k": "\u0000"}]}"#).expect("parses");
        assert_eq!(value, json!({"a\u{0}b": ["x\u{0}", {"k": "\u{0}"}]}));
        replace_nul(&mut value);
        assert_eq!(value, json!({"a\u{fffd}b": ["x\u{fffd}", {"k": "\u{fffd}"}]}));
        let form = payload(false, Some("application/x-www-form-urlencoded"), None, b"email=a%00b");
        assert_eq!(form, Ok(json!({"email": "a\u{0}b"})));
    }

    #[test]
    fn forms_and_queries_must_be_utf8_once_decoded() {
        let form = |body: &[u8]| payload(false, Some("application/x-www-form-urlencoded"), None, body);
        let field = |result: Result<Value, PayloadError>| result.expect_err("refused").field();
        assert_eq!(field(form(b"email=a%40example.com&data.plan=%FF")).as_deref(), Some("data.plan"));
        assert_eq!(field(form(b"city=\xff")).as_deref(), Some("city"));
        assert_eq!(field(form(b"k%C3=1")).as_deref(), Some("k\u{fffd}"));
        assert_eq!(field(payload(true, None, Some("name=%C3"), b"")).as_deref(), Some("name"));
        let decoded = form(b"a=K%C3%B6ln&b=J+Doe&c&d=&=e&&f=%zz&g=1%2B1").expect("valid");
        assert_eq!(decoded, json!({"a": "K\u{f6}ln", "b": "J Doe", "c": "", "d": "", "": "e", "f": "%zz", "g": "1+1"}));
    }

    #[test]
    fn numbers_that_cannot_be_kept_are_refused_naming_the_field() {
        for (body, field) in [
            (&br#"{"data": {"big": 123456789012345678901234567890}}"#[..], "data.big"),
            (br#"{"data": {"inf": 1e400}}"#, "data.inf"),
            (br#"[{}, {"n": -9223372036854775809}]"#, "[1].n"),
            (b"1E999", "body"),
        ] {
            let err = parse_json(body).expect_err("refused");
            assert_eq!(err.field().as_deref(), Some(field), "{err}");
            assert!(err.to_string().starts_with(&format!("{field}: ")), "{err}");
        }
        let kept = parse_json(br#"{"u": 18446744073709551615, "i": -9223372036854775808, "e": 6.02e23}"#);
        assert_eq!(
            kept.expect("kept").to_string(),
            r#"{"e":6.02e+23,"i":-9223372036854775808,"u":18446744073709551615}"#
        );
    }

    #[test]
    fn refusals_say_what_works() {
        let err = payload(false, Some("application/xml"), None, b"<a/>").expect_err("xml");
        assert!(matches!(err, PayloadError::UnsupportedMediaType(_)));
        assert!(err.to_string().contains("application/json") && err.to_string().contains("x-www-form-urlencoded"));
        let err = payload(false, Some("application/json"), None, b"{\"a\": ").expect_err("truncated");
        assert!(err.to_string().contains("line 1 column"), "{err}");
        assert_eq!(payload(false, None, None, b"  "), Err(PayloadError::EmptyBody));
        assert_eq!(payload(true, None, None, b""), Err(PayloadError::EmptyQuery));
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let err = payload(false, None, None, deep.as_bytes()).expect_err("deep");
        assert!(err.to_string().contains("deeper than 128"), "{err}");
        assert!(matches!(payload(false, None, None, b"{\"email\": \"\xff\xfe\"}"), Err(PayloadError::InvalidJson(_))));
    }
}
