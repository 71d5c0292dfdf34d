//! Email's use cases, shared by its JSON handlers, its pages, the settings page and the
//! contact page (through the interface `app::wiring` implements): suppressing an address by
//! hand, searching, exporting and taking it off again, the recent bounce and complaint rates
//! with the providers' limits, sending a message again, adding and checking sending domains,
//! and setting and testing the workspace's transport.

use axum::http::StatusCode;
use herald_domain::{
    DomainId, DomainStatus, EmailAddress, Message, MessageId, MessageStatus, Page, PageRequest, SendingDomain,
    Suppression, WorkspaceId,
};
use herald_email::dkim::DkimAlgorithm;
use herald_email::message::{EmailError, Mailbox, Outgoing, compose};
use herald_email::smtp::SmtpClient;
use herald_store::ContactFilter;
use herald_store::campaign::CampaignWork;
use herald_store::email::{ActivityScope, EmailCounts, EmailNumbers, Grouping, TransportRecord};
use serde::Serialize;
use utoipa::ToSchema;

use super::EmailState;
use super::domains::{AddDomainError, DomainRequest};
use super::providers::{ProviderConfig, ProviderSecrets};
use super::transport::{SmtpConfig, Transport};
use crate::web::csv_failed;
use crate::web::error::ApiError;

/// The workspace's suppressed addresses, in address order; with `search`, those containing it.
pub async fn suppressions(
    state: &EmailState,
    workspace: WorkspaceId,
    search: Option<&str>,
    page: PageRequest<String>,
) -> Result<Page<Suppression>, ApiError> {
    Ok(state.store.list_suppressions(workspace, search, page).await?)
}

/// Complaint rates past this are a warning: the largest mailbox providers ask bulk senders to
/// stay below 0.1% of messages marked as spam.
pub const COMPLAINT_WARNING: f64 = 0.001;
/// Complaint rates at or past this are an alarm: at 0.3% those providers start refusing or
/// spam-foldering a bulk sender's mail.
pub const COMPLAINT_ALARM: f64 = 0.003;

/// Where a complaint rate stands against the mailbox providers' limits for bulk senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintLevel {
    #[serde(rename = "ok")]
    Fine,
    /// Above 0.1%.
    Warning,
    /// At 0.3% or above.
    Alarm,
}

impl ComplaintLevel {
    pub fn of(rate: f64) -> Self {
        if rate >= COMPLAINT_ALARM {
            Self::Alarm
        } else if rate > COMPLAINT_WARNING {
            Self::Warning
        } else {
            Self::Fine
        }
    }
}

/// The workspace's email numbers over the last `days` days (bounce and complaint rates are
/// among its rates; conversions are not counted).
pub async fn recent_numbers(state: &EmailState, workspace: WorkspaceId, days: u32) -> Result<EmailNumbers, ApiError> {
    let since = state.clock.now() - std::time::Duration::from_secs(u64::from(days) * 86_400);
    let rows = state.store.activity_counts(workspace, &ActivityScope::default(), Some(since), Grouping::Total).await?;
    Ok(EmailNumbers::new(EmailCounts::of(&rows), None))
}

/// Rows read per query while exporting the list.
const EXPORT_PAGE: u32 = 500;

/// The suppression list (with `search`, the addresses containing it) as CSV, with a header
/// row: `email, reason, detail, contact_id, message_id, created_at` (RFC 3339).
pub async fn suppressions_csv(
    state: &EmailState,
    workspace: WorkspaceId,
    search: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = ["email", "reason", "detail", "contact_id", "message_id", "created_at"];
    let mut write = |row: [&str; 6]| out.write_record(row).map_err(csv_failed);
    write(header)?;
    let mut page = PageRequest::first(EXPORT_PAGE);
    loop {
        let listed = state.store.list_suppressions(workspace, search, page.clone()).await?;
        for s in &listed.items {
            let contact = s.contact_id.map(|c| c.to_string()).unwrap_or_default();
            let message = s.message_id.map(|m| m.to_string()).unwrap_or_default();
            let created = s.created_at.to_string();
            write([&s.email, &s.reason, s.detail.as_deref().unwrap_or_default(), &contact, &message, &created])?;
        }
        match listed.items.last() {
            Some(last) if listed.next_cursor.is_some() => page.after = Some(last.email.clone()),
            _ => break,
        }
    }
    out.into_inner().map_err(|e| csv_failed(e.into_error()))
}

