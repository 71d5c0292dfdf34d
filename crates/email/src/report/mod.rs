//! Reports that come back about sent mail, read from the raw message: delivery status
//! notifications (RFC 3464, `multipart/report; report-type=delivery-status`), the plain-text
//! bounces some large providers and older servers still send (a status code in the prose, the
//! original quoted or attached), and complaint feedback reports (ARF, RFC 5965,
//! `report-type=feedback-report`). Pure parsing, no I/O: what the report says, and what it
//! quotes of the original message to find it by (its `Message-ID`, Herald's own header, the
//! envelope sender it had). Parsing never panics on any input; it is fuzzed.
//!
//! Which `Action` counts: only `failed` is a bounce. `delayed` says the sending side is still
//! trying (it may yet deliver), and `delivered`, `relayed` and `expanded` are successes; those
//! are [`ReportKind::Notice`], which changes nothing. A failure is hard when its status (or,
//! lacking one, the reply code in its diagnostic) is permanent (`5.x.x`, `5xx`) and soft when
//! it is transient (`4.x.x`: the sending side gave up after retrying, e.g. `4.4.7`).

mod fields;

pub use fields::Class;

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// The header Herald adds to every message it sends, carrying the same signed token as the
/// message's return path, so that a report quoting only the original's headers still names it.
pub const HERALD_HEADER: &str = "X-Herald-Message";

/// What one report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: ReportKind,
    /// The report's own `Message-ID`, without angle brackets: a resent copy carries the same.
    pub id: Option<String>,
    /// What the report tells of the message it is about.
    pub original: Original,
}

/// What a report says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportKind {
    /// The message was not delivered and the sending side has given up.
    Bounce {
        class: Class,
        /// The RFC 3463 status (`5.1.1`) or reply code (`550`), when the report gives one.
        status: Option<String>,
        /// Why, in the receiving side's words (`550 5.1.1 user unknown`), at most
        /// [`MAX_DIAGNOSTIC`] characters.
        diagnostic: String,
    },
    /// The recipient marked the message as unwanted.
    Complaint {
        /// `abuse`, `fraud`, `virus`, `other`, …, lower-cased.
        feedback_type: String,
    },
    /// A delivery status that is not a final failure (`delayed`, `delivered`, `relayed`,
    /// `expanded`), lower-cased.
    Notice { action: String },
}

/// What a report quotes of the original message. Every field is as found, untrusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Original {
    /// The original's `Message-ID`, without angle brackets.
    pub message_id: Option<String>,
    /// The original's [`HERALD_HEADER`].
    pub herald: Option<String>,
    /// The original's envelope sender: a feedback report's `Original-Mail-From`, or the
    /// `Return-Path` of the returned message.
    pub return_path: Option<String>,
    /// The recipient the report is about: `Final-Recipient` (or `Original-Recipient`), or a
    /// feedback report's `Original-Rcpt-To`.
    pub recipient: Option<String>,
}

/// Why a message is not a report Herald can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("not a MIME message")]
    Unparseable,
    #[error("a delivery status notification without a recipient's action")]
    NoRecipient,
    #[error("a feedback report without a Feedback-Type")]
    NoFeedbackType,
    #[error("neither a delivery status notification, a bounce nor a feedback report")]
    NotAReport,
}

/// The longest diagnostic kept, in characters.
pub const MAX_DIAGNOSTIC: usize = 500;

/// Reads a report from the raw message as received.
pub fn parse(raw: &[u8]) -> Result<Report, ReportError> {
    let message = guarded(|| MessageParser::default().parse(raw)).ok_or(ReportError::Unparseable)?;
    let mut original = quoted_original(&message);
    let kind = if let Some(status) = part_text(&message, &["delivery-status", "global-delivery-status"]) {
        delivery_status(&status, &mut original)?
    } else if let Some(report) = part_text(&message, &["feedback-report"]) {
        feedback(&report, &mut original)?
    } else {
        plain_bounce(&message)?
    };
    let id = message.message_id().map(clean_id);
    Ok(Report { kind, id, original })
}

/// Runs mail-parser, reading a panic as an unparseable message. mail-parser 0.11.9 has a
/// `debug_assert!` ("Invalid part ID") on a malformed multipart nesting that it otherwise
/// recovers from; fuzzing this module found inputs that reach it. Builds without debug
/// assertions (`herald serve` in release) never panic there; this keeps debug builds (tests)
/// from losing a listener connection to it.
fn guarded<T>(parse: impl FnOnce() -> Option<T> + std::panic::UnwindSafe) -> Option<T> {
    std::panic::catch_unwind(parse).ok().flatten()
}

/// The text of the first `message/<subtype>` part with one of these subtypes.
fn part_text(message: &Message<'_>, subtypes: &[&str]) -> Option<String> {
    message.parts.iter().find_map(|part| {
        let content_type = part.content_type()?;
        let wanted = content_type.ctype().eq_ignore_ascii_case("message")
            && content_type.subtype().is_some_and(|s| subtypes.iter().any(|w| s.eq_ignore_ascii_case(w)));
        wanted.then(|| String::from_utf8_lossy(part.contents()).into_owned())
    })
}

