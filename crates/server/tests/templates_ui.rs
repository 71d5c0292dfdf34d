//! The templates' pages in a real Chromium, on both backends: a layout and a template made
//! in the editor (parts that do not compile refused next to their field), a preview for a
//! contact, and a second version listed.

mod common;

use std::time::Duration;

use common::browser::{browser, click, fill, path, select, start_driver, text};
use common::{ADMIN_TOKEN, Backend, TestApp, json, spawn_app};
use fantoccini::Client;
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(templates_are_written_previewed_and_versioned_in_the_browser);

async fn templates_are_written_previewed_and_versioned_in_the_browser(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) =
        json(app.post("/api/v1/contacts", &json!({"email": "ada@example.com", "first_name": "Ada"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let result = tokio::time::timeout(Duration::from_secs(120), walk(&app, &client)).await;
    client.close().await.expect("close the browser");
    result.expect("the walk took over 2 minutes");
    app.stop().await;
}

async fn walk(app: &TestApp, client: &Client) {
    client.goto(&app.url("/templates")).await.expect("goto");
    fill(client, "#key", ADMIN_TOKEN).await;
    click(client, "form button[type=submit]").await;
    text(client, "#new-layout").await;
    assert_eq!(path(client).await, "/templates");
    assert!(text(client, "main").await.contains("No templates yet"));

    // A layout without its placeholder is refused next to its HTML.
    click(client, "#new-layout").await;
    fill(client, "#t-name", "Frame").await;
    fill(client, "#t-html", "<div>no place for the body</div>").await;
    click(client, "#save").await;
    assert!(text(client, "#error-html").await.contains("{{ content }}"));
    fill(
        client,
        "#t-html",
        "<div class=\"frame\">{{ content }}<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></div>",
    )
    .await;
    click(client, "#save").await;
    let layout = text(client, "#template-id").await;
    assert!(layout.starts_with("tpl_"), "{layout}");

    // A template whose subject does not compile: the error names its place.
    client.goto(&app.url("/templates")).await.expect("goto");
    click(client, "#new-template").await;
    fill(client, "#t-name", "Welcome").await;
    fill(client, "#t-subject", "Hi {{ first_name").await;
    fill(client, "#t-html", "<p>Welcome aboard, {{ first_name }}.</p>").await;
    select(client, "#t-layout", &layout).await;
    click(client, "#save").await;
    let error = text(client, "#error-subject").await;
    assert!(error.starts_with("Line 1, column"), "{error}");
    fill(client, "#t-subject", "Hi {{ first_name }}").await;
    click(client, "#save").await;
    let id = text(client, "#template-id").await;
    assert_eq!(path(client).await, format!("/templates/{id}"));

    // Preview for a contact chosen by email: inside the layout.
    fill(client, "#p-contact", "ada@example.com").await;
    click(client, "#preview").await;
    assert_eq!(text(client, "#preview-subject").await, "Hi Ada");
    let frame = client.find(fantoccini::Locator::Css("#preview-result iframe")).await.expect("frame");
    let html = frame.attr("srcdoc").await.expect("srcdoc").unwrap_or_default();
    assert!(html.starts_with("<div class=\"frame\"><p>Welcome aboard, Ada.</p>"), "{html}");

    // A second version; both are listed, and version 1 still previews.
    fill(client, "#t-subject", "Welcome, {{ first_name }}").await;
    click(client, "#save").await;
    assert!(text(client, ".notice").await.contains("new version"));
    let versions = text(client, "#versions tbody").await;
    assert!(versions.contains("Welcome, {{ first_name }}") && versions.contains("Hi {{ first_name }}"), "{versions}");
    fill(client, "#p-contact", "ada@example.com").await;
    select(client, "#p-version", "1").await;
    click(client, "#preview").await;
    assert_eq!(text(client, "#preview-subject").await, "Hi Ada");
    client.goto(&app.url("/templates")).await.expect("goto");
    assert!(text(client, "#templates").await.contains("Welcome"));
    assert!(text(client, "#layouts").await.contains("Frame"));
}
