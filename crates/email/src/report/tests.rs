//! Reports shaped like those RFC 3464 and RFC 5965 describe and the large providers send
//! (`samples/`, written for these tests), read into what Herald records.

#![allow(clippy::unwrap_used)]

use super::*;

fn sample(name: &str) -> &'static [u8] {
    match name {
        "dsn-hard" => include_bytes!("samples/dsn-hard.eml"),
        "dsn-delayed" => include_bytes!("samples/dsn-delayed.eml"),
        "dsn-expired" => include_bytes!("samples/dsn-expired.eml"),
        "dsn-google-style" => include_bytes!("samples/dsn-google-style.eml"),
        "exchange-undeliverable" => include_bytes!("samples/exchange-undeliverable.eml"),
        "yahoo-failure-notice" => include_bytes!("samples/yahoo-failure-notice.eml"),
        "arf-abuse" => include_bytes!("samples/arf-abuse.eml"),
        "arf-headers-only" => include_bytes!("samples/arf-headers-only.eml"),
        "out-of-office" => include_bytes!("samples/out-of-office.eml"),
        other => panic!("no sample {other}"),
    }
}

fn bounce(class: Class, status: &str, diagnostic: &str) -> ReportKind {
    ReportKind::Bounce { class, status: Some(status.to_owned()), diagnostic: diagnostic.to_owned() }
}

#[test]
fn bounces_and_complaints_are_read_with_the_original_they_quote() {
    let cases = [
        (
            "dsn-hard",
            bounce(
                Class::Permanent,
                "5.1.1",
                "550 5.1.1 <ada@example.org>: Recipient address rejected: User unknown in local recipient table",
            ),
            "dsn-0001@mx.example.org",
            Some("ada@example.org"),
        ),
        (
            "dsn-expired",
            bounce(Class::Transient, "4.4.7", "451 4.7.1 Please try again later"),
            "dsn-0003@relay.example.com",
            Some("carol@example.com"),
        ),
        (
            "dsn-google-style",
            bounce(Class::Permanent, "5.1.1", "550-5.1.1 The email account that you tried to reach does not exist."),
            "dsn-0004@mx.google.example",
            Some("dave@gmail.example"),
        ),
        (
            "exchange-undeliverable",
            bounce(
                Class::Permanent,
                "5.1.10",
                "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'",
            ),
            "ndr-0005@outlook.example",
            None,
        ),
        (
            "yahoo-failure-notice",
            bounce(
                Class::Permanent,
                "554",
                "554: delivery error: dd This user doesn't have a yahoo.example account (frank@yahoo.example) [0] - mta1001.mail.yahoo.example",
            ),
            "fn-0006@yahoo.example",
            None,
        ),
        (
            "arf-abuse",
            ReportKind::Complaint { feedback_type: "abuse".into() },
            "arf-0007@fbl.example.net",
            Some("grace@example.net"),
        ),
        (
            "arf-headers-only",
            ReportKind::Complaint { feedback_type: "abuse".into() },
            "arf-0008@mail.example.com",
            None,
        ),
        (
            "dsn-delayed",
            ReportKind::Notice { action: "delayed".into() },
            "dsn-0002@mx.example.net",
            Some("bob@example.net"),
        ),
    ];
    for (name, kind, id, recipient) in cases {
        let report = parse(sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.kind, kind, "{name}");
        assert_eq!(report.id.as_deref(), Some(id), "{name}");
        assert_eq!(report.original.message_id.as_deref(), Some("msg_sample@mail.acme.test"), "{name}");
        assert_eq!(report.original.herald.as_deref(), Some("sampletoken"), "{name}");
        assert_eq!(report.original.recipient.as_deref(), recipient, "{name}");
    }
}

#[test]
fn the_original_envelope_sender_is_found_where_the_report_gives_it() {
    for name in ["dsn-hard", "dsn-google-style", "arf-abuse", "arf-headers-only"] {
        let report = parse(sample(name)).unwrap();
        assert_eq!(
            report.original.return_path.as_deref(),
            Some("bounces+sampletoken@bounces.mail.acme.test"),
            "{name}"
        );
    }
}

#[test]
fn what_is_not_a_report_is_refused() {
    assert_eq!(parse(sample("out-of-office")), Err(ReportError::NotAReport));
    assert_eq!(parse(b""), Err(ReportError::Unparseable));
    let cases: [(&[u8], ReportError); 4] = [
        (b"Subject: hello\r\n\r\nJust a note, 550 of them.", ReportError::NotAReport),
        // A bounce's subject, but no failure code anywhere: not enough to act on.
        (b"From: mailer-daemon@x.example\r\nSubject: failure notice\r\n\r\nSomething went wrong.", ReportError::NotAReport),
        (
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a\r\n\r\n--x--\r\n",
            ReportError::NoRecipient,
        ),
        (
            b"Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n\r\n--x\r\nContent-Type: message/feedback-report\r\n\r\nVersion: 1\r\n\r\n--x--\r\n",
            ReportError::NoFeedbackType,
        ),
    ];
    for (raw, error) in cases {
        assert_eq!(parse(raw), Err(error), "{}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn the_failed_recipient_wins_over_earlier_notices_and_codes_fill_gaps() {
    let raw = "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n\
               --x\r\nContent-Type: message/delivery-status\r\n\r\n\
               Reporting-MTA: dns; a.example\r\n\r\n\
               Final-Recipient: rfc822; first@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n\
               Final-Recipient: rfc822; second@example.org\r\nAction: FAILED\r\n\
               Diagnostic-Code: smtp; 452 mailbox full\r\n\r\n--x--\r\n";
    let report = parse(raw.as_bytes()).unwrap();
    assert_eq!(report.kind, bounce(Class::Transient, "452", "452 mailbox full"));
    assert_eq!(report.original.recipient.as_deref(), Some("second@example.org"));
    assert_eq!(report.id, None);
}

#[test]
fn long_diagnostics_are_cut_and_kept_on_one_line() {
    let diagnostic = format!("550 5.7.1 {}", "blocked ".repeat(200));
    let raw = format!(
        "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n\
         Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\n\
         Action: failed\r\nStatus: 5.7.1\r\nDiagnostic-Code: smtp; {diagnostic}\r\n\r\n--x--\r\n"
    );
    let ReportKind::Bounce { diagnostic, .. } = parse(raw.as_bytes()).unwrap().kind else { panic!("a bounce") };
    assert_eq!(diagnostic.chars().count(), MAX_DIAGNOSTIC);
    assert!(!diagnostic.contains('\n'));
}

#[test]
fn malformed_nesting_that_trips_the_mime_parsers_own_assertion_is_survived() {
    // Found by fuzzing: mail-parser 0.11.9 reaches a `debug_assert!` on this input.
    let raw = include_bytes!("samples/malformed-nesting.eml");
    let _ = parse(raw);
}
