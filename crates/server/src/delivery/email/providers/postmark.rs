//! Postmark's `POST /email` (JSON fields, our `Message-ID` and unsubscribe headers in
//! `Headers`, the Herald id in `Metadata`) and its bounce, spam complaint and delivery webhooks.

use herald_webhook::client::OutboundRequest;
use serde_json::{Value, json};

use super::{Envelope, MESSAGE_TAG, PostmarkConfig, base, post_json};

pub(super) fn request(config: &PostmarkConfig, token: &str, envelope: &Envelope<'_>) -> OutboundRequest {
    let message = envelope.message;
    let url = format!("{}/email", base(&config.endpoint, "https://api.postmarkapp.com"));
    let mut headers = vec![json!({"Name": "Message-ID", "Value": format!("<{}>", message.internet_message_id)})];
    headers.extend(envelope.list_headers.iter().map(|(name, value)| json!({"Name": name, "Value": value})));
    let mut body = json!({
        "From": message.from,
        "To": message.to,
        "Subject": message.subject,
        "HtmlBody": envelope.html,
        "TextBody": message.text,
        "Headers": headers,
        "Metadata": {MESSAGE_TAG: message.id.to_string()},
    });
    if let Some(reply_to) = &message.reply_to {
        body["ReplyTo"] = Value::from(reply_to.as_str());
    }
    if let Some(stream) = &config.message_stream {
        body["MessageStream"] = Value::from(stream.as_str());
    }
    post_json(url, vec![("x-postmark-server-token".into(), token.to_owned())], &body)
}
