//! Shared templates and layouts through the API, on both backends: versions kept and listed,
//! parts that do not compile refused by name and position, previews for a contact, and
//! campaign email steps that send a template, each journey the version current when it
//! entered.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Backend, TestApp, expect_error, json, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    templates_and_layouts_keep_every_version_and_preview_for_a_contact,
    templates_and_layouts_that_do_not_compile_are_refused_by_part,
    running_journeys_keep_the_template_version_they_entered_with,
);

const DAY: Duration = Duration::from_secs(86_400);

async fn created(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, body) = json(app.post(path, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn put(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    json(app.request(Method::PUT, path).json(&body).send().await.unwrap()).await
}

async fn contact(app: &TestApp, email: &str, first_name: &str) -> String {
    let body = created(app, "/api/v1/contacts", json!({"email": email, "first_name": first_name})).await;
    body["id"].as_str().unwrap().to_owned()
}

fn layout_html() -> &'static str {
    "<div class=\"frame\">{{ content }}<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p></div>"
}

async fn templates_and_layouts_keep_every_version_and_preview_for_a_contact(backend: Backend) {
    let app = spawn_app(backend).await;
    let layout = created(&app, "/api/v1/layouts", json!({"name": "Frame", "html": layout_html()})).await;
    let layout_id = layout["id"].as_str().unwrap();
    assert_eq!((layout["kind"].as_str(), layout["version"].as_u64()), (Some("layout"), Some(1)));
    let body = json!({"name": "Reset", "subject": "Reset, {{ first_name }}",
                      "html": "<p>Go to {{ data.link }}</p>", "layout": layout_id});
    let template = created(&app, "/api/v1/templates", body).await;
    let id = template["id"].as_str().unwrap();
    assert!(id.starts_with("tpl_"), "{template}");
    assert_eq!((template["version"].as_u64(), template["layout"].as_str()), (Some(1), Some(layout_id)));

    let (status, v2) = put(
        &app,
        &format!("/api/v1/templates/{id}"),
        json!({"name": "Password reset", "subject": "Your reset link, {{ first_name }}",
               "html": "<p>Reset: {{ data.link }}</p>", "text": "Reset: {{ data.link }}", "layout": layout_id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!((v2["version"].as_u64(), v2["name"].as_str()), (Some(2), Some("Password reset")));
    let (_, versions) = json(app.get(&format!("/api/v1/templates/{id}/versions")).await).await;
    let listed: Vec<_> =
        versions.as_array().unwrap().iter().map(|v| (v["version"].clone(), v["subject"].clone())).collect();
    assert_eq!(
        listed,
        [(json!(2), json!("Your reset link, {{ first_name }}")), (json!(1), json!("Reset, {{ first_name }}"))]
    );
    let (_, list) = json(app.get("/api/v1/templates").await).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "the latest version only: {list}");
    let (_, layouts) = json(app.get("/api/v1/layouts").await).await;
    assert_eq!(layouts[0]["id"], layout_id);

    // Previews: the latest version or a chosen one, in the layout, for a real contact.
    let ada = contact(&app, "ada@example.com", "Ada").await;
    let preview = json!({"contact_id": ada, "data": {"link": "https://acme.test/r/<1>"}});
    let (status, shown) = json(app.post(&format!("/api/v1/templates/{id}/preview"), &preview).await).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["subject"], "Your reset link, Ada");
    let html = shown["html"].as_str().unwrap();
    assert!(html.starts_with("<div class=\"frame\"><p>Reset: https://acme.test/r/&lt;1&gt;</p>"), "{html}");
    assert!(html.contains("Unsubscribe"), "{html}");
    assert_eq!(shown["text"], "Reset: https://acme.test/r/<1>", "no text layout: the template's text as it is");
    let first = json!({"contact_id": ada, "version": 1});
    let (_, old) = json(app.post(&format!("/api/v1/templates/{id}/preview"), &first).await).await;
    assert_eq!(old["subject"], "Reset, Ada");
    assert!(old["warnings"][0].as_str().unwrap().contains("data.link"), "{old}");
    let (status, framed) =
        json(app.post(&format!("/api/v1/layouts/{layout_id}/preview"), &json!({"contact_id": ada})).await).await;
    assert_eq!(status, StatusCode::OK, "{framed}");
    assert!(framed["html"].as_str().unwrap().contains("body goes here"), "{framed}");

    // Names are unique per kind; a template is not a layout; deleting hides it.
    expect_error(
        app.post("/api/v1/templates", &json!({"name": "Password reset", "subject": "s", "html": "h"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    expect_error(app.get(&format!("/api/v1/layouts/{id}")).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.delete(&format!("/api/v1/templates/{id}")).await.status(), StatusCode::NO_CONTENT);
    expect_error(app.get(&format!("/api/v1/templates/{id}")).await, StatusCode::NOT_FOUND, "not_found").await;
    app.stop().await;
}

async fn templates_and_layouts_that_do_not_compile_are_refused_by_part(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        ("/api/v1/templates", json!({"name": "x", "subject": "Hi {{ first_name", "html": "h"}), "subject"),
        ("/api/v1/templates", json!({"name": "x", "subject": "s", "html": "<p>\n{% if %}</p>"}), "html"),
        ("/api/v1/templates", json!({"name": "x", "subject": "s", "html": "h", "text": "{{ a | nope }}"}), "text"),
        ("/api/v1/layouts", json!({"name": "x", "html": "<div>no place for the body</div>"}), "html"),
        (
            "/api/v1/layouts",
            json!({"name": "x", "html": "{{ content }}", "text": "{{ content }}{{ content }}"}),
            "text",
        ),
    ];
    for (path, body, field) in cases {
        let error =
            expect_error(app.post(path, &body).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_template").await;
        assert_eq!(error["field"], field, "{body}: {error}");
    }
    let error = expect_error(
        app.post("/api/v1/templates", &json!({"name": "x", "subject": "s", "html": "<p>\n{% if %}</p>"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_template",
    )
    .await;
    assert!(error["message"].as_str().unwrap().starts_with("html: line 2, column"), "{error}");
    let bad = [
        (json!({"name": " ", "subject": "s", "html": "h"}), "name"),
        (json!({"name": "x", "subject": "", "html": "h"}), "subject"),
        (json!({"name": "x", "subject": "s", "html": "h", "layout": "tpl_nope"}), "layout"),
        (json!({"name": "x", "subject": "s", "html": "h", "layout": "tpl_01930000000070008000000000000001"}), "layout"),
    ];
    for (body, field) in bad {
        let error =
            expect_error(app.post("/api/v1/templates", &body).await, StatusCode::BAD_REQUEST, "validation_failed")
                .await;
        assert_eq!(error["field"], field, "{body}: {error}");
    }
    // A template is not a layout.
    let other = created(&app, "/api/v1/templates", json!({"name": "t", "subject": "s", "html": "h"})).await;
    let body = json!({"name": "y", "subject": "s", "html": "h", "layout": other["id"]});
    let error =
        expect_error(app.post("/api/v1/templates", &body).await, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "layout");
    // A campaign step that names a template nobody has is refused at its place.
    let campaign = json!({"name": "c", "trigger": {"type": "manual"},
                          "steps": [{"type": "email", "from": "a@acme.test", "template": "tpl_01930000000070008000000000000001"}]});
    let error = expect_error(
        app.post("/api/v1/campaigns", &campaign).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_campaign",
    )
    .await;
    assert_eq!(error["field"], "steps[0].template", "{error}");
    app.stop().await;
}

async fn running_journeys_keep_the_template_version_they_entered_with(backend: Backend) {
    let app = spawn_app(backend).await;
    let layout = created(&app, "/api/v1/layouts", json!({"name": "Frame", "html": layout_html()})).await;
    let template = created(
        &app,
        "/api/v1/templates",
        json!({"name": "Tips", "subject": "Tips v1 for {{ first_name }}", "html": "<p>one</p>", "layout": layout["id"]}),
    )
    .await;
    let id = template["id"].as_str().unwrap();
    let campaign = created(
        &app,
        "/api/v1/campaigns",
        json!({"name": "Tips", "trigger": {"type": "manual"}, "entry": "every_time", "steps": [
            {"type": "wait", "duration": "1d"},
            {"id": "tips", "type": "email", "from": "hello@acme.test", "template": id}
        ]}),
    )
    .await;
    let campaign = campaign["id"].as_str().unwrap();
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{campaign}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let enroll = |email: &'static str| {
        let app = &app;
        async move {
            let path = format!("/api/v1/campaigns/{campaign}/enroll");
            let (status, body) = json(app.post(&path, &json!({"email": email})).await).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    };
    contact(&app, "early@example.com", "Early").await;
    contact(&app, "late@example.com", "Late").await;
    enroll("early@example.com").await;
    app.run_jobs().await;

    // The template changes while the first journey waits; the second enters after.
    app.clock.advance(Duration::from_secs(60));
    let (status, body) = put(
        &app,
        &format!("/api/v1/templates/{id}"),
        json!({"name": "Tips", "subject": "Tips v2 for {{ first_name }}", "html": "<p>two</p>", "layout": layout["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.clock.advance(Duration::from_secs(60));
    enroll("late@example.com").await;
    app.run_jobs().await;
    app.clock.advance(DAY);
    app.run_jobs().await;

    let (status, body) = json(app.get(&format!("/api/v1/messages?campaign_id={campaign}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut sent: Vec<(String, String)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["to"].as_str().unwrap().to_owned(), m["subject"].as_str().unwrap().to_owned()))
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            ("early@example.com".to_owned(), "Tips v1 for Early".to_owned()),
            ("late@example.com".to_owned(), "Tips v2 for Late".to_owned())
        ]
    );
    let first = body["data"].as_array().unwrap().iter().find(|m| m["to"] == "early@example.com").unwrap();
    let (_, message) = json(app.get(&format!("/api/v1/messages/{}", first["id"].as_str().unwrap())).await).await;
    let html = message["html"].as_str().unwrap();
    assert!(html.starts_with("<div class=\"frame\"><p>one</p>"), "sent inside its layout: {html}");
    assert!(html.contains("/unsubscribe/"), "the layout's unsubscribe link: {html}");
    app.stop().await;
}
