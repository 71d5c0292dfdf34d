//! Subscription topics end to end, on both backends: the topics API and its bad input, a
//! contact's choices through the API and CSV import, campaign steps naming topics (refused
//! when the topic is unknown), a message not sent to a contact who left its topic, the
//! one-click unsubscribe leaving only the message's topic, old links leaving everything, and
//! the preference page driven in Chromium at desktop and phone widths.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{browser, click, element, fill, path, select as select_value, start_driver, text};
use common::mail::decoded_headers;
use common::{ADMIN_TOKEN, Backend, TestApp, expect_error, json, spawn_app, spawn_app_with};
use herald_email::testing::dns::DnsServer;
use herald_email::testing::smtp::{SinkOptions, SmtpSink};
use herald_server::delivery::email::EmailSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    topics_are_created_renamed_and_deleted_and_bad_input_is_named,
    contact_choices_are_set_read_back_and_become_events,
    campaigns_name_topics_that_exist,
    a_left_topic_skips_its_mail_and_one_click_leaves_only_the_topic,
    csv_import_records_topic_columns,
    the_preference_page_leaves_one_topic_then_everything_in_a_browser,
    a_message_waiting_for_delivery_is_not_sent_once_its_topic_is_left,
);

async fn create_topic(app: &TestApp, name: &str) -> String {
    let (status, body) =
        json(app.post("/api/v1/topics", &json!({"name": name, "description": "About it"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn create_contact(app: &TestApp, email: &str) -> String {
    let (status, body) = json(app.post("/api/v1/contacts", &json!({"email": email})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn put(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.request(Method::PUT, path).json(body).send().await.unwrap()
}

/// The contact's standing per topic name: (subscribed, source).
async fn standings(app: &TestApp, contact: &str) -> Vec<(String, bool, Value)> {
    let (status, body) = json(app.get(&format!("/api/v1/contacts/{contact}/topics")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t["subscribed"].as_bool().unwrap(), t["source"].clone()))
        .collect()
}

async fn field_error(response: reqwest::Response, status: StatusCode, field: &str) {
    let code = if status == StatusCode::CONFLICT { "conflict" } else { "validation_failed" };
    let error = expect_error(response, status, code).await;
    assert_eq!(error["field"], field, "{error}");
}

async fn topics_are_created_renamed_and_deleted_and_bad_input_is_named(backend: Backend) {
    let app = spawn_app(backend).await;
    let news = create_topic(&app, "Newsletter").await;
    assert!(news.starts_with("top_"), "{news}");
    create_topic(&app, "Product updates").await;
    let (_, list) = json(app.get("/api/v1/topics").await).await;
    let names: Vec<_> = list["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Newsletter", "Product updates"]);
    let (status, one) = json(app.get(&format!("/api/v1/topics/{news}")).await).await;
    assert_eq!((status, one["description"].as_str()), (StatusCode::OK, Some("About it")));

    let patch = |body: Value| app.request(Method::PATCH, &format!("/api/v1/topics/{news}")).json(&body).send();
    let (status, renamed) = json(patch(json!({"name": "Monthly news"})).await.unwrap()).await;
    assert_eq!(
        (status, renamed["name"].as_str(), renamed["description"].as_str()),
        (StatusCode::OK, Some("Monthly news"), Some("About it"))
    );

    // Bad input, each named by its field.
    field_error(app.post("/api/v1/topics", &json!({"name": "PRODUCT UPDATES"})).await, StatusCode::CONFLICT, "name")
        .await;
    field_error(patch(json!({"name": "product updates"})).await.unwrap(), StatusCode::CONFLICT, "name").await;
    field_error(app.post("/api/v1/topics", &json!({"name": "  "})).await, StatusCode::BAD_REQUEST, "name").await;
    let long = "x".repeat(101);
    field_error(app.post("/api/v1/topics", &json!({"name": long})).await, StatusCode::BAD_REQUEST, "name").await;
    let long = "x".repeat(1001);
    let response = app.post("/api/v1/topics", &json!({"name": "Long", "description": long})).await;
    field_error(response, StatusCode::BAD_REQUEST, "description").await;
    field_error(app.get("/api/v1/topics/cmp_nope").await, StatusCode::BAD_REQUEST, "id").await;
    expect_error(
        app.post("/api/v1/topics", &json!({"name": "x", "colour": "red"})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;

    assert_eq!(app.delete(&format!("/api/v1/topics/{news}")).await.status(), StatusCode::NO_CONTENT);
    expect_error(app.get(&format!("/api/v1/topics/{news}")).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_error(app.delete(&format!("/api/v1/topics/{news}")).await, StatusCode::NOT_FOUND, "not_found").await;
    let (_, list) = json(app.get("/api/v1/topics").await).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    app.stop().await;
}

async fn contact_choices_are_set_read_back_and_become_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let news = create_topic(&app, "Newsletter").await;
    let promos = create_topic(&app, "Promotions").await;
    let ada = create_contact(&app, "ada@example.com").await;
    assert_eq!(
        standings(&app, &ada).await,
        [("Newsletter".into(), true, Value::Null), ("Promotions".into(), true, Value::Null)],
        "a contact who never chose is subscribed"
    );
    // A campaign can start when someone leaves a topic.
    let document = json!({"name": "Win back", "trigger": {"type": "event", "event": "topic_unsubscribed"},
        "entry": "every_time", "steps": [{"type": "set_attribute", "attribute": "left", "value": "{{ event.data.topic }}"}]});
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    let path = format!("/api/v1/contacts/{ada}/topics");
    let (status, body) =
        json(put(&app, &path, &json!({"topics": [{"topic_id": news, "subscribed": false}]})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["subscribed"], false);
    assert_eq!(body["data"][0]["source"], "api");
    assert_eq!(body["data"][0]["updated_at"], "2026-01-01T00:00:00Z");
    assert_eq!(body["data"][1]["subscribed"], true);
    app.run_jobs().await;
    let (_, contact) = json(app.get(&format!("/api/v1/contacts/{ada}")).await).await;
    assert_eq!(contact["attributes"]["left"], "Newsletter", "{contact}");
    // Repeating a choice changes nothing; each change is one event of the contact's.
    put(&app, &path, &json!({"topics": [{"topic_id": news, "subscribed": false}]})).await;
    put(
        &app,
        &path,
        &json!({"topics": [{"topic_id": news, "subscribed": true}, {"topic_id": promos, "subscribed": false}]}),
    )
    .await;
    let (_, left) = json(app.get(&format!("/api/v1/events?contact_id={ada}&name=topic_unsubscribed")).await).await;
    assert_eq!(left["data"].as_array().unwrap().len(), 2, "{left}");
    let (_, joined) = json(app.get(&format!("/api/v1/events?contact_id={ada}&name=topic_subscribed")).await).await;
    assert_eq!(joined["data"].as_array().unwrap().len(), 1, "{joined}");
    assert_eq!(joined["data"][0]["properties"]["topic_id"], news.as_str());
    assert_eq!(joined["data"][0]["properties"]["source"], "api");
    assert_eq!(
        standings(&app, &ada).await,
        [("Newsletter".into(), true, json!("api")), ("Promotions".into(), false, json!("api"))]
    );

    // Bad input: an unknown topic, a topic that is not an id, a consent that is not a
    // boolean, the same topic twice, an unknown contact. Nothing of a refused request is kept.
    let unknown = "top_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b";
    let cases = [
        (
            json!({"topics": [{"topic_id": promos, "subscribed": true}, {"topic_id": unknown, "subscribed": false}]}),
            "topics[1].topic_id",
        ),
        (json!({"topics": [{"topic_id": "newsletter", "subscribed": false}]}), "topics[0].topic_id"),
        (
            json!({"topics": [{"topic_id": news, "subscribed": true}, {"topic_id": news, "subscribed": false}]}),
            "topics[1].topic_id",
        ),
    ];
    for (body, field) in cases {
        field_error(put(&app, &path, &body).await, StatusCode::BAD_REQUEST, field).await;
    }
    let body = expect_error(
        put(&app, &path, &json!({"topics": [{"topic_id": news, "subscribed": "maybe"}]})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("subscribed"), "{body}");
    assert_eq!(standings(&app, &ada).await[1], ("Promotions".into(), false, json!("api")));
    let nobody = "ct_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b";
    let response = put(&app, &format!("/api/v1/contacts/{nobody}/topics"), &json!({"topics": []})).await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    expect_error(app.get(&format!("/api/v1/contacts/{nobody}/topics")).await, StatusCode::NOT_FOUND, "not_found").await;
    app.stop().await;
}

fn email_step(id: &str, extra: Value) -> Value {
    let mut step = json!({"id": id, "type": "email", "from": "news@acme.test", "subject": id,
                          "html": "<p>Hi</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"});
    step.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    step
}

fn campaign(steps: Value) -> Value {
    json!({"name": "Topics", "trigger": {"type": "event", "event": "signed_up"}, "entry": "every_time", "steps": steps})
}

async fn campaigns_name_topics_that_exist(backend: Backend) {
    let app = spawn_app(backend).await;
    let news = create_topic(&app, "Newsletter").await;
    let unknown = "top_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b";
    let cases = [
        (
            campaign(json!([email_step("a", json!({"topic": news})), email_step("b", json!({"topic": unknown}))])),
            "steps[1].topic",
        ),
        (campaign(json!([email_step("a", json!({"topic": "newsletter"}))])), "steps[0].topic"),
        (campaign(json!([email_step("a", json!({"topic": news, "transactional": true}))])), "steps[0].transactional"),
    ];
    for (document, field) in cases {
        let body = expect_error(
            app.post("/api/v1/campaigns", &document).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_campaign",
        )
        .await;
        assert_eq!(body["field"], field, "{body}");
    }
    let document =
        campaign(json!([email_step("a", json!({"topic": news})), email_step("b", json!({"transactional": true}))]));
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["document"]["steps"][0]["topic"], news.as_str());
    assert_eq!(body["document"]["steps"][1]["transactional"], true);
    // A deleted topic cannot be named by a new version.
    assert_eq!(app.delete(&format!("/api/v1/topics/{news}")).await.status(), StatusCode::NO_CONTENT);
    let response = app.post("/api/v1/campaigns", &campaign(json!([email_step("a", json!({"topic": news}))]))).await;
    let body = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_campaign").await;
    assert_eq!(body["field"], "steps[0].topic", "{body}");
    app.stop().await;
}

/// A source to send events through; returns its URL.
async fn source(app: &TestApp) -> String {
    let (status, body) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["url"].as_str().unwrap().to_owned()
}

async fn signed_up(app: &TestApp, source: &str, email: &str) {
    let response = app.client.post(source).json(&json!({"email": email, "event": "signed_up"})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.run_jobs().await;
}

/// The contact's messages by step, with their status, reason and unsubscribe URL.
async fn sent(app: &TestApp, contact: &str) -> Vec<(String, String, Value, String)> {
    let (_, body) = json(app.get(&format!("/api/v1/messages?contact_id={contact}")).await).await;
    let mut list = Vec::new();
    for m in body["data"].as_array().unwrap() {
        let (_, m) = json(app.get(&format!("/api/v1/messages/{}", m["id"].as_str().unwrap())).await).await;
        let header = m["headers"]["List-Unsubscribe"].as_str().unwrap_or_default();
        let url = header.split(['<', '>']).find(|p| p.starts_with("http")).unwrap_or_default().to_owned();
        list.push((
            m["step"].as_str().unwrap().to_owned(),
            m["status"].as_str().unwrap().to_owned(),
            m["status_reason"].clone(),
            url,
        ));
    }
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

async fn contact_id(app: &TestApp, email: &str) -> String {
    let (_, body) = json(app.get(&format!("/api/v1/contacts?email={email}")).await).await;
    body["data"][0]["id"].as_str().unwrap().to_owned()
}

async fn one_click(app: &TestApp, url: &str) -> StatusCode {
    let response = app
        .client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    response.status()
}

async fn suppressions(app: &TestApp) -> Vec<String> {
    let (_, list) = json(app.get("/api/v1/suppressions").await).await;
    list["data"].as_array().unwrap().iter().map(|s| s["email"].as_str().unwrap().to_owned()).collect()
}

async fn a_left_topic_skips_its_mail_and_one_click_leaves_only_the_topic(backend: Backend) {
    let app = spawn_app(backend).await;
    let news = create_topic(&app, "Newsletter").await;
    let promos = create_topic(&app, "Promotions").await;
    let steps = json!([
        email_step("news", json!({"topic": news})),
        email_step("promo", json!({"topic": promos})),
        email_step("plain", json!({})),
        email_step("receipt", json!({"transactional": true})),
    ]);
    let (status, body) = json(app.post("/api/v1/campaigns", &campaign(steps)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    let (status, _) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);
    let source = source(&app).await;

    // Ada left the newsletter before signing up: its email is recorded as suppressed, the rest go.
    let ada = create_contact(&app, "ada@example.com").await;
    put(&app, &format!("/api/v1/contacts/{ada}/topics"), &json!({"topics": [{"topic_id": news, "subscribed": false}]}))
        .await;
    signed_up(&app, &source, "ada@example.com").await;
    let messages = sent(&app, &ada).await;
    let status: Vec<_> = messages.iter().map(|(step, status, _, _)| (step.as_str(), status.as_str())).collect();
    assert_eq!(status, [("news", "suppressed"), ("plain", "sent"), ("promo", "sent"), ("receipt", "sent")]);
    assert_eq!(messages[0].2, format!("the contact unsubscribed from topic {news}"));

    // Each topic's email carries its own link; mail about no topic (and transactional mail)
    // the contact's general one.
    let bob_email = "bob@example.com";
    signed_up(&app, &source, bob_email).await;
    let bob = contact_id(&app, bob_email).await;
    let messages = sent(&app, &bob).await;
    assert!(messages.iter().all(|(_, status, _, _)| status == "sent"), "{messages:?}");
    let url = |step: &str| messages.iter().find(|m| m.0 == step).unwrap().3.clone();
    let (news_url, promo_url, plain_url) = (url("news"), url("promo"), url("plain"));
    assert!(news_url != promo_url && promo_url != plain_url && plain_url == url("receipt"), "{messages:?}");
    assert!(news_url.len() > plain_url.len(), "a topic's link carries the topic");

    // The page names the message's topic; a tampered link is refused.
    let page = app.client.get(&promo_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("You received this email as part of <strong>Promotions</strong>"), "{page}");
    let mut tampered = promo_url.clone().into_bytes();
    let at = tampered.len() - 30;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(app.client.get(&tampered).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(one_click(&app, &tampered).await, StatusCode::NOT_FOUND);

    // One-click on the promotion leaves the promotions only: no suppression.
    assert_eq!(one_click(&app, &promo_url).await, StatusCode::OK);
    assert_eq!(
        standings(&app, &bob).await,
        [("Newsletter".into(), true, Value::Null), ("Promotions".into(), false, json!("one_click"))]
    );
    assert!(suppressions(&app).await.is_empty());
    let (_, events) = json(app.get(&format!("/api/v1/events?contact_id={bob}&name=email_unsubscribed")).await).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "the unsubscribe counts as the message's: {events}");
    let (_, numbers) = json(app.get(&format!("/api/v1/campaigns/{id}/email-stats")).await).await;
    assert_eq!(numbers["totals"]["unsubscribed"], 1, "{numbers}");

    // Signing up again: the promotion is skipped, the newsletter still goes.
    signed_up(&app, &source, bob_email).await;
    let again: Vec<_> = sent(&app, &bob).await.into_iter().filter(|m| m.1 != "sent" || m.0 == "promo").collect();
    assert!(again.iter().any(|m| m.0 == "promo" && m.1 == "suppressed"), "{again:?}");

    // One-click on mail about no topic (and on links sent before topics) leaves everything.
    assert_eq!(one_click(&app, &plain_url).await, StatusCode::OK);
    assert_eq!(suppressions(&app).await, [bob_email]);
    app.stop().await;
}

async fn csv_import_records_topic_columns(backend: Backend) {
    let app = spawn_app(backend).await;
    let news = create_topic(&app, "Newsletter").await;
    let promos = create_topic(&app, "Promotions").await;
    let csv = format!(
        "email,name,topic:Newsletter,topic:{promos}\n\
         ada@example.com,Ada,yes,no\n\
         bob@example.com,Bob,NO,\n\
         cy@example.com,Cy,maybe,yes\n"
    );
    let import = |body: String| {
        app.request(Method::POST, "/api/v1/contacts/import").header("content-type", "text/csv").body(body).send()
    };
    let (status, summary) = json(import(csv).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!((summary["created"].as_u64(), summary["failed"].as_u64()), (Some(2), Some(1)), "{summary}");
    assert_eq!(summary["errors"][0]["row"], 3);
    assert!(summary["errors"][0]["message"].as_str().unwrap().contains("topic:newsletter"), "{summary}");
    let ada = contact_id(&app, "ada@example.com").await;
    let bob = contact_id(&app, "bob@example.com").await;
    assert_eq!(
        standings(&app, &ada).await,
        [("Newsletter".into(), true, Value::Null), ("Promotions".into(), false, json!("import"))],
        "yes to a topic one is in changes nothing"
    );
    assert_eq!(
        standings(&app, &bob).await,
        [("Newsletter".into(), false, json!("import")), ("Promotions".into(), true, Value::Null)]
    );
    // The topic columns are no attributes.
    let (_, contact) = json(app.get(&format!("/api/v1/contacts/{ada}")).await).await;
    assert_eq!(contact["attributes"], json!({"name": "Ada"}), "{contact}");
    assert!(!news.is_empty());

    // A column naming no topic refuses the file.
    let (status, body) = json(import("email,topic:weekly\nada@example.com,yes\n".into()).await.unwrap()).await;
    assert_eq!((status, body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("body")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("topic:weekly"), "{body}");
    app.stop().await;
}

async fn the_preference_page_leaves_one_topic_then_everything_in_a_browser(backend: Backend) {
    let app = spawn_app(backend).await;
    let news = create_topic(&app, "Newsletter").await;
    create_topic(&app, "Product updates with a rather long name that has to wrap on a phone").await;
    let steps = json!([email_step("news", json!({"topic": news}))]);
    let (_, body) = json(app.post("/api/v1/campaigns", &campaign(steps)).await).await;
    let id = body["id"].as_str().unwrap();
    json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    let source = source(&app).await;
    signed_up(&app, &source, "ada@example.com").await;
    let ada = contact_id(&app, "ada@example.com").await;
    let url = sent(&app, &ada).await[0].3.clone();

    let driver = start_driver().await;
    let client = browser(&driver).await;
    // The topics screen: a field error, then a topic added and listed.
    client.goto(&app.url("/topics")).await.expect("goto");
    fill(&client, "#key", ADMIN_TOKEN).await;
    click(&client, "form button[type=submit]").await;
    fill(&client, "#topic-name", "   ").await;
    click(&client, "#new-topic button[type=submit]").await;
    assert!(!text(&client, "#new-topic .field-error").await.is_empty());
    fill(&client, "#topic-name", "Events").await;
    fill(&client, "#topic-description", "Invitations to our meetups").await;
    click(&client, "#new-topic button[type=submit]").await;
    assert!(text(&client, "#topics").await.contains("Invitations to our meetups"));
    assert_eq!(path(&client).await, "/topics");

    for width in [1280, 375] {
        client.set_window_size(width, 800).await.expect("resize");
        client.goto(&url).await.expect("goto");
        assert!(text(&client, "#current").await.contains("Newsletter"));
        let overflow: Value = client
            .execute("return document.documentElement.scrollWidth - document.documentElement.clientWidth", vec![])
            .await
            .expect("script");
        assert_eq!(overflow, json!(0), "nothing wider than the screen at {width}px");
    }
    // At phone width: leave the newsletter, see it left, join again, leave everything.
    let newsletter = format!("li[data-topic='{news}']");
    click(&client, &format!("{newsletter} button[value='leave']")).await;
    assert!(text(&client, "#notice").await.contains("Unsubscribed from that topic"));
    assert!(text(&client, &newsletter).await.contains("Unsubscribed"));
    assert_eq!(standings(&app, &ada).await[1], ("Newsletter".into(), false, json!("preference_page")));
    assert!(suppressions(&app).await.is_empty());
    click(&client, &format!("{newsletter} button[value='join']")).await;
    assert!(text(&client, "#notice").await.contains("Subscribed again"));
    assert_eq!(standings(&app, &ada).await[1], ("Newsletter".into(), true, json!("preference_page")));
    click(&client, "#everything").await;
    element(&client, "#suppressed").await;
    assert_eq!(suppressions(&app).await, ["ada@example.com"]);
    let (_, timeline) = json(app.get(&format!("/api/v1/events?contact_id={ada}")).await).await;
    let names: Vec<_> = timeline["data"].as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.contains(&"topic_unsubscribed") && names.contains(&"topic_subscribed"), "{names:?}");
    // The contact page shows the standing and who chose it.
    client.goto(&app.url(&format!("/contacts/{ada}"))).await.expect("goto");
    let topics = text(&client, "#contact-topics").await;
    assert!(
        topics.contains("Newsletter") && topics.contains("preference_page") && topics.contains("never chose"),
        "{topics}"
    );

    // A choice the page does not offer is refused, and changes nothing.
    for body in ["action=leave&topic=top_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b", "action=leave&topic=nope", "action=dance"] {
        let response = app
            .client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    assert_eq!(standings(&app, &ada).await[0], ("Events".into(), true, Value::Null));

    // The campaign editor shows the step's topic and keeps it on save; it can make the step
    // transactional.
    let select = "[name='steps[0].topic']";
    client.goto(&app.url(&format!("/campaigns/{id}/edit"))).await.expect("goto");
    assert_eq!(element(&client, select).await.prop("value").await.unwrap().as_deref(), Some(news.as_str()));
    click(&client, "#save").await;
    assert!(text(&client, "p.notice").await.contains("Campaign saved"));
    let (_, saved) = json(app.get(&format!("/api/v1/campaigns/{id}")).await).await;
    assert_eq!(saved["document"]["steps"][0]["topic"], news.as_str(), "{saved}");
    client.goto(&app.url(&format!("/campaigns/{id}/edit"))).await.expect("goto");
    select_value(&client, select, "transactional").await;
    click(&client, "#save").await;
    assert!(text(&client, "p.notice").await.contains("Campaign saved"));
    let (_, saved) = json(app.get(&format!("/api/v1/campaigns/{id}")).await).await;
    let step = &saved["document"]["steps"][0];
    assert_eq!((step["transactional"].as_bool(), step.get("topic")), (Some(true), None), "{saved}");
    client.close().await.unwrap();
    app.stop().await;
}

async fn a_message_waiting_for_delivery_is_not_sent_once_its_topic_is_left(backend: Backend) {
    let dns = DnsServer::start().await.expect("dns server");
    let sink = SmtpSink::start_with(SinkOptions::default()).expect("smtp sink");
    let app =
        spawn_app_with(backend, EmailSettings { dns_resolver: Some(dns.addr()), ..EmailSettings::default() }).await;
    let transport = json!({"host": "127.0.0.1", "port": sink.port(), "security": "none"});
    assert_eq!(put(&app, "/api/v1/transport", &transport).await.status(), StatusCode::OK);
    let (status, domain) = json(app.post("/api/v1/domains", &json!({"name": "acme.test"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{domain}");
    let news = create_topic(&app, "Newsletter").await;
    let (_, body) =
        json(app.post("/api/v1/campaigns", &campaign(json!([email_step("news", json!({"topic": news}))]))).await).await;
    let id = body["id"].as_str().unwrap();
    json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    let source = source(&app).await;

    // Held while the domain is unverified; meanwhile Ada leaves the topic.
    signed_up(&app, &source, "ada@example.com").await;
    signed_up(&app, &source, "bob@example.com").await;
    let ada = contact_id(&app, "ada@example.com").await;
    assert_eq!(sent(&app, &ada).await[0].1, "held");
    put(&app, &format!("/api/v1/contacts/{ada}/topics"), &json!({"topics": [{"topic_id": news, "subscribed": false}]}))
        .await;
    for record in domain["records"].as_array().unwrap() {
        dns.set_txt(record["name"].as_str().unwrap(), &[record["value"].as_str().unwrap()]);
    }
    let domain_id = domain["id"].as_str().unwrap();
    let (_, verified) = json(app.post(&format!("/api/v1/domains/{domain_id}/verify"), &json!({})).await).await;
    assert_eq!(verified["status"], "verified", "{verified}");
    app.run_jobs().await;

    let received = sink.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_tos, ["bob@example.com"]);
    let ada_message = &sent(&app, &ada).await[0];
    assert_eq!(
        (ada_message.1.as_str(), &ada_message.2),
        ("suppressed", &json!(format!("the contact unsubscribed from topic {news}")))
    );
    // The header Bob's mail carries is the topic's link the message was rendered with.
    let bob = contact_id(&app, "bob@example.com").await;
    let stored = sent(&app, &bob).await[0].3.clone();
    let header = decoded_headers(&received[0].data)["List-Unsubscribe"].as_str().unwrap().to_owned();
    assert!(header.contains(&format!("<{stored}>")), "{header} carries {stored}");
    app.stop().await;
}
