//! Campaign event webhooks (per-campaign outbound webhooks, as hosted tools offer them) end to end,
//! on both backends, against a real HTTP receiver on loopback: the subscribed events and only
//! those, once each even when the inbound event is replayed, signed with the webhook's own secret
//! (checked here with a plain HMAC, not Herald's signing code); GET in the query string, form
//! bodies, custom payloads; validation (plain http, Basic with GET, write-only secrets); inactive
//! webhooks; and the unsubscribed, suppressed, failed-call and conversion events.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method as AxumMethod, StatusCode as AxumStatus};
use base64::Engine;
use common::{Backend, TestApp, expect_error, json, spawn_app, spawn_app_full, spawn_app_with};
use herald_server::delivery::email::EmailSettings;
use herald_webhook::client::ClientSettings;
use hmac::{KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    a_campaign_calls_its_webhooks_once_per_event,
    get_form_and_custom_payloads,
    bad_webhooks_are_refused_and_secrets_stay_hidden,
    inactive_webhooks_send_nothing,
    unsubscribed_suppressed_failed_and_converted_events_fire,
    archiving_tells_the_webhooks_each_journey_exited,
);

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: Option<String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Records every request; `/gone` answers 410, everything else 200.
async fn receive(
    State(log): State<Log>,
    method: AxumMethod,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> (AxumStatus, &'static str) {
    let headers =
        headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    let seen = Seen { method: method.to_string(), path: path.clone(), query, headers, body: body.to_vec() };
    log.lock().unwrap().push(seen);
    if path == "gone" { (AxumStatus::GONE, "no such hook") } else { (AxumStatus::OK, "{\"ok\": true}") }
}

async fn receiver() -> (Log, String) {
    let log = Log::default();
    let app = Router::new().route("/{path}", axum::routing::any(receive)).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (log, base)
}

fn seen(log: &Log, path: &str) -> Vec<Seen> {
    log.lock().unwrap().iter().filter(|s| s.path == path).cloned().collect()
}

/// Creates and activates a campaign triggered by `trigger`; returns its id.
async fn campaign(app: &TestApp, document: Value) -> String {
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

fn welcome(trigger: &str) -> Value {
    json!({"name": "Summer Promotion", "trigger": {"type": "event", "event": trigger}, "entry": "every_time",
           "steps": [{"id": "welcome", "type": "email", "from": "news@acme.test", "subject": "Hi {{ first_name }}",
                      "html": "<p>Hello</p>"}]})
}

async fn add_hook(app: &TestApp, campaign: &str, hook: Value) -> Value {
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{campaign}/webhooks"), &hook).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn source(app: &TestApp) -> String {
    let (status, body) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["url"].as_str().unwrap().to_owned()
}

async fn send(app: &TestApp, url: &str, key: Option<&str>, body: Value) -> Value {
    let mut request = app.client.post(url).json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let (status, body) = json(request.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Checks both signature schemes the way a receiver would, with the shared secret's bytes.
fn assert_signed(seen: &Seen, secret: &[u8]) {
    let h = &seen.headers;
    let id = &h["webhook-id"];
    let timestamp = &h["webhook-timestamp"];
    assert_eq!(&h["idempotency-key"], id);
    assert_eq!(&h["x-herald-timestamp"], timestamp);
    let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", &seen.body].concat();
    let v1 = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(hmac(secret, &signed)));
    assert_eq!(h["webhook-signature"], v1, "Standard Webhooks signature with the webhook's secret");
    let v0: String = hmac(secret, &[b"v0:", timestamp.as_bytes(), b":", &seen.body].concat())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(h["x-herald-signature"], v0, "Herald v0 signature with the webhook's secret");
}

async fn a_campaign_calls_its_webhooks_once_per_event(backend: Backend) {
    let app = spawn_app(backend).await;
    let (log, base) = receiver().await;
    let campaign = campaign(&app, welcome("signed_up")).await;
    let secret = "our-shared-secret-0123456789";
    let hook = add_hook(
        &app,
        &campaign,
        json!({"url": format!("{base}/events"), "secret": secret,
               "events": ["contact_entered", "email_sent", "contact_exited"]}),
    )
    .await;
    assert_eq!((hook["secret_set"].as_bool(), hook.get("secret")), (Some(true), None), "{hook}");
    let url = source(&app).await;
    let event = json!({"email": "ada@example.com", "user_id": "u-1", "event": "signed_up",
                       "data": {"first_name": "Ada", "plan": "pro"}});
    let accepted = send(&app, &url, Some("evt-1"), event.clone()).await;
    app.run_jobs().await;
    // The same inbound event again (its idempotency key): nothing new.
    send(&app, &url, Some("evt-1"), event).await;
    app.run_jobs().await;

    let calls = seen(&log, "events");
    let mut kinds: Vec<String> = calls.iter().map(|s| s.json()["event"].as_str().unwrap().to_owned()).collect();
    kinds.sort();
    assert_eq!(kinds, ["contact_entered", "contact_exited", "email_sent"], "each subscribed event once");
    let by_kind = |kind: &str| calls.iter().find(|s| s.json()["event"] == kind).unwrap().clone();
    let entered = by_kind("contact_entered").json();
    let journey = entered["journey_id"].as_str().unwrap().to_owned();
    assert!(journey.starts_with("jrn_"), "{entered}");
    assert_eq!(entered["campaign"], json!({"id": campaign, "name": "Summer Promotion"}));
    assert_eq!(entered["contact"]["id"], accepted["contact_id"]);
    assert_eq!(entered["contact"]["email"], "ada@example.com");
    assert_eq!(entered["contact"]["user_id"], "u-1");
    assert_eq!(entered["data"]["event_id"], accepted["event_id"], "{entered}");
    assert!(entered["timestamp"].as_str().is_some_and(|t| t.starts_with("2026-01-01T")), "{entered}");
    let sent = by_kind("email_sent").json();
    assert_eq!(sent["journey_id"], journey.as_str());
    assert_eq!(sent["data"]["status"], "sent");
    assert_eq!(sent["data"]["step"], "welcome");
    assert_eq!(sent["data"]["subject"], "Hi Ada");
    assert!(sent["data"]["message_id"].as_str().unwrap().starts_with("msg_"), "{sent}");
    assert_eq!(by_kind("contact_exited").json()["data"], json!({"reason": "completed"}));
    for call in &calls {
        assert_eq!((call.method.as_str(), call.headers["content-type"].as_str()), ("POST", "application/json"));
        assert_signed(call, secret.as_bytes());
    }
    let ids: std::collections::HashSet<&String> = calls.iter().map(|c| &c.headers["webhook-id"]).collect();
    assert_eq!(ids.len(), 3, "one idempotency key per event");

    // The delivery log filters by the webhook; a call resent keeps its key.
    let hook_id = hook["id"].as_str().unwrap();
    let (status, list) = json(app.get(&format!("/api/v1/webhook-deliveries?campaign_webhook={hook_id}")).await).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let deliveries = list["data"].as_array().unwrap();
    assert_eq!(deliveries.len(), 3, "{list}");
    assert!(deliveries.iter().all(|d| d["campaign_webhook_id"] == hook_id && d["status"] == "succeeded"), "{list}");
    let first = deliveries[0]["id"].as_str().unwrap();
    let (status, _) = json(app.post(&format!("/api/v1/webhook-deliveries/{first}/resend"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);
    app.run_jobs().await;
    let calls = seen(&log, "events");
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[3].headers["webhook-id"], deliveries[0]["idempotency_key"].as_str().unwrap());
    assert_signed(&calls[3], secret.as_bytes());
    app.stop().await;
}

async fn get_form_and_custom_payloads(backend: Backend) {
    let app = spawn_app(backend).await;
    let (log, base) = receiver().await;
    let campaign = campaign(&app, welcome("signed_up")).await;
    let mapping = json!({"email": {"from": "contact.email"}, "campaign_name": {"from": "campaign.name"},
                         "source": {"value": "webhook"}, "plan": {"from": "contact.attributes.plan"}});
    add_hook(
        &app,
        &campaign,
        json!({"url": format!("{base}/get?key=1"), "method": "GET", "payload": mapping,
                                     "events": ["contact_entered"]}),
    )
    .await;
    add_hook(
        &app,
        &campaign,
        json!({"url": format!("{base}/form"), "content_type": "form",
                                     "events": ["contact_entered"]}),
    )
    .await;
    add_hook(
        &app,
        &campaign,
        json!({"url": format!("{base}/custom"), "payload": mapping,
                                     "auth": "basic", "username": "herald", "password": "pa55",
                                     "events": ["contact_entered"]}),
    )
    .await;
    let url = source(&app).await;
    send(&app, &url, None, json!({"email": "bo@example.com", "event": "signed_up", "data": {"plan": "pro team"}}))
        .await;
    app.run_jobs().await;

    let get = seen(&log, "get");
    assert_eq!(get.len(), 1);
    assert_eq!(get[0].method, "GET");
    assert!(get[0].body.is_empty(), "GET carries no body");
    assert!(!get[0].headers.contains_key("content-type"));
    let query: HashMap<String, String> =
        url_pairs(get[0].query.as_deref().unwrap()).into_iter().collect::<HashMap<_, _>>();
    assert_eq!(
        query,
        HashMap::from([
            ("key".into(), "1".into()),
            ("email".into(), "bo@example.com".into()),
            ("campaign_name".into(), "Summer Promotion".into()),
            ("source".into(), "webhook".into()),
            ("plan".into(), "pro team".into()),
        ])
    );
    assert!(get[0].headers.contains_key("x-herald-signature"), "signed over the empty body");

    let form = seen(&log, "form");
    assert_eq!(form[0].headers["content-type"], "application/x-www-form-urlencoded");
    let fields: HashMap<String, String> = url_pairs(std::str::from_utf8(&form[0].body).unwrap()).into_iter().collect();
    assert_eq!(fields["event"], "contact_entered");
    assert_eq!(fields["contact[email]"], "bo@example.com");
    assert_eq!(fields["campaign[name]"], "Summer Promotion");
    assert_eq!(fields["contact[attributes][plan]"], "pro team");

    let custom = seen(&log, "custom");
    assert_eq!(
        custom[0].json(),
        json!({"email": "bo@example.com", "campaign_name": "Summer Promotion", "source": "webhook", "plan": "pro team"})
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("herald:pa55");
    assert_eq!(custom[0].headers["authorization"], format!("Basic {basic}"));
    // The log masks the credentials.
    let (_, list) = json(app.get("/api/v1/webhook-deliveries").await).await;
    let custom_delivery = list["data"].as_array().unwrap().iter().find(|d| d["endpoint"] == base_endpoint(&base));
    assert!(custom_delivery.is_some(), "{list}");
    let (_, one) = json(
        app.get(&format!("/api/v1/webhook-deliveries/{}", custom_delivery.unwrap()["id"].as_str().unwrap())).await,
    )
    .await;
    assert!(!one.to_string().contains("pa55"), "{one}");
    app.stop().await;
}

fn url_pairs(text: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{text}")).unwrap().query_pairs().into_owned().collect()
}

fn base_endpoint(base: &str) -> String {
    let url = reqwest::Url::parse(base).unwrap();
    format!("http://{}:{}", url.host_str().unwrap(), url.port().unwrap())
}

async fn bad_webhooks_are_refused_and_secrets_stay_hidden(backend: Backend) {
    // The default policy: https only.
    let app = spawn_app_full(backend, EmailSettings::default(), ClientSettings::default()).await;
    let campaign = campaign(&app, welcome("signed_up")).await;
    let path = format!("/api/v1/campaigns/{campaign}/webhooks");
    let ok = json!({"url": "https://hooks.example.com/in", "events": ["email_sent"]});
    let refused = [
        (json!({"url": "http://hooks.example.com/in", "events": ["email_sent"]}), "url", "https://"),
        (json!({"url": "https://10.0.0.1/in", "events": ["email_sent"]}), "url", "private"),
        (json!({"url": "https://hooks.example.com/in"}), "events", "at least one"),
        (json!({"url": "https://hooks.example.com/in", "events": ["email_teleported"]}), "events[0]", "unknown event"),
        (
            json!({"url": "https://hooks.example.com/in", "events": ["email_sent"], "method": "GET", "auth": "basic",
                   "username": "u", "password": "p"}),
            "auth",
            "only available with method POST",
        ),
        (
            json!({"url": "https://hooks.example.com/in", "events": ["email_sent"], "method": "PUT"}),
            "method",
            "POST or GET",
        ),
        (
            json!({"url": "https://hooks.example.com/in", "events": ["email_sent"], "content_type": "xml"}),
            "content_type",
            "json or form",
        ),
        (
            json!({"url": "https://hooks.example.com/in", "events": ["email_sent"], "auth": "basic"}),
            "username",
            "required",
        ),
        (
            json!({"url": "https://hooks.example.com/in", "events": ["email_sent"], "secret": "short"}),
            "secret",
            "16 to 256",
        ),
        (
            json!({"url": "https://hooks.example.com/in", "events": ["email_sent"],
                   "payload": {"email": {"from": "contact.password"}}}),
            "payload.email.from",
            "unknown source",
        ),
    ];
    for (body, field, words) in refused {
        let error = expect_error(app.post(&path, &body).await, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(error["field"], field, "{body}: {error}");
        assert!(error["message"].as_str().unwrap().contains(words), "{body}: {error}");
    }
    let missing = "/api/v1/campaigns/cmp_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b/webhooks";
    expect_error(app.post(missing, &ok).await, StatusCode::NOT_FOUND, "not_found").await;

    // The secret and the password are never returned; a blank secret keeps the stored one.
    let mut body = ok.clone();
    body["secret"] = json!("the-first-secret-value");
    body["auth"] = json!("basic");
    body["username"] = json!("herald");
    body["password"] = json!("pa55");
    let created = add_hook(&app, &campaign, body).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let one = format!("{path}/{id}");
    for shown in [created.clone(), json(app.get(&one).await).await.1, json(app.get(&path).await).await.1] {
        let text = shown.to_string();
        assert!(!text.contains("the-first-secret-value") && !text.contains("pa55"), "{text}");
    }
    assert_eq!((created["secret_set"].as_bool(), created["password_set"].as_bool()), (Some(true), Some(true)));
    let patch = |body: Value| app.request(Method::PATCH, &one).json(&body).send();
    let (status, updated) = json(patch(json!({"secret": "", "active": false})).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!((updated["secret_set"].as_bool(), updated["active"].as_bool()), (Some(true), Some(false)));
    let stored = |app: &TestApp| {
        let store = app.store.clone();
        let (campaign, id) = (campaign.parse().unwrap(), id.parse().unwrap());
        async move {
            let ws = store.ensure_default_workspace(common::START).await.unwrap().id;
            store.get_campaign_webhook(ws, campaign, id).await.unwrap()
        }
    };
    let hook = stored(&app).await;
    assert_eq!(hook.secret.as_deref(), Some("the-first-secret-value"), "a blank secret keeps the stored one");
    assert_eq!(hook.basic_auth, Some(("herald".into(), "pa55".into())), "an absent password keeps the stored one");
    // Switching to GET with Basic still on is refused; turning Basic off with it is not.
    let error =
        expect_error(patch(json!({"method": "GET"})).await.unwrap(), StatusCode::BAD_REQUEST, "validation_failed")
            .await;
    assert_eq!(error["field"], "auth");
    let (status, updated) = json(patch(json!({"method": "GET", "auth": "none", "secret": null})).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!((updated["auth"].as_str(), updated["secret_set"].as_bool()), (Some("none"), Some(false)));
    assert_eq!(stored(&app).await.basic_auth, None);
    let error = expect_error(
        patch(json!({"url": "http://x.example/"})).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(error["field"], "url");

    let deleted = app.delete(&one).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    expect_error(app.get(&one).await, StatusCode::NOT_FOUND, "not_found").await;
    app.stop().await;
}

async fn inactive_webhooks_send_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (log, base) = receiver().await;
    let campaign = campaign(&app, welcome("signed_up")).await;
    let hook = add_hook(
        &app,
        &campaign,
        json!({"url": format!("{base}/paused"), "active": false,
               "events": ["contact_entered", "email_sent", "contact_exited"]}),
    )
    .await;
    let url = source(&app).await;
    send(&app, &url, None, json!({"email": "cy@example.com", "event": "signed_up"})).await;
    app.run_jobs().await;
    assert!(seen(&log, "paused").is_empty(), "an inactive webhook sends nothing");
    // Active again: the next journey's events are sent.
    let path = format!("/api/v1/campaigns/{campaign}/webhooks/{}", hook["id"].as_str().unwrap());
    let (status, _) =
        json(app.request(Method::PATCH, &path).json(&json!({"active": true})).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    send(&app, &url, None, json!({"email": "cy@example.com", "event": "signed_up"})).await;
    app.run_jobs().await;
    assert_eq!(seen(&log, "paused").len(), 3);
    app.stop().await;
}

async fn unsubscribed_suppressed_failed_and_converted_events_fire(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (log, base) = receiver().await;
    let document = json!({
    "name": "Onboarding", "trigger": {"type": "event", "event": "signed_up"}, "entry": "every_time",
    "goal": {"event": "upgraded"},
    "steps": [
        {"id": "hello", "type": "email", "from": "news@acme.test", "subject": "Hello", "html": "<p>Hi</p>"},
        {"id": "crm", "type": "webhook", "url": format!("{base}/gone"), "body": "{}"},
        {"type": "wait", "duration": "1d"},
        {"type": "set_attribute", "attribute": "onboarded", "value": "yes"},
    ]});
    let campaign = campaign(&app, document).await;
    add_hook(
        &app,
        &campaign,
        json!({"url": format!("{base}/events"),
               "events": ["contact_unsubscribed", "email_suppressed", "webhook_failed", "contact_converted",
                          "contact_exited"]}),
    )
    .await;
    let url = source(&app).await;
    send(&app, &url, None, json!({"email": "di@example.com", "event": "signed_up"})).await;
    app.run_jobs().await;
    let events = |kind: &str| -> Vec<Value> {
        seen(&log, "events").iter().map(Seen::json).filter(|b| b["event"] == kind).collect()
    };
    let failed = events("webhook_failed");
    assert_eq!(failed.len(), 1, "the step's 410 is a final failure");
    assert_eq!(
        (failed[0]["data"]["status"].as_str(), failed[0]["data"]["last_status"].as_u64()),
        (Some("failed"), Some(410))
    );
    assert_eq!(failed[0]["data"]["step"], "crm");
    assert!(failed[0]["data"]["delivery_id"].as_str().unwrap().starts_with("whd_"));

    send(&app, &url, None, json!({"email": "di@example.com", "event": "upgraded"})).await;
    app.run_jobs().await;
    let converted = events("contact_converted");
    assert_eq!(converted.len(), 1);
    assert_eq!(
        (converted[0]["data"]["goal"].as_str(), converted[0]["data"]["exited"].as_bool()),
        (Some("upgraded"), Some(true))
    );

    let exited = events("contact_exited");
    assert_eq!(exited.len(), 1, "the goal exits the journey");
    assert_eq!(exited[0]["data"], json!({"reason": "converted"}));
    assert_eq!(exited[0]["journey_id"], converted[0]["journey_id"]);

    // The contact unsubscribes through the link in the email.
    let (_, messages) = json(app.get("/api/v1/messages").await).await;
    let message = &messages["data"][0];
    let (_, message) = json(app.get(&format!("/api/v1/messages/{}", message["id"].as_str().unwrap())).await).await;
    let header = message["headers"]["List-Unsubscribe"].as_str().unwrap();
    let link = header.split(['<', '>']).find(|p| p.starts_with("http")).unwrap().to_owned();
    for _ in 0..2 {
        let response = app.client.post(&link).body("List-Unsubscribe=One-Click").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    app.run_jobs().await;
    let unsubscribed = events("contact_unsubscribed");
    assert_eq!(unsubscribed.len(), 1, "unsubscribing twice is one event");
    assert_eq!(unsubscribed[0]["contact"]["email"], "di@example.com");
    assert_eq!(unsubscribed[0]["data"]["reason"], "unsubscribed");

    // The next journey's email is suppressed.
    send(&app, &url, None, json!({"email": "di@example.com", "event": "signed_up"})).await;
    app.run_jobs().await;
    let suppressed = events("email_suppressed");
    assert_eq!(suppressed.len(), 1);
    assert_eq!(
        (suppressed[0]["data"]["status"].as_str(), suppressed[0]["data"]["step"].as_str()),
        (Some("suppressed"), Some("hello"))
    );
    assert!(events("email_sent").is_empty(), "not subscribed");
    app.stop().await;
}

async fn archiving_tells_the_webhooks_each_journey_exited(backend: Backend) {
    let app = spawn_app(backend).await;
    let (log, base) = receiver().await;
    let document = json!({"name": "Slow drip", "trigger": {"type": "event", "event": "signed_up"},
        "steps": [{"type": "wait", "duration": "3d"},
                  {"type": "email", "from": "news@acme.test", "subject": "Hi", "html": "<p>Hi</p>"}]});
    let campaign = campaign(&app, document).await;
    add_hook(&app, &campaign, json!({"url": format!("{base}/exits"), "events": ["contact_exited"]})).await;
    let url = source(&app).await;
    for who in ["ada@example.com", "bob@example.com"] {
        send(&app, &url, None, json!({"email": who, "event": "signed_up"})).await;
    }
    app.run_jobs().await;
    assert!(seen(&log, "exits").is_empty(), "both journeys are waiting");

    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{campaign}/archive"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.run_jobs().await;
    let calls = seen(&log, "exits");
    let mut who: Vec<String> =
        calls.iter().map(|c| c.json()["contact"]["email"].as_str().unwrap_or_default().to_owned()).collect();
    who.sort();
    assert_eq!(who, ["ada@example.com", "bob@example.com"], "one call per exited journey");
    for call in &calls {
        let body = call.json();
        assert_eq!(body["event"], "contact_exited");
        assert_eq!(body["data"], json!({"reason": "campaign archived"}));
        assert_eq!(body["campaign"]["id"], campaign.as_str());
    }

    // Days later nothing more is sent: the journeys are over.
    app.clock.advance(std::time::Duration::from_secs(4 * 86_400));
    app.run_jobs().await;
    assert_eq!(seen(&log, "exits").len(), 2);
    app.stop().await;
}
