//! Amazon SES v2 `SendEmail` with the raw message (so our DKIM signature, `Message-ID` and
//! unsubscribe headers go out as composed), signed with SigV4; and SES's notifications as SNS
//! delivers them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_email::providers::sigv4::{AwsCredentials, SignedRequest, sign};
use herald_webhook::client::OutboundRequest;
use serde_json::json;
use time::OffsetDateTime;

use super::{Envelope, MESSAGE_TAG, SesConfig, base, post_json};

/// The SendEmail request for one message.
pub(super) fn request(
    config: &SesConfig,
    secret_key: &str,
    envelope: &Envelope<'_>,
    now: OffsetDateTime,
) -> OutboundRequest {
    let default = format!("https://email.{}.amazonaws.com", config.region);
    let url = format!("{}/v2/email/outbound-emails", base(&config.endpoint, &default));
    let mut body = json!({
        "FromEmailAddress": envelope.composed.envelope_from,
        "Destination": {"ToAddresses": envelope.composed.recipients},
        "Content": {"Raw": {"Data": STANDARD.encode(&envelope.composed.bytes)}},
        "EmailTags": [{"Name": MESSAGE_TAG, "Value": envelope.message.id.to_string()}],
    });
    if let Some(set) = &config.configuration_set {
        body["ConfigurationSetName"] = set.as_str().into();
    }
    let mut request = post_json(url, Vec::new(), &body);
    let parsed = url::Url::parse(&request.url).ok();
    let host = parsed.as_ref().map(authority).unwrap_or_default();
    let path = parsed.as_ref().map(|u| u.path().to_owned()).unwrap_or_default();
    let credentials = AwsCredentials {
        access_key_id: &config.access_key_id,
        secret_access_key: secret_key,
        region: &config.region,
        service: "ses",
    };
    let mut signed: Vec<(&str, &str)> = request.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    signed.push(("host", &host));
    let to_sign = SignedRequest { method: "POST", path: &path, query: "", headers: &signed, body: &request.body };
    let added = sign(&credentials, &to_sign, now);
    request.headers.extend(added);
    request
}

/// The `Host` header reqwest sends for `url`: the host, and the port when it is not the
/// scheme's default.
fn authority(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}
