//! The numbers people read: a campaign's, each email step's and each message's counts and
//! rates, read in a real browser after activities are recorded; the deliverability page's
//! complaint alarm and its suppression list (each reason, the message that caused it,
//! searched, exported as CSV, removed one by one); and the suppressions API's search and
//! CSV export.

mod common;

use std::time::Duration;

use common::browser::{browser, click, element, fill, path, screenshot, start_driver, text};
use common::{ADMIN_TOKEN, Backend, TestApp, json, spawn_app};
use fantoccini::{Client, Locator};
use herald_domain::{Activity, ActivityKind, BounceKind, MessageId, PageRequest, Suppression, WorkspaceId};
use herald_server::clock::Clock;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION};
use serde_json::{Value, json};

on_both_backends!(numbers_read_back_in_the_browser, suppressions_are_searched_and_exported_through_the_api);

async fn workspace(app: &TestApp) -> WorkspaceId {
    app.store.ensure_default_workspace(app.clock.now()).await.expect("workspace").id
}

/// Records one activity of `message` now, as the mail listener, a provider's notification or
/// a tracking link would.
async fn record(app: &TestApp, message: &str, kind: ActivityKind, edit: impl FnOnce(&mut Activity)) {
    let id: MessageId = message.parse().expect("message id");
    let mut activity = Activity::new(id, kind, "test", app.clock.now());
    edit(&mut activity);
    app.app.state.email.email.record_activity(workspace(app).await, activity).await.expect("record");
}

/// An active campaign with two email steps, `welcome` then `tips`, run for four people.
/// Returns the campaign's id and its messages by (step, address).
async fn campaign_sent_to_four(app: &TestApp) -> (String, Vec<(String, String, String)>) {
    let email = |id: &str, subject: &str| json!({"id": id, "type": "email", "from": "Acme <hello@acme.test>", "subject": subject, "html": "<p>Hi</p>"});
    let document = json!({
        "name": "Onboarding", "trigger": {"type": "event", "event": "signed_up"},
        "steps": [email("welcome", "Welcome"), email("tips", "Three tips")]
    });
    let (status, campaign) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let campaign = campaign["id"].as_str().expect("id").to_owned();
    let (status, _) = json(app.post(&format!("/api/v1/campaigns/{campaign}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);
    let (_, source) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    let url = source["url"].as_str().expect("url").to_owned();
    for who in ["ada@x.test", "bob@x.test", "cy@x.test", "dee@x.test"] {
        let response = app.client.post(&url).json(&json!({"email": who, "event": "signed_up"})).send().await;
        assert_eq!(response.expect("post").status(), StatusCode::OK);
    }
    app.run_jobs().await;
    let (_, listed) = json(app.get(&format!("/api/v1/messages?campaign_id={campaign}")).await).await;
    let messages: Vec<(String, String, String)> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            let field = |name: &str| m[name].as_str().expect(name).to_owned();
            (field("step"), field("to"), field("id"))
        })
        .collect();
    assert_eq!(messages.len(), 8, "{listed}");
    (campaign, messages)
}

fn message<'a>(messages: &'a [(String, String, String)], step: &str, to: &str) -> &'a str {
    &messages.iter().find(|(s, t, _)| s == step && t == to).expect("message").2
}

async fn numbers_read_back_in_the_browser(backend: Backend) {
    let app = spawn_app(backend).await;
    let (campaign, messages) = campaign_sent_to_four(&app).await;
    let (ada, bob) = (message(&messages, "welcome", "ada@x.test"), message(&messages, "welcome", "bob@x.test"));
    let (cy, dee) = (message(&messages, "welcome", "cy@x.test"), message(&messages, "welcome", "dee@x.test"));
    // Ada opens the welcome twice and clicks; a privacy proxy opens Bob's; Cy's bounces for
    // good; Dee marks it as spam; Bob opens the tips.
    record(&app, ada, ActivityKind::Opened, |_| ()).await;
    record(&app, ada, ActivityKind::Opened, |_| ()).await;
    record(&app, ada, ActivityKind::Clicked, |a| a.url = Some("https://acme.test/pricing".into())).await;
    record(&app, bob, ActivityKind::Opened, |a| a.machine = true).await;
    record(&app, cy, ActivityKind::Bounced, |a| {
        a.bounce = Some(BounceKind::Hard);
        a.reason = Some("550 5.1.1 user unknown".into());
    })
    .await;
    record(&app, dee, ActivityKind::Complained, |a| a.reason = Some("abuse".into())).await;
    record(&app, message(&messages, "tips", "bob@x.test"), ActivityKind::Opened, |_| ()).await;
    app.run_jobs().await;

    let driver = start_driver().await;
    let client = browser(&driver).await;
    // With HERALD_SCREENSHOTS=1 the SQLite run saves the pages to docs/screenshots/.
    let shots = backend == Backend::Sqlite && std::env::var("HERALD_SCREENSHOTS").is_ok_and(|v| v == "1");
    let flow = read_the_numbers(&app, &client, &campaign, &messages, shots);
    let result = tokio::time::timeout(Duration::from_secs(90), flow).await;
    client.close().await.expect("close the browser");
    result.expect("reading the numbers took over 90 seconds");
    app.stop().await;
}

