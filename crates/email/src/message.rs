//! Composition of one outgoing email: checked addresses, the headers receivers expect of bulk
//! and lifecycle mail (a stable `Message-ID`, RFC 8058 one-click unsubscribe), a
//! `multipart/alternative` body in 7-bit-safe encodings, and the optional DKIM signature.
//! The result is the exact bytes to hand to SMTP with their envelope.

use std::error::Error as StdError;
use std::fmt;
use std::time::SystemTime;

use lettre::Address;
use lettre::address::AddressError;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, HeaderName, HeaderValue, MIME_VERSION_1_0, MessageId,
};
use lettre::message::{Body, Message, SinglePart};
use time::OffsetDateTime;

use crate::dkim::DkimSigner;
use crate::report::HERALD_HEADER;

/// What can go wrong building Herald's email parts: composing a message, reading a DKIM key,
/// checking SMTP settings. Field names are the `Outgoing` / settings field paths
/// (`from`, `reply_to`, `unsubscribe.url`, `port`, …) so the API can point at the culprit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    #[error("{field}: not a valid email address: {value:?}")]
    InvalidAddress {
        field: &'static str,
        value: String,
        #[source]
        source: AddressError,
    },
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("invalid DKIM key: {reason}")]
    InvalidDkimKey {
        reason: String,
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
    #[error("DKIM signing failed")]
    DkimSigning(#[source] aws_lc_rs::error::Unspecified),
    #[error("the message could not be built")]
    Build(#[from] lettre::error::Error),
    #[error("invalid SMTP settings: {field}: {reason}")]
    InvalidSettings { field: &'static str, reason: String },
}

impl EmailError {
    pub(crate) fn dkim_key(reason: &str, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::InvalidDkimKey { reason: reason.to_owned(), source: Some(source.into()) }
    }
}

/// An address with an optional display name. Both are checked by [`compose`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

impl Mailbox {
    pub fn new(name: Option<impl Into<String>>, address: impl Into<String>) -> Self {
        Self { name: name.map(Into::into), address: address.into() }
    }
}

/// The targets of `List-Unsubscribe`. `url` must be `https://` (RFC 8058 one-click; `http://`
/// is accepted for development) and receives the `POST List-Unsubscribe=One-Click`.
/// `mailto` is either a full `mailto:` URI or a bare address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    pub url: String,
    pub mailto: Option<String>,
}

/// One message to one recipient, as the delivery worker describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// `id-left@id-right` without angle brackets, e.g. `msg_0192…@mail.example.com`. Sent
    /// exactly as given, so a retry of the same delivery carries the same `Message-ID` and
    /// receivers can drop the duplicate.
    pub message_id: String,
    /// Rendered in UTC, to the second.
    pub date: OffsetDateTime,
    pub from: Mailbox,
    pub to: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// Control characters (line breaks included) become spaces.
    pub subject: String,
    pub html: String,
    pub text: String,
    pub unsubscribe: Option<Unsubscribe>,
    /// The SMTP `MAIL FROM` (where bounces go, the receiver's `Return-Path`); `from.address`
    /// when `None`.
    pub envelope_from: Option<String>,
    /// The signed token naming this message, sent as [`HERALD_HEADER`] so that a report quoting
    /// only the original's headers still names it. Letters and digits only.
    pub herald_token: Option<String>,
}

/// The bytes to send and their envelope.
#[derive(Clone, PartialEq, Eq)]
pub struct Composed {
    pub envelope_from: String,
    pub recipients: Vec<String>,
    /// CRLF line endings, 7-bit ASCII, headers (and the DKIM signature) included.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Composed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Composed")
            .field("envelope_from", &self.envelope_from)
            .field("recipients", &self.recipients)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .finish()
    }
}

