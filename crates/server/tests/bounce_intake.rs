//! Bounces and complaints received by Herald's own mail listener, on both backends: a campaign
//! message goes out through a real SMTP server (Python's aiosmtpd) with its per-message return
//! path, then delivery status notifications and feedback reports (the samples beside
//! `herald_email::report`, addressed to that return path) are sent to the listener with
//! Python's smtplib, a real SMTP client.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Backend, TestApp, json, spawn_app_with};
use herald_email::testing::dns::DnsServer;
use herald_email::testing::smtp::{Received, SmtpSink};
use herald_server::delivery::email::EmailSettings;
use herald_server::delivery::email::bounces::listener::{self, ListenerLimits};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

on_both_backends!(
    reports_to_the_return_path_bounce_and_complain,
    the_listener_refuses_what_is_not_a_report_for_a_return_path,
);

const DOMAIN: &str = "mail.acme.test";

struct World {
    app: TestApp,
    _dns: DnsServer,
    sink: SmtpSink,
    source: String,
    /// The listener's port.
    port: u16,
    _stop: tokio_util::sync::DropGuard,
}

async fn world(backend: Backend, limits: ListenerLimits) -> World {
    let dns = DnsServer::start().await.expect("dns server");
    let sink = SmtpSink::start().expect("smtp sink");
    let app =
        spawn_app_with(backend, EmailSettings { dns_resolver: Some(dns.addr()), ..EmailSettings::default() }).await;
    let transport = json!({"host": "127.0.0.1", "port": sink.port(), "security": "none"});
    let (status, body) =
        json(app.request(Method::PUT, "/api/v1/transport").json(&transport).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = json(
        app.post("/api/v1/domains", &json!({"name": DOMAIN, "return_path_target": "bounce-host.herald.test"})).await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for record in body["records"].as_array().unwrap() {
        let (name, value) = (record["name"].as_str().unwrap(), record["value"].as_str().unwrap());
        match record["type"].as_str() {
            Some("CNAME") => dns.set_cname(name, value),
            _ => dns.set_txt(name, &[value]),
        }
    }
    let (status, verified) =
        json(app.post(&format!("/api/v1/domains/{}/verify", body["id"].as_str().unwrap()), &json!({})).await).await;
    assert_eq!((status, verified["status"].as_str()), (StatusCode::OK, Some("verified")), "{verified}");
    let (status, body) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let source = body["url"].as_str().unwrap().to_owned();
    let document = json!({
        "name": "Welcome",
        "trigger": {"type": "event", "event": "signed_up"},
        "steps": [{"id": "welcome", "type": "email", "from": "news@mail.acme.test", "subject": "Welcome",
                   "html": "<p>Hello</p>"}]
    });
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    let (status, _) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);

    let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = smtp.local_addr().unwrap().port();
    let stop = CancellationToken::new();
    tokio::spawn(listener::serve(Arc::clone(&app.app.state.email.email), smtp, limits, stop.clone()));
    World { app, _dns: dns, sink, source, port, _stop: stop.drop_guard() }
}

/// Sends one campaign message to `to`; returns what the relay received and the message record.
async fn send_one(world: &World, to: &str) -> (Received, Value) {
    let before = world.sink.count();
    let response =
        world.app.client.post(&world.source).json(&json!({"email": to, "event": "signed_up"})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    world.app.run_jobs().await;
    let received = world.sink.wait_for(before + 1, Duration::from_secs(10)).await.pop().unwrap();
    (received, message(&world.app, to).await)
}

async fn message(app: &TestApp, to: &str) -> Value {
    let (_, body) = json(app.get("/api/v1/messages").await).await;
    body["data"].as_array().unwrap().iter().find(|m| m["to"] == to).unwrap().clone()
}

/// A sample report addressed to `return_path` about the message `internet_id` with `token`.
fn sample(name: &str, return_path: &str, token: &str, internet_id: &str) -> String {
    let path = format!("{}/../email/src/report/samples/{name}.eml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .replace("bounces+sampletoken@bounces.mail.acme.test", return_path)
        .replace("X-Herald-Message: sampletoken", &format!("X-Herald-Message: {token}"))
        .replace("msg_sample@mail.acme.test", internet_id)
}

/// Talks to the listener with Python's smtplib: `MAIL FROM:<>`, each recipient, then the
/// message when any was accepted. Returns the reply codes: each `RCPT`'s, then `DATA`'s.
fn smtp_send(port: u16, recipients: &[&str], message: &str) -> Vec<u16> {
    let script = "import json, smtplib, sys\n\
                  port, recipients, message = json.loads(sys.argv[1])\n\
                  s = smtplib.SMTP('127.0.0.1', port, timeout=20)\n\
                  s.ehlo('mx.example.org')\n\
                  codes = []\n\
                  s.mail('')\n\
                  for r in recipients:\n\
                  \x20   codes.append(s.rcpt(r)[0])\n\
                  if any(c == 250 for c in codes):\n\
                  \x20   try:\n\
                  \x20       codes.append(s.data(message.encode())[0])\n\
                  \x20   except smtplib.SMTPDataError as e:\n\
                  \x20       codes.append(e.smtp_code)\n\
                  try:\n\
                  \x20   s.quit()\n\
                  except smtplib.SMTPServerDisconnected:\n\
                  \x20   pass\n\
                  print(json.dumps(codes))";
    let output = Command::new(herald_email::testing::python())
        .args(["-c", script, &json!([port, recipients, message]).to_string()])
        .output()
        .expect("python");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn smtp(world: &World, recipients: &[&str], message: String) -> Vec<u16> {
    let port = world.port;
    let recipients: Vec<String> = recipients.iter().map(|r| (*r).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = recipients.iter().map(String::as_str).collect();
        smtp_send(port, &refs, &message)
    })
    .await
    .unwrap()
}

async fn suppression(app: &TestApp, email: &str) -> Option<Value> {
    let (_, list) = json(app.get("/api/v1/suppressions").await).await;
    list["data"].as_array().unwrap().iter().find(|s| s["email"] == email).cloned()
}

/// The return path and the `X-Herald-Message` token a message left with.
fn return_path(received: &Received) -> (String, String) {
    let text = String::from_utf8_lossy(&received.data);
    let token = text.lines().find_map(|l| l.strip_prefix("X-Herald-Message: ")).expect("the header").trim().to_owned();
    (received.mail_from.clone(), token)
}

async fn reports_to_the_return_path_bounce_and_complain(backend: Backend) {
    let world = world(backend, ListenerLimits::default()).await;
    let app = &world.app;

    // The envelope sender is the message's own return path, and the header carries its token.
    let (received, ada) = send_one(&world, "ada@example.org").await;
    let (verp, token) = return_path(&received);
    assert_eq!(verp, format!("bounces+{token}@bounces.{DOMAIN}"));
    assert_eq!(verp.split_once('@').unwrap().0.len(), 64, "{verp}");
    let internet_id = ada["internet_message_id"].as_str().unwrap();

    // A delay notice is taken and changes nothing.
    assert_eq!(smtp(&world, &[&verp], sample("dsn-delayed", &verp, &token, internet_id)).await, [250, 250]);
    assert_eq!(message(app, "ada@example.org").await["status"], "sent");

    // A hard bounce: bounced, and the address suppressed. Sent again: a repeat, no change.
    let dsn = sample("dsn-hard", &verp, &token, internet_id);
    assert_eq!(smtp(&world, &[&verp.to_ascii_uppercase()], dsn.clone()).await, [250, 250], "any case");
    let bounced = message(app, "ada@example.org").await;
    assert_eq!(bounced["status"], "bounced", "{bounced}");
    assert_eq!(suppression(app, "ada@example.org").await.unwrap()["reason"], "hard_bounce");
    assert_eq!(smtp(&world, &[&verp], dsn).await, [250, 250]);
    assert_eq!(message(app, "ada@example.org").await, bounced);

    // A complaint (ARF) suppresses at once.
    let (received, grace) = send_one(&world, "grace@example.net").await;
    let (verp, token) = return_path(&received);
    let arf = sample("arf-abuse", &verp, &token, grace["internet_message_id"].as_str().unwrap());
    assert_eq!(smtp(&world, &[&verp], arf).await, [250, 250]);
    assert_eq!(message(app, "grace@example.net").await["status"], "complained");
    assert_eq!(suppression(app, "grace@example.net").await.unwrap()["reason"], "complaint");

    // A provider's plain-text bounce works too.
    let (received, frank) = send_one(&world, "frank@yahoo.example").await;
    let (verp, token) = return_path(&received);
    let plain = sample("yahoo-failure-notice", &verp, &token, frank["internet_message_id"].as_str().unwrap());
    assert_eq!(smtp(&world, &[&verp], plain).await, [250, 250]);
    assert_eq!(message(app, "frank@yahoo.example").await["status"], "bounced");
    world.app.stop().await;
}

async fn the_listener_refuses_what_is_not_a_report_for_a_return_path(backend: Backend) {
    let limits = ListenerLimits { max_message: 16 * 1024, ..ListenerLimits::default() };
    let world = world(backend, limits).await;
    let app = &world.app;
    let (received, ada) = send_one(&world, "ada@example.org").await;
    let (verp, token) = return_path(&received);
    let internet_id = ada["internet_message_id"].as_str().unwrap();
    let dsn = sample("dsn-hard", &verp, &token, internet_id);

    // Other recipients: refused, whatever the domain; no relaying.
    let (local, domain) = verp.split_once('@').unwrap();
    let mut forged = local.to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    let others = [
        format!("postmaster@{domain}"),
        "someone@example.com".to_owned(),
        format!("{forged}@{domain}"),
        format!("bounces+{}@{domain}", "a".repeat(56)),
    ];
    for other in &others {
        assert_eq!(smtp(&world, &[other], dsn.clone()).await, [550], "{other}");
    }
    // Not a report (an out-of-office reply, garbage): refused, nothing changes.
    let ooo = sample("out-of-office", &verp, &token, internet_id);
    assert_eq!(smtp(&world, &[&verp], ooo).await, [250, 550]);
    assert_eq!(smtp(&world, &[&verp], "\u{0}\u{1}garbage\r\n\r\n--x--".to_owned()).await, [250, 550]);
    // Too big: refused while reading.
    let oversized = format!("{dsn}\n{}", "x".repeat(76).repeat(300).as_str());
    assert_eq!(smtp(&world, &[&verp], oversized).await, [250, 552]);
    // Too many recipients in one message: the extra ones wait.
    let many: Vec<&str> = std::iter::repeat_n(verp.as_str(), 11).collect();
    let codes = smtp(&world, &many, sample("dsn-delayed", &verp, &token, internet_id)).await;
    assert_eq!((codes[..10].iter().all(|c| *c == 250), codes[10], codes[11]), (true, 452, 250), "{codes:?}");
    assert_eq!(message(app, "ada@example.org").await["status"], "sent");
    assert!(suppression(app, "ada@example.org").await.is_none());
    world.app.stop().await;
}
