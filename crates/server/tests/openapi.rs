//! The OpenAPI document against the server it describes: answers read through the document's
//! own schemas, bodies that are not JSON objects refused everywhere, and schemathesis (an
//! independent fuzzer, from PyPI) run against a live Herald for a bounded number of cases.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::openapi::Spec;
use common::{ADMIN_TOKEN, Backend, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    a_webhook_call_reads_as_its_schema_says,
    bodies_that_are_not_objects_are_refused,
    a_taken_name_is_a_documented_conflict,
);

/// A contact, and a saved action run for them against a loopback port nobody listens on:
/// one failed attempt, its call pending a retry with no response. Returns the contact's id.
async fn seed_a_failed_call(app: &TestApp) -> String {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (status, contact) = json_of(app.post("/api/v1/contacts", &json!({"email": "ada@example.com"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{contact}");
    let contact_id = contact["id"].as_str().unwrap().to_owned();
    let action = json!({"name": "Notify", "method": "POST", "url": format!("http://127.0.0.1:{closed}/hook")});
    let (status, action) = json_of(app.post("/api/v1/actions", &action).await).await;
    assert_eq!(status, StatusCode::CREATED, "{action}");
    let run = format!("/api/v1/actions/{}/run", action["id"].as_str().unwrap());
    let (status, queued) = json_of(app.post(&run, &json!({"contact_id": contact_id})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    app.run_jobs().await;
    contact_id
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    common::json(response).await
}

/// The list and the detail of a webhook call fit their schemas: the count of attempts and
/// the attempts themselves have two names, and a call with no response says `null`.
async fn a_webhook_call_reads_as_its_schema_says(backend: Backend) {
    let app = spawn_app(backend).await;
    let spec = Spec::fetch(&app).await;
    seed_a_failed_call(&app).await;

    let (status, list) = spec.check(&Method::GET, app.get("/api/v1/webhook-deliveries").await).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let call = &list["data"][0];
    assert_eq!((call["attempt_count"].as_u64(), &call["response"]), (Some(1), &Value::Null), "{call}");
    assert!(call.get("attempts").is_none(), "the list gives the count only: {call}");

    let path = format!("/api/v1/webhook-deliveries/{}", call["id"].as_str().unwrap());
    let raw = app.get(&path).await.text().await.unwrap();
    assert_eq!(raw.matches("\"attempts\":").count(), 1, "one key `attempts` in {raw}");
    let (status, one) = spec.check(&Method::GET, app.get(&path).await).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["attempt_count"], 1, "{one}");
    let attempts = one["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{one}");
    assert!(attempts[0]["error"].as_str().is_some_and(|e| !e.is_empty()), "{one}");

    // Errors read as documented too.
    let missing = format!("/api/v1/webhook-deliveries/whd_{}", "0".repeat(32));
    let (status, _) = spec.check(&Method::GET, app.get(&missing).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, error) = spec.check(&Method::GET, app.get("/api/v1/webhook-deliveries/src_1").await).await;
    assert_eq!((status, &error["error"]["field"]), (StatusCode::BAD_REQUEST, &json!("id")), "{error}");
    let unauthorized = app.client.get(app.url("/api/v1/webhook-deliveries")).send().await.unwrap();
    assert_eq!(spec.check(&Method::GET, unauthorized).await.0, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// Renaming a saved action to a taken name, or adding a domain twice, answers 409 as the
/// document says.
async fn a_taken_name_is_a_documented_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    let spec = Spec::fetch(&app).await;
    let action = |name: &str| json!({"name": name, "method": "POST", "url": "https://crm.example.com/leads"});
    let (status, _) = spec.check(&Method::POST, app.post("/api/v1/actions", &action("Lead")).await).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, other) = spec.check(&Method::POST, app.post("/api/v1/actions", &action("Other")).await).await;
    let path = format!("/api/v1/actions/{}", other["id"].as_str().unwrap());
    let renamed = app.request(Method::PUT, &path).json(&action("Lead")).send().await.unwrap();
    let (status, error) = spec.check(&Method::PUT, renamed).await;
    assert_eq!((status, &error["error"]["field"]), (StatusCode::CONFLICT, &json!("name")), "{error}");
    let domain = json!({"name": "mail.example.com"});
    assert_eq!(spec.check(&Method::POST, app.post("/api/v1/domains", &domain).await).await.0, StatusCode::CREATED);
    assert_eq!(spec.check(&Method::POST, app.post("/api/v1/domains", &domain).await).await.0, StatusCode::CONFLICT);
    app.stop().await;
}

/// Every operation taking a JSON body refuses a body that is not an object, before doing
/// anything: serde would read `[]` as a struct whose fields all have defaults (which rotated
/// the signing key) and an array as a struct's fields by position.
async fn bodies_that_are_not_objects_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let spec = Spec::fetch(&app).await;
    let (_, keys_before) = json_of(app.get("/api/v1/webhook-signing-key").await).await;
    let mut tried = 0;
    for (method, template, operation) in spec.operations() {
        if operation.pointer("/requestBody/content/application~1json").is_none() {
            continue;
        }
        let path = concrete_path(&template, operation);
        for body in [json!([]), json!(["Website", "generic"]), json!("x"), json!(1), Value::Null] {
            let response = app.request(method.clone(), &path).json(&body).send().await.unwrap();
            let (status, error) = spec.check(&method, response).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path} with {body}: {error}");
            assert_eq!(error["error"]["code"], "validation_failed", "{method} {path} with {body}: {error}");
            assert_eq!(error["error"]["field"], "body", "{method} {path} with {body}: {error}");
            tried += 1;
        }
    }
    assert!(tried >= 5 * 20, "only {tried} requests: fewer JSON bodies than the API takes");
    let (_, keys_after) = json_of(app.get("/api/v1/webhook-signing-key").await).await;
    assert_eq!(keys_before, keys_after, "a refused body changed the signing keys");
    let (_, sources) = json_of(app.get("/api/v1/sources").await).await;
    assert_eq!(sources["data"], json!([]), "a refused body made a source");
    app.stop().await;
}

/// `template` with each path parameter replaced by a value of the documented form.
fn concrete_path(template: &str, operation: &Value) -> String {
    let mut path = template.to_owned();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] != "path" {
            continue;
        }
        let name = parameter["name"].as_str().unwrap();
        let value = match parameter.pointer("/schema/pattern").and_then(Value::as_str) {
            // `^src_[0-9a-f]{32}$`
            Some(pattern) => {
                let prefix = pattern.trim_start_matches('^').split('_').next().unwrap();
                format!("{prefix}_{}", "0".repeat(32))
            }
            None => "someone@example.com".to_owned(),
        };
        path = path.replace(&format!("{{{name}}}"), &value);
    }
    path
}

/// schemathesis (its examples, boundary cases and random cases, positive and negative)
/// against a live Herald on SQLite, with some records in place: every answer must be no 5xx,
/// have a documented status and fit its documented schema. The cases are bounded per
/// operation and the seed is fixed, so the run is the same each time and takes under a
/// minute on two cores (one worker: schemathesis 4.32 fails with two). Three operations are
/// left out: `test_transport` and `verify_domain` reach machines named in the request (an
/// SMTP relay, DNS), which a test must not (tests/email.rs checks them against its own
/// servers), and `revoke_api_key` would revoke the key the run authenticates with, once
/// schemathesis finds its id in `GET /api-keys` (tests/api.rs checks revocation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_server_as_documented() {
    // `HERALD_TEST_PYTHON` (cargo xtask test installs schemathesis there), else `python3`.
    let python = herald_email::testing::python();
    let app = spawn_app(Backend::Sqlite).await;
    seed_a_failed_call(&app).await;
    let (status, source) =
        json_of(app.post("/api/v1/sources", &json!({"name": "Website", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let event = json!({"email": "grace@example.com", "event": "signed_up"});
    let sent = app.client.post(source["url"].as_str().unwrap()).json(&event).send().await.unwrap();
    assert_eq!(sent.status(), StatusCode::OK);

    let schema = app.url("/api/v1/openapi.json");
    let run = tokio::process::Command::new(python)
        .args(["-m", "schemathesis.cli", "run", &schema])
        .args(["--checks", "not_a_server_error,status_code_conformance,response_schema_conformance"])
        .args(["--phases", "examples,coverage,fuzzing", "--max-examples", "25", "--seed", "20260101"])
        .args(["--workers", "1", "--generation-database", "none", "--no-color", "--suppress-health-check", "all"])
        .args(["--continue-on-failure"])
        .args(["--exclude-operation-id", "test_transport", "--exclude-operation-id", "verify_domain"])
        .args(["--exclude-operation-id", "revoke_api_key"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {ADMIN_TOKEN}"))
        .current_dir(std::env::temp_dir())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("schemathesis took longer than 4 minutes")
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "schemathesis found failures ({}):\n{stdout}\n{stderr}", output.status);
    // A run that reached nothing, or only 401s, would pass without proving anything.
    let tested = stdout.lines().find_map(|l| l.trim().strip_prefix("Tested: ")).and_then(|n| n.parse::<u32>().ok());
    assert!(tested.is_some_and(|n| n >= 70), "too few operations tested:\n{stdout}");
    assert!(!stdout.contains("Authentication failed"), "the run lost its key:\n{stdout}");
    app.stop().await;
}