/// Builds the message and, given a signer, signs it at `now` (relaxed/relaxed, the headers
/// listed in `dkim`; `now` is the signature's `t=`, taken from the caller's clock so that it
/// agrees with every other time Herald records). The MIME boundary is derived from the content,
/// so the same input and `now` give the same bytes.
pub fn compose(msg: &Outgoing, dkim: Option<&DkimSigner>, now: OffsetDateTime) -> Result<Composed, EmailError> {
    check_message_id(&msg.message_id)?;
    let from = mailbox("from", &msg.from)?;
    let to = mailbox("to", &msg.to)?;
    let reply_to = msg.reply_to.as_ref().map(|m| mailbox("reply_to", m)).transpose()?;
    let envelope_from = match &msg.envelope_from {
        Some(address) => address_of("envelope_from", address)?,
        None => from.email.clone(),
    };
    let recipient = to.email.clone();

    let mut builder = Message::builder()
        .header(MessageId::from(format!("<{}>", msg.message_id)))
        .date(SystemTime::from(msg.date))
        .from(from)
        .to(to);
    if let Some(reply_to) = reply_to {
        builder = builder.reply_to(reply_to);
    }
    builder = builder.subject(one_line(&msg.subject)).header(MIME_VERSION_1_0);
    if let Some(unsubscribe) = &msg.unsubscribe {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                list_unsubscribe(unsubscribe)?,
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    if let Some(token) = &msg.herald_token {
        if token.is_empty() || token.len() > 100 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(EmailError::InvalidField {
                field: "herald_token",
                reason: "must be 1 to 100 letters and digits".to_owned(),
            });
        }
        builder = builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(HERALD_HEADER), token.clone()));
    }
    let (content_type, body) = alternative(&msg.text, &msg.html)?;
    let unsigned = builder.header(content_type).body(body)?.formatted();
    let bytes = match dkim {
        Some(signer) => signer.sign(&unsigned, now)?,
        None => unsigned,
    };
    Ok(Composed { envelope_from: envelope_from.to_string(), recipients: vec![recipient.to_string()], bytes })
}

/// The `multipart/alternative` body, text first (the fallback) and HTML last (preferred), with
/// its `Content-Type` kept among the message's own headers. lettre would otherwise write the
/// multipart's `Content-Type` after the message headers, in the body, where a signature covering
/// `Content-Type` would not find it.
fn alternative(text: &str, html: &str) -> Result<(ContentType, Body), EmailError> {
    let parts = [
        SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text.to_owned()),
        SinglePart::builder().header(ContentType::TEXT_HTML).body(html.to_owned()),
    ];
    let boundary = boundary(text, html);
    let mut out = Vec::with_capacity(text.len() + html.len() + 512);
    for part in &parts {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&part.formatted());
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
    // Each part is 7bit, quoted-printable or base64 (lettre picks, never 8bit), so the whole
    // is 7-bit with short lines; checked rather than assumed, as `dangerous_pre_encoded` trusts it.
    if !out.is_ascii() || out.split(|&b| b == b'\n').any(|line| line.len() > 998) {
        return Err(EmailError::InvalidField {
            field: "body",
            reason: "the encoded body is not 7-bit with lines of at most 998 characters".to_owned(),
        });
    }
    let content_type = ContentType::parse(&format!("multipart/alternative; boundary=\"{boundary}\""))
        .map_err(|e| EmailError::InvalidField { field: "body", reason: format!("multipart content type: {e}") })?;
    Ok((content_type, Body::dangerous_pre_encoded(out, ContentTransferEncoding::SevenBit)))
}

/// `=_herald_` and a hash of the content. `=_` never occurs in quoted-printable or base64
/// output, and a 7-bit part that happens to contain the candidate gets the next one.
fn boundary(text: &str, html: &str) -> String {
    let hash = fnv1a(fnv1a(0xcbf2_9ce4_8422_2325, text.as_bytes()), html.as_bytes());
    unused_boundary(hash, text, html)
}

fn unused_boundary(hash: u64, text: &str, html: &str) -> String {
    (0u32..)
        .map(|attempt| format!("=_herald_{hash:016x}_{attempt}"))
        .find(|candidate| !text.contains(candidate.as_str()) && !html.contains(candidate.as_str()))
        .unwrap_or_default()
}

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn mailbox(field: &'static str, mailbox: &Mailbox) -> Result<lettre::message::Mailbox, EmailError> {
    let email = address_of(field, &mailbox.address)?;
    let name = mailbox.name.as_deref().map(one_line).filter(|name| !name.is_empty());
    Ok(lettre::message::Mailbox::new(name, email))
}

