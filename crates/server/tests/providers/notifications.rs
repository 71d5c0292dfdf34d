//! Providers' notifications on `/email-events/{provider}/{token}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use herald_email::providers::sns::SnsMessage;
use herald_server::clock::Clock;
use herald_webhook::sign::{SigningKey, sign};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{World, start, start_with};
use crate::common::{Backend, expect_error, json};

const RESEND_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

impl World {
    /// The notification URL the transport shows.
    async fn events_url(&self) -> String {
        let (_, transport) = json(self.app.get("/api/v1/transport").await).await;
        transport["events_url"].as_str().unwrap().to_owned()
    }

    /// Ada, Bob and Cy signed up and were sent a message each.
    async fn three_sent(&self) -> [Value; 3] {
        let mut messages = Vec::new();
        for email in ["ada@example.com", "bob@example.com", "cy@example.com"] {
            self.sign_up(email).await;
            let message = self.message(email).await;
            assert_eq!(message["status"], "sent", "{message}");
            messages.push(message);
        }
        messages.try_into().unwrap()
    }

    async fn status(&self, email: &str) -> String {
        self.message(email).await["status"].as_str().unwrap().to_owned()
    }

    /// The suppression reason of `email`, if it is suppressed.
    async fn suppressed(&self, email: &str) -> Option<String> {
        let (_, body) = json(self.app.get("/api/v1/suppressions").await).await;
        let found = body["data"].as_array().unwrap().iter().find(|s| s["email"] == email);
        found.map(|s| s["reason"].as_str().unwrap().to_owned())
    }

    /// How many `email_*` events of every kind the workspace has.
    async fn email_events(&self) -> usize {
        let mut total = 0;
        for name in ["email_delivered", "email_bounced", "email_complained"] {
            let (_, body) = json(self.app.get(&format!("/api/v1/events?name={name}")).await).await;
            total += body["data"].as_array().unwrap().len();
        }
        total
    }

    /// Everything the notifications can change, to check that a refused one changed nothing.
    async fn snapshot(&self) -> (Vec<String>, usize, usize) {
        let mut statuses = Vec::new();
        for email in ["ada@example.com", "bob@example.com", "cy@example.com"] {
            statuses.push(self.status(email).await);
        }
        let (_, body) = json(self.app.get("/api/v1/suppressions").await).await;
        (statuses, body["data"].as_array().unwrap().len(), self.email_events().await)
    }

    fn unix_now(&self) -> i64 {
        self.app.clock.now().unix_millis() / 1000
    }

    fn rfc3339(&self, seconds_ago: i64) -> String {
        let at = self.app.clock.now().to_offset_date_time() - time::Duration::seconds(seconds_ago);
        at.format(&time::format_description::well_known::Rfc3339).unwrap()
    }
}

/// The URL with its token's last character changed.
fn wrong_token(url: &str) -> String {
    let last = url.chars().last().unwrap();
    format!("{}{}", &url[..url.len() - 1], if last == 'A' { 'B' } else { 'A' })
}

async fn posted(response: reqwest::Response) -> String {
    let (status, body) = json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["status"].as_str().unwrap().to_owned()
}

