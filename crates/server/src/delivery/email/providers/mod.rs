//! Email providers' HTTP APIs as transports (Amazon SES v2, Postmark, Resend): their settings
//! and write-only credentials, one send per call through the outbound webhook client (so the
//! operator's address policy applies), how an answer is judged (2xx sent, 429 and 5xx retried,
//! other 4xx permanent), and the secret URLs on which their delivery, bounce and complaint
//! notifications arrive (`events`).
//!
//! Every provider sends the message's Herald id along (SES `EmailTags`, Postmark `Metadata`,
//! Resend `tags`) and echoes it in its notifications, so a notification names its message
//! without a lookup table; our `Message-ID` header is the fallback.

pub mod events;
pub mod notices;
mod postmark;
mod resend;
mod ses;
pub mod sns;
pub mod token;

use std::time::Duration;

use herald_domain::Message;
use herald_domain::retry::Attempt;
use herald_email::message::Composed;
use herald_webhook::client::{OutboundRequest, WebhookClient};
use herald_webhook::retry::AttemptOutcome;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// The name of the tag (metadata key) carrying the Herald message id.
pub const MESSAGE_TAG: &str = "herald_message";

/// The deadline of one API call.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A provider's settings as stored and shown; the credentials are kept apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderConfig {
    /// Amazon SES, API v2 (`SendEmail` with the raw, DKIM-signed message).
    Ses(SesConfig),
    /// Postmark (`POST /email`).
    Postmark(PostmarkConfig),
    /// Resend (`POST /emails`).
    Resend(ResendConfig),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SesConfig {
    /// The AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// The IAM access key id (the secret access key is the write-only `api_key`).
    pub access_key_id: String,
    /// The configuration set whose event destination publishes to the SNS topic.
    #[serde(default)]
    pub configuration_set: Option<String>,
    /// The API's base URL; `https://email.<region>.amazonaws.com` when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostmarkConfig {
    /// The message stream; Postmark's default transactional stream when absent.
    #[serde(default)]
    pub message_stream: Option<String>,
    /// The API's base URL; `https://api.postmarkapp.com` when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResendConfig {
    /// The API's base URL; `https://api.resend.com` when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
}

impl ProviderConfig {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::Ses(_) => ProviderKind::Ses,
            Self::Postmark(_) => ProviderKind::Postmark,
            Self::Resend(_) => ProviderKind::Resend,
        }
    }

    /// Checks the values no provider accepts; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let endpoint = match self {
            Self::Ses(ses) => {
                if ses.region.is_empty() || !ses.region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err(("region", "must be an AWS region such as eu-west-1".into()));
                }
                if ses.access_key_id.trim().is_empty() {
                    return Err(("access_key_id", "must not be empty".into()));
                }
                &ses.endpoint
            }
            Self::Postmark(postmark) => &postmark.endpoint,
            Self::Resend(resend) => &resend.endpoint,
        };
        match endpoint {
            Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                Err(("endpoint", "must be an http(s):// URL".into()))
            }
            _ => Ok(()),
        }
    }
}

/// Which provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Ses,
    Postmark,
    Resend,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ses => "ses",
            Self::Postmark => "postmark",
            Self::Resend => "resend",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Ses, Self::Postmark, Self::Resend].into_iter().find(|kind| kind.as_str() == name)
    }
}

/// A provider's credentials, sealed at rest as one JSON text in the transport's password.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSecrets {
    /// SES: the secret access key; Postmark: the server token; Resend: the API key.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Postmark: the Basic auth password of the notification URL; Resend: the webhook's
    /// signing secret (`whsec_…`). SES needs none: SNS signs with its certificate.
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for ProviderSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSecrets")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl ProviderSecrets {
    /// Reads the stored text (`None`, or not this shape: no credentials).
    pub fn from_stored(stored: Option<&str>) -> Self {
        stored.and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default()
    }

    /// The text to store (sealed by the store); `None` when there is nothing to keep.
    pub fn to_stored(&self) -> Option<String> {
        (self.api_key.is_some() || self.webhook_secret.is_some())
            .then(|| serde_json::to_string(self).unwrap_or_else(|_| unreachable!("strings serialise")))
    }
}

/// A provider transport: its settings and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub config: ProviderConfig,
    pub secrets: ProviderSecrets,
}

/// What a send needs besides the composed message.
#[derive(Debug)]
pub struct Envelope<'a> {
    pub message: &'a Message,
    pub composed: &'a Composed,
    /// The HTML as sent (its links tracked when the step tracks them), for providers that take
    /// JSON fields.
    pub html: &'a str,
    /// `List-Unsubscribe` and `List-Unsubscribe-Post`, for providers that take JSON fields.
    pub list_headers: serde_json::Map<String, serde_json::Value>,
}

impl Provider {
    /// Hands one message to the provider: the attempt, and the reply to keep (the
    /// provider's message id when accepted, else its status and error).
    pub async fn send(
        &self,
        client: &WebhookClient,
        envelope: &Envelope<'_>,
        now: OffsetDateTime,
    ) -> (Attempt, String) {
        let api_key = self.secrets.api_key.as_deref().unwrap_or_default();
        let request = match &self.config {
            ProviderConfig::Ses(config) => ses::request(config, api_key, envelope, now),
            ProviderConfig::Postmark(config) => postmark::request(config, api_key, envelope),
            ProviderConfig::Resend(config) => resend::request(config, api_key, envelope),
        };
        let answer = client.send(&request).await;
        let id = |body: &serde_json::Value| match self.config {
            ProviderConfig::Ses(_) => body["MessageId"].as_str().map(str::to_owned),
            ProviderConfig::Postmark(_) => body["MessageID"].as_str().map(str::to_owned),
            ProviderConfig::Resend(_) => body["id"].as_str().map(str::to_owned),
        };
        judge(self.config.kind(), &answer, id)
    }
}

