//! DKIM's "relaxed" canonicalization (RFC 6376 §3.4.2 and §3.4.4), the only one Herald signs
//! with, and the split of a message into its header fields and body. Pure functions on bytes:
//! a relay may re-fold headers or change whitespace, and the canonical forms stay the same.

const SP: u8 = b' ';
const HTAB: u8 = b'\t';

fn is_wsp(b: u8) -> bool {
    b == SP || b == HTAB
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

/// The header section (every field with its final CRLF) and the body, split at the first empty
/// line. A message without one is all header.
pub(super) fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    if message.starts_with(b"\r\n") {
        return (&[], &message[2..]);
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&message[..at + 2], &message[at + 4..]),
        None => (message, &[]),
    }
}

/// The header fields in order, each with its continuation lines and without its final CRLF.
pub(super) fn header_fields(head: &[u8]) -> Vec<&[u8]> {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while let Some(end) = find_crlf(&head[at..]).map(|i| at + i) {
        let next = end + 2;
        // A line that starts with whitespace continues the field above (folding).
        if !head.get(next).is_some_and(|&b| is_wsp(b)) {
            fields.push(&head[start..end]);
            start = next;
        }
        at = next;
    }
    if start < head.len() {
        fields.push(&head[start..]);
    }
    fields
}

/// A field's name as written (before the colon, surrounding whitespace removed).
pub(super) fn field_name(field: &[u8]) -> &[u8] {
    let name = field.iter().position(|&b| b == b':').map_or(field, |colon| &field[..colon]);
    name.trim_ascii()
}

/// Appends the relaxed form of one header field (`name:value`, no CRLF): the name in lower
/// case, continuation lines unfolded, every run of whitespace one space, and no whitespace at
/// either end of the value or around the colon.
pub(super) fn relaxed_header(field: &[u8], out: &mut Vec<u8>) {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    out.extend(field_name(field).iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let value = field.get(colon + 1..).unwrap_or_default();
    let mut space = false;
    let mut started = false;
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            // Unfolding removes the CRLF; the whitespace after it joins the run around it.
            b'\r' if value.get(i + 1) == Some(&b'\n') => i += 1,
            b if is_wsp(b) => space = started,
            b => {
                if space {
                    out.push(SP);
                    space = false;
                }
                started = true;
                out.push(b);
            }
        }
        i += 1;
    }
}

/// The relaxed form of a body: every run of whitespace in a line one space, none at a line's
/// end, no empty lines at the end, and a final CRLF unless the result is empty (RFC 6376 §3.4.4
/// with erratum 3: an empty body stays empty).
pub(super) fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut empty_lines = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let (line, next) = match find_crlf(rest) {
            Some(end) => (&rest[..end], &rest[end + 2..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if line.iter().all(|&b| is_wsp(b)) {
            empty_lines += 1;
            continue;
        }
        for _ in 0..empty_lines {
            out.extend_from_slice(b"\r\n");
        }
        empty_lines = 0;
        let mut space = false;
        for &b in line {
            if is_wsp(b) {
                space = true;
            } else {
                if space {
                    out.push(SP);
                    space = false;
                }
                out.push(b);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn header(field: &str) -> String {
        let mut out = Vec::new();
        relaxed_header(field.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn body(text: &str) -> String {
        String::from_utf8(relaxed_body(text.as_bytes())).unwrap()
    }

    #[test]
    fn rfc_6376_example() {
        // RFC 6376 §3.4.6, the example message and its relaxed canonical form.
        let message = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";
        let (head, rest) = split_message(message);
        let fields = header_fields(head);
        let mut canonical = Vec::new();
        for field in fields {
            relaxed_header(field, &mut canonical);
            canonical.extend_from_slice(b"\r\n");
        }
        assert_eq!(String::from_utf8(canonical).unwrap(), "a:X\r\nb:Y Z\r\n");
        assert_eq!(body(std::str::from_utf8(rest).unwrap()), " C\r\nD E\r\n");
    }

    #[test]
    fn headers() {
        for (field, canonical) in [
            ("Subject: Hello", "subject:Hello"),
            ("SUBJECT:Hello", "subject:Hello"),
            ("Subject \t:  Hello  ", "subject:Hello"),
            ("Subject: two  spaces\tand\t\ttabs", "subject:two spaces and tabs"),
            // Folded: the CRLF goes, the whitespace around it becomes one space.
            ("Subject: folded\r\n line", "subject:folded line"),
            ("Subject: folded \r\n\t  twice\r\n\tover", "subject:folded twice over"),
            ("Subject:\r\n starts on the next line", "subject:starts on the next line"),
            ("To: a@example.org, \r\n b@example.org \t", "to:a@example.org, b@example.org"),
            ("Reply-To:", "reply-to:"),
            ("Reply-To:   \t", "reply-to:"),
            // RFC 2047 encoded words are plain ASCII to DKIM and keep their case.
            (
                "From: =?utf-8?b?R3LDvMOfZSwgWm/Dqw==?=\r\n =?utf-8?b?IOKAlCDwn46J?= <hello@example.com>",
                "from:=?utf-8?b?R3LDvMOfZSwgWm/Dqw==?= =?utf-8?b?IOKAlCDwn46J?= <hello@example.com>",
            ),
        ] {
            assert_eq!(header(field), canonical, "{field:?}");
        }
    }

    #[test]
    fn non_ascii_bytes_pass_through() {
        // Herald sends 7-bit headers, but the canonicalization is bytewise either way.
        assert_eq!(header("Subject:  Grüße  "), "subject:Grüße");
    }

    #[test]
    fn bodies() {
        for (raw, canonical) in [
            ("", ""),
            ("\r\n", ""),
            ("\r\n\r\n\r\n", ""),
            (" \t \r\n\t\r\n", ""),
            ("Hi\r\n", "Hi\r\n"),
            // No final CRLF: one is added.
            ("Hi", "Hi\r\n"),
            ("Hi  ", "Hi\r\n"),
            ("Hi\r\n\r\n\r\n", "Hi\r\n"),
            ("Hi \t \r\n  there\t\r\n", "Hi\r\n there\r\n"),
            // Empty lines inside the body stay; only those at the end go.
            ("a\r\n\r\n \r\nb\r\n\r\n", "a\r\n\r\n\r\nb\r\n"),
            ("a\r\n   \r\n", "a\r\n"),
            // A bare LF or CR is not a line break in an SMTP body.
            ("a\nb \r\n", "a\nb\r\n"),
            ("a \rb\r\n", "a \rb\r\n"),
        ] {
            assert_eq!(body(raw), canonical, "{raw:?}");
        }
    }

    #[test]
    fn splitting() {
        assert_eq!(split_message(b"A: 1\r\nB: 2\r\n\r\nbody"), (&b"A: 1\r\nB: 2\r\n"[..], &b"body"[..]));
        assert_eq!(split_message(b"A: 1\r\n\r\n"), (&b"A: 1\r\n"[..], &b""[..]));
        assert_eq!(split_message(b"A: 1\r\n"), (&b"A: 1\r\n"[..], &b""[..]));
        assert_eq!(split_message(b"\r\nbody"), (&b""[..], &b"body"[..]));
        let fields = header_fields(b"A: 1\r\nB: 2\r\n  more\r\n\tand more\r\nC:3\r\n");
        assert_eq!(fields, [&b"A: 1"[..], b"B: 2\r\n  more\r\n\tand more", b"C:3"]);
        assert_eq!(header_fields(b"A: no final CRLF"), [&b"A: no final CRLF"[..]]);
        assert_eq!(field_name(b"Message-ID : <a@b>"), b"Message-ID");
    }
}
