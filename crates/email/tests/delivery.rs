//! End to end: compose and sign with Herald's code, send through `SmtpClient` to a real SMTP
//! server (the aiosmtpd sink), then read what arrived with independent parsers: Python's
//! `email` package for the MIME structure and `dkimpy` for the signature.
#![cfg(feature = "test-support")]
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use herald_email::dkim::{DkimAlgorithm, DkimKey, DkimSigner};
use herald_email::message::{Composed, Mailbox, Outgoing, Unsubscribe, compose};
use herald_email::smtp::{FailureKind, SmtpClient, SmtpSettings};
use herald_email::testing::python;
use herald_email::testing::smtp::{Received, SinkOptions, SinkTls, SmtpSink, verify_dkim};
use serde_json::Value;
use time::macros::datetime;

const WAIT: Duration = Duration::from_secs(10);
const FANCY: &str = "Grüße, Zoë — 🎉";
/// When the messages are composed (a DKIM signature's `t=`): in the past, as a verifier expects.
const SIGNED_AT: time::OffsetDateTime = datetime!(2025-03-04 04:06:08 UTC);

fn outgoing(to: &str) -> Outgoing {
    Outgoing {
        message_id: "msg_0192f3a8b7c64d2e@mail.example.com".to_owned(),
        date: datetime!(2025-03-04 05:06:07 +01:00),
        from: Mailbox::new(Some(FANCY), "hello@example.com"),
        to: Mailbox::new(Some("Ada Lovelace"), to),
        reply_to: Some(Mailbox::new(Some("Support"), "support@example.com")),
        subject: format!("{FANCY}, Ada"),
        html: "<p>Hello Ada, your plan is <b>Pro</b>. Ça marche — 你好 🎉</p>".to_owned(),
        text: "Hello Ada, your plan is Pro. Ça marche — 你好 🎉\n\nA line that is rather long, so long that it will \
               certainly need to be folded by a quoted-printable encoder somewhere.\n"
            .to_owned(),
        unsubscribe: Some(Unsubscribe {
            url: "https://herald.example.com/u/tok_abc123?c=1".to_owned(),
            mailto: Some("unsubscribe+tok_abc123@example.com".to_owned()),
        }),
        envelope_from: Some("bounces@example.com".to_owned()),
        herald_token: None,
    }
}

fn client(settings: &SmtpSettings) -> SmtpClient {
    SmtpClient::new(settings).unwrap()
}

/// The message as Python's `email` package (policy.default) reads it.
fn parse_with_python(data: &[u8]) -> Value {
    const SCRIPT: &str = r#"
import email, json, sys
from email import policy
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
sender = msg["From"].addresses[0]
out = {
    "headers": {k: str(v) for k, v in msg.items()},
    "from_name": sender.display_name,
    "from_address": sender.addr_spec,
    "content_type": msg.get_content_type(),
    "defects": [repr(d) for d in msg.defects],
    "parts": [
        {"content_type": p.get_content_type(), "charset": p.get_content_charset(),
         "content": p.get_content(), "defects": [repr(d) for d in p.defects]}
        for p in msg.iter_parts()
    ],
}
print(json.dumps(out))
"#;
    let mut child =
        Command::new(python()).args(["-c", SCRIPT]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python could not parse the message");
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn send_one(sink: &SmtpSink, composed: &Composed) -> Received {
    let reply = client(&sink.settings()).send(composed).await.unwrap();
    assert_eq!(reply.code, 250, "{reply}");
    assert!(reply.message.contains("queued as"), "{reply}");
    let mut received = sink.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    received.remove(0)
}

/// The header block, unfolded, as one string per header.
fn header_lines(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8(data.to_vec()).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap();
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match lines.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => lines.push(line.to_owned()),
        }
    }
    lines
}

fn replace_once(data: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(data.to_vec()).unwrap();
    assert!(text.contains(from), "{from:?} not in the message");
    text.replacen(from, to, 1).into_bytes()
}

