//! Amazon SES's notifications as SNS posts them. Each message is checked before anything is
//! done with it: published within the last hour, its `SigningCertURL` on an SNS host (or a
//! prefix the operator allows), and its signature valid under that certificate, which is
//! fetched through the outbound client and kept. A `SubscriptionConfirmation` is then confirmed
//! by fetching its `SubscribeURL` (held to the same hosts); a `Notification` carries the SES
//! event in its `Message`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use herald_domain::WorkspaceId;
use herald_email::providers::sns::{SnsMessage, cert_url_allowed};
use herald_webhook::client::{OutboundRequest, WebhookClient};
use herald_webhook::retry::AttemptOutcome;
use reqwest::Method;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::notices::{self, Notice, Refused};
use crate::delivery::email::Email;
use crate::web::error::ApiError;

/// How old (or how far ahead) a message's `Timestamp` may be: SNS retries for about an hour,
/// and an older message is a replay.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// The deadline of fetching a certificate or confirming a subscription.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many certificates are kept (SNS uses one per region at a time).
const CACHED_CERTIFICATES: usize = 32;

/// Signing certificates by URL, as fetched.
#[derive(Debug, Default)]
pub struct Certificates(Mutex<HashMap<String, Arc<[u8]>>>);

impl Certificates {
    /// The certificate at `url` (already checked against the allowed hosts): kept, or fetched.
    async fn get(&self, client: &WebhookClient, url: &str) -> Result<Arc<[u8]>, String> {
        if let Some(pem) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(url) {
            return Ok(pem.clone());
        }
        let pem: Arc<[u8]> = fetch(client, url).await?.into();
        let mut cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHED_CERTIFICATES {
            cache.clear();
        }
        cache.insert(url.to_owned(), pem.clone());
        Ok(pem)
    }
}

/// GETs `url` through the outbound client: the body of a 2xx answer, else what went wrong.
async fn fetch(client: &WebhookClient, url: &str) -> Result<Vec<u8>, String> {
    let request = OutboundRequest {
        method: Method::GET,
        url: url.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
        timeout: FETCH_TIMEOUT,
        basic_auth: None,
    };
    let answer = client.send(&request).await;
    match answer.outcome {
        AttemptOutcome::Status { code, .. } if (200..300).contains(&code) && !answer.truncated => Ok(answer.body),
        AttemptOutcome::Status { code, .. } => Err(format!("{url} answered {code}")),
        _ => Err(format!("{url}: {}", answer.error.as_deref().unwrap_or("no answer"))),
    }
}

/// Verifies one SNS message and acts on it: the notice a `Notification` carries, `None` for a
/// confirmed subscription or an event that is not a delivery, bounce or complaint.
pub(super) async fn receive(email: &Email, workspace: WorkspaceId, body: &[u8]) -> Result<Option<Notice>, Refused> {
    let message: SnsMessage =
        serde_json::from_slice(body).map_err(|e| Refused::Unverified(format!("not an SNS message: {e}")))?;
    let published = OffsetDateTime::parse(&message.timestamp, &Rfc3339)
        .map_err(|_| Refused::Unverified("unreadable Timestamp".into()))?;
    let age = email.clock.now().to_offset_date_time() - published;
    if age.unsigned_abs() > MAX_AGE {
        return Err(Refused::Unverified(format!("published {}s from now, more than an hour", age.whole_seconds())));
    }
    let allowed = &email.settings.sns_cert_prefixes;
    if !cert_url_allowed(&message.signing_cert_url, allowed) {
        return Err(Refused::Unverified(format!("SigningCertURL {} is not an SNS host", message.signing_cert_url)));
    }
    let pem = email
        .sns_certificates
        .get(&email.http, &message.signing_cert_url)
        .await
        .map_err(|e| Refused::Unverified(format!("the signing certificate could not be fetched: {e}")))?;
    message.verify(&pem).map_err(|e| Refused::Unverified(e.to_string()))?;
    match message.kind.as_str() {
        "SubscriptionConfirmation" => {
            confirm(email, workspace, &message).await?;
            Ok(None)
        }
        "Notification" => {
            let event = serde_json::from_str(&message.message)
                .map_err(|e| Refused::Malformed(format!("the Message is not JSON: {e}")))?;
            Ok(notices::ses(&event))
        }
        // UnsubscribeConfirmation: nothing to do; the topic no longer posts here.
        _ => {
            tracing::info!(workspace = %workspace, topic = message.topic_arn, kind = message.kind, "SNS message");
            Ok(None)
        }
    }
}

/// Confirms a verified subscription by fetching its `SubscribeURL`, which must be on an SNS host
/// as well; a failure is answered 502 so that SNS sends the confirmation again.
async fn confirm(email: &Email, workspace: WorkspaceId, message: &SnsMessage) -> Result<(), Refused> {
    let url = message.subscribe_url.as_deref().unwrap_or_default();
    if !cert_url_allowed(url, &email.settings.sns_cert_prefixes) {
        return Err(Refused::Unverified("SubscribeURL is not an SNS host".into()));
    }
    match fetch(&email.http, url).await {
        Ok(_) => {
            tracing::info!(workspace = %workspace, topic = message.topic_arn, "SNS subscription confirmed");
            Ok(())
        }
        Err(reason) => {
            tracing::warn!(workspace = %workspace, topic = message.topic_arn, reason, "SNS subscription not confirmed");
            Err(Refused::Failed(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "confirmation_failed",
                "the subscription could not be confirmed; SNS will send the confirmation again",
            )))
        }
    }
}
