//! The secret URL on which providers post their delivery, bounce and complaint notifications:
//! `POST /email-events/{provider}/{token}`. Three gates in order: the token (an HMAC of the
//! workspace and the provider, checked in constant time), a capped body, and the provider's own
//! proof (Postmark's Basic auth, Resend's Standard Webhooks signature, SNS's certificate
//! signature). A notification that fails a gate is refused with 401 and logged without
//! secrets; one that passes becomes an activity of its message through
//! [`Email::record_activity`], where a repeat (the same provider event id) changes nothing.
//!
//! A message the notification does not name in this workspace is answered 200 all the same:
//! providers retry any other answer, and no retry would find it.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use herald_domain::{Activity, ActivityKind, BounceKind, MessageId, Timestamp, WorkspaceId};
use herald_store::StoreError;
use herald_webhook::sign::{SigningKey, verify_standard};
use serde_json::{Value, json};

use super::notices::{self, Notice, NoticeKind, Refused};
use super::{ProviderKind, sns, token};
use crate::delivery::email::activity::Recorded;
use crate::delivery::email::transport::Transport;
use crate::delivery::email::{Email, EmailState};
use crate::web::error::ApiError;

/// The largest notification read: SNS carries messages of up to 256 KiB, escaped once more as
/// the `Message` string; Postmark's and Resend's are a few KiB.
pub const BODY_LIMIT: usize = 512 * 1024;