/// Text with its cells and spaces run together into single spaces.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The count and the rate of a figure of the page's numbers (`#numbers-<id>`).
async fn figure(client: &Client, id: &str) -> (String, String) {
    let value = text(client, &format!("#email-numbers #numbers-{id} .value")).await;
    let rate = match client.find(Locator::Css(&format!("#email-numbers #numbers-{id} .rate"))).await {
        Ok(rate) => rate.text().await.expect("rate"),
        Err(_) => String::new(),
    };
    (value, rate)
}

async fn read_the_numbers(
    app: &TestApp,
    client: &Client,
    campaign: &str,
    messages: &[(String, String, String)],
    shots: bool,
) {
    // The campaign page: totals over both steps, rates of the 8 messages sent.
    client.goto(&app.url(&format!("/campaigns/{campaign}"))).await.expect("goto");
    fill(client, "#key", ADMIN_TOKEN).await;
    click(client, "form button[type=submit]").await;
    assert_eq!(figure(client, "sent").await.0, "8");
    assert_eq!(path(client).await, format!("/campaigns/{campaign}"));
    assert_eq!(figure(client, "delivered").await, ("0".into(), "0%".into()));
    assert_eq!(figure(client, "bounced").await, ("1".into(), "12.5%".into()));
    assert!(text(client, "#numbers-bounced .note").await.contains("1 hard, 0 soft"));
    assert_eq!(figure(client, "opened").await, ("2".into(), "25%".into()), "Ada's welcome and Bob's tips");
    let opens = text(client, "#numbers-opened .note").await;
    assert!(opens.contains("3 opens in all") && opens.contains("machines opened 1 (1 open)"), "{opens}");
    assert_eq!(figure(client, "clicked").await, ("1".into(), "12.5%".into()));
    assert!(text(client, "#numbers-clicked .note").await.contains("50% of those opened"));
    assert_eq!(figure(client, "complained").await, ("1".into(), "12.5%".into()));
    assert_eq!(figure(client, "unsubscribed").await.0, "0");
    assert_eq!(figure(client, "converted").await, ("0".into(), "0%".into()));
    // Per step.
    let cell = |step: &'static str, figure: &'static str| async move {
        text(client, &format!("#email-steps #step-{step} td[data-figure='{figure}']")).await
    };
    assert_eq!(cell("welcome", "sent").await, "4");
    assert_eq!(cell("welcome", "bounced").await, "1 25%");
    assert_eq!(cell("welcome", "opened").await, "1 25%");
    assert_eq!(cell("welcome", "complained").await, "1 25%");
    assert_eq!(cell("tips", "sent").await, "4");
    assert_eq!(cell("tips", "opened").await, "1 25%");
    assert_eq!(cell("tips", "bounced").await, "0 0%");
    // The chart: today's bars, and today in the table under it.
    assert_eq!(text(client, "#days tbody tr td").await, "2026-01-01");
    assert_eq!(words(&text(client, "#days tbody tr").await), "2026-01-01 8 2 1 1");
    let bars = client.find_all(Locator::Css("#chart svg rect")).await.expect("bars");
    assert_eq!(bars.len(), 4, "sent, opened, clicked and bounced on one day");
    if shots {
        client.execute("document.getElementById('email').scrollIntoView()", vec![]).await.expect("scroll");
        screenshot(client, shots, "campaign-email").await;
    }

    // A step's own page.
    click(client, "#step-welcome a").await;
    assert_eq!(text(client, "#step-name").await, "welcome");
    assert_eq!(path(client).await, format!("/campaigns/{campaign}/steps/welcome"));
    assert_eq!(figure(client, "sent").await.0, "4");
    assert_eq!(figure(client, "opened").await, ("1".into(), "25%".into()));
    assert_eq!(words(&text(client, "#days tbody tr").await), "2026-01-01 4 1 1 1");

    // A message's page: its numbers and what happened to it.
    let ada = message(messages, "welcome", "ada@x.test");
    client.goto(&app.url(&format!("/messages/{ada}"))).await.expect("goto");
    assert_eq!(figure(client, "opened").await.0, "1");
    assert!(text(client, "#numbers-opened .note").await.contains("2 opens in all"));
    assert_eq!(figure(client, "clicked").await.0, "1");
    let activities = text(client, "#activities").await;
    assert!(activities.contains("sent"), "{activities}");
    assert!(activities.contains("clicked") && activities.contains("https://acme.test/pricing"), "{activities}");
    if shots {
        client.execute("document.getElementById('email-numbers').scrollIntoView()", vec![]).await.expect("scroll");
        screenshot(client, shots, "message-numbers").await;
    }
    let bob = message(messages, "welcome", "bob@x.test");
    client.goto(&app.url(&format!("/messages/{bob}"))).await.expect("goto");
    assert!(text(client, "#activities").await.contains("machine"));
    assert_eq!(figure(client, "opened").await.0, "0", "a machine's open is not a person's");

    // Deliverability: one complaint in 8 messages is far past the providers' 0.3%.
    client.goto(&app.url("/deliverability")).await.expect("goto");
    let alarm = text(client, "#complaint-alarm").await;
    assert!(alarm.contains("12.5%") && alarm.contains("0.3%"), "{alarm}");
    assert_eq!(text(client, "#rates-7 .complaint-rate").await, "12.5%");
    assert_eq!(text(client, "#rates-30 .bounce-rate").await, "12.5%");
    screenshot(client, shots, "deliverability").await;
    let list = text(client, "#suppression-list").await;
    assert!(list.contains("cy@x.test") && list.contains("hard_bounce"), "{list}");
    assert!(list.contains("dee@x.test") && list.contains("complaint"), "{list}");
    let cy = message(messages, "welcome", "cy@x.test");
    let cause = element(client, &format!("#suppression-list a.cause[href='/messages/{cy}']")).await;
    cause.click().await.expect("follow the cause");
    assert_eq!(path(client).await, format!("/messages/{cy}"));
    assert_eq!(text(client, "#message-status").await, "bounced");

    // Searched in any case.
    client.goto(&app.url("/deliverability")).await.expect("goto");
    fill(client, "#search", "CY@").await;
    click(client, "#suppression-search button[type=submit]").await;
    element(client, "#suppression-list").await;
    assert_eq!(client.find_all(Locator::Css("#suppression-list tbody tr")).await.expect("rows").len(), 1);
    assert!(text(client, "#suppression-list").await.contains("cy@x.test"));

    // Exported as CSV with the page's session: the search's rows only, then all of them.
    let session = client.get_named_cookie("herald_session").await.expect("session cookie");
    let cookie = format!("herald_session={}", session.value());
    let href = element(client, "#export-csv").await.attr("href").await.expect("href").expect("an href");
    assert_eq!(href, "/deliverability/suppressions.csv?search=CY%40");
    let rows = csv_rows(app.client.get(app.url(&href)).header(COOKIE, &cookie).send().await.expect("export")).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][..3], ["cy@x.test", "hard_bounce", "550 5.1.1 user unknown"]);
    assert_eq!(rows[1][4], cy, "the message that caused it");
    let all = app.url("/deliverability/suppressions.csv");
    let rows = csv_rows(app.client.get(&all).header(COOKIE, &cookie).send().await.expect("export")).await;
    let emails: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(emails, ["cy@x.test", "dee@x.test"]);
    // Pages need a session, and the removal form this session's token.
    for page in ["/deliverability/suppressions.csv", "/deliverability", &format!("/campaigns/{campaign}/steps/welcome")]
    {
        let response = app.client.get(app.url(page)).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page} without a session");
        assert!(response.headers()[LOCATION].to_str().expect("location").starts_with("/login?next="), "{page}");
    }
    for fields in [vec![("email", "cy@x.test")], vec![("csrf", "wrong"), ("email", "cy@x.test")]] {
        let remove = app
            .client
            .post(app.url("/deliverability/remove"))
            .header(COOKIE, &cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&fields).expect("form"));
        assert_eq!(remove.send().await.expect("post").status(), StatusCode::FORBIDDEN, "{fields:?}");
    }

    // Removed one by one.
    client.goto(&app.url("/deliverability")).await.expect("goto");
    let rows = client.find_all(Locator::Css("#suppression-list tbody tr")).await.expect("rows");
    let mut removed = false;
    for row in rows {
        if row.text().await.expect("row").contains("dee@x.test") {
            row.find(Locator::Css("form.remove button")).await.expect("remove").click().await.expect("click");
            removed = true;
            break;
        }
    }
    assert!(removed, "a remove button on Dee's row");
    client.accept_alert().await.expect("confirm the removal");
    assert!(text(client, ".notice").await.contains("Removed from the suppression list"));
    let list = text(client, "#suppression-list").await;
    assert!(list.contains("cy@x.test") && !list.contains("dee@x.test"), "{list}");
    let (_, listed) = json(app.get("/api/v1/suppressions").await).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
}

