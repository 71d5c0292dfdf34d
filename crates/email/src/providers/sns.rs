//! Amazon SNS message signatures. SNS signs the documented canonical string of a message's
//! fields (`Key\nValue\n` for each, in a fixed order) with the private key of the certificate
//! at `SigningCertURL`: SHA1withRSA for `SignatureVersion` 1, SHA256withRSA for 2. A message
//! is only as trustworthy as that URL, so [`cert_url_allowed`] admits only
//! `https://sns.<region>.amazonaws.com/…pem` (HTTPS proves the host), plus prefixes an operator
//! names for tests and private deployments.

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

/// One SNS message as posted to an HTTP(S) subscription.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsMessage {
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
    /// RFC 3339, when SNS published the message.
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(default, rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

/// Why a message is not taken as coming from SNS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("the message lacks {0}")]
    Missing(&'static str),
    #[error("unsupported SignatureVersion {0:?}")]
    Version(String),
    #[error("the signing certificate is unusable: {0}")]
    Certificate(String),
    #[error("the signature does not verify")]
    Signature,
}

impl SnsMessage {
    /// The string SNS signs: each field's name and value on lines of their own, in the
    /// documented order, absent optional fields left out.
    pub fn canonical(&self) -> Result<String, SnsError> {
        let mut fields: Vec<(&str, &str)> = vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.kind.as_str() {
            "Notification" => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.extend([("Timestamp", self.timestamp.as_str()), ("TopicArn", &self.topic_arn)]);
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                let subscribe = self.subscribe_url.as_deref().ok_or(SnsError::Missing("SubscribeURL"))?;
                let token = self.token.as_deref().ok_or(SnsError::Missing("Token"))?;
                fields.extend([
                    ("SubscribeURL", subscribe),
                    ("Timestamp", &self.timestamp),
                    ("Token", token),
                    ("TopicArn", &self.topic_arn),
                ]);
            }
            other => return Err(SnsError::UnknownType(other.to_owned())),
        }
        fields.push(("Type", &self.kind));
        Ok(fields.iter().map(|(name, value)| format!("{name}\n{value}\n")).collect())
    }

    /// Checks the signature with the certificate fetched from `SigningCertURL` (PEM).
    pub fn verify(&self, certificate_pem: &[u8]) -> Result<(), SnsError> {
        let algorithm: &dyn signature::VerificationAlgorithm = match self.signature_version.as_str() {
            "1" => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "2" => &signature::RSA_PKCS1_2048_8192_SHA256,
            other => return Err(SnsError::Version(other.to_owned())),
        };
        let der = CertificateDer::from_pem_slice(certificate_pem).map_err(|e| SnsError::Certificate(e.to_string()))?;
        let cert = webpki::EndEntityCert::try_from(&der).map_err(|e| SnsError::Certificate(e.to_string()))?;
        let spki = cert.subject_public_key_info();
        let signature = STANDARD.decode(self.signature.trim()).map_err(|_| SnsError::Signature)?;
        UnparsedPublicKey::new(algorithm, spki.as_ref())
            .verify(self.canonical()?.as_bytes(), &signature)
            .map_err(|_| SnsError::Signature)
    }
}

/// Whether Herald may fetch a signing certificate (or confirm a subscription) at `url`:
/// `https://sns.<region>.amazonaws.com/` (`.amazonaws.com.cn` in China), or a URL starting with
/// one of `extra_prefixes`.
pub fn cert_url_allowed(url: &str, extra_prefixes: &[String]) -> bool {
    if extra_prefixes.iter().any(|prefix| !prefix.is_empty() && url.starts_with(prefix.as_str())) {
        return true;
    }
    let Some(rest) = url.strip_prefix("https://") else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let region = host
        .strip_prefix("sns.")
        .and_then(|h| h.strip_suffix(".amazonaws.com").or_else(|| h.strip_suffix(".amazonaws.com.cn")));
    region
        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn message(kind: &str) -> SnsMessage {
        SnsMessage {
            kind: kind.into(),
            message_id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324".into(),
            topic_arn: "arn:aws:sns:us-west-2:123456789012:MyTopic".into(),
            subject: Some("My First Message".into()),
            message: "Hello world!".into(),
            timestamp: "2012-05-02T00:54:06.655Z".into(),
            signature_version: "1".into(),
            signature: String::new(),
            signing_cert_url:
                "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
                    .into(),
            subscribe_url: Some("https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription".into()),
            token: Some("2336412f37".into()),
        }
    }

    #[test]
    fn the_canonical_string_follows_the_documented_order() {
        assert_eq!(
            message("Notification").canonical().unwrap(),
            "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nMy First Message\n\
             Timestamp\n2012-05-02T00:54:06.655Z\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
             Type\nNotification\n"
        );
        let confirmation = message("SubscriptionConfirmation").canonical().unwrap();
        assert!(confirmation.starts_with("Message\nHello world!\nMessageId\n22b80b92"), "{confirmation}");
        assert!(confirmation.contains("\nSubscribeURL\nhttps://sns.us-west-2"), "{confirmation}");
        assert!(confirmation.contains("\nToken\n2336412f37\nTopicArn\n"), "{confirmation}");
        assert!(!confirmation.contains("Subject"), "{confirmation}");
        assert!(matches!(message("Other").canonical(), Err(SnsError::UnknownType(_))));
    }

    #[test]
    fn only_sns_hosts_serve_certificates() {
        let none: &[String] = &[];
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.eu-central-1.amazonaws.com/x.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
        ] {
            assert!(cert_url_allowed(good, none), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.test/x.pem",
            "https://evil.test/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://s3.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com@evil.test/x.pem",
        ] {
            assert!(!cert_url_allowed(bad, none), "{bad}");
        }
        let extra = ["http://127.0.0.1:4000/certs/".to_owned()];
        assert!(cert_url_allowed("http://127.0.0.1:4000/certs/a.pem", &extra));
        assert!(!cert_url_allowed("http://127.0.0.1:4001/certs/a.pem", &extra));
    }

    #[test]
    fn unknown_versions_and_bad_certificates_are_refused() {
        let mut m = message("Notification");
        m.signature_version = "3".into();
        assert!(matches!(m.verify(b""), Err(SnsError::Version(_))));
        m.signature_version = "2".into();
        assert!(matches!(m.verify(b"not a certificate"), Err(SnsError::Certificate(_))));
    }
}
