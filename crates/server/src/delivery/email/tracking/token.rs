//! The tokens of tracked links. An open token signs the message's id; a click token signs the
//! message's id and the URL the link went to, so the redirect can only ever send a browser to
//! an address that was in that message (there is no open redirect to abuse), and needs no
//! database read to know where to go.

use herald_domain::{MessageId, WorkspaceId};
use uuid::Uuid;

use herald_domain::signed::{Purpose, Signed, seal};

/// The longest link (in bytes, as normalised) that is sent through the redirect; a longer one
/// is left as it is, untracked. Real links are far shorter; this bounds the token.
pub const MAX_URL_LEN: usize = 2048;

/// The longest token the endpoints read: a click token with the longest URL. Anything longer
/// is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize = (16 + 16 + MAX_URL_LEN + 16).div_ceil(3) * 4;

/// The token of a message's open pixel.
pub fn open(secret: &[u8], workspace: WorkspaceId, message: MessageId) -> String {
    seal(secret, Purpose::Open, workspace, message.as_uuid().as_bytes())
}

/// The token of a link to `url` in a message.
pub fn click(secret: &[u8], workspace: WorkspaceId, message: MessageId, url: &str) -> String {
    let mut body = Vec::with_capacity(16 + url.len());
    body.extend_from_slice(message.as_uuid().as_bytes());
    body.extend_from_slice(url.as_bytes());
    seal(secret, Purpose::Click, workspace, &body)
}

/// What a token says, to be checked with [`Claim::verify`] once the workspace's secret is
/// known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub workspace: WorkspaceId,
    pub message: MessageId,
    /// Clicks: where the link goes.
    pub url: Option<String>,
    purpose: Purpose,
    signed: Signed,
}

impl Claim {
    /// Reads an open token; `None` when it is not one.
    pub fn open(token: &str) -> Option<Self> {
        let (claim, rest) = Self::parse(token, Purpose::Open)?;
        rest.is_empty().then_some(claim)
    }

    /// Reads a click token; `None` when it is not one or names no URL.
    pub fn click(token: &str) -> Option<Self> {
        let (mut claim, rest) = Self::parse(token, Purpose::Click)?;
        let url = String::from_utf8(rest).ok().filter(|u| !u.is_empty())?;
        claim.url = Some(url);
        Some(claim)
    }

    fn parse(token: &str, purpose: Purpose) -> Option<(Self, Vec<u8>)> {
        let signed = Signed::parse(token, MAX_TOKEN_LEN)?;
        let message = MessageId::from_uuid(Uuid::from_slice(signed.body.get(..16)?).ok()?);
        let rest = signed.body[16..].to_vec();
        Some((Self { workspace: signed.workspace, message, url: None, purpose, signed }, rest))
    }

    /// Whether the token was made with `secret`, for what it was read as.
    pub fn verify(&self, secret: &[u8]) -> bool {
        self.signed.verify(secret, self.purpose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn ids() -> (WorkspaceId, MessageId) {
        (WorkspaceId::from_uuid(Uuid::from_u128(1)), MessageId::from_uuid(Uuid::from_u128(2)))
    }

    #[test]
    fn click_tokens_carry_their_url_and_verify() {
        let (ws, msg) = ids();
        let claim = Claim::click(&click(b"k", ws, msg, "https://acme.test/a?b=1")).expect("parses");
        assert_eq!((claim.workspace, claim.message), (ws, msg));
        assert_eq!(claim.url.as_deref(), Some("https://acme.test/a?b=1"));
        assert!(claim.verify(b"k"));
        assert!(!claim.verify(b"other"));
    }

    #[test]
    fn a_tampered_url_or_message_is_refused() {
        let (ws, msg) = ids();
        let token = click(b"k", ws, msg, "https://acme.test/");
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        // https://acme.test/ -> https://evil.test/ (same length)
        let at = bytes.windows(4).position(|w| w == b"acme").expect("host");
        bytes[at..at + 4].copy_from_slice(b"evil");
        let forged = Claim::click(&URL_SAFE_NO_PAD.encode(&bytes)).expect("parses");
        assert_eq!(forged.url.as_deref(), Some("https://evil.test/"));
        assert!(!forged.verify(b"k"));
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        bytes[20] ^= 0x80;
        assert!(!Claim::click(&URL_SAFE_NO_PAD.encode(&bytes)).expect("parses").verify(b"k"));
    }

    #[test]
    fn opens_and_clicks_are_not_interchangeable() {
        let (ws, msg) = ids();
        let open_token = open(b"k", ws, msg);
        let open_claim = Claim::open(&open_token).expect("parses");
        assert!(open_claim.verify(b"k"));
        // An open token read as a click names no URL; one with a URL is no open token.
        assert!(Claim::click(&open_token).is_none());
        let click_token = click(b"k", ws, msg, "https://acme.test/");
        assert!(Claim::open(&click_token).is_none());
        // Signed for an open, the same bytes do not verify as a click.
        let forged = seal(b"k", Purpose::Open, ws, &[msg.as_uuid().as_bytes().as_slice(), b"https://x.test/"].concat());
        assert!(!Claim::click(&forged).expect("parses").verify(b"k"));
    }

    #[test]
    fn the_longest_url_fits_and_longer_tokens_are_refused() {
        let (ws, msg) = ids();
        let url = format!("https://acme.test/{}", "a".repeat(MAX_URL_LEN - 18));
        let token = click(b"k", ws, msg, &url);
        assert!(token.len() <= MAX_TOKEN_LEN);
        assert!(Claim::click(&token).is_some());
        assert!(Claim::click(&"A".repeat(MAX_TOKEN_LEN + 4)).is_none());
        for bad in ["", "x", "%%%", "AAAA", "🙂"] {
            assert!(Claim::open(bad).is_none() && Claim::click(bad).is_none(), "{bad:?}");
        }
    }
}
