//! DKIM keys and the signer a sending domain uses: generation from OS randomness, import of an
//! operator's key, the public half for the `<selector>._domainkey` TXT record, and the
//! configuration `compose` hands to lettre's signer.
//!
//! Private keys are kept in the text form lettre's `DkimSigningKey::new` reads, so a stored
//! key is used as is: PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`) for RSA, and the 32-byte
//! Ed25519 seed in standard base64 for Ed25519.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::rand_core::{OsRng, RngCore};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};

use crate::message::EmailError;

/// Bits of a generated RSA key: what RFC 8301 recommends and every verifier accepts.
const RSA_GENERATED_BITS: usize = 2048;
/// Verifiers (dkimpy, Gmail) ignore RSA signatures made with shorter keys (RFC 8301).
const RSA_MIN_BITS: usize = 1024;

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

/// A DKIM signing algorithm, as stored and as accepted by the API: `"rsa"` or `"ed25519"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DkimAlgorithm {
    /// RSA-SHA256; generated keys have 2048 bits, imported ones at least 1024.
    #[serde(rename = "rsa")]
    Rsa2048,
    /// Ed25519-SHA256 (RFC 8463). Not every receiver verifies it yet, so domains usually
    /// publish an RSA key beside it.
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl DkimAlgorithm {
    /// The `k=` tag value: `rsa` or `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa",
            Self::Ed25519 => "ed25519",
        }
    }

    fn lettre(self) -> DkimSigningAlgorithm {
        match self {
            Self::Rsa2048 => DkimSigningAlgorithm::Rsa,
            Self::Ed25519 => DkimSigningAlgorithm::Ed25519,
        }
    }
}

impl fmt::Display for DkimAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A DKIM private key with its public half. Built only through [`DkimKey::generate`] or
/// [`DkimKey::from_parts`], so it always parses. `Debug` never shows the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    algorithm: DkimAlgorithm,
    /// PKCS#1 PEM for RSA, the base64 Ed25519 seed for Ed25519: what lettre reads.
    private_key: String,
    /// The `p=` value, derived once: it cannot fail afterwards.
    public_key: String,
}

impl DkimKey {
    /// A new key from the operating system's randomness. RSA generation takes a noticeable
    /// time (tens to hundreds of milliseconds): call it from `spawn_blocking` in a server.
    pub fn generate(algorithm: DkimAlgorithm) -> Result<Self, EmailError> {
        match algorithm {
            DkimAlgorithm::Rsa2048 => {
                let key = RsaPrivateKey::new(&mut OsRng, RSA_GENERATED_BITS)
                    .map_err(|e| EmailError::dkim_key("RSA key generation failed", e))?;
                Self::from_rsa(&key)
            }
            DkimAlgorithm::Ed25519 => {
                let mut seed = [0u8; 32];
                OsRng
                    .try_fill_bytes(&mut seed)
                    .map_err(|e| EmailError::dkim_key("no randomness for an Ed25519 key", e))?;
                Self::from_ed25519_seed(&seed)
            }
        }
    }

