//! Signed tokens for the links Herald puts in email (unsubscribe, open pixel, click redirect).
//! A token is `base64url(workspace ‖ body ‖ mac)`: the workspace's id in the clear (so the
//! server knows whose secret to check it with), what the link is about, and the first 128
//! bits of an HMAC-SHA256 over a label naming the link's purpose, the workspace and the body,
//! under the workspace's secret. The label keeps one purpose's token from being accepted as
//! another's; the MAC is compared in constant time.

pub mod unsubscribe;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::WorkspaceId;

/// How many bytes of the MAC a token carries (128 bits).
const MAC_LEN: usize = 16;
const WORKSPACE_LEN: usize = 16;

/// What a token lets its holder do; part of what is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    Open,
    Click,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            // The label unsubscribe links were first signed with: links already sent keep working.
            Self::Unsubscribe => b"herald-unsubscribe-v1:",
            Self::Open => b"herald-open-v1:",
            Self::Click => b"herald-click-v1:",
        }
    }
}

fn mac(secret: &[u8], purpose: Purpose, workspace: WorkspaceId, body: &[u8]) -> [u8; MAC_LEN] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(purpose.label());
    mac.update(workspace.as_uuid().as_bytes());
    mac.update(body);
    let full = mac.finalize().into_bytes();
    let mut out = [0; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// The token for `body` in `workspace`, signed for `purpose`.
pub fn seal(secret: &[u8], purpose: Purpose, workspace: WorkspaceId, body: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(WORKSPACE_LEN + body.len() + MAC_LEN);
    bytes.extend_from_slice(workspace.as_uuid().as_bytes());
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(&mac(secret, purpose, workspace, body));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token read but not yet checked: check it with [`Signed::verify`] once the workspace's
/// secret is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub workspace: WorkspaceId,
    pub body: Vec<u8>,
    mac: [u8; MAC_LEN],
}

impl Signed {
    /// Reads a token of at most `max_len` characters; `None` when it is not one (too long, too
    /// short, or not base64url).
    pub fn parse(token: &str, max_len: usize) -> Option<Self> {
        if token.len() > max_len {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok().filter(|b| b.len() >= WORKSPACE_LEN + MAC_LEN)?;
        let workspace = WorkspaceId::from_uuid(Uuid::from_slice(&bytes[..WORKSPACE_LEN]).ok()?);
        let (body, tail) = bytes[WORKSPACE_LEN..].split_at(bytes.len() - WORKSPACE_LEN - MAC_LEN);
        let mut mac = [0; MAC_LEN];
        mac.copy_from_slice(tail);
        Some(Self { workspace, body: body.to_vec(), mac })
    }

    /// Whether the token was made with `secret` for `purpose`.
    pub fn verify(&self, secret: &[u8], purpose: Purpose) -> bool {
        mac(secret, purpose, self.workspace, &self.body).ct_eq(&self.mac).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> WorkspaceId {
        WorkspaceId::from_uuid(Uuid::from_u128(7))
    }

    #[test]
    fn a_token_verifies_only_for_its_secret_and_purpose() {
        let token = seal(b"secret", Purpose::Click, workspace(), b"https://acme.test/");
        let signed = Signed::parse(&token, 1000).expect("parses");
        assert_eq!((signed.workspace, signed.body.as_slice()), (workspace(), &b"https://acme.test/"[..]));
        assert!(signed.verify(b"secret", Purpose::Click));
        assert!(!signed.verify(b"other secret", Purpose::Click));
        assert!(!signed.verify(b"secret", Purpose::Open));
        assert!(!signed.verify(b"secret", Purpose::Unsubscribe));
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let token = seal(b"secret", Purpose::Open, workspace(), b"body");
        let bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        for i in 0..bytes.len() {
            let mut forged = bytes.clone();
            forged[i] ^= 1;
            let forged = Signed::parse(&URL_SAFE_NO_PAD.encode(forged), 1000).expect("still parses");
            assert!(!forged.verify(b"secret", Purpose::Open), "byte {i}");
        }
    }

    #[test]
    fn garbage_and_long_tokens_are_not_tokens() {
        let token = seal(b"secret", Purpose::Open, workspace(), b"body");
        assert!(Signed::parse(&token, token.len() - 1).is_none());
        for bad in ["", "abc", "!!!!", "é", &"A".repeat(42)] {
            assert!(Signed::parse(bad, 1000).is_none(), "{bad:?}");
        }
    }
}
