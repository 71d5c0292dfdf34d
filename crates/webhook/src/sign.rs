//! Signing outbound webhook requests, twice over: Herald's own `v0` scheme (an
//! `X-…-Timestamp`/`X-…-Signature` pair, as Customer.io signs) and
//! [Standard Webhooks](https://www.standardwebhooks.com/), so a receiver can verify with an
//! off-the-shelf library or with ten lines of its own.
//!
//! Both schemes use the same signing secret, shown to users as a string: the workspace's key
//! in the Standard Webhooks form `whsec_<base64 of 32 random bytes>`, or a campaign event
//! webhook's own secret (a `whsec_…` string or any text). Each scheme keys its HMAC by its own
//! rule, so each verifier can follow its own recipe:
//!
//! - Standard Webhooks: the *decoded bytes* after `whsec_` (a text secret's UTF-8 bytes), as
//!   that specification and its libraries do;
//! - `v0`: the secret *as the user sees it*, the whole string as UTF-8 bytes, `whsec_`
//!   included, as the Customer.io-style recipe reads ("HMAC-SHA256 of `v0:<timestamp>:<body>`
//!   keyed with your signing secret"). Keying `v0` with the decoded bytes instead made such a
//!   verifier fail on calls signed by the workspace key and pass on text secrets: one rule for
//!   every secret is the one a receiver can guess.
//!
//! # Headers of every request
//!
//! | header | value |
//! | --- | --- |
//! | `webhook-id` | the message id (stable across retries: receivers deduplicate on it) |
//! | `webhook-timestamp` | unix seconds when this attempt was signed |
//! | `webhook-signature` | `v1,<base64 HMAC-SHA256(decoded key, "{webhook-id}.{timestamp}.{body}")>`, one per key, space-separated |
//! | `X-Herald-Timestamp` | the same unix seconds |
//! | `X-Herald-Signature` | `<hex HMAC-SHA256(secret string, "v0:{timestamp}:{body}")>`, one per key, comma-separated |
//! | `Idempotency-Key` | the same value as `webhook-id` |
//!
//! `{body}` is the raw request body, byte for byte: a receiver must hash what it received,
//! never a re-serialisation of parsed JSON.
//!
//! # Key rotation
//!
//! During a rotation's overlap both keys sign, newest first, so a receiver configured with
//! either key accepts the request. Standard Webhooks already defines a space-separated list
//! for that. For `X-Herald-Signature` the list is comma-separated bare hex digests. With one
//! key (the usual case) the header is therefore exactly one hex digest, so a receiver written
//! for a single signature works unchanged until a rotation starts; a receiver that splits on
//! `,` and accepts any match works always. (A `v0=` prefix per value was the alternative; it
//! buys nothing here, since the version is already inside the signed string, and it would
//! break those receivers.)
//!
//! # Verifying, for receivers
//!
//! Standard Webhooks, with the `standardwebhooks` package (Python; the JavaScript package of
//! the same name is used the same way):
//!
//! ```python
//! from standardwebhooks.webhooks import Webhook
//!
//! payload = Webhook("whsec_…").verify(raw_body, request_headers)  # raises if invalid
//! ```
//!
//! Herald `v0`, Python with the standard library only (`secret` is the `whsec_…` string):
//!
//! ```python
//! import hashlib, hmac, time
//!
//! def verify_herald_v0(secret: str, headers, raw_body: bytes) -> bool:
//!     timestamp = headers["X-Herald-Timestamp"]
//!     if abs(time.time() - int(timestamp)) > 300:  # refuse replays of old requests
//!         return False
//!     expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw_body, hashlib.sha256).hexdigest()
//!     return any(hmac.compare_digest(expected, given.strip())
//!                for given in headers["X-Herald-Signature"].split(","))
//! ```
//!
//! Herald `v0`, Node.js with `node:crypto` only (`rawBody` a `Buffer`, `headers` lower-cased
//! as Node gives them):
//!
//! ```js
//! const crypto = require("node:crypto");
//!
//! function verifyHeraldV0(secret, headers, rawBody) {
//!   const timestamp = headers["x-herald-timestamp"];
//!   if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
//!   const expected = crypto.createHmac("sha256", secret).update(`v0:${timestamp}:`).update(rawBody).digest();
//!   return headers["x-herald-signature"].split(",").some((hex) => {
//!     const given = Buffer.from(hex.trim(), "hex");
//!     return given.length === expected.length && crypto.timingSafeEqual(given, expected);
//!   });
//! }
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The prefix of a secret in the Standard Webhooks format.
pub const STANDARD_SECRET_PREFIX: &str = "whsec_";

