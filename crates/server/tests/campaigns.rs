//! Campaigns end to end through the API, on both backends, with the manual clock: days of
//! waiting pass in milliseconds.

mod common;

use std::time::Duration;

use common::{Backend, TestApp, expect_error, json, spawn_app};
use herald_server::clock::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    onboarding_sends_day_0_2_5_and_10,
    filters_nth_occurrence_and_branches_decide,
    goals_convert_and_pausing_holds_journeys,
    drop_off_and_inactivity_fire_when_their_window_closes,
    documents_are_validated_versioned_and_exported,
    simulation_shows_what_the_live_run_then_does,
    templates_preview_without_sending,
    the_workspace_time_zone_is_the_default_for_waits,
    bad_campaign_requests_name_the_field,
    a_message_that_fails_to_render_is_recorded_with_the_reason,
);

const DAY: Duration = Duration::from_secs(86_400);

async fn source_url(app: &TestApp) -> String {
    let (status, body) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["url"].as_str().expect("url").to_owned()
}

async fn send(app: &TestApp, url: &str, body: &Value) -> Value {
    let (status, body) = json(app.client.post(url).json(body).send().await.expect("post")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Creates and activates a campaign; returns its id.
async fn campaign(app: &TestApp, document: Value) -> String {
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    assert_eq!((status, body["state"].as_str()), (StatusCode::OK, Some("active")), "{body}");
    id
}

async fn messages(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = json(app.get(&format!("/api/v1/messages{query}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().expect("data").clone()
}

async fn subjects(app: &TestApp, query: &str) -> Vec<String> {
    let mut subjects: Vec<String> =
        messages(app, query).await.iter().map(|m| m["subject"].as_str().expect("subject").to_owned()).collect();
    subjects.reverse();
    subjects
}

async fn campaign_stats(app: &TestApp, id: &str) -> Value {
    let (status, body) = json(app.get(&format!("/api/v1/campaigns/{id}/stats")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn email(id: &str, subject: &str) -> Value {
    json!({"id": id, "type": "email", "from": "Acme <hello@acme.test>", "subject": subject,
           "html": "<p>Hi {{ first_name | default: \"there\" }}, you are on {{ customer.plan }}.</p>"})
}

async fn onboarding_sends_day_0_2_5_and_10(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source_url(&app).await;
    let id = campaign(
        &app,
        json!({
            "name": "Onboarding",
            "trigger": {"type": "event", "event": "user_signed_up"},
            "steps": [
                email("day-0", "Welcome, {{ first_name }}"),
                {"type": "wait", "duration": "2d"},
                email("day-2", "Day 2 for {{ customer.first_name }}"),
                {"type": "wait", "duration": "3d"},
                email("day-5", "Day 5 ({{ event.data.plan }})"),
                {"type": "wait", "duration": "5d"},
                email("day-10", "Day 10: {{ campaign.name }}"),
            ]
        }),
    )
    .await;
    let accepted = send(
        &app,
        &url,
        &json!({"email": "Ada@Example.com", "event": "user_signed_up", "data": {"first_name": "Ada", "plan": "free"}}),
    )
    .await;
    app.run_jobs().await;
    assert_eq!(subjects(&app, "").await, ["Welcome, Ada"]);
    let sent = &messages(&app, "").await[0];
    assert_eq!((sent["to"].as_str(), sent["status"].as_str()), (Some("ada@example.com"), Some("sent")));
    assert_eq!(sent["contact_id"], accepted["contact_id"]);
    let (_, full) = json(app.get(&format!("/api/v1/messages/{}", sent["id"].as_str().expect("id"))).await).await;
    assert_eq!(full["html"], "<p>Hi Ada, you are on free.</p>");
    assert_eq!(full["text"], "Hi Ada, you are on free.");

    // The event log says what the campaign did with the event.
    let event_id = accepted["event_id"].as_str().expect("event id");
    let (_, event) = json(app.get(&format!("/api/v1/events/{event_id}")).await).await;
    let reaction = &event["outcome"]["campaigns"][0];
    assert_eq!((reaction["campaign"].as_str(), reaction["action"].as_str()), (Some("Onboarding"), Some("started")));

    for (days, expected) in [(1, 1), (1, 2), (2, 2), (1, 3), (4, 3), (1, 4), (30, 4)] {
        app.clock.advance(DAY * days);
        app.run_jobs().await;
        assert_eq!(messages(&app, "").await.len(), expected, "after {days} more day(s)");
    }
    assert_eq!(subjects(&app, "").await, ["Welcome, Ada", "Day 2 for Ada", "Day 5 (free)", "Day 10: Onboarding"]);
    let stats = campaign_stats(&app, &id).await;
    assert_eq!(
        (stats["entered"].as_u64(), stats["completed"].as_u64(), stats["active"].as_u64()),
        (Some(1), Some(1), Some(0))
    );
    assert_eq!(stats["steps"]["day-5"]["sent"], 1);
    assert_eq!(stats["steps"]["wait-1"]["waited"], 1);

    // Entry rule "once": signing up again does not start it again.
    send(&app, &url, &json!({"email": "ada@example.com", "event": "user_signed_up"})).await;
    app.run_jobs().await;
    assert_eq!(campaign_stats(&app, &id).await["entered"], 1);
    app.stop().await;
}

async fn filters_nth_occurrence_and_branches_decide(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source_url(&app).await;
    let cart = campaign(
        &app,
        json!({
            "name": "Big carts",
            "trigger": {"type": "event", "event": "checkout_started",
                        "filter": {"field": "event.data.cart_value", "op": "gt", "value": 50}},
            "entry": "every_time",
            "steps": [email("cart", "Your cart of {{ event.data.cart_value }}")]
        }),
    )
    .await;
    let third = campaign(
        &app,
        json!({
            "name": "Pricing nudge",
            "trigger": {"type": "event", "event": "pricing_page_viewed", "occurrence": {"nth": 3}},
            "steps": [
                {"id": "plan", "type": "branch",
                 "condition": {"field": "contact.plan", "op": "eq", "value": "free"},
                 "then": [email("upgrade", "Upgrade from free?"),
                          {"type": "set_attribute", "attribute": "nudged", "value": "{{ event.name }}"}],
                 "else": [email("thanks", "Thanks for being {{ plan }}")]},
                {"type": "set_attribute", "attribute": "stage", "value": "nudged", "scope": "custom_variables"},
                email("after", "Stage {{ custom_variables.stage }}")
            ]
        }),
    )
    .await;

    // Numbers sent as strings compare as numbers (hosted tools' users send prices as "149.00").
    send(&app, &url, &json!({"email": "a@x.test", "event": "checkout_started", "data": {"cart_value": "149.00"}}))
        .await;
    let small =
        send(&app, &url, &json!({"email": "b@x.test", "event": "checkout_started", "data": {"cart_value": 20}})).await;
    // Seed 000's top support question: the right name in the wrong case.
    let wrong_case = send(&app, &url, &json!({"email": "b@x.test", "event": "Checkout_Started"})).await;
    app.run_jobs().await;
    assert_eq!(subjects(&app, &format!("?campaign_id={cart}")).await, ["Your cart of 149.00"]);
    let (_, event) = json(app.get(&format!("/api/v1/events/{}", small["event_id"].as_str().expect("id"))).await).await;
    let skipped = &event["outcome"]["campaigns"][0];
    assert_eq!(skipped["action"], "skipped", "{event}");
    assert!(skipped["detail"].as_str().expect("detail").contains("cart_value is 20"), "{skipped}");
    let (_, event) =
        json(app.get(&format!("/api/v1/events/{}", wrong_case["event_id"].as_str().expect("id"))).await).await;
    assert!(event["outcome"]["campaigns"][0]["detail"].as_str().expect("detail").contains("did you mean"), "{event}");

    // The 3rd pricing_page_viewed fires, not the 2nd nor the 4th; the branch follows the plan.
    for (who, plan) in [("free@x.test", "free"), ("pro@x.test", "pro")] {
        for n in 1..=4 {
            send(&app, &url, &json!({"email": who, "event": "pricing_page_viewed", "data": {"plan": plan}})).await;
            app.run_jobs().await;
            let count = messages(&app, &format!("?campaign_id={third}")).await.len();
            let before = if who.starts_with("free") { 0 } else { 2 };
            let expected = if n < 3 { before } else { before + 2 };
            assert_eq!(count, expected, "{who} after view {n}");
        }
    }
    let subjects = subjects(&app, &format!("?campaign_id={third}")).await;
    assert_eq!(subjects, ["Upgrade from free?", "Stage nudged", "Thanks for being pro", "Stage nudged"]);
    let (_, contacts) = json(app.get("/api/v1/contacts?email=free@x.test").await).await;
    assert_eq!(contacts["data"][0]["attributes"]["nudged"], "pricing_page_viewed", "{contacts}");
    let stats = campaign_stats(&app, &third).await;
    assert_eq!((stats["steps"]["plan"]["then"].as_u64(), stats["steps"]["plan"]["else"].as_u64()), (Some(1), Some(1)));
    app.stop().await;
}

async fn goals_convert_and_pausing_holds_journeys(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source_url(&app).await;
    let id = campaign(
        &app,
        json!({
            "name": "Trial",
            "trigger": {"type": "event", "event": "trial_started"},
            "goal": {"event": "subscribed", "within": "30d", "exit": true},
            "steps": [email("one", "One"), {"type": "wait", "duration": "1d"}, email("two", "Two"),
                      {"type": "wait", "duration": "1d"}, email("three", "Three")]
        }),
    )
    .await;
    for who in ["converts@x.test", "stays@x.test"] {
        send(&app, &url, &json!({"email": who, "event": "trial_started"})).await;
    }
    app.run_jobs().await;
    send(&app, &url, &json!({"email": "converts@x.test", "event": "subscribed"})).await;
    app.run_jobs().await;

    // Paused: the remaining journey holds at its next step, however long the pause.
    let (status, _) = json(app.post(&format!("/api/v1/campaigns/{id}/pause"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance(DAY * 5);
    app.run_jobs().await;
    assert_eq!(subjects(&app, "").await, ["One", "One"]);
    expect_error(
        app.post(&format!("/api/v1/campaigns/{id}/pause"), &json!({})).await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    // Resumed: it continues where it stopped; the converted one stays out.
    let (status, _) = json(app.post(&format!("/api/v1/campaigns/{id}/resume"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);
    app.run_jobs().await;
    assert_eq!(subjects(&app, "").await, ["One", "One", "Two"]);
    app.clock.advance(DAY);
    app.run_jobs().await;
    assert_eq!(subjects(&app, "").await, ["One", "One", "Two", "Three"]);
    let stats = campaign_stats(&app, &id).await;
    assert_eq!(
        [&stats["entered"], &stats["converted"], &stats["exited"], &stats["completed"]],
        [&json!(2), &json!(1), &json!(1), &json!(1)],
        "{stats}"
    );

    // Enrol through the API: once ever, so the second call is refused with the reason.
    let (status, body) =
        json(app.post(&format!("/api/v1/campaigns/{id}/enroll"), &json!({"email": "new@x.test"})).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown contact: {body}");
    send(&app, &url, &json!({"email": "new@x.test"})).await;
    let (status, body) =
        json(app.post(&format!("/api/v1/campaigns/{id}/enroll"), &json!({"email": "new@x.test"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    expect_error(
        app.post(&format!("/api/v1/campaigns/{id}/enroll"), &json!({"email": "new@x.test"})).await,
        StatusCode::CONFLICT,
        "not_enrolled",
    )
    .await;
    app.stop().await;
}

async fn drop_off_and_inactivity_fire_when_their_window_closes(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source_url(&app).await;
    let recovery = campaign(
        &app,
        json!({
            "name": "Cart recovery",
            "trigger": {"type": "drop_off", "event": "checkout_started", "missing": "checkout_completed", "within": "24h"},
            "entry": "every_time",
            "steps": [email("recover", "Forgot something, {{ email }}?")]
        }),
    )
    .await;
    let winback = campaign(
        &app,
        json!({
            "name": "Win back",
            "trigger": {"type": "inactivity", "after": "14d"},
            "steps": [email("miss-you", "We miss you")]
        }),
    )
    .await;
    send(&app, &url, &json!({"email": "buys@x.test", "event": "checkout_started"})).await;
    send(&app, &url, &json!({"email": "leaves@x.test", "event": "checkout_started"})).await;
    app.run_jobs().await;
    app.clock.advance(Duration::from_secs(3600));
    send(&app, &url, &json!({"email": "buys@x.test", "event": "checkout_completed"})).await;
    app.run_jobs().await;
    app.clock.advance(Duration::from_secs(22 * 3600));
    app.run_jobs().await;
    assert!(messages(&app, "").await.is_empty(), "the window is still open");
    app.clock.advance(Duration::from_secs(3600));
    app.run_jobs().await;
    assert_eq!(subjects(&app, &format!("?campaign_id={recovery}")).await, ["Forgot something, leaves@x.test?"]);

    // Inactivity: 14 days after each contact's last event; activity restarts the count.
    app.clock.advance(DAY * 12);
    send(&app, &url, &json!({"email": "buys@x.test", "event": "page_viewed"})).await;
    app.run_jobs().await;
    app.clock.advance(DAY);
    app.run_jobs().await;
    let winners: Vec<String> = messages(&app, &format!("?campaign_id={winback}"))
        .await
        .iter()
        .map(|m| m["to"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(winners, ["leaves@x.test"], "buys@ was active 1 day ago");
    app.clock.advance(DAY * 13);
    app.run_jobs().await;
    assert_eq!(messages(&app, &format!("?campaign_id={winback}")).await.len(), 2);
    app.stop().await;
}

async fn documents_are_validated_versioned_and_exported(backend: Backend) {
    let app = spawn_app(backend).await;
    let bad = json!({
        "name": "Broken",
        "trigger": {"type": "event", "event": "x"},
        "steps": [
            {"id": "a", "type": "wait", "duration": "0d"},
        ]
    });
    let error =
        expect_error(app.post("/api/v1/campaigns", &bad).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_campaign")
            .await;
    assert_eq!(error["field"], "steps[0].duration", "{error}");
    let bad = json!({
        "name": "Broken",
        "trigger": {"type": "event", "event": "x"},
        "steps": [
            {"id": "a", "type": "email", "from": "not an address", "subject": "{{ x | upcse }}", "html": "<p>"},
            {"id": "b", "type": "exit"},
            {"id": "a", "type": "branch", "condition": {"field": "plan", "op": "equals", "value": 1}, "then": [], "else": []}
        ]
    });
    let error =
        expect_error(app.post("/api/v1/campaigns", &bad).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_campaign")
            .await;
    let message = error["message"].as_str().expect("message");
    assert!(message.contains("steps[2].condition"), "{message}");
    assert!(message.contains("unknown operator"), "{message}");

    let bad = json!({
        "name": "Broken", "trigger": {"type": "event", "event": "x"},
        "steps": [
            {"id": "a", "type": "email", "from": "not an address", "subject": "{{ x | upcse }}", "html": "<p>"},
            {"id": "b", "type": "exit"},
            {"id": "a", "type": "exit"}
        ]
    });
    let error =
        expect_error(app.post("/api/v1/campaigns", &bad).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_campaign")
            .await;
    let message = error["message"].as_str().expect("message");
    for part in [
        "steps[2].id: \"a\" is used by another step",
        "steps[0].from",
        "steps[0].subject: line 1",
        "steps[2]: step \"a\" can never run",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }

    let document = json!({
        "name": "Versions",
        "trigger": {"type": "manual"},
        "steps": [{"type": "email", "from": "a@acme.test", "subject": "v1", "html": "<p>1</p>"}]
    });
    let (status, created) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id");
    assert_eq!((created["version"].as_u64(), created["state"].as_str()), (Some(1), Some("draft")));
    assert_eq!(created["document"]["steps"][0]["id"], "email-1", "ids are filled in");
    let mut edited = created["document"].clone();
    edited["steps"][0]["subject"] = json!("v2");
    let (status, updated) =
        json(app.request(Method::PUT, &format!("/api/v1/campaigns/{id}")).json(&edited).send().await.expect("put"))
            .await;
    assert_eq!((status, updated["version"].as_u64()), (StatusCode::OK, Some(2)), "{updated}");

    let exported = app.get(&format!("/api/v1/campaigns/{id}/export")).await;
    assert!(exported.headers()["content-disposition"].to_str().expect("header").contains("versions.campaign.json"));
    let (_, file) = json(exported).await;
    let (status, imported) = json(app.post("/api/v1/campaigns/import", &file).await).await;
    assert_eq!(status, StatusCode::CREATED, "{imported}");
    assert_eq!(imported["document"], updated["document"]);
    assert_ne!(imported["id"], updated["id"]);

    let (status, archived) = json(app.post(&format!("/api/v1/campaigns/{id}/archive"), &json!({})).await).await;
    assert_eq!((status, archived["state"].as_str()), (StatusCode::OK, Some("archived")));
    let response =
        app.request(Method::PUT, &format!("/api/v1/campaigns/{id}")).json(&edited).send().await.expect("put");
    expect_error(response, StatusCode::CONFLICT, "conflict").await;
    app.stop().await;
}

async fn simulation_shows_what_the_live_run_then_does(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source_url(&app).await;
    let document = json!({
        "name": "Plans",
        "trigger": {"type": "event", "event": "signed_up"},
        "steps": [
            email("hello", "Hello {{ first_name }}"),
            {"type": "wait", "duration": "1d"},
            {"id": "plan", "type": "branch", "condition": {"field": "contact.plan", "op": "eq", "value": "free"},
             "then": [email("free", "Still free?")],
             "else": [email("paid", "Thanks for {{ plan }}")]},
            {"type": "wait", "until": {"time": "09:00", "weekdays": ["mon"]}},
            email("monday", "Monday in {{ timezone }}")
        ]
    });
    let (status, created) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let t0 = app.clock.now();
    let at = |hours: u64| (t0 + Duration::from_secs(hours * 3600)).to_string();
    let timeline = json!({
        "contact": {"email": "sim@x.test", "attributes": {"timezone": "Asia/Tokyo"}},
        "events": [
            {"event": "signed_up", "data": {"first_name": "Sim", "plan": "free"}, "at": at(0)},
            {"event": "upgraded", "data": {"plan": "pro"}, "at": at(12)}
        ]
    });
    // Works on the draft, writes nothing.
    let (status, simulation) = json(app.post(&format!("/api/v1/campaigns/{id}/simulate"), &timeline).await).await;
    assert_eq!(status, StatusCode::OK, "{simulation}");
    assert!(messages(&app, "").await.is_empty());
    let items = simulation["items"].as_array().expect("items");
    let sent: Vec<(String, String)> = items
        .iter()
        .filter(|i| i["kind"] == "email")
        .map(|i| {
            (i["at"].as_str().expect("at").to_owned(), i["message"]["subject"].as_str().expect("subject").to_owned())
        })
        .collect();
    let branch = items.iter().find(|i| i["kind"] == "branch").expect("a branch");
    assert_eq!(branch["took"], "else", "{branch}");
    assert!(branch["reason"].as_str().expect("reason").contains("contact.plan is \"pro\""), "{branch}");
    assert_eq!(sent.len(), 3, "{simulation}");
    assert_eq!(sent[0], (at(0), "Hello Sim".to_owned()));
    assert_eq!(sent[1], (at(24), "Thanks for pro".to_owned()));
    assert_eq!(sent[2].1, "Monday in Asia/Tokyo");

    // The live run does the same at the same times.
    let (status, _) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);
    send(&app, &url, &json!({"email": "sim@x.test", "event": "signed_up", "data": {"first_name": "Sim", "plan": "free", "timezone": "Asia/Tokyo"}})).await;
    app.run_jobs().await;
    app.clock.advance(Duration::from_secs(12 * 3600));
    send(&app, &url, &json!({"email": "sim@x.test", "event": "upgraded", "data": {"plan": "pro"}})).await;
    app.run_jobs().await;
    for _ in 0..10 {
        app.clock.advance(Duration::from_secs(12 * 3600));
        app.run_jobs().await;
    }
    let mut live: Vec<(String, String)> = messages(&app, "")
        .await
        .iter()
        .map(|m| {
            (m["sent_at"].as_str().expect("sent_at").to_owned(), m["subject"].as_str().expect("subject").to_owned())
        })
        .collect();
    live.reverse();
    assert_eq!(live[..2], sent[..2]);
    assert_eq!(live[2].1, sent[2].1);
    // The live worker runs a due step when it looks (every 12 hours here), not before it is due.
    assert!(live[2].0 >= sent[2].0, "{live:?} {sent:?}");
    app.stop().await;
}

async fn templates_preview_without_sending(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json!({
        "templates": {
            "subject": "Hi {{ first_name | default: \"there\" }}, {{ event.data.cart_value | plus: 1 }}",
            "html": "<p>{{ customer.bio }} {{ missing.thing }}</p>",
            "text": "{{ custom_variables.code }} {{ event.timestamp | date: \"%F\" }}"
        },
        "contact": {"email": "p@x.test", "attributes": {"bio": "<b>bold</b>"}},
        "event": {"event": "checkout_started", "data": {"cart_value": "41"}, "timestamp": "2026-11-23T10:00:00Z"},
        "custom_variables": {"code": "X1"}
    });
    let (status, parts) = json(app.post("/api/v1/templates/preview", &body).await).await;
    assert_eq!(status, StatusCode::OK, "{parts}");
    assert_eq!(parts["subject"]["output"], "Hi there, 42");
    assert_eq!(parts["html"]["output"], "<p>&lt;b&gt;bold&lt;/b&gt; </p>", "contact data is escaped in HTML");
    assert!(parts["html"]["warnings"][0].as_str().expect("warning").contains("missing.thing"), "{parts}");
    assert_eq!(parts["text"]["output"], "X1 2026-11-23");
    let bad = json!({"templates": {"subject": "{% if x %}open"}});
    let error = expect_error(
        app.post("/api/v1/templates/preview", &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_template",
    )
    .await;
    assert_eq!(error["field"], "templates.subject");
    assert!(error["message"].as_str().expect("message").contains("line 1"), "{error}");
    assert!(messages(&app, "").await.is_empty());
    app.stop().await;
}

async fn the_workspace_time_zone_is_the_default_for_waits(backend: Backend) {
    let app = spawn_app(backend).await;
    let patch = |body: Value| app.request(Method::PATCH, "/api/v1/workspace").json(&body).send();
    let error = expect_error(
        patch(json!({"timezone": "Mars/Olympus"})).await.expect("patch"),
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(error["field"], "timezone");
    let (status, workspace) = json(patch(json!({"timezone": "Asia/Tokyo"})).await.expect("patch")).await;
    assert_eq!((status, workspace["timezone"].as_str()), (StatusCode::OK, Some("Asia/Tokyo")), "{workspace}");
    let document = json!({
        "name": "Morning", "trigger": {"type": "event", "event": "go"},
        "steps": [{"type": "wait", "until": {"time": "09:00"}}, email("m", "Good morning")]
    });
    let (_, created) = json(app.post("/api/v1/campaigns", &document).await).await;
    let id = created["id"].as_str().expect("id");
    let at = app.clock.now().to_string();
    let timeline = json!({"contact": {"email": "t@x.test"}, "events": [{"event": "go", "at": at}]});
    let (status, simulation) = json(app.post(&format!("/api/v1/campaigns/{id}/simulate"), &timeline).await).await;
    assert_eq!(status, StatusCode::OK, "{simulation}");
    let wait = simulation["items"].as_array().expect("items").iter().find(|i| i["kind"] == "wait").expect("a wait");
    // 09:00 in Tokyo is 00:00 UTC.
    assert!(wait["until"].as_str().expect("until").ends_with("T00:00:00Z"), "{wait}");
    let (_, cleared) = json(patch(json!({"timezone": null})).await.expect("patch")).await;
    assert!(cleared["timezone"].is_null(), "{cleared}");
    app.stop().await;
}

async fn bad_campaign_requests_name_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let document = json!({"name": "D", "trigger": {"type": "manual"},
                          "steps": [{"type": "email", "from": "a@acme.test", "subject": "s", "html": "h"}]});
    let (_, created) = json(app.post("/api/v1/campaigns", &document).await).await;
    let id = created["id"].as_str().expect("id");
    let bad = [
        ("/api/v1/campaigns/cmp_nope", "id"),
        ("/api/v1/messages?status=lost", "status"),
        ("/api/v1/messages?contact_id=ct_x", "contact_id"),
    ];
    for (path, field) in bad {
        let error = expect_error(app.get(path).await, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(error["field"], field, "{path}: {error}");
    }
    let posts = [
        (format!("/api/v1/campaigns/{id}/simulate"), json!({"events": [{"event": "x"}]}), "events[0].at"),
        (
            format!("/api/v1/campaigns/{id}/simulate"),
            json!({"events": [{"event": 5, "at": "2026-01-01T00:00:00Z"}]}),
            "events[0].event",
        ),
        (
            format!("/api/v1/campaigns/{id}/simulate"),
            json!({"contact_id": "ct_1", "contact": {}, "events": []}),
            "contact",
        ),
        (format!("/api/v1/campaigns/{id}/enroll"), json!({}), "contact_id"),
        (
            "/api/v1/templates/preview".to_owned(),
            json!({"templates": {}, "contact": {"email": "nope"}}),
            "contact.email",
        ),
    ];
    for (path, body, field) in posts {
        let error = expect_error(app.post(&path, &body).await, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(error["field"], field, "{path}: {error}");
    }
    // Enrolling into a draft is refused with the reason; the body's JSON is checked first.
    let (status, body) =
        json(app.post(&format!("/api/v1/campaigns/{id}/enroll"), &json!({"email": "a@x.test"})).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("invalid_state")), "{body}");
    let response = app
        .request(Method::POST, "/api/v1/campaigns")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

async fn a_message_that_fails_to_render_is_recorded_with_the_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source_url(&app).await;
    // The body loops as often as the event says: over the template step budget for Bob.
    let id = campaign(
        &app,
        json!({
            "name": "Loops",
            "trigger": {"type": "event", "event": "signed_up"},
            "steps": [{"id": "welcome", "type": "email", "from": "Acme <hello@acme.test>",
                       "subject": "Welcome, {{ first_name }}",
                       "html": "<p>{% for i in (1..event.data.repeat) %}x{% endfor %}</p>"}]
        }),
    )
    .await;
    send(
        &app,
        &url,
        &json!({"email": "ada@example.com", "event": "signed_up", "data": {"first_name": "Ada", "repeat": 3}}),
    )
    .await;
    let bob = send(
        &app,
        &url,
        &json!({"email": "bob@example.com", "event": "signed_up", "data": {"first_name": "Bob", "repeat": 1_000_000}}),
    )
    .await;
    app.run_jobs().await;

    // Bob's message is listed as failed, with the reason naming the part, and nothing sent.
    let listed = messages(&app, "").await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let failed = messages(&app, "?status=failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let message = &failed[0];
    assert_eq!((message["to"].as_str(), message["step"].as_str()), (Some("bob@example.com"), Some("welcome")));
    assert_eq!((message["transport"].as_str(), message["sent_at"].as_str()), (Some("none"), None), "{message}");
    let reason = message["status_reason"].as_str().expect("a reason");
    assert!(reason.starts_with("html: the template needed more than 100000 steps"), "{reason}");
    assert_eq!(message["subject"], "Welcome, Bob", "what rendered before the failure is kept");
    let message_id = message["id"].as_str().expect("id");
    let (status, full) = json(app.get(&format!("/api/v1/messages/{message_id}")).await).await;
    assert_eq!(status, StatusCode::OK, "{full}");
    assert_eq!((full["status"].as_str(), full["status_reason"].as_str()), (Some("failed"), Some(reason)));
    assert_eq!((full["html"].as_str(), full["text"].as_str()), (Some(""), Some("")));
    // The contact's messages say it too.
    let contact = bob["contact_id"].as_str().expect("contact id");
    let own = messages(&app, &format!("?contact_id={contact}")).await;
    assert_eq!((own.len(), own[0]["status"].as_str()), (1, Some("failed")), "{own:?}");

    // The statistics count the step as failed once, beside Ada's message sent.
    let stats = campaign_stats(&app, &id).await;
    assert_eq!(
        (stats["steps"]["welcome"]["failed"].as_u64(), stats["steps"]["welcome"]["sent"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );
    // There is nothing to send again.
    let error = expect_error(
        app.post(&format!("/api/v1/messages/{message_id}/resend"), &json!({})).await,
        StatusCode::CONFLICT,
        "message_not_rendered",
    )
    .await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains("never rendered")), "{error}");
    app.stop().await;
}
