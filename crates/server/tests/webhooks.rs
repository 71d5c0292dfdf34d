//! Webhook steps end to end, on both backends, against real HTTP receivers on loopback:
//! retries with one effect and one idempotency key, a final refusal, a hanging endpoint, a
//! response field landing on the contact, branches on the outcome, signatures of step calls,
//! action runs and campaign event webhooks checked by two independent verifiers (the
//! `standardwebhooks` package and a `v0` check from the recipe), and the outbound address policy.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use base64::Engine;
use common::{Backend, TestApp, json, spawn_app_full, spawn_app_with};
use herald_server::clock::Clock;
use herald_server::delivery::email::EmailSettings;
use herald_webhook::client::ClientSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    retries_make_one_effect_and_the_response_lands_on_the_contact,
    final_refusals_and_timeouts_are_branched_on,
    signatures_verify_with_an_independent_library,
    private_addresses_and_plain_http_are_refused_by_default,
    a_recovered_endpoint_gets_its_backlog_at_once,
    a_hanging_endpoint_holds_up_no_other,
    saved_actions_are_reused_and_keep_their_secrets,
    conversions_are_credited_to_the_last_email_or_conversion_webhook,
    draft_steps_hold_journeys_until_sent_or_skipped,
    an_endpoint_failing_for_days_is_disabled_until_enabled,
    a_saved_action_runs_for_one_contact_outside_any_campaign,
    deliveries_filter_by_action_campaign_and_step,
    inline_step_secrets_are_never_returned_yet_sent,
    a_call_answered_at_once_is_made_and_followed_in_its_step_run,
    a_call_whose_journey_moves_meanwhile_is_still_logged,
    a_rotated_key_signs_beside_its_successor_until_it_retires,
    a_call_whose_request_fails_to_render_is_logged_failed,
);

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// `/recovering` answers 503 while this is set.
    down: Arc<AtomicBool>,
    /// Requests being answered by `/slow`, and the most at once.
    slow_in_flight: Arc<AtomicUsize>,
    slow_max: Arc<AtomicUsize>,
    /// For each request to `/ok`, how many `/slow` requests were in flight.
    slow_during_ok: Arc<Mutex<Vec<usize>>>,
    /// A request `/leave` sends (the contact's deletion) before it answers.
    on_leave: Arc<Mutex<Option<reqwest::RequestBuilder>>>,
}

impl Receiver {
    fn seen(&self, path: &str) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.path == path).cloned().collect()
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let headers: HashMap<String, String> =
        headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    let count = {
        let mut seen = receiver.seen.lock().unwrap();
        seen.push(Seen { path: path.clone(), headers, body: body.to_vec() });
        seen.iter().filter(|s| s.path == path).count()
    };
    match path.as_str() {
        // 500 twice, then 200 with a body whose field lands on the contact.
        "flaky" if count <= 2 => (AxumStatus::INTERNAL_SERVER_ERROR, "try later".to_owned()).into_response(),
        "flaky" => {
            (AxumStatus::OK, [("content-type", "application/json")], r#"{"lead_id": "L-7", "amount": 5}"#.to_owned())
                .into_response()
        }
        "gone" => (AxumStatus::GONE, "no such hook".to_owned()).into_response(),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            (AxumStatus::OK, String::new()).into_response()
        }
        "recovering" if receiver.down.load(Ordering::SeqCst) => {
            (AxumStatus::SERVICE_UNAVAILABLE, "down".to_owned()).into_response()
        }
        "slow" => {
            let now = receiver.slow_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            receiver.slow_max.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(600)).await;
            receiver.slow_in_flight.fetch_sub(1, Ordering::SeqCst);
            (AxumStatus::OK, "{}".to_owned()).into_response()
        }
        "leave" => {
            let request = receiver.on_leave.lock().unwrap().take();
            if let Some(request) = request {
                assert!(request.send().await.unwrap().status().is_success());
            }
            (AxumStatus::OK, "{}".to_owned()).into_response()
        }
        "ok" => {
            receiver.slow_during_ok.lock().unwrap().push(receiver.slow_in_flight.load(Ordering::SeqCst));
            (AxumStatus::OK, "{}".to_owned()).into_response()
        }
        _ => (AxumStatus::OK, "{}".to_owned()).into_response(),
    }
}

async fn receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    let app = Router::new().route("/{path}", axum::routing::any(receive)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, base)
}

async fn source(app: &TestApp) -> String {
    let (status, body) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["url"].as_str().unwrap().to_owned()
}