/// Header names, as sent. HTTP header names are case-insensitive; these are the spellings of
/// the two specifications.
pub const WEBHOOK_ID: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
pub const HERALD_TIMESTAMP: &str = "X-Herald-Timestamp";
pub const HERALD_SIGNATURE: &str = "X-Herald-Signature";
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Secrets shorter than this are refused: Standard Webhooks asks for 24 to 64 bytes, and a
/// short HMAC key is a guessable one.
const MIN_SECRET_LEN: usize = 24;
const MAX_SECRET_LEN: usize = 64;

/// A webhook signing key: a public label, the secret bytes (the Standard Webhooks key) and the
/// secret as users see it (the `v0` key). `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// A public label for the key, safe to show and log (for example which key signed).
    /// [`SigningKey::generate`] and [`SigningKey::parse_standard`] derive it from the secret
    /// ([`SigningKey::fingerprint`]); [`SigningKey::from_secret`] and
    /// [`SigningKey::from_text`] take the caller's.
    pub id: String,
    secret: Vec<u8>,
    shown: String,
}

/// Why a Standard Webhooks secret was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("the secret is not base64 after its whsec_ prefix")]
    NotBase64,
    #[error("the secret is {len} bytes long; it must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes")]
    Length { len: usize },
}

impl SigningKey {
    /// A new key of 32 random bytes (from the operating system's generator, through `rand`).
    pub fn generate() -> SigningKey {
        let secret = rand::random::<[u8; 32]>().to_vec();
        SigningKey::from_secret(Self::fingerprint(&secret), secret)
    }

    /// A key from stored parts. The secret is taken as is, whatever its length: this is how a
    /// key comes back from the database, where it was validated when it was made. Users see
    /// it as `whsec_` + base64.
    pub fn from_secret(id: impl Into<String>, secret: impl Into<Vec<u8>>) -> SigningKey {
        let secret = secret.into();
        let shown = format!("{STANDARD_SECRET_PREFIX}{}", STANDARD.encode(&secret));
        SigningKey { id: id.into(), secret, shown }
    }

    /// A key that is text chosen by the user (a campaign event webhook's secret): both schemes
    /// are keyed with its UTF-8 bytes.
    pub fn from_text(id: impl Into<String>, text: &str) -> SigningKey {
        SigningKey { id: id.into(), secret: text.as_bytes().to_vec(), shown: text.to_owned() }
    }

    /// Parses a secret in the Standard Webhooks format, `whsec_<base64>` (the prefix is
    /// optional, padding too, as in the reference libraries). The id is the fingerprint; the
    /// `v0` key is `s` exactly as given.
    pub fn parse_standard(s: &str) -> Result<SigningKey, KeyParseError> {
        let encoded = s.trim();
        let encoded = encoded.strip_prefix(STANDARD_SECRET_PREFIX).unwrap_or(encoded);
        let secret = STANDARD_NO_PAD.decode(encoded.trim_end_matches('=')).map_err(|_| KeyParseError::NotBase64)?;
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
            return Err(KeyParseError::Length { len: secret.len() });
        }
        Ok(SigningKey { id: Self::fingerprint(&secret), secret, shown: s.to_owned() })
    }

    /// The secret in the Standard Webhooks format receivers configure: `whsec_` + base64.
    pub fn to_standard_secret(&self) -> String {
        format!("{STANDARD_SECRET_PREFIX}{}", STANDARD.encode(&self.secret))
    }

    /// The secret as users see it, which keys `X-Herald-Signature`: the workspace key's
    /// `whsec_…` string, or a webhook's own secret as written.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The secret bytes, for storing the key.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// A public label derived from a secret: `whk_` and the first 12 hex digits of its
    /// SHA-256. It tells keys apart in a list without revealing anything usable about them.
    pub fn fingerprint(secret: &[u8]) -> String {
        let digest = Sha256::digest(secret);
        let hex = to_hex(&digest);
        format!("whk_{}", &hex[..12])
    }

    /// The Standard Webhooks HMAC: keyed with the secret bytes.
    fn mac_standard(&self) -> HmacSha256 {
        mac(&self.secret)
    }

    /// The `v0` HMAC: keyed with the secret as shown.
    fn mac_v0(&self) -> HmacSha256 {
        mac(self.shown.as_bytes())
    }
}

