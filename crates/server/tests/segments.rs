//! Segments end to end through the API, on both backends, with the manual clock: members
//! enter and leave as events commit, attributes change and time passes, with no scan and no
//! sleep (and as topic choices change); the changes reach the contact's timeline and start
//! campaigns.

mod common;

use std::time::Duration;

use common::{Backend, TestApp, expect_error, json, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    members_follow_events_attributes_and_time,
    entering_a_segment_starts_a_campaign,
    a_new_segment_is_built_over_existing_contacts,
    bad_segments_are_refused_by_field,
    topic_choices_move_contacts_in_and_out,
    segments_saved_together_build_together,
    a_built_segment_keeps_each_contacts_own_timer,
);

const DAY: Duration = Duration::from_secs(86_400);

async fn source_url(app: &TestApp) -> String {
    let (status, body) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["url"].as_str().expect("url").to_owned()
}

async fn send(app: &TestApp, url: &str, body: &Value) {
    let (status, body) = json(app.client.post(url).json(body).send().await.expect("post")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Saves a segment and builds it; returns its id.
async fn segment(app: &TestApp, name: &str, definition: Value) -> String {
    let (status, body) =
        json(app.post("/api/v1/segments", &json!({"name": name, "definition": definition})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "building", "{body}");
    app.run_jobs().await;
    body["id"].as_str().expect("id").to_owned()
}

async fn get(app: &TestApp, path: &str) -> Value {
    let (status, body) = json(app.get(path).await).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// The emails of a segment's members.
async fn members(app: &TestApp, id: &str) -> Vec<String> {
    let body = get(app, &format!("/api/v1/segments/{id}/members")).await;
    body["data"].as_array().expect("data").iter().map(|m| m["email"].as_str().unwrap_or_default().to_owned()).collect()
}

async fn contact_id(app: &TestApp, email: &str) -> String {
    let body = get(app, &format!("/api/v1/contacts?email={email}")).await;
    body["data"][0]["id"].as_str().expect("a contact").to_owned()
}

async fn members_follow_events_attributes_and_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source_url(&app).await;
    let buyers = segment(&app, "Recent buyers", json!({"performed": "order_placed", "within": "7d"})).await;
    let pro = segment(&app, "Pro", json!({"field": "plan", "op": "eq", "value": "pro"})).await;
    let both = segment(&app, "Pro buyers", json!({"all": [{"member_of": buyers}, {"member_of": pro}]})).await;
    let lapsed = segment(&app, "Not buying", json!({"not": {"member_of": buyers}})).await;
    let big = segment(
        &app,
        "Big spenders",
        json!({"performed": "order_placed", "where": {"field": "total", "op": "gte", "value": 100}, "times": {"at_least": 2}}),
    )
    .await;

    send(&app, &url, &json!({"email": "ada@example.com", "event": "signed_up", "data": {}})).await;
    app.run_jobs().await;
    assert_eq!(members(&app, &lapsed).await, ["ada@example.com"], "not having bought is a membership too");
    assert!(members(&app, &buyers).await.is_empty());

    // An event: the contact enters at once, and so does the segment built on it.
    send(&app, &url, &json!({"email": "ada@example.com", "event": "order_placed", "data": {"total": 120}})).await;
    app.run_jobs().await;
    assert_eq!(members(&app, &buyers).await, ["ada@example.com"]);
    assert!(members(&app, &lapsed).await.is_empty());
    assert!(members(&app, &big).await.is_empty(), "one big order is not two");
    send(&app, &url, &json!({"email": "ada@example.com", "event": "order_placed", "data": {"total": "150"}})).await;
    app.run_jobs().await;
    assert_eq!(members(&app, &big).await, ["ada@example.com"]);

    // An attribute change through the API: "pro", and with it "pro buyers" (member of both).
    let ada = contact_id(&app, "ada@example.com").await;
    let response = app
        .request(Method::PATCH, &format!("/api/v1/contacts/{ada}"))
        .json(&json!({"attributes": {"plan": "pro"}}))
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), StatusCode::OK);
    app.run_jobs().await;
    assert_eq!(members(&app, &pro).await, ["ada@example.com"]);
    assert_eq!(members(&app, &both).await, ["ada@example.com"]);

    // Time alone: a week after the last order the contact leaves, on time, with no event.
    app.clock.advance(DAY * 7);
    app.run_jobs().await;
    assert_eq!(members(&app, &buyers).await, ["ada@example.com"], "exactly 7 days is still within 7 days");
    app.clock.advance(Duration::from_secs(1));
    app.run_jobs().await;
    assert!(members(&app, &buyers).await.is_empty(), "left when the window passed the last order");
    assert!(members(&app, &both).await.is_empty());
    assert_eq!(members(&app, &lapsed).await, ["ada@example.com"]);
    assert_eq!(members(&app, &big).await, ["ada@example.com"], "\"ever\" does not expire");

    // Every change is in the contact's timeline and the segment's history, with its reason.
    let timeline = get(&app, &format!("/api/v1/events?contact_id={ada}&limit=100")).await;
    let changes: Vec<(String, String)> = timeline["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with("segment_")))
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_owned(),
                e["properties"]["segment"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("segment_entered", "Recent buyers"),
        ("segment_left", "Recent buyers"),
        ("segment_entered", "Pro buyers"),
        ("segment_left", "Pro buyers"),
        ("segment_left", "Not buying"),
        ("segment_entered", "Big spenders"),
    ] {
        assert!(changes.contains(&(expected.0.to_owned(), expected.1.to_owned())), "{expected:?} in {changes:?}");
    }
    let history = get(&app, &format!("/api/v1/segments/{buyers}/history")).await;
    let reasons: Vec<(&str, &str)> = history["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| (c["change"].as_str().unwrap_or_default(), c["reason"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(reasons, [("left", "time passed"), ("entered", "event \"order_placed\"")]);
    let sizes = get(&app, &format!("/api/v1/segments/{buyers}/sizes")).await;
    let days: Vec<u64> =
        sizes["data"].as_array().expect("data").iter().map(|d| d["members"].as_u64().unwrap_or(9)).collect();
    assert_eq!(days.first(), Some(&1), "{sizes}");
    assert_eq!(days.last(), Some(&0), "{sizes}");
    let read = get(&app, &format!("/api/v1/segments/{buyers}")).await;
    assert_eq!((read["status"].as_str(), read["members"].as_u64()), (Some("ready"), Some(0)), "{read}");
    app.stop().await;
}

