//! Signed unsubscribe links. A token names the workspace and the contact and carries an
//! HMAC-SHA256 of both under the workspace's secret, so a link cannot be altered to
//! unsubscribe someone else; it is checked in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_domain::{ContactId, WorkspaceId};
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// How many bytes of the MAC a token carries (128 bits).
const MAC_LEN: usize = 16;
const TOKEN_LEN: usize = 16 + 16 + MAC_LEN;

fn mac(secret: &[u8], workspace: WorkspaceId, contact: ContactId) -> [u8; MAC_LEN] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(b"herald-unsubscribe-v1:");
    mac.update(workspace.as_uuid().as_bytes());
    mac.update(contact.as_uuid().as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// The token for `contact`'s unsubscribe link.
pub fn token(secret: &[u8], workspace: WorkspaceId, contact: ContactId) -> String {
    let mut bytes = Vec::with_capacity(TOKEN_LEN);
    bytes.extend_from_slice(workspace.as_uuid().as_bytes());
    bytes.extend_from_slice(contact.as_uuid().as_bytes());
    bytes.extend_from_slice(&mac(secret, workspace, contact));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token's claims, to be checked with [`Claim::verify`] once the workspace's secret is
/// known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub workspace: WorkspaceId,
    pub contact: ContactId,
    mac: [u8; MAC_LEN],
}

impl Claim {
    /// Reads a token; `None` when it is not one (wrong length or alphabet).
    pub fn parse(token: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok().filter(|b| b.len() == TOKEN_LEN)?;
        let workspace = WorkspaceId::from_uuid(Uuid::from_slice(&bytes[..16]).ok()?);
        let contact = ContactId::from_uuid(Uuid::from_slice(&bytes[16..32]).ok()?);
        let mut mac = [0; MAC_LEN];
        mac.copy_from_slice(&bytes[32..]);
        Some(Self { workspace, contact, mac })
    }

    /// Whether the token was made with `secret`.
    pub fn verify(&self, secret: &[u8]) -> bool {
        mac(secret, self.workspace, self.contact).ct_eq(&self.mac).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn garbage_is_not_a_token() {
        for bad in ["", "abc", "!!!!", &"A".repeat(63), &"A".repeat(65)] {
            assert!(Claim::parse(bad).is_none(), "{bad:?}");
        }
    }
}
