//! `POST /api/v1/send`: one transactional email to one address, outside any campaign. The
//! message and its delivery job commit in one transaction before the answer, under the
//! caller's `Idempotency-Key`, and the delivery job sends it like campaign mail (relay or
//! provider, retries, bounces). Transactional mail is untracked unless asked, and is refused,
//! not dropped, for a suppressed address.

use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use herald_campaign::SharedEmail;
use herald_campaign::compile::{Mailbox, parse_mailbox};
use herald_domain::{
    Contact, ContactId, DomainStatus, EmailAddress, Identity, Message, MessageId, MessageStatus, PageRequest, Tracking,
    WorkspaceId,
};
use herald_store::email::{delivery_job, from_domain};
use herald_store::send::{SendOutcome, TransactionalSend};
use herald_store::{ContactFilter, NewContact, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EmailState;
use super::transport::Transport;
use crate::templates::TemplatesState;
use crate::templates::service::{as_sent, invalid_template, of_kind, render, variables};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ErrorBody};

/// Longest `Idempotency-Key`, in bytes.
const MAX_KEY: usize = 255;

/// One email to send: a saved template (`template`) or inline `subject` and `html` (and
/// `text`), rendered with the contact's fields and `data.*`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "to": "ada@example.com", "from": "Acme <hello@mail.acme.test>",
    "template": "tpl_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b", "data": {"link": "https://acme.test/reset/abc"}
}))]
pub struct SendBody {
    /// The recipient; the contact with this email is used, or created.
    to: String,
    /// `Name <address>` or an address on a verified sending domain of the workspace.
    from: String,
    reply_to: Option<String>,
    /// A saved template (`tpl_…`), sent inside its layout; or give `subject` and `html`.
    template: Option<String>,
    subject: Option<String>,
    html: Option<String>,
    text: Option<String>,
    /// Variables the template sees under `data.*`.
    #[schema(value_type = Option<Object>)]
    data: Option<Map<String, Value>>,
    /// Add an open pixel; off unless asked.
    #[serde(default)]
    track_opens: bool,
    /// Send links through the click redirect; off unless asked.
    #[serde(default)]
    track_clicks: bool,
}

/// An accepted send.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The message (`msg_…`), found in `GET /api/v1/messages/{id}`.
    #[schema(value_type = String)]
    pub id: MessageId,
    /// `queued` for a relay or provider, `sent` for the embedded outbox.
    #[schema(example = "queued")]
    status: &'static str,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    EmailState: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(send))
}

/// The suppression that refuses `to`, as an error on the field `to` whose code names why.
fn suppressed(reason: &str) -> ApiError {
    let code = match reason {
        "hard_bounce" => "suppressed_hard_bounce",
        "soft_bounce" => "suppressed_soft_bounce",
        "complaint" => "suppressed_complaint",
        _ => "suppressed",
    };
    let message = format!("to: the address is on the suppression list ({reason}); nothing was sent");
    let mut error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
    error.field = Some("to".into());
    error
}

/// The contact with this email, created when there is none.
async fn contact_for(state: &EmailState, workspace: WorkspaceId, to: &EmailAddress) -> Result<Contact, ApiError> {
    let filter = ContactFilter { email: Some(to.clone()), ..ContactFilter::default() };
    let find = || state.store.list_contacts(workspace, &filter, PageRequest::<ContactId>::first(1));
    if let Some(found) = find().await?.items.pop() {
        return Ok(found);
    }
    let new = NewContact {
        identity: Identity { email: Some(to.clone()), user_id: None, phone: None },
        name: None,
        first_name: None,
        last_name: None,
        attributes: Map::new(),
    };
    match state.store.create_contact(workspace, new, state.clock.now()).await {
        Ok(created) => Ok(created),
        // Created by a send at the same moment.
        Err(StoreError::Conflict { .. }) => find().await?.items.pop().ok_or_else(|| ApiError::not_found("contact")),
        Err(e) => Err(e.into()),
    }
}

/// What the body asks to send, its parts compiled.
async fn email_of(state: &EmailState, workspace: WorkspaceId, body: &SendBody) -> Result<SharedEmail, ApiError> {
    let templates = TemplatesState { store: state.store.clone(), clock: state.clock.clone() };
    match &body.template {
        Some(_) if body.subject.is_some() || body.html.is_some() || body.text.is_some() => Err(ApiError::invalid(
            "template",
            "a send with a template takes its subject, html and text from it; leave them out",
        )),
        Some(raw) => {
            let id = raw.parse().map_err(|e| ApiError::invalid("template", e))?;
            let template = of_kind(&templates, workspace, herald_domain::TemplateKind::Template, id)
                .await
                .map_err(|_| ApiError::invalid("template", format!("no template {raw} in this workspace")))?;
            as_sent(&templates, &template).await
        }
        None => {
            let subject = body.subject.clone().filter(|s| !s.trim().is_empty());
            let html = body.html.clone().filter(|h| !h.trim().is_empty());
            let (Some(subject), Some(html)) = (subject, html) else {
                let field =
                    if body.subject.as_deref().is_none_or(|s| s.trim().is_empty()) { "subject" } else { "html" };
                return Err(ApiError::invalid(field, "give a template, or a subject and html"));
            };
            let email = SharedEmail { subject, html, text: body.text.clone() };
            for (field, source) in
                [("subject", Some(&email.subject)), ("html", Some(&email.html)), ("text", email.text.as_ref())]
            {
                if let Some(source) = source {
                    herald_template::Template::compile(source).map_err(|e| invalid_template(field, e))?;
                }
            }
            Ok(email)
        }
    }
}

