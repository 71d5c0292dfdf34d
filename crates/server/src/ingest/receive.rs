//! The source URL: `/webhooks/inbound/{token}` (GET, POST, PUT) and `/webhooks/inbound/{token}/batch`.
//!
//! A request is answered 200 only after its event is committed. Refusals carry the API's
//! error shape naming the field, and are kept in the source's rejection log. An unknown,
//! rotated or disabled token is a plain 404 that does not say which.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use herald_domain::contact::AttributeError;
use herald_domain::inbound::{InboundEvent, WhenUnmatched, parse_generic, parse_posthog};
use herald_domain::mapping::{CompiledMapping, MappingSpec};
use herald_domain::payload::{self, PayloadError};
use herald_domain::{FieldError, Identity, RequestRecord, Source, SourceKind, SourceToken, Timestamp};
use herald_store::ingest::{IngestRequest, IngestResult};
use herald_store::{Rejection, Sample};
use serde::Serialize;
use serde_json::{Value, json};

use super::IngestState;
use crate::group_commit::CommitError;
use crate::web::error::ApiError;

/// The source URLs: authenticated by the secret in the path, with their own body limit.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    IngestState: FromRef<S>,
{
    Router::new()
        .route("/webhooks/inbound/{token}", get(receive).post(receive).put(receive))
        .route("/webhooks/inbound/{token}/batch", post(receive_batch))
}

/// Most events one batch request may carry.
pub const MAX_BATCH_ITEMS: usize = 1000;
/// How much of a refused body the rejection log keeps.
const REJECTED_BODY_KEPT: usize = 4096;
/// A batch body may be this many times the single-request limit.
const BATCH_BODY_FACTOR: usize = 16;

#[derive(Debug, Serialize)]
struct Accepted {
    status: &'static str,
    event_id: String,
    contact_id: Option<String>,
}

/// The parts of a request every step needs.
struct Inbound {
    source: Arc<Source>,
    method: Method,
    content_type: Option<String>,
    body: Vec<u8>,
    received_at: Timestamp,
}

fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no webhook at this URL").into_response()
}

/// Finds the source, checks its rate and reads the body; `Err` is the response to send.
async fn open(
    state: &IngestState,
    token: &str,
    request: Request<Body>,
    batch: bool,
) -> Result<(Inbound, Option<String>, HeaderMap), Response> {
    let now = state.clock.now();
    let Some(token) = SourceToken::from_path(token) else { return Err(not_found()) };
    let source = match state.sources.lookup(&state.store, &token.hash(), now).await {
        Ok(Some(source)) => source,
        Ok(None) => return Err(not_found()),
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    let (parts, body) = request.into_parts();
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let limit = if batch { state.body_limit * BATCH_BODY_FACTOR } else { state.body_limit };
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes.to_vec(),
        Err(_) => {
            let inbound = Inbound { source, method: parts.method, content_type, body: Vec::new(), received_at: now };
            let error = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than this endpoint accepts ({limit} bytes)"),
            );
            return Err(reject(state, &inbound, error));
        }
    };
    let inbound = Inbound { source, method: parts.method, content_type, body: bytes, received_at: now };
    if let Some(rate) = inbound.source.rate_limit_per_second
        && let Err(wait) = state.limiter.check(inbound.source.id, rate, now)
    {
        let error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("this source accepts {rate} requests per second"),
        );
        let mut response = reject(state, &inbound, error);
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Err(response);
    }
    Ok((inbound, parts.uri.query().map(str::to_owned), parts.headers))
}

/// Logs a refusal in the source's rejection log and turns it into the response.
fn reject(state: &IngestState, inbound: &Inbound, error: ApiError) -> Response {
    state.source_log.rejection(Rejection {
        workspace_id: inbound.source.workspace_id,
        source_id: inbound.source.id,
        received_at: inbound.received_at,
        status: error.status.as_u16(),
        code: error.code.to_owned(),
        reason: error.message.clone(),
        body_prefix: inbound.body[..inbound.body.len().min(REJECTED_BODY_KEPT)].to_vec(),
    });
    metrics::counter!("herald_ingest_rejected_total", "code" => error.code).increment(1);
    error.into_response()
}

fn payload_error(e: PayloadError) -> ApiError {
    let (status, code) = match e {
        PayloadError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
        PayloadError::EmptyBody => (StatusCode::BAD_REQUEST, "empty_body"),
        PayloadError::EmptyQuery => (StatusCode::BAD_REQUEST, "empty_request"),
        PayloadError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        PayloadError::InvalidUtf8 { .. } | PayloadError::UnkeptNumber(_) => {
            let mut error = ApiError::new(StatusCode::BAD_REQUEST, "validation_failed", e.to_string());
            error.field = e.field();
            return error;
        }
    };
    ApiError::new(status, code, e.to_string())
}