/// A campaign event webhook's own secret given as text shorter than this is refused (a short
/// HMAC key is a guessable one).
pub const MIN_TEXT_SECRET_LEN: usize = 16;
/// The longest text secret a campaign event webhook may have, in characters.
pub const MAX_TEXT_SECRET_LEN: usize = 256;

/// Checks a campaign event webhook's own secret: a Standard Webhooks secret (`whsec_` + base64
/// of 24 to 64 bytes) or any text of [`MIN_TEXT_SECRET_LEN`] to [`MAX_TEXT_SECRET_LEN`]
/// characters.
pub fn check_secret(secret: &str) -> Result<(), String> {
    if secret.starts_with(STANDARD_SECRET_PREFIX) {
        return SigningKey::parse_standard(secret).map(|_| ()).map_err(|e| e.to_string());
    }
    let len = secret.chars().count();
    if (MIN_TEXT_SECRET_LEN..=MAX_TEXT_SECRET_LEN).contains(&len) {
        Ok(())
    } else {
        Err(format!("must be {MIN_TEXT_SECRET_LEN} to {MAX_TEXT_SECRET_LEN} characters, or a whsec_ secret"))
    }
}

impl SigningKey {
    /// The key a campaign event webhook's own secret signs with. `X-Herald-Signature` is keyed
    /// with the secret as written, whatever it is; Standard Webhooks with a `whsec_` secret's
    /// decoded bytes, else the text's UTF-8 bytes (receivers using a Standard Webhooks library
    /// then configure `whsec_` + base64 of those bytes).
    pub fn from_webhook_secret(secret: &str) -> SigningKey {
        SigningKey::parse_standard(secret)
            .ok()
            .filter(|_| secret.starts_with(STANDARD_SECRET_PREFIX))
            .unwrap_or_else(|| SigningKey::from_text("campaign-webhook", secret))
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (longer ones are hashed first), so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("id", &self.id).field("secret", &"[redacted]").finish()
    }
}

/// The signing headers of one request. See the module documentation for the formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub webhook_id: String,
    pub webhook_timestamp: String,
    pub webhook_signature: String,
    pub herald_timestamp: String,
    pub herald_signature: String,
    pub idempotency_key: String,
}

impl SignatureHeaders {
    /// The headers as `(name, value)` pairs, in a fixed order.
    pub fn pairs(&self) -> [(&'static str, &str); 6] {
        [
            (WEBHOOK_ID, &self.webhook_id),
            (WEBHOOK_TIMESTAMP, &self.webhook_timestamp),
            (WEBHOOK_SIGNATURE, &self.webhook_signature),
            (HERALD_TIMESTAMP, &self.herald_timestamp),
            (HERALD_SIGNATURE, &self.herald_signature),
            (IDEMPOTENCY_KEY, &self.idempotency_key),
        ]
    }

    /// The headers as owned pairs, ready for [`crate::client::OutboundRequest::headers`].
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs().into_iter().map(|(name, value)| (name.to_owned(), value.to_owned())).collect()
    }
}

/// Signs one request body with every key given (pass the newest first; during a rotation's
/// overlap pass both). `timestamp` is unix seconds, taken by the caller when it sends the
/// attempt: each retry is signed afresh, so receivers' replay windows stay short.
///
/// With no key at all the two signature headers are empty and no receiver will accept the
/// request; a workspace always has a current key, so that is a caller's bug, not a state.
pub fn sign(keys: &[SigningKey], webhook_id: &str, timestamp: i64, body: &[u8]) -> SignatureHeaders {
    let timestamp = timestamp.to_string();
    let standard = keys
        .iter()
        .map(|key| format!("v1,{}", STANDARD.encode(standard_mac(key, webhook_id, &timestamp, body))))
        .collect::<Vec<_>>()
        .join(" ");
    let herald = keys.iter().map(|key| to_hex(&v0_mac(key.mac_v0(), &timestamp, body))).collect::<Vec<_>>().join(",");
    SignatureHeaders {
        webhook_id: webhook_id.to_owned(),
        webhook_timestamp: timestamp.clone(),
        webhook_signature: standard,
        herald_timestamp: timestamp,
        herald_signature: herald,
        idempotency_key: webhook_id.to_owned(),
    }
}

