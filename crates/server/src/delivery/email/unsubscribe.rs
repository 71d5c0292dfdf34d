//! Signed unsubscribe links. A token names the workspace and the contact and carries an
//! HMAC-SHA256 of both under the workspace's secret, so a link cannot be altered to
//! unsubscribe someone else; it is checked in constant time.

use herald_domain::{ContactId, WorkspaceId};
use uuid::Uuid;

use super::signed::{Purpose, Signed, seal};

/// The longest token this reads: a workspace, a contact and a MAC, in base64url.
const MAX_TOKEN_LEN: usize = 64;

/// The token for `contact`'s unsubscribe link.
pub fn token(secret: &[u8], workspace: WorkspaceId, contact: ContactId) -> String {
    seal(secret, Purpose::Unsubscribe, workspace, contact.as_uuid().as_bytes())
}

/// A token's claims, to be checked with [`Claim::verify`] once the workspace's secret is
/// known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub workspace: WorkspaceId,
    pub contact: ContactId,
    signed: Signed,
}

impl Claim {
    /// Reads a token; `None` when it is not one (wrong length or alphabet).
    pub fn parse(token: &str) -> Option<Self> {
        let signed = Signed::parse(token, MAX_TOKEN_LEN)?;
        let contact = ContactId::from_uuid(Uuid::from_slice(&signed.body).ok()?);
        Some(Self { workspace: signed.workspace, contact, signed })
    }

    /// Whether the token was made with `secret`.
    pub fn verify(&self, secret: &[u8]) -> bool {
        self.signed.verify(secret, Purpose::Unsubscribe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn ids(n: u128) -> (WorkspaceId, ContactId) {
        (WorkspaceId::from_uuid(Uuid::from_u128(n)), ContactId::from_uuid(Uuid::from_u128(n + 1)))
    }

    #[test]
    fn tokens_verify_only_with_their_secret_and_ids() {
        let (ws, ct) = ids(7);
        let token = token(b"secret", ws, ct);
        let claim = Claim::parse(&token).expect("parses");
        assert_eq!((claim.workspace, claim.contact), (ws, ct));
        assert!(claim.verify(b"secret"));
        assert!(!claim.verify(b"other secret"));
        // Another contact's id spliced into a valid token fails.
        let (_, other) = ids(100);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        bytes[16..32].copy_from_slice(other.as_uuid().as_bytes());
        let forged = Claim::parse(&URL_SAFE_NO_PAD.encode(bytes)).expect("parses");
        assert!(!forged.verify(b"secret"));
    }

    #[test]
    fn tokens_are_those_links_already_sent_carry() {
        // Made by the first version of these links: the format must not change under them.
        let (ws, ct) = ids(7);
        assert_eq!(token(b"secret", ws, ct), "AAAAAAAAAAAAAAAAAAAABwAAAAAAAAAAAAAAAAAAAAhyDAuQabUAiHnPugxa0KYI");
    }

    #[test]
    fn garbage_is_not_a_token() {
        for bad in ["", "abc", "!!!!", &"A".repeat(63), &"A".repeat(65)] {
            assert!(Claim::parse(bad).is_none(), "{bad:?}");
        }
    }
}
