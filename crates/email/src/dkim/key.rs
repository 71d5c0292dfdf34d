//! DKIM keys: generation from OS randomness, import of an operator's key, the public half for
//! the `<selector>._domainkey` TXT record, and the parsed key pair the signer uses.
//!
//! Private keys are stored as text: PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`) for RSA and
//! the 32-byte Ed25519 seed in standard base64 for Ed25519 (the forms Herald has always
//! stored). Both are parsed once, into aws-lc-rs key pairs, when a `DkimKey` is built.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::message::EmailError;

/// Bits of a generated RSA key, and the fewest an imported one may have. RFC 8301 allows
/// signers 1024 bits but recommends 2048; aws-lc-rs signs only with 2048 to 8192 bits.
const RSA_MIN_BITS: usize = 2048;

/// A DKIM signing algorithm, as stored and as accepted by the API: `"rsa"` or `"ed25519"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DkimAlgorithm {
    /// RSA-SHA256; keys of 2048 to 8192 bits, generated ones have 2048.
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
}

impl fmt::Display for DkimAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parsed private key, shared by every clone of a key and its signers.
pub(super) enum KeyPairOf {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A DKIM private key with its public half. Built only through [`DkimKey::generate`] or
/// [`DkimKey::from_parts`], so it always parses. `Debug` never shows the private key.
#[derive(Clone)]
pub struct DkimKey {
    algorithm: DkimAlgorithm,
    /// PKCS#1 PEM for RSA, the base64 Ed25519 seed for Ed25519 (see the module docs).
    private_key: String,
    /// The `p=` value, derived once: it cannot fail afterwards.
    public_key: String,
    pair: Arc<KeyPairOf>,
}

impl DkimKey {
    /// A new key from the operating system's randomness. RSA generation takes a noticeable
    /// time (tens to hundreds of milliseconds): call it from `spawn_blocking` in a server.
    pub fn generate(algorithm: DkimAlgorithm) -> Result<Self, EmailError> {
        match algorithm {
            DkimAlgorithm::Rsa2048 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|e| EmailError::dkim_key("RSA key generation failed", e))?;
                let pkcs8 = pair.as_der().map_err(|e| EmailError::dkim_key("could not encode the RSA key", e))?;
                Self::from_rsa_pkcs1(pkcs1_of_pkcs8(pkcs8.as_ref())?)
            }
            DkimAlgorithm::Ed25519 => {
                let mut seed = [0u8; 32];
                aws_lc_rs::rand::fill(&mut seed)
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
                if let Some(pkcs1) = pem(text, "RSA PRIVATE KEY")? {
                    Self::from_rsa_pkcs1(pkcs1)
                } else if let Some(pkcs8) = pem(text, "PRIVATE KEY")? {
                    Self::from_rsa_pkcs1(pkcs1_of_pkcs8(&pkcs8)?)
                } else {
                    Err(EmailError::InvalidDkimKey {
                        reason: "not an RSA private key in PKCS#1 or PKCS#8 PEM".to_owned(),
                        source: None,
                    })
                }
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

    fn from_rsa_pkcs1(der: Vec<u8>) -> Result<Self, EmailError> {
        // Checked here rather than left to aws-lc-rs, whose refusal does not say the size.
        let bits = rsa_modulus_bits(&der).ok_or_else(|| EmailError::InvalidDkimKey {
            reason: "not an RSA private key (PKCS#1 RSAPrivateKey)".to_owned(),
            source: None,
        })?;
        if bits < RSA_MIN_BITS {
            return Err(EmailError::InvalidDkimKey {
                reason: format!("an RSA key needs at least {RSA_MIN_BITS} bits, this one has {bits}"),
                source: None,
            });
        }
        let pair = RsaKeyPair::from_der(&der).map_err(|e| EmailError::dkim_key("not a usable RSA private key", e))?;
        // DKIM's `p=` for RSA is the SubjectPublicKeyInfo DER (RFC 6376 §3.6.1), which is what
        // `openssl rsa -pubout` prints and what dkimpy and the big receivers parse.
        let spki =
            pair.public_key().as_der().map_err(|e| EmailError::dkim_key("could not encode the RSA public key", e))?;
        Ok(Self {
            algorithm: DkimAlgorithm::Rsa2048,
            private_key: pem_encode("RSA PRIVATE KEY", &der),
            public_key: STANDARD.encode(spki.as_ref()),
            pair: Arc::new(KeyPairOf::Rsa(pair)),
        })
    }

    fn from_ed25519_seed(seed: &[u8; 32]) -> Result<Self, EmailError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| EmailError::dkim_key("not a usable Ed25519 seed", e))?;
        // RFC 8463 §4.2: `p=` is the raw 32-byte public key, not wrapped in any structure.
        Ok(Self {
            algorithm: DkimAlgorithm::Ed25519,
            private_key: STANDARD.encode(seed),
            public_key: STANDARD.encode(pair.public_key().as_ref()),
            pair: Arc::new(KeyPairOf::Ed25519(pair)),
        })
    }

    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    /// The private key in its stored form (see the module docs). A secret: store it, never log it.
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

