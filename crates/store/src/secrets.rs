//! Secrets at rest: the key ring both backends seal stored secrets with (SMTP passwords,
//! webhook Basic passwords, signing secrets, DKIM keys, saved actions) and open them with.
//!
//! A sealed value is the text envelope `hs1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`:
//! AES-256-GCM (aws-lc-rs, already in the tree for DKIM) under a random 96-bit nonce, with
//! the column's name as associated data, so a value copied into another column does not open.
//! The key id (the first 8 hex digits of a hash of the key) names which key sealed it, so a
//! ring holding the current key and previous ones opens everything while a rotation is under
//! way, and [`SecretKeys::is_current`] tells a backend which rows to seal again. ADR 0011.
//!
//! Secrets inside JSON documents (webhook calls, campaign documents) are sealed one by one
//! where they stand: [`Document`].
//!
//! Pure computation: the key is configuration, read and created by the server.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::StoreError;

mod documents;

pub use documents::{Document, Sealed};

/// The envelope's version prefix.
const PREFIX: &str = "hs1.";
/// Bytes in a key (AES-256).
pub const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The columns that hold sealed secrets, by the name each seals under (its associated data).
pub mod columns {
    pub const TRANSPORT_PASSWORD: &str = "transports.password";
    pub const HOOK_PASSWORD: &str = "campaign_webhooks.password";
    pub const HOOK_SECRET: &str = "campaign_webhooks.secret";
    pub const SIGNING_SECRET: &str = "webhook_keys.secret";
    pub const ACTION_DEFINITION: &str = "actions.definition";
    pub const PRIVATE_KEY: &str = "domains.private_key";
    pub const EMAIL_SECRET: &str = "workspaces.email_secret";
    /// The secrets inside documents ([`Document`](super::Document)), each sealed where it stands.
    pub const JOB_PAYLOAD: &str = "jobs.payload";
    pub const DELIVERY_CALL: &str = "webhook_deliveries.call";
    pub const DRAFT_CALL: &str = "webhook_drafts.call";
    pub const CAMPAIGN_DOCUMENT: &str = "campaign_versions.document";
}

/// One key and its id.
struct SecretKey {
    id: String,
    key: RandomizedNonceKey,
}

impl SecretKey {
    fn new(bytes: &[u8; KEY_LEN]) -> SecretKey {
        let id = digest(&SHA256, &[b"herald secret key id\0".as_slice(), bytes].concat());
        let id = id.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
        // AES-256-GCM takes any 32-byte key, so this cannot fail.
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes).unwrap_or_else(|_| unreachable!());
        SecretKey { id, key }
    }
}

/// The keys a store seals and opens secrets with: the current one seals; it and the previous
/// ones open. `Debug` shows the ids only.
pub struct SecretKeys {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous: Vec<&str> = self.previous.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("SecretKeys").field("current", &self.current.id).field("previous", &previous).finish()
    }
}

