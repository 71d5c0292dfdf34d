//! `/api/v1/webhook-deliveries`: every outbound webhook call with its attempts; and
//! `/api/v1/webhook-signing-key`: the keys that sign them (rotation shows the new secret once).

use axum::Json;
use axum::extract::{FromRef, Path, State};
use herald_domain::{
    CampaignId, CampaignWebhookId, ContactId, JourneyId, Timestamp, WebhookAttempt, WebhookDelivery, WebhookDeliveryId,
    WebhookStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::delivery::webhooks::WebhooksState;
use crate::delivery::webhooks::service::{self, DeliveryParams, RotatedKey};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::web::list::List;

/// One outbound call.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    #[schema(value_type = String, example = "whd_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: WebhookDeliveryId,
    #[schema(value_type = Option<String>)]
    journey_id: Option<JourneyId>,
    #[schema(value_type = Option<String>)]
    campaign_id: Option<CampaignId>,
    #[schema(value_type = Option<String>)]
    contact_id: Option<ContactId>,
    /// The campaign step that made the call.
    step: Option<String>,
    /// The campaign event webhook that made the call.
    #[schema(value_type = Option<String>)]
    campaign_webhook_id: Option<CampaignWebhookId>,
    /// Sent as `Idempotency-Key` and `webhook-id`, the same on every attempt.
    idempotency_key: String,
    endpoint: String,
    /// `pending`, `succeeded`, `failed` (refused for good, or its request could not be
    /// rendered: then no request was made, and `last_error` says which part failed and why) or
    /// `exhausted` (every retry failed).
    #[schema(value_type = String)]
    status: WebhookStatus,
    /// How many attempts were made so far (`GET /webhook-deliveries/{id}` lists them as
    /// `attempts`).
    attempt_count: u32,
    last_status: Option<u16>,
    last_error: Option<String>,
    /// The request as rendered (secret-looking header values masked); of a request that could
    /// not be rendered, only `method` and `url` (`null` unless the URL rendered).
    #[schema(value_type = Object)]
    request: Value,
    /// The response of the successful attempt (parsed JSON or text); `null` until one
    /// succeeds or when the response is not kept.
    #[schema(value_type = Value)]
    response: Value,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    finished_at: Option<Timestamp>,
}

impl From<WebhookDelivery> for DeliveryDto {
    fn from(d: WebhookDelivery) -> Self {
        Self {
            id: d.id,
            journey_id: d.journey_id,
            campaign_id: d.campaign_id,
            contact_id: d.contact_id,
            step: d.step,
            campaign_webhook_id: d.campaign_webhook_id,
            idempotency_key: d.idempotency_key,
            endpoint: d.endpoint,
            status: d.status,
            attempt_count: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            request: d.request,
            response: d.response,
            created_at: d.created_at,
            finished_at: d.finished_at,
        }
    }
}

/// A call with every attempt: request line, headers (secrets masked), status, latency,
/// response body (when the step keeps it) and error.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryWithAttempts {
    #[serde(flatten)]
    delivery: DeliveryDto,
    /// Every attempt, oldest first.
    attempts: Vec<AttemptDto>,
}

/// One attempt of a call.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptDto {
    /// 1 for the first attempt.
    number: u32,
    #[schema(value_type = String, format = DateTime)]
    at: Timestamp,
    /// `POST https://example.com/hook`.
    request_line: String,
    /// Header names to values, with secrets (`Authorization`, signatures) masked.
    #[schema(value_type = Object)]
    request_headers: Value,
    /// The HTTP status answered; `null` when no response came.
    status: Option<u16>,
    latency_ms: u64,
    /// Kept when the step asks for it, at most 64 KiB.
    response_body: Option<String>,
    /// Why the attempt failed without a response (timeout, refused address, ...).
    error: Option<String>,
}

impl From<WebhookAttempt> for AttemptDto {
    fn from(a: WebhookAttempt) -> Self {
        Self {
            number: a.number,
            at: a.at,
            request_line: a.request_line,
            request_headers: a.request_headers,
            status: a.status,
            latency_ms: a.latency_ms,
            response_body: a.response_body,
            error: a.error,
        }
    }
}

/// The signing keys, without their secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyDto {
    id: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// When it stops signing (set on the older key during a rotation's overlap).
    #[schema(value_type = Option<String>, format = DateTime)]
    retires_at: Option<Timestamp>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// Seconds the previous key keeps signing beside the new one (default 86400; 0 ends it now).
    #[serde(default)]
    overlap_secs: Option<u64>,
}

/// Which finished calls to send again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkResend {
    /// `failed`, `exhausted` or `succeeded`; default `failed`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "failed")]
    status: Option<String>,
    /// Calls finished at or after this instant (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    from: Timestamp,
    /// Calls finished before this instant.
    #[schema(value_type = String, format = DateTime)]
    to: Timestamp,
}

/// The calls queued again.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resent {
    #[schema(value_type = Vec<String>)]
    resent: Vec<WebhookDeliveryId>,
}

/// Most calls one bulk resend queues.
const BULK_RESEND_LIMIT: u32 = 10_000;

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    WebhooksState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(resend_delivery))
        .routes(routes!(resend_deliveries))
        .routes(routes!(list_signing_keys))
        .routes(routes!(rotate_signing_key))
}