async fn entering_a_segment_starts_a_campaign(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source_url(&app).await;
    let vip = segment(&app, "VIP", json!({"field": "plan", "op": "in", "value": ["vip", "enterprise"]})).await;
    let welcomed = segment(&app, "Welcomed", json!({"field": "welcomed", "op": "eq", "value": true})).await;
    let mut ids = Vec::new();
    for on in ["enter", "leave"] {
        // The welcome journey's attribute step changes a membership too.
        let document = json!({"name": format!("VIP {on}"), "trigger": {"type": "segment", "segment_id": vip, "on": on},
            "entry": "every_time", "steps": [{"type": "set_attribute", "attribute": "welcomed", "value": on == "enter"},
                {"type": "wait", "duration": "1d"}, {"type": "exit"}]});
        let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().expect("id").to_owned();
        let (status, body) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(id);
    }
    send(&app, &url, &json!({"email": "bo@example.com", "event": "identify", "data": {"plan": "vip"}})).await;
    app.run_jobs().await;
    assert_eq!(
        get(&app, &format!("/api/v1/campaigns/{}/stats", ids[0])).await["entered"].as_u64(),
        Some(1),
        "entering started the campaign"
    );
    assert_eq!(members(&app, &welcomed).await, ["bo@example.com"], "the journey's attribute step is a change too");
    assert_eq!(get(&app, &format!("/api/v1/campaigns/{}/stats", ids[1])).await["entered"].as_u64(), Some(0));
    send(&app, &url, &json!({"email": "bo@example.com", "event": "identify", "data": {"plan": "free"}})).await;
    app.run_jobs().await;
    assert_eq!(
        get(&app, &format!("/api/v1/campaigns/{}/stats", ids[1])).await["entered"].as_u64(),
        Some(1),
        "leaving started the other"
    );
    assert!(members(&app, &welcomed).await.is_empty());
    // The segment cannot go while a campaign starts on it.
    let error =
        expect_error(app.delete(&format!("/api/v1/segments/{vip}")).await, StatusCode::CONFLICT, "in_use").await;
    assert_eq!(error["field"], "id");
    app.stop().await;
}

