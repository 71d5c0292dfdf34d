//! People who log in to the web UI: their record, the password they type and the hash Herald
//! keeps of it. Hashing itself (argon2id, which needs random salt) happens in the server;
//! here are the types that keep a password and its hash out of logs.

use std::fmt;

use crate::{EmailAddress, Timestamp, UserAccountId, WorkspaceId};

/// A person's login. `Debug` shows the hash as redacted; nothing serializes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAccount {
    pub id: UserAccountId,
    pub workspace_id: WorkspaceId,
    /// Trimmed and lower-cased ([`EmailAddress`]); unique within the workspace.
    pub email: EmailAddress,
    pub password_hash: PasswordHash,
    pub created_at: Timestamp,
    pub password_changed_at: Timestamp,
}

/// A password as typed, checked for length. Kept as is (no trimming: spaces may be part of
/// it). `Debug` is redacted.
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be at least {min} characters", min = Password::MIN_CHARS)]
    TooShort,
    #[error("must be at most {max} characters", max = Password::MAX_CHARS)]
    TooLong,
}

impl Password {
    /// The shortest password accepted for a new account.
    pub const MIN_CHARS: usize = 12;
    /// The longest: enough for any passphrase, small enough to bound the work of hashing one.
    pub const MAX_CHARS: usize = 1024;

    /// A new password, held to the length rules.
    pub fn parse_new(s: &str) -> Result<Self, PasswordError> {
        let chars = s.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(s.to_owned()))
    }

    /// A password typed at login: any length, checked only against the stored hash (a rule
    /// applied here would tell a guesser which passwords cannot exist).
    pub fn presented(s: &str) -> Self {
        Self(s.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A password hash in PHC string format (`$argon2id$v=19$m=…$<salt>$<hash>`). `Debug` is
/// redacted: a hash is brute-forceable, so it is kept out of logs like a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string made by the hasher or read back from the store.
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_have_at_least_twelve_characters() {
        assert_eq!(Password::parse_new("eleven-char").err(), Some(PasswordError::TooShort));
        assert!(Password::parse_new("twelve-chars").is_ok());
        // Characters, not bytes: twelve accented letters are enough, eleven are not.
        assert!(Password::parse_new(&"é".repeat(12)).is_ok());
        assert_eq!(Password::parse_new(&"é".repeat(11)).err(), Some(PasswordError::TooShort));
        assert_eq!(Password::parse_new(&"x".repeat(1025)).err(), Some(PasswordError::TooLong));
        assert_eq!(Password::parse_new("  spaces kept  ").expect("valid").expose(), "  spaces kept  ");
    }

    #[test]
    fn debug_never_shows_a_password_or_hash() {
        let password = Password::presented("correct horse battery");
        assert!(!format!("{password:?}").contains("horse"));
        let hash = PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned());
        assert!(!format!("{hash:?}").contains("argon2"));
    }
}