/// How far a Resend signature's timestamp may be from now (Standard Webhooks' tolerance).
const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The notification URL (public: authenticated by its token and the provider's proof).
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    EmailState: FromRef<S>,
{
    Router::new().route("/email-events/{provider}/{token}", post(receive))
}

/// Receives one notification.
async fn receive(
    State(state): State<EmailState>,
    Path((provider, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(kind) = ProviderKind::parse(&provider) else {
        return unauthorized(None, &provider, "no such provider");
    };
    let workspace = match workspace(&state.email, &token, kind).await {
        Ok(Some(workspace)) => workspace,
        Ok(None) => return unauthorized(None, &provider, "the URL's token does not verify"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        tracing::warn!(workspace = %workspace, provider, limit = BODY_LIMIT, "provider notification too large");
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than this endpoint accepts ({BODY_LIMIT} bytes)"),
        )
        .into_response();
    };
    let notice = match kind {
        ProviderKind::Postmark => postmark(&state.email, workspace, &headers, &body).await,
        ProviderKind::Resend => resend(&state.email, workspace, &headers, &body).await,
        ProviderKind::Ses => sns::receive(&state.email, workspace, &body).await,
    };
    let outcome = match notice {
        Ok(Some(notice)) => record(&state.email, workspace, kind, notice).await,
        Ok(None) => Ok("ignored"),
        Err(refused) => Err(refused),
    };
    match outcome {
        Ok(status) => Json(json!({ "status": status })).into_response(),
        Err(Refused::Unverified(reason)) => unauthorized(Some(workspace), &provider, &reason),
        Err(Refused::Malformed(reason)) => {
            tracing::warn!(workspace = %workspace, provider, reason, "provider notification unreadable");
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_notification", reason).into_response()
        }
        Err(Refused::Failed(error)) => error.into_response(),
        Err(Refused::Store(e)) => ApiError::from(e).into_response(),
    }
}

/// The 401 answer, logged with the reason (never the token, the body or a credential).
fn unauthorized(workspace: Option<WorkspaceId>, provider: &str, reason: &str) -> Response {
    let workspace = workspace.map(|w| w.to_string()).unwrap_or_default();
    tracing::warn!(workspace, provider, reason, "provider notification refused");
    let mut response =
        ApiError::unauthorized("the notification is not signed by the provider this URL is for").into_response();
    response.headers_mut().remove(header::WWW_AUTHENTICATE);
    response
}

/// The workspace whose token this is for `provider`, if it is one.
async fn workspace(email: &Email, token: &str, provider: ProviderKind) -> Result<Option<WorkspaceId>, StoreError> {
    let Some(workspace) = token::claimed_workspace(token) else { return Ok(None) };
    let secret = match email.secret(workspace).await {
        Ok(secret) => secret,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(token::verify(token, &secret, workspace, provider).then_some(workspace))
}

/// The webhook secret stored with the workspace's `provider` transport, if that is its
/// transport and the secret is set.
async fn webhook_secret(email: &Email, workspace: WorkspaceId, provider: ProviderKind) -> Result<String, Refused> {
    match email.transport(workspace).await? {
        Transport::Provider(p) if p.config.kind() == provider => p
            .secrets
            .webhook_secret
            .clone()
            .ok_or_else(|| Refused::Unverified(format!("no webhook secret is stored for {}", provider.as_str()))),
        _ => Err(Refused::Unverified(format!("the workspace does not send with {}", provider.as_str()))),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn json_body(body: &[u8]) -> Result<Value, Refused> {
    serde_json::from_slice(body).map_err(|e| Refused::Malformed(format!("the body is not JSON: {e}")))
}

/// Postmark: Basic auth with the workspace's webhook secret as the password.
async fn postmark(
    email: &Email,
    workspace: WorkspaceId,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Notice>, Refused> {
    let password = webhook_secret(email, workspace, ProviderKind::Postmark).await?;
    if !notices::postmark_authorized(header(headers, "authorization"), &password) {
        return Err(Refused::Unverified("missing or wrong Basic auth".into()));
    }
    Ok(notices::postmark(&json_body(body)?))
}

/// Resend: a Standard Webhooks signature (`svix-*` headers, or `webhook-*`) under the
/// workspace's `whsec_` secret, signed within [`SIGNATURE_TOLERANCE`] of now.
async fn resend(
    email: &Email,
    workspace: WorkspaceId,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Notice>, Refused> {
    let secret = webhook_secret(email, workspace, ProviderKind::Resend).await?;
    let key = SigningKey::parse_standard(&secret)
        .map_err(|_| Refused::Unverified("the stored webhook secret is not a whsec_ secret".into()))?;
    let named =
        |name: &str| header(headers, &format!("svix-{name}")).or_else(|| header(headers, &format!("webhook-{name}")));
    let (Some(id), Some(timestamp), Some(signature)) = (named("id"), named("timestamp"), named("signature")) else {
        return Err(Refused::Unverified("unsigned (no svix-id, svix-timestamp and svix-signature)".into()));
    };
    let signed_at = timestamp.parse::<i64>().map_err(|_| Refused::Unverified("unreadable timestamp".into()))?;
    let now = email.clock.now().unix_millis() / 1000;
    if signed_at.abs_diff(now) > SIGNATURE_TOLERANCE.as_secs() {
        return Err(Refused::Unverified(format!("signed {}s away from now", signed_at.abs_diff(now))));
    }
    if !verify_standard(&key, id, timestamp, body, signature) {
        return Err(Refused::Unverified("the signature does not verify".into()));
    }
    Ok(notices::resend(&json_body(body)?, id))
}

/// Records a notice as an activity of the message it names in `workspace`: by the Herald id
/// the send carried, else by our `Message-ID` when that message is in this workspace.
async fn record(
    email: &Email,
    workspace: WorkspaceId,
    kind: ProviderKind,
    notice: Notice,
) -> Result<&'static str, Refused> {
    let tagged = notice.herald_id.as_deref().and_then(|id| id.parse::<MessageId>().ok());
    let message = match (tagged, notice.internet_id.as_deref()) {
        (Some(id), _) => Some(id),
        (None, Some(internet_id)) => {
            email.message_by_internet_id(internet_id).await?.filter(|(ws, _)| *ws == workspace).map(|(_, id)| id)
        }
        (None, None) => None,
    };
    let Some(message) = message else {
        tracing::info!(workspace = %workspace, provider = kind.as_str(), key = notice.key, "notification names no message of the workspace");
        return Ok("unknown_message");
    };
    let occurred_at = notice.occurred_at.map_or_else(|| email.clock.now(), Timestamp::from_offset_date_time);
    let (activity_kind, bounce) = match notice.kind {
        NoticeKind::Delivered => (ActivityKind::Delivered, None),
        NoticeKind::Bounced { hard } => {
            (ActivityKind::Bounced, Some(if hard { BounceKind::Hard } else { BounceKind::Soft }))
        }
        NoticeKind::Complained => (ActivityKind::Complained, None),
    };
    let mut activity = Activity::new(message, activity_kind, kind.as_str(), occurred_at);
    activity.bounce = bounce;
    activity.reason = notice.reason;
    activity.key = Some(notice.key);
    let status = match email.record_activity(workspace, activity).await? {
        Recorded::Applied => "applied",
        Recorded::Duplicate => "duplicate",
        Recorded::UnknownMessage => "unknown_message",
    };
    tracing::info!(workspace = %workspace, provider = kind.as_str(), message = %message, status, "provider notification");
    Ok(status)
}
