//! `/api/v1/suppressions`: addresses campaign email never goes to. Unsubscribe links add to
//! it; only an explicit `DELETE` takes an address off again.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_domain::{ContactId, EmailAddress, Suppression, Timestamp};
use herald_store::ContactFilter;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::state::AppState;
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::web::list::{List, ListParams};

#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionDto {
    #[schema(example = "ada@example.com", min_length = 1)]
    email: String,
    /// The contact the address belonged to when it was suppressed.
    #[schema(value_type = Option<String>)]
    contact_id: Option<ContactId>,
    /// `unsubscribed` (a link or one-click header), `manual` (this API) or the reason given.
    #[schema(example = "unsubscribed")]
    reason: String,
    detail: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl From<Suppression> for SuppressionDto {
    fn from(s: Suppression) -> Self {
        Self { email: s.email, contact_id: s.contact_id, reason: s.reason, detail: s.detail, created_at: s.created_at }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSuppression {
    #[schema(example = "ada@example.com")]
    email: String,
    /// Default `manual`.
    #[serde(default)]
    #[schema(example = "manual")]
    reason: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_suppressions, add_suppression)).routes(routes!(remove_suppression))
}

fn address(raw: &str, field: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(raw).map_err(|e| ApiError::invalid(field, e))
}

/// List suppressed addresses in address order.
#[utoipa::path(
    get,
    path = "/suppressions",
    tag = "suppressions",
    params(ListParams),
    responses((status = 200, body = List<SuppressionDto>), (status = 400, body = ErrorBody))
)]
async fn list_suppressions(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<SuppressionDto>>, ApiError> {
    let page = state.store.list_suppressions(principal.workspace_id, params.page()?).await?;
    Ok(Json(List::from_page(page, SuppressionDto::from)))
}

/// Suppress an address. An address already suppressed keeps its first record (200).
#[utoipa::path(
    post,
    path = "/suppressions",
    tag = "suppressions",
    request_body = CreateSuppression,
    responses((status = 201, body = SuppressionDto), (status = 200, body = SuppressionDto), (status = 400, body = ErrorBody))
)]
async fn add_suppression(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<CreateSuppression>,
) -> Result<(StatusCode, Json<SuppressionDto>), ApiError> {
    let email = address(&body.email, "email")?;
    let reason = body.reason.unwrap_or_else(|| "manual".to_owned());
    let (stored, created) =
        suppress(&state.store, &state.clock, principal.workspace_id, &email, reason, body.detail).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(stored.into())))
}

/// Suppresses an address for the workspace by hand (the API's and the web UI's one way to);
/// returns the record kept and whether it is new (an address already suppressed keeps its
/// first record).
pub(crate) async fn suppress(
    store: &herald_store::SharedStore,
    clock: &crate::clock::SharedClock,
    workspace: herald_domain::WorkspaceId,
    email: &EmailAddress,
    reason: String,
    detail: Option<String>,
) -> Result<(Suppression, bool), ApiError> {
    if reason.trim().is_empty() || reason.len() > 100 {
        return Err(ApiError::invalid("reason", "must be 1–100 characters"));
    }
    if detail.as_ref().is_some_and(|d| d.len() > 1000) {
        return Err(ApiError::invalid("detail", "must be at most 1000 characters"));
    }
    let filter = ContactFilter { email: Some(email.clone()), ..ContactFilter::default() };
    let contact = store.list_contacts(workspace, &filter, herald_domain::PageRequest::first(1)).await?;
    let new = Suppression {
        email: email.as_str().to_owned(),
        contact_id: contact.items.first().map(|c| c.id),
        reason,
        detail,
        created_at: clock.now(),
    };
    // Added by hand, not by the contact: no `contact_unsubscribed` event.
    let stored = store.add_suppression(workspace, &new, &[]).await?;
    let created = stored == new;
    Ok((stored, created))
}

/// Re-subscribe an address: campaign email reaches it again.
#[utoipa::path(
    delete,
    path = "/suppressions/{email}",
    tag = "suppressions",
    params(("email" = String, Path, description = "The suppressed address")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn remove_suppression(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(email): Path<String>,
) -> Result<StatusCode, ApiError> {
    let email = address(&email, "email")?;
    state.store.remove_suppression(principal.workspace_id, email.as_str()).await?;
    tracing::info!(workspace = %principal.workspace_id, "address re-subscribed");
    Ok(StatusCode::NO_CONTENT)
}