    /// A stored or imported key. RSA accepts PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`) or PKCS#8 PEM
    /// (`BEGIN PRIVATE KEY`, what `openssl genpkey` writes) and keeps it as PKCS#1; Ed25519
    /// accepts the 32-byte seed in base64. Surrounding whitespace is ignored.
    pub fn from_parts(algorithm: DkimAlgorithm, private_key: &str) -> Result<Self, EmailError> {
        let text = private_key.trim();
        match algorithm {
            DkimAlgorithm::Rsa2048 => {
                let key = RsaPrivateKey::from_pkcs1_pem(text)
                    .or_else(|_| RsaPrivateKey::from_pkcs8_pem(text))
                    .map_err(|e| EmailError::dkim_key("not an RSA private key in PKCS#1 or PKCS#8 PEM", e))?;
                Self::from_rsa(&key)
            }
            DkimAlgorithm::Ed25519 => {
                let bytes =
                    STANDARD.decode(text).map_err(|e| EmailError::dkim_key("an Ed25519 key must be base64", e))?;
                let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| EmailError::InvalidDkimKey {
                    reason: format!("an Ed25519 key is a 32-byte seed, this one has {} bytes", bytes.len()),
                    source: None,
                })?;
                Self::from_ed25519_seed(&seed)
            }
        }
    }

    fn from_rsa(key: &RsaPrivateKey) -> Result<Self, EmailError> {
        let bits = key.size() * 8;
        if bits < RSA_MIN_BITS {
            return Err(EmailError::InvalidDkimKey {
                reason: format!("an RSA key needs at least {RSA_MIN_BITS} bits, this one has {bits}"),
                source: None,
            });
        }
        let pem =
            key.to_pkcs1_pem(LineEnding::LF).map_err(|e| EmailError::dkim_key("could not encode the RSA key", e))?;
        // DKIM's `p=` for RSA is the SubjectPublicKeyInfo DER (RFC 6376 §3.6.1), which is what
        // `openssl rsa -pubout` prints and what dkimpy and the big receivers parse.
        let spki = RsaPublicKey::from(key)
            .to_public_key_der()
            .map_err(|e| EmailError::dkim_key("could not encode the RSA public key", e))?;
        let key = Self {
            algorithm: DkimAlgorithm::Rsa2048,
            private_key: pem.as_str().to_owned(),
            public_key: STANDARD.encode(spki.as_bytes()),
        };
        key.lettre_key()?;
        Ok(key)
    }

    fn from_ed25519_seed(seed: &[u8; 32]) -> Result<Self, EmailError> {
        let signing = ed25519_dalek::SigningKey::from_bytes(seed);
        // RFC 8463 §4.2: `p=` is the raw 32-byte public key, not wrapped in any structure.
        let key = Self {
            algorithm: DkimAlgorithm::Ed25519,
            private_key: STANDARD.encode(seed),
            public_key: STANDARD.encode(signing.verifying_key().to_bytes()),
        };
        key.lettre_key()?;
        Ok(key)
    }

    /// lettre's parsed key; checked at construction so a `DkimKey` always converts.
    fn lettre_key(&self) -> Result<DkimSigningKey, EmailError> {
        DkimSigningKey::new(&self.private_key, self.algorithm.lettre())
            .map_err(|e| EmailError::dkim_key("lettre refused the key", e))
    }

    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    /// The private key in lettre's form (see the module docs). A secret: store it, never log it.
    pub fn private_key(&self) -> &str {
        &self.private_key
    }

    /// The `p=` value of the DNS record, base64 without line breaks.
    pub fn public_key_base64(&self) -> &str {
        &self.public_key
    }

    /// The TXT record to publish at `<selector>._domainkey.<domain>`, e.g.
    /// `v=DKIM1; k=rsa; p=MIIBIjAN…`. An RSA-2048 value is longer than 255 bytes, so DNS hosts
    /// split it into several strings of one record; verifiers join them.
    pub fn dns_txt_value(&self) -> String {
        format!("v=DKIM1; k={}; p={}", self.algorithm, self.public_key)
    }
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("algorithm", &self.algorithm)
            .field("private_key", &"[redacted]")
            .field("public_key", &self.public_key)
            .finish()
    }
}

/// Signs outgoing mail as `d=<domain>` with `s=<selector>`, relaxed/relaxed, covering the
/// headers in [`SIGNED_HEADERS`]. Cheap to clone: the parsed key is shared.
#[derive(Clone)]
pub struct DkimSigner {
    domain: String,
    selector: String,
    key: DkimKey,
    config: Arc<DkimConfig>,
}