fn over_limit(e: &AttributeError) -> ApiError {
    ApiError::invalid(&e.field(), &e.reason)
}

fn field_error(e: FieldError) -> ApiError {
    let field = if e.field.is_empty() { "body".to_owned() } else { e.field };
    ApiError::invalid(&field, e.reason)
}

/// The idempotency key a sender gave: `Idempotency-Key`, else Standard Webhooks' `webhook-id`.
fn header_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    for name in ["idempotency-key", "webhook-id"] {
        if let Some(value) = headers.get(name) {
            let key = value.to_str().map_err(|_| ApiError::invalid(name, "must be visible ASCII"))?.trim();
            if key.is_empty() || key.len() > 255 {
                return Err(ApiError::invalid(name, "must be 1 to 255 characters"));
            }
            return Ok(Some(key.to_owned()));
        }
    }
    Ok(None)
}

/// Turns one payload into an event according to the source's kind. Mapped sources never
/// refuse a payload their mapping cannot read (the sender could not fix it): the event is
/// logged without a contact and the outcome says what failed.
fn interpret(
    state: &IngestState,
    source: &Source,
    payload: &Value,
    received_at: Timestamp,
) -> Result<(InboundEvent, Vec<String>), ApiError> {
    match source.kind {
        SourceKind::Generic => parse_generic(payload).map(|e| (e, Vec::new())).map_err(field_error),
        SourceKind::Posthog => parse_posthog(payload).map(|e| (e, Vec::new())).map_err(field_error),
        SourceKind::Mapped => {
            // Samples are stored as the events are: NUL as U+FFFD on both backends.
            let mut body = payload.clone();
            payload::replace_nul(&mut body);
            let workspace_id = source.workspace_id;
            state.source_log.sample(Sample { workspace_id, source_id: source.id, received_at, body });
            let outcome = saved_mapping(source).and_then(|mapping| {
                mapping.map_body(payload).map_err(|errors| {
                    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    format!("The mapping could not read this request: {}.", list.join("; "))
                })
            });
            match outcome {
                Ok(event) => Ok((event, Vec::new())),
                Err(note) => Ok((unreadable(), vec![note])),
            }
        }
    }
}

/// The source's saved mapping, compiled; `Err` explains, for the event's outcome, why there is
/// none to apply.
fn saved_mapping(source: &Source) -> Result<CompiledMapping, String> {
    let Some(raw) = &source.mapping else {
        return Err("No mapping is defined yet: kept as a sample. \
                    Define a mapping to turn requests into contacts and events."
            .to_owned());
    };
    let invalid = |why: String| format!("The saved mapping is invalid ({why}); fix it in the source settings.");
    let spec: MappingSpec = serde_json::from_value(raw.clone()).map_err(|e| invalid(e.to_string()))?;
    spec.validate().map_err(|errors| invalid(format!("{} mapping errors", errors.len())))
}

/// An event that only records that a request arrived.
fn unreadable() -> InboundEvent {
    InboundEvent {
        identity: Identity::default(),
        name: None,
        properties: serde_json::Map::new(),
        attributes: serde_json::Map::new(),
        attributes_once: serde_json::Map::new(),
        names: Default::default(),
        occurred_at: None,
        dedupe_key: None,
        when_unmatched: WhenUnmatched::Skip,
    }
}

fn ingest_request(
    inbound: &Inbound,
    body: Vec<u8>,
    key: Option<String>,
    event: InboundEvent,
    notes: Vec<String>,
) -> IngestRequest {
    IngestRequest {
        workspace_id: inbound.source.workspace_id,
        source_id: inbound.source.id,
        received_at: inbound.received_at,
        request: RequestRecord { method: inbound.method.to_string(), content_type: inbound.content_type.clone(), body },
        idempotency_key: key.or_else(|| event.dedupe_key.clone()),
        event,
        notes,
    }
}

fn commit_error(e: CommitError) -> ApiError {
    match e {
        CommitError::Store(e) => {
            let mut error =
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the event could not be stored; retry");
            if !e.is_transient() {
                error = ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server log has details",
                );
            }
            error
        }
        CommitError::Closed => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the server is shutting down; retry")
        }
    }
}

fn unmatched() -> ApiError {
    ApiError::invalid("email", "is required: no existing contact matches the userId or phone given")
}

fn accepted(receipt: &herald_store::ingest::Receipt) -> Accepted {
    Accepted {
        status: "accepted",
        event_id: receipt.event_id.to_string(),
        contact_id: receipt.contact_id.map(|c| c.to_string()),
    }
}

