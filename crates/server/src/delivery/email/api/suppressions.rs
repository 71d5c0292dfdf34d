//! `/api/v1/suppressions`: addresses campaign email never goes to. Unsubscribe links add to
//! it; only an explicit `DELETE` takes an address off again.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use herald_domain::{ContactId, EmailAddress, MessageId, Suppression, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::delivery::email::{EmailState, service};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::web::list::{List, ListParams};
use crate::web::non_blank;

#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionDto {
    #[schema(example = "ada@example.com", min_length = 1)]
    email: String,
    /// The contact the address belonged to when it was suppressed.
    #[schema(value_type = Option<String>)]
    contact_id: Option<ContactId>,
    /// `unsubscribed` (a link or one-click header), `hard_bounce`, `soft_bounce` (three in
    /// seven days), `complaint` (marked as spam), `manual` (this API) or the reason given.
    #[schema(example = "unsubscribed")]
    reason: String,
    detail: Option<String>,
    /// The message whose bounce or complaint put the address here.
    #[schema(value_type = Option<String>)]
    message_id: Option<MessageId>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl From<Suppression> for SuppressionDto {
    fn from(s: Suppression) -> Self {
        Self {
            email: s.email,
            contact_id: s.contact_id,
            reason: s.reason,
            detail: s.detail,
            message_id: s.message_id,
            created_at: s.created_at,
        }
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

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    EmailState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_suppressions, add_suppression))
        .routes(routes!(export_suppressions))
        .routes(routes!(remove_suppression))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionQuery {
    /// Only the addresses containing this text, in any case (`%` and `_` match themselves).
    search: Option<String>,
    /// Items per page, 1–500. Default 50.
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only the addresses containing this text, in any case.
    search: Option<String>,
}

fn address(raw: &str, field: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(raw).map_err(|e| ApiError::invalid(field, e))
}

/// List suppressed addresses in address order.
#[utoipa::path(
    get,
    path = "/suppressions",
    tag = "suppressions",
    params(SuppressionQuery),
    responses((status = 200, body = List<SuppressionDto>), (status = 400, body = ErrorBody))
)]
async fn list_suppressions(
    State(state): State<EmailState>,
    Auth(principal): Auth,
    ApiQuery(q): ApiQuery<SuppressionQuery>,
) -> Result<Json<List<SuppressionDto>>, ApiError> {
    let page = ListParams { limit: q.limit, cursor: q.cursor.clone() }.page()?;
    let page = service::suppressions(&state, principal.workspace_id, non_blank(&q.search), page).await?;
    Ok(Json(List::from_page(page, SuppressionDto::from)))
}

/// The whole list (or the addresses matching `search`) as CSV, in address order: columns
/// `email, reason, detail, contact_id, message_id, created_at`.
#[utoipa::path(
    get,
    path = "/suppressions/export.csv",
    tag = "suppressions",
    params(ExportQuery),
    responses((status = 200, body = String, content_type = "text/csv"), (status = 400, body = ErrorBody))
)]
async fn export_suppressions(
    State(state): State<EmailState>,
    Auth(principal): Auth,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let csv = service::suppressions_csv(&state, principal.workspace_id, non_blank(&q.search)).await?;
    Ok(crate::web::csv_file("suppressions.csv", csv))
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
    State(state): State<EmailState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<CreateSuppression>,
) -> Result<(StatusCode, Json<SuppressionDto>), ApiError> {
    let email = address(&body.email, "email")?;
    let reason = body.reason.unwrap_or_else(|| "manual".to_owned());
    let (stored, created) = service::suppress(&state, principal.workspace_id, &email, reason, body.detail).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(stored.into())))
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
    State(state): State<EmailState>,
    Auth(principal): Auth,
    Path(email): Path<String>,
) -> Result<StatusCode, ApiError> {
    let email = address(&email, "email")?;
    service::unsuppress(&state, principal.workspace_id, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}
