//! Admin API keys: the secret token a client presents, and the record Herald keeps of it.
//!
//! Herald stores only the SHA-256 of a token. Generated tokens carry 256 random bits, so an
//! unsalted fast hash is enough: there is nothing to brute-force, and a lookup by hash is an
//! index probe that reveals nothing about the secret through its timing.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{ApiKeyId, Timestamp, WorkspaceId};

/// An API key's record. It never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: ApiKeyName,
    /// The token's first characters, so a person can tell keys apart (`hk_3fQ…`).
    pub hint: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A label for a key (`ci`, `zapier`): 1–100 characters, no control characters.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ApiKeyName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyNameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 100 characters")]
    TooLong,
    #[error("must not contain control characters")]
    ControlChar,
}

impl ApiKeyName {
    pub fn parse(s: &str) -> Result<Self, ApiKeyNameError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ApiKeyNameError::Empty);
        }
        if s.chars().count() > 100 {
            return Err(ApiKeyNameError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(ApiKeyNameError::ControlChar);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A bearer token. Its `Debug` is redacted so it cannot reach a log by accident.
#[derive(Clone)]
pub struct ApiToken(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiTokenError {
    #[error("must be at least {min} characters", min = ApiToken::MIN_SUPPLIED_LEN)]
    TooShort,
    #[error("must be at most 256 characters")]
    TooLong,
    #[error("may contain only visible ASCII characters (no spaces)")]
    BadChar,
}

impl ApiToken {
    /// Prefix of generated tokens, so secret scanners and people can recognise them.
    pub const PREFIX: &'static str = "hk_";
    /// The shortest token an operator may choose (`HERALD_ADMIN_TOKEN`).
    pub const MIN_SUPPLIED_LEN: usize = 16;

    /// A fresh token from 32 random bytes supplied by the caller.
    pub fn generate(random: [u8; 32]) -> Self {
        Self(format!("{}{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(random)))
    }

    /// A token chosen by an operator, checked for a minimum of strength and for characters
    /// that survive an HTTP header.
    pub fn parse_supplied(s: &str) -> Result<Self, ApiTokenError> {
        if s.len() < Self::MIN_SUPPLIED_LEN {
            return Err(ApiTokenError::TooShort);
        }
        Self::parse_presented(s)
    }

    /// A token presented in a request: anything that could be a token. Whether it is one is
    /// decided by looking up its hash.
    pub fn parse_presented(s: &str) -> Result<Self, ApiTokenError> {
        if s.len() > 256 {
            return Err(ApiTokenError::TooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiTokenError::BadChar);
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret itself, for showing once at creation.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// A short, non-secret prefix for telling keys apart in lists.
    pub fn hint(&self) -> String {
        let visible: String = self.0.chars().take(Self::PREFIX.len() + 4).collect();
        format!("{visible}…")
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// SHA-256 of a token: what the database stores and looks up.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_prefix_and_256_bits() {
        let token = ApiToken::generate([7; 32]);
        assert!(token.expose().starts_with("hk_"));
        assert_eq!(token.expose().len(), 3 + 43);
        assert_eq!(token.hint(), format!("{}…", &token.expose()[..7]));
        assert_ne!(ApiToken::generate([8; 32]).hash(), token.hash());
        assert_eq!(ApiToken::generate([7; 32]).hash(), token.hash());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = ApiToken::parse_supplied("super-secret-value-123").expect("valid");
        assert!(!format!("{token:?}").contains("super"));
        assert!(!format!("{:?}", token.hash()).contains('['));
    }

    #[test]
    fn supplied_tokens_are_checked() {
        assert_eq!(ApiToken::parse_supplied("short").err(), Some(ApiTokenError::TooShort));
        assert_eq!(ApiToken::parse_supplied("has a space in the middle").err(), Some(ApiTokenError::BadChar));
        assert_eq!(ApiToken::parse_supplied(&"x".repeat(257)).err(), Some(ApiTokenError::TooLong));
        assert!(ApiToken::parse_supplied("0123456789abcdef").is_ok());
    }

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(ApiKeyName::parse("  ci  ").expect("valid").as_str(), "ci");
        assert_eq!(ApiKeyName::parse("   ").err(), Some(ApiKeyNameError::Empty));
        assert_eq!(ApiKeyName::parse("a\nb").err(), Some(ApiKeyNameError::ControlChar));
        assert_eq!(ApiKeyName::parse(&"é".repeat(101)).err(), Some(ApiKeyNameError::TooLong));
    }
}