/// Suppresses an address for the workspace by hand; returns the record kept and whether it is
/// new (an address already suppressed keeps its first record).
pub async fn suppress(
    state: &EmailState,
    workspace: WorkspaceId,
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
    let contact = state.store.list_contacts(workspace, &filter, PageRequest::first(1)).await?;
    let new = Suppression {
        email: email.as_str().to_owned(),
        contact_id: contact.items.first().map(|c| c.id),
        reason,
        detail,
        message_id: None,
        created_at: state.clock.now(),
    };
    // Added by hand, not by the contact: no `contact_unsubscribed` event.
    let stored = state.store.add_suppression(workspace, &new, &[]).await?;
    let created = stored == new;
    Ok((stored, created))
}

/// Takes an address off the suppression list: campaign email reaches it again.
pub async fn unsuppress(state: &EmailState, workspace: WorkspaceId, email: &EmailAddress) -> Result<(), ApiError> {
    state.store.remove_suppression(workspace, email.as_str()).await?;
    tracing::info!(workspace = %workspace, "address re-subscribed");
    Ok(())
}

/// Queues a copy of message `id` for delivery, with a new id and `Message-ID`; returns the
/// copy. Refused while the message is still queued or held, and for one that was never
/// rendered.
pub async fn resend(state: &EmailState, workspace: WorkspaceId, id: MessageId) -> Result<Message, ApiError> {
    let original = state.store.get_message(workspace, id).await?;
    if matches!(original.status, MessageStatus::Queued | MessageStatus::Held) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "message_pending",
            format!("the message is still {}: it goes out without being resent", original.status),
        ));
    }
    if !original.was_rendered() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "message_not_rendered",
            "the message was never rendered (see status_reason): there is nothing to resend",
        ));
    }
    let now = state.clock.now();
    let copy_id = MessageId::from_uuid(herald_store::new_uuid(now));
    let domain = original.internet_message_id.rsplit_once('@').map_or("herald.invalid", |(_, d)| d).to_owned();
    let copy = Message {
        id: copy_id,
        status: MessageStatus::Queued,
        status_reason: None,
        transport: if original.transport == "smtp" { "smtp" } else { "outbox" }.into(),
        internet_message_id: format!("{copy_id}@{domain}"),
        attempts: 0,
        reply: None,
        bounce: None,
        created_at: now,
        sent_at: None,
        ..original
    };
    let work = CampaignWork {
        messages: vec![copy.clone()],
        jobs: vec![herald_store::email::delivery_job(copy_id, now)],
        ..CampaignWork::default()
    };
    state.store.commit_campaign_work(workspace, None, &work, now).await?;
    Ok(copy)
}

/// Adds a sending domain with a fresh DKIM key (`rsa` unless `ed25519` is asked for).
pub async fn add_domain(
    state: &EmailState,
    workspace: WorkspaceId,
    name: String,
    algorithm: Option<&str>,
    selector: Option<String>,
    return_path_target: Option<String>,
) -> Result<SendingDomain, ApiError> {
    let algorithm = match algorithm {
        None | Some("rsa") => DkimAlgorithm::Rsa2048,
        Some("ed25519") => DkimAlgorithm::Ed25519,
        Some(other) => return Err(ApiError::invalid("algorithm", format!("must be rsa or ed25519, not {other:?}"))),
    };
    let request = DomainRequest { name, algorithm, selector, return_path_target };
    state.email.add_domain(workspace, request).await.map_err(|e| match e {
        AddDomainError::Invalid(field, reason) => ApiError::invalid(field, reason),
        AddDomainError::Store(e) => e.into(),
    })
}

/// Checks a domain's DNS records now; returns how many held messages its verification
/// released.
pub async fn verify_domain(
    state: &EmailState,
    workspace: WorkspaceId,
    id: DomainId,
) -> Result<(SendingDomain, u64), ApiError> {
    Ok(state.email.verify_domain(workspace, id).await?)
}

/// The workspace's transport.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransportDto {
    /// `smtp`, `ses`, `postmark`, `resend`, or `outbox` (the embedded outbox: messages are
    /// stored, not sent).
    #[schema(example = "smtp")]
    pub kind: &'static str,
    /// `workspace` (set here), `node` (the server's HERALD_SMTP_URL) or `none`.
    #[schema(example = "workspace")]
    pub source: &'static str,
    /// The relay's settings; `null` for the outbox and providers.
    pub smtp: Option<SmtpConfig>,
    /// Whether a password is stored (it is never shown).
    pub password_set: bool,
    /// The provider's settings (with `kind`); absent for SMTP and the outbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderConfig>,
    /// Whether the provider's API key is stored (it is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_set: Option<bool>,
    /// Whether the provider's webhook secret is stored (it is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_set: Option<bool>,
    /// Where the provider sends its delivery, bounce and complaint notifications: a secret URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_url: Option<String>,
}

/// The relay's answer to a test message.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// The relay accepted the message.
    pub accepted: bool,
    /// The relay's reply code, when it answered.
    pub code: Option<u16>,
    /// The relay's reply (e.g. `250 2.0.0 Ok: queued as 4BX2Lk`) or what went wrong.
    pub reply: String,
    /// `transient` or `permanent` for a refusal; `null` when accepted.
    pub failure: Option<&'static str>,
    /// Whether the message was DKIM-signed (its From domain is verified).
    pub signed: bool,
}

