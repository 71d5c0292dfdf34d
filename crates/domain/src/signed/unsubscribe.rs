//! Signed unsubscribe links. A token names the workspace, the contact and, for mail sent
//! under a subscription topic, the topic, and carries an HMAC-SHA256 of them under the
//! workspace's secret, so a link cannot be altered to act for someone else or about another
//! topic; it is checked in constant time. Tokens without a topic (every link sent before
//! topics existed, and mail about no topic) keep their first format and stay valid: the
//! contact and topic are fixed-size, so the body's length tells the two apart.

use uuid::Uuid;

use super::{Purpose, Signed, seal};
use crate::{ContactId, TopicId, WorkspaceId};

/// The longest token this reads: a workspace, a contact, a topic and a MAC, in base64url.
const MAX_TOKEN_LEN: usize = 86;

/// The token for `contact`'s unsubscribe link in mail about `topic` (or about none).
pub fn token(secret: &[u8], workspace: WorkspaceId, contact: ContactId, topic: Option<TopicId>) -> String {
    let mut body = contact.as_uuid().as_bytes().to_vec();
    body.extend(topic.iter().flat_map(|t| *t.as_uuid().as_bytes()));
    seal(secret, Purpose::Unsubscribe, workspace, &body)
}

/// A token's claims, to be checked with [`Claim::verify`] once the workspace's secret is
/// known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub workspace: WorkspaceId,
    pub contact: ContactId,
    /// The topic of the message the link was in; `None` for mail about no topic.
    pub topic: Option<TopicId>,
    signed: Signed,
}

impl Claim {
    /// Reads a token; `None` when it is not one (wrong length or alphabet).
    pub fn parse(token: &str) -> Option<Self> {
        let signed = Signed::parse(token, MAX_TOKEN_LEN)?;
        let (contact, topic) = match signed.body.len() {
            16 => (&signed.body[..], None),
            32 => (&signed.body[..16], Some(TopicId::from_uuid(Uuid::from_slice(&signed.body[16..]).ok()?))),
            _ => return None,
        };
        let contact = ContactId::from_uuid(Uuid::from_slice(contact).ok()?);
        Some(Self { workspace: signed.workspace, contact, topic, signed })
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
        let token = token(b"secret", ws, ct, None);
        let claim = Claim::parse(&token).expect("parses");
        assert_eq!((claim.workspace, claim.contact, claim.topic), (ws, ct, None));
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
        assert_eq!(token(b"secret", ws, ct, None), "AAAAAAAAAAAAAAAAAAAABwAAAAAAAAAAAAAAAAAAAAhyDAuQabUAiHnPugxa0KYI");
    }

    #[test]
    fn topic_tokens_carry_their_topic_and_cannot_be_moved_to_another() {
        let (ws, ct) = ids(7);
        let topic = TopicId::from_uuid(Uuid::from_u128(42));
        let token = token(b"secret", ws, ct, Some(topic));
        assert_eq!(token.len(), MAX_TOKEN_LEN);
        let claim = Claim::parse(&token).expect("parses");
        assert_eq!((claim.workspace, claim.contact, claim.topic), (ws, ct, Some(topic)));
        assert!(claim.verify(b"secret"));
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        bytes[32..48].copy_from_slice(Uuid::from_u128(43).as_bytes());
        let moved = Claim::parse(&URL_SAFE_NO_PAD.encode(&bytes)).expect("parses");
        assert!(!moved.verify(b"secret"));
        // Dropping the topic leaves a token whose MAC no longer matches its body.
        let mut dropped = bytes[..32].to_vec();
        dropped.extend_from_slice(&bytes[48..]);
        let dropped = Claim::parse(&URL_SAFE_NO_PAD.encode(dropped)).expect("parses");
        assert!(!dropped.verify(b"secret"));
    }

    #[test]
    fn garbage_is_not_a_token() {
        for bad in ["", "abc", "!!!!", &"A".repeat(63), &"A".repeat(65), &"A".repeat(87)] {
            assert!(Claim::parse(bad).is_none(), "{bad:?}");
        }
    }
}