/// A JSON POST with these headers.
fn post_json(url: String, headers: Vec<(String, String)>, body: &serde_json::Value) -> OutboundRequest {
    let mut headers = headers;
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("accept".into(), "application/json".into()));
    OutboundRequest {
        method: Method::POST,
        url,
        headers,
        body: serde_json::to_vec(body).unwrap_or_else(|_| unreachable!("JSON values serialise")),
        timeout: SEND_TIMEOUT,
        basic_auth: None,
    }
}

/// Whether an API's answer sent the message: 2xx yes (the reply is the provider's message
/// id); 429, 5xx, a timeout or a lost connection are transient; any other answer (a 4xx: bad
/// credentials, a refused sender or recipient) is permanent, as is a destination the address
/// policy refuses.
fn judge(
    kind: ProviderKind,
    answer: &herald_webhook::client::Attempt,
    id: impl Fn(&serde_json::Value) -> Option<String>,
) -> (Attempt, String) {
    let body = String::from_utf8_lossy(&answer.body);
    let name = kind.as_str();
    match answer.outcome {
        AttemptOutcome::Status { code, .. } if (200..300).contains(&code) => {
            let parsed = serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
            let id = id(&parsed).unwrap_or_default();
            (Attempt::Delivered, format!("{name} {code} {id}").trim_end().to_owned())
        }
        AttemptOutcome::Status { code, retry_after } => {
            let reply = format!("{name} {code} {}", body.chars().take(300).collect::<String>()).trim_end().to_owned();
            let reason = format!("the {name} API answered {reply}");
            if code == 429 || code >= 500 {
                (Attempt::Transient { reason, retry_after }, reply)
            } else {
                (Attempt::Permanent { reason }, reply)
            }
        }
        AttemptOutcome::Timeout | AttemptOutcome::Connect => {
            let reply = format!("{name}: {}", answer.error.as_deref().unwrap_or("no answer"));
            (Attempt::Transient { reason: reply.clone(), retry_after: None }, reply)
        }
        _ => {
            let reply = format!("{name}: {}", answer.error.as_deref().unwrap_or("the request was not sent"));
            (Attempt::Permanent { reason: reply.clone() }, reply)
        }
    }
}

/// The provider's API base URL: the configured one or the public default, without a
/// trailing slash.
fn base(configured: &Option<String>, default: &str) -> String {
    configured.as_deref().unwrap_or(default).trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn configs_read_by_kind_and_refuse_unknown_fields() {
        let ses: ProviderConfig =
            serde_json::from_value(json!({"kind": "ses", "region": "eu-west-1", "access_key_id": "AKID"})).unwrap();
        assert_eq!(ses.kind(), ProviderKind::Ses);
        assert!(ses.validate().is_ok());
        assert!(serde_json::from_value::<ProviderConfig>(json!({"kind": "smtp"})).is_err());
        let bad: ProviderConfig = serde_json::from_value(json!({"kind": "postmark", "endpoint": "ftp://x"})).unwrap();
        assert_eq!(bad.validate().unwrap_err().0, "endpoint");
    }

    #[test]
    fn secrets_are_redacted_and_round_trip() {
        let secrets = ProviderSecrets { api_key: Some("re_123".into()), webhook_secret: Some("whsec_x".into()) };
        let shown = format!("{secrets:?}");
        assert!(!shown.contains("re_123") && !shown.contains("whsec_x"), "{shown}");
        assert_eq!(ProviderSecrets::from_stored(secrets.to_stored().as_deref()), secrets);
        assert_eq!(ProviderSecrets::default().to_stored(), None);
    }

    fn answer(outcome: AttemptOutcome, body: &str) -> herald_webhook::client::Attempt {
        herald_webhook::client::Attempt {
            status: match outcome {
                AttemptOutcome::Status { code, .. } => Some(code),
                _ => None,
            },
            outcome,
            response_headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            truncated: false,
            latency: Duration::ZERO,
            error: Some("connection refused".into()),
        }
    }

    #[test]
    fn answers_are_judged_by_status() {
        let id = |b: &serde_json::Value| b["id"].as_str().map(str::to_owned);
        let status = |code| AttemptOutcome::Status { code, retry_after: None };
        let (attempt, reply) = judge(ProviderKind::Resend, &answer(status(200), r#"{"id":"4ef9"}"#), id);
        assert_eq!((attempt, reply.as_str()), (Attempt::Delivered, "resend 200 4ef9"));
        for code in [429, 500, 503] {
            assert!(matches!(
                judge(ProviderKind::Resend, &answer(status(code), "{}"), id).0,
                Attempt::Transient { .. }
            ));
        }
        for code in [400, 401, 403, 422] {
            assert!(matches!(
                judge(ProviderKind::Resend, &answer(status(code), "{}"), id).0,
                Attempt::Permanent { .. }
            ));
        }
        assert!(matches!(
            judge(ProviderKind::Ses, &answer(AttemptOutcome::Connect, ""), id).0,
            Attempt::Transient { .. }
        ));
        assert!(matches!(
            judge(ProviderKind::Ses, &answer(AttemptOutcome::Refused, ""), id).0,
            Attempt::Permanent { .. }
        ));
    }
}