/// List webhook calls, newest first.
#[utoipa::path(
    get,
    path = "/webhook-deliveries",
    tag = "webhooks",
    params(DeliveryParams),
    responses((status = 200, body = List<DeliveryDto>), (status = 400, body = ErrorBody))
)]
async fn list_deliveries(
    State(state): State<WebhooksState>,
    Auth(principal): Auth,
    ApiQuery(mut params): ApiQuery<DeliveryParams>,
) -> Result<Json<List<DeliveryDto>>, ApiError> {
    let paging = crate::web::list::ListParams { limit: params.limit.take(), cursor: params.cursor.take() };
    let filter = service::delivery_filter(&state, principal.workspace_id, params).await?;
    let page = state.store.list_deliveries(principal.workspace_id, &filter, paging.page()?).await?;
    Ok(Json(List::from_page(page, DeliveryDto::from)))
}

/// One webhook call with every attempt.
#[utoipa::path(
    get,
    path = "/webhook-deliveries/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "Delivery id (`whd_…`)")),
    responses((status = 200, body = DeliveryWithAttempts), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn get_delivery(
    State(state): State<WebhooksState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<DeliveryWithAttempts>, ApiError> {
    let id: WebhookDeliveryId = id.parse().map_err(|e| ApiError::invalid("id", e))?;
    let (delivery, attempts) = state.store.get_delivery(principal.workspace_id, id).await?;
    Ok(Json(DeliveryWithAttempts {
        delivery: delivery.into(),
        attempts: attempts.into_iter().map(AttemptDto::from).collect(),
    }))
}

/// Send a finished call again (same request, same idempotency key, signed afresh). Its
/// journey has moved on and is not affected.
#[utoipa::path(
    post,
    path = "/webhook-deliveries/{id}/resend",
    tag = "webhooks",
    params(("id" = String, Path, description = "Delivery id (`whd_…`)")),
    responses((status = 200, body = Resent), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody))
)]
async fn resend_delivery(
    State(state): State<WebhooksState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<Resent>, ApiError> {
    let id: WebhookDeliveryId = id.parse().map_err(|e| ApiError::invalid("id", e))?;
    Ok(Json(Resent { resent: service::resend(&state, principal.workspace_id, id).await? }))
}

/// Send again every call of a status that finished in a time range (at most 10,000).
#[utoipa::path(
    post,
    path = "/webhook-deliveries/resend",
    tag = "webhooks",
    request_body = BulkResend,
    responses((status = 200, body = Resent), (status = 400, body = ErrorBody))
)]
async fn resend_deliveries(
    State(state): State<WebhooksState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<BulkResend>,
) -> Result<Json<Resent>, ApiError> {
    let status = match body.status.as_deref().unwrap_or("failed") {
        "pending" => return Err(ApiError::invalid("status", "pending calls are being delivered already")),
        other => other.parse::<WebhookStatus>().map_err(|e| ApiError::invalid("status", e))?,
    };
    if body.to <= body.from {
        return Err(ApiError::invalid("to", "must be after from"));
    }
    let now = state.clock.now();
    let resent = state
        .store
        .resend_deliveries(principal.workspace_id, &[], Some(status), body.from, body.to, BULK_RESEND_LIMIT, now)
        .await?;
    Ok(Json(Resent { resent }))
}

/// The keys that sign webhooks now, newest first (secrets are never shown again).
#[utoipa::path(get, path = "/webhook-signing-key", tag = "webhooks", responses((status = 200, body = Vec<SigningKeyDto>)))]
async fn list_signing_keys(
    State(state): State<WebhooksState>,
    Auth(principal): Auth,
) -> Result<Json<Vec<SigningKeyDto>>, ApiError> {
    // Makes the first key if there is none yet.
    state.webhooks.signing_keys(principal.workspace_id).await?;
    let keys = state.store.signing_keys(principal.workspace_id, state.clock.now()).await?;
    Ok(Json(
        keys.into_iter()
            .map(|k| SigningKeyDto { id: k.id, created_at: k.created_at, retires_at: k.retires_at })
            .collect(),
    ))
}

/// Make a new signing key. The previous one keeps signing for the overlap, so receivers can
/// switch without missing a request; the new secret is in this response only.
///
/// Every call is signed twice with it. Standard Webhooks (`webhook-signature`): verify with
/// any Standard Webhooks library given the `whsec_…` secret (its HMAC key is the base64-decoded
/// bytes after `whsec_`). `X-Herald-Signature`: the hex HMAC-SHA256 of
/// `v0:<X-Herald-Timestamp>:<raw body>` keyed with the secret exactly as shown, the whole
/// `whsec_…` string as UTF-8 bytes; comma-separated while two keys sign. In Python:
///
/// ```python
/// expected = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + raw_body, hashlib.sha256).hexdigest()
/// ok = any(hmac.compare_digest(expected, s.strip()) for s in headers["X-Herald-Signature"].split(","))
/// ```
///
/// In Node.js:
///
/// ```js
/// const expected = crypto.createHmac("sha256", secret).update(`v0:${ts}:`).update(rawBody).digest("hex");
/// const ok = headers["x-herald-signature"].split(",").some((s) => crypto.timingSafeEqual(Buffer.from(s.trim()), Buffer.from(expected)));
/// ```
///
/// (`timingSafeEqual` throws on different lengths: compare lengths first in real code.)
/// Refuse timestamps older than a few minutes.
#[utoipa::path(
    post,
    path = "/webhook-signing-key/rotate",
    tag = "webhooks",
    request_body = RotateKey,
    responses((status = 200, body = RotatedKey), (status = 400, body = ErrorBody))
)]
async fn rotate_signing_key(
    State(state): State<WebhooksState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<RotateKey>,
) -> Result<Json<RotatedKey>, ApiError> {
    Ok(Json(service::rotate_key(&state, principal.workspace_id, body.overlap_secs).await?))
}