async fn signed_message_arrives_intact_and_verifies(algorithm: DkimAlgorithm) {
    let sink = SmtpSink::start().unwrap();
    let key = DkimKey::generate(algorithm).unwrap();
    let signer = DkimSigner::new("example.com", "herald1", key.clone()).unwrap();
    let composed = compose(&outgoing("ada@example.org"), Some(&signer), SIGNED_AT).unwrap();
    assert!(composed.bytes.is_ascii(), "the message must be 7-bit");
    let received = send_one(&sink, &composed).await;

    assert_eq!(received.mail_from, "bounces@example.com");
    assert_eq!(received.rcpt_tos, ["ada@example.org"]);
    assert_eq!(
        String::from_utf8_lossy(&received.data),
        String::from_utf8_lossy(&composed.bytes),
        "the sink got other bytes than were sent"
    );

    let parsed = parse_with_python(&received.data);
    let headers = &parsed["headers"];
    assert_eq!(headers["Message-ID"], "<msg_0192f3a8b7c64d2e@mail.example.com>");
    assert_eq!(headers["Date"], "Tue, 04 Mar 2025 04:06:07 +0000");
    assert_eq!(parsed["from_name"], FANCY);
    assert_eq!(parsed["from_address"], "hello@example.com");
    assert_eq!(headers["To"], "Ada Lovelace <ada@example.org>");
    assert_eq!(headers["Reply-To"], "Support <support@example.com>");
    assert_eq!(headers["Subject"], format!("{FANCY}, Ada"));
    assert_eq!(headers["MIME-Version"], "1.0");
    assert_eq!(
        headers["List-Unsubscribe"],
        "<https://herald.example.com/u/tok_abc123?c=1>, <mailto:unsubscribe+tok_abc123@example.com>"
    );
    assert_eq!(headers["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click");
    assert_eq!(parsed["content_type"], "multipart/alternative");
    assert_eq!(parsed["defects"], Value::Array(vec![]));

    let parts = parsed["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["content_type"], "text/plain");
    assert_eq!(parts[1]["content_type"], "text/html");
    for part in parts {
        assert_eq!(part["charset"], "utf-8");
        assert_eq!(part["defects"], Value::Array(vec![]));
    }
    let sent = outgoing("ada@example.org");
    // The parser gives text with the transport's CRLF turned back into LF.
    assert_eq!(parts[0]["content"].as_str().unwrap().replace("\r\n", "\n"), sent.text);
    assert_eq!(parts[1]["content"].as_str().unwrap().trim_end(), sent.html);

    // The signature: relaxed/relaxed, d= and s= as configured, every header RFC 8058 and the
    // brief require named in h=.
    let signature = header_lines(&received.data).into_iter().find(|line| line.starts_with("DKIM-Signature:")).unwrap();
    let tags: Vec<(String, String)> = signature["DKIM-Signature:".len()..]
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.split_whitespace().collect()))
        .collect();
    let tag = |name: &str| tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(tag("c"), "relaxed/relaxed");
    assert_eq!(tag("d"), "example.com");
    assert_eq!(tag("s"), "herald1");
    assert_eq!(tag("a"), format!("{}-sha256", algorithm.as_str()));
    let signed: Vec<String> = tag("h").split(':').map(str::to_owned).collect();
    for header in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "mime-version",
        "content-type",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(signed.iter().any(|h| h == header), "{header} not signed: {signed:?}");
    }

    let txt = key.dns_txt_value();
    verify_dkim(&received.data, &txt).unwrap();

    // The check is real: one changed byte in the body, a changed unsubscribe URL, a removed
    // one-click header or another key, and dkimpy refuses.
    let body_at = received.data.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let mut tampered = received.data.clone();
    let i = body_at + tampered[body_at..].iter().position(|&b| b == b'A').unwrap();
    tampered[i] = b'B';
    assert!(verify_dkim(&tampered, &txt).is_err(), "a changed body still verified");
    let tampered = replace_once(&received.data, "tok_abc123?c=1", "tok_abc123?c=2");
    assert!(verify_dkim(&tampered, &txt).is_err(), "a changed List-Unsubscribe still verified");
    let tampered = replace_once(&received.data, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", "");
    assert!(verify_dkim(&tampered, &txt).is_err(), "a removed List-Unsubscribe-Post still verified");
    let other = DkimKey::generate(algorithm).unwrap();
    assert!(verify_dkim(&received.data, &other.dns_txt_value()).is_err(), "another key verified");
}

#[tokio::test]
async fn rsa_signed_message_arrives_intact_and_verifies() {
    signed_message_arrives_intact_and_verifies(DkimAlgorithm::Rsa2048).await;
}

