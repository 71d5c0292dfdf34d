//! The admin API through HTTP: authentication, the error shape, API keys, workspace
//! isolation, operations endpoints and the worker, on both backends.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{ADMIN_TOKEN, Backend, expect_error, json, spawn_app};
use herald_domain::{ApiKeyName, ApiToken, JobKind, JobState, NewJob, WorkspaceName};
use herald_server::clock::Clock;
use herald_store::NewApiKey;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    health_and_readiness,
    api_requires_a_valid_bearer_key,
    openapi_describes_every_endpoint,
    api_keys_are_created_shown_once_listed_and_revoked,
    api_key_lists_paginate_with_cursors,
    bad_input_gets_a_clear_error,
    workspaces_cannot_see_each_other,
    metrics_report_requests_queue_and_jobs,
    delayed_jobs_wait_for_the_clock,
);

async fn health_and_readiness(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = json(app.client.get(app.url("/healthz")).send().await.expect("get")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = json(app.client.get(app.url("/readyz")).send().await.expect("get")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));

    // With the database gone, readiness says so while liveness stays up.
    app.store.close().await;
    let (status, body) = json(app.client.get(app.url("/readyz")).send().await.expect("get")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unavailable");
    assert_eq!(app.client.get(app.url("/healthz")).send().await.expect("get").status(), StatusCode::OK);
}

async fn api_requires_a_valid_bearer_key(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/api/v1/openapi.json", "/api/v1/api-keys", "/api/v1/workspace", "/api/v1/no-such-thing"] {
        let response = app.client.get(app.url(path)).send().await.expect("get");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let error = expect_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert!(error["message"].as_str().is_some_and(|m| m.contains("Authorization")), "{error}");

        let wrong = app.client.get(app.url(path)).bearer_auth("hk_not-a-key-of-this-server").send().await.expect("get");
        expect_error(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let basic = app.client.get(app.url(path)).basic_auth("admin", Some(ADMIN_TOKEN)).send().await.expect("get");
        expect_error(basic, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let response = app.client.post(app.url("/api/v1/api-keys")).json(&json!({"name": "x"})).send().await.expect("post");
    expect_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let (status, _) = json(app.get("/api/v1/openapi.json").await).await;
    assert_eq!(status, StatusCode::OK);
    expect_error(app.get("/api/v1/no-such-thing").await, StatusCode::NOT_FOUND, "not_found").await;
    let put = app.request(Method::PUT, "/api/v1/workspace").send().await.expect("put");
    expect_error(put, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    app.stop().await;
}

async fn openapi_describes_every_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, doc) = json(app.get("/api/v1/openapi.json").await).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let paths: HashSet<&str> = doc["paths"].as_object().expect("paths").keys().map(String::as_str).collect();
    let expected: HashSet<&str> = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/workspace",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{id}",
        "/api/v1/sources",
        "/api/v1/sources/{id}",
        "/api/v1/sources/{id}/rotate",
        "/api/v1/sources/{id}/enable",
        "/api/v1/sources/{id}/disable",
        "/api/v1/sources/{id}/rejections",
        "/api/v1/sources/{id}/samples",
        "/api/v1/sources/{id}/mapping/preview",
        "/api/v1/sources/{id}/mapping/suggest",
        "/api/v1/contacts",
        "/api/v1/contacts/{id}",
        "/api/v1/contacts/import",
        "/api/v1/contacts/{id}/topics",
        "/api/v1/topics",
        "/api/v1/topics/{id}",
        "/api/v1/events",
        "/api/v1/events/{id}",
        "/api/v1/segments",
        "/api/v1/segments/preview",
        "/api/v1/segments/{id}",
        "/api/v1/segments/{id}/members",
        "/api/v1/segments/{id}/members.csv",
        "/api/v1/segments/{id}/sizes",
        "/api/v1/segments/{id}/history",
        "/api/v1/campaigns",
        "/api/v1/campaigns/import",
        "/api/v1/campaigns/{id}",
        "/api/v1/campaigns/{id}/export",
        "/api/v1/campaigns/{id}/activate",
        "/api/v1/campaigns/{id}/pause",
        "/api/v1/campaigns/{id}/resume",
        "/api/v1/campaigns/{id}/archive",
        "/api/v1/campaigns/{id}/stats",
        "/api/v1/campaigns/{id}/email-stats",
        "/api/v1/campaigns/{id}/enroll",
        "/api/v1/campaigns/{id}/simulate",
        "/api/v1/campaigns/{id}/webhooks",
        "/api/v1/campaigns/{id}/webhooks/{webhook_id}",
        "/api/v1/templates/preview",
        "/api/v1/messages",
        "/api/v1/messages/{id}",
        "/api/v1/messages/{id}/resend",
        "/api/v1/messages/{id}/activity",
        "/api/v1/deliverability",
        "/api/v1/domains",
        "/api/v1/domains/{id}",
        "/api/v1/domains/{id}/verify",
        "/api/v1/suppressions",
        "/api/v1/suppressions/{email}",
        "/api/v1/suppressions/export.csv",
        "/api/v1/transport",
        "/api/v1/transport/test",
        "/api/v1/transport/provider",
        "/api/v1/webhook-deliveries",
        "/api/v1/webhook-deliveries/{id}",
        "/api/v1/webhook-deliveries/{id}/resend",
        "/api/v1/webhook-deliveries/resend",
        "/api/v1/webhook-signing-key",
        "/api/v1/webhook-signing-key/rotate",
        "/api/v1/actions",
        "/api/v1/actions/{id}",
        "/api/v1/actions/{id}/run",
        "/api/v1/webhook-drafts",
        "/api/v1/webhook-drafts/send",
        "/api/v1/webhook-drafts/skip",
        "/api/v1/webhook-drafts/{id}/send",
        "/api/v1/webhook-drafts/{id}/skip",
        "/api/v1/webhook-endpoints",
        "/api/v1/webhook-endpoints/{id}/enable",
        "/api/v1/templates",
        "/api/v1/templates/{id}",
        "/api/v1/templates/{id}/versions",
        "/api/v1/templates/{id}/preview",
        "/api/v1/layouts",
        "/api/v1/layouts/{id}",
        "/api/v1/layouts/{id}/versions",
        "/api/v1/layouts/{id}/preview",
        "/api/v1/send",
        "/api/v1/broadcasts",
        "/api/v1/broadcasts/{id}",
        "/api/v1/broadcasts/{id}/send",
        "/api/v1/broadcasts/{id}/pause",
        "/api/v1/broadcasts/{id}/resume",
        "/api/v1/broadcasts/{id}/cancel",
        "/api/v1/broadcasts/{id}/preview",
        "/api/v1/broadcasts/{id}/test",
    ]
    .into();
    assert_eq!(paths, expected);
    assert!(doc["components"]["securitySchemes"]["api_key"]["scheme"] == "bearer", "{}", doc["components"]);
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // Campaigns: one complete, valid example per trigger type.
    let examples = &doc["paths"]["/api/v1/campaigns"]["post"]["requestBody"]["content"]["application/json"]["examples"];
    for trigger in ["event", "drop_off", "inactivity", "source", "manual"] {
        let example = &examples[trigger]["value"];
        assert_eq!(example["trigger"]["type"], trigger, "{examples}");
        let mut document = example.clone();
        if trigger == "source" {
            document["trigger"] = json!({"type": "manual"});
        }
        let document = herald_campaign::document_from_value(document).expect(trigger);
        herald_campaign::compile(document).unwrap_or_else(|e| panic!("{trigger}: {e:?}"));
    }
    // Operations endpoints are documented as open; everything else inherits bearer auth.
    assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([{}]));
    assert!(doc["paths"]["/api/v1/api-keys"]["get"].get("security").is_none());
    app.stop().await;
}

