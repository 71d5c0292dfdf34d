//! Transactional sends (`POST /api/v1/send`) end to end, on both backends: a real SMTP server
//! (Python's aiosmtpd) receives the mail, a real DNS server (in process) verifies the sending
//! domain. Idempotency keys, suppressed addresses and bad input.

#![allow(clippy::unwrap_used)]

mod common;

use common::sending::world;

use std::time::Duration;

use common::{Backend, TestApp, expect_error, json};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

on_both_backends!(a_transactional_send_reaches_the_relay_once_per_key, sends_refuse_bad_input_and_suppressed_addresses,);

const FROM: &str = "Acme <hello@mail.acme.test>";

async fn send(app: &TestApp, key: Option<&str>, body: &Value) -> Response {
    let mut request = app.request(Method::POST, "/api/v1/send").json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

async fn a_transactional_send_reaches_the_relay_once_per_key(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let (_, layout) = json(
        app.post("/api/v1/layouts", &json!({"name": "Frame", "html": "<div>{{ content }}<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></div>"}))
            .await,
    )
    .await;
    let (status, template) = json(
        app.post(
            "/api/v1/templates",
            &json!({"name": "Reset", "subject": "Reset your password, {{ first_name | default: \"friend\" }}",
                    "html": "<p><a href=\"{{ data.link }}\">Reset</a></p>", "layout": layout["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{template}");
    let body = json!({"to": "Ada@Example.com", "from": FROM, "template": template["id"],
                      "data": {"link": "https://acme.test/reset/abc123"}});
    let (status, first) = json(send(app, Some("reset-1"), &body).await).await;
    assert_eq!((status, first["status"].as_str()), (StatusCode::ACCEPTED, Some("queued")), "{first}");
    let id = first["id"].as_str().unwrap().to_owned();

    // A retried request (keys in another order): the same answer, no second message.
    let reordered = json!({"data": {"link": "https://acme.test/reset/abc123"}, "template": template["id"],
                           "from": FROM, "to": "Ada@Example.com"});
    let (status, again) = json(send(app, Some("reset-1"), &reordered).await).await;
    assert_eq!((status, again["id"].as_str()), (StatusCode::ACCEPTED, Some(id.as_str())), "{again}");
    let other = json!({"to": "Ada@Example.com", "from": FROM, "template": template["id"], "data": {"link": "x"}});
    let error = expect_error(
        send(app, Some("reset-1"), &other).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(error["field"], "Idempotency-Key");

    app.run_jobs().await;
    let received = world.sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1, "one message for the key");
    assert_eq!(received[0].rcpt_tos, ["ada@example.com"]);
    let data = String::from_utf8_lossy(&received[0].data).to_string();
    assert!(data.contains("Subject: Reset your password, friend"), "{data}");
    assert!(data.contains("https://acme.test/reset/abc123"), "untracked: the link as written: {data}");
    assert!(data.contains(&format!("{id}@mail.acme.test")), "its Message-ID: {data}");
    let (_, message) = json(app.get(&format!("/api/v1/messages/{id}")).await).await;
    assert_eq!((message["status"].as_str(), message["attempts"].as_u64()), (Some("sent"), Some(1)), "{message}");
    assert_eq!((message["campaign_id"].clone(), message["journey_id"].clone()), (Value::Null, Value::Null));
    assert!(message["html"].as_str().unwrap().starts_with("<div><p><a href"), "inside its layout: {message}");
    // The contact was created for the address and is matched the next time.
    let (_, contacts) = json(app.get("/api/v1/contacts?email=ada@example.com").await).await;
    assert_eq!(contacts["data"].as_array().unwrap().len(), 1, "{contacts}");

    // Inline content, no key: every request is a send of its own.
    let inline = json!({"to": "ada@example.com", "from": FROM, "subject": "Your receipt", "html": "<p>Thanks, {{ first_name }}.</p>"});
    for _ in 0..2 {
        let (status, body) = json(send(app, None, &inline).await).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    app.run_jobs().await;
    assert_eq!(world.sink.wait_for(3, Duration::from_secs(10)).await.len(), 3);

    // A day later housekeeping forgets the key: it makes a new message.
    app.clock.advance(Duration::from_secs(25 * 3600));
    let shared: herald_server::clock::SharedClock = std::sync::Arc::new(app.clock.clone());
    herald_server::app::housekeeping::run_once(&app.store, &shared).await.expect("housekeeping");
    let (status, renewed) = json(send(app, Some("reset-1"), &other).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{renewed}");
    assert_ne!(renewed["id"].as_str(), Some(id.as_str()), "{renewed}");
    world.app.stop().await;
}

async fn sends_refuse_bad_input_and_suppressed_addresses(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let ok = json!({"to": "bob@example.com", "from": FROM, "subject": "s", "html": "<p>h</p>"});
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        body[field] = value;
        body
    };
    let bad = [
        (with("to", json!("not an address")), "to"),
        (with("from", json!("hello@unverified.test")), "from"),
        (with("from", json!("nobody")), "from"),
        (with("template", json!("tpl_01930000000070008000000000000001")), "template"),
        (
            json!({"to": "bob@example.com", "from": FROM, "template": "tpl_01930000000070008000000000000001"}),
            "template",
        ),
        (json!({"to": "bob@example.com", "from": FROM, "html": "<p>h</p>"}), "subject"),
    ];
    for (body, field) in bad {
        let error = expect_error(send(app, None, &body).await, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(error["field"], field, "{body}: {error}");
    }
    let error = expect_error(
        send(app, None, &with("html", json!("<p>{% if %}</p>"))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_template",
    )
    .await;
    assert_eq!(error["field"], "html");
    expect_error(send(app, Some(""), &ok).await, StatusCode::BAD_REQUEST, "validation_failed").await;

    // A suppressed address: a refusal naming why, and nothing stored or sent.
    let (status, _) = json(app.post("/api/v1/suppressions", &json!({"email": "Bob@Example.com"})).await).await;
    assert_eq!(status, StatusCode::CREATED);
    let error = expect_error(send(app, Some("k"), &ok).await, StatusCode::UNPROCESSABLE_ENTITY, "suppressed").await;
    assert_eq!(error["field"], "to");
    let (_, messages) = json(app.get("/api/v1/messages").await).await;
    assert!(messages["data"].as_array().unwrap().is_empty(), "{messages}");
    app.run_jobs().await;
    assert_eq!(world.sink.count(), 0);
    world.app.stop().await;
}