fn address_of(field: &'static str, address: &str) -> Result<Address, EmailError> {
    address.trim().parse().map_err(|source| EmailError::InvalidAddress { field, value: address.to_owned(), source })
}

/// Header text on one line: control characters (CR and LF included) become spaces. lettre
/// would encode them rather than let them split the header, but a subject rendered from a
/// template with a stray newline should read as one line.
fn one_line(value: &str) -> String {
    value.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// RFC 5322 `msg-id` contents: `dot-atom-text "@" dot-atom-text`.
fn check_message_id(id: &str) -> Result<(), EmailError> {
    let dot_atom = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|atom| {
                !atom.is_empty()
                    && atom.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
            })
    };
    match id.split_once('@') {
        Some((left, right)) if dot_atom(left) && dot_atom(right) => Ok(()),
        _ => Err(EmailError::InvalidField {
            field: "message_id",
            reason: format!("must look like id@domain without angle brackets or spaces: {id:?}"),
        }),
    }
}

/// `<https://…>, <mailto:…>` (RFC 2369: in order of preference).
fn list_unsubscribe(unsubscribe: &Unsubscribe) -> Result<String, EmailError> {
    let url = unsubscribe.url.trim();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) || !uri_chars(url) {
        return Err(EmailError::InvalidField {
            field: "unsubscribe.url",
            reason: format!("must be an https:// URL without spaces or angle brackets: {url:?}"),
        });
    }
    let mut value = format!("<{url}>");
    if let Some(mailto) = &unsubscribe.mailto {
        let mailto = mailto.trim();
        let uri = if mailto.len() > 7 && mailto[..7].eq_ignore_ascii_case("mailto:") {
            mailto.to_owned()
        } else {
            format!("mailto:{}", address_of("unsubscribe.mailto", mailto)?)
        };
        if !uri_chars(&uri) {
            return Err(EmailError::InvalidField {
                field: "unsubscribe.mailto",
                reason: format!("must be a mailto: URI without spaces or angle brackets: {mailto:?}"),
            });
        }
        value.push_str(&format!(", <{uri}>"));
    }
    Ok(value)
}

