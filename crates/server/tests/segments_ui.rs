//! The segments' pages, on both backends: in a real Chromium, a segment built in the builder
//! with its count following each change, saved, then its members and size chart, and saves
//! refused with the error next to the condition at fault; over plain HTTP, that the pages
//! and forms need a session and a CSRF token, and the members' CSV.

mod common;

use std::time::Duration;

use common::browser::{browser, click, element, fill, path, select, start_driver, text};
use common::{ADMIN_TOKEN, Backend, TestApp, json, spawn_app};
use fantoccini::Client;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

on_both_backends!(segments_are_built_counted_and_shown_in_the_browser, segment_pages_need_a_session_and_a_csrf_token);

/// Three contacts, two on the pro plan, one of whom left the newsletter.
async fn contacts(app: &TestApp) {
    let (status, topic) = json(app.post("/api/v1/topics", &json!({"name": "Newsletter"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{topic}");
    for (email, plan) in [("ada@example.com", "pro"), ("bob@example.com", "free"), ("cat@example.com", "pro")] {
        let body = json!({"email": email, "attributes": {"plan": plan}});
        let (status, contact) = json(app.post("/api/v1/contacts", &body).await).await;
        assert_eq!(status, StatusCode::CREATED, "{contact}");
        if email == "ada@example.com" {
            let choice = json!({"topics": [{"topic_id": topic["id"], "subscribed": false}]});
            let path = format!("/api/v1/contacts/{}/topics", contact["id"].as_str().expect("id"));
            let response = app.request(reqwest::Method::PUT, &path).json(&choice).send().await.expect("put");
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
    app.run_jobs().await;
}

async fn segments_are_built_counted_and_shown_in_the_browser(backend: Backend) {
    let app = spawn_app(backend).await;
    contacts(&app).await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let result = tokio::time::timeout(Duration::from_secs(120), walk(&app, &client)).await;
    client.close().await.expect("close the browser");
    result.expect("the walk took over 2 minutes");
    app.stop().await;
}

/// Waits for the live count to read `expected`.
async fn count_reads(client: &Client, expected: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(found) = client.find(fantoccini::Locator::Css("#match-count")).await {
            last = found.text().await.unwrap_or_default();
            if last == expected {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the count read {last:?}, not {expected:?}");
}

async fn walk(app: &TestApp, client: &Client) {
    client.goto(&app.url("/segments")).await.expect("goto");
    fill(client, "#key", ADMIN_TOKEN).await;
    click(client, "form button[type=submit]").await;
    text(client, "#new-segment").await;
    assert_eq!(path(client).await, "/segments");
    assert!(text(client, "main").await.contains("No segments yet"));

    // The builder starts from everyone with an address; each change counts again.
    click(client, "#new-segment").await;
    count_reads(client, "3").await;
    fill(client, "[data-path=\"all[0]\"] [data-key=field]", "plan").await;
    select(client, "[data-path=\"all[0]\"] [data-key=op]", "eq").await;
    fill(client, "[data-path=\"all[0]\"] [data-key=value]", "pro").await;
    count_reads(client, "2").await;
    click(client, "[data-path=\"\"] > .add [data-add=condition]").await;
    select(client, "[data-path=\"all[1]\"] [data-key=kind]", "subscribed_to").await;
    count_reads(client, "1").await;
    assert!(text(client, "#sample").await.contains("cat@example.com"));
    let written = element(client, "#s-definition").await.prop("value").await.expect("value").unwrap_or_default();
    let written: serde_json::Value = serde_json::from_str(&written).expect("the builder writes JSON");
    assert_eq!(written["all"][0], json!({"field": "plan", "op": "eq", "value": "pro"}), "{written}");
    assert!(written["all"][1]["subscribed_to"].as_str().is_some_and(|t| t.starts_with("top_")), "{written}");

    // Saved: the page shows the build, then the members and the size chart.
    fill(client, "#s-name", "Pro readers").await;
    click(client, "#save").await;
    let id = text(client, "#segment-id").await;
    assert_eq!(path(client).await, format!("/segments/{id}"));
    assert!(text(client, "#progress").await.contains("building"), "computed in the background");
    app.run_jobs().await;
    client.refresh().await.expect("reload");
    assert_eq!(text(client, "#member-count").await, "1");
    assert!(text(client, "#members tbody").await.contains("cat@example.com"));
    let bar = element(client, "#size-chart rect title").await;
    let title = bar.prop("textContent").await.expect("title").unwrap_or_default();
    assert!(title.ends_with(": 1 member"), "{title}");
    let export = element(client, "#export").await.attr("href").await.expect("href");
    assert_eq!(export.as_deref(), Some(format!("/segments/{id}/members.csv").as_str()));

    // An unknown operator, typed in the JSON: refused, the error beside the operator.
    client.goto(&app.url("/segments/new")).await.expect("goto");
    fill(client, "#s-name", "Odd").await;
    fill(client, "#s-definition", r#"{"all": [{"field": "plan", "op": "resembles", "value": "pro"}]}"#).await;
    click(client, "#save").await;
    assert!(text(client, "#error-definition").await.contains("Unknown operator \"resembles\""));
    let beside = text(client, "[data-path=\"all[0]\"] .builder-error").await;
    assert!(beside.contains("Unknown operator"), "{beside}");

    // A segment that would contain itself: refused, the error beside the condition naming it.
    client.goto(&app.url(&format!("/segments/{id}/edit"))).await.expect("goto");
    fill(client, "#s-definition", &format!(r#"{{"any": [{{"member_of": "{id}"}}]}}"#)).await;
    click(client, "#save").await;
    assert!(text(client, "#error-definition").await.contains("refer to itself"));
    let beside = text(client, "[data-path=\"any[0]\"] .builder-error").await;
    assert!(beside.contains("refer to itself"), "{beside}");
}

/// A urlencoded form body, as a browser posts it.
fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).expect("form")
}

/// The `name="csrf" value="..."` of a page.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().expect("value").to_owned()
}

fn cookie(response: &reqwest::Response, name: &str) -> String {
    let set = response.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok());
    let found = set.into_iter().find(|v| v.starts_with(&format!("{name}="))).expect("the cookie");
    found.split(';').next().expect("pair").to_owned()
}

async fn segment_pages_need_a_session_and_a_csrf_token(backend: Backend) {
    let app = spawn_app(backend).await;
    contacts(&app).await;
    let definition = json!({"field": "plan", "op": "eq", "value": "pro"});
    let (status, saved) =
        json(app.post("/api/v1/segments", &json!({"name": "Pro", "definition": definition})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    let id = saved["id"].as_str().expect("id").to_owned();
    app.run_jobs().await;
    let pages = [
        "/segments".to_owned(),
        "/segments/new".to_owned(),
        format!("/segments/{id}"),
        format!("/segments/{id}/edit"),
        format!("/segments/{id}/members.csv"),
    ];
    for page in &pages {
        let response = app.client.get(app.url(page)).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert!(response.headers()[LOCATION].to_str().expect("location").starts_with("/login?next="), "{page}");
    }

    // Log in over plain HTTP.
    let login = app.client.get(app.url("/login")).send().await.expect("login page");
    let login_cookie = cookie(&login, "herald_login");
    let token = csrf_of(&login.text().await.expect("html"));
    let response = app
        .client
        .post(app.url("/login"))
        .header(COOKIE, login_cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[("csrf", token.as_str()), ("key", ADMIN_TOKEN), ("next", "/segments")]))
        .send()
        .await
        .expect("login");
    let session = cookie(&response, "herald_session");
    let get = |path: String| app.client.get(app.url(&path)).header(COOKIE, &session).send();
    let list = get("/segments".into()).await.expect("get").text().await.expect("html");
    assert!(list.contains("Pro") && list.contains(&id), "{list}");
    let csrf = csrf_of(&list);
    let post = |path: &str, fields: &[(&str, &str)]| {
        app.client
            .post(app.url(path))
            .header(COOKIE, &session)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(fields))
            .send()
    };

    // Forms without the session's token are refused and change nothing.
    let definition = r#"{"field": "plan", "op": "exists"}"#;
    for path in ["/segments/new", "/segments/preview", &format!("/segments/{id}/edit")] {
        for token in [None, Some("wrong")] {
            let mut fields = vec![("name", "Everyone"), ("definition", definition)];
            fields.extend(token.map(|t| ("csrf", t)));
            assert_eq!(post(path, &fields).await.expect("post").status(), StatusCode::FORBIDDEN, "{path} {token:?}");
        }
    }
    let listed = app.get("/api/v1/segments").await.json::<serde_json::Value>().await.expect("json");
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");

    // With it: the count, without script (the Count button) and as the script asks for it.
    let fields = [("csrf", csrf.as_str()), ("name", "Everyone"), ("definition", definition), ("intent", "preview")];
    let page = post("/segments/new", &fields).await.expect("post").text().await.expect("html");
    assert!(page.contains("<strong id=\"match-count\">3</strong>"), "{page}");
    let odd = r#"{"performed": "x", "times": {"at_least": "two"}}"#;
    let part = post("/segments/preview", &[("csrf", csrf.as_str()), ("definition", odd)]).await.expect("post");
    assert_eq!(part.status(), StatusCode::BAD_REQUEST);
    assert!(part.text().await.expect("html").contains("data-path=\"times.at_least\""));
    let saved = post("/segments/new", &[("csrf", csrf.as_str()), ("name", "Everyone"), ("definition", definition)])
        .await
        .expect("post");
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert!(saved.headers()[LOCATION].to_str().expect("location").starts_with("/segments/seg_"));

    // The members as CSV.
    let csv = get(format!("/segments/{id}/members.csv")).await.expect("get");
    assert!(csv.headers()[CONTENT_TYPE].to_str().expect("type").starts_with("text/csv"));
    let csv = csv.text().await.expect("csv");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains("ada@example.com") && csv.contains("cat@example.com"), "{csv}");
    app.stop().await;
}
