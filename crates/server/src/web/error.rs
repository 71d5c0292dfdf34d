//! The API's one error shape, `{"error": {"code", "message", "field"}}`, and the mapping of
//! every failure onto it. Codes are stable snake_case strings clients may match on; messages
//! are for people and may change.

use std::marker::PhantomData;

use axum::Json;
use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::extract::rejection::{JsonRejection, MissingJsonContentType, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_domain::number;
use herald_store::StoreError;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// An error answered by the API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `not_found`, `validation_failed`, `invalid_json`, ...
    #[schema(example = "validation_failed")]
    pub code: &'static str,
    /// What went wrong, for people.
    #[schema(example = "must not be empty")]
    pub message: String,
    /// The request field at fault, when there is one (a JSON path such as `name`).
    #[schema(example = "name")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }

    /// A field of the request that failed validation.
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "validation_failed",
            message: format!("{field}: {reason}"),
            field: Some(field.to_owned()),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, field: self.field } };
        let mut response = (self.status, Json(body)).into_response();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { entity } => ApiError::not_found(entity),
            StoreError::Conflict { constraint } => ApiError {
                status: StatusCode::CONFLICT,
                code: "conflict",
                message: format!("conflicts with an existing record ({constraint})"),
                field: conflict_field(&constraint).map(str::to_owned),
            },
            StoreError::OverLimit(e) => ApiError::invalid(&e.field(), &e.reason),
            StoreError::Busy(_) => {
                tracing::warn!(error = %error_chain(&err), "database busy");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "the database is busy; try again shortly")
            }
            StoreError::LeaseLost | StoreError::Corrupt(_) | StoreError::Other(_) => {
                // Logged once, here at the boundary, with its cause chain.
                tracing::error!(error = %error_chain(&err), "store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server log has details",
                )
            }
        }
    }
}

/// The request field a unique constraint guards (`workspaces_name` → `name`).
fn conflict_field(constraint: &str) -> Option<&'static str> {
    match constraint {
        "workspaces_name" | "domains_name" | "actions_name" | "topics_name" | "templates_kind_name" => Some("name"),
        _ => None,
    }
}

/// An error and its causes on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("malformed JSON: {}", innermost(&e)))
            }
            JsonRejection::JsonDataError(e) => {
                let detail = innermost(&e);
                let field = detail
                    .split_once(": ")
                    .map(|(path, _)| path.to_owned())
                    .filter(|p| !p.contains(' '))
                    .or_else(|| detail.contains(OBJECT_EXPECTED).then(|| "body".to_owned()));
                ApiError {
                    status: StatusCode::BAD_REQUEST,
                    code: "validation_failed",
                    message: format!("the JSON does not fit: {detail}"),
                    field,
                }
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than this endpoint accepts",
            ),
            JsonRejection::BytesRejection(e) => ApiError::new(e.status(), "unreadable_body", e.body_text()),
            other => ApiError::new(other.status(), "bad_request", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", format!("bad query string: {}", innermost(&rejection)))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", rejection.body_text())
    }
}

/// The deepest cause's message: serde's, which names the position or field.
fn innermost(err: &dyn std::error::Error) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// `Json` whose rejections answer in the API's error shape, and which refuses, naming the
/// field, a number it could not keep as written (an integer beyond 64 bits, a number beyond a
/// 64-bit float) rather than storing a rounded one. It takes only a JSON object: every request
/// body of this API is one.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let essence = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
            .unwrap_or_default();
        let is_json =
            essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"));
        if !is_json {
            return Err(JsonRejection::from(MissingJsonContentType::default()).into());
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|e| ApiError::from(JsonRejection::from(e)))?;
        let unkept = |bytes: &[u8]| {
            number::first_unkept(bytes).map(|n| {
                let field = if n.path.is_empty() { "body" } else { n.path.as_str() };
                ApiError::invalid(field, n.reason)
            })
        };
        match axum::Json::<JsonObject<T>>::from_bytes(&bytes) {
            // Parsed first, so that malformed JSON is reported as such.
            Ok(axum::Json(JsonObject(value))) => unkept(&bytes).map_or(Ok(ApiJson(value)), Err),
            Err(JsonRejection::JsonSyntaxError(e)) if innermost(&e).contains("number out of range") => {
                Err(unkept(&bytes).unwrap_or_else(|| JsonRejection::JsonSyntaxError(e).into()))
            }
            Err(rejection) => Err(rejection.into()),
        }
    }
}

/// What a body that is not a JSON object is told it should have been; its error names the
/// field `body`.
const OBJECT_EXPECTED: &str = "a JSON object as the request body";

/// A value that must come as a JSON object. serde's derived structs also accept a JSON array
/// (their fields by position), so `[]` would pass as a struct whose fields all have
/// defaults, and `["Website", "generic"]` as one with two fields: refused here instead.
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(OBJECT_EXPECTED)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer.deserialize_map(ObjectOnly(PhantomData)).map(JsonObject)
    }
}

/// `Query` whose rejections answer in the API's error shape.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Answered for any unknown path under the API.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint; see /api/v1/openapi.json")
}

/// Answered when the path exists but not with this method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not accept that method")
}
