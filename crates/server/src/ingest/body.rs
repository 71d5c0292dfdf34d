//! Reading an inbound request into JSON, whatever way the sender wrote it: a JSON body (also
//! with no or a `text/plain` content type, as Zapier and Make send), a form post, or query
//! parameters (HighLevel's GET webhooks). Refusals say which types work.

use axum::http::{Method, StatusCode};
use herald_domain::inbound::object_from_pairs;
use serde_json::Value;

/// Why a body cannot be read; becomes an HTTP error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl BodyError {
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code, message: message.into() }
    }
}

/// Parses JSON, reporting where it broke. serde_json refuses nesting deeper than 128 levels
/// (without recursing further), which is the depth limit for inbound payloads.
pub fn parse_json(bytes: &[u8]) -> Result<Value, BodyError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = if e.to_string().contains("recursion limit") {
            "nested deeper than 128 levels".to_owned()
        } else {
            e.to_string()
        };
        BodyError::bad("invalid_json", format!("malformed JSON: {what}"))
    })
}

fn pairs(raw: &[u8]) -> Value {
    object_from_pairs(form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())))
}

/// The payload of a request to a source URL.
pub fn payload(
    method: &Method,
    content_type: Option<&str>,
    query: Option<&str>,
    body: &[u8],
) -> Result<Value, BodyError> {
    if *method == Method::GET || (body.iter().all(u8::is_ascii_whitespace) && query.is_some_and(|q| !q.is_empty())) {
        let query = query.unwrap_or_default();
        if query.is_empty() {
            return Err(BodyError::bad("empty_request", "a GET request must carry the fields as query parameters"));
        }
        return Ok(pairs(query.as_bytes()));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::bad("empty_body", "the request body is empty; send a JSON object"));
    }
    let essence =
        content_type.map(|ct| ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()).unwrap_or_default();
    match essence.as_str() {
        "" | "application/json" | "text/plain" | "text/json" => parse_json(body),
        "application/x-www-form-urlencoded" => Ok(pairs(body)),
        json if json.starts_with("application/") && json.ends_with("+json") => parse_json(body),
        other => Err(BodyError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: format!(
                "content type {other:?} is not accepted; send JSON (application/json, or text/plain with a JSON body), \
                 a form (application/x-www-form-urlencoded), or use GET with query parameters"
            ),
        }),
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
            assert_eq!(payload(&Method::POST, ct, None, body), Ok(json!({"email": "a@example.com"})), "{ct:?}");
        }
        let form = payload(
            &Method::POST,
            Some("application/x-www-form-urlencoded"),
            None,
            b"email=a%40example.com&data.plan=pro",
        );
        assert_eq!(form, Ok(json!({"email": "a@example.com", "data": {"plan": "pro"}})));
        let query = payload(&Method::GET, None, Some("email=a@example.com&event=signup"), b"");
        assert_eq!(query, Ok(json!({"email": "a@example.com", "event": "signup"})));
        let post_with_query = payload(&Method::POST, None, Some("email=a@example.com"), b"");
        assert_eq!(post_with_query, Ok(json!({"email": "a@example.com"})));
    }

    #[test]
    fn refusals_say_what_works() {
        let err = payload(&Method::POST, Some("application/xml"), None, b"<a/>").expect_err("xml");
        assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(err.message.contains("application/json") && err.message.contains("x-www-form-urlencoded"));
        let err = payload(&Method::POST, Some("application/json"), None, b"{\"a\": ").expect_err("truncated");
        assert_eq!(err.code, "invalid_json");
        assert!(err.message.contains("line 1 column"), "{}", err.message);
        assert_eq!(payload(&Method::POST, None, None, b"  ").expect_err("empty").code, "empty_body");
        assert_eq!(payload(&Method::GET, None, None, b"").expect_err("empty").code, "empty_request");
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let err = payload(&Method::POST, None, None, deep.as_bytes()).expect_err("deep");
        assert!(err.message.contains("deeper than 128"), "{}", err.message);
        let invalid_utf8 = payload(&Method::POST, None, None, b"{\"email\": \"\xff\xfe\"}").expect_err("utf8");
        assert_eq!(invalid_utf8.code, "invalid_json");
    }
}
