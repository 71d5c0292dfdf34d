//! Herald's DKIM signatures checked by an independent verifier (Python's `dkimpy`): composed
//! messages with every optional header and with none, raw messages at the edges of relaxed
//! canonicalization, and the changes relaxed canonicalization must tolerate or refuse.
#![cfg(feature = "test-support")]
#![allow(clippy::unwrap_used)]

use herald_email::dkim::{DkimAlgorithm, DkimKey, DkimSigner};
use herald_email::message::{Mailbox, Outgoing, Unsubscribe, compose};
use herald_email::testing::smtp::verify_dkim;
use time::macros::datetime;

/// Written by `openssl genrsa -traditional 2048`: a key no Herald code generated.
const OPENSSL_RSA: &str = include_str!("../src/dkim/testdata/rsa2048.pem");
const ALGORITHMS: [DkimAlgorithm; 2] = [DkimAlgorithm::Rsa2048, DkimAlgorithm::Ed25519];
/// When the messages are signed (the `t=` tag): in the past, as a verifier expects.
const NOW: time::OffsetDateTime = datetime!(2025-03-04 04:06:08 UTC);

fn key(algorithm: DkimAlgorithm) -> DkimKey {
    match algorithm {
        DkimAlgorithm::Rsa2048 => DkimKey::from_parts(algorithm, OPENSSL_RSA).unwrap(),
        DkimAlgorithm::Ed25519 => DkimKey::generate(algorithm).unwrap(),
    }
}

fn signer(key: &DkimKey) -> DkimSigner {
    DkimSigner::new("example.com", "herald1", key.clone()).unwrap()
}

fn full() -> Outgoing {
    Outgoing {
        message_id: "msg_0192f3a8b7c64d2e@mail.example.com".to_owned(),
        date: datetime!(2025-03-04 05:06:07 +01:00),
        from: Mailbox::new(Some("Grüße, Zoë — 🎉"), "hello@example.com"),
        to: Mailbox::new(Some("Ada Lovelace"), "ada@example.org"),
        reply_to: Some(Mailbox::new(Some("Support"), "support@example.com")),
        subject: "A subject long enough to be folded by the encoder: Grüße, Zoë — 🎉 你好, Ada".to_owned(),
        html: "<p>Hello Ada, Ça marche — 你好 🎉</p>".to_owned(),
        text: "Hello Ada\n\ntrailing spaces   \n\n\n".to_owned(),
        unsubscribe: Some(Unsubscribe {
            url: "https://herald.example.com/u/tok_abc123".to_owned(),
            mailto: Some("unsubscribe@example.com".to_owned()),
        }),
        envelope_from: Some("bounces@example.com".to_owned()),
        herald_token: None,
    }
}

fn minimal() -> Outgoing {
    Outgoing {
        reply_to: None,
        unsubscribe: None,
        envelope_from: None,
        herald_token: None,
        from: Mailbox::new(None::<String>, "hello@example.com"),
        to: Mailbox::new(None::<String>, "ada@example.org"),
        subject: "Hi".to_owned(),
        text: String::new(),
        html: String::new(),
        ..full()
    }
}