/// The transport the workspace sends with, and where its settings come from.
pub async fn transport(state: &EmailState, workspace: WorkspaceId) -> Result<TransportDto, ApiError> {
    let smtp = |source, smtp, password_set| TransportDto {
        kind: "smtp",
        source,
        smtp,
        password_set,
        provider: None,
        api_key_set: None,
        webhook_secret_set: None,
        events_url: None,
    };
    let record = state.store.transport(workspace).await?;
    Ok(match record {
        Some(record) => match super::transport::provider_config(&record.settings) {
            Some(config) => {
                let config =
                    config.map_err(|e| herald_store::StoreError::Corrupt(format!("transports.settings: {e}")))?;
                let secrets = ProviderSecrets::from_stored(record.password.as_deref());
                let kind = config.kind();
                TransportDto {
                    kind: kind.as_str(),
                    source: "workspace",
                    smtp: None,
                    password_set: false,
                    provider: Some(config),
                    api_key_set: Some(secrets.api_key.is_some()),
                    webhook_secret_set: Some(secrets.webhook_secret.is_some()),
                    events_url: Some(state.email.events_url(workspace, kind).await?),
                }
            }
            None => smtp("workspace", serde_json::from_value(record.settings).ok(), record.password.is_some()),
        },
        None => match state.email.transport(workspace).await? {
            Transport::Smtp { config, .. } => smtp("node", Some(config), false),
            Transport::Provider(_) | Transport::Outbox => {
                TransportDto { kind: "outbox", source: "none", ..smtp("none", None, false) }
            }
        },
    })
}

/// Stores the workspace's email provider. `api_key` and `webhook_secret`: `None` keeps the
/// stored one (when the provider is the same), `Some(None)` removes it.
pub async fn set_provider(
    state: &EmailState,
    workspace: WorkspaceId,
    config: ProviderConfig,
    api_key: Option<Option<String>>,
    webhook_secret: Option<Option<String>>,
) -> Result<(), ApiError> {
    config.validate().map_err(|(field, reason)| ApiError::invalid(field, reason))?;
    let stored = state.store.transport(workspace).await?.filter(|record| {
        super::transport::provider_config(&record.settings)
            .and_then(Result::ok)
            .is_some_and(|old| old.kind() == config.kind())
    });
    let mut secrets = ProviderSecrets::from_stored(stored.as_ref().and_then(|r| r.password.as_deref()));
    if let Some(api_key) = api_key {
        secrets.api_key = api_key;
    }
    if let Some(webhook_secret) = webhook_secret {
        secrets.webhook_secret = webhook_secret;
    }
    if secrets.api_key.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::invalid("api_key", "is required"));
    }
    let settings = serde_json::to_value(&config).map_err(|e| ApiError::invalid("kind", e))?;
    let record = TransportRecord { settings, password: secrets.to_stored(), updated_at: state.clock.now() };
    state.store.set_transport(workspace, Some(&record)).await?;
    state.email.forget_transport(workspace);
    tracing::info!(workspace = %workspace, provider = config.kind().as_str(), "email provider transport set");
    Ok(())
}

/// Stores the workspace's relay. `password`: `None` keeps the stored one, `Some(None)`
/// removes it.
pub async fn set_transport(
    state: &EmailState,
    workspace: WorkspaceId,
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

/// Removes the workspace's relay: it sends through the node's relay, or to the outbox.
pub async fn remove_transport(state: &EmailState, workspace: WorkspaceId) -> Result<(), ApiError> {
    state.store.set_transport(workspace, None).await?;
    state.email.forget_transport(workspace);
    Ok(())
}

/// Sends a test message through the workspace's relay and reports the relay's answer.
pub async fn test_send(
    state: &EmailState,
    workspace: WorkspaceId,
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
        Some((d, key)) if d.status == DomainStatus::Verified => super::signer(&d, &key).ok(),
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
        herald_token: None,
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

#[cfg(test)]
mod tests {
    use super::ComplaintLevel;

    #[test]
    fn complaint_rates_warn_past_one_in_a_thousand_and_alarm_at_three() {
        for (rate, level) in [
            (0.0, ComplaintLevel::Fine),
            (0.001, ComplaintLevel::Fine),
            (0.0011, ComplaintLevel::Warning),
            (0.0029, ComplaintLevel::Warning),
            (0.003, ComplaintLevel::Alarm),
            (0.5, ComplaintLevel::Alarm),
        ] {
            assert_eq!(ComplaintLevel::of(rate), level, "{rate}");
        }
    }
}