/// The sender, on a verified sending domain of the workspace.
pub(crate) async fn sender(state: &EmailState, workspace: WorkspaceId, from: &str) -> Result<Mailbox, ApiError> {
    let mailbox = parse_mailbox(from).map_err(|e| ApiError::invalid("from", e))?;
    let domain = from_domain(mailbox.address.as_str());
    match state.store.domain_key(workspace, &domain).await? {
        Some((d, _)) if d.status == DomainStatus::Verified => Ok(mailbox),
        _ => Err(ApiError::invalid("from", format!("{domain} is not a verified sending domain of this workspace"))),
    }
}

/// Renders and stores one send; returns its message id and status.
pub async fn send_email(
    state: &EmailState,
    workspace: WorkspaceId,
    key: Option<&str>,
    body: SendBody,
    fingerprint: &str,
) -> Result<Accepted, ApiError> {
    let to = EmailAddress::parse(body.to.trim()).map_err(|e| ApiError::invalid("to", e))?;
    let from = sender(state, workspace, &body.from).await?;
    let reply_to = body.reply_to.as_deref().map(|r| parse_mailbox(r).map_err(|e| ApiError::invalid("reply_to", e)));
    let reply_to = reply_to.transpose()?;
    let email = email_of(state, workspace, &body).await?;
    if let Some(suppression) = state.store.suppression(workspace, &to.as_str().to_lowercase()).await? {
        return Err(suppressed(&suppression.reason));
    }
    let contact = contact_for(state, workspace, &to).await?;
    let now = state.clock.now();
    let unsubscribe_url = state.email.unsubscribe_url(workspace, contact.id, None).await?;
    let rendered = render(&email, &variables(&contact, body.data.unwrap_or_default(), &unsubscribe_url), now)?;
    let outbox = matches!(state.email.transport(workspace).await?, Transport::Outbox);
    let (status, transport) = if outbox { (MessageStatus::Sent, "outbox") } else { (MessageStatus::Queued, "smtp") };
    let id = MessageId::from_uuid(herald_store::new_uuid(now));
    let message = Message {
        id,
        workspace_id: workspace,
        campaign_id: None,
        journey_id: None,
        step: String::new(),
        contact_id: contact.id,
        status,
        status_reason: None,
        to: to.as_str().to_owned(),
        from: from.to_string(),
        reply_to: reply_to.map(|r| r.to_string()),
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        headers: super::list_headers(&unsubscribe_url, from.address.as_str()),
        warnings: rendered.warnings,
        transport: transport.into(),
        internet_message_id: format!("{id}@{}", from_domain(from.address.as_str())),
        attempts: 0,
        reply: None,
        bounce: None,
        tracking: Tracking { opens: body.track_opens, clicks: body.track_clicks },
        // Transactional mail is about no topic: leaving a topic never stops it.
        topic: None,
        created_at: now,
        sent_at: outbox.then_some(now),
    };
    let job = (status == MessageStatus::Queued).then(|| delivery_job(id, now));
    let send = TransactionalSend { key: key.map(|k| (k, fingerprint)), message: &message, job: job.as_ref() };
    match state.store.send_transactional(workspace, send, now).await? {
        SendOutcome::Accepted(id) => Ok(Accepted { id, status: status.as_str() }),
        SendOutcome::Replayed(id) => {
            let stored = state.store.get_message(workspace, id).await?;
            Ok(Accepted { id, status: stored.status.as_str() })
        }
        SendOutcome::KeyReused => Err(key_reused()),
    }
}

fn key_reused() -> ApiError {
    let mut error = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "Idempotency-Key: this key was used for a different request; use a new key for a new email",
    );
    error.field = Some("Idempotency-Key".into());
    error
}

/// Send one email now: a saved template (inside its layout) or inline subject and HTML, to
/// one address, from a verified sending domain. Answers once the message and its delivery
/// job are stored; delivery goes on in the background like campaign mail. With an
/// `Idempotency-Key` header, the same key and body answer the same message again and send
/// nothing more; the same key with another body is refused (422 `idempotency_key_reused`).
/// A key is kept for at least 24 hours, then forgotten.
/// A suppressed address (hard bounce, complaint, unsubscribe) is refused with 422 on `to`.
#[utoipa::path(post, path = "/send", tag = "messages", request_body = SendBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request send nothing twice")),
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody, description = "A field is invalid"),
        (status = 422, body = ErrorBody, description = "Suppressed address, template that does not compile or render, or a reused key")))]
async fn send(
    State(state): State<EmailState>,
    Auth(p): Auth,
    headers: HeaderMap,
    ApiJson(value): ApiJson<Value>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(key)) if !key.trim().is_empty() && key.len() <= MAX_KEY => Some(key.trim()),
        Some(_) => {
            return Err(ApiError::invalid("Idempotency-Key", format!("must be 1 to {MAX_KEY} visible characters")));
        }
    };
    // The request under the key: its JSON, so spacing and key order do not matter.
    let digest = Sha256::digest(serde_json::to_vec(&value).unwrap_or_default());
    let fingerprint: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let parsed: SendBody = serde_json::from_value(value).map_err(|e| ApiError::invalid("body", e))?;
    let accepted = send_email(&state, p.workspace_id, key, parsed, &fingerprint).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}
