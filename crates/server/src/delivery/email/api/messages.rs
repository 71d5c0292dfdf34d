//! `/api/v1/messages`: every email a campaign step produced, newest first.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use herald_domain::{BounceKind, CampaignId, ContactId, JourneyId, Message, MessageId, MessageStatus, Timestamp};
use herald_store::campaign::MessageFilter;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::delivery::email::{EmailState, service};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiQuery, ErrorBody};
use crate::web::list::{List, ListParams};

/// A message as listed: without its bodies.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageSummary {
    #[schema(value_type = String)]
    id: MessageId,
    /// The campaign and journey whose step made it; null for a transactional send.
    #[schema(value_type = Option<String>)]
    campaign_id: Option<CampaignId>,
    #[schema(value_type = Option<String>)]
    journey_id: Option<JourneyId>,
    step: String,
    #[schema(value_type = String)]
    contact_id: ContactId,
    /// `queued`, `sent`, `failed`, `suppressed`, `held` or `bounced`. `bounced`: the receiving
    /// side refused the address for good (a hard bounce; the address is now suppressed).
    /// `failed`: the relay refused it for another reason, its retries ran out (a soft bounce),
    /// or the step's templates could not be rendered (then nothing was sent and the parts from
    /// the failing one on are empty).
    #[schema(value_type = String)]
    status: MessageStatus,
    /// Why it failed, was suppressed or is held, in words. A render failure names the part:
    /// `subject: …`, `html: …` or `text: …`.
    status_reason: Option<String>,
    to: String,
    from: String,
    subject: String,
    /// `outbox` (the embedded transport: no SMTP relay configured), `smtp`, or `none` (suppressed
    /// when the step ran, or `failed` because its templates could not be rendered: nothing was
    /// handed over).
    transport: String,
    /// The `Message-ID` header, the same on every delivery attempt.
    internet_message_id: String,
    /// Hand-overs to the relay so far.
    attempts: u32,
    /// The relay's last reply, e.g. `250 2.0.0 Ok: queued as 4BX2Lk` or `550 5.1.1 No such user`.
    reply: Option<String>,
    /// `hard` (status `bounced`) or `soft` (status `failed` after 72 hours of deferrals), when
    /// the message bounced.
    #[schema(value_type = Option<String>)]
    bounce: Option<BounceKind>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    sent_at: Option<Timestamp>,
}

/// A whole message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageDto {
    #[serde(flatten)]
    summary: MessageSummary,
    reply_to: Option<String>,
    html: String,
    text: String,
    #[schema(value_type = Object)]
    headers: Map<String, Value>,
    /// What rendering noticed: missing variables and the like.
    warnings: Vec<String>,
}

fn summary(m: &Message) -> MessageSummary {
    MessageSummary {
        id: m.id,
        campaign_id: m.campaign_id,
        journey_id: m.journey_id,
        step: m.step.clone(),
        contact_id: m.contact_id,
        status: m.status,
        status_reason: m.status_reason.clone(),
        to: m.to.clone(),
        from: m.from.clone(),
        subject: m.subject.clone(),
        transport: m.transport.clone(),
        internet_message_id: m.internet_message_id.clone(),
        attempts: m.attempts,
        reply: m.reply.clone(),
        bounce: m.bounce,
        created_at: m.created_at,
        sent_at: m.sent_at,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only this contact's messages.
    pub contact_id: Option<String>,
    /// Only this campaign's messages.
    pub campaign_id: Option<String>,
    /// Only messages in this status.
    pub status: Option<String>,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    EmailState: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(list_messages)).routes(routes!(get_message)).routes(routes!(resend_message))
}

/// List messages, newest first.
#[utoipa::path(get, path = "/messages", tag = "messages", params(MessageParams),
    responses((status = 200, body = List<MessageSummary>), (status = 400, body = ErrorBody)))]
async fn list_messages(
    State(state): State<EmailState>,
    Auth(p): Auth,
    ApiQuery(params): ApiQuery<MessageParams>,
) -> Result<Json<List<MessageSummary>>, ApiError> {
    let page = ListParams { limit: params.limit, cursor: params.cursor }.page()?;
    let filter = MessageFilter {
        contact: params.contact_id.map(|c| c.parse()).transpose().map_err(|e| ApiError::invalid("contact_id", e))?,
        campaign: params.campaign_id.map(|c| c.parse()).transpose().map_err(|e| ApiError::invalid("campaign_id", e))?,
        status: params.status.map(|s| s.parse()).transpose().map_err(|e: String| ApiError::invalid("status", e))?,
    };
    let page = state.store.list_messages(p.workspace_id, &filter, page).await?;
    Ok(Json(List::from_page(page, |m| summary(&m))))
}

/// One message with its rendered bodies and headers.
#[utoipa::path(get, path = "/messages/{id}", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = MessageDto), (status = 404, body = ErrorBody)))]
async fn get_message(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<MessageDto>, ApiError> {
    let id: MessageId = id.parse().map_err(|e| ApiError::invalid("id", e))?;
    let m = state.store.get_message(p.workspace_id, id).await?;
    Ok(Json(MessageDto {
        summary: summary(&m),
        reply_to: m.reply_to,
        html: m.html,
        text: m.text,
        headers: m.headers,
        warnings: m.warnings,
    }))
}

/// Send a message again: a copy with a new id and `Message-ID` is queued for delivery, the
/// suppression list and the transport checked anew when it goes; the original stays as it
/// was. Refused (409) while the message itself is still queued or held (`message_pending`),
/// and for a message whose templates failed to render (`message_not_rendered`): there is
/// nothing to send; fix the step and let the journey run it again.
#[utoipa::path(post, path = "/messages/{id}/resend", tag = "messages", params(("id" = String, Path)),
    responses((status = 201, body = MessageSummary), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resend_message(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<MessageSummary>), ApiError> {
    let id: MessageId = id.parse().map_err(|e| ApiError::invalid("id", e))?;
    let copy = service::resend(&state, p.workspace_id, id).await?;
    Ok((StatusCode::CREATED, Json(summary(&copy))))
}