    pub(super) fn pair(&self) -> &KeyPairOf {
        &self.pair
    }
}

/// Two keys are equal when they are the same private key (the rest derives from it).
impl PartialEq for DkimKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.private_key == other.private_key
    }
}

impl Eq for DkimKey {}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("algorithm", &self.algorithm)
            .field("private_key", &"[redacted]")
            .field("public_key", &self.public_key)
            .finish()
    }
}

/// The DER inside a PEM block labelled `label` (RFC 7468), `None` if `text` is not one.
fn pem(text: &str, label: &str) -> Result<Option<Vec<u8>>, EmailError> {
    let Some(inner) = text
        .strip_prefix(&format!("-----BEGIN {label}-----"))
        .and_then(|rest| rest.strip_suffix(&format!("-----END {label}-----")))
    else {
        return Ok(None);
    };
    let base64: String = inner.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(base64).map(Some).map_err(|e| EmailError::dkim_key("the PEM block is not base64", e))
}

/// PEM as OpenSSL (and Herald's earlier `rsa` crate) writes it: LF line ends, 64 characters a
/// line, so a stored key reads back to the same text.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let base64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The OID 1.2.840.113549.1.1.1 (rsaEncryption), DER-encoded contents.
const RSA_ENCRYPTION_OID: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (RFC 5208): `SEQUENCE { version,
/// SEQUENCE { rsaEncryption, NULL }, OCTET STRING { RSAPrivateKey } }`. aws-lc-rs reads and
/// writes PKCS#8 but only reads PKCS#1, the form Herald stores.
fn pkcs1_of_pkcs8(pkcs8: &[u8]) -> Result<Vec<u8>, EmailError> {
    let inner = || {
        let (info, _) = der_element(pkcs8, 0x30)?;
        let (_version, rest) = der_element(info, 0x02)?;
        let (algorithm, rest) = der_element(rest, 0x30)?;
        let (oid, _) = der_element(algorithm, 0x06)?;
        let (key, _) = der_element(rest, 0x04)?;
        (oid == RSA_ENCRYPTION_OID).then(|| key.to_vec())
    };
    inner().ok_or_else(|| EmailError::InvalidDkimKey {
        reason: "not an RSA private key in PKCS#8 (PrivateKeyInfo with rsaEncryption)".to_owned(),
        source: None,
    })
}

/// The bit length of the modulus of a PKCS#1 `RSAPrivateKey` (`SEQUENCE { version, n, … }`).
fn rsa_modulus_bits(pkcs1: &[u8]) -> Option<usize> {
    let (key, _) = der_element(pkcs1, 0x30)?;
    let (_version, rest) = der_element(key, 0x02)?;
    let (modulus, _) = der_element(rest, 0x02)?;
    let first = modulus.iter().position(|&b| b != 0)?;
    Some((modulus.len() - first - 1) * 8 + (8 - modulus[first].leading_zeros() as usize))
}

