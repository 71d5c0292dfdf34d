//! `/api/v1/transport`: the SMTP relay or email provider the workspace sends with (passwords
//! and API keys are write-only),
//! and a test send that reports the relay's answer.

use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::delivery::email::EmailState;
use crate::delivery::email::providers::ProviderConfig;
use crate::delivery::email::service::{self, TestResult, TransportDto};
use crate::delivery::email::transport::SmtpConfig;
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ErrorBody};

/// The relay's settings and, optionally, its password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PutTransport {
    #[serde(flatten)]
    smtp: SmtpConfig,
    /// Write-only. Absent: keep the stored one; `null`: remove it.
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>)]
    password: Option<Option<String>>,
}

/// An email provider's settings (`kind`: `ses`, `postmark` or `resend`) and its write-only
/// credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PutProvider {
    #[serde(flatten)]
    provider: ProviderConfig,
    /// Write-only: SES's secret access key, Postmark's server token or Resend's API key.
    /// Absent: keep the stored one; `null`: remove it.
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>)]
    api_key: Option<Option<String>>,
    /// Write-only: Postmark's Basic auth password for the notification URL, or Resend's
    /// webhook signing secret (`whsec_…`). Absent: keep the stored one; `null`: remove it.
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>)]
    webhook_secret: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSend {
    /// Where the test message goes.
    #[schema(example = "you@example.com")]
    to: String,
    /// The sender; a verified domain's address signs the message with its DKIM key.
    #[schema(example = "news@mail.example.com")]
    from: String,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    EmailState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(get_transport, put_transport, delete_transport))
        .routes(routes!(test_transport))
        .routes(routes!(put_provider))
}

/// The transport the workspace sends with.
#[utoipa::path(get, path = "/transport", tag = "transport", responses((status = 200, body = TransportDto)))]
async fn get_transport(State(state): State<EmailState>, Auth(principal): Auth) -> Result<Json<TransportDto>, ApiError> {
    Ok(Json(service::transport(&state, principal.workspace_id).await?))
}

/// Set the workspace's SMTP relay. Queued messages go through it from now on.
#[utoipa::path(
    put,
    path = "/transport",
    tag = "transport",
    request_body = PutTransport,
    responses((status = 200, body = TransportDto), (status = 400, body = ErrorBody))
)]
async fn put_transport(
    State(state): State<EmailState>,
    Auth(principal): Auth,
    crate::web::error::ApiJson(body): crate::web::error::ApiJson<PutTransport>,
) -> Result<Json<TransportDto>, ApiError> {
    let workspace = principal.workspace_id;
    service::set_transport(&state, workspace, body.smtp, body.password).await?;
    Ok(Json(service::transport(&state, workspace).await?))
}

/// Send through an email provider's API (Amazon SES v2, Postmark or Resend) instead of SMTP.
/// The answer's `events_url` is where the provider is to post its notifications.
#[utoipa::path(
    put,
    path = "/transport/provider",
    tag = "transport",
    request_body = PutProvider,
    responses((status = 200, body = TransportDto), (status = 400, body = ErrorBody))
)]
async fn put_provider(
    State(state): State<EmailState>,
    Auth(principal): Auth,
    crate::web::error::ApiJson(body): crate::web::error::ApiJson<PutProvider>,
) -> Result<Json<TransportDto>, ApiError> {
    let workspace = principal.workspace_id;
    service::set_provider(&state, workspace, body.provider, body.api_key, body.webhook_secret).await?;
    Ok(Json(service::transport(&state, workspace).await?))
}

/// Remove the workspace's relay: it sends through the node's relay, or to the outbox.
#[utoipa::path(delete, path = "/transport", tag = "transport", responses((status = 204)))]
async fn delete_transport(State(state): State<EmailState>, Auth(principal): Auth) -> Result<StatusCode, ApiError> {
    service::remove_transport(&state, principal.workspace_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test message through the workspace's relay and report its answer.
#[utoipa::path(
    post,
    path = "/transport/test",
    tag = "transport",
    request_body = TestSend,
    responses((status = 200, body = TestResult), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody))
)]
async fn test_transport(
    State(state): State<EmailState>,
    Auth(principal): Auth,
    crate::web::error::ApiJson(body): crate::web::error::ApiJson<TestSend>,
) -> Result<Json<TestResult>, ApiError> {
    Ok(Json(service::test_send(&state, principal.workspace_id, &body.to, &body.from).await?))
}
