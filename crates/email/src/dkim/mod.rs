//! DKIM (RFC 6376): the keys a sending domain publishes and the signer that adds a
//! `DKIM-Signature` to every message, relaxed/relaxed with SHA-256, as `rsa-sha256` or
//! `ed25519-sha256` (RFC 8463).
//!
//! Herald signs with its own code and aws-lc-rs rather than lettre's signer, which uses the
//! pure-Rust `rsa` crate: an RSA-2048 signature costs about 2.3 ms there and about 0.7 ms in
//! aws-lc, and at a few hundred messages a second on two cores that difference decides whether
//! email keeps up (ADR 0009, BENCHMARKS.md "Email delivery"). The canonicalization is small,
//! pure and tested against RFC 6376's example; every signature in the tests is verified by
//! Python's `dkimpy`, never by this code.

mod canonical;
mod key;

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;

use self::key::KeyPairOf;
pub use self::key::{DkimAlgorithm, DkimKey};
use crate::message::EmailError;

/// The headers every signature covers, in this order. RFC 8058 requires `List-Unsubscribe` and
/// `List-Unsubscribe-Post` to be signed. A header the message lacks (`Reply-To`, the two
/// unsubscribe headers) is still named: it then signs its absence, so a relay cannot add one
/// without breaking the signature (RFC 6376 §5.4, "oversigning").
const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// The base64 signature is folded into lines of this many characters (plus a tab).
const SIGNATURE_LINE: usize = 72;

/// Signs outgoing mail as `d=<domain>` with `s=<selector>`, relaxed/relaxed, covering the
/// headers in [`SIGNED_HEADERS`]. Cheap to clone: the parsed key is shared.
#[derive(Clone)]
pub struct DkimSigner {
    domain: String,
    selector: String,
    key: DkimKey,
    /// The start of every signature header, up to the per-message tags: `DKIM-Signature:
    /// v=1; a=…; c=…; d=…; s=…;` and the `h=` list.
    prefix: String,
}

impl DkimSigner {
    /// Checks that `domain` and `selector` are DNS names (ASCII; use the A-label of an
    /// internationalised domain). The key was parsed when it was built: signing parses nothing.
    pub fn new(domain: &str, selector: &str, key: DkimKey) -> Result<Self, EmailError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        check_dns_name("dkim.domain", &domain)?;
        let selector = selector.trim().to_ascii_lowercase();
        check_dns_name("dkim.selector", &selector)?;
        let prefix = format!(
            "DKIM-Signature: v=1; a={}-sha256; c=relaxed/relaxed;\r\n\td={domain}; s={selector};\r\n\th={};\r\n\t",
            key.algorithm(),
            SIGNED_HEADERS.join(":").to_ascii_lowercase(),
        );
        Ok(Self { domain, selector, key, prefix })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn selector(&self) -> &str {
        &self.selector
    }

    pub fn key(&self) -> &DkimKey {
        &self.key
    }

