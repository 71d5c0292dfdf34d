//! Open and click tracking end to end, on both backends: campaign mail goes through a real
//! SMTP server (Python's aiosmtpd) and is read with Python's email package; the open pixel is
//! fetched as a mail client and as Gmail's image proxy fetch it; a real Chromium follows a
//! tracked link to a local page that was in the message; tampered tokens get 404; a step
//! with tracking switched off is sent as written.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::RawQuery;
use axum::response::Html;
use common::browser::{browser, start_driver};
use common::mail::decoded_headers;
use common::{Backend, TestApp, json, spawn_app_with};
use fantoccini::Locator;
use herald_email::testing::dns::DnsServer;
use herald_email::testing::smtp::{Received, SinkOptions, SmtpSink};
use herald_server::delivery::email::EmailSettings;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(tracked_mail_counts_opens_and_clicks_and_leaves_unsubscribe_alone);

const DOMAIN: &str = "mail.acme.test";
const PERSON: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)";
const GMAIL_PROXY: &str = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";

/// A local web page for tracked links to lead to; records the query strings it was asked with.
async fn landing_page() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/landing",
        axum::routing::get(move |RawQuery(query): RawQuery| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(query.unwrap_or_default());
                Html("<!doctype html><title>Landed</title><h1 id=\"landed\">You landed</h1>")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/landing", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// An app sending through the sink from a verified domain.
async fn sending_app(backend: Backend, dns: &DnsServer, sink: &SmtpSink) -> (TestApp, String) {
    let app =
        spawn_app_with(backend, EmailSettings { dns_resolver: Some(dns.addr()), ..EmailSettings::default() }).await;
    let transport = json!({"host": "127.0.0.1", "port": sink.port(), "security": "none"});
    let (status, body) =
        json(app.request(Method::PUT, "/api/v1/transport").json(&transport).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, domain) = json(app.post("/api/v1/domains", &json!({"name": DOMAIN})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{domain}");
    for record in domain["records"].as_array().unwrap() {
        dns.set_txt(record["name"].as_str().unwrap(), &[record["value"].as_str().unwrap()]);
    }
    let path = format!("/api/v1/domains/{}/verify", domain["id"].as_str().unwrap());
    let (_, verified) = json(app.post(&path, &json!({})).await).await;
    assert_eq!(verified["status"], "verified", "{verified}");
    let (status, body) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (app, body["url"].as_str().unwrap().to_owned())
}

async fn activate(app: &TestApp, document: Value) {
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let path = format!("/api/v1/campaigns/{}/activate", body["id"].as_str().unwrap());
    let (status, body) = json(app.post(&path, &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The `href`s of a message's HTML, as written.
fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"").skip(1).map(|s| s[..s.find('"').unwrap()].to_owned()).collect()
}

/// The decoded message whose subject is `subject`.
fn message(received: &[Received], subject: &str) -> Value {
    received
        .iter()
        .map(|r| decoded_headers(&r.data))
        .find(|m| m["Subject"] == subject)
        .unwrap_or_else(|| panic!("no message {subject:?}"))
}

/// The contact events named `name`, oldest first.
async fn events(app: &TestApp, name: &str) -> Vec<Value> {
    let (status, body) = json(app.get(&format!("/api/v1/events?name={name}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut list = body["data"].as_array().unwrap().clone();
    list.reverse();
    list
}

async fn tracked_mail_counts_opens_and_clicks_and_leaves_unsubscribe_alone(backend: Backend) {
    let dns = DnsServer::start().await.unwrap();
    let sink = SmtpSink::start_with(SinkOptions::default()).unwrap();
    let (app, source) = sending_app(backend, &dns, &sink).await;
    let (landing, landed) = landing_page().await;
    let html = format!(
        "<html><body><p>Hi {{{{ first_name }}}}</p><p><a href=\"{landing}?a=1&amp;b=2\">See it</a> \
         <a href=\"mailto:help@acme.test\">Write to us</a></p>\
         <p><a href=\"{{{{ unsubscribe_url }}}}\">Unsubscribe</a></p></body></html>"
    );
    let step = |id: &str, subject: &str| json!({"id": id, "type": "email", "from": format!("news@{DOMAIN}"), "subject": subject, "html": html});
    activate(
        &app,
        json!({"name": "Tracked", "trigger": {"type": "event", "event": "signed_up"},
                          "steps": [step("tracked", "Tracked")]}),
    )
    .await;
    let mut plain = step("plain", "Plain");
    plain["track_opens"] = json!(false);
    plain["track_clicks"] = json!(false);
    activate(&app, json!({"name": "Plain", "trigger": {"type": "event", "event": "signed_up"}, "steps": [plain]}))
        .await;
    let event = json!({"email": "ada@example.com", "event": "signed_up", "data": {"first_name": "Ada"}});
    assert_eq!(app.client.post(&source).json(&event).send().await.unwrap().status(), StatusCode::OK);
    app.run_jobs().await;
    let received = sink.wait_for(2, Duration::from_secs(10)).await;

    // Tracked: the link goes through the redirect, the pixel sits before </body>; mailto, the
    // unsubscribe link, List-Unsubscribe and the text part are as written.
    let tracked = message(&received, "Tracked");
    let tracked_html = tracked["html"].as_str().unwrap();
    let list_unsubscribe = tracked["List-Unsubscribe"].as_str().unwrap();
    let unsubscribe = list_unsubscribe.split(['<', '>']).find(|p| p.starts_with("http")).unwrap();
    assert!(unsubscribe.starts_with(&app.url("/unsubscribe/")), "{list_unsubscribe}");
    let links = hrefs(tracked_html);
    assert_eq!(links.len(), 3, "{tracked_html}");
    let click = links[0].clone();
    assert!(click.starts_with(&app.url("/t/c/")), "{tracked_html}");
    assert_eq!((links[1].as_str(), links[2].as_str()), ("mailto:help@acme.test", unsubscribe));
    let pixel = tracked_html.split("<img src=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert!(pixel.starts_with(&app.url("/t/o/")), "{tracked_html}");
    assert!(tracked_html.contains("alt=\"\" style=\"display:block;border:0\"></body>"), "{tracked_html}");
    assert!(tracked["text"].as_str().unwrap().contains(&format!("{landing}?a=1&b=2")), "{tracked}");
    assert!(!tracked["text"].as_str().unwrap().contains("/t/"), "{tracked}");

    // Switched off: sent as written.
    let plain = message(&received, "Plain");
    let plain_html = plain["html"].as_str().unwrap();
    assert!(!plain_html.contains("/t/") && !plain_html.contains("<img"), "{plain_html}");
    assert_eq!(hrefs(plain_html)[0], format!("{landing}?a=1&amp;b=2"));

    // The pixel: a person's open and Gmail's proxy's, told apart; HEAD records nothing.
    for agent in [PERSON, GMAIL_PROXY] {
        let response = app.client.get(&pixel).header(USER_AGENT, agent).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "image/gif");
        assert!(response.headers()[CACHE_CONTROL].to_str().unwrap().contains("no-store"));
        let gif = response.bytes().await.unwrap();
        assert!(gif.starts_with(b"GIF89a") && gif.len() < 64, "{gif:?}");
    }
    let head = app.client.head(&pixel).header(USER_AGENT, PERSON).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    // Each hit is durable before its answer; the job committed with it records what it means.
    app.run_jobs().await;
    let opens = events(&app, "email_opened").await;
    // Each hit's batch has its own job, so the two opens may be recorded in either order.
    let mut machine: Vec<_> = opens.iter().map(|e| e["properties"]["machine"].as_bool()).collect();
    machine.sort();
    assert_eq!(machine, [Some(false), Some(true)], "{opens:?}");
    assert_eq!(opens[0]["properties"]["step"], "tracked");
    assert_eq!(opens[0]["properties"]["source"], "tracking");

    // Tampered or unknown tokens: 404, and nothing recorded.
    let token = click.rsplit('/').next().unwrap();
    // The last character changed to another (each URL's own: one that already ends in `A`
    // gets a `B`).
    let flip_last = |url: &str| {
        let flipped = if url.ends_with('A') { 'B' } else { 'A' };
        format!("{}{flipped}", &url[..url.len() - 1])
    };
    let tampered = [
        flip_last(&click),
        app.url("/t/c/not-a-token"),
        app.url(&format!("/t/c/{}", "A".repeat(5000))),
        app.url(&format!("/t/o/{token}")),
        flip_last(&pixel),
    ];
    for url in &tampered {
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{url}");
        assert!(response.text().await.unwrap().contains("not valid"));
    }

    // The redirect, without a browser: a 302 to the page the message linked, entities decoded.
    let response = app.client.get(&click).header(USER_AGENT, PERSON).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()[LOCATION].to_str().unwrap(), format!("{landing}?a=1&b=2"));

    // A real browser follows the tracked link and lands on the page.
    let driver = start_driver().await;
    let client = browser(&driver).await;
    client.goto(&click).await.unwrap();
    let heading = client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("#landed")).await.unwrap();
    assert_eq!(heading.text().await.unwrap(), "You landed");
    assert_eq!(client.current_url().await.unwrap().as_str(), format!("{landing}?a=1&b=2"));
    client.close().await.unwrap();
    assert_eq!(*landed.lock().unwrap(), ["a=1&b=2"]);
    app.run_jobs().await;
    let clicks = events(&app, "email_clicked").await;
    assert_eq!(clicks.len(), 2, "{clicks:?}");
    assert!(clicks.iter().all(|c| c["properties"]["url"] == format!("{landing}?a=1&b=2")), "{clicks:?}");
    assert_eq!(events(&app, "email_opened").await.len(), 2, "tampered tokens recorded nothing");

    // The unsubscribe link in the message still works as it is.
    assert_eq!(app.client.get(unsubscribe).send().await.unwrap().status(), StatusCode::OK);
    app.stop().await;
}
