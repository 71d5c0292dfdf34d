//! Workspaces: the tenants. Every record belongs to exactly one, and every read names it.

use std::fmt;

use serde::Serialize;

use crate::{Timestamp, WorkspaceId};

/// A workspace as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: WorkspaceName,
    /// IANA time zone for campaign waits "until a time of day", for contacts without a
    /// `timezone` attribute in campaigns without one of their own. UTC when absent.
    pub timezone: Option<String>,
    pub created_at: Timestamp,
}

/// A workspace's unique, human-typed handle (`default`, `acme-prod`): 1–63 characters of
/// lowercase ASCII letters, digits and `-`/`_`, starting with a letter or digit, so it is
/// safe in a shell argument, a URL and a log line without quoting.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct WorkspaceName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceNameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 63 characters")]
    TooLong,
    #[error("must start with a lowercase letter or digit")]
    BadStart,
    #[error("may contain only lowercase letters, digits, `-` and `_` (found {0:?})")]
    BadChar(char),
}

impl WorkspaceName {
    /// The workspace that exists from the first start.
    pub const DEFAULT: &'static str = "default";

    pub fn default_name() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn parse(s: &str) -> Result<Self, WorkspaceNameError> {
        let first = s.chars().next().ok_or(WorkspaceNameError::Empty)?;
        if s.len() > 63 {
            return Err(WorkspaceNameError::TooLong);
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(WorkspaceNameError::BadStart);
        }
        if let Some(bad) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(WorkspaceNameError::BadChar(bad));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WorkspaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_slugs_and_rejects_the_rest() {
        for ok in ["default", "acme-prod", "a", "9lives", "team_2"] {
            assert!(WorkspaceName::parse(ok).is_ok(), "{ok}");
        }
        let cases = [
            ("", WorkspaceNameError::Empty),
            ("-x", WorkspaceNameError::BadStart),
            ("Acme", WorkspaceNameError::BadStart),
            ("acme prod", WorkspaceNameError::BadChar(' ')),
            ("acmé", WorkspaceNameError::BadChar('é')),
        ];
        for (input, err) in cases {
            assert_eq!(WorkspaceName::parse(input), Err(err), "{input:?}");
        }
        assert_eq!(WorkspaceName::parse(&"a".repeat(64)), Err(WorkspaceNameError::TooLong));
    }
}