/// A CSV response's rows, its header first.
async fn csv_rows(response: reqwest::Response) -> Vec<Vec<String>> {
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[CONTENT_TYPE].to_str().expect("type").to_owned();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let body = response.bytes().await.expect("body");
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&body[..]);
    let rows: Vec<Vec<String>> =
        reader.records().map(|r| r.expect("a CSV row").iter().map(str::to_owned).collect()).collect();
    assert_eq!(rows[0], ["email", "reason", "detail", "contact_id", "message_id", "created_at"]);
    rows
}

async fn listed(app: &TestApp, query: &str) -> (Vec<String>, Value) {
    let (status, body) = json(app.get(&format!("/api/v1/suppressions?{query}")).await).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    let emails = body["data"].as_array().expect("data").iter().map(|s| s["email"].as_str().expect("email").to_owned());
    (emails.collect(), body["next_cursor"].clone())
}

async fn suppressions_are_searched_and_exported_through_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    for email in ["ada@example.com", "a_b@example.org", "bob@example.net"] {
        let (status, body) =
            json(app.post("/api/v1/suppressions", &json!({"email": email, "detail": "asked by phone"})).await).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Part of the address, in any case; `_` and `%` are only themselves.
    assert_eq!(listed(&app, "search=EXAMPLE.ORG").await.0, ["a_b@example.org"]);
    assert_eq!(listed(&app, "search=_").await.0, ["a_b@example.org"]);
    assert_eq!(listed(&app, "search=%25").await.0, Vec::<String>::new());
    assert_eq!(listed(&app, "search=").await.0.len(), 3, "an empty search is no search");
    let (first, next) = listed(&app, "search=example.&limit=1").await;
    assert_eq!(first, ["a_b@example.org"]);
    let cursor = next.as_str().expect("a next page");
    assert_eq!(listed(&app, &format!("search=example.&limit=1&cursor={cursor}")).await.0, ["ada@example.com"]);

    // The export pages through the whole list by itself.
    let ws = workspace(&app).await;
    for i in 0..600 {
        let suppression = Suppression {
            email: format!("bulk{i:03}@example.com"),
            contact_id: None,
            reason: "hard_bounce".into(),
            detail: None,
            message_id: None,
            created_at: app.clock.now(),
        };
        app.store.add_suppression(ws, &suppression, &[]).await.expect("add");
    }
    let rows = csv_rows(app.get("/api/v1/suppressions/export.csv").await).await;
    assert_eq!(rows.len(), 1 + 603);
    assert_eq!(rows[1][..3], ["a_b@example.org", "manual", "asked by phone"]);
    assert_eq!(rows[1][5], "2026-01-01T00:00:00Z");
    assert_eq!(rows.last().map(|r| r[0].as_str()), Some("bulk599@example.com"));
    let rows = csv_rows(app.get("/api/v1/suppressions/export.csv?search=BULK59").await).await;
    assert_eq!(rows.len(), 1 + 10);
    let all = app.store.list_suppressions(ws, None, PageRequest::first(500)).await.expect("list");
    assert!(all.next_cursor.is_some(), "more than one page");
    let status = app.client.get(app.url("/api/v1/suppressions/export.csv")).send().await.expect("get").status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}