/// One event.
pub async fn receive(State(state): State<IngestState>, Path(token): Path<String>, request: Request<Body>) -> Response {
    let (inbound, query, headers) = match open(&state, &token, request, false).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let prepared = payload::payload(
        inbound.method == Method::GET,
        inbound.content_type.as_deref(),
        query.as_deref(),
        &inbound.body,
    )
    .map_err(payload_error)
    .and_then(|payload| interpret(&state, &inbound.source, &payload, inbound.received_at))
    .and_then(|(event, notes)| Ok((event, notes, header_key(&headers)?)));
    let (event, notes, key) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return reject(&state, &inbound, error),
    };
    let request = ingest_request(&inbound, inbound.body.clone(), key, event, notes);
    let started = std::time::Instant::now();
    let result = state.committer.submit(vec![request]).await;
    metrics::histogram!("herald_ingest_commit_seconds").record(started.elapsed().as_secs_f64());
    match result.map(|mut results| results.pop()) {
        Ok(Some(IngestResult::Accepted(receipt) | IngestResult::Replayed(receipt))) => {
            metrics::counter!("herald_ingest_accepted_total").increment(1);
            Json(accepted(&receipt)).into_response()
        }
        Ok(Some(IngestResult::Unmatched)) => reject(&state, &inbound, unmatched()),
        Ok(Some(IngestResult::OverLimit(e))) => reject(&state, &inbound, over_limit(&e)),
        Ok(None) => commit_error(CommitError::Closed).into_response(),
        Err(e) => commit_error(e).into_response(),
    }
}

/// Up to `MAX_BATCH_ITEMS` events as a JSON array, each validated alone.
pub async fn receive_batch(
    State(state): State<IngestState>,
    Path(token): Path<String>,
    request: Request<Body>,
) -> Response {
    let (inbound, _, headers) = match open(&state, &token, request, true).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    if inbound.method != Method::POST {
        return reject(
            &state,
            &inbound,
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "send batches with POST"),
        );
    }
    let items = match payload::parse_json(&inbound.body).map_err(payload_error) {
        Ok(Value::Array(items)) if items.len() <= MAX_BATCH_ITEMS => items,
        Ok(Value::Array(items)) => {
            let error = ApiError::invalid(
                "body",
                format!("holds {} events; a batch takes at most {MAX_BATCH_ITEMS}", items.len()),
            );
            return reject(&state, &inbound, error);
        }
        Ok(_) => return reject(&state, &inbound, ApiError::invalid("body", "must be a JSON array of events")),
        Err(error) => return reject(&state, &inbound, error),
    };
    let key = match header_key(&headers) {
        Ok(key) => key,
        Err(error) => return reject(&state, &inbound, error),
    };
    let mut results: Vec<Value> = vec![Value::Null; items.len()];
    let mut requests = Vec::new();
    let mut positions = Vec::new();
    for (index, item) in items.iter().enumerate() {
        // Each event is held to the single-event limit, measured as the compact JSON it is
        // stored as, so a batch cannot carry what the single-event URL refuses.
        let body = item.to_string().into_bytes();
        if body.len() > state.body_limit {
            results[index] = item_error(index, &event_too_large(state.body_limit, body.len()));
            continue;
        }
        match interpret(&state, &inbound.source, item, inbound.received_at) {
            Ok((event, notes)) => {
                let item_key = key.as_ref().map(|k| format!("{k}:{index}"));
                requests.push(ingest_request(&inbound, body, item_key, event, notes));
                positions.push(index);
            }
            Err(error) => results[index] = item_error(index, &error),
        }
    }
    if !requests.is_empty() {
        match state.committer.submit(requests).await {
            Ok(outcomes) => {
                for (index, outcome) in positions.into_iter().zip(outcomes) {
                    results[index] = match outcome {
                        IngestResult::Accepted(receipt) | IngestResult::Replayed(receipt) => {
                            let mut value = json!(accepted(&receipt));
                            value["index"] = json!(index);
                            value
                        }
                        IngestResult::Unmatched => item_error(index, &unmatched()),
                        IngestResult::OverLimit(e) => item_error(index, &over_limit(&e)),
                    };
                }
            }
            Err(e) => return commit_error(e).into_response(),
        }
    }
    let rejected = results.iter().filter(|r| r["status"] == "rejected").count();
    if rejected > 0 {
        let summary = ApiError::invalid(
            "body",
            format!("{rejected} of {} events refused; see the response for each", items.len()),
        );
        state.source_log.rejection(Rejection {
            workspace_id: inbound.source.workspace_id,
            source_id: inbound.source.id,
            received_at: inbound.received_at,
            status: 200,
            code: "partially_rejected".into(),
            reason: summary.message,
            body_prefix: inbound.body[..inbound.body.len().min(REJECTED_BODY_KEPT)].to_vec(),
        });
    }
    Json(json!({"accepted": results.len() - rejected, "rejected": rejected, "results": results})).into_response()
}

fn event_too_large(limit: usize, size: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("this event is {size} bytes as compact JSON; one event may be at most {limit} bytes"),
    )
}

fn item_error(index: usize, error: &ApiError) -> Value {
    json!({"index": index, "status": "rejected", "error": {"code": error.code, "message": error.message, "field": error.field}})
}