#[tokio::test]
async fn ed25519_signed_message_arrives_intact_and_verifies() {
    signed_message_arrives_intact_and_verifies(DkimAlgorithm::Ed25519).await;
}

#[tokio::test]
async fn minimal_signed_message_verifies_and_a_later_reply_to_breaks_it() {
    // No Reply-To and no unsubscribe: the signature still names them, signing their absence.
    let sink = SmtpSink::start().unwrap();
    let key = DkimKey::generate(DkimAlgorithm::Ed25519).unwrap();
    let signer = DkimSigner::new("example.com", "herald1", key.clone()).unwrap();
    let mut msg = outgoing("plain@example.org");
    msg.reply_to = None;
    msg.unsubscribe = None;
    msg.envelope_from = None;
    msg.text = "Hi".to_owned();
    let received = send_one(&sink, &compose(&msg, Some(&signer), SIGNED_AT).unwrap()).await;
    assert_eq!(received.mail_from, "hello@example.com");
    verify_dkim(&received.data, &key.dns_txt_value()).unwrap();

    let added = replace_once(&received.data, "\r\nSubject:", "\r\nReply-To: evil@example.net\r\nSubject:");
    assert!(verify_dkim(&added, &key.dns_txt_value()).is_err(), "an added Reply-To still verified");
}

#[tokio::test]
async fn tempfail_is_transient_with_the_reply() {
    let sink = SmtpSink::start().unwrap();
    let composed = compose(&outgoing("tempfail@example.org"), None, SIGNED_AT).unwrap();
    let failure = client(&sink.settings()).send(&composed).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Transient, "{failure}");
    assert_eq!(failure.code, Some(451));
    assert_eq!(failure.message, "4.3.0 Try again later");
    assert_eq!(failure.to_string(), "transient: 451 4.3.0 Try again later");
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn reject_is_permanent_with_the_reply() {
    let sink = SmtpSink::start().unwrap();
    let composed = compose(&outgoing("reject-me@example.org"), None, SIGNED_AT).unwrap();
    let failure = client(&sink.settings()).send(&composed).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Permanent, "{failure}");
    assert_eq!(failure.code, Some(550));
    assert_eq!(failure.message, "5.1.1 No such user");
    assert!(failure.is_permanent());
}

#[tokio::test]
async fn tempfail_once_is_accepted_on_retry_through_the_same_client() {
    let sink = SmtpSink::start().unwrap();
    let smtp = client(&sink.settings());
    let composed = compose(&outgoing("tempfail-once@example.org"), None, SIGNED_AT).unwrap();
    let failure = smtp.send(&composed).await.unwrap_err();
    assert_eq!((failure.kind, failure.code), (FailureKind::Transient, Some(451)));
    smtp.send(&composed).await.unwrap();
    let received = sink.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_tos, ["tempfail-once@example.org"]);
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let settings = SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port: closed,
        security: herald_email::smtp::Security::None,
        ..SmtpSettings::default()
    };
    let smtp = client(&settings);
    let failure = smtp.send(&compose(&outgoing("ada@example.org"), None, SIGNED_AT).unwrap()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Transient, "{failure}");
    assert_eq!(failure.code, None);
    assert!(failure.message.to_lowercase().contains("refused"), "{failure}");
    assert_eq!(smtp.test_connection().await.unwrap_err().kind, FailureKind::Transient);
}

#[tokio::test]
async fn a_relay_that_stops_answering_times_out_and_the_client_recovers() {
    let sink = SmtpSink::start().unwrap();
    let smtp = client(&SmtpSettings { timeout: Duration::from_secs(1), pool_size: 1, ..sink.settings() });
    let started = Instant::now();
    let failure = smtp.send(&compose(&outgoing("slow3@example.org"), None, SIGNED_AT).unwrap()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Transient, "{failure}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // The abandoned connection is closed, not reused (aiosmtpd then drops the slow
    // transaction): the next message goes through alone and intact.
    let reply = smtp.send(&compose(&outgoing("ada@example.org"), None, SIGNED_AT).unwrap()).await.unwrap();
    assert_eq!(reply.code, 250);
    let received = sink.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_tos, ["ada@example.org"]);
    assert!(received[0].data.starts_with(b"Message-ID: <msg_0192f3a8b7c64d2e@mail.example.com>\r\n"));
}

