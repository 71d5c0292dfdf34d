//! Sources: inbound endpoints. Each has a secret URL token (`whk_…`, 256 random bits) of
//! which Herald stores only the SHA-256, a kind that decides how bodies are read, and an
//! enabled flag.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{SourceId, Timestamp, TokenHash, WorkspaceId};

/// How a source reads request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// `email`, `event`, `userId`, `data.*` (the generic webhook hosted tools such as Humanic
    /// accept), as JSON, form or query string.
    Generic,
    /// PostHog's webhook destination payload.
    Posthog,
    /// Any JSON, turned into contacts and events by a user-defined mapping (as HighLevel's
    /// inbound webhook trigger does).
    Mapped,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Generic => "generic",
            SourceKind::Posthog => "posthog",
            SourceKind::Mapped => "mapped",
        }
    }
}

impl FromStr for SourceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "generic" => Ok(SourceKind::Generic),
            "posthog" => Ok(SourceKind::Posthog),
            "mapped" => Ok(SourceKind::Mapped),
            other => Err(format!("must be `generic`, `posthog` or `mapped`, not {other:?}")),
        }
    }
}

/// A source as stored. Never contains its token.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: SourceId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub kind: SourceKind,
    pub enabled: bool,
    /// The token's first characters, to tell URLs apart.
    pub token_hint: String,
    /// Until when the token before the last rotation still works, if a grace period was given.
    pub previous_token_expires_at: Option<Timestamp>,
    /// Requests per second accepted before answering 429; `None`: unlimited.
    pub rate_limit_per_second: Option<u32>,
    /// The mapping of a mapped source, as the JSON the API accepted.
    pub mapping: Option<serde_json::Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Checks a source's display name: 1–100 characters, no control characters.
pub fn parse_source_name(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars().count() > 100 {
        return Err("must be at most 100 characters".into());
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_owned())
}

/// The secret part of a source URL. `Debug` is redacted.
#[derive(Clone)]
pub struct SourceToken(String);

impl SourceToken {
    pub const PREFIX: &'static str = "whk_";

    /// A fresh token from 32 random bytes supplied by the caller.
    pub fn generate(random: [u8; 32]) -> Self {
        Self(format!("{}{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(random)))
    }

    /// A token taken from a request path. Anything of the right shape; whether it is a
    /// token is decided by looking up its hash.
    pub fn from_path(raw: &str) -> Option<Self> {
        let well_formed = raw.len() <= 128 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        well_formed.then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::from_bytes(Sha256::digest(self.0.as_bytes()).into())
    }

    pub fn hint(&self) -> String {
        format!("{}…", &self.0[..self.0.len().min(Self::PREFIX.len() + 4)])
    }
}

impl fmt::Debug for SourceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SourceToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_prefixed_and_redacted() {
        let token = SourceToken::generate([3; 32]);
        assert!(token.expose().starts_with("whk_") && token.expose().len() == 47);
        assert_eq!(format!("{token:?}"), "SourceToken(<redacted>)");
        assert_eq!(SourceToken::from_path(token.expose()).map(|t| t.hash()), Some(token.hash()));
        assert!(SourceToken::from_path("../etc/passwd").is_none());
        assert!(SourceToken::from_path(&"a".repeat(129)).is_none());
    }

    #[test]
    fn kinds_and_names() {
        assert_eq!("posthog".parse::<SourceKind>(), Ok(SourceKind::Posthog));
        assert!("PostHog".parse::<SourceKind>().is_err());
        assert_eq!(parse_source_name("  Stripe  ").as_deref(), Ok("Stripe"));
        assert!(parse_source_name("").is_err());
    }
}