/// The contents of the DER element at the start of `input` if its tag is `tag`, and what
/// follows it. Definite lengths only, as DER requires.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        (bytes.iter().fold(0usize, |len, &b| len << 8 | usize::from(b)), rest)
    };
    (found == tag && rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const OPENSSL_PKCS1: &str = include_str!("testdata/rsa2048.pem");
    const OPENSSL_PKCS8: &str = include_str!("testdata/rsa2048.pkcs8.pem");
    const OPENSSL_SPKI: &str = include_str!("testdata/rsa2048.spki.b64");
    const OPENSSL_1024: &str = include_str!("testdata/rsa1024.pem");

    #[test]
    fn ed25519_key_round_trips_and_publishes_the_raw_public_key() {
        let key = DkimKey::generate(DkimAlgorithm::Ed25519).unwrap();
        let again = DkimKey::from_parts(DkimAlgorithm::Ed25519, &format!(" {}\n", key.private_key())).unwrap();
        assert_eq!(again, key);
        assert_eq!(again.public_key_base64(), key.public_key_base64());
        assert_eq!(STANDARD.decode(key.public_key_base64()).unwrap().len(), 32);
        assert!(key.dns_txt_value().starts_with("v=DKIM1; k=ed25519; p="));
    }

    #[test]
    fn ed25519_public_key_matches_rfc_8032() {
        // RFC 8032 §7.1, test 1: the secret key (seed) and its public key.
        let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let hex = |s: &str| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
        let seed: Vec<u8> = hex(seed);
        let key = DkimKey::from_parts(DkimAlgorithm::Ed25519, &STANDARD.encode(seed)).unwrap();
        assert_eq!(STANDARD.decode(key.public_key_base64()).unwrap(), hex(public));
    }

    #[test]
    fn generated_rsa_key_round_trips() {
        let key = DkimKey::generate(DkimAlgorithm::Rsa2048).unwrap();
        assert!(key.private_key().starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        assert!(key.private_key().ends_with("\n-----END RSA PRIVATE KEY-----\n"));
        assert!(key.private_key().lines().all(|line| line.len() <= 64));
        let again = DkimKey::from_parts(DkimAlgorithm::Rsa2048, key.private_key()).unwrap();
        assert_eq!(again, key);
        assert_eq!(again.public_key_base64(), key.public_key_base64());
        // SubjectPublicKeyInfo of an RSA-2048 key: 294 bytes, starting with the rsaEncryption OID.
        let spki = STANDARD.decode(key.public_key_base64()).unwrap();
        assert_eq!(spki.len(), 294);
        assert!(key.dns_txt_value().starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"));
    }

    #[test]
    fn openssl_keys_read_in_pkcs1_and_pkcs8_and_publish_what_openssl_publishes() {
        // Written by `openssl genrsa -traditional 2048`, `openssl pkcs8 -topk8 -nocrypt` and
        // `openssl rsa -pubout -outform DER | base64`: an independent encoder of each form.
        let pkcs1 = DkimKey::from_parts(DkimAlgorithm::Rsa2048, OPENSSL_PKCS1).unwrap();
        assert_eq!(pkcs1.private_key(), OPENSSL_PKCS1, "the stored text is OpenSSL's own");
        assert_eq!(pkcs1.public_key_base64(), OPENSSL_SPKI.trim());
        let crlf = OPENSSL_PKCS8.replace('\n', "\r\n");
        let pkcs8 = DkimKey::from_parts(DkimAlgorithm::Rsa2048, &crlf).unwrap();
        assert_eq!(pkcs8, pkcs1, "PKCS#8 is kept as PKCS#1");
        assert_eq!(pkcs8.private_key(), OPENSSL_PKCS1);
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(DkimKey::from_parts(DkimAlgorithm::Ed25519, "not base64!").is_err());
        assert!(DkimKey::from_parts(DkimAlgorithm::Ed25519, &STANDARD.encode([7u8; 31])).is_err());
        for bad in [
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n",
            "",
        ] {
            assert!(DkimKey::from_parts(DkimAlgorithm::Rsa2048, bad).is_err(), "{bad:?}");
        }
        // A PKCS#8 key of another algorithm (an Ed25519 key as `openssl genpkey` writes it).
        let ed25519_pkcs8 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFgoMUUWCubeEngL4TfpikqT+MfCM6wJp804nOS2efqI\n-----END PRIVATE KEY-----";
        let err = DkimKey::from_parts(DkimAlgorithm::Rsa2048, ed25519_pkcs8).unwrap_err();
        assert!(err.to_string().contains("rsaEncryption"), "{err}");
        let ed = DkimKey::generate(DkimAlgorithm::Ed25519).unwrap();
        assert!(DkimKey::from_parts(DkimAlgorithm::Rsa2048, ed.private_key()).is_err());
    }

    #[test]
    fn short_rsa_keys_are_refused_with_their_size() {
        let err = DkimKey::from_parts(DkimAlgorithm::Rsa2048, OPENSSL_1024).unwrap_err();
        assert!(err.to_string().contains("at least 2048 bits, this one has 1024"), "{err}");
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_element(&[0x04, 0x02, 1, 2, 3], 0x04), Some((&[1u8, 2][..], &[3u8][..])));
        assert_eq!(der_element(&[0x04, 0x81, 0x01, 9], 0x04), Some((&[9u8][..], &[][..])));
        assert_eq!(der_element(&[0x04, 0x03, 1, 2], 0x04), None, "shorter than its length");
        assert_eq!(der_element(&[0x04, 0x80], 0x04), None, "indefinite length");
        assert_eq!(der_element(&[0x02, 0x01, 1], 0x04), None, "another tag");
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = DkimKey::generate(DkimAlgorithm::Ed25519).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(key.private_key()), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn algorithm_serde_names() {
        assert_eq!(serde_json::to_string(&DkimAlgorithm::Rsa2048).unwrap(), "\"rsa\"");
        assert_eq!(serde_json::from_str::<DkimAlgorithm>("\"ed25519\"").unwrap(), DkimAlgorithm::Ed25519);
        assert!(serde_json::from_str::<DkimAlgorithm>("\"rsa2048\"").is_err());
    }
}
