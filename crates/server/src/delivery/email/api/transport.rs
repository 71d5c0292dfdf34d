//! `/api/v1/transport`: the SMTP relay the workspace sends with (the password is write-only),
//! and a test send that reports the relay's answer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_domain::{DomainStatus, EmailAddress, MessageId};
use herald_email::message::{EmailError, Mailbox, Outgoing, compose};
use herald_email::smtp::SmtpClient;
use herald_store::email::TransportRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::state::AppState;
use crate::delivery::email::transport::{SmtpConfig, Transport};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ErrorBody};

/// The workspace's transport.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransportDto {
    /// `smtp` or `outbox` (the embedded outbox: messages are stored, not sent).
    #[schema(example = "smtp")]
    pub(crate) kind: &'static str,
    /// `workspace` (set here), `node` (the server's HERALD_SMTP_URL) or `none`.
    #[schema(example = "workspace")]
    pub(crate) source: &'static str,
    /// The relay's settings; `null` for the outbox.
    pub(crate) smtp: Option<SmtpConfig>,
    /// Whether a password is stored (it is never shown).
    pub(crate) password_set: bool,
}

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

/// The relay's answer to a test message.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// The relay accepted the message.
    pub(crate) accepted: bool,
    /// The relay's reply code, when it answered.
    pub(crate) code: Option<u16>,
    /// The relay's reply (e.g. `250 2.0.0 Ok: queued as 4BX2Lk`) or what went wrong.
    pub(crate) reply: String,
    /// `transient` or `permanent` for a refusal; `null` when accepted.
    pub(crate) failure: Option<&'static str>,
    /// Whether the message was DKIM-signed (its From domain is verified).
    pub(crate) signed: bool,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_transport, put_transport, delete_transport)).routes(routes!(test_transport))
}

pub(crate) async fn describe(
    state: &AppState,
    workspace: herald_domain::WorkspaceId,
) -> Result<TransportDto, ApiError> {
    let record = state.store.transport(workspace).await?;
    Ok(match record {
        Some(record) => TransportDto {
            kind: "smtp",
            source: "workspace",
            smtp: serde_json::from_value(record.settings).ok(),
            password_set: record.password.is_some(),
        },
        None => match state.email.transport(workspace).await? {
            Transport::Smtp { config, .. } => {
                TransportDto { kind: "smtp", source: "node", smtp: Some(config), password_set: false }
            }
            Transport::Outbox => TransportDto { kind: "outbox", source: "none", smtp: None, password_set: false },
        },
    })
}

/// The transport the workspace sends with.
#[utoipa::path(get, path = "/transport", tag = "transport", responses((status = 200, body = TransportDto)))]
async fn get_transport(State(state): State<AppState>, Auth(principal): Auth) -> Result<Json<TransportDto>, ApiError> {
    Ok(Json(describe(&state, principal.workspace_id).await?))
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
    State(state): State<AppState>,
    Auth(principal): Auth,
    crate::web::error::ApiJson(body): crate::web::error::ApiJson<PutTransport>,
) -> Result<Json<TransportDto>, ApiError> {
    let workspace = principal.workspace_id;
    set(&state, workspace, body.smtp, body.password).await?;
    Ok(Json(describe(&state, workspace).await?))
}

/// Stores the workspace's relay (the API's and the web UI's one way to). `password`: `None`
/// keeps the stored one, `Some(None)` removes it.
pub(crate) async fn set(
    state: &AppState,
    workspace: herald_domain::WorkspaceId,
    smtp: SmtpConfig,
    password: Option<Option<String>>,
) -> Result<(), ApiError> {
    smtp.validate().map_err(|(field, reason)| ApiError::invalid(field, reason))?;
    let password = match password {
        Some(password) => password,
        None => state.store.transport(workspace).await?.and_then(|t| t.password),
    };
    let settings = serde_json::to_value(&smtp).map_err(|e| ApiError::invalid("smtp", e))?;
    // Refuses settings the client cannot use before storing them.
    SmtpClient::new(&smtp.client_settings(password.as_deref())).map_err(|e| match e {
        EmailError::InvalidSettings { field, reason } => ApiError::invalid(field, reason),
        other => ApiError::invalid("host", other),
    })?;
    let record = TransportRecord { settings, password, updated_at: state.clock.now() };
    state.store.set_transport(workspace, Some(&record)).await?;
    state.email.forget_transport(workspace);
    tracing::info!(workspace = %workspace, host = %smtp.host, "SMTP transport set");
    Ok(())
}

/// Remove the workspace's relay: it sends through the node's relay, or to the outbox.
#[utoipa::path(delete, path = "/transport", tag = "transport", responses((status = 204)))]
async fn delete_transport(State(state): State<AppState>, Auth(principal): Auth) -> Result<StatusCode, ApiError> {
    state.store.set_transport(principal.workspace_id, None).await?;
    state.email.forget_transport(principal.workspace_id);
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
    State(state): State<AppState>,
    Auth(principal): Auth,
    crate::web::error::ApiJson(body): crate::web::error::ApiJson<TestSend>,
) -> Result<Json<TestResult>, ApiError> {
    Ok(Json(test_send(&state, principal.workspace_id, &body.to, &body.from).await?))
}

/// Sends a test message through the workspace's relay (the API's and the web UI's one way
/// to) and reports the relay's answer.
pub(crate) async fn test_send(
    state: &AppState,
    workspace: herald_domain::WorkspaceId,
    to: &str,
    from: &str,
) -> Result<TestResult, ApiError> {
    let to = EmailAddress::parse(to).map_err(|e| ApiError::invalid("to", e))?;
    let from = EmailAddress::parse(from).map_err(|e| ApiError::invalid("from", e))?;
    let Transport::Smtp { client, .. } = state.email.transport(workspace).await? else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_transport",
            "no SMTP transport is configured: PUT /api/v1/transport first (email goes to the outbox)",
        ));
    };
    let now = state.clock.now();
    let domain = herald_store::email::from_domain(from.as_str());
    let signer = match state.store.domain_key(workspace, &domain).await? {
        Some((d, key)) if d.status == DomainStatus::Verified => crate::delivery::email::signer(&d, &key).ok(),
        _ => None,
    };
    let id = MessageId::from_uuid(herald_store::new_uuid(now));
    let outgoing = Outgoing {
        message_id: format!("{id}@{domain}"),
        date: now.to_offset_date_time(),
        from: Mailbox::new(Some("Herald"), from.as_str()),
        to: Mailbox::new(None::<String>, to.as_str()),
        reply_to: None,
        subject: "Herald test message".into(),
        html: "<p>This is a test message from Herald: your SMTP transport works.</p>".into(),
        text: "This is a test message from Herald: your SMTP transport works.".into(),
        unsubscribe: None,
        envelope_from: None,
    };
    let composed =
        compose(&outgoing, signer.as_ref(), now.to_offset_date_time()).map_err(|e| ApiError::invalid("from", e))?;
    let result = match client.send(&composed).await {
        Ok(reply) => TestResult {
            accepted: true,
            code: Some(reply.code),
            reply: reply.to_string(),
            failure: None,
            signed: signer.is_some(),
        },
        Err(failure) => TestResult {
            accepted: false,
            code: failure.code,
            reply: failure.message.clone(),
            failure: Some(if failure.is_permanent() { "permanent" } else { "transient" }),
            signed: signer.is_some(),
        },
    };
    Ok(result)
}
