//! The per-message return path (VERP): `bounces+<token>@bounces.<sending domain>`. The token
//! names the message and the workspace it belongs to, and carries an HMAC-SHA256 of both under
//! the workspace's secret (its own derivation label, so it never equals an unsubscribe or
//! session MAC). A report that arrives for it can only be about that message, and a forged or
//! altered token is refused by its MAC, checked in constant time, before anything about the
//! message is looked up.
//!
//! Size: a local part is at most 64 characters (RFC 5321), and MTAs may change its case, so
//! the token is lower-case base32 (RFC 4648 alphabet, read case-insensitively): 35 bytes, 56
//! characters, `bounces+` included exactly 64. The bytes: the last 8 bytes of the workspace id
//! (the random part of a UUIDv7: enough to pick the workspace out of a node's list), the
//! message id (16), and 11 bytes (88 bits) of MAC.

use data_encoding::BASE32_NOPAD;
use herald_domain::{MessageId, WorkspaceId};
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The local part's fixed start.
pub const LOCAL_PREFIX: &str = "bounces+";
/// The label before the sending domain.
pub const SUBDOMAIN: &str = "bounces";

/// Bytes of the workspace id a token carries (its last ones).
const WORKSPACE_TAIL: usize = 8;
const MAC_LEN: usize = 11;
const TOKEN_BYTES: usize = WORKSPACE_TAIL + 16 + MAC_LEN;
/// Characters of a token.
pub const TOKEN_LEN: usize = TOKEN_BYTES * 8 / 5;

/// The workspace part of a token.
pub type WorkspaceTail = [u8; WORKSPACE_TAIL];

/// The part of `workspace`'s id a token carries.
pub fn tail(workspace: WorkspaceId) -> WorkspaceTail {
    let mut out = [0; WORKSPACE_TAIL];
    out.copy_from_slice(&workspace.as_uuid().as_bytes()[16 - WORKSPACE_TAIL..]);
    out
}

fn mac(secret: &[u8], workspace: WorkspaceId, message: MessageId) -> [u8; MAC_LEN] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(b"herald-return-path-v1:");
    mac.update(workspace.as_uuid().as_bytes());
    mac.update(message.as_uuid().as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// The token naming `message` of `workspace`.
pub fn token(secret: &[u8], workspace: WorkspaceId, message: MessageId) -> String {
    let mut bytes = Vec::with_capacity(TOKEN_BYTES);
    bytes.extend_from_slice(&tail(workspace));
    bytes.extend_from_slice(message.as_uuid().as_bytes());
    bytes.extend_from_slice(&mac(secret, workspace, message));
    BASE32_NOPAD.encode(&bytes).to_ascii_lowercase()
}

/// The return path carrying `token` for mail from `from_domain`.
pub fn address(token: &str, from_domain: &str) -> String {
    format!("{LOCAL_PREFIX}{token}@{SUBDOMAIN}.{from_domain}")
}

/// The token of a return-path address (`bounces+<token>@…`, any case); `None` for any other
/// address.
pub fn token_of(address: &str) -> Option<&str> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, domain) = address.rsplit_once('@')?;
    let prefix = local.get(..LOCAL_PREFIX.len())?;
    let token = &local[LOCAL_PREFIX.len()..];
    (prefix.eq_ignore_ascii_case(LOCAL_PREFIX) && !domain.is_empty() && token.len() == TOKEN_LEN).then_some(token)
}

/// A token's claims, to be checked with [`Claim::verify`] once the workspace (found by its
/// [`tail`]) and its secret are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub workspace_tail: WorkspaceTail,
    pub message: MessageId,
    mac: [u8; MAC_LEN],
}

impl Claim {
    /// Reads a token in any case; `None` when it is not one (wrong length or alphabet).
    pub fn parse(token: &str) -> Option<Self> {
        if token.len() != TOKEN_LEN {
            return None;
        }
        let bytes = BASE32_NOPAD.decode(token.to_ascii_uppercase().as_bytes()).ok()?;
        let (workspace_tail, rest) = bytes.split_first_chunk::<WORKSPACE_TAIL>()?;
        let (message, mac) = rest.split_first_chunk::<16>()?;
        let mac: [u8; MAC_LEN] = mac.try_into().ok()?;
        Some(Self { workspace_tail: *workspace_tail, message: MessageId::from_uuid(Uuid::from_bytes(*message)), mac })
    }

    /// Whether the token was made for `workspace` with `secret`.
    pub fn verify(&self, secret: &[u8], workspace: WorkspaceId) -> bool {
        let tail_matches = tail(workspace) == self.workspace_tail;
        let mac_matches: bool = mac(secret, workspace, self.message).ct_eq(&self.mac).into();
        tail_matches & mac_matches
    }
}

/// A token shortened for logs: enough to tell two apart, too little to use.
pub fn redacted(token: &str) -> String {
    format!("{}…", token.get(..8).unwrap_or(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> (WorkspaceId, MessageId) {
        (WorkspaceId::from_uuid(Uuid::from_u128(n)), MessageId::from_uuid(Uuid::from_u128(n + 1)))
    }

    #[test]
    fn tokens_fit_a_local_part_in_any_case_and_verify_only_as_made() {
        let (ws, msg) = ids(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let token = token(b"secret", ws, msg);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{token}");
        let address = address(&token, "mail.acme.test");
        assert_eq!(address.split_once('@').map(|(local, _)| local.len()), Some(64));
        assert!(address.ends_with("@bounces.mail.acme.test"));
        for seen in [address.clone(), address.to_ascii_uppercase(), format!("<{address}>")] {
            let claim = Claim::parse(token_of(&seen).expect("a return path")).expect("parses");
            assert_eq!((claim.workspace_tail, claim.message), (tail(ws), msg));
            assert!(claim.verify(b"secret", ws));
            assert!(!claim.verify(b"other secret", ws));
        }
        // Another message's id, or another workspace, spliced into a valid token fails.
        let claim = Claim::parse(&token).expect("parses");
        let (other_ws, other_msg) = ids(0xdead_beef);
        assert!(!Claim { message: other_msg, ..claim }.verify(b"secret", ws));
        assert!(!claim.verify(b"secret", other_ws));
        assert!(!Claim { workspace_tail: tail(other_ws), ..claim }.verify(b"secret", other_ws));
    }

    #[test]
    fn other_addresses_and_garbage_are_not_tokens() {
        let good = "a".repeat(TOKEN_LEN);
        assert!(token_of(&format!("bounces+{good}@bounces.x.test")).is_some());
        for bad in [
            "postmaster@bounces.x.test".to_owned(),
            format!("bounces+{good}"),
            format!("bounces+{good}@"),
            format!("bounces-{good}@x.test"),
            format!("bounces+{good}a@x.test"),
            "bounces+@x.test".to_owned(),
            "b@x".to_owned(),
            String::new(),
        ] {
            assert!(token_of(&bad).is_none(), "{bad}");
        }
        for bad in ["", "abc", &"1".repeat(TOKEN_LEN), &"!".repeat(TOKEN_LEN), &"a".repeat(TOKEN_LEN + 1)] {
            assert!(Claim::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(redacted("abcdefghijklmnop"), "abcdefgh…");
    }
}
