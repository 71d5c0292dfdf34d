//! Email delivery end to end, on both backends: a real SMTP server (Python's aiosmtpd) on
//! loopback receives the messages, a real DNS server (hickory, in process) serves the sending
//! domain's records, and Python's dkimpy checks the DKIM signatures: never Herald's own code.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::mail::decoded_headers;
use common::{Backend, TestApp, expect_error, json, spawn_app_running, spawn_app_with};
use herald_email::testing::dns::DnsServer;
use herald_email::testing::smtp::{Received, SinkOptions, SmtpSink, verify_dkim};
use herald_server::app::config::WorkerSettings;
use herald_server::clock::Clock;
use herald_server::delivery::email::EmailSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    a_verified_domain_delivers_signed_mail_and_unsubscribe_works,
    relay_refusals_fail_or_retry,
    deferrals_end_as_soft_bounces_and_three_suppress_the_address,
    throttling_slows_the_domain_down_without_spending_attempts,
    domains_transport_and_suppressions_reject_bad_input,
    send_rates_hold_back_and_rechecks_warn,
    the_running_worker_takes_up_each_hop_without_waiting_for_its_poll,
);

const DOMAIN: &str = "mail.acme.test";

struct World {
    app: TestApp,
    dns: DnsServer,
    sink: SmtpSink,
    source: String,
}

async fn world(backend: Backend) -> World {
    world_with(backend, None).await
}

/// The world with its worker loop running in the background with `worker`'s settings, or
/// stepped by the test when `None`.
async fn world_with(backend: Backend, worker: Option<WorkerSettings>) -> World {
    let dns = DnsServer::start().await.expect("dns server");
    let auth = Some(("herald".to_owned(), "s3cret-pw".to_owned()));
    let sink = SmtpSink::start_with(SinkOptions { auth, ..SinkOptions::default() }).expect("smtp sink");
    let settings = EmailSettings { dns_resolver: Some(dns.addr()), ..EmailSettings::default() };
    let app = match worker {
        Some(worker) => spawn_app_running(backend, settings, worker).await,
        None => spawn_app_with(backend, settings).await,
    };
    let transport = json!({"host": "127.0.0.1", "port": sink.port(), "security": "none",
                           "username": "herald", "password": "s3cret-pw"});
    let (status, body) =
        json(app.request(Method::PUT, "/api/v1/transport").json(&transport).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["kind"].as_str(), body["password_set"].as_bool()), (Some("smtp"), Some(true)));
    assert!(!body.to_string().contains("s3cret-pw"), "the password is never returned: {body}");
    let (status, body) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let source = body["url"].as_str().unwrap().to_owned();
    World { app, dns, sink, source }
}