async fn a_new_segment_is_built_over_existing_contacts(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut csv = String::from("email,plan\n");
    for n in 0..450 {
        csv.push_str(&format!("c{n:03}@example.com,{}\n", if n % 3 == 0 { "pro" } else { "free" }));
    }
    let response = app
        .request(Method::POST, "/api/v1/contacts/import")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("import");
    assert_eq!(response.status(), StatusCode::OK);

    let definition = json!({"field": "plan", "op": "eq", "value": "pro"});
    let preview = get_preview(&app, &definition).await;
    assert_eq!((preview["matches"].as_u64(), preview["examined"].as_u64()), (Some(150), Some(450)), "{preview}");
    assert_eq!((preview["complete"].as_bool(), preview["sample"].as_array().map(Vec::len)), (Some(true), Some(10)));

    let (status, created) =
        json(app.post("/api/v1/segments", &json!({"name": "Pro", "definition": definition})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!((created["status"].as_str(), created["progress"].as_u64()), (Some("building"), Some(0)));
    // One page at a time: the first job decides 200 contacts and queues the next.
    app.app.worker.run_once().await.expect("one page");
    let partway = get(&app, &format!("/api/v1/segments/{id}")).await;
    assert_eq!((partway["status"].as_str(), partway["progress"].as_u64()), (Some("building"), Some(200)), "{partway}");
    app.run_jobs().await;
    let built = get(&app, &format!("/api/v1/segments/{id}")).await;
    assert_eq!(
        (built["status"].as_str(), built["progress"].as_u64(), built["members"].as_u64()),
        (Some("ready"), Some(450), Some(150))
    );

    let page = get(&app, &format!("/api/v1/segments/{id}/members?limit=100")).await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(100));
    let next = page["next_cursor"].as_str().expect("more");
    let rest = get(&app, &format!("/api/v1/segments/{id}/members?limit=100&cursor={next}")).await;
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(50));
    let export = app.get(&format!("/api/v1/segments/{id}/members.csv")).await;
    assert!(export.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/csv"));
    let text = export.text().await.expect("csv");
    assert_eq!(text.lines().count(), 151, "a header and one line per member");
    assert!(text.starts_with("id,email,user_id,phone,name,member_since\n"));

    // An edit builds again; the members follow the new definition.
    let response = app
        .request(Method::PUT, &format!("/api/v1/segments/{id}"))
        .json(&json!({"name": "Free", "definition": {"field": "plan", "op": "eq", "value": "free"}}))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), StatusCode::OK);
    app.run_jobs().await;
    let rebuilt = get(&app, &format!("/api/v1/segments/{id}")).await;
    assert_eq!((rebuilt["status"].as_str(), rebuilt["members"].as_u64()), (Some("ready"), Some(300)), "{rebuilt}");
    app.stop().await;
}