#[tokio::test]
async fn auth_succeeds_and_a_wrong_password_is_permanent() {
    let sink = SmtpSink::start_with(SinkOptions { auth: Some(("herald".to_owned(), "s3cret".to_owned())), tls: None })
        .unwrap();
    let composed = compose(&outgoing("ada@example.org"), None, SIGNED_AT).unwrap();

    let good = client(&SmtpSettings {
        username: Some("herald".to_owned()),
        password: Some("s3cret".to_owned()),
        ..sink.settings()
    });
    good.test_connection().await.unwrap();
    assert_eq!(good.send(&composed).await.unwrap().code, 250);

    let wrong = client(&SmtpSettings {
        username: Some("herald".to_owned()),
        password: Some("guess".to_owned()),
        ..sink.settings()
    });
    let failure = wrong.send(&composed).await.unwrap_err();
    assert_eq!((failure.kind, failure.code), (FailureKind::Permanent, Some(535)), "{failure}");
    assert!(failure.message.contains("Authentication"), "{failure}");

    let anonymous = client(&sink.settings());
    let failure = anonymous.send(&composed).await.unwrap_err();
    assert_eq!((failure.kind, failure.code), (FailureKind::Permanent, Some(530)), "{failure}");

    assert_eq!(sink.wait_for(1, WAIT).await.len(), 1);
}

async fn tls_delivers_and_checks_the_certificate(tls: SinkTls) {
    let sink =
        SmtpSink::start_with(SinkOptions { auth: Some(("herald".to_owned(), "s3cret".to_owned())), tls: Some(tls) })
            .unwrap();
    let settings =
        SmtpSettings { username: Some("herald".to_owned()), password: Some("s3cret".to_owned()), ..sink.settings() };
    let smtp = client(&settings);
    let composed = compose(&outgoing("ada@example.org"), None, SIGNED_AT).unwrap();
    for _ in 0..3 {
        assert_eq!(smtp.send(&composed).await.unwrap().code, 250);
    }
    let received = sink.wait_for(3, WAIT).await;
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.data == received[0].data));

    // The sink's certificate is self-signed: refused unless told otherwise, and that is a
    // TLS failure, so transient.
    let strict = client(&SmtpSettings { accept_invalid_certs: false, ..settings });
    let failure = strict.send(&composed).await.unwrap_err();
    assert_eq!((failure.kind, failure.code), (FailureKind::Transient, None), "{failure}");
}

#[tokio::test]
async fn starttls_delivers_and_checks_the_certificate() {
    tls_delivers_and_checks_the_certificate(SinkTls::StartTls).await;
}

#[tokio::test]
async fn implicit_tls_delivers_and_checks_the_certificate() {
    tls_delivers_and_checks_the_certificate(SinkTls::Implicit).await;
}

#[tokio::test]
async fn starttls_required_but_not_offered_is_permanent() {
    let sink = SmtpSink::start().unwrap();
    let smtp = client(&SmtpSettings {
        security: herald_email::smtp::Security::StartTls,
        accept_invalid_certs: true,
        ..sink.settings()
    });
    let failure = smtp.send(&compose(&outgoing("ada@example.org"), None, SIGNED_AT).unwrap()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Permanent, "{failure}");
    assert!(failure.message.contains("STARTTLS"), "{failure}");
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn many_concurrent_sends_share_the_pool() {
    const N: usize = 400;
    let sink = SmtpSink::start().unwrap();
    let smtp = client(&SmtpSettings { pool_size: 8, ..sink.settings() });
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let smtp = smtp.clone();
        tasks.spawn(async move {
            let mut msg = outgoing(&format!("user{i}@example.org"));
            msg.message_id = format!("msg_{i}@mail.example.com");
            msg.text = format!("Hello user {i}");
            smtp.send(&compose(&msg, None, SIGNED_AT).unwrap()).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap().code, 250);
    }
    let received = sink.wait_for(N, WAIT).await;
    let elapsed = started.elapsed();
    assert_eq!(received.len(), N);
    eprintln!("{N} messages through the sink in {elapsed:?}: {:.0} messages/s", N as f64 / elapsed.as_secs_f64());
    let mut recipients: Vec<_> = received.iter().map(|r| r.rcpt_tos[0].clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), N, "every message arrives exactly once");
}
