//! Broadcasts end to end, on both backends, with the manual clock and a real SMTP server
//! (Python's aiosmtpd) behind a verified sending domain: each audience kind mailed once, the
//! rate limit spacing deliveries, a send at a time and at a local time, pause, resume and
//! cancel, contacts who leave the topic or are suppressed meanwhile, preview, test sends,
//! progress and numbers, bad input named by its field, and the composer in Chromium.

#![allow(clippy::unwrap_used)]

mod common;

use common::sending::world;

use std::time::Duration;

use common::browser::{browser, click, element, fill, select, start_driver, text};
use common::{ADMIN_TOKEN, Backend, START, TestApp, expect_error, json};
use herald_email::testing::smtp::SmtpSink;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    each_audience_kind_is_mailed_once,
    the_rate_limit_spaces_deliveries_through_pause_resume_and_cancel,
    broadcasts_go_at_a_time_and_at_each_contacts_local_time,
    preview_and_test_sends_count_in_no_numbers,
    bad_input_is_named_by_its_field,
    the_composer_saves_and_sends_a_broadcast_in_a_browser,
);

const FROM: &str = "Acme <news@mail.acme.test>";

async fn created(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, body) = json(app.post(path, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {body}");
    body
}

async fn contact(app: &TestApp, email: &str, attributes: Value) -> String {
    let body =
        created(app, "/api/v1/contacts", json!({"email": email, "first_name": "Friend", "attributes": attributes}))
            .await;
    body["id"].as_str().unwrap().to_owned()
}

async fn topic(app: &TestApp, name: &str) -> String {
    created(app, "/api/v1/topics", json!({"name": name})).await["id"].as_str().unwrap().to_owned()
}

/// A saved and built segment.
async fn segment(app: &TestApp, name: &str, definition: Value) -> String {
    let body = created(app, "/api/v1/segments", json!({"name": name, "definition": definition})).await;
    app.run_jobs().await;
    body["id"].as_str().unwrap().to_owned()
}

/// A draft broadcast under `topic` with `extra` fields; returns its id.
async fn draft(app: &TestApp, audience: Value, topic: &str, extra: Value) -> String {
    let mut body = json!({"name": "News", "audience": audience, "from": FROM, "topic": topic,
        "subject": "Hello {{ first_name }}", "html": "<p>News for {{ email }}</p>"});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let body = created(app, "/api/v1/broadcasts", body).await;
    assert_eq!(body["state"], "draft", "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn act(app: &TestApp, id: &str, action: &str, body: Value) -> Value {
    let (status, body) = json(app.post(&format!("/api/v1/broadcasts/{id}/{action}"), &body).await).await;
    assert_eq!(status, StatusCode::OK, "{action}: {body}");
    body
}

async fn get(app: &TestApp, id: &str) -> Value {
    let (status, body) = json(app.get(&format!("/api/v1/broadcasts/{id}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The recipients of the relay's messages, sorted.
fn recipients(sink: &SmtpSink) -> Vec<String> {
    let mut all: Vec<String> = sink.received().into_iter().flat_map(|m| m.rcpt_tos).collect();
    all.sort();
    all
}

async fn each_audience_kind_is_mailed_once(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let news = topic(app, "News").await;
    contact(app, "ada@example.com", json!({"plan": "pro"})).await;
    let bob = contact(app, "bob@example.com", json!({"plan": "pro"})).await;
    contact(app, "cyd@example.com", json!({"plan": "free"})).await;
    created(app, "/api/v1/contacts", json!({"user_id": "no-email", "attributes": {"plan": "pro"}})).await;
    let pro = segment(app, "Pro", json!({"field": "plan", "op": "eq", "value": "pro"})).await;

    // A segment: its members with an email, once each, however often the jobs run.
    let id = draft(app, json!({"kind": "segment", "id": pro}), &news, json!({})).await;
    let started = act(app, &id, "send", json!({})).await;
    assert_eq!((started["state"].as_str(), started["audience_size"].as_u64()), (Some("scheduled"), Some(2)));
    app.run_jobs().await;
    app.run_jobs().await;
    assert_eq!(world.sink.wait_for(2, Duration::from_secs(10)).await.len(), 2);
    assert_eq!(recipients(&world.sink), ["ada@example.com", "bob@example.com"]);
    let body = get(app, &id).await;
    assert_eq!(body["state"], "finished", "{body}");
    assert_eq!(
        body["progress"],
        json!({"queued": 0, "sent": 2, "failed": 0, "suppressed": 0, "cancelled": 0, "left": 0})
    );
    assert_eq!(body["numbers"]["sent"], 2, "{body}");
    let mail = String::from_utf8_lossy(&world.sink.received()[0].data).to_string();
    assert!(mail.contains("Subject: Hello Friend"), "{mail}");
    // A started broadcast is not sent again, edited or deleted.
    let again = app.post(&format!("/api/v1/broadcasts/{id}/send"), &json!({})).await;
    expect_error(again, StatusCode::CONFLICT, "conflict").await;
    expect_error(app.delete(&format!("/api/v1/broadcasts/{id}")).await, StatusCode::CONFLICT, "conflict").await;

    // A topic: everyone with an email who did not leave it; a suppressed address is skipped
    // and counted.
    let choice = json!({"topics": [{"topic_id": news, "subscribed": false}]});
    let response = app.request(Method::PUT, &format!("/api/v1/contacts/{bob}/topics")).json(&choice).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    created(app, "/api/v1/suppressions", json!({"email": "cyd@example.com"})).await;
    let id = draft(app, json!({"kind": "topic", "id": news}), &news, json!({})).await;
    act(app, &id, "send", json!({})).await;
    app.run_jobs().await;
    world.sink.wait_for(3, Duration::from_secs(10)).await;
    let body = get(app, &id).await;
    assert_eq!((body["progress"]["sent"].as_u64(), body["progress"]["suppressed"].as_u64()), (Some(1), Some(1)));

    // Everyone: the contacts with an email who are not suppressed, transactional mail too.
    let everyone = json!({"name": "All", "audience": {"kind": "everyone"}, "from": FROM, "transactional": true,
        "subject": "Notice", "html": "<p>Terms changed</p>"});
    let id = created(app, "/api/v1/broadcasts", everyone).await["id"].as_str().unwrap().to_owned();
    let started = act(app, &id, "send", json!({})).await;
    assert_eq!(started["audience_size"], 2, "ada and bob: cyd is suppressed");
    app.run_jobs().await;
    world.sink.wait_for(5, Duration::from_secs(10)).await;
    assert_eq!(get(app, &id).await["progress"]["sent"], 2);
    assert_eq!(world.sink.count(), 5);
    world.app.stop().await;
}

async fn the_rate_limit_spaces_deliveries_through_pause_resume_and_cancel(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let news = topic(app, "News").await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(contact(app, &format!("c{n}@example.com"), json!({})).await);
    }
    // 3600 an hour: one a second.
    let id = draft(app, json!({"kind": "topic", "id": news}), &news, json!({"rate_per_hour": 3600})).await;
    act(app, &id, "send", json!({})).await;
    app.run_jobs().await;
    assert_eq!(world.sink.wait_for(1, Duration::from_secs(10)).await.len(), 1, "the first slot only");
    app.clock.advance(Duration::from_secs(1));
    app.run_jobs().await;
    assert_eq!(world.sink.wait_for(2, Duration::from_secs(10)).await.len(), 2);

    // Paused: nothing goes, however long; a contact who leaves the topic meanwhile is skipped,
    // and so is one whose address is suppressed meanwhile.
    let paused = act(app, &id, "pause", json!({})).await;
    assert_eq!(paused["state"], "paused");
    let choice = json!({"topics": [{"topic_id": news, "subscribed": false}]});
    let leave = app.request(Method::PUT, &format!("/api/v1/contacts/{}/topics", ids[2])).json(&choice).send().await;
    assert_eq!(leave.unwrap().status(), StatusCode::OK);
    created(app, "/api/v1/suppressions", json!({"email": "c3@example.com"})).await;
    app.clock.advance(Duration::from_secs(60));
    app.run_jobs().await;
    assert_eq!(world.sink.count(), 2, "nothing while paused");

    // Resumed: one a second again from now, never a burst.
    let resumed = act(app, &id, "resume", json!({})).await;
    assert_eq!(resumed["state"], "finished", "every recipient was written before the pause: {resumed}");
    app.run_jobs().await;
    assert_eq!(world.sink.count(), 2, "the held message of c2 was skipped, c3's slot is next");
    app.clock.advance(Duration::from_secs(1));
    app.run_jobs().await;
    let body = get(app, &id).await;
    assert_eq!(body["progress"]["suppressed"], 2, "c2 left the topic, c3 was suppressed: {body}");
    assert_eq!(world.sink.count(), 2);
    app.clock.advance(Duration::from_secs(1));
    app.run_jobs().await;
    assert_eq!(world.sink.wait_for(3, Duration::from_secs(10)).await.len(), 3);
    assert_eq!(recipients(&world.sink), ["c0@example.com", "c1@example.com", "c4@example.com"]);

    // Cancelled: the rest are withdrawn.
    let cancelled = act(app, &id, "cancel", json!({})).await;
    assert_eq!(cancelled["state"], "cancelled");
    app.clock.advance(Duration::from_secs(60));
    app.run_jobs().await;
    assert_eq!(world.sink.count(), 3);
    let body = get(app, &id).await;
    assert_eq!(
        body["progress"],
        json!({"queued": 0, "sent": 3, "failed": 0, "suppressed": 2, "cancelled": 1, "left": 0})
    );
    world.app.stop().await;
}

async fn broadcasts_go_at_a_time_and_at_each_contacts_local_time(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let news = topic(app, "News").await;
    contact(app, "paris@example.com", json!({})).await;
    contact(app, "ny@example.com", json!({"timezone": "America/New_York"})).await;

    // At a time: nothing before it.
    let at = START.to_offset_date_time() + time::Duration::hours(1);
    let id = draft(app, json!({"kind": "topic", "id": news}), &news, json!({})).await;
    let at = at.format(&time::format_description::well_known::Rfc3339).unwrap();
    act(app, &id, "send", json!({"at": at})).await;
    app.run_jobs().await;
    assert_eq!(world.sink.count(), 0);
    app.clock.advance(Duration::from_secs(3600));
    app.run_jobs().await;
    assert_eq!(world.sink.wait_for(2, Duration::from_secs(10)).await.len(), 2);

    // 09:00 on 2 January in each contact's zone: Paris (the broadcast's) at 08:00 UTC, New
    // York at 14:00 UTC.
    let id = draft(app, json!({"kind": "topic", "id": news}), &news, json!({})).await;
    let local = json!({"local": {"date": "2026-01-02", "time": "09:00", "timezone": "Europe/Paris"}});
    act(app, &id, "send", local).await;
    app.run_jobs().await;
    assert_eq!(world.sink.count(), 2);
    // A pause and a resume keep each recipient's own time.
    act(app, &id, "pause", json!({})).await;
    act(app, &id, "resume", json!({})).await;
    app.run_jobs().await;
    assert_eq!(world.sink.count(), 2, "not before 09:00 local");
    app.clock.set(herald_domain::Timestamp::from_unix_millis(START.unix_millis() + 32 * 3_600_000));
    app.run_jobs().await;
    assert_eq!(world.sink.wait_for(3, Duration::from_secs(10)).await.len(), 3);
    let paris = recipients(&world.sink).iter().filter(|r| *r == "paris@example.com").count();
    assert_eq!((world.sink.count(), paris), (3, 2), "Paris's 09:00 came first");
    app.clock.set(herald_domain::Timestamp::from_unix_millis(START.unix_millis() + 38 * 3_600_000));
    app.run_jobs().await;
    assert_eq!(world.sink.wait_for(4, Duration::from_secs(10)).await.len(), 4);
    let ny = recipients(&world.sink).iter().filter(|r| *r == "ny@example.com").count();
    assert_eq!(ny, 2, "then New York's");
    world.app.stop().await;
}

async fn preview_and_test_sends_count_in_no_numbers(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let news = topic(app, "News").await;
    let ada = contact(app, "ada@example.com", json!({})).await;
    let id = draft(app, json!({"kind": "topic", "id": news}), &news, json!({"goal": "purchased"})).await;
    let (status, preview) = json(app.get(&format!("/api/v1/broadcasts/{id}/preview?contact_id={ada}")).await).await;
    assert_eq!((status, preview["subject"].as_str()), (StatusCode::OK, Some("Hello Friend")), "{preview}");
    assert!(preview["html"].as_str().unwrap().contains("ada@example.com"), "{preview}");
    let (status, sent) =
        json(app.post(&format!("/api/v1/broadcasts/{id}/test"), &json!({"to": ["qa@example.com"]})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    app.run_jobs().await;
    let received = world.sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].rcpt_tos, ["qa@example.com"]);
    let body = get(app, &id).await;
    assert_eq!((body["state"].as_str(), body["numbers"]["sent"].as_u64()), (Some("draft"), Some(0)), "{body}");
    assert_eq!(body["numbers"]["converted"], 0, "{body}");
    world.app.stop().await;
}

async fn bad_input_is_named_by_its_field(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let news = topic(app, "News").await;
    contact(app, "ada@example.com", json!({"plan": "free"})).await;
    let nobody = segment(app, "Nobody", json!({"field": "plan", "op": "eq", "value": "pro"})).await;
    let ok = json!({"name": "News", "audience": {"kind": "topic", "id": news}, "from": FROM, "topic": news,
        "subject": "s", "html": "<p>h</p>"});
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        body[field] = value;
        body
    };
    let bad = [
        (with("rate_per_hour", json!(0)), "rate_per_hour"),
        (with("rate_per_hour", json!(-5)), "rate_per_hour"),
        (with("topic", json!("top_01930000000070008000000000000001")), "topic"),
        (with("audience", json!({"kind": "topic", "id": "top_01930000000070008000000000000001"})), "audience.id"),
        (with("audience", json!({"kind": "segment", "id": "seg_01930000000070008000000000000001"})), "audience.id"),
        (with("audience", json!({"kind": "all"})), "audience.kind"),
        (with("from", json!("news@unverified.test")), "from"),
        (with("template", json!("tpl_01930000000070008000000000000001")), "template"),
        (with("name", json!(" ")), "name"),
    ];
    for (body, field) in bad {
        let error =
            expect_error(app.post("/api/v1/broadcasts", &body).await, StatusCode::BAD_REQUEST, "validation_failed")
                .await;
        assert_eq!(error["field"], field, "{body}: {error}");
    }
    let error = expect_error(
        app.post("/api/v1/broadcasts", &with("html", json!("<p>{% if %}</p>"))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_template",
    )
    .await;
    assert_eq!(error["field"], "html");

    // An empty segment, then a deleted one; a time in the past.
    let id = draft(app, json!({"kind": "segment", "id": nobody}), &news, json!({})).await;
    let send = format!("/api/v1/broadcasts/{id}/send");
    let error = expect_error(app.post(&send, &json!({})).await, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "audience.id", "{error}");
    assert_eq!(app.delete(&format!("/api/v1/segments/{nobody}")).await.status(), StatusCode::NO_CONTENT);
    let error = expect_error(app.post(&send, &json!({})).await, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "audience.id", "{error}");
    let id = draft(app, json!({"kind": "topic", "id": news}), &news, json!({})).await;
    let past = app.post(&format!("/api/v1/broadcasts/{id}/send"), &json!({"at": "2025-01-01T00:00:00Z"})).await;
    let error = expect_error(past, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "at", "{error}");
    assert_eq!(get(app, &id).await["state"], "draft");
    // A draft is deleted.
    assert_eq!(app.delete(&format!("/api/v1/broadcasts/{id}")).await.status(), StatusCode::NO_CONTENT);
    expect_error(app.get(&format!("/api/v1/broadcasts/{id}")).await, StatusCode::NOT_FOUND, "not_found").await;
    world.app.stop().await;
}

async fn the_composer_saves_and_sends_a_broadcast_in_a_browser(backend: Backend) {
    let world = world(backend).await;
    let app = &world.app;
    let news = topic(app, "News").await;
    contact(app, "ada@example.com", json!({})).await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    client.goto(&app.url("/broadcasts")).await.expect("goto");
    fill(&client, "#key", ADMIN_TOKEN).await;
    click(&client, "form button[type=submit]").await;

    // A field error first (the sender's domain is not verified), then a draft saved.
    fill(&client, "#broadcast-name", "Launch").await;
    select(&client, "#broadcast-audience", &format!("topic:{news}")).await;
    select(&client, "#broadcast-topic", &news).await;
    fill(&client, "#broadcast-from", "news@unverified.test").await;
    fill(&client, "#broadcast-subject", "We launched, {{ first_name }}").await;
    fill(&client, "#broadcast-html", "<p>It is out.</p>").await;
    click(&client, "#new-broadcast button[type=submit]").await;
    assert!(text(&client, "#new-broadcast .field-error").await.contains("verified"));
    fill(&client, "#broadcast-from", FROM).await;
    click(&client, "#new-broadcast button[type=submit]").await;
    assert!(text(&client, "#broadcasts").await.contains("Launch"));
    let (_, list) = json(app.get("/api/v1/broadcasts").await).await;
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    let row = format!("#broadcast-{id}");
    assert_eq!(text(&client, &format!("{row} .state")).await, "draft");

    // Sent from its row; the progress follows.
    element(&client, &format!("{row} form[action$='/send'] button")).await.click().await.expect("send");
    client.accept_alert().await.expect("confirm the send");
    assert_eq!(text(&client, &format!("{row} .state")).await, "scheduled");
    app.run_jobs().await;
    world.sink.wait_for(1, Duration::from_secs(10)).await;
    client.refresh().await.expect("refresh");
    assert_eq!(text(&client, &format!("{row} .state")).await, "finished");
    assert_eq!(text(&client, &format!("{row} .sent")).await, "1");
    assert_eq!(text(&client, &format!("{row} .left")).await, "0");
    client.close().await.expect("close");
    world.app.stop().await;
}