/// Checks an `X-Herald-Signature` header against one secret, as users see it (`whsec_…` or
/// a webhook's own text): true if any of its comma-separated digests is the `v0` HMAC of this
/// timestamp and body. Each comparison is in constant time. It does not judge the timestamp's
/// age: a receiver must also refuse old ones.
///
/// Herald's own documentation and tests use this; the independent check of the scheme is the
/// Python test in `tests/`.
pub fn verify_v0(secret: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let timestamp = timestamp.to_string();
    header.split(',').filter_map(|given| from_hex(given.trim())).any(|given| {
        let mut mac = mac(secret.as_bytes());
        feed_v0(&mut mac, &timestamp, body);
        mac.verify_slice(&given).is_ok()
    })
}

/// Checks a Standard Webhooks `webhook-signature` header (space-separated `v1,<base64>`
/// entries) against `key`: true if any entry is the HMAC of `id.timestamp.body`, compared in
/// constant time. Used for notifications signed by others (Resend's webhooks). It does not
/// judge the timestamp's age: the caller must also refuse old ones.
pub fn verify_standard(key: &SigningKey, webhook_id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    header.split_whitespace().filter_map(|entry| entry.strip_prefix("v1,")).any(|given| {
        let Ok(given) = STANDARD.decode(given) else { return false };
        let mut mac = key.mac_standard();
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    })
}