pub async fn postmark_notifications_need_basic_auth(backend: Backend) {
    let provider = json!({"kind": "postmark", "api_key": "pm-token", "webhook_secret": "pm-hook-password"});
    let (world, _) = start(backend, provider).await;
    let [ada, bob, _] = world.three_sent().await;
    let url = world.events_url().await;
    let post = |url: &str, body: &Value, password: Option<&str>| {
        let request = world.app.client.post(url).json(body);
        let request = match password {
            Some(password) => request.basic_auth("herald", Some(password)),
            None => request,
        };
        request.send()
    };
    // Shaped as Postmark's bounce, spam complaint and delivery webhooks.
    let bounce = json!({"RecordType": "Bounce", "MessageStream": "outbound", "ID": 4323372036854775807_u64,
        "Type": "HardBounce", "TypeCode": 1, "Name": "Hard bounce", "Tag": "", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"herald_message": ada["id"]}, "ServerID": 23, "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.", "Email": "ada@example.com",
        "From": "news@mail.acme.test", "BouncedAt": "2025-12-31T23:59:00Z", "DumpAvailable": false, "Inactive": true,
        "CanActivate": true, "Subject": "Hello Ada", "Content": ""});
    let before = world.snapshot().await;

    // Refused: no auth, a wrong password, a wrong token.
    expect_error(post(&url, &bounce, None).await.unwrap(), StatusCode::UNAUTHORIZED, "unauthorized").await;
    expect_error(post(&url, &bounce, Some("guess")).await.unwrap(), StatusCode::UNAUTHORIZED, "unauthorized").await;
    let wrong = wrong_token(&url);
    expect_error(
        post(&wrong, &bounce, Some("pm-hook-password")).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let resend_url = url.replace("/postmark/", "/resend/");
    expect_error(
        post(&resend_url, &bounce, Some("pm-hook-password")).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let huge = json!({"RecordType": "Bounce", "Details": "x".repeat(600 * 1024)});
    expect_error(
        post(&url, &huge, Some("pm-hook-password")).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert_eq!(world.snapshot().await, before, "refused notifications change nothing");

    // The bounce: the message bounced, the address suppressed, one event.
    assert_eq!(posted(post(&url, &bounce, Some("pm-hook-password")).await.unwrap()).await, "applied");
    assert_eq!(world.status("ada@example.com").await, "bounced");
    assert_eq!(world.suppressed("ada@example.com").await.as_deref(), Some("hard_bounce"));
    let message = world.message("ada@example.com").await;
    assert_eq!(message["bounce"], "hard", "{message}");
    let after = world.snapshot().await;
    assert_eq!(after.2, 1);
    // A replay changes nothing.
    assert_eq!(posted(post(&url, &bounce, Some("pm-hook-password")).await.unwrap()).await, "duplicate");
    assert_eq!(world.snapshot().await, after);

    let complaint = json!({"RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 42, "Type": "SpamComplaint",
        "TypeCode": 512, "Name": "Spam complaint", "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
        "Metadata": {"herald_message": bob["id"]}, "Email": "bob@example.com", "BouncedAt": "2026-01-01T00:00:00Z"});
    assert_eq!(posted(post(&url, &complaint, Some("pm-hook-password")).await.unwrap()).await, "applied");
    assert_eq!(world.status("bob@example.com").await, "complained");
    assert_eq!(world.suppressed("bob@example.com").await.as_deref(), Some("complaint"));

    let cy = world.message("cy@example.com").await;
    let delivery = json!({"RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound", "MessageID": "c2fb",
        "Recipient": "cy@example.com", "Tag": "", "DeliveredAt": "2026-01-01T00:00:01Z", "Details": "Test delivery webhook details",
        "Metadata": {"herald_message": cy["id"]}});
    assert_eq!(posted(post(&url, &delivery, Some("pm-hook-password")).await.unwrap()).await, "applied");
    assert_eq!(world.status("cy@example.com").await, "delivered");
    assert_eq!(world.suppressed("cy@example.com").await, None);

    // A message of no one's: answered 200 (providers retry anything else), nothing changed.
    let before = world.snapshot().await;
    let stray = json!({"RecordType": "Bounce", "ID": 7, "Type": "HardBounce", "MessageID": "x",
        "Metadata": {"herald_message": "msg_00000000000000000000000000"}});
    assert_eq!(posted(post(&url, &stray, Some("pm-hook-password")).await.unwrap()).await, "unknown_message");
    assert_eq!(world.snapshot().await, before);
    world.app.stop().await;
}

pub async fn resend_notifications_need_a_standard_webhooks_signature(backend: Backend) {
    let provider = json!({"kind": "resend", "api_key": "re_key", "webhook_secret": RESEND_SECRET});
    let (world, _) = start(backend, provider).await;
    let [ada, bob, cy] = world.three_sent().await;
    let url = world.events_url().await;
    let key = SigningKey::parse_standard(RESEND_SECRET).unwrap();
    let post = |url: &str, id: &str, timestamp: i64, body: &Value, key: &SigningKey| {
        let bytes = serde_json::to_vec(body).unwrap();
        let headers = sign(std::slice::from_ref(key), id, timestamp, &bytes);
        world
            .app
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("svix-id", id)
            .header("svix-timestamp", timestamp.to_string())
            .header("svix-signature", headers.webhook_signature)
            .body(bytes)
            .send()
    };
    let now = world.unix_now();
    // Shaped as Resend's email.bounced event.
    let bounced = json!({"type": "email.bounced", "created_at": world.rfc3339(5), "data": {
        "email_id": "56761188-7520-42d8-8898-ff6fc54ce618", "from": "Acme <news@mail.acme.test>", "to": ["ada@example.com"],
        "subject": "Hello Ada", "created_at": world.rfc3339(60),
        "bounce": {"message": "The recipient's email address is on the suppression list because it has a history of producing hard bounces.",
                   "subType": "Suppressed", "type": "Permanent"},
        "tags": {"herald_message": ada["id"]}}});
    let before = world.snapshot().await;

    // Refused: another key, no signature, a signature an hour old, a wrong token.
    let other = SigningKey::parse_standard("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    expect_error(post(&url, "msg_1", now, &bounced, &other).await.unwrap(), StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    let unsigned = world.app.client.post(&url).json(&bounced).send().await.unwrap();
    expect_error(unsigned, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let old = post(&url, "msg_1", now - 3600, &bounced, &key).await.unwrap();
    expect_error(old, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let wrong = post(&wrong_token(&url), "msg_1", now, &bounced, &key).await.unwrap();
    expect_error(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let huge = json!({"type": "email.bounced", "data": {"padding": "x".repeat(600 * 1024)}});
    let huge = post(&url, "msg_2", now, &huge, &key).await.unwrap();
    expect_error(huge, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(world.snapshot().await, before, "refused notifications change nothing");

    assert_eq!(posted(post(&url, "msg_1", now, &bounced, &key).await.unwrap()).await, "applied");
    assert_eq!(world.status("ada@example.com").await, "bounced");
    assert_eq!(world.suppressed("ada@example.com").await.as_deref(), Some("hard_bounce"));
    let after = world.snapshot().await;
    assert_eq!(after.2, 1);
    // The same event again (a retry, re-signed): nothing changes.
    assert_eq!(posted(post(&url, "msg_1", now + 10, &bounced, &key).await.unwrap()).await, "duplicate");
    assert_eq!(world.snapshot().await, after);

    // A complaint naming its message by our Message-ID only.
    let complained = json!({"type": "email.complained", "created_at": world.rfc3339(1), "data": {
        "email_id": "5f2a", "to": ["bob@example.com"], "subject": "Hello Ada",
        "headers": [{"name": "Message-ID", "value": format!("<{}>", bob["internet_message_id"].as_str().unwrap())}]}});
    assert_eq!(posted(post(&url, "msg_3", now, &complained, &key).await.unwrap()).await, "applied");
    assert_eq!(world.status("bob@example.com").await, "complained");
    assert_eq!(world.suppressed("bob@example.com").await.as_deref(), Some("complaint"));

    let delivered = json!({"type": "email.delivered", "created_at": world.rfc3339(1), "data": {
        "email_id": "77aa", "to": ["cy@example.com"], "tags": [{"name": "herald_message", "value": cy["id"]}]}});
    assert_eq!(posted(post(&url, "msg_4", now, &delivered, &key).await.unwrap()).await, "applied");
    assert_eq!(world.status("cy@example.com").await, "delivered");
    world.app.stop().await;
}

/// An RSA key and a self-signed certificate standing in for SNS's, made by Python's
/// `cryptography` (`$HERALD_TEST_PYTHON`, else `python3`), which also signs.
struct SnsSigner {
    dir: tempfile::TempDir,
    cert: String,
}

const PYTHON_CERT: &str = r#"
import sys, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test")])
start = datetime.datetime(2024, 1, 1)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256()))
open(sys.argv[1] + "/cert.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(sys.argv[1] + "/key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
"#;

const PYTHON_SIGN: &str = r#"
import sys, base64
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
print(base64.b64encode(key.sign(sys.stdin.buffer.read(), padding.PKCS1v15(), hashes.SHA256())).decode())
"#;

fn python() -> std::process::Command {
    std::process::Command::new(std::env::var("HERALD_TEST_PYTHON").unwrap_or_else(|_| "python3".into()))
}

impl SnsSigner {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = python().args(["-c", PYTHON_CERT, dir.path().to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let cert = std::fs::read_to_string(dir.path().join("cert.pem")).unwrap();
        SnsSigner { dir, cert }
    }

    /// `message` with its SignatureVersion 2 signature (SHA256withRSA of the canonical string).
    fn sign(&self, mut message: Value) -> Value {
        use std::io::Write;
        message["SignatureVersion"] = "2".into();
        message["Signature"] = "".into();
        let canonical = serde_json::from_value::<SnsMessage>(message.clone()).unwrap().canonical().unwrap();
        let key = self.dir.path().join("key.pem");
        let mut child = python()
            .args(["-c", PYTHON_SIGN, key.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(canonical.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        message["Signature"] = String::from_utf8(out.stdout).unwrap().trim().into();
        message
    }
}

/// Serves the certificate at `/sns/cert.pem` and counts GETs of `/sns/confirm`.
async fn certificate_server(cert: String) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (fetched, confirmed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (f, c) = (fetched.clone(), confirmed.clone());
    let app = Router::new()
        .route(
            "/sns/cert.pem",
            get(move || {
                f.fetch_add(1, Ordering::SeqCst);
                let cert = cert.clone();
                async move { cert }
            }),
        )
        .route(
            "/sns/confirm",
            get(move || {
                c.fetch_add(1, Ordering::SeqCst);
                async { "<ConfirmSubscriptionResponse/>" }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fetched, confirmed)
}

pub async fn ses_notifications_need_a_signature_by_an_sns_certificate(backend: Backend) {
    let signer = SnsSigner::new();
    let (server, fetched, confirmed) = certificate_server(signer.cert.clone()).await;
    let provider = json!({"kind": "ses", "region": "eu-west-1", "access_key_id": "AKID", "api_key": "secret"});
    let (world, _) = start_with(backend, provider, vec![format!("{server}/sns/")]).await;
    let [ada, bob, cy] = world.three_sent().await;
    let url = world.events_url().await;
    let topic = "arn:aws:sns:eu-west-1:123456789012:herald-events";
    let cert_url = format!("{server}/sns/cert.pem");
    let notification = |id: &str, event: Value| {
        json!({"Type": "Notification", "MessageId": id, "TopicArn": topic, "Message": event.to_string(),
               "Timestamp": world.rfc3339(2), "SigningCertURL": cert_url,
               "UnsubscribeURL": format!("{server}/sns/unsubscribe")})
    };
    let post = |url: &str, body: &Value| {
        world.app.client.post(url).header("content-type", "text/plain; charset=UTF-8").body(body.to_string()).send()
    };

    // The subscription is confirmed once its confirmation verifies.
    let confirmation = signer.sign(json!({"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c",
        "Token": "2336412f37fb687f5d51e6e2425f004a", "TopicArn": topic,
        "Message": format!("You have chosen to subscribe to the topic {topic}."),
        "SubscribeURL": format!("{server}/sns/confirm?Action=ConfirmSubscription&Token=2336412f37fb"),
        "Timestamp": world.rfc3339(1), "SigningCertURL": cert_url}));
    assert_eq!(posted(post(&url, &confirmation).await.unwrap()).await, "ignored");
    assert_eq!(confirmed.load(Ordering::SeqCst), 1);

    // Shaped as an SES configuration set's Bounce event.
    let mail = |message: &Value, ses_id: &str, tagged: bool| {
        let mut mail = json!({"timestamp": world.rfc3339(60), "source": "news@mail.acme.test", "messageId": ses_id,
            "sendingAccountId": "123456789012", "destination": [message["to"]], "headersTruncated": false,
            "commonHeaders": {"from": ["Acme <news@mail.acme.test>"], "to": [message["to"]],
                              "messageId": format!("<{}>", message["internet_message_id"].as_str().unwrap()), "subject": "Hello Ada"}});
        if tagged {
            mail["tags"] = json!({"ses:configuration-set": ["herald"], "herald_message": [message["id"]]});
        }
        mail
    };
    let bounce = signer.sign(notification("b1", json!({"eventType": "Bounce", "mail": mail(&ada, "ses-ada", true),
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "feedbackId": "0102-fb-1", "timestamp": world.rfc3339(3),
                   "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
                   "bouncedRecipients": [{"emailAddress": "ada@example.com", "action": "failed", "status": "5.1.1",
                                          "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}})));
    let before = world.snapshot().await;

    // Refused: a changed body, no signature, a certificate from elsewhere, an old message, a wrong token, too big.
    let mut forged = bounce.clone();
    forged["Message"] = forged["Message"].as_str().unwrap().replace("Permanent", "Transient").into();
    expect_error(post(&url, &forged).await.unwrap(), StatusCode::UNAUTHORIZED, "unauthorized").await;
    let mut unsigned = bounce.clone();
    unsigned.as_object_mut().unwrap().remove("Signature");
    expect_error(post(&url, &unsigned).await.unwrap(), StatusCode::UNAUTHORIZED, "unauthorized").await;
    let fetches = fetched.load(Ordering::SeqCst);
    let mut elsewhere = notification("b1", json!({"eventType": "Bounce"}));
    elsewhere["SigningCertURL"] = cert_url.replace("127.0.0.1", "localhost").into();
    let elsewhere = signer.sign(elsewhere);
    expect_error(post(&url, &elsewhere).await.unwrap(), StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(fetched.load(Ordering::SeqCst), fetches, "a certificate from a host not allowed is not fetched");
    let mut old = bounce.clone();
    old["Timestamp"] = world.rfc3339(2 * 3600).into();
    let old = signer.sign(old);
    expect_error(post(&url, &old).await.unwrap(), StatusCode::UNAUTHORIZED, "unauthorized").await;
    expect_error(post(&wrong_token(&url), &bounce).await.unwrap(), StatusCode::UNAUTHORIZED, "unauthorized").await;
    let huge = json!({"Type": "Notification", "Message": "x".repeat(600 * 1024)});
    expect_error(post(&url, &huge).await.unwrap(), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(world.snapshot().await, before, "refused notifications change nothing");

    assert_eq!(posted(post(&url, &bounce).await.unwrap()).await, "applied");
    assert_eq!(world.status("ada@example.com").await, "bounced");
    assert_eq!(world.suppressed("ada@example.com").await.as_deref(), Some("hard_bounce"));
    let after = world.snapshot().await;
    assert_eq!(after.2, 1);
    // SNS delivers a message again when unsure it arrived: nothing changes.
    assert_eq!(posted(post(&url, &bounce).await.unwrap()).await, "duplicate");
    assert_eq!(world.snapshot().await, after);
    assert_eq!(fetched.load(Ordering::SeqCst), 1, "the certificate is fetched once and kept");

    // A complaint naming its message by our Message-ID only.
    let complaint = signer.sign(notification(
        "c1",
        json!({"eventType": "Complaint", "mail": mail(&bob, "ses-bob", false),
        "complaint": {"feedbackId": "0102-fb-2", "complaintSubType": null, "complaintFeedbackType": "abuse",
                      "timestamp": world.rfc3339(3), "complainedRecipients": [{"emailAddress": "bob@example.com"}]}}),
    ));
    assert_eq!(posted(post(&url, &complaint).await.unwrap()).await, "applied");
    assert_eq!(world.status("bob@example.com").await, "complained");
    assert_eq!(world.suppressed("bob@example.com").await.as_deref(), Some("complaint"));

    let delivery = signer.sign(notification(
        "d1",
        json!({"eventType": "Delivery", "mail": mail(&cy, "ses-cy", true),
        "delivery": {"timestamp": world.rfc3339(3), "processingTimeMillis": 546, "recipients": ["cy@example.com"],
                     "smtpResponse": "250 2.6.0 Message received", "reportingMTA": "a8-70.smtp-out.amazonses.com"}}),
    ));
    assert_eq!(posted(post(&url, &delivery).await.unwrap()).await, "applied");
    assert_eq!(world.status("cy@example.com").await, "delivered");
    world.app.stop().await;
}