/// Why a stored secret cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(
        "a stored secret is sealed with secret key {0}, which is not configured: give that key as \
         HERALD_SECRET_KEY or HERALD_SECRET_KEY_PREVIOUS"
    )]
    UnknownKey(String),
    #[error("a stored secret in {0} does not open under its key: it was altered or is damaged")]
    Damaged(&'static str),
    #[error("a stored secret in {0} is not UTF-8 text")]
    NotText(&'static str),
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

impl SecretKeys {
    /// A ring sealing with `current` and also opening what `previous` sealed.
    pub fn new(current: &[u8; KEY_LEN], previous: &[[u8; KEY_LEN]]) -> SecretKeys {
        let current = SecretKey::new(current);
        let previous = previous.iter().map(SecretKey::new).filter(|k| k.id != current.id).collect();
        SecretKeys { current, previous }
    }

    /// A ring of one random key that lives as long as the process: what a store opened without
    /// configured keys (tests, benchmarks) seals with. Nothing it seals opens after a restart,
    /// which is loud, where a default of storing in clear would be silent.
    pub fn ephemeral() -> SecretKeys {
        SecretKeys::new(&rand::random(), &[])
    }

    /// The current key's id (safe to log).
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `clear` for the column named `column` (e.g. `transports.password`).
    pub fn seal(&self, column: &'static str, clear: &[u8]) -> String {
        let mut in_out = clear.to_vec();
        // Sealing with a valid key and a fresh nonce from AWS-LC's generator does not fail.
        let nonce = self
            .current
            .key
            .seal_in_place_append_tag(Aad::from(column), &mut in_out)
            .unwrap_or_else(|_| unreachable!());
        let mut blob = nonce.as_ref().to_vec();
        blob.extend_from_slice(&in_out);
        format!("{PREFIX}{}.{}", self.current.id, URL_SAFE_NO_PAD.encode(blob))
    }

    /// Seals text; see [`SecretKeys::seal`].
    pub fn seal_text(&self, column: &'static str, clear: &str) -> String {
        self.seal(column, clear.as_bytes())
    }

    /// Opens a stored value of `column`. A value without the envelope's prefix is taken as it
    /// is: a secret stored in clear before encryption at rest, until the store seals it on
    /// start. (A clear secret that itself began with `hs1.` would be refused as damaged.)
    pub fn open(&self, column: &'static str, stored: &[u8]) -> Result<Vec<u8>, OpenError> {
        let Some(sealed) = stored.strip_prefix(PREFIX.as_bytes()) else {
            return Ok(stored.to_vec());
        };
        // Past the prefix, anything unexpected is damage, never clear text.
        let (id, blob) = parse(sealed).ok_or(OpenError::Damaged(column))?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Damaged(column))?;
        let mut in_out = sealed.to_vec();
        let clear =
            key.key.open_in_place(nonce, Aad::from(column), &mut in_out).map_err(|_| OpenError::Damaged(column))?;
        Ok(clear.to_vec())
    }

    /// Opens a stored text value; see [`SecretKeys::open`].
    pub fn open_text(&self, column: &'static str, stored: &str) -> Result<String, OpenError> {
        String::from_utf8(self.open(column, stored.as_bytes())?).map_err(|_| OpenError::NotText(column))
    }

    /// Whether a stored value is sealed with the current key (else: in clear, or sealed with a
    /// previous key, and due to be sealed again).
    pub fn is_current(&self, stored: &[u8]) -> bool {
        stored.strip_prefix(PREFIX.as_bytes()).and_then(parse).is_some_and(|(id, _)| id == self.current.id)
    }

    /// The value sealed with the current key, or `None` when it already is.
    pub fn reseal(&self, column: &'static str, stored: &[u8]) -> Result<Option<String>, OpenError> {
        if self.is_current(stored) {
            return Ok(None);
        }
        Ok(Some(self.seal(column, &self.open(column, stored)?)))
    }
}

/// The key id and the decoded nonce, ciphertext and tag of an envelope after its prefix;
/// `None` if it is malformed.
fn parse(sealed: &[u8]) -> Option<(&str, Vec<u8>)> {
    let (id, encoded) = std::str::from_utf8(sealed).ok()?.split_once('.')?;
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let blob = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    (blob.len() >= NONCE_LEN + TAG_LEN).then_some((id, blob))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const COLUMN: &str = "transports.password";

    #[test]
    fn sealed_values_open_and_hide_the_clear_text() {
        let keys = SecretKeys::new(&[7; KEY_LEN], &[]);
        let sealed = keys.seal_text(COLUMN, "hunter2-smtp");
        assert!(sealed.starts_with(&format!("hs1.{}.", keys.current_id())), "{sealed}");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(keys.open_text(COLUMN, &sealed).unwrap(), "hunter2-smtp");
        assert_ne!(keys.seal_text(COLUMN, "hunter2-smtp"), sealed, "a fresh nonce each time");
        assert!(keys.is_current(sealed.as_bytes()));
        assert!(format!("{keys:?}").contains(keys.current_id()));
    }

    #[test]
    fn clear_text_from_before_is_read_as_it_is_and_resealed() {
        let keys = SecretKeys::new(&[7; KEY_LEN], &[]);
        assert_eq!(keys.open_text(COLUMN, "plain-old-password").unwrap(), "plain-old-password");
        assert!(!keys.is_current(b"plain-old-password"));
        let sealed = keys.reseal(COLUMN, b"plain-old-password").unwrap().unwrap();
        assert_eq!(keys.open_text(COLUMN, &sealed).unwrap(), "plain-old-password");
        assert_eq!(keys.reseal(COLUMN, sealed.as_bytes()).unwrap(), None);
        // Raw key bytes (a signing secret) are not an envelope either.
        assert_eq!(keys.open(COLUMN, &[0xff, 0, 1]).unwrap(), [0xff, 0, 1]);
    }

    #[test]
    fn rotation_opens_with_the_previous_key_and_reseals_with_the_new() {
        let old = SecretKeys::new(&[1; KEY_LEN], &[]);
        let sealed = old.seal_text(COLUMN, "s3cret");
        let rotated = SecretKeys::new(&[2; KEY_LEN], &[[1; KEY_LEN]]);
        assert_eq!(rotated.open_text(COLUMN, &sealed).unwrap(), "s3cret");
        assert!(!rotated.is_current(sealed.as_bytes()));
        let resealed = rotated.reseal(COLUMN, sealed.as_bytes()).unwrap().unwrap();
        let new_only = SecretKeys::new(&[2; KEY_LEN], &[]);
        assert_eq!(new_only.open_text(COLUMN, &resealed).unwrap(), "s3cret");
        assert_eq!(new_only.open_text(COLUMN, &sealed), Err(OpenError::UnknownKey(old.current_id().to_owned())));
    }

    #[test]
    fn tampering_or_another_column_does_not_open() {
        let keys = SecretKeys::new(&[7; KEY_LEN], &[]);
        let sealed = keys.seal_text(COLUMN, "s3cret");
        assert_eq!(
            keys.open("campaign_webhooks.secret", sealed.as_bytes()),
            Err(OpenError::Damaged("campaign_webhooks.secret"))
        );
        let mut bytes = sealed.into_bytes();
        let middle = bytes.len() - 10;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        assert_eq!(keys.open(COLUMN, &bytes), Err(OpenError::Damaged(COLUMN)));
        // A value that starts like an envelope and is not one is damage, not clear text.
        assert_eq!(keys.open(COLUMN, b"hs1.not-an-envelope"), Err(OpenError::Damaged(COLUMN)));
    }
}