fn standard_mac(key: &SigningKey, webhook_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = key.mac_standard();
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn v0_mac(mut mac: HmacSha256, timestamp: &str, body: &[u8]) -> Vec<u8> {
    feed_v0(&mut mac, timestamp, body);
    mac.finalize().into_bytes().to_vec()
}

fn feed_v0(mac: &mut HmacSha256, timestamp: &str, body: &[u8]) {
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Decodes hex of either case; `None` if it is not an even number of hex digits.
fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Known answers computed independently with Python's `hmac` (see
    /// `tests/verify_standard_webhooks.py`, which also recomputes them on every test run):
    ///
    /// ```python
    /// key = bytes(range(32))
    /// secret = "whsec_" + base64.b64encode(key).decode()
    /// hmac.new(secret.encode(), b"v0:1700000000:" + body, hashlib.sha256).hexdigest()
    /// base64.b64encode(hmac.new(key, b"msg_2b7kQ.1700000000." + body, hashlib.sha256).digest())
    /// ```
    const BODY: &[u8] = br#"{"event":"signed_up","email":"ada@example.com"}"#;
    const V0_HEX: &str = "2c38013b14ca916583888e08e69a860c0ff19bcfd9f603de528c2c68029bf4f1";
    const V1_B64: &str = "M8ZXbUkRV+nj4mpUH0vxgTWuiomyTPqWz+hrkJ2iAvM=";

    fn key() -> SigningKey {
        SigningKey::from_secret("k1", (0u8..32).collect::<Vec<_>>())
    }

    #[test]
    fn secrets_are_standard_or_long_enough_text() {
        assert!(check_secret("a-long-enough-secret").is_ok());
        assert!(check_secret("short").is_err());
        assert!(check_secret("whsec_notbase64!!").is_err());
        let standard = SigningKey::generate().to_standard_secret();
        assert!(check_secret(&standard).is_ok());
        assert_eq!(SigningKey::from_webhook_secret(&standard).to_standard_secret(), standard);
        assert_eq!(SigningKey::from_webhook_secret(&standard).shown(), standard);
        assert_eq!(SigningKey::from_webhook_secret("a-long-enough-secret").secret(), b"a-long-enough-secret");
        assert_eq!(SigningKey::from_webhook_secret("a-long-enough-secret").shown(), "a-long-enough-secret");
    }

    #[test]
    fn known_answers() {
        let headers = sign(&[key()], "msg_2b7kQ", 1_700_000_000, BODY);
        assert_eq!(headers.herald_signature, V0_HEX);
        assert_eq!(headers.webhook_signature, format!("v1,{V1_B64}"));
        assert_eq!(headers.webhook_timestamp, "1700000000");
        assert_eq!(headers.herald_timestamp, "1700000000");
        assert_eq!(headers.webhook_id, "msg_2b7kQ");
        assert_eq!(headers.idempotency_key, "msg_2b7kQ");
    }

    #[test]
    fn two_keys_sign_newest_first_and_either_verifies() {
        let old = key();
        let new = SigningKey::generate();
        let headers = sign(&[new.clone(), old.clone()], "msg_2b7kQ", 1_700_000_000, BODY);
        let v0: Vec<&str> = headers.herald_signature.split(',').collect();
        assert_eq!(v0.len(), 2);
        assert_eq!(v0[1], V0_HEX);
        let v1: Vec<&str> = headers.webhook_signature.split(' ').collect();
        assert_eq!(v1.len(), 2);
        assert_eq!(v1[1], format!("v1,{V1_B64}"));
        for k in [&new, &old] {
            assert!(verify_v0(k.shown(), 1_700_000_000, BODY, &headers.herald_signature));
        }
        let other = SigningKey::generate();
        assert!(!verify_v0(other.shown(), 1_700_000_000, BODY, &headers.herald_signature));
    }

    #[test]
    fn verify_v0_refuses_tampering_and_garbage() {
        let k = key();
        assert_eq!(k.shown(), "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        assert!(verify_v0(k.shown(), 1_700_000_000, BODY, V0_HEX));
        assert!(verify_v0(k.shown(), 1_700_000_000, BODY, &V0_HEX.to_uppercase()));
        assert!(verify_v0(k.shown(), 1_700_000_000, BODY, &format!(" {V0_HEX} ")));
        assert!(!verify_v0(k.shown(), 1_700_000_001, BODY, V0_HEX));
        assert!(!verify_v0(k.shown(), 1_700_000_000, b"{}", V0_HEX));
        assert!(!verify_v0(k.shown(), 1_700_000_000, BODY, &V0_HEX[..62]));
        assert!(!verify_v0(k.shown(), 1_700_000_000, BODY, ""));
        assert!(!verify_v0(k.shown(), 1_700_000_000, BODY, "zz"));
        assert!(!verify_v0(k.shown(), 1_700_000_000, BODY, "é1"));
    }

    #[test]
    fn standard_secret_round_trips() {
        let k = SigningKey::generate();
        let text = k.to_standard_secret();
        assert!(text.starts_with("whsec_"));
        let parsed = SigningKey::parse_standard(&text).unwrap();
        assert_eq!(parsed.secret(), k.secret());
        assert_eq!(parsed.id, k.id);
        assert_eq!((parsed.shown(), k.shown()), (text.as_str(), text.as_str()));
        // Without prefix and without padding, as the reference libraries accept.
        let bare = text.trim_start_matches("whsec_").trim_end_matches('=');
        assert_eq!(SigningKey::parse_standard(bare).unwrap().secret(), k.secret());
        // The v0 key is the secret as the user wrote it.
        assert_eq!(SigningKey::parse_standard(bare).unwrap().shown(), bare);
        let text_key = SigningKey::from_text("t", "a-long-enough-secret");
        assert_eq!((text_key.secret(), text_key.shown()), (b"a-long-enough-secret".as_slice(), "a-long-enough-secret"));
    }

    #[test]
    fn standard_secret_parse_errors() {
        assert_eq!(SigningKey::parse_standard("whsec_not base64!"), Err(KeyParseError::NotBase64));
        assert_eq!(SigningKey::parse_standard("whsec_c2hvcnQ="), Err(KeyParseError::Length { len: 5 }));
        assert_eq!(SigningKey::parse_standard(""), Err(KeyParseError::Length { len: 0 }));
    }

    #[test]
    fn generated_keys_differ_and_debug_hides_the_secret() {
        let a = SigningKey::generate();
        let b = SigningKey::generate();
        assert_ne!(a.secret(), b.secret());
        assert_eq!(a.secret().len(), 32);
        assert!(a.id.starts_with("whk_") && a.id.len() == 16);
        let debug = format!("{a:?}");
        assert!(debug.contains("[redacted]") && debug.contains(&a.id));
        assert!(!debug.contains(&STANDARD.encode(a.secret())));
        assert!(!debug.contains(&format!("{:?}", a.secret())));
        assert!(!debug.contains(a.shown()));
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("+1"), None);
    }
}

#[cfg(test)]
mod verify_tests {
    use super::*;

    #[test]
    fn standard_signatures_verify_only_unchanged() {
        let key = SigningKey::parse_standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid secret");
        let headers =
            sign(std::slice::from_ref(&key), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b"{\"test\": 2432232314}");
        let ok = |id: &str, ts: &str, body: &[u8]| verify_standard(&key, id, ts, body, &headers.webhook_signature);
        assert!(ok("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", b"{\"test\": 2432232314}"));
        assert!(!ok("msg_other", "1614265330", b"{\"test\": 2432232314}"));
        assert!(!ok("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265331", b"{\"test\": 2432232314}"));
        assert!(!ok("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", b"{\"test\": 1}"));
        assert!(!verify_standard(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", b"", "v1,garbage v2,x"));
    }
}