fn replace_once(data: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(data.to_vec()).unwrap();
    assert!(text.contains(from), "{from:?} not in\n{text}");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn composed_messages_verify_with_every_header_and_with_none_optional() {
    for algorithm in ALGORITHMS {
        let key = key(algorithm);
        for (name, msg) in [("full", full()), ("minimal", minimal())] {
            let composed = compose(&msg, Some(&signer(&key)), msg.date).unwrap();
            let text = String::from_utf8(composed.bytes.clone()).unwrap();
            assert!(text.starts_with(&format!("DKIM-Signature: v=1; a={algorithm}-sha256;")), "{text}");
            verify_dkim(&composed.bytes, &key.dns_txt_value()).unwrap_or_else(|e| panic!("{algorithm} {name}: {e}"));
        }
        // Signed absences: a Reply-To or List-Unsubscribe added on the way breaks the minimal one.
        let minimal = compose(&minimal(), Some(&signer(&key)), NOW).unwrap().bytes;
        for added in ["Reply-To: evil@example.net", "List-Unsubscribe: <https://evil.example.net/>"] {
            let tampered = replace_once(&minimal, "\r\nSubject:", &format!("\r\n{added}\r\nSubject:"));
            assert!(verify_dkim(&tampered, &key.dns_txt_value()).is_err(), "{algorithm}: {added} still verified");
        }
    }
}

#[test]
fn relaxed_canonicalization_survives_what_relays_do_and_nothing_else() {
    for algorithm in ALGORITHMS {
        let key = key(algorithm);
        let txt = key.dns_txt_value();
        let signed = compose(&full(), Some(&signer(&key)), NOW).unwrap().bytes;
        verify_dkim(&signed, &txt).unwrap();

        // Re-folded headers, changed header-name case, extra whitespace and trailing empty
        // lines: relaxed/relaxed makes them the same message.
        let refolded = replace_once(&signed, "Message-ID: <", "Message-ID:\r\n\t  <");
        let recased = replace_once(&refolded, "\r\nMIME-Version: 1.0", "\r\nmime-VERSION:  1.0  ");
        let spaced = replace_once(&recased, "Hello Ada", "Hello \t Ada   ");
        let mut padded = spaced.clone();
        padded.extend_from_slice(b"\r\n\r\n");
        verify_dkim(&padded, &txt).unwrap_or_else(|e| panic!("{algorithm}: {e}"));

        // But a space inside a word, a changed letter, or a removed line break is a change.
        for (from, to) in [("Hello Ada", "HelloAda"), ("Hello Ada", "Hello Adb"), ("=?utf-8?", "=?UTF-8?")] {
            let tampered = replace_once(&signed, from, to);
            assert!(verify_dkim(&tampered, &txt).is_err(), "{algorithm}: {from:?} -> {to:?} still verified");
        }
    }
}

#[test]
fn raw_messages_at_the_edges_verify() {
    let cases: [(&str, &[u8]); 8] = [
        ("empty body", b"From: a@example.com\r\nTo: b@example.org\r\nSubject: empty\r\n\r\n"),
        ("only empty lines", b"From: a@example.com\r\nSubject: blank\r\n\r\n\r\n\r\n \r\n"),
        ("no final CRLF", b"From: a@example.com\r\nSubject: no CRLF\r\n\r\nthe last line has no line break"),
        (
            "folded headers",
            b"From: Someone\r\n <a@example.com>\r\nTo: b@example.org,\r\n\tc@example.org\r\nSubject: a\r\n  folded\r\n\tsubject\r\n\r\nHi\r\n",
        ),
        (
            "trailing whitespace",
            b"From: a@example.com  \r\nSubject:\tspaced   out\t \r\n\r\nline one   \r\n\t\r\nline  two\t\r\n   \r\n",
        ),
        (
            "RFC 2047 headers",
            b"From: =?utf-8?b?R3LDvMOfZSwgWm/Dqw==?= <a@example.com>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n =?utf-8?b?IOS9oOWlvQ==?=\r\n\r\nHi\r\n",
        ),
        (
            "a header twice: the last is signed",
            b"From: a@example.com\r\nSubject: first\r\nSubject: second\r\n\r\nHi\r\n",
        ),
        ("no header but From", b"From: a@example.com\r\n\r\nHi\r\n"),
    ];
    for algorithm in ALGORITHMS {
        let key = key(algorithm);
        let signer = signer(&key);
        for (name, message) in cases {
            let signed = signer.sign(message, time::OffsetDateTime::now_utc()).unwrap();
            verify_dkim(&signed, &key.dns_txt_value()).unwrap_or_else(|e| panic!("{algorithm}, {name}: {e}"));
        }
        let twice = cases[6].1;
        let signed = signer.sign(twice, time::OffsetDateTime::now_utc()).unwrap();
        let tampered = replace_once(&signed, "Subject: second", "Subject: other");
        assert!(verify_dkim(&tampered, &key.dns_txt_value()).is_err(), "{algorithm}: the last Subject is not signed");
    }
}