    /// Where the public key is published: `<selector>._domainkey.<domain>`.
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// `message` (header fields, an empty line, the body; CRLF line ends) with a
    /// `DKIM-Signature` field in front, made at `now` (the `t=` tag). Of a field named more
    /// than once, the last one is signed (RFC 6376 §5.4.2).
    pub fn sign(&self, message: &[u8], now: OffsetDateTime) -> Result<Vec<u8>, EmailError> {
        let (head, body) = canonical::split_message(message);
        let body_hash = STANDARD.encode(digest(&SHA256, &canonical::relaxed_body(body)));

        let fields = canonical::header_fields(head);
        let mut signed = Vec::with_capacity(head.len() + self.prefix.len() + 128);
        for name in SIGNED_HEADERS {
            if let Some(field) =
                fields.iter().rev().find(|f| canonical::field_name(f).eq_ignore_ascii_case(name.as_bytes()))
            {
                canonical::relaxed_header(field, &mut signed);
                signed.extend_from_slice(b"\r\n");
            }
        }
        // The signature field itself comes last, with an empty `b=` and no final CRLF. It is
        // canonicalized from the very text sent, so its folding cannot make a difference.
        let mut header = format!("{}t={}; bh={body_hash};\r\n\tb=", self.prefix, now.unix_timestamp());
        canonical::relaxed_header(header.as_bytes(), &mut signed);

        let signature = match self.key.pair() {
            KeyPairOf::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &signed, &mut signature)
                    .map_err(EmailError::DkimSigning)?;
                signature
            }
            // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the same data, not the data.
            KeyPairOf::Ed25519(pair) => pair.sign(digest(&SHA256, &signed).as_ref()).as_ref().to_vec(),
        };
        let signature = STANDARD.encode(signature);
        for (i, line) in signature.as_bytes().chunks(SIGNATURE_LINE).enumerate() {
            if i > 0 {
                header.push_str("\r\n\t");
            }
            header.push_str(&String::from_utf8_lossy(line));
        }
        header.push_str("\r\n");

        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        Ok(out)
    }
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Letters, digits, hyphens and underscores in dot-separated labels of at most 63 bytes.
fn check_dns_name(field: &'static str, name: &str) -> Result<(), EmailError> {
    let bad = |reason: &str| EmailError::InvalidField { field, reason: format!("{reason}: {name:?}") };
    if name.is_empty() || name.len() > 253 {
        return Err(bad("must be a DNS name of 1 to 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("every dot-separated label must have 1 to 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(bad("only letters, digits, '-' and '_' are allowed in a label"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label cannot start or end with '-'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::datetime;

    use super::*;

    const MESSAGE: &[u8] =
        b"From: a@example.com\r\nTo: b@example.org\r\nSubject: Hi\r\nX-Other: not signed\r\n\r\nHello\r\n";

    fn tags(signed: &[u8]) -> Vec<(String, String)> {
        let (head, _) = canonical::split_message(signed);
        let field = canonical::header_fields(head)[0];
        let mut value = Vec::new();
        canonical::relaxed_header(field, &mut value);
        let value = String::from_utf8(value).unwrap();
        let value = value.strip_prefix("dkim-signature:").unwrap().to_owned();
        value
            .split(';')
            .map(|tag| tag.split_once('=').unwrap())
            .map(|(k, v)| (k.trim().to_owned(), v.replace(' ', "")))
            .collect()
    }

    #[test]
    fn the_signature_comes_first_with_its_tags_in_order() {
        let key = DkimKey::generate(DkimAlgorithm::Ed25519).unwrap();
        let signer = DkimSigner::new("Example.com", "herald", key).unwrap();
        let signed = signer.sign(MESSAGE, datetime!(2025-03-04 05:06:07 UTC)).unwrap();
        assert!(signed.starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256; "));
        assert!(signed.ends_with(MESSAGE), "the message follows unchanged");
        let names: Vec<String> = tags(&signed).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["v", "a", "c", "d", "s", "h", "t", "bh", "b"]);
        let tags = tags(&signed);
        let tag = |name: &str| tags.iter().find(|(k, _)| k == name).unwrap().1.clone();
        assert_eq!(tag("c"), "relaxed/relaxed");
        assert_eq!(tag("d"), "example.com");
        assert_eq!(tag("t"), "1741064767");
        assert_eq!(
            tag("h"),
            "from:to:subject:date:message-id:reply-to:mime-version:content-type:content-transfer-encoding:\
             list-unsubscribe:list-unsubscribe-post"
        );
        // SHA-256 of the canonical body "Hello\r\n".
        assert_eq!(tag("bh"), "Ba3gj8+xBPQLJTahTfzW6RbWQ/XPgESxkCi2B66PSQg=");
        assert_eq!(STANDARD.decode(tag("b")).unwrap().len(), 64);
        // Folded: no line of the signature field is longer than 78 characters but the `h=` one.
        let field_end = signed.windows(3).position(|w| w == b"\r\nF").unwrap();
        let field = std::str::from_utf8(&signed[..field_end]).unwrap();
        assert!(field.split("\r\n").filter(|line| !line.starts_with("\th=")).all(|line| line.len() <= 78), "{field}");
    }

    #[test]
    fn ed25519_signatures_are_deterministic_and_cover_the_time() {
        let signer =
            DkimSigner::new("example.com", "herald", DkimKey::generate(DkimAlgorithm::Ed25519).unwrap()).unwrap();
        let at = datetime!(2025-03-04 05:06:07 UTC);
        assert_eq!(signer.sign(MESSAGE, at).unwrap(), signer.sign(MESSAGE, at).unwrap());
        let later = signer.sign(MESSAGE, at + time::Duration::SECOND).unwrap();
        let b = |signed: &[u8]| tags(signed).into_iter().find(|(k, _)| k == "b").unwrap().1;
        assert_ne!(b(&signer.sign(MESSAGE, at).unwrap()), b(&later));
    }

    #[test]
    fn rsa_signatures_have_the_modulus_length() {
        let signer =
            DkimSigner::new("example.com", "herald", DkimKey::generate(DkimAlgorithm::Rsa2048).unwrap()).unwrap();
        let signed = signer.sign(MESSAGE, datetime!(2025-03-04 05:06:07 UTC)).unwrap();
        let b = tags(&signed).into_iter().find(|(k, _)| k == "b").unwrap().1;
        assert_eq!(STANDARD.decode(b).unwrap().len(), 256);
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = DkimKey::generate(DkimAlgorithm::Ed25519).unwrap();
        let signer = DkimSigner::new("example.com", "herald", key.clone()).unwrap();
        let shown = format!("{signer:?}");
        assert!(!shown.contains(key.private_key()), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn signer_checks_domain_and_selector() {
        let key = DkimKey::generate(DkimAlgorithm::Ed25519).unwrap();
        let signer = DkimSigner::new("Mail.Example.com.", "s2024", key.clone()).unwrap();
        assert_eq!(signer.record_name(), "s2024._domainkey.mail.example.com");
        for (domain, selector, field) in [
            ("exa mple.com", "s1", "dkim.domain"),
            ("", "s1", "dkim.domain"),
            ("example.com", "s;1", "dkim.selector"),
            ("example.com", "-s1", "dkim.selector"),
            ("example..com", "s1", "dkim.domain"),
        ] {
            match DkimSigner::new(domain, selector, key.clone()) {
                Err(EmailError::InvalidField { field: got, .. }) => assert_eq!(got, field, "{domain} {selector}"),
                other => panic!("{domain} {selector}: {other:?}"),
            }
        }
    }
}