impl DkimSigner {
    /// Checks that `domain` and `selector` are DNS names (ASCII; use the A-label of an
    /// internationalised domain) and parses the key once for every message it will sign.
    pub fn new(domain: &str, selector: &str, key: DkimKey) -> Result<Self, EmailError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        check_dns_name("dkim.domain", &domain)?;
        let selector = selector.trim().to_ascii_lowercase();
        check_dns_name("dkim.selector", &selector)?;
        let headers = SIGNED_HEADERS.iter().map(|name| HeaderName::new_from_ascii_str(name)).collect();
        let canonicalization =
            DkimCanonicalization { header: DkimCanonicalizationType::Relaxed, body: DkimCanonicalizationType::Relaxed };
        let config = DkimConfig::new(selector.clone(), domain.clone(), key.lettre_key()?, headers, canonicalization);
        Ok(Self { domain, selector, key, config: Arc::new(config) })
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

    pub(crate) fn config(&self) -> &DkimConfig {
        &self.config
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

    use super::*;

    #[test]
    fn ed25519_key_round_trips_and_publishes_the_raw_public_key() {
        let key = DkimKey::generate(DkimAlgorithm::Ed25519).unwrap();
        let again = DkimKey::from_parts(DkimAlgorithm::Ed25519, &format!(" {}\n", key.private_key())).unwrap();
        assert_eq!(again, key);
        assert_eq!(STANDARD.decode(key.public_key_base64()).unwrap().len(), 32);
        assert!(key.dns_txt_value().starts_with("v=DKIM1; k=ed25519; p="));
    }

    #[test]
    fn rsa_key_round_trips_through_pkcs1_and_pkcs8() {
        use rsa::pkcs8::EncodePrivateKey;

        let key = DkimKey::generate(DkimAlgorithm::Rsa2048).unwrap();
        assert!(key.private_key().starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(DkimKey::from_parts(DkimAlgorithm::Rsa2048, key.private_key()).unwrap(), key);

        let parsed = RsaPrivateKey::from_pkcs1_pem(key.private_key()).unwrap();
        let pkcs8 = parsed.to_pkcs8_pem(LineEnding::CRLF).unwrap();
        assert_eq!(DkimKey::from_parts(DkimAlgorithm::Rsa2048, &pkcs8).unwrap(), key);

        // SubjectPublicKeyInfo of an RSA-2048 key: 294 bytes, starting with the rsaEncryption OID.
        let spki = STANDARD.decode(key.public_key_base64()).unwrap();
        assert_eq!(spki.len(), 294);
        assert!(key.dns_txt_value().starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(DkimKey::from_parts(DkimAlgorithm::Ed25519, "not base64!").is_err());
        assert!(DkimKey::from_parts(DkimAlgorithm::Ed25519, &STANDARD.encode([7u8; 31])).is_err());
        assert!(DkimKey::from_parts(DkimAlgorithm::Rsa2048, "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n").is_err());
        let ed = DkimKey::generate(DkimAlgorithm::Ed25519).unwrap();
        assert!(DkimKey::from_parts(DkimAlgorithm::Rsa2048, ed.private_key()).is_err());
    }

    #[test]
    fn short_rsa_keys_are_refused() {
        let small = RsaPrivateKey::new(&mut OsRng, 512).unwrap();
        let pem = small.to_pkcs1_pem(LineEnding::LF).unwrap();
        let err = DkimKey::from_parts(DkimAlgorithm::Rsa2048, &pem).unwrap_err();
        assert!(err.to_string().contains("at least 1024 bits"), "{err}");
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = DkimKey::generate(DkimAlgorithm::Ed25519).unwrap();
        let signer = DkimSigner::new("example.com", "herald", key.clone()).unwrap();
        for shown in [format!("{key:?}"), format!("{signer:?}")] {
            assert!(!shown.contains(key.private_key()), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
    }

    #[test]
    fn algorithm_serde_names() {
        assert_eq!(serde_json::to_string(&DkimAlgorithm::Rsa2048).unwrap(), "\"rsa\"");
        assert_eq!(serde_json::from_str::<DkimAlgorithm>("\"ed25519\"").unwrap(), DkimAlgorithm::Ed25519);
        assert!(serde_json::from_str::<DkimAlgorithm>("\"rsa2048\"").is_err());
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
