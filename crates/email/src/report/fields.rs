//! The small text grammars inside reports: the `Name: value` field groups of
//! `message/delivery-status` (RFC 3464) and `message/feedback-report` (RFC 5965), and the
//! status codes a plain-text bounce writes in its prose (`550 5.1.1`, `554:`).

/// One group of fields, names lower-cased, continuation lines unfolded.
pub(crate) type Group = Vec<(String, String)>;

/// The groups of a field block: separated by blank lines (a DSN's per-message group, then
/// one per recipient; a feedback report has one group).
pub(crate) fn groups(text: &str) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut group: Group = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// The first value of field `name` (lower-case) in `group`.
pub(crate) fn field<'a>(group: &'a Group, name: &str) -> Option<&'a str> {
    group.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// A typed value (`rfc822; ada@example.org`, `smtp; 550 5.1.1 …`) without its type.
pub(crate) fn untyped(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.trim().contains(char::is_whitespace) => rest.trim(),
        _ => value.trim(),
    }
}

/// An address without angle brackets and surrounding space.
pub(crate) fn bare_address(value: &str) -> String {
    untyped(value).trim().trim_start_matches('<').trim_end_matches('>').trim().to_owned()
}

/// Whether a failure is permanent (`5`) or transient (`4`), from a status or reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Permanent,
    Transient,
}

/// The class of an RFC 3463 status (`5.1.1`) or a reply code (`550`): its first digit.
pub(crate) fn class_of(code: &str) -> Option<Class> {
    match code.as_bytes().first() {
        Some(b'5') => Some(Class::Permanent),
        Some(b'4') => Some(Class::Transient),
        _ => None,
    }
}

/// Whether `word` is an RFC 3463 enhanced status code (`class.subject.detail`, the class
/// 2, 4 or 5, then one to three digits twice).
pub(crate) fn is_status(word: &str) -> bool {
    let mut parts = word.split('.');
    let (Some(class), Some(subject), Some(detail), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let digits = |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    matches!(class, "2" | "4" | "5") && digits(subject, 3) && digits(detail, 3)
}

/// Whether `word` is an SMTP failure reply code (`4xx` or `5xx`).
fn is_reply_code(word: &str) -> bool {
    word.len() == 3 && matches!(word.as_bytes()[0], b'4' | b'5') && word.bytes().all(|b| b.is_ascii_digit())
}

/// The first failure code in prose and the line it stands on: an enhanced status code
/// (`5.1.1`) wins over a bare reply code (`550`), because prose is full of other numbers
/// and a dotted triple is rarely anything else. Words are split at anything that cannot be
/// part of a code, so `'550`, `554:` and `(5.7.1)` are all found.
pub(crate) fn failure_code(text: &str) -> Option<(String, String)> {
    let mut reply: Option<(String, String)> = None;
    for line in text.lines().take(MAX_SCANNED_LINES) {
        for word in line.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
            let word = word.trim_matches('.');
            if is_status(word) && !word.starts_with('2') {
                return Some((word.to_owned(), line.trim().to_owned()));
            }
            if reply.is_none() && is_reply_code(word) {
                reply = Some((word.to_owned(), line.trim().to_owned()));
            }
        }
    }
    reply
}

/// Prose beyond this many lines is not read for a code: a bounce says why near the top, and
/// the rest is usually the returned message.
const MAX_SCANNED_LINES: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_unfold_and_split_at_blank_lines() {
        let text = "Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822;\r\n ada@example.org\r\nAction: failed\r\n\r\n\r\n";
        let groups = groups(text);
        assert_eq!(groups.len(), 2);
        assert_eq!(field(&groups[1], "final-recipient"), Some("rfc822; ada@example.org"));
        assert_eq!(bare_address(field(&groups[1], "final-recipient").unwrap_or("")), "ada@example.org");
        assert_eq!(field(&groups[1], "action"), Some("failed"));
        assert_eq!(field(&groups[0], "action"), None);
    }

    #[test]
    fn codes_in_prose() {
        let cases = [
            ("Remote server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound'", Some("5.1.1")),
            ("554: delivery error: dd This user doesn't have an account", Some("554")),
            ("host mx.example.org said: 452 4.2.2 Mailbox full (in reply to RCPT TO)", Some("4.2.2")),
            ("Version 1.2.3 of nothing, 12 messages, 2.0.0 ok", None),
            ("no code here at all", None),
        ];
        for (text, want) in cases {
            assert_eq!(failure_code(text).map(|(code, _)| code).as_deref(), want, "{text}");
        }
        assert!(is_status("5.7.1") && is_status("4.4.7") && !is_status("5.1") && !is_status("6.1.1"));
        assert_eq!(
            (class_of("5.1.1"), class_of("421"), class_of("2.0.0")),
            (Some(Class::Permanent), Some(Class::Transient), None)
        );
    }
}
