//! `/api/v1/domains`: sending domains. Adding one generates its DKIM key and returns the DNS
//! records to publish; `verify` checks them and says, per record, what DNS answered.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use herald_domain::{DomainId, DomainStatus, SendingDomain, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::delivery::email::{EmailState, service};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ErrorBody};

/// A sending domain. Its DKIM private key never leaves the server.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainDto {
    #[schema(value_type = String, example = "dom_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: DomainId,
    #[schema(example = "mail.example.com")]
    name: String,
    /// The DKIM selector: the key is published at `<selector>._domainkey.<name>`.
    #[schema(example = "herald202611")]
    selector: String,
    /// `rsa` (2048 bits) or `ed25519`.
    #[schema(example = "rsa")]
    algorithm: String,
    /// `pending` (not found yet), `verified` (mail is sent) or `failed` (a required record is
    /// missing or wrong; messages from it are held).
    #[schema(value_type = String, example = "pending")]
    status: DomainStatus,
    /// The DNS records to publish: `purpose` (dkim, spf, dmarc, return_path), `name`,
    /// `record_type` (TXT, CNAME), `value`, `required`.
    #[schema(value_type = Vec<Object>)]
    records: Value,
    /// The last check, per record: `status` (matching, mismatch, missing, error), `found`
    /// (what DNS answered) and `detail` (a sentence saying what to fix).
    #[schema(value_type = Vec<Object>)]
    checks: Value,
    /// Set when a record of a verified domain stopped matching.
    warning: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    checked_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    verified_at: Option<Timestamp>,
}

impl From<SendingDomain> for DomainDto {
    fn from(d: SendingDomain) -> Self {
        Self {
            id: d.id,
            name: d.name,
            selector: d.selector,
            algorithm: d.algorithm,
            status: d.status,
            records: d.records,
            checks: d.checks,
            warning: d.warning,
            created_at: d.created_at,
            checked_at: d.checked_at,
            verified_at: d.verified_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomain {
    /// The domain in From addresses (IDNs are accepted and stored in punycode).
    #[schema(example = "mail.example.com", min_length = 1)]
    name: String,
    /// `rsa` (default; every receiver verifies it) or `ed25519`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "rsa")]
    algorithm: Option<String>,
    /// The DKIM selector; default `herald<year><month>`.
    #[serde(default)]
    selector: Option<String>,
    /// A host for bounces: adds a `bounces.<name>` CNAME record pointing to it.
    #[serde(default)]
    return_path_target: Option<String>,
}

/// A check's result: the domain, and how many held messages its verification released.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifiedDomain {
    #[serde(flatten)]
    domain: DomainDto,
    /// Messages that were held for this domain and are now queued for delivery.
    released: u64,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    EmailState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_domains, create_domain))
        .routes(routes!(get_domain, delete_domain))
        .routes(routes!(verify_domain))
}

fn parse_id(raw: &str) -> Result<DomainId, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

/// List the workspace's sending domains by name.
#[utoipa::path(get, path = "/domains", tag = "domains", responses((status = 200, body = Vec<DomainDto>), (status = 401, body = ErrorBody)))]
async fn list_domains(
    State(state): State<EmailState>,
    Auth(principal): Auth,
) -> Result<Json<Vec<DomainDto>>, ApiError> {
    let domains = state.store.list_domains(principal.workspace_id).await?;
    Ok(Json(domains.into_iter().map(DomainDto::from).collect()))
}

/// Add a sending domain: generates its DKIM key and returns the DNS records to publish. It
/// stays `pending`, and messages from it are held, until `verify` finds the records.
#[utoipa::path(
    post,
    path = "/domains",
    tag = "domains",
    request_body = CreateDomain,
    responses((status = 201, body = DomainDto), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody))
)]
async fn create_domain(
    State(state): State<EmailState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<CreateDomain>,
) -> Result<(StatusCode, Json<DomainDto>), ApiError> {
    let domain = service::add_domain(
        &state,
        principal.workspace_id,
        body.name,
        body.algorithm.as_deref(),
        body.selector,
        body.return_path_target,
    )
    .await?;
    tracing::info!(domain = %domain.name, workspace = %principal.workspace_id, "sending domain added");
    Ok((StatusCode::CREATED, Json(domain.into())))
}

/// Get one sending domain with its records and the last check.
#[utoipa::path(
    get,
    path = "/domains/{id}",
    tag = "domains",
    params(("id" = String, Path, description = "Domain id (`dom_…`)")),
    responses((status = 200, body = DomainDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn get_domain(
    State(state): State<EmailState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<DomainDto>, ApiError> {
    Ok(Json(state.store.get_domain(principal.workspace_id, parse_id(&id)?).await?.into()))
}

/// Delete a sending domain and its key. Messages from it are held until it is added and
/// verified again.
#[utoipa::path(
    delete,
    path = "/domains/{id}",
    tag = "domains",
    params(("id" = String, Path, description = "Domain id (`dom_…`)")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn delete_domain(
    State(state): State<EmailState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_domain(principal.workspace_id, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Check the domain's DNS records now. Verification releases the messages held for it.
#[utoipa::path(
    post,
    path = "/domains/{id}/verify",
    tag = "domains",
    params(("id" = String, Path, description = "Domain id (`dom_…`)")),
    responses((status = 200, body = VerifiedDomain), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn verify_domain(
    State(state): State<EmailState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<VerifiedDomain>, ApiError> {
    let (domain, released) = service::verify_domain(&state, principal.workspace_id, parse_id(&id)?).await?;
    Ok(Json(VerifiedDomain { domain: domain.into(), released }))
}