/// RFC 3464: the first recipient whose action is `failed` makes a bounce; otherwise the first
/// recipient's action is a notice.
fn delivery_status(text: &str, original: &mut Original) -> Result<ReportKind, ReportError> {
    let groups = fields::groups(text);
    let recipients: Vec<&fields::Group> = groups.iter().filter(|g| fields::field(g, "action").is_some()).collect();
    let chosen = recipients
        .iter()
        .find(|g| fields::field(g, "action").is_some_and(|a| a.eq_ignore_ascii_case("failed")))
        .or(recipients.first())
        .ok_or(ReportError::NoRecipient)?;
    let recipient = fields::field(chosen, "final-recipient").or(fields::field(chosen, "original-recipient"));
    if let Some(recipient) = recipient {
        original.recipient = Some(fields::bare_address(recipient));
    }
    let action = fields::field(chosen, "action").unwrap_or_default().to_ascii_lowercase();
    if action != "failed" {
        return Ok(ReportKind::Notice { action });
    }
    let status = fields::field(chosen, "status").map(|s| s.split_whitespace().next().unwrap_or_default().to_owned());
    let diagnostic = fields::field(chosen, "diagnostic-code").map(fields::untyped);
    let from_diagnostic = diagnostic.and_then(fields::failure_code).map(|(code, _)| code);
    let class = status
        .as_deref()
        .and_then(fields::class_of)
        .or_else(|| from_diagnostic.as_deref().and_then(fields::class_of))
        // `failed` is final: without a code to say otherwise it is permanent.
        .unwrap_or(Class::Permanent);
    let diagnostic = diagnostic.or(status.as_deref()).unwrap_or("failed").to_owned();
    Ok(ReportKind::Bounce { class, status: status.or(from_diagnostic), diagnostic: shorten(&diagnostic) })
}

/// RFC 5965: the feedback type, and the envelope the report quotes.
fn feedback(text: &str, original: &mut Original) -> Result<ReportKind, ReportError> {
    let group: fields::Group = fields::groups(text).into_iter().flatten().collect();
    let feedback_type = fields::field(&group, "feedback-type").ok_or(ReportError::NoFeedbackType)?;
    if let Some(from) = fields::field(&group, "original-mail-from") {
        original.return_path = Some(fields::bare_address(from));
    }
    if let Some(to) = fields::field(&group, "original-rcpt-to") {
        original.recipient = Some(fields::bare_address(to));
    }
    Ok(ReportKind::Complaint { feedback_type: shorten(&feedback_type.to_ascii_lowercase()) })
}

/// A bounce without a `message/delivery-status` part: it must look like one (from a mailer
/// daemon or postmaster, or with a bounce's subject) and name a failure code in its text.
/// An out-of-office reply or a person's answer is neither, and is refused.
fn plain_bounce(message: &Message<'_>) -> Result<ReportKind, ReportError> {
    let sender = message
        .from()
        .and_then(|from| from.first())
        .and_then(|addr| addr.address())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    let daemon = ["mailer-daemon@", "postmaster@"].iter().any(|d| sender.starts_with(d));
    let bounce_subject = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    if !daemon && !bounce_subject {
        return Err(ReportError::NotAReport);
    }
    let (code, line) = message
        .text_bodies()
        .filter_map(|part| part.text_contents())
        .find_map(fields::failure_code)
        .ok_or(ReportError::NotAReport)?;
    let class = fields::class_of(&code).ok_or(ReportError::NotAReport)?;
    Ok(ReportKind::Bounce { class, status: Some(code), diagnostic: shorten(&line) })
}

/// Subjects (lower-cased parts) that bounces from the large providers and common servers use.
const BOUNCE_SUBJECTS: [&str; 9] = [
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "mail delivery failed",
    "delivery failure",
    "failure notice",
    "returned mail",
    "delivery has failed",
    "could not be delivered",
];

/// The original's identifiers: from an attached `message/rfc822` (or `message/global`), else
/// attached `text/rfc822-headers`, else header lines quoted in the text (`> Message-ID: …`).
fn quoted_original(message: &Message<'_>) -> Original {
    let mut found = Original::default();
    for part in message.parts.iter().skip(1) {
        match &part.body {
            PartType::Message(inner) => merge(&mut found, from_headers(inner)),
            _ if part
                .content_type()
                .is_some_and(|ct| ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))) =>
            {
                if let Some(headers) = guarded(|| MessageParser::default().parse_headers(part.contents())) {
                    merge(&mut found, from_headers(&headers));
                }
            }
            _ => {}
        }
    }
    for text in message.text_bodies().filter_map(|part| part.text_contents()) {
        merge(&mut found, from_quoted_lines(text));
    }
    found
}

fn from_headers(headers: &Message<'_>) -> Original {
    Original {
        message_id: headers.message_id().map(clean_id),
        herald: headers.header_raw(HERALD_HEADER).map(|v| v.trim().to_owned()),
        return_path: headers.return_address().map(fields::bare_address),
        recipient: None,
    }
}

fn from_quoted_lines(text: &str) -> Original {
    let mut found = Original::default();
    for line in text.lines() {
        let line = line.trim_start_matches(['>', ' ', '\t']);
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("message-id") && found.message_id.is_none() && !value.is_empty() {
            found.message_id = Some(clean_id(value));
        } else if name.eq_ignore_ascii_case(HERALD_HEADER) && found.herald.is_none() && !value.is_empty() {
            found.herald = Some(value.to_owned());
        }
    }
    found
}

/// Fills what `found` lacks from `more`.
fn merge(found: &mut Original, more: Original) {
    found.message_id = found.message_id.take().or(more.message_id);
    found.herald = found.herald.take().or(more.herald);
    found.return_path = found.return_path.take().or(more.return_path);
    found.recipient = found.recipient.take().or(more.recipient);
}

/// A `Message-ID` without angle brackets or space.
fn clean_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').trim().to_owned()
}

fn shorten(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(MAX_DIAGNOSTIC).collect()
}

#[cfg(test)]
mod tests;