async fn get_preview(app: &TestApp, definition: &Value) -> Value {
    let (status, body) = json(app.post("/api/v1/segments/preview", &json!({"definition": definition})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn bad_segments_are_refused_by_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = segment(&app, "A", json!({"field": "plan", "op": "exists"})).await;
    let b = segment(&app, "B", json!({"member_of": a})).await;
    let put = |id: String, definition: Value| {
        let request = app.request(Method::PUT, &format!("/api/v1/segments/{id}"));
        async move { request.json(&json!({"name": "renamed", "definition": definition})).send().await.expect("put") }
    };
    // Itself, directly and through another.
    let error =
        expect_error(put(a.clone(), json!({"member_of": a})).await, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "definition");
    assert!(error["message"].as_str().unwrap_or_default().contains("refer to itself"), "{error}");
    let error = expect_error(
        put(a.clone(), json!({"any": [{"member_of": b}]})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(error["message"].as_str().unwrap_or_default().contains(&format!("{a} → {b} → {a}")), "{error}");
    for (definition, field) in [
        (json!({"all": [{"field": "plan", "op": "resembles", "value": 1}]}), "definition.all[0].op"),
        (json!({"performed": "x", "times": {"at_least": "two"}}), "definition.times.at_least"),
        (json!({"member_of": "seg_0190c9a0000070008000000000000001"}), "definition"),
        (json!("everyone"), "definition"),
    ] {
        let response = app.post("/api/v1/segments", &json!({"name": "bad", "definition": definition})).await;
        let error = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(error["field"], field, "{definition}: {error}");
        let response = app.post("/api/v1/segments/preview", &json!({"definition": definition})).await;
        assert_eq!(expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await["field"], field);
    }
    let response =
        app.post("/api/v1/segments", &json!({"name": "A", "definition": {"field": "x", "op": "exists"}})).await;
    assert_eq!(expect_error(response, StatusCode::CONFLICT, "conflict").await["field"], "name");
    let response =
        app.post("/api/v1/segments", &json!({"name": " ", "definition": {"field": "x", "op": "exists"}})).await;
    assert_eq!(expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await["field"], "name");
    // A segment another refers to stays; once nothing does, it goes.
    let error = expect_error(app.delete(&format!("/api/v1/segments/{a}")).await, StatusCode::CONFLICT, "in_use").await;
    assert_eq!(error["field"], "id");
    assert_eq!(app.delete(&format!("/api/v1/segments/{b}")).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/api/v1/segments/{a}")).await.status(), StatusCode::NO_CONTENT);
    expect_error(app.get(&format!("/api/v1/segments/{a}")).await, StatusCode::NOT_FOUND, "not_found").await;
    // A campaign cannot start on a segment that is not there.
    let document = json!({"name": "c", "trigger": {"type": "segment", "segment_id": a}, "steps": [{"type": "exit"}]});
    let error = expect_error(
        app.post("/api/v1/campaigns", &document).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_campaign",
    )
    .await;
    assert_eq!(error["field"], "trigger.segment_id");
    app.stop().await;
}

async fn topic_choices_move_contacts_in_and_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, topic) = json(app.post("/api/v1/topics", &json!({"name": "Newsletter"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{topic}");
    let news = topic["id"].as_str().expect("id").to_owned();
    let url = source_url(&app).await;
    send(&app, &url, &json!({"email": "ada@example.com", "event": "signed_up", "data": {}})).await;
    send(&app, &url, &json!({"email": "bob@example.com", "event": "signed_up", "data": {}})).await;
    app.run_jobs().await;
    let readers = segment(&app, "Readers", json!({"subscribed_to": news})).await;
    let left = segment(&app, "Left the newsletter", json!({"not_subscribed_to": news})).await;
    let mut everyone = members(&app, &readers).await;
    everyone.sort();
    assert_eq!(everyone, ["ada@example.com", "bob@example.com"], "never having chosen is subscribed");
    assert!(members(&app, &left).await.is_empty());

    // A choice through the API re-decides the contact like an attribute change.
    let ada = contact_id(&app, "ada@example.com").await;
    let choose = |subscribed: bool| {
        let request = app.request(Method::PUT, &format!("/api/v1/contacts/{ada}/topics"));
        let news = news.clone();
        async move {
            let body = json!({"topics": [{"topic_id": news, "subscribed": subscribed}]});
            assert_eq!(request.json(&body).send().await.expect("put").status(), StatusCode::OK);
        }
    };
    app.clock.advance(Duration::from_secs(1));
    choose(false).await;
    app.run_jobs().await;
    assert_eq!(members(&app, &readers).await, ["bob@example.com"]);
    assert_eq!(members(&app, &left).await, ["ada@example.com"]);
    app.clock.advance(Duration::from_secs(1));
    choose(true).await;
    app.run_jobs().await;
    assert!(members(&app, &left).await.is_empty(), "joining again leaves the segment");

    // And so does one made by a CSV import.
    app.clock.advance(Duration::from_secs(1));
    let response = app
        .request(Method::POST, "/api/v1/contacts/import")
        .header("content-type", "text/csv")
        .body("email,topic:Newsletter\nbob@example.com,no\n")
        .send()
        .await
        .expect("import");
    assert_eq!(response.status(), StatusCode::OK);
    app.run_jobs().await;
    assert_eq!(members(&app, &readers).await, ["ada@example.com"]);
    let history = get(&app, &format!("/api/v1/segments/{left}/history")).await;
    let reasons: Vec<&str> =
        history["data"].as_array().expect("data").iter().map(|c| c["reason"].as_str().unwrap_or_default()).collect();
    // The import's own re-decision of the row's contact may see the choice first.
    assert_eq!(reasons.len(), 3, "{history}");
    assert_eq!(reasons[1..], ["event \"topic_subscribed\"", "event \"topic_unsubscribed\""]);

    // A topic that is not there is refused by field.
    let unknown = "top_0190c9a0000070008000000000000001";
    let response = app.post("/api/v1/segments/preview", &json!({"definition": {"subscribed_to": unknown}})).await;
    let error = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "definition");
    assert!(error["message"].as_str().unwrap_or_default().contains("no topic"), "{error}");
    app.stop().await;
}

/// Segments saved before their builds ran build in one pass, each after those it refers to:
/// a segment of "not in the other" is right as soon as both are ready.
async fn segments_saved_together_build_together(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut csv = String::from("email,plan\n");
    for n in 0..450 {
        csv.push_str(&format!("c{n:03}@example.com,{}\n", if n % 3 == 0 { "pro" } else { "free" }));
    }
    let response = app
        .request(Method::POST, "/api/v1/contacts/import")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("import");
    assert_eq!(response.status(), StatusCode::OK);
    let save = |name: &'static str, definition: Value| {
        let app = &app;
        async move {
            let (status, body) =
                json(app.post("/api/v1/segments", &json!({"name": name, "definition": definition})).await).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["id"].as_str().expect("id").to_owned()
        }
    };
    let pro = save("Pro", json!({"field": "plan", "op": "eq", "value": "pro"})).await;
    let others = save("Not pro", json!({"not": {"member_of": pro}})).await;
    app.run_jobs().await;
    for (id, members) in [(&pro, 150), (&others, 300)] {
        let built = get(&app, &format!("/api/v1/segments/{id}")).await;
        assert_eq!(
            (built["status"].as_str(), built["progress"].as_u64(), built["members"].as_u64()),
            (Some("ready"), Some(450), Some(members)),
            "{built}"
        );
    }
    app.stop().await;
}

/// A segment built over contacts whose answers expire at different times: each leaves on its
/// own time, the later one too (one timer per time, not one for the page at its earliest).
async fn a_built_segment_keeps_each_contacts_own_timer(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source_url(&app).await;
    send(&app, &url, &json!({"email": "ada@example.com", "event": "order_placed", "data": {}})).await;
    app.clock.advance(DAY);
    send(&app, &url, &json!({"email": "bob@example.com", "event": "order_placed", "data": {}})).await;
    app.run_jobs().await;
    let recent = segment(&app, "Recent buyers", json!({"performed": "order_placed", "within": "7d"})).await;
    assert_eq!(members(&app, &recent).await, ["ada@example.com", "bob@example.com"]);
    app.clock.advance(DAY * 6 + Duration::from_secs(1));
    app.run_jobs().await;
    assert_eq!(members(&app, &recent).await, ["bob@example.com"], "a week and a second after ada's order");
    app.clock.advance(DAY);
    app.run_jobs().await;
    assert!(members(&app, &recent).await.is_empty(), "a week and a second after bob's order");
    app.stop().await;
}
