//! The secret URL on which a workspace receives one provider's notifications:
//! `/email-events/{provider}/{token}`, where the token names the workspace and carries an
//! HMAC-SHA256 of it and the provider under the workspace's secret (as unsubscribe links do),
//! so any node can check it without a lookup and it cannot be guessed or moved to another
//! workspace or provider. It is only the first gate: each notification's own signature (or
//! Basic auth) is checked as well.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_domain::WorkspaceId;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::ProviderKind;

const MAC_LEN: usize = 16;

fn mac(secret: &[u8], workspace: WorkspaceId, provider: ProviderKind) -> [u8; MAC_LEN] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(b"herald-email-events-v1:");
    mac.update(provider.as_str().as_bytes());
    mac.update(b":");
    mac.update(workspace.as_uuid().as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// The token of `workspace`'s notification URL for `provider`.
pub fn token(secret: &[u8], workspace: WorkspaceId, provider: ProviderKind) -> String {
    let mut bytes = workspace.as_uuid().as_bytes().to_vec();
    bytes.extend_from_slice(&mac(secret, workspace, provider));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The workspace a token claims; `None` when it is not a token.
pub fn claimed_workspace(token: &str) -> Option<WorkspaceId> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok().filter(|b| b.len() == 16 + MAC_LEN)?;
    Some(WorkspaceId::from_uuid(Uuid::from_slice(&bytes[..16]).ok()?))
}

/// Whether `token` is `workspace`'s for `provider` under `secret` (in constant time).
pub fn verify(token: &str, secret: &[u8], workspace: WorkspaceId, provider: ProviderKind) -> bool {
    let Some(bytes) = URL_SAFE_NO_PAD.decode(token).ok().filter(|b| b.len() == 16 + MAC_LEN) else { return false };
    bytes[..16] == *workspace.as_uuid().as_bytes() && bool::from(mac(secret, workspace, provider).ct_eq(&bytes[16..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_workspace_provider_and_secret() {
        let ws = WorkspaceId::from_uuid(Uuid::from_u128(7));
        let other = WorkspaceId::from_uuid(Uuid::from_u128(8));
        let token = token(b"secret", ws, ProviderKind::Resend);
        assert_eq!(claimed_workspace(&token), Some(ws));
        assert!(verify(&token, b"secret", ws, ProviderKind::Resend));
        assert!(!verify(&token, b"secret", ws, ProviderKind::Postmark));
        assert!(!verify(&token, b"secret", other, ProviderKind::Resend));
        assert!(!verify(&token, b"other", ws, ProviderKind::Resend));
        assert!(!verify("garbage", b"secret", ws, ProviderKind::Resend));
    }
}