async fn api_keys_are_created_shown_once_listed_and_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, created) = json(app.post("/api/v1/api-keys", &json!({"name": "zapier"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().expect("token shown at creation").to_owned();
    assert!(token.starts_with("hk_") && token.len() == 46, "{token}");
    assert_eq!(created["name"], "zapier");
    assert_eq!(created["hint"], format!("{}…", &token[..7]));
    assert_eq!(created["created_at"], "2026-01-01T00:00:00Z");
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("key_"));

    // The new key works on its own.
    let (status, workspace) =
        json(app.client.get(app.url("/api/v1/workspace")).bearer_auth(&token).send().await.expect("get")).await;
    assert_eq!((status, workspace["name"].clone()), (StatusCode::OK, json!("default")));

    // Listing and getting never show the token again.
    let (_, list) = json(app.get("/api/v1/api-keys").await).await;
    let names: Vec<&str> = list["data"].as_array().expect("data").iter().filter_map(|k| k["name"].as_str()).collect();
    assert_eq!(names, ["HERALD_ADMIN_TOKEN", "zapier"]);
    assert!(!list.to_string().contains(&token[3..]), "token leaked in list");
    let (status, got) = json(app.get(&format!("/api/v1/api-keys/{id}")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(got.get("token").is_none() && !got.to_string().contains(&token[3..]));

    // Revoking stops it at once; revoking again keeps the first time.
    app.clock.advance(Duration::from_secs(60));
    let (status, revoked) = json(app.delete(&format!("/api/v1/api-keys/{id}")).await).await;
    assert_eq!((status, revoked["revoked_at"].clone()), (StatusCode::OK, json!("2026-01-01T00:01:00Z")));
    let response = app.client.get(app.url("/api/v1/workspace")).bearer_auth(&token).send().await.expect("get");
    expect_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    app.clock.advance(Duration::from_secs(60));
    let (_, again) = json(app.delete(&format!("/api/v1/api-keys/{id}")).await).await;
    assert_eq!(again["revoked_at"], "2026-01-01T00:01:00Z");
    app.stop().await;
}

async fn api_key_lists_paginate_with_cursors(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..5 {
        let (status, _) = json(app.post("/api/v1/api-keys", &json!({"name": format!("k{i}")})).await).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut names = Vec::new();
    let mut path = "/api/v1/api-keys?limit=2".to_owned();
    loop {
        let (status, page) = json(app.get(&path).await).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().expect("data");
        assert!(data.len() <= 2);
        names.extend(data.iter().map(|k| k["name"].as_str().expect("name").to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/api-keys?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(names, ["HERALD_ADMIN_TOKEN", "k0", "k1", "k2", "k3", "k4"]);
    app.stop().await;
}

async fn bad_input_gets_a_clear_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (json!({}), "validation_failed", None),
        (json!({"name": ""}), "validation_failed", Some("name")),
        (json!({"name": "   "}), "validation_failed", Some("name")),
        (json!({"name": "a\u{0}b"}), "validation_failed", Some("name")),
        (json!({"name": "x".repeat(101)}), "validation_failed", Some("name")),
        (json!({"name": 5}), "validation_failed", Some("name")),
        (json!({"name": "ok", "admin": true}), "validation_failed", None),
        (json!([1, 2]), "validation_failed", None),
    ];
    for (body, code, field) in cases {
        let error = expect_error(app.post("/api/v1/api-keys", &body).await, StatusCode::BAD_REQUEST, code).await;
        if let Some(field) = field {
            assert_eq!(error["field"], field, "{body} → {error}");
        }
    }

    let malformed = app
        .request(Method::POST, "/api/v1/api-keys")
        .header("content-type", "application/json")
        .body("{\"name\": \"x\",")
        .send()
        .await
        .expect("post");
    let error = expect_error(malformed, StatusCode::BAD_REQUEST, "invalid_json").await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains("line 1 column")), "{error}");

    let wrong_type = app.request(Method::POST, "/api/v1/api-keys").body("name=x").send().await.expect("post");
    expect_error(wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;

    let huge = json!({"name": "x".repeat(300 * 1024)});
    expect_error(app.post("/api/v1/api-keys", &huge).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    for (path, field) in [
        ("/api/v1/api-keys?limit=0", "limit"),
        ("/api/v1/api-keys?limit=501", "limit"),
        ("/api/v1/api-keys?cursor=%%%", "cursor"),
        ("/api/v1/api-keys?cursor=a2V5XzEyMw", "cursor"),
        ("/api/v1/api-keys/ws_01930000000070008000000000000001", "id"),
        ("/api/v1/api-keys/not-an-id", "id"),
    ] {
        let error = expect_error(app.get(path).await, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(error["field"], field, "{path}");
    }
    expect_error(app.get("/api/v1/api-keys?limit=-1").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    expect_error(
        app.get("/api/v1/api-keys/key_01930000000070008000000000000001").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Nothing was created by any of it.
    let (_, list) = json(app.get("/api/v1/api-keys").await).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    app.stop().await;
}

async fn workspaces_cannot_see_each_other(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app
        .store
        .create_workspace(&WorkspaceName::parse("other").expect("name"), app.clock.now())
        .await
        .expect("workspace");
    let token_b = ApiToken::generate([9; 32]);
    let key = NewApiKey { name: ApiKeyName::parse("b").expect("name"), hash: token_b.hash(), hint: token_b.hint() };
    app.store.create_api_key(other.id, key, app.clock.now()).await.expect("key b");
    let as_b = |method: Method, path: &str| app.client.request(method, app.url(path)).bearer_auth(token_b.expose());

    let (_, a_keys) = json(app.get("/api/v1/api-keys").await).await;
    let a_key_id = a_keys["data"][0]["id"].as_str().expect("id").to_owned();
    let (_, created) = json(app.post("/api/v1/api-keys", &json!({"name": "a-second"})).await).await;
    let a_second = created["id"].as_str().expect("id").to_owned();

    let (_, ws) = json(as_b(Method::GET, "/api/v1/workspace").send().await.expect("get")).await;
    assert_eq!(ws["name"], "other");
    let (_, b_keys) = json(as_b(Method::GET, "/api/v1/api-keys").send().await.expect("get")).await;
    let b_names: Vec<&str> =
        b_keys["data"].as_array().expect("data").iter().filter_map(|k| k["name"].as_str()).collect();
    assert_eq!(b_names, ["b"]);

    for id in [&a_key_id, &a_second] {
        let get = as_b(Method::GET, &format!("/api/v1/api-keys/{id}")).send().await.expect("get");
        expect_error(get, StatusCode::NOT_FOUND, "not_found").await;
        let revoke = as_b(Method::DELETE, &format!("/api/v1/api-keys/{id}")).send().await.expect("delete");
        expect_error(revoke, StatusCode::NOT_FOUND, "not_found").await;
    }
    // A's keys are untouched.
    let (_, after) = json(app.get("/api/v1/api-keys").await).await;
    assert!(after["data"].as_array().expect("data").iter().all(|k| k["revoked_at"].is_null()), "{after}");
    let (_, a_names) = json(app.get("/api/v1/api-keys").await).await;
    assert!(!a_names.to_string().contains("\"b\""), "A does not see B's key: {a_names}");
    app.stop().await;
}

async fn metrics_report_requests_queue_and_jobs(backend: Backend) {
    let app = spawn_app(backend).await;
    let workspace = app.store.ensure_default_workspace(app.clock.now()).await.expect("workspace");
    let now = app.clock.now();
    let jobs = [
        NewJob::new(JobKind::Ping, json!({}), now),
        NewJob::new(JobKind::Ping, json!({}), now),
        NewJob::new(JobKind::Ping, json!({}), now + Duration::from_secs(3600)),
    ];
    app.store.enqueue_jobs(workspace.id, &jobs, now).await.expect("enqueue");
    app.get("/api/v1/workspace").await;

    let scrape =
        || async { app.client.get(app.url("/metrics")).send().await.expect("get").text().await.expect("text") };
    let text = scrape().await;
    assert!(text.contains("herald_queue_jobs{state=\"due\"} 2"), "{text}");
    assert!(text.contains("herald_queue_jobs{state=\"scheduled\"} 1"), "{text}");
    assert!(
        text.contains("herald_http_requests_total{method=\"GET\",route=\"/api/v1/workspace\",status=\"200\"}"),
        "{text}"
    );
    assert!(text.contains("herald_http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains("herald_database_up 1"), "{text}");

    assert_eq!(app.run_jobs().await, 2);
    let text = scrape().await;
    assert!(text.contains("herald_queue_jobs{state=\"due\"} 0"), "{text}");
    assert!(text.contains("herald_jobs_total{kind=\"ping\",outcome=\"done\"}"), "{text}");
    assert!(text.contains("herald_job_duration_seconds_bucket{kind=\"ping\""), "{text}");
    app.stop().await;
}

async fn delayed_jobs_wait_for_the_clock(backend: Backend) {
    let app = spawn_app(backend).await;
    let workspace = app.store.ensure_default_workspace(app.clock.now()).await.expect("workspace");
    let now = app.clock.now();
    let in_two_days = now + Duration::from_secs(2 * 86_400);
    let ids = app
        .store
        .enqueue_jobs(workspace.id, &[NewJob::new(JobKind::Ping, json!({}), in_two_days)], now)
        .await
        .expect("enqueue");

    assert_eq!(app.run_jobs().await, 0, "nothing is due yet");
    app.clock.advance(Duration::from_secs(2 * 86_400 - 1));
    assert_eq!(app.run_jobs().await, 0, "one second early");
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(app.run_jobs().await, 1);
    let job = app.store.get_job(workspace.id, ids[0]).await.expect("job");
    assert_eq!(job.state, JobState::Done);
    let records = app.store.ping_records(workspace.id).await.expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].applied_at, in_two_days);
    assert_eq!(app.run_jobs().await, 0, "done jobs do not run again");
    app.stop().await;
}