async fn activate(app: &TestApp, steps: Value) {
    let document = json!({"name": "Hooks", "trigger": {"type": "event", "event": "go"}, "steps": steps});
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn send(app: &TestApp, url: &str, body: Value) -> Value {
    let (status, body) = json(app.client.post(url).json(&body).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn contact(app: &TestApp, id: &str) -> Value {
    json(app.get(&format!("/api/v1/contacts/{id}")).await).await.1
}

async fn deliveries(app: &TestApp) -> Vec<Value> {
    let (status, body) = json(app.get("/api/v1/webhook-deliveries").await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn hook(id: &str, url: &str) -> Value {
    json!({"id": id, "type": "webhook", "url": url, "timeout": "1s",
           "body": "{\"email\": {{ email | json }}, \"customer\": {{ customer | json }}}"})
}

async fn retries_make_one_effect_and_the_response_lands_on_the_contact(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    let mut crm = hook("crm", &format!("{base}/flaky"));
    crm["set_attributes"] =
        json!({"lead_id": "{{ response.lead_id }}", "score": "{{ customer.score | plus: response.amount }}"});
    crm["log_response_body"] = json!(true);
    activate(&app, json!([crm, {"id": "after", "type": "set_attribute", "attribute": "after_hook", "value": "{{ custom_variables.last_webhook.outcome }}"}]))
        .await;
    let url = source(&app).await;
    let accepted = send(&app, &url, json!({"email": "ada@example.com", "event": "go", "data": {"score": 10}})).await;
    let contact_id = accepted["contact_id"].as_str().unwrap();
    app.run_jobs().await;
    assert_eq!(receiver.seen("flaky").len(), 1);
    // Retries follow the schedule on the manual clock.
    for _ in 0..4 {
        app.clock.advance(Duration::from_secs(600));
        app.run_jobs().await;
    }
    let seen = receiver.seen("flaky");
    assert_eq!(seen.len(), 3, "500, 500, 200");
    let keys: Vec<&String> = seen.iter().map(|s| &s.headers["idempotency-key"]).collect();
    assert!(keys.iter().all(|k| *k == keys[0]), "one idempotency key across retries: {keys:?}");
    assert_eq!(seen[0].headers["webhook-id"], *keys[0]);
    let body: Value = serde_json::from_slice(&seen[2].body).unwrap();
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["customer"]["score"], 10);
    assert_eq!(seen[2].headers["content-type"], "application/json");

    let attributes = &contact(&app, contact_id).await["attributes"];
    assert_eq!(
        (attributes["lead_id"].as_str(), attributes["score"].as_str()),
        (Some("L-7"), Some("15")),
        "{attributes}"
    );
    assert_eq!(attributes["after_hook"], "succeeded");
    let list = deliveries(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!((list[0]["status"].as_str(), list[0]["attempt_count"].as_u64()), (Some("succeeded"), Some(3)));
    let id = list[0]["id"].as_str().unwrap();
    let (_, one) = json(app.get(&format!("/api/v1/webhook-deliveries/{id}")).await).await;
    let attempts = one["attempts"].as_array().unwrap();
    assert_eq!(attempts.iter().map(|a| a["status"].as_u64().unwrap()).collect::<Vec<_>>(), [500, 500, 200]);
    assert_eq!(attempts[0]["request_headers"]["webhook-signature"], "***", "signatures are masked in the log");
    assert!(attempts[2]["response_body"].as_str().unwrap().contains("L-7"));

    // A replayed event (same idempotency key) makes no second call.
    let replay = json!({"email": "zed@example.com", "event": "go"});
    for _ in 0..2 {
        let response = app.client.post(&url).header("Idempotency-Key", "evt-1").json(&replay).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    app.run_jobs().await;
    app.clock.advance(Duration::from_secs(600));
    app.run_jobs().await;
    assert_eq!(receiver.seen("flaky").len(), 4, "the replayed request started one journey, one call");
    app.stop().await;
}

async fn final_refusals_and_timeouts_are_branched_on(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    activate(
        &app,
        json!([
            hook("gone", &format!("{base}/gone")),
            {"type": "branch", "condition": {"field": "custom_variables.last_webhook.outcome", "op": "eq", "value": "failed"},
             "then": [{"type": "set_attribute", "attribute": "crm", "value": "refused {{ custom_variables.last_webhook.status }} ({{ custom_variables.last_webhook.status_class }})"}],
             "else": [{"type": "set_attribute", "attribute": "crm", "value": "ok"}]},
            hook("hang", &format!("{base}/hang")),
        ]),
    )
    .await;
    let url = source(&app).await;
    let accepted = send(&app, &url, json!({"email": "bob@example.com", "event": "go"})).await;
    let contact_id = accepted["contact_id"].as_str().unwrap();
    app.run_jobs().await;
    // 410 is final: one attempt, the branch saw it.
    assert_eq!(receiver.seen("gone").len(), 1);
    assert_eq!(contact(&app, contact_id).await["attributes"]["crm"], "refused 410 (4xx)");
    // The hanging endpoint timed out after 1 s and waits for its retry.
    assert_eq!(receiver.seen("hang").len(), 1);
    let list = deliveries(&app).await;
    let hang = list.iter().find(|d| d["step"] == "hang").unwrap();
    assert_eq!((hang["status"].as_str(), hang["attempt_count"].as_u64()), (Some("pending"), Some(1)), "{hang}");
    assert!(hang["last_error"].as_str().unwrap().contains("time"), "{hang}");
    let gone = list.iter().find(|d| d["step"] == "gone").unwrap();
    assert_eq!((gone["status"].as_str(), gone["last_status"].as_u64()), (Some("failed"), Some(410)));

    // Resend: one by id (same idempotency key), then every failed call in a time range.
    let id = gone["id"].as_str().unwrap();
    let (status, body) = json(app.post(&format!("/api/v1/webhook-deliveries/{id}/resend"), &json!({})).await).await;
    assert_eq!((status, body["resent"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{body}");
    app.run_jobs().await;
    let seen = receiver.seen("gone");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].headers["idempotency-key"], seen[1].headers["idempotency-key"]);
    assert_eq!(contact(&app, contact_id).await["attributes"]["crm"], "refused 410 (4xx)", "the journey is not re-run");
    let range = json!({"status": "failed", "from": "2025-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"});
    let (status, body) = json(app.post("/api/v1/webhook-deliveries/resend", &range).await).await;
    assert_eq!((status, body["resent"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{body}");
    app.run_jobs().await;
    assert_eq!(receiver.seen("gone").len(), 3);
    let hang_id = hang["id"].as_str().unwrap();
    let (status, _) = json(app.post(&format!("/api/v1/webhook-deliveries/{hang_id}/resend"), &json!({})).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "a pending call is not resent");
    app.stop().await;
}

/// Step calls, action runs and campaign event webhooks (with a text secret and with a `whsec_`
/// one), as a real receiver got them, checked by two verifiers that share no code with
/// Herald: the `standardwebhooks` package, and a `v0` check written from the recipe alone
/// (HMAC-SHA256 of `v0:<timestamp>:<raw body>` keyed with the secret string as the user sees
/// it). Both live in the webhook crate's `verify_standard_webhooks.py`.
async fn signatures_verify_with_an_independent_library(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    let (status, key) = json(app.post("/api/v1/webhook-signing-key/rotate", &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let secret = key["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    // Receivers refuse old timestamps: sign at the real time, not the test clock's 2026-01-01.
    let real = herald_domain::Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc());
    app.clock.advance(real.saturating_duration_since(app.clock.now()));

    let document = json!({"name": "Hooks", "trigger": {"type": "event", "event": "go"},
                          "steps": [hook("step", &format!("{base}/step"))]});
    let (status, campaign) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let campaign = campaign["id"].as_str().unwrap().to_owned();
    let text_secret = "a-shared-text-secret-ünï";
    let own_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    for (path, own) in [("text-hook", text_secret), ("whsec-hook", own_secret)] {
        let hook = json!({"url": format!("{base}/{path}"), "secret": own, "events": ["contact_entered"]});
        let (status, body) = json(app.post(&format!("/api/v1/campaigns/{campaign}/webhooks"), &hook).await).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{campaign}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let action = json!({"name": "Ping", "url": format!("{base}/action"), "timeout": "1s", "body": "{\"email\": {{ email | json }}}"});
    let (status, action) = json(app.post("/api/v1/actions", &action).await).await;
    assert_eq!(status, StatusCode::CREATED, "{action}");

    let url = source(&app).await;
    let accepted = send(&app, &url, json!({"email": "cy@example.com", "event": "go"})).await;
    app.run_jobs().await;
    let run = format!("/api/v1/actions/{}/run", action["id"].as_str().unwrap());
    let (status, queued) = json(app.post(&run, &json!({"contact_id": accepted["contact_id"]})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    app.run_jobs().await;

    // (what, request, the secret as shown, the whsec_ secret a Standard Webhooks library takes)
    let text_standard = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(text_secret));
    let cases = [
        ("step call", "step", secret.as_str(), secret.as_str()),
        ("action call", "action", secret.as_str(), secret.as_str()),
        ("campaign webhook, text secret", "text-hook", text_secret, text_standard.as_str()),
        ("campaign webhook, whsec_ secret", "whsec-hook", own_secret, own_secret),
    ];
    let mut input = Vec::new();
    for (what, path, shown, standard) in cases {
        let seen = receiver.seen(path);
        assert_eq!(seen.len(), 1, "{what}");
        let body = String::from_utf8(seen[0].body.clone()).unwrap();
        input.push(json!({"secret": shown, "standard_secret": standard, "headers": seen[0].headers, "body": body}));
        // A tampered body and someone else's secret fail both.
        input.push(json!({"secret": shown, "standard_secret": standard, "headers": seen[0].headers, "body": format!("{body} ")}));
        input.push(json!({"secret": "whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0IGtleQ==",
                          "headers": seen[0].headers, "body": body}));
    }
    let results = independent_verifiers(&json!({"cases": input}));
    for (i, (what, ..)) in cases.iter().enumerate() {
        let [genuine, tampered, stranger] = [&results[3 * i], &results[3 * i + 1], &results[3 * i + 2]];
        assert_eq!(
            (genuine["standard"].as_bool(), genuine["v0"].as_bool()),
            (Some(true), Some(true)),
            "{what}: {genuine}"
        );
        assert_eq!((tampered["standard"].as_bool(), tampered["v0"].as_bool()), (Some(false), Some(false)), "{what}");
        assert_eq!((stranger["standard"].as_bool(), stranger["v0"].as_bool()), (Some(false), Some(false)), "{what}");
    }
    app.stop().await;
}

/// Runs the webhook crate's independent verifier (`$HERALD_TEST_PYTHON`, with
/// `standardwebhooks`) over `input`'s cases and returns one result per case.
fn independent_verifiers(input: &Value) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../webhook/tests/verify_standard_webhooks.py");
    let python = std::env::var("HERALD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let output: Value = serde_json::from_slice(&output.stdout).unwrap();
    output["results"].as_array().unwrap().clone()
}

async fn private_addresses_and_plain_http_are_refused_by_default(backend: Backend) {
    let app = spawn_app_full(
        backend,
        EmailSettings::default(),
        ClientSettings { allow_http: true, ..ClientSettings::default() },
    )
    .await;
    let (receiver, base) = receiver().await;
    activate(
        &app,
        json!([
            hook("loopback", &format!("{base}/ok")),
            hook("metadata", "http://169.254.169.254/latest/meta-data/"),
            hook("private", "http://10.0.0.1/hook"),
        ]),
    )
    .await;
    let url = source(&app).await;
    send(&app, &url, json!({"email": "dee@example.com", "event": "go"})).await;
    app.run_jobs().await;
    assert!(receiver.seen("ok").is_empty(), "no request reached loopback");
    let list = deliveries(&app).await;
    assert_eq!(list.len(), 3, "{list:?}");
    for d in &list {
        assert_eq!((d["status"].as_str(), d["attempt_count"].as_u64()), (Some("failed"), Some(1)), "{d}");
        assert!(d["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{d}");
    }
    app.stop().await;

    let strict = spawn_app_full(backend, EmailSettings::default(), ClientSettings::default()).await;
    activate(&strict, json!([hook("plain", "http://example.com/hook")])).await;
    let url = source(&strict).await;
    send(&strict, &url, json!({"email": "eve@example.com", "event": "go"})).await;
    strict.run_jobs().await;
    let list = deliveries(&strict).await;
    assert_eq!(list[0]["status"], "failed");
    assert!(list[0]["last_error"].as_str().unwrap().contains("http"), "{}", list[0]);
    strict.stop().await;
}

async fn a_recovered_endpoint_gets_its_backlog_at_once(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    activate(&app, json!([hook("sync", &format!("{base}/recovering"))])).await;
    let url = source(&app).await;
    receiver.down.store(true, Ordering::SeqCst);
    for n in 0..20 {
        send(&app, &url, json!({"email": format!("r{n}@example.com"), "event": "go"})).await;
    }
    app.run_jobs().await;
    app.clock.advance(Duration::from_secs(10));
    app.run_jobs().await;
    assert_eq!(receiver.seen("recovering").len(), 40, "two failed attempts each");
    // The endpoint comes back; the next retries are due in about 30 s, but a fresh call's
    // success releases them now: no clock advance needed.
    receiver.down.store(false, Ordering::SeqCst);
    send(&app, &url, json!({"email": "fresh@example.com", "event": "go"})).await;
    app.run_jobs().await;
    let list = deliveries(&app).await;
    assert_eq!(list.len(), 21);
    assert!(list.iter().all(|d| d["status"] == "succeeded"), "{list:?}");
    let mut keys: Vec<String> =
        receiver.seen("recovering").iter().skip(40).map(|s| s.headers["idempotency-key"].clone()).collect();
    assert_eq!(keys.len(), 21, "each call delivered once after the recovery");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 21);
    app.stop().await;
}

async fn a_hanging_endpoint_holds_up_no_other(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    activate(&app, json!([hook("slow", &format!("{base}/slow")), hook("ok", &format!("{base}/ok"))])).await;
    let url = source(&app).await;
    for n in 0..40 {
        send(&app, &url, json!({"email": format!("s{n}@example.com"), "event": "go"})).await;
    }
    // A campaign of a different shape calls the healthy endpoint first.
    let document = json!({"name": "Direct", "trigger": {"type": "event", "event": "direct"},
                          "steps": [hook("direct", &format!("{base}/ok"))]});
    let (_, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    let id = body["id"].as_str().unwrap().to_owned();
    json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    for n in 0..5 {
        send(&app, &url, json!({"email": format!("d{n}@example.com"), "event": "direct"})).await;
    }
    app.run_jobs().await;
    assert_eq!(receiver.slow_max.load(Ordering::SeqCst), 16, "at most 16 requests in flight to one endpoint");
    let during = receiver.slow_during_ok.lock().unwrap().clone();
    assert!(during.len() >= 5, "{during:?}");
    // On a loaded machine the first healthy call may run before any slow one has started.
    assert!(
        during[..5].iter().filter(|&&n| n > 0).count() >= 3,
        "the healthy endpoint was served while the slow one was busy: {during:?}"
    );
    app.stop().await;
}

async fn saved_actions_are_reused_and_keep_their_secrets(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    let action = json!({
        "name": "Create lead", "url": format!("{base}/flaky"), "timeout": "1s",
        "headers": {"X-Api-Key": "sk-123"}, "basic_auth": {"username": "crm", "password": "pw-456"},
        "body": "{\"email\": {{ customer.email | json }}}",
        "set_attributes": {"lead_id": "{{ response.lead_id }}"}
    });
    let (status, created) = json(app.post("/api/v1/actions", &action).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["basic_auth"], json!({"username": "crm", "password_set": true}), "the password is write-only");
    assert_eq!(created["headers"]["X-Api-Key"], "***");
    assert!(!created.to_string().contains("pw-456") && !created.to_string().contains("sk-123"));

    // Bad input names the field.
    let cases = [
        (json!({"url": "https://a.example"}), StatusCode::BAD_REQUEST, "name"),
        (json!({"name": "x", "url": "ftp://a.example"}), StatusCode::UNPROCESSABLE_ENTITY, "url"),
        (json!({"name": "x", "url": "https://a.example", "body": "{{ oops"}), StatusCode::UNPROCESSABLE_ENTITY, "body"),
        (json!({"name": "x", "url": "https://a.example", "methd": "GET"}), StatusCode::UNPROCESSABLE_ENTITY, ""),
        (json!({"name": "x", "url": "https://a.example", "draft": true}), StatusCode::UNPROCESSABLE_ENTITY, "draft"),
        (json!({"name": "Create lead", "url": "https://a.example"}), StatusCode::CONFLICT, "name"),
    ];
    for (body, expected, field) in cases {
        let (status, error) = json(app.post("/api/v1/actions", &body).await).await;
        assert_eq!(status, expected, "{body} → {error}");
        if !field.is_empty() {
            assert_eq!(error["error"]["field"], field, "{body} → {error}");
        }
    }

    // Two campaigns use it; a step may not both use an action and set its own request.
    let uses = |name: &str, event: &str| {
        json!({"name": name, "trigger": {"type": "event", "event": event},
               "steps": [{"id": "lead", "type": "webhook", "action": id}]})
    };
    for (name, event) in [("A", "go"), ("B", "go")] {
        let (status, body) = json(app.post("/api/v1/campaigns", &uses(name, event)).await).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(!body.to_string().contains("pw-456"), "a campaign holds a reference, not the secrets");
        let (status, _) =
            json(app.post(&format!("/api/v1/campaigns/{}/activate", body["id"].as_str().unwrap()), &json!({})).await)
                .await;
        assert_eq!(status, StatusCode::OK);
    }
    let mut both = uses("C", "go");
    both["steps"][0]["url"] = json!("https://a.example");
    let (status, error) = json(app.post("/api/v1/campaigns", &both).await).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("steps[0]")),
        "{error}"
    );
    let mut unknown = uses("C", "go");
    unknown["steps"][0]["action"] = json!("act_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b");
    let (status, error) = json(app.post("/api/v1/campaigns", &unknown).await).await;
    assert_eq!((status, error["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("steps[0].action")));

    let url = source(&app).await;
    let first = send(&app, &url, json!({"email": "ada@example.com", "event": "go"})).await;
    app.run_jobs().await;
    let seen = receiver.seen("flaky");
    assert_eq!(seen.len(), 2, "one call per campaign");
    let basic = format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "crm:pw-456"));
    for call in &seen {
        assert_eq!(
            (call.headers["x-api-key"].as_str(), call.headers["authorization"].as_str()),
            ("sk-123", basic.as_str())
        );
        assert_eq!(serde_json::from_slice::<Value>(&call.body).unwrap(), json!({"email": "ada@example.com"}));
    }

    // An edit keeps the secrets left blank or masked, and reaches running campaigns at once.
    let mut edited = action.clone();
    edited["url"] = json!(format!("{base}/edited"));
    edited["basic_auth"]["password"] = json!("");
    edited["headers"]["X-Api-Key"] = json!("***");
    let (status, body) =
        json(app.request(reqwest::Method::PUT, &format!("/api/v1/actions/{id}")).json(&edited).send().await.unwrap())
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    send(&app, &url, json!({"email": "bob@example.com", "event": "go"})).await;
    app.run_jobs().await;
    let seen = receiver.seen("edited");
    assert_eq!(seen.len(), 2, "the edited request");
    assert_eq!(
        (seen[0].headers["x-api-key"].as_str(), seen[0].headers["authorization"].as_str()),
        ("sk-123", basic.as_str())
    );

    // Deleted: new versions may not use it; running campaigns still send it.
    assert_eq!(app.delete(&format!("/api/v1/actions/{id}")).await.status(), StatusCode::NO_CONTENT);
    let (status, error) = json(app.post("/api/v1/campaigns", &uses("D", "go")).await).await;
    assert_eq!((status, error["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("steps[0].action")));
    assert_eq!(json(app.get(&format!("/api/v1/actions/{id}")).await).await.0, StatusCode::NOT_FOUND);
    send(&app, &url, json!({"email": "cy@example.com", "event": "go"})).await;
    app.run_jobs().await;
    assert_eq!(receiver.seen("edited").len(), 4);
    let lead = &contact(&app, first["contact_id"].as_str().unwrap()).await["attributes"]["lead_id"];
    // The first two calls failed (500); when the same endpoint answered the edited request, fast
    // recovery released their retries, and the third call's response landed.
    assert_eq!(lead, "L-7");
}

async fn conversions_are_credited_to_the_last_email_or_conversion_webhook(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (_receiver, base) = receiver().await;
    let mut crm = hook("crm", &format!("{base}/{{{{ customer.crm }}}}"));
    crm["conversion"] = json!(true);
    let document = json!({
        "name": "Trial", "trigger": {"type": "event", "event": "go"},
        "goal": {"event": "purchased", "within": "30d", "exit": true},
        "steps": [
            {"id": "welcome", "type": "email", "from": "hi@acme.test", "subject": "Hi", "html": "<p>Hi</p>"},
            crm,
            hook("analytics", &format!("{base}/ok")),
            {"id": "pause", "type": "wait", "duration": "1d"},
            {"id": "late", "type": "email", "from": "hi@acme.test", "subject": "Still there?", "html": "<p>?</p>"},
            {"id": "cooldown", "type": "wait", "duration": "7d"},
            {"id": "done", "type": "exit"}
        ]
    });
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    let url = source(&app).await;
    // Ada's CRM call succeeds, Bob's is refused (410): Bob's conversion goes to the email.
    // Cy converts only after the second email.
    for (email, crm) in [("ada@example.com", "ok"), ("bob@example.com", "gone"), ("cy@example.com", "ok")] {
        send(&app, &url, json!({"email": email, "event": "go", "data": {"crm": crm}})).await;
    }
    app.run_jobs().await;
    for email in ["ada@example.com", "bob@example.com"] {
        send(&app, &url, json!({"email": email, "event": "purchased"})).await;
    }
    app.run_jobs().await;
    app.clock.advance(Duration::from_secs(86_400 + 60));
    app.run_jobs().await;
    send(&app, &url, json!({"email": "cy@example.com", "event": "purchased"})).await;
    app.run_jobs().await;

    let (_, stats) = json(app.get(&format!("/api/v1/campaigns/{id}/stats")).await).await;
    let converted = |step: &str| stats["steps"][step]["converted"].as_u64().unwrap_or(0);
    assert_eq!(stats["converted"], 3, "{stats}");
    assert_eq!(
        [converted("welcome"), converted("crm"), converted("analytics"), converted("late")],
        [1, 1, 0, 1],
        "Bob's to the email (his call failed), Ada's to the CRM webhook, none to a webhook without the toggle: {stats}"
    );
    assert_eq!(converted("goal"), 3);
}

async fn draft_steps_hold_journeys_until_sent_or_skipped(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    let mut crm = hook("crm", &format!("{base}/drafted"));
    crm["draft"] = json!(true);
    crm["headers"] = json!({"X-Api-Key": "sk-draft"});
    crm["set_attributes"] = json!({"crm_status": "synced"});
    let after = json!({"id": "after", "type": "set_attribute", "attribute": "after",
                       "value": "{{ custom_variables.last_webhook.outcome }}"});
    let document = json!({"name": "Drafts", "trigger": {"type": "event", "event": "go"}, "steps": [crm, after]});
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let campaign = body["id"].as_str().unwrap().to_owned();
    json(app.post(&format!("/api/v1/campaigns/{campaign}/activate"), &json!({})).await).await;
    let url = source(&app).await;
    let mut contacts = Vec::new();
    for email in ["ada@example.com", "bob@example.com", "cy@example.com", "di@example.com"] {
        contacts.push(
            send(&app, &url, json!({"email": email, "event": "go"})).await["contact_id"].as_str().unwrap().to_owned(),
        );
    }
    app.run_jobs().await;
    assert!(receiver.seen("drafted").is_empty(), "drafts wait for someone");
    let (status, list) = json(app.get(&format!("/api/v1/webhook-drafts?campaign={campaign}&step=crm")).await).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let drafts = list["data"].as_array().unwrap().clone();
    assert_eq!(drafts.len(), 4);
    assert_eq!(drafts[0]["request"]["headers"]["x-api-key"], "***", "secrets masked: {}", drafts[0]);
    for contact_id in &contacts {
        assert!(contact(&app, contact_id).await["attributes"]["after"].is_null(), "held at the draft");
    }
    // The draft of the nth contact's journey.
    let draft = |n: usize| {
        let of = drafts.iter().find(|d| d["contact_id"] == contacts[n].as_str()).expect("a draft per contact");
        of["id"].as_str().unwrap().to_owned()
    };

    // Sent: the call is made, then the attribute update, then the journey moves on.
    let (status, body) = json(app.post(&format!("/api/v1/webhook-drafts/{}/send", draft(0)), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.run_jobs().await;
    let seen = receiver.seen("drafted");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["x-api-key"], "sk-draft");
    assert_eq!(serde_json::from_slice::<Value>(&seen[0].body).unwrap()["email"], "ada@example.com");
    let ada = contact(&app, &contacts[0]).await;
    assert_eq!(
        (ada["attributes"]["crm_status"].as_str(), ada["attributes"]["after"].as_str()),
        (Some("synced"), Some("succeeded"))
    );
    let again = app.post(&format!("/api/v1/webhook-drafts/{}/send", draft(0)), &json!({})).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "sent once");

    // Skipped: no call; the journey moves on and can branch on it.
    let (status, _) = json(app.post(&format!("/api/v1/webhook-drafts/{}/skip", draft(1)), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);
    app.run_jobs().await;
    let bob = contact(&app, &contacts[1]).await;
    assert_eq!(
        (bob["attributes"]["crm_status"].as_str(), bob["attributes"]["after"].as_str()),
        (None, Some("skipped"))
    );
    assert_eq!(receiver.seen("drafted").len(), 1);

    // Bad input names the field.
    for (body, field) in
        [(json!({}), "ids"), (json!({"step": "crm", "ids": [draft(2)]}), "step"), (json!({"ids": ["nope"]}), "ids[0]")]
    {
        let (status, error) = json(app.post("/api/v1/webhook-drafts/send", &body).await).await;
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}: {error}"
        );
    }
    // All the rest of the campaign's drafts at once.
    let (status, body) =
        json(app.post("/api/v1/webhook-drafts/send", &json!({"campaign_id": campaign, "step": "crm"})).await).await;
    assert_eq!(
        (status, body["ids"].as_array().map(Vec::len), body["more"].as_bool()),
        (StatusCode::OK, Some(2), Some(false))
    );
    app.run_jobs().await;
    assert_eq!(receiver.seen("drafted").len(), 3);
    for contact_id in &contacts[2..] {
        assert_eq!(contact(&app, contact_id).await["attributes"]["after"], "succeeded");
    }
    let (_, list) = json(app.get("/api/v1/webhook-drafts").await).await;
    assert!(list["data"].as_array().unwrap().is_empty());
}

async fn an_endpoint_failing_for_days_is_disabled_until_enabled(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    let after = json!({"id": "after", "type": "set_attribute", "attribute": "outcome",
                       "value": "{{ custom_variables.last_webhook.outcome }}"});
    activate(&app, json!([hook("call", &format!("{base}/{{{{ customer.path }}}}")), after])).await;
    let url = source(&app).await;
    let day = Duration::from_secs(86_400);
    let mut n = 0;
    let mut call = |path: &'static str| {
        n += 1;
        let app = &app;
        let url = url.clone();
        async move {
            let id =
                send(app, &url, json!({"email": format!("c{n}@example.com"), "event": "go", "data": {"path": path}}))
                    .await;
            app.run_jobs().await;
            contact(app, id["contact_id"].as_str().unwrap()).await["attributes"]["outcome"].clone()
        }
    };
    let disabled_events = || async {
        let (_, events) = json(app.get("/api/v1/events?name=endpoint_disabled").await).await;
        events["data"].as_array().unwrap().clone()
    };
    // A streak broken by a success starts over: 3 days failing, one success, 3 more days.
    assert_eq!(call("gone").await, "failed");
    app.clock.advance(3 * day);
    assert_eq!(call("ok").await, "succeeded");
    assert_eq!(call("gone").await, "failed");
    app.clock.advance(3 * day);
    assert_eq!(call("gone").await, "failed");
    assert!(disabled_events().await.is_empty(), "no 5 days of failures yet");
    let (_, endpoints) = json(app.get("/api/v1/webhook-endpoints").await).await;
    assert_eq!(endpoints[0]["status"], "failing", "{endpoints}");

    // Five days of nothing but failures: disabled, with the reason and an event.
    app.clock.advance(2 * day + Duration::from_secs(60));
    assert_eq!(call("gone").await, "failed");
    let (_, endpoints) = json(app.get("/api/v1/webhook-endpoints").await).await;
    assert_eq!(
        (endpoints[0]["status"].as_str(), endpoints[0]["endpoint"].as_str()),
        (Some("disabled"), Some(base.as_str()))
    );
    assert!(endpoints[0]["disabled_reason"].as_str().unwrap().contains("every attempt failed"), "{endpoints}");
    let events = disabled_events().await;
    assert_eq!(events.len(), 1, "one endpoint_disabled event");
    assert_eq!(events[0]["properties"]["endpoint"], base.as_str());

    // Disabled: calls fail at once without a request; journeys go on.
    let requests = receiver.seen.lock().unwrap().len();
    assert_eq!(call("ok").await, "failed");
    assert_eq!(receiver.seen.lock().unwrap().len(), requests, "no request to a disabled endpoint");
    let list = deliveries(&app).await;
    assert!(list[0]["last_error"].as_str().unwrap().contains("disabled"), "{}", list[0]);

    // One call enables it again.
    let id = endpoints[0]["id"].as_str().unwrap();
    let (status, enabled) = json(app.post(&format!("/api/v1/webhook-endpoints/{id}/enable"), &json!({})).await).await;
    assert_eq!((status, enabled["status"].as_str()), (StatusCode::OK, Some("healthy")), "{enabled}");
    assert_eq!(call("ok").await, "succeeded");
    assert_eq!(receiver.seen.lock().unwrap().len(), requests + 1);
    let missing = app.post("/api/v1/webhook-endpoints/wep_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b/enable", &json!({})).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

async fn a_saved_action_runs_for_one_contact_outside_any_campaign(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    let action = json!({
        "name": "Open ticket", "url": format!("{base}/{{{{ customer.desk }}}}"), "timeout": "1s",
        "body": "{\"email\": {{ email | json }}, \"plan\": {{ customer.plan | json }}}",
        "set_attributes": {"ticket": "{{ response.lead_id }}"}
    });
    let (status, created) = json(app.post("/api/v1/actions", &action).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let run = format!("/api/v1/actions/{}/run", created["id"].as_str().unwrap());
    let url = source(&app).await;
    // A contact, and no campaign at all.
    let ada = send(&app, &url, json!({"email": "ada@example.com", "data": {"plan": "pro", "desk": "flaky"}})).await;
    let ada = ada["contact_id"].as_str().unwrap().to_owned();

    // 500, 500, then 200: retried like any call, and the response lands on the contact.
    let (status, queued) = json(app.post(&run, &json!({"contact_id": ada})).await).await;
    assert_eq!((status, queued["status"].as_str()), (StatusCode::ACCEPTED, Some("queued")), "{queued}");
    app.run_jobs().await;
    for _ in 0..4 {
        app.clock.advance(Duration::from_secs(600));
        app.run_jobs().await;
    }
    let seen = receiver.seen("flaky");
    assert_eq!(seen.len(), 3);
    assert_eq!(
        serde_json::from_slice::<Value>(&seen[0].body).unwrap(),
        json!({"email": "ada@example.com", "plan": "pro"})
    );
    assert_eq!(seen[0].headers["idempotency-key"], queued["idempotency_key"].as_str().unwrap());
    assert!(seen[2].headers.contains_key("webhook-signature"), "signed like every call");
    assert_eq!(contact(&app, &ada).await["attributes"]["ticket"], "L-7");
    let (_, logged) = json(app.get(&format!("/api/v1/webhook-deliveries?contact={ada}")).await).await;
    assert_eq!(
        (logged["data"][0]["status"].as_str(), logged["data"][0]["attempt_count"].as_u64()),
        (Some("succeeded"), Some(3))
    );

    // The same Idempotency-Key twice: one call.
    for _ in 0..2 {
        let response = app
            .request(reqwest::Method::POST, &run)
            .header("Idempotency-Key", "run-1")
            .json(&json!({"contact_id": ada}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        app.run_jobs().await;
    }
    assert_eq!(receiver.seen("flaky").len(), 4, "one call for one key");

    // A refused call leaves the contact as it was.
    let bob = send(&app, &url, json!({"email": "bob@example.com", "data": {"desk": "gone"}})).await;
    let bob = bob["contact_id"].as_str().unwrap().to_owned();
    json(app.post(&run, &json!({"contact_id": bob})).await).await;
    app.run_jobs().await;
    assert_eq!(receiver.seen("gone").len(), 1);
    assert!(contact(&app, &bob).await["attributes"]["ticket"].is_null());

    // Bad input.
    let (status, error) = json(app.post(&run, &json!({"contact_id": "nope"})).await).await;
    assert_eq!((status, error["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("contact_id")));
    let missing = app.post(&run, &json!({"contact_id": "ct_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b"})).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let cy = send(&app, &url, json!({"email": "cy@example.com", "data": {"desk": "x\ny"}})).await;
    let mut broken = action.clone();
    broken["name"] = json!("Broken");
    broken["url"] = json!("{{ customer.desk }}");
    let (_, broken) = json(app.post("/api/v1/actions", &broken).await).await;
    let (status, error) = json(
        app.post(
            &format!("/api/v1/actions/{}/run", broken["id"].as_str().unwrap()),
            &json!({"contact_id": cy["contact_id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str(), error["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("render_failed"), Some("url")),
        "{error}"
    );
}

async fn deliveries_filter_by_action_campaign_and_step(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (_receiver, base) = receiver().await;
    let new_action = |name: &str| json!({"name": name, "url": format!("{base}/ok"), "timeout": "1s"});
    let (_, lead) = json(app.post("/api/v1/actions", &new_action("Lead")).await).await;
    let (_, other) = json(app.post("/api/v1/actions", &new_action("Other")).await).await;
    let (lead, other) = (lead["id"].as_str().unwrap().to_owned(), other["id"].as_str().unwrap().to_owned());
    let document = json!({"name": "Hooks", "trigger": {"type": "event", "event": "go"}, "steps": [
        {"id": "lead", "type": "webhook", "action": lead},
        hook("plain", &format!("{base}/ok")),
    ]});
    let (_, campaign) = json(app.post("/api/v1/campaigns", &document).await).await;
    let campaign = campaign["id"].as_str().unwrap().to_owned();
    json(app.post(&format!("/api/v1/campaigns/{campaign}/activate"), &json!({})).await).await;
    let url = source(&app).await;
    let ada = send(&app, &url, json!({"email": "ada@example.com", "event": "go"})).await;
    let bob = send(&app, &url, json!({"email": "bob@example.com"})).await;
    app.run_jobs().await;
    for (action, contact) in [(&lead, &bob), (&other, &ada)] {
        let (status, body) = json(
            app.post(&format!("/api/v1/actions/{action}/run"), &json!({"contact_id": contact["contact_id"]})).await,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    app.run_jobs().await;
    assert_eq!(deliveries(&app).await.len(), 4, "two steps and two runs");

    let list = |query: String| {
        let app = &app;
        async move {
            let (status, body) = json(app.get(&format!("/api/v1/webhook-deliveries?{query}")).await).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| (d["contact_id"].as_str().unwrap().to_owned(), d["step"].as_str().map(str::to_owned)))
                .collect::<Vec<_>>()
        }
    };
    let (ada, bob) = (ada["contact_id"].as_str().unwrap().to_owned(), bob["contact_id"].as_str().unwrap().to_owned());
    // The action's calls: the step that uses it and its run for Bob, newest first.
    assert_eq!(list(format!("action={lead}")).await, [(bob.clone(), None), (ada.clone(), Some("lead".into()))]);
    assert_eq!(list(format!("action={other}")).await, [(ada.clone(), None)]);
    assert_eq!(list(format!("action={lead}&contact={ada}")).await, [(ada.clone(), Some("lead".into()))]);
    assert_eq!(list(format!("campaign={campaign}&step=plain")).await, [(ada.clone(), Some("plain".into()))]);
    assert_eq!(list(format!("campaign={campaign}")).await.len(), 2);

    // Bad filters name their parameter.
    for (query, field) in [
        ("step=plain".to_owned(), "step"),
        ("action=nope".to_owned(), "action"),
        ("action=act_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b".to_owned(), "action"),
    ] {
        let (status, error) = json(app.get(&format!("/api/v1/webhook-deliveries?{query}")).await).await;
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{query}: {error}"
        );
    }
}

async fn inline_step_secrets_are_never_returned_yet_sent(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    let mut crm = hook("crm", &format!("{base}/ok"));
    crm["headers"] = json!({"X-Api-Key": "sk-live-1", "X-Team": "growth"});
    crm["basic_auth"] = json!({"username": "crm", "password": "pw-live-1"});
    let document = json!({"name": "Secrets", "trigger": {"type": "event", "event": "go"}, "steps": [crm]});
    let (status, created) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let shown = |doc: &Value| {
        let step = &doc["steps"][0];
        (step["headers"].clone(), step["basic_auth"].clone())
    };
    let masked = (json!({"X-Api-Key": "***", "X-Team": "growth"}), json!({"username": "crm", "password": "***"}));
    assert_eq!(shown(&created["document"]), masked, "the create response");
    let (_, got) = json(app.get(&format!("/api/v1/campaigns/{id}")).await).await;
    assert_eq!(shown(&got["document"]), masked, "a read");
    let (_, listed) = json(app.get("/api/v1/campaigns").await).await;
    assert_eq!(shown(&listed["data"][0]["document"]), masked, "the list");
    let (_, exported) = json(app.get(&format!("/api/v1/campaigns/{id}/export")).await).await;
    assert_eq!(shown(&exported), masked, "the export");

    // What was read is saved back as it is: the stored secrets stay, and are sent.
    let mut edited = got["document"].clone();
    edited["name"] = json!("Secrets v2");
    let (status, saved) =
        json(app.request(reqwest::Method::PUT, &format!("/api/v1/campaigns/{id}")).json(&edited).send().await.unwrap())
            .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(shown(&saved["document"]), masked);
    let (status, _) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);
    let url = source(&app).await;
    send(&app, &url, json!({"email": "ada@example.com", "event": "go"})).await;
    app.run_jobs().await;
    let seen = receiver.seen("ok");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["x-api-key"], "sk-live-1");
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "crm:pw-live-1");
    assert_eq!(seen[0].headers["authorization"], format!("Basic {basic}"));

    // An export imported elsewhere has no secret to keep: refused, naming the place.
    let (status, refused) = json(app.post("/api/v1/campaigns/import", &exported).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_campaign");
    assert_eq!(refused["error"]["field"], "steps[0].basic_auth.password", "{refused}");
    // A new secret written in place of the mask replaces the stored one.
    let mut rotated = got["document"].clone();
    rotated["steps"][0]["headers"]["X-Api-Key"] = json!("sk-live-2");
    let (status, _) = json(
        app.request(reqwest::Method::PUT, &format!("/api/v1/campaigns/{id}")).json(&rotated).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let workspace = app.store.ensure_default_workspace(app.clock.now()).await.unwrap().id;
    let stored = app.store.get_campaign(workspace, id.parse().unwrap()).await.unwrap().document;
    assert_eq!(stored["steps"][0]["headers"]["X-Api-Key"], "sk-live-2");
    assert_eq!(stored["steps"][0]["basic_auth"]["password"], "pw-live-1");
    app.stop().await;
}

async fn a_call_answered_at_once_is_made_and_followed_in_its_step_run(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    let after = json!({"id": "after", "type": "set_attribute", "attribute": "after_hook",
                       "value": "{{ custom_variables.last_webhook.outcome }}"});
    activate(&app, json!([hook("ok", &format!("{base}/ok")), after])).await;
    let url = source(&app).await;
    let accepted = send(&app, &url, json!({"email": "ada@example.com", "event": "go"})).await;
    // The trigger's evaluation, then the journey's step: the call, its record and the steps
    // after it in that one run; no delivery job, no job to resume the journey.
    assert_eq!(app.run_jobs().await, 2);
    assert_eq!(receiver.seen("ok").len(), 1);
    let list = deliveries(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!((list[0]["status"].as_str(), list[0]["attempt_count"].as_u64()), (Some("succeeded"), Some(1)));
    let (_, one) =
        json(app.get(&format!("/api/v1/webhook-deliveries/{}", list[0]["id"].as_str().unwrap())).await).await;
    assert_eq!(one["attempts"][0]["status"], 200);
    let contact_id = accepted["contact_id"].as_str().unwrap();
    assert_eq!(contact(&app, contact_id).await["attributes"]["after_hook"], "succeeded");
    let (_, campaigns) = json(app.get("/api/v1/campaigns").await).await;
    let id = campaigns["data"][0]["id"].as_str().unwrap();
    let (_, stats) = json(app.get(&format!("/api/v1/campaigns/{id}/stats")).await).await;
    assert_eq!((stats["completed"].as_u64(), stats["active"].as_u64()), (Some(1), Some(0)), "{stats}");
    assert_eq!(stats["steps"]["ok"]["succeeded"], 1, "{stats}");
    app.stop().await;
}

async fn a_call_whose_journey_moves_meanwhile_is_still_logged(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    let after = json!({"id": "after", "type": "set_attribute", "attribute": "after_hook", "value": "yes"});
    activate(&app, json!([hook("leave", &format!("{base}/leave")), after])).await;
    let url = source(&app).await;
    let accepted = send(&app, &url, json!({"email": "ada@example.com", "event": "go"})).await;
    let contact_id = accepted["contact_id"].as_str().unwrap().to_owned();
    // The receiver deletes the contact (and with it the journey) before it answers.
    *receiver.on_leave.lock().unwrap() =
        Some(app.request(reqwest::Method::DELETE, &format!("/api/v1/contacts/{contact_id}")));
    app.run_jobs().await;
    app.clock.advance(Duration::from_secs(3600));
    app.run_jobs().await;
    assert_eq!(receiver.seen("leave").len(), 1, "one call, not made again");
    let list = deliveries(&app).await;
    assert_eq!(list.len(), 1, "the call is in the delivery log: {list:?}");
    assert_eq!((list[0]["status"].as_str(), list[0]["attempt_count"].as_u64()), (Some("succeeded"), Some(1)));
    let (status, _) = json(app.get(&format!("/api/v1/contacts/{contact_id}")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing after the call wrote to the deleted contact");
    app.stop().await;
}

/// The request's signatures (`X-Herald-Signature`, one per signing key), and whether one of
/// them is by `secret` (a `whsec_` secret as the rotation returned it).
fn signed_by(seen: &Seen, secret: &str) -> (usize, bool) {
    let header = &seen.headers["x-herald-signature"];
    let timestamp = seen.headers["x-herald-timestamp"].parse().unwrap();
    (header.split(',').count(), herald_webhook::sign::verify_v0(secret, timestamp, &seen.body, header))
}

async fn a_rotated_key_signs_beside_its_successor_until_it_retires(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    activate(&app, json!([hook("ok", &format!("{base}/ok"))])).await;
    let url = source(&app).await;
    let rotate = async |overlap_secs: u64| {
        let (status, key) =
            json(app.post("/api/v1/webhook-signing-key/rotate", &json!({"overlap_secs": overlap_secs})).await).await;
        assert_eq!(status, StatusCode::OK, "{key}");
        key["secret"].as_str().unwrap().to_owned()
    };
    let first = rotate(0).await;
    send(&app, &url, json!({"email": "a@example.com", "event": "go"})).await;
    app.run_jobs().await;
    assert_eq!(signed_by(&receiver.seen("ok")[0], &first), (1, true));

    // The next call is signed by both keys at once, though this node read the keys just now.
    let second = rotate(3600).await;
    send(&app, &url, json!({"email": "b@example.com", "event": "go"})).await;
    app.run_jobs().await;
    let seen = receiver.seen("ok");
    assert_eq!(signed_by(&seen[1], &second), (2, true));
    assert_eq!(signed_by(&seen[1], &first), (2, true));

    // An hour on (the test clock's), the first key has retired: only the second signs.
    app.clock.advance(Duration::from_secs(3601));
    send(&app, &url, json!({"email": "c@example.com", "event": "go"})).await;
    app.run_jobs().await;
    let seen = receiver.seen("ok");
    assert_eq!(seen.len(), 3);
    assert_eq!(signed_by(&seen[2], &second), (1, true));
    assert_eq!(signed_by(&seen[2], &first), (1, false));
    app.stop().await;
}

async fn a_call_whose_request_fails_to_render_is_logged_failed(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (receiver, base) = receiver().await;
    // The body loops as often as the event says: over the template step budget for Ada.
    let mut crm = hook("crm", &format!("{base}/ok"));
    crm["body"] = json!("{\"n\": \"{% for i in (1..event.data.repeat) %}x{% endfor %}\"}");
    activate(&app, json!([crm, {"id": "after", "type": "set_attribute", "attribute": "after_hook", "value": "{{ custom_variables.last_webhook.outcome }}"}]))
        .await;
    let url = source(&app).await;
    let accepted =
        send(&app, &url, json!({"email": "ada@example.com", "event": "go", "data": {"repeat": 1_000_000}})).await;
    let contact_id = accepted["contact_id"].as_str().unwrap();
    app.run_jobs().await;

    // No request was made; the call is logged as failed with the reason, and the journey went on.
    assert!(receiver.seen("ok").is_empty());
    assert_eq!(contact(&app, contact_id).await["attributes"]["after_hook"], "failed");
    let (status, list) = json(app.get(&format!("/api/v1/webhook-deliveries?contact={contact_id}")).await).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list = list["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    let call = &list[0];
    assert_eq!((call["status"].as_str(), call["step"].as_str()), (Some("failed"), Some("crm")), "{call}");
    assert_eq!(
        (call["request"]["url"].as_str(), call["last_status"].as_u64()),
        (Some(format!("{base}/ok").as_str()), None)
    );
    let error = call["last_error"].as_str().unwrap();
    assert!(error.contains("body: the template needed more than 100000 steps"), "{error}");
    let id = call["id"].as_str().unwrap();
    let (_, one) = json(app.get(&format!("/api/v1/webhook-deliveries/{id}")).await).await;
    let attempts = one["attempts"].as_array().unwrap();
    assert_eq!((attempts.len(), attempts[0]["status"].as_u64()), (1, None), "{one}");
    assert_eq!(attempts[0]["error"].as_str(), Some(error));

    // There is nothing to send again, one by one or in bulk.
    let response = app.post(&format!("/api/v1/webhook-deliveries/{id}/resend"), &json!({})).await;
    let error = common::expect_error(response, StatusCode::CONFLICT, "delivery_not_rendered").await;
    assert!(error["message"].as_str().unwrap().contains("never rendered"), "{error}");
    let window = json!({"from": "2025-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"});
    let (status, body) = json(app.post("/api/v1/webhook-deliveries/resend", &window).await).await;
    assert_eq!((status, body["resent"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{body}");
    app.run_jobs().await;
    assert!(receiver.seen("ok").is_empty());
    app.stop().await;
}