fn uri_chars(uri: &str) -> bool {
    uri.len() <= 2000 && uri.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::datetime;

    use super::*;
    use crate::dkim::{DkimAlgorithm, DkimKey};

    const NOW: OffsetDateTime = datetime!(2025-03-04 05:06:08 UTC);

    fn outgoing() -> Outgoing {
        Outgoing {
            message_id: "msg_01J@mail.example.com".to_owned(),
            date: datetime!(2025-03-04 05:06:07 +01:00),
            from: Mailbox::new(Some("Acme"), "hello@example.com"),
            to: Mailbox::new(None::<String>, "ada@example.org"),
            reply_to: None,
            subject: "Welcome".to_owned(),
            html: "<p>Hi</p>".to_owned(),
            text: "Hi".to_owned(),
            unsubscribe: None,
            envelope_from: None,
            herald_token: None,
        }
    }

    fn text(composed: &Composed) -> String {
        String::from_utf8(composed.bytes.clone()).unwrap()
    }

    #[test]
    fn headers_and_envelope() {
        let mut msg = outgoing();
        msg.envelope_from = Some("bounces@example.com".to_owned());
        msg.herald_token = Some("abc234".to_owned());
        msg.unsubscribe = Some(Unsubscribe {
            url: "https://example.com/u/abc".to_owned(),
            mailto: Some("unsub@example.com".to_owned()),
        });
        let composed = compose(&msg, None, msg.date).unwrap();
        assert_eq!(composed.envelope_from, "bounces@example.com");
        assert_eq!(composed.recipients, ["ada@example.org"]);
        let text = text(&composed);
        for line in [
            "Message-ID: <msg_01J@mail.example.com>\r\n",
            "Date: Tue, 04 Mar 2025 04:06:07 +0000\r\n",
            "From: Acme <hello@example.com>\r\n",
            "To: ada@example.org\r\n",
            "MIME-Version: 1.0\r\n",
            "List-Unsubscribe: <https://example.com/u/abc>, <mailto:unsub@example.com>\r\n",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            "Content-Transfer-Encoding: 7bit\r\n",
            "X-Herald-Message: abc234\r\n",
        ] {
            assert!(text.contains(line), "{line:?} missing in\n{text}");
        }
        assert!(!text.contains("Reply-To"));
        let text_at = text.find("Content-Type: text/plain").unwrap();
        let html_at = text.find("Content-Type: text/html").unwrap();
        assert!(text_at < html_at);
    }

    #[test]
    fn same_input_same_bytes() {
        assert_eq!(compose(&outgoing(), None, NOW).unwrap(), compose(&outgoing(), None, NOW).unwrap());
    }

    #[test]
    fn the_signature_is_made_at_the_given_time_not_the_wall_clock() {
        let key = DkimKey::generate(DkimAlgorithm::Ed25519).unwrap();
        let signer = DkimSigner::new("example.com", "herald1", key).unwrap();
        // Years away from any wall clock this test could run on.
        let at = datetime!(2001-09-09 01:46:40 UTC);
        let signed = text(&compose(&outgoing(), Some(&signer), at).unwrap());
        assert!(signed.contains(&format!("\tt={}; ", at.unix_timestamp())), "{signed}");
        let again = text(&compose(&outgoing(), Some(&signer), NOW).unwrap());
        assert!(again.contains(&format!("\tt={}; ", NOW.unix_timestamp())), "{again}");
    }

    #[test]
    fn bad_fields_are_named() {
        type Breakage = fn(&mut Outgoing);
        let cases: [(&str, Breakage); 8] = [
            ("herald_token", |m| m.herald_token = Some("a\r\nBcc: x@y".to_owned())),
            ("from", |m| m.from.address = "nobody".to_owned()),
            ("to", |m| m.to.address = "a@@b".to_owned()),
            ("reply_to", |m| m.reply_to = Some(Mailbox::new(None::<String>, "x y@z"))),
            ("envelope_from", |m| m.envelope_from = Some("@example.com".to_owned())),
            ("message_id", |m| m.message_id = "<a@b>".to_owned()),
            ("unsubscribe.url", |m| {
                m.unsubscribe = Some(Unsubscribe { url: "javascript:alert(1)".to_owned(), mailto: None })
            }),
            ("unsubscribe.mailto", |m| {
                m.unsubscribe = Some(Unsubscribe {
                    url: "https://example.com/u".to_owned(),
                    mailto: Some("not an address".to_owned()),
                })
            }),
        ];
        for (field, break_it) in cases {
            let mut msg = outgoing();
            break_it(&mut msg);
            let err = compose(&msg, None, msg.date).unwrap_err();
            assert!(err.to_string().starts_with(&format!("{field}: ")), "{field}: {err}");
        }
    }

    #[test]
    fn message_ids() {
        for ok in ["a@b", "msg_0192abc.1@mail.example.com", "x+y=z@host"] {
            assert!(check_message_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "ab", "a@", "@b", "a b@c", "a@b@c", "a..b@c", "<a@b>", "a@b\r\nBcc: x@y"] {
            assert!(check_message_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn line_breaks_cannot_inject_headers() {
        let mut msg = outgoing();
        msg.subject = "Hello\r\nBcc: victim@example.net".to_owned();
        msg.from.name = Some("Acme\r\nBcc: victim@example.net".to_owned());
        let text = text(&compose(&msg, None, msg.date).unwrap());
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(text.contains("Subject: Hello  Bcc: victim@example.net\r\n"), "{text}");
    }

    #[test]
    fn bodies_that_mimic_the_boundary_get_another_one() {
        let text = "--=_herald_00000000000000ff_0\r\n";
        assert_eq!(unused_boundary(0xff, text, ""), "=_herald_00000000000000ff_1");
        assert_eq!(unused_boundary(0xff, "", ""), "=_herald_00000000000000ff_0");
    }
}