async fn send(world: &World, body: Value) {
    let response = world.app.client.post(&world.source).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn activate(app: &TestApp, document: Value) -> String {
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

async fn messages(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = json(app.get(&format!("/api/v1/messages{query}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut list = body["data"].as_array().unwrap().clone();
    list.reverse();
    list
}

/// Adds the domain; returns its id and records.
async fn add_domain(app: &TestApp) -> (String, Vec<Value>) {
    let (status, body) = json(app.post("/api/v1/domains", &json!({"name": DOMAIN})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending");
    assert!(!body.to_string().contains("PRIVATE"), "the private key never leaves: {body}");
    (body["id"].as_str().unwrap().to_owned(), body["records"].as_array().unwrap().clone())
}

fn record<'a>(records: &'a [Value], purpose: &str) -> &'a Value {
    records.iter().find(|r| r["purpose"] == purpose).unwrap_or_else(|| panic!("no {purpose} record in {records:?}"))
}

fn publish(dns: &DnsServer, records: &[Value]) {
    for r in records {
        dns.set_txt(r["name"].as_str().unwrap(), &[r["value"].as_str().unwrap()]);
    }
}

async fn verify(app: &TestApp, id: &str) -> Value {
    let (status, body) = json(app.post(&format!("/api/v1/domains/{id}/verify"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn to(received: &Received) -> &str {
    &received.rcpt_tos[0]
}

async fn a_verified_domain_delivers_signed_mail_and_unsubscribe_works(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let (domain, records) = add_domain(app).await;
    let campaign = activate(
        app,
        json!({
            "name": "Welcome",
            "trigger": {"type": "event", "event": "signed_up"},
            "steps": [
                {"id": "welcome", "type": "email", "from": "Zoë at Acme <news@mail.acme.test>",
                 "reply_to": "help@acme.test", "subject": "Grüße, {{ first_name }} 🎉",
                 "html": "<p>Hallo {{ first_name }}, schön dass du da bist!</p><p><a href=\"{{ unsubscribe_url }}\">Abmelden</a></p>"},
                {"type": "wait", "duration": "1d"},
                {"id": "day-1", "type": "email", "from": "news@mail.acme.test", "subject": "Day one",
                 "html": "<p>Still here, {{ first_name }}?</p>"},
            ]
        }),
    )
    .await;

    // Unverified: messages are held, events keep flowing and journeys keep moving.
    send(&world, json!({"email": "ada@example.com", "event": "signed_up", "data": {"first_name": "Ada"}})).await;
    send(&world, json!({"email": "bob@example.com", "event": "signed_up", "data": {"first_name": "Bob"}})).await;
    app.run_jobs().await;
    let held = messages(app, "").await;
    assert_eq!(held.len(), 2);
    for m in &held {
        assert_eq!((m["status"].as_str(), m["status_reason"].as_str()), (Some("held"), Some("domain_unverified")));
    }
    assert_eq!(world.sink.count(), 0);

    // Nothing published: every record missing. A wrong DKIM key: a mismatch naming what is there.
    let body = verify(app, &domain).await;
    assert_eq!((body["status"].as_str(), body["released"].as_u64()), (Some("failed"), Some(0)));
    assert!(body["checks"].as_array().unwrap().iter().all(|c| c["status"] == "missing"), "{body}");
    publish(&world.dns, &records);
    let dkim = record(&records, "dkim");
    let dkim_name = dkim["name"].as_str().unwrap();
    world.dns.set_txt(dkim_name, &["v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong"]);
    let body = verify(app, &domain).await;
    assert_eq!(body["status"], "failed");
    let check = body["checks"].as_array().unwrap().iter().find(|c| c["purpose"] == "dkim").unwrap().clone();
    assert_eq!(check["status"], "mismatch", "{check}");
    assert!(check["found"][0].as_str().unwrap().ends_with("wrong"), "{check}");
    assert_eq!(world.sink.count(), 0);

    // The right records: verified, and the held messages go out.
    world.dns.set_txt(dkim_name, &[dkim["value"].as_str().unwrap()]);
    let body = verify(app, &domain).await;
    assert_eq!((body["status"].as_str(), body["released"].as_u64()), (Some("verified"), Some(2)), "{body}");
    app.run_jobs().await;
    let received = world.sink.wait_for(2, Duration::from_secs(10)).await;
    let sent = messages(app, "").await;
    assert!(sent.iter().all(|m| m["status"] == "sent" && m["attempts"] == 1), "{sent:?}");
    let ada = received.iter().find(|r| to(r) == "ada@example.com").expect("ada's message");
    let ada_message = sent.iter().find(|m| m["to"] == "ada@example.com").unwrap();
    assert!(ada_message["reply"].as_str().unwrap().starts_with("250"), "{ada_message}");
    assert_eq!(ada.mail_from, "news@mail.acme.test");

    // DKIM verifies with an independent library, and fails once the body is changed.
    verify_dkim(&ada.data, dkim["value"].as_str().unwrap()).expect("dkimpy verifies");
    // Signed at the server's clock (here months away from the wall clock), not the wall clock.
    let signed_at = format!("t={};", app.clock.now().unix_millis() / 1000);
    assert!(String::from_utf8_lossy(&ada.data).contains(&signed_at), "{signed_at} missing in the DKIM-Signature");
    let mut tampered = ada.data.clone();
    let body = tampered.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let at = body + tampered[body..].iter().rposition(u8::is_ascii_alphanumeric).unwrap();
    tampered[at] = if tampered[at] == b'x' { b'y' } else { b'x' };
    assert!(verify_dkim(&tampered, dkim["value"].as_str().unwrap()).is_err(), "a changed body fails");
    let headers = decoded_headers(&ada.data);
    assert_eq!(headers["Subject"], "Grüße, Ada 🎉");
    assert_eq!(headers["From"], "Zoë at Acme <news@mail.acme.test>");
    assert_eq!(headers["Reply-To"], "help@acme.test");
    assert_eq!(headers["Message-ID"], format!("<{}>", ada_message["internet_message_id"].as_str().unwrap()));
    assert!(headers["Message-ID"].as_str().unwrap().ends_with("@mail.acme.test>"));
    assert!(headers["Date"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(headers["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click");
    assert_eq!(headers["parts"], json!(["multipart/alternative", "text/plain", "text/html"]));
    assert!(headers["html"].as_str().unwrap().contains("schön dass du da bist"), "{headers}");
    assert!(headers["text"].as_str().unwrap().contains("Hallo Ada"), "{headers}");
    let list_unsubscribe = headers["List-Unsubscribe"].as_str().unwrap();
    assert!(list_unsubscribe.contains("<mailto:news@mail.acme.test?subject=unsubscribe>"), "{list_unsubscribe}");
    let url = list_unsubscribe.split(['<', '>']).find(|p| p.starts_with("http")).unwrap().to_owned();
    assert!(headers["html"].as_str().unwrap().contains(&url), "the template's unsubscribe_url is the header's");

    // GET shows a page and changes nothing; a forged token is refused.
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("<form method=\"post\">"));
    let (_, list) = json(app.get("/api/v1/suppressions").await).await;
    assert_eq!(list["data"], json!([]));
    let bob = received.iter().find(|r| to(r) == "bob@example.com").unwrap();
    let bob_url =
        decoded_headers(&bob.data)["List-Unsubscribe"].as_str().unwrap().split(['<', '>']).nth(1).unwrap().to_owned();
    let forged = format!("{}{}", &bob_url[..bob_url.len() - 4], &url[url.len() - 4..]);
    let refused = app.client.post(&forged).body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);

    // One-click unsubscribe (RFC 8058): the next step's email to Ada is suppressed, Bob's goes.
    let one_click = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), StatusCode::OK);
    let (_, list) = json(app.get("/api/v1/suppressions").await).await;
    assert_eq!(list["data"][0]["email"], "ada@example.com");
    assert_eq!(list["data"][0]["reason"], "unsubscribed");
    // It counts against the message Ada last received, and is an event of hers.
    let (_, numbers) = json(app.get(&format!("/api/v1/campaigns/{campaign}/email-stats")).await).await;
    assert_eq!(numbers["totals"]["unsubscribed"], 1, "{numbers}");
    let (_, events) = json(app.get("/api/v1/events?name=email_unsubscribed").await).await;
    assert_eq!(events["data"].as_array().map(Vec::len), Some(1), "{events}");
    assert_eq!(events["data"][0]["properties"]["reason"], "one-click (List-Unsubscribe-Post)");
    app.clock.advance(Duration::from_secs(86_400));
    app.run_jobs().await;
    world.sink.wait_for(3, Duration::from_secs(10)).await;
    let day_one: Vec<Value> = messages(app, "").await.into_iter().filter(|m| m["step"] == "day-1").collect();
    let status_of = |who: &str| day_one.iter().find(|m| m["to"] == who).unwrap()["status"].as_str().unwrap().to_owned();
    assert_eq!((status_of("ada@example.com"), status_of("bob@example.com")), ("suppressed".into(), "sent".into()));
    assert_eq!(world.sink.count(), 3, "nothing more was sent to Ada");
    let (_, stats) = json(app.get(&format!("/api/v1/campaigns/{campaign}/stats")).await).await;
    let day_one = &stats["steps"]["day-1"];
    assert_eq!((day_one["suppressed"].as_u64(), day_one["sent"].as_u64()), (Some(1), Some(1)), "{stats}");
    assert_eq!(stats["steps"]["welcome"]["sent"], 2, "{stats}");

    // Re-subscribing is explicit.
    let response = app.delete("/api/v1/suppressions/ada@example.com").await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    world.app.stop().await;
}

async fn relay_refusals_fail_or_retry(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let (domain, records) = add_domain(app).await;
    publish(&world.dns, &records);
    assert_eq!(verify(app, &domain).await["status"], "verified");
    let campaign = activate(
        app,
        json!({"name": "Ping", "trigger": {"type": "event", "event": "ping"},
               "steps": [{"type": "email", "from": "news@mail.acme.test", "subject": "Hi", "html": "<p>Hi</p>"}]}),
    )
    .await;
    let (calls, hook_url) = hook_receiver().await;
    let (status, body) = json(
        app.post(
            &format!("/api/v1/campaigns/{campaign}/webhooks"),
            &json!({"url": hook_url, "events": ["email_bounced", "email_failed"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    send(&world, json!({"email": "reject-me@example.com", "event": "ping"})).await;
    send(&world, json!({"email": "tempfail-once@example.com", "event": "ping"})).await;
    app.run_jobs().await;
    let by_to = |list: &[Value], who: &str| list.iter().find(|m| m["to"] == who).unwrap().clone();
    let list = messages(app, "").await;
    // 5xx at RCPT: a hard bounce at once, the relay's reply recorded, the address suppressed.
    let rejected = by_to(&list, "reject-me@example.com");
    assert_eq!(
        (rejected["status"].as_str(), rejected["bounce"].as_str()),
        (Some("bounced"), Some("hard")),
        "{rejected}"
    );
    assert!(rejected["reply"].as_str().unwrap().starts_with("550"), "{rejected}");
    assert!(rejected["status_reason"].as_str().unwrap().contains("550"), "{rejected}");
    // The campaign's event webhook hears of the bounce (and of no failure).
    app.run_jobs().await;
    let heard = calls.lock().unwrap().clone();
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(
        (heard[0]["event"].as_str(), heard[0]["data"]["status"].as_str()),
        (Some("email_bounced"), Some("bounced"))
    );
    assert_eq!(heard[0]["contact"]["email"], "reject-me@example.com");
    let (_, suppressed) = json(app.get("/api/v1/suppressions").await).await;
    assert_eq!(suppressed["data"][0]["email"], "reject-me@example.com", "{suppressed}");
    assert_eq!(suppressed["data"][0]["reason"], "hard_bounce", "{suppressed}");
    assert_eq!(suppressed["data"][0]["detail"], "550 5.1.1 No such user", "{suppressed}");
    // The next message to the address is not sent.
    send(&world, json!({"email": "reject-me@example.com", "event": "ping"})).await;
    app.run_jobs().await;
    let again: Vec<Value> =
        messages(app, "").await.into_iter().filter(|m| m["to"] == "reject-me@example.com").collect();
    assert_eq!(again.len(), 1, "the once entry rule sends one message per contact: {again:?}");
    // 4xx: queued again with backoff, then delivered with the same Message-ID.
    let deferred = by_to(&list, "tempfail-once@example.com");
    assert_eq!((deferred["status"].as_str(), deferred["attempts"].as_u64()), (Some("queued"), Some(1)), "{deferred}");
    assert!(deferred["reply"].as_str().unwrap().starts_with("451"), "{deferred}");
    assert_eq!(world.sink.count(), 0);
    app.clock.advance(Duration::from_secs(60));
    app.run_jobs().await;
    let received = world.sink.wait_for(1, Duration::from_secs(10)).await;
    let delivered = by_to(&messages(app, "").await, "tempfail-once@example.com");
    assert_eq!((delivered["status"].as_str(), delivered["attempts"].as_u64()), (Some("sent"), Some(2)), "{delivered}");
    let headers = decoded_headers(&received[0].data);
    assert_eq!(headers["Message-ID"], format!("<{}>", delivered["internet_message_id"].as_str().unwrap()));

    // The test send reports the relay's answer.
    let (status, body) = json(
        app.post("/api/v1/transport/test", &json!({"to": "ops@example.com", "from": "news@mail.acme.test"})).await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["accepted"].as_bool(), body["signed"].as_bool()), (Some(true), Some(true)), "{body}");
    let (_, body) =
        json(app.post("/api/v1/transport/test", &json!({"to": "reject@example.com", "from": "x@other.test"})).await)
            .await;
    assert_eq!((body["accepted"].as_bool(), body["code"].as_u64()), (Some(false), Some(550)), "{body}");
    assert_eq!(body["failure"], "permanent");
    world.app.stop().await;
}

async fn domains_transport_and_suppressions_reject_bad_input(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    for (body, field) in [
        (json!({"name": "not a domain"}), "name"),
        (json!({"name": "localhost"}), "name"),
        (json!({"name": "example.com", "algorithm": "dsa"}), "algorithm"),
        (json!({"name": "example.com", "selector": "bad_selector"}), "selector"),
        (json!({"name": "example.com", "colour": "red"}), "colour"),
    ] {
        let error =
            expect_error(app.post("/api/v1/domains", &body).await, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(error["field"], field, "{body}: {error}");
    }
    let (status, body) =
        json(app.post("/api/v1/domains", &json!({"name": "Bücher.Example", "algorithm": "ed25519"})).await).await;
    assert_eq!((status, body["name"].as_str()), (StatusCode::CREATED, Some("xn--bcher-kva.example")), "{body}");
    assert!(record(body["records"].as_array().unwrap(), "dkim")["value"].as_str().unwrap().contains("k=ed25519"));
    let error = expect_error(
        app.post("/api/v1/domains", &json!({"name": "bücher.example"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(error["field"], "name");
    expect_error(app.get("/api/v1/domains/dom_nope").await, StatusCode::BAD_REQUEST, "validation_failed").await;

    for (body, field) in [
        (json!({"host": "", "port": 25}), "host"),
        (json!({"host": "smtp.example.com", "port": 0}), "port"),
        (json!({"host": "smtp.example.com", "security": "ssl"}), "security"),
        (json!({"host": "smtp.example.com", "pool_size": 0}), "pool_size"),
        (json!({"host": "smtp.example.com", "rate_per_second": 0}), "rate_per_second"),
    ] {
        let response = app.request(Method::PUT, "/api/v1/transport").json(&body).send().await.unwrap();
        let error = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert!(error["message"].as_str().unwrap().contains(field) || error["field"] == field, "{body}: {error}");
    }
    // The transport set by `world` is untouched by the refused updates.
    let (_, transport) = json(app.get("/api/v1/transport").await).await;
    assert_eq!(transport["smtp"]["port"], world.sink.port());
    let error = expect_error(
        app.post("/api/v1/transport/test", &json!({"to": "nobody", "from": "a@b.test"})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(error["field"], "to");

    let error = expect_error(
        app.post("/api/v1/suppressions", &json!({"email": "x"})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(error["field"], "email");
    let (status, _) = json(app.post("/api/v1/suppressions", &json!({"email": "Eve@Example.com"})).await).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) =
        json(app.post("/api/v1/suppressions", &json!({"email": "eve@example.com", "reason": "bounce"})).await).await;
    assert_eq!((status, body["reason"].as_str()), (StatusCode::OK, Some("manual")), "the first record stays");
    expect_error(app.delete("/api/v1/suppressions/nobody@example.com").await, StatusCode::NOT_FOUND, "not_found").await;
    for bad in ["/unsubscribe/garbage", "/unsubscribe/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]
    {
        assert_eq!(app.client.post(app.url(bad)).send().await.unwrap().status(), StatusCode::NOT_FOUND, "{bad}");
    }
    world.app.stop().await;
}

async fn send_rates_hold_back_and_rechecks_warn(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let transport = json!({"host": "127.0.0.1", "port": world.sink.port(), "security": "none", "username": "herald",
                           "domain_rate_per_second": 1});
    let (status, body) =
        json(app.request(Method::PUT, "/api/v1/transport").json(&transport).send().await.unwrap()).await;
    assert_eq!((status, body["password_set"].as_bool()), (StatusCode::OK, Some(true)), "the password is kept: {body}");
    let (domain, records) = add_domain(app).await;
    publish(&world.dns, &records);
    assert_eq!(verify(app, &domain).await["status"], "verified");
    activate(
        app,
        json!({"name": "Ping", "trigger": {"type": "event", "event": "ping"},
               "steps": [{"type": "email", "from": "news@mail.acme.test", "subject": "Hi", "html": "<p>Hi</p>"}]}),
    )
    .await;
    for n in 0..4 {
        send(&world, json!({"email": format!("p{n}@example.com"), "event": "ping"})).await;
    }
    // One message per second from the domain: one at once, two more in reserved slots within
    // the next two seconds, the fourth put back until its slot comes.
    app.run_jobs().await;
    let list = messages(app, "").await;
    let count = |status: &str| list.iter().filter(|m| m["status"] == status).count();
    assert_eq!((count("sent"), count("queued")), (3, 1), "{list:?}");
    app.clock.advance(Duration::from_secs(2));
    app.run_jobs().await;
    assert_eq!(messages(app, "").await.iter().filter(|m| m["status"] == "sent").count(), 4);
    assert_eq!(world.sink.wait_for(4, Duration::from_secs(10)).await.len(), 4);

    // A record that disappears from a verified domain: it stays verified, with a warning.
    world.dns.remove(record(&records, "dkim")["name"].as_str().unwrap());
    let body = verify(app, &domain).await;
    assert_eq!(body["status"], "verified");
    assert!(body["warning"].as_str().is_some_and(|w| w.contains("dkim")), "{body}");
    publish(&world.dns, &records);
    assert_eq!(verify(app, &domain).await["warning"], Value::Null, "cleared once it is back");
    world.app.stop().await;
}

/// An event's way to the relay is three jobs, each enqueued by the one before as it commits
/// (the trigger evaluation enrols a journey, the journey's step records a message, the message's
/// delivery). The worker loop runs for real with a poll interval of an hour: the message
/// arrives within seconds only if each commit wakes the worker for the job it made due.
async fn the_running_worker_takes_up_each_hop_without_waiting_for_its_poll(backend: Backend) {
    let worker = WorkerSettings { poll: Duration::from_secs(3600), ..WorkerSettings::default() };
    let world = world_with(backend, Some(worker)).await;
    let app = &world.app;
    let (domain, records) = add_domain(app).await;
    publish(&world.dns, &records);
    assert_eq!(verify(app, &domain).await["status"], "verified");
    activate(
        app,
        json!({
            "name": "Welcome",
            "trigger": {"type": "event", "event": "signed_up"},
            "steps": [{"type": "email", "from": "news@mail.acme.test", "subject": "Hello", "html": "<p>Hi</p>"}]
        }),
    )
    .await;
    send(&world, json!({"email": "ada@example.com", "event": "signed_up"})).await;
    let received = world.sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.iter().map(to).collect::<Vec<_>>(), ["ada@example.com"], "not delivered within 10 s");
}

async fn every_time_campaign(world: &World) {
    let (domain, records) = add_domain(&world.app).await;
    publish(&world.dns, &records);
    assert_eq!(verify(&world.app, &domain).await["status"], "verified");
    activate(
        &world.app,
        json!({"name": "Ping", "trigger": {"type": "event", "event": "ping"}, "entry": "every_time",
               "steps": [{"type": "email", "from": "news@mail.acme.test", "subject": "Hi", "html": "<p>Hi</p>"}]}),
    )
    .await;
}

/// A relay that keeps deferring an address: each message is retried with backoff for 72 hours
/// and then fails as a soft bounce; the third soft bounce within seven days suppresses the
/// address, and the next message to it is not sent.
async fn deferrals_end_as_soft_bounces_and_three_suppress_the_address(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    every_time_campaign(&world).await;
    let start = app.clock.now();
    let hours = |n: u64| Duration::from_secs(n * 3600);
    // One message a day for three days, then hours pass until all three have given up.
    for day in 0..3 {
        send(&world, json!({"email": "tempfail@example.com", "event": "ping"})).await;
        app.run_jobs().await;
        for _ in 0..24 {
            app.clock.advance(hours(1));
            app.run_jobs().await;
        }
        let (_, list) = json(app.get("/api/v1/suppressions").await).await;
        assert_eq!(list["data"], json!([]), "day {day}: {list}");
    }
    for _ in 0..60 {
        app.clock.advance(hours(1));
        app.run_jobs().await;
    }
    let list = messages(app, "").await;
    assert_eq!(list.len(), 3);
    for message in &list {
        assert_eq!(
            (message["status"].as_str(), message["bounce"].as_str()),
            (Some("failed"), Some("soft")),
            "{message}"
        );
        let reason = message["status_reason"].as_str().unwrap();
        assert!(reason.starts_with("gave up after ") && reason.contains("451"), "{message}");
        assert!(message["attempts"].as_u64().unwrap() >= 10, "{message}");
        assert!(message["reply"].as_str().unwrap().starts_with("451"), "{message}");
    }
    assert!(app.clock.now() < start + hours(7 * 24));
    let (_, list) = json(app.get("/api/v1/suppressions").await).await;
    assert_eq!(
        (list["data"][0]["email"].as_str(), list["data"][0]["reason"].as_str()),
        (Some("tempfail@example.com"), Some("soft_bounce")),
        "{list}"
    );
    send(&world, json!({"email": "tempfail@example.com", "event": "ping"})).await;
    app.run_jobs().await;
    let suppressed = messages(app, "?status=suppressed").await;
    assert_eq!(suppressed.len(), 1, "{suppressed:?}");
    assert_eq!(world.sink.count(), 0);
    world.app.stop().await;
}

/// A rate-limit reply pauses the recipient's domain: the message waits without spending an
/// attempt, the next message to that domain waits too without being tried, and both go once
/// the pause is over.
async fn throttling_slows_the_domain_down_without_spending_attempts(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    every_time_campaign(&world).await;
    send(&world, json!({"email": "throttle-once@example.com", "event": "ping"})).await;
    app.run_jobs().await;
    let by_to = |list: &[Value], who: &str| list.iter().find(|m| m["to"] == who).unwrap().clone();
    let throttled = by_to(&messages(app, "").await, "throttle-once@example.com");
    assert_eq!(
        (throttled["status"].as_str(), throttled["attempts"].as_u64()),
        (Some("queued"), Some(0)),
        "{throttled}"
    );
    assert!(throttled["status_reason"].as_str().unwrap().starts_with("throttled: "), "{throttled}");
    assert!(throttled["reply"].as_str().unwrap().starts_with("451 4.7.1"), "{throttled}");
    send(&world, json!({"email": "other@example.com", "event": "ping"})).await;
    app.run_jobs().await;
    let waiting = by_to(&messages(app, "").await, "other@example.com");
    assert_eq!((waiting["status"].as_str(), waiting["attempts"].as_u64()), (Some("queued"), Some(0)), "{waiting}");
    assert!(waiting["status_reason"].as_str().unwrap().starts_with("throttled: "), "{waiting}");
    assert_eq!(world.sink.count(), 0);
    app.clock.advance(Duration::from_secs(61));
    app.run_jobs().await;
    world.sink.wait_for(2, Duration::from_secs(10)).await;
    let list = messages(app, "").await;
    for who in ["throttle-once@example.com", "other@example.com"] {
        let sent = by_to(&list, who);
        assert_eq!((sent["status"].as_str(), sent["attempts"].as_u64()), (Some("sent"), Some(1)), "{sent}");
    }
    world.app.stop().await;
}

/// An HTTP receiver on loopback that keeps the JSON body of every request; its URL.
async fn hook_receiver() -> (std::sync::Arc<std::sync::Mutex<Vec<Value>>>, String) {
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = calls.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (calls, url)
}
