//! Resend's `POST /emails` (JSON fields, our `Message-ID` and unsubscribe headers in
//! `headers`, the Herald id in `tags`, and the Herald id as `Idempotency-Key` so that a retried
//! send is not sent twice) and its `email.*` webhooks (Standard Webhooks signatures).

use herald_webhook::client::OutboundRequest;
use serde_json::{Value, json};

use super::{Envelope, MESSAGE_TAG, ResendConfig, base, post_json};

pub(super) fn request(config: &ResendConfig, api_key: &str, envelope: &Envelope<'_>) -> OutboundRequest {
    let message = envelope.message;
    let url = format!("{}/emails", base(&config.endpoint, "https://api.resend.com"));
    let mut headers = envelope.list_headers.clone();
    headers.insert("Message-ID".into(), format!("<{}>", message.internet_message_id).into());
    let mut body = json!({
        "from": message.from,
        "to": [message.to],
        "subject": message.subject,
        "html": envelope.html,
        "text": message.text,
        "headers": headers,
        "tags": [{"name": MESSAGE_TAG, "value": message.id.to_string()}],
    });
    if let Some(reply_to) = &message.reply_to {
        body["reply_to"] = Value::from(reply_to.as_str());
    }
    let auth =
        vec![("authorization".into(), format!("Bearer {api_key}")), ("idempotency-key".into(), message.id.to_string())];
    post_json(url, auth, &body)
}
