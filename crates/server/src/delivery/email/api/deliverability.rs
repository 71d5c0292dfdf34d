//! `/api/v1/deliverability`: the workspace's bounce and complaint rates over the last 7 and
//! 30 days, judged against the mailbox providers' bulk-sender limit; and
//! `/api/v1/messages/{id}/activity`: what happened to one message.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use herald_domain::MessageId;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::delivery::email::EmailState;
use crate::delivery::email::numbers::{self as service, Deliverability, MessageActivity};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ErrorBody};

/// The workspace's deliverability over two windows.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliverabilityDto {
    #[schema(value_type = Object)]
    pub last_7_days: Deliverability,
    #[schema(value_type = Object)]
    pub last_30_days: Deliverability,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    EmailState: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(deliverability)).routes(routes!(message_activity))
}

/// Messages sent, bounced and complained about over the last 7 and 30 days, with the rates
/// and the complaint rate's state: `ok`, `warning` above 0.1%, `alarm` from 0.3% (the limit
/// the big mailbox providers set for bulk senders).
#[utoipa::path(get, path = "/deliverability", tag = "suppressions",
    responses((status = 200, body = DeliverabilityDto), (status = 401, body = ErrorBody)))]
async fn deliverability(State(state): State<EmailState>, Auth(p): Auth) -> Result<Json<DeliverabilityDto>, ApiError> {
    let (last_7_days, last_30_days) = service::deliverability(&state, p.workspace_id).await?;
    Ok(Json(DeliverabilityDto { last_7_days, last_30_days }))
}

/// One message's numbers and its activities (sent, delivered, bounced, complained, opened,
/// clicked, unsubscribed), oldest first.
#[utoipa::path(get, path = "/messages/{id}/activity", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn message_activity(
    State(state): State<EmailState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<MessageActivity>, ApiError> {
    let id: MessageId = id.parse().map_err(|e| ApiError::invalid("id", e))?;
    Ok(Json(service::message_activity(&state, p.workspace_id, id).await?))
}
