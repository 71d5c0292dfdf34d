//! Reading an inbound request body into JSON, whatever way the sender wrote it: a JSON body
//! (also with no or a `text/plain` content type, as Zapier and Make send), a form post, or
//! query parameters (HighLevel's GET webhooks). Pure, so it can be fuzzed on its own.

use serde_json::Value;

use crate::inbound::object_from_pairs;

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
}

/// Parses JSON, reporting where it broke. serde_json refuses nesting deeper than 128 levels
/// (without recursing further), which is the depth limit for inbound payloads. NUL characters
/// in strings and keys become U+FFFD: PostgreSQL's `text` and `jsonb` cannot hold them, and
/// both backends must store the same values (the raw body is kept exactly, separately).
pub fn parse_json(bytes: &[u8]) -> Result<Value, PayloadError> {
    let mut value = serde_json::from_slice(bytes).map_err(|e| {
        let what = if e.to_string().contains("recursion limit") {
            "nested deeper than 128 levels".to_owned()
        } else {
            e.to_string()
        };
        PayloadError::InvalidJson(what)
    })?;
    scrub_nul(&mut value);
    Ok(value)
}

/// Replaces NUL characters in every string and key (depth is bounded by the parser's limit).
fn scrub_nul(value: &mut Value) {
    const REPLACEMENT: &str = "\u{fffd}";
    match value {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', REPLACEMENT),
        Value::Array(items) => items.iter_mut().for_each(scrub_nul),
        Value::Object(map) if map.keys().any(|k| k.contains('\0')) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                scrub_nul(&mut item);
                map.insert(key.replace('\0', REPLACEMENT), item);
            }
        }
        Value::Object(map) => map.values_mut().for_each(scrub_nul),
        _ => {}
    }
}

fn pairs(raw: &[u8]) -> Value {
    let mut value = object_from_pairs(form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())));
    scrub_nul(&mut value);
    value
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
            Some(query) => Ok(pairs(query.as_bytes())),
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
        "application/x-www-form-urlencoded" => Ok(pairs(body)),
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
    fn nul_characters_become_replacement_characters() {
        let value = parse_json(br#"{"a\u0000b": ["x\u0000", {"k": "\u0000"}]}"#).expect("parses");
        assert_eq!(value, json!({"a\u{fffd}b": ["x\u{fffd}", {"k": "\u{fffd}"}]}));
        let form = payload(false, Some("application/x-www-form-urlencoded"), None, b"email=a%00b");
        assert_eq!(form, Ok(json!({"email": "a\u{fffd}b"})));
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
