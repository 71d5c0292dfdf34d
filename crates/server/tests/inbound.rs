//! Inbound webhooks through HTTP on both backends: sources and their URLs, the generic,
//! PostHog and mapped payloads, responses and refusals, idempotency, batches, contacts and
//! the event log.

mod common;

use std::time::Duration;

use common::{Backend, TestApp, expect_error, json, spawn_app};
use herald_server::clock::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    sources_are_created_listed_rotated_disabled_and_deleted,
    seed_000_payloads_create_and_update_one_contact,
    json_form_query_and_put_are_all_accepted,
    bad_requests_are_refused_naming_the_field_and_logged,
    hostile_input_is_refused_without_harm,
    idempotency_keys_make_retries_harmless,
    posthog_events_match_by_distinct_id_and_skip_the_unknown,
    mapped_sources_keep_samples_and_apply_the_mapping,
    batches_accept_the_valid_items,
    rate_limits_answer_429_with_retry_after,
    contacts_api_and_csv_import,
    event_log_filters_and_explains,
    identity_conflicts_are_recorded_not_merged,
    csv_import_takes_a_hundred_thousand_rows_in_one_call,
    housekeeping_purges_expired_idempotency_keys,
    a_change_made_by_another_node_applies_within_a_second,
);

/// Creates a source of `kind` and returns (id, url).
async fn source(app: &TestApp, kind: &str) -> (String, String) {
    let (status, body) =
        json(app.post("/api/v1/sources", &json!({"name": format!("{kind} source"), "kind": kind})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (body["id"].as_str().expect("id").to_owned(), body["url"].as_str().expect("url").to_owned())
}

async fn send(app: &TestApp, url: &str, body: &Value) -> (StatusCode, Value) {
    json(app.client.post(url).json(body).send().await.expect("post")).await
}

async fn contacts(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = json(app.get(&format!("/api/v1/contacts{query}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().expect("data").clone()
}

async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = json(app.get(&format!("/api/v1/events{query}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().expect("data").clone()
}

async fn sources_are_created_listed_rotated_disabled_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, url) = source(&app, "generic").await;
    assert!(url.starts_with(&format!("{}/webhooks/inbound/whk_", app.address)), "{url}");
    let token = url.rsplit('/').next().expect("token");
    assert!(token.len() >= 4 + 43, "≥ 256 random bits: {token}");

    let (_, listed) = json(app.get("/api/v1/sources").await).await;
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert!(!listed.to_string().contains(&token[4..]), "the token is never shown again");
    let (_, got) = json(app.get(&format!("/api/v1/sources/{id}")).await).await;
    assert!(got.get("url").is_none() && got["url_hint"].as_str().is_some_and(|h| h.ends_with('…')));

    assert_eq!(send(&app, &url, &json!({"email": "a@example.com"})).await.0, StatusCode::OK);

    // Rotate: the old URL is dead at once.
    let (status, rotated) =
        json(app.request(Method::POST, &format!("/api/v1/sources/{id}/rotate")).send().await.expect("rotate")).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_url = rotated["url"].as_str().expect("url").to_owned();
    assert_ne!(new_url, url);
    let (status, body) = send(&app, &url, &json!({"email": "a@example.com"})).await;
    assert_eq!((status, body["error"]["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")));
    assert_eq!(send(&app, &new_url, &json!({"email": "a@example.com"})).await.0, StatusCode::OK);

    // Rotate with a grace period: the old URL works until it ends.
    let (_, rotated) =
        json(app.post(&format!("/api/v1/sources/{id}/rotate"), &json!({"grace_seconds": 3600})).await).await;
    let newest = rotated["url"].as_str().expect("url").to_owned();
    assert_eq!(rotated["previous_url_expires_at"], "2026-01-01T01:00:00Z");
    assert_eq!(send(&app, &new_url, &json!({"email": "a@example.com"})).await.0, StatusCode::OK);
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(send(&app, &new_url, &json!({"email": "a@example.com"})).await.0, StatusCode::NOT_FOUND);
    let error = expect_error(
        app.post(&format!("/api/v1/sources/{id}/rotate"), &json!({"grace_seconds": 999_999_999})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(error["field"], "grace_seconds");

    // Disable and enable.
    let (_, disabled) =
        json(app.request(Method::POST, &format!("/api/v1/sources/{id}/disable")).send().await.expect("disable")).await;
    assert_eq!(disabled["enabled"], false);
    assert_eq!(send(&app, &newest, &json!({"email": "a@example.com"})).await.0, StatusCode::NOT_FOUND);
    app.request(Method::POST, &format!("/api/v1/sources/{id}/enable")).send().await.expect("enable");
    assert_eq!(send(&app, &newest, &json!({"email": "a@example.com"})).await.0, StatusCode::OK);

    // Bad kinds and names.
    let error = expect_error(
        app.post("/api/v1/sources", &json!({"name": "x", "kind": "stripe"})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(error["field"], "kind");
    let error = expect_error(
        app.post("/api/v1/sources", &json!({"name": " ", "kind": "generic"})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(error["field"], "name");

    // Delete: URL gone, events kept.
    let deleted = app.delete(&format!("/api/v1/sources/{id}")).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(send(&app, &newest, &json!({"email": "a@example.com"})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(events(&app, "").await.len(), 4);
    expect_error(app.get(&format!("/api/v1/sources/{id}")).await, StatusCode::NOT_FOUND, "not_found").await;
    // Unknown tokens, malformed tokens: the same plain 404.
    for bad in ["whk_nope", "..%2F..%2Fetc", &"x".repeat(500)] {
        let response = app
            .client
            .post(app.url(&format!("/webhooks/inbound/{bad}")))
            .json(&json!({"email": "a@example.com"}))
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    app.stop().await;
}

async fn seed_000_payloads_create_and_update_one_contact(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, url) = source(&app, "generic").await;
    let minimum = json!({"email": "user@example.com"});
    let recommended = json!({"email": "user@example.com", "event": "user_signed_up", "data": {"name": "Alex Rivera", "plan": "free", "company": "Acme Inc", "signup_source": "landing_page"}});
    let full = json!({
        "email": "User@Example.com", "event": "checkout_completed", "userId": "usr_8a3f2d",
        "data": {"name": "Alex Rivera", "first_name": "Alex", "last_name": "Rivera", "plan": "pro", "company": "Acme Inc",
                 "company_size": "11-50", "country": "US", "order_value": "149.00", "product_name": "Pro Plan - Annual",
                 "custom_variable_1": "any value you want available in email copy"}
    });
    let mut contact_ids = Vec::new();
    for payload in [&minimum, &recommended, &full] {
        let (status, body) = send(&app, &url, payload).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "accepted");
        assert!(body["event_id"].as_str().is_some_and(|id| id.starts_with("evt_")));
        contact_ids.push(body["contact_id"].clone());
    }
    assert!(contact_ids.windows(2).all(|w| w[0] == w[1]), "one contact: {contact_ids:?}");
    let all = contacts(&app, "").await;
    assert_eq!(all.len(), 1);
    let contact = &all[0];
    assert_eq!(contact["email"], "user@example.com");
    assert_eq!(contact["user_id"], "usr_8a3f2d");
    assert_eq!(
        (contact["name"].clone(), contact["first_name"].clone(), contact["last_name"].clone()),
        (json!("Alex Rivera"), json!("Alex"), json!("Rivera"))
    );
    assert_eq!(contact["attributes"]["plan"], "pro");
    assert_eq!(contact["attributes"]["signup_source"], "landing_page", "kept from the earlier event");
    assert_eq!(contact["attributes"]["order_value"], "149.00");

    let (_, detail) = json(app.get(&format!("/api/v1/contacts/{}", contact["id"].as_str().expect("id"))).await).await;
    let names: Vec<&str> = detail["recent_events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or("(none)"))
        .collect();
    assert_eq!(names, ["checkout_completed", "user_signed_up", "(none)"]);
    let filtered = contacts(&app, "?email=USER@example.com").await;
    assert_eq!(filtered.len(), 1);
    assert_eq!(contacts(&app, "?user_id=usr_8a3f2d").await.len(), 1);
    assert_eq!(contacts(&app, "?attribute=plan&value=pro").await.len(), 1);
    assert_eq!(contacts(&app, "?attribute=plan&value=free").await.len(), 0);
    app.stop().await;
}

async fn json_form_query_and_put_are_all_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, url) = source(&app, "generic").await;
    let body = r#"{"email": "zap@example.com", "event": "zapier_sent"}"#;
    for content_type in [None, Some("text/plain"), Some("application/json; charset=utf-8")] {
        let mut request = app.client.post(&url).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let (status, reply) = json(request.send().await.expect("post")).await;
        assert_eq!(status, StatusCode::OK, "{content_type:?}: {reply}");
    }
    let form = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=form%40example.com&event=form_submitted&data.plan=pro")
        .send()
        .await
        .expect("post");
    assert_eq!(form.status(), StatusCode::OK);
    let get =
        app.client.get(format!("{url}?email=get@example.com&event=hl_triggered&plan=team")).send().await.expect("get");
    assert_eq!(get.status(), StatusCode::OK);
    let put =
        app.client.put(&url).json(&json!({"email": "put@example.com", "event": "updated"})).send().await.expect("put");
    assert_eq!(put.status(), StatusCode::OK);
    let xml = app.client.post(&url).header("content-type", "application/xml").body("<a/>").send().await.expect("post");
    let error = expect_error(xml, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains("application/json")));
    let delete = app.client.delete(&url).send().await.expect("delete");
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);

    assert_eq!(contacts(&app, "?email=form@example.com").await[0]["attributes"]["plan"], "pro");
    assert_eq!(contacts(&app, "?email=get@example.com").await[0]["attributes"]["plan"], "team");
    let get_event = &events(&app, "?name=hl_triggered").await[0];
    let (_, detail) = json(app.get(&format!("/api/v1/events/{}", get_event["id"].as_str().expect("id"))).await).await;
    assert_eq!(detail["request"]["method"], "GET");
    assert_eq!(events(&app, "").await.len(), 6);
    app.stop().await;
}

async fn bad_requests_are_refused_naming_the_field_and_logged(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, url) = source(&app, "generic").await;
    let cases = [
        (json!({"event": "x"}), "email"),
        (json!({"email": "not-an-email", "event": "x"}), "email"),
        (json!({"email": "a@example.com", "event": 42}), "event"),
        (json!({"email": "a@example.com", "data": [1, 2]}), "data"),
        (json!({"email": "a@example.com", "data": "x"}), "data"),
        (json!({"userId": "nobody-knows-me", "event": "x"}), "email"),
        (json!(["not", "an", "object"]), "body"),
    ];
    for (payload, field) in &cases {
        let response = app.client.post(&url).json(payload).send().await.expect("post");
        let error = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(error["field"], *field, "{payload} → {error}");
    }
    let malformed = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"email\": \"a@example.com\",")
        .send()
        .await
        .expect("post");
    let error = expect_error(malformed, StatusCode::BAD_REQUEST, "invalid_json").await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains("line 1 column")), "{error}");
    let huge = json!({"email": "a@example.com", "data": {"blob": "x".repeat(300 * 1024)}});
    expect_error(
        app.client.post(&url).json(&huge).send().await.expect("post"),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;

    assert!(events(&app, "").await.is_empty(), "nothing stored");
    assert!(contacts(&app, "").await.is_empty());
    // The rejection log explains, newest first. Its writer is asynchronous: wait for it.
    let mut rejections = Vec::new();
    for _ in 0..200 {
        let (_, body) = json(app.get(&format!("/api/v1/sources/{id}/rejections")).await).await;
        rejections = body["data"].as_array().expect("data").clone();
        if rejections.len() == cases.len() + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rejections.len(), cases.len() + 2);
    assert_eq!(rejections[0]["status"], 413);
    assert_eq!(rejections[1]["code"], "invalid_json");
    assert!(rejections[2]["body"].as_str().is_some_and(|b| b.contains("not")), "{}", rejections[2]);
    assert!(rejections.iter().all(|r| r["body"].as_str().is_some_and(|b| b.len() <= 4096)));
    app.stop().await;
}

async fn hostile_input_is_refused_without_harm(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, url) = source(&app, "generic").await;
    let post_raw = |body: Vec<u8>| app.client.post(&url).header("content-type", "application/json").body(body).send();
    assert_eq!(
        post_raw(b"{\"email\": \"\xff\xfe@example.com\"}".to_vec()).await.expect("post").status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(post_raw(Vec::new()).await.expect("post").status(), StatusCode::BAD_REQUEST);
    let deep =
        format!("{{\"email\": \"a@example.com\", \"data\": {}{}}}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let response = post_raw(deep.into_bytes()).await.expect("post");
    let error = expect_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains("deeper")), "{error}");
    // The server answers 413 as soon as the limit is passed and closes the connection, so the
    // client may see that answer or, still writing, a broken pipe; both mean "refused".
    match post_raw(vec![b'x'; 10 * 1024 * 1024]).await {
        Ok(response) => assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    // Numbers are kept as written, or refused naming the field (bad_input.rs).
    let big_numbers = r#"{"email": "n@example.com", "data": {"huge": 1e308, "neg": -9223372036854775808}}"#;
    assert_eq!(post_raw(big_numbers.as_bytes().to_vec()).await.expect("post").status(), StatusCode::OK);
    let rounded = r#"{"email": "n@example.com", "data": {"big": 123456789012345678901234567890}}"#;
    assert_eq!(post_raw(rounded.as_bytes().to_vec()).await.expect("post").status(), StatusCode::BAD_REQUEST);
    let too_big = r#"{"email": "n@example.com", "data": {"inf": 1e400}}"#;
    assert_eq!(post_raw(too_big.as_bytes().to_vec()).await.expect("post").status(), StatusCode::BAD_REQUEST);
    let duplicates = r#"{"email": "d@example.com", "email": "e@example.com", "data": {"k": 1, "k": 2}}"#;
    assert_eq!(post_raw(duplicates.as_bytes().to_vec()).await.expect("post").status(), StatusCode::OK);
    let nulls = r#"{"email": "nulls@example.com", "event": null, "userId": null, "phone": null, "data": {"a": null, "b": [null], "c": {"d": null}}}"#;
    assert_eq!(post_raw(nulls.as_bytes().to_vec()).await.expect("post").status(), StatusCode::OK);
    for email in ["Üser@Bücher.de", "用户@例子.广告", "x@xn--bcher-kva.de"] {
        let (status, body) = send(&app, &url, &json!({"email": email, "event": "intl"})).await;
        assert_eq!(status, StatusCode::OK, "{email}: {body}");
    }
    assert_eq!(contacts(&app, "?email=%C3%BCser@b%C3%BCcher.de").await.len(), 1, "IDN email lower-cased");
    assert_eq!(contacts(&app, "?email=e@example.com").await.len(), 1, "duplicate keys: the last wins");
    let nulls = &contacts(&app, "?email=nulls@example.com").await[0];
    assert_eq!(nulls["attributes"], json!({"b": [null], "c": {"d": null}}));
    let nul = r#"{"email": "nul@example.com", "data": {"k\u0000": "a\u0000b"}}"#;
    assert_eq!(post_raw(nul.as_bytes().to_vec()).await.expect("post").status(), StatusCode::OK);
    let stored = &contacts(&app, "?email=nul@example.com").await[0];
    assert_eq!(stored["attributes"], json!({"k\u{fffd}": "a\u{fffd}b"}), "the same on both backends");
    // The server is still well.
    assert_eq!(app.client.get(app.url("/healthz")).send().await.expect("get").status(), StatusCode::OK);
    app.stop().await;
}

async fn idempotency_keys_make_retries_harmless(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, url) = source(&app, "generic").await;
    let payload = json!({"email": "retry@example.com", "event": "paid"});
    let mut replies = Vec::new();
    for header in ["idempotency-key", "idempotency-key", "webhook-id"] {
        let key = if header == "webhook-id" { "msg_2" } else { "order-1" };
        let (status, body) =
            json(app.client.post(&url).header(header, key).json(&payload).send().await.expect("post")).await;
        assert_eq!(status, StatusCode::OK);
        replies.push(body);
    }
    assert_eq!(replies[0], replies[1], "a replay returns the original response");
    assert_ne!(replies[0]["event_id"], replies[2]["event_id"]);
    assert_eq!(events(&app, "").await.len(), 2);
    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let (_, later) =
        json(app.client.post(&url).header("idempotency-key", "order-1").json(&payload).send().await.expect("post"))
            .await;
    assert_ne!(later["event_id"], replies[0]["event_id"], "keys last 24 hours");
    let long_key = "k".repeat(300);
    let response = app.client.post(&url).header("idempotency-key", long_key).json(&payload).send().await.expect("post");
    let error = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "idempotency-key");
    app.stop().await;
}

fn posthog_payload(uuid: &str, distinct_id: &str, email: Option<&str>) -> Value {
    let person_properties = match email {
        Some(email) => json!({"email": email, "plan": "free"}),
        None => json!({"plan": "free"}),
    };
    json!({
        "event": {
            "uuid": uuid, "event": "pricing_page_viewed", "distinct_id": distinct_id,
            "properties": {"$current_url": "https://acme.test/pricing", "$set": {"company": "Acme"}},
            "timestamp": "2026-01-01T00:00:00.000Z", "elements_chain": "", "url": "https://eu.posthog.com/events/1"
        },
        "person": {"id": "p-1", "properties": person_properties, "name": "Alex", "url": "https://eu.posthog.com/person/1"}
    })
}

async fn posthog_events_match_by_distinct_id_and_skip_the_unknown(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, url) = source(&app, "posthog").await;
    let (status, first) = send(&app, &url, &posthog_payload("u-1", "ph_42", Some("Alex@Acme.test"))).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let contact = &contacts(&app, "?user_id=ph_42").await[0];
    assert_eq!(
        (contact["email"].clone(), contact["attributes"]["company"].clone()),
        (json!("alex@acme.test"), json!("Acme"))
    );
    // Later events of the same person without an email match by distinct_id.
    let (_, second) = send(&app, &url, &posthog_payload("u-2", "ph_42", None)).await;
    assert_eq!(second["contact_id"], first["contact_id"]);
    // PostHog retries carry the same uuid: one event.
    let (_, retry) = send(&app, &url, &posthog_payload("u-2", "ph_42", None)).await;
    assert_eq!(retry, second);
    // An anonymous person: 200, logged as skipped.
    let (status, skipped) = send(&app, &url, &posthog_payload("u-3", "anon-9", None)).await;
    assert_eq!(status, StatusCode::OK, "{skipped}");
    assert!(skipped["contact_id"].is_null());
    let (_, detail) =
        json(app.get(&format!("/api/v1/events/{}", skipped["event_id"].as_str().expect("id"))).await).await;
    assert_eq!(detail["outcome"]["contact"], "skipped");
    assert_eq!(detail["name"], "pricing_page_viewed");
    assert_eq!(events(&app, "").await.len(), 3);
    let bad = send(&app, &url, &json!({"event": {"event": "x"}})).await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST);
    assert_eq!(bad.1["error"]["field"], "event.distinct_id");
    app.stop().await;
}

async fn mapped_sources_keep_samples_and_apply_the_mapping(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, url) = source(&app, "mapped").await;
    let stripe = json!({
        "id": "evt_1", "type": "checkout.session.completed",
        "data": {"object": {"customer_details": {"email": "Buyer@Shop.test", "name": "Bea"}, "amount_total": 4900, "metadata": {"plan": "pro"}}}
    });
    // Before a mapping exists: accepted, kept as a sample, logged without a contact.
    let (status, first) = send(&app, &url, &stripe).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(first["contact_id"].is_null());
    let mut samples = Vec::new();
    for _ in 0..200 {
        let (_, body) = json(app.get(&format!("/api/v1/sources/{id}/samples")).await).await;
        samples = body["data"].as_array().expect("data").clone();
        if !samples.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(samples[0]["body"], stripe);
    let (_, suggested) = json(app.get(&format!("/api/v1/sources/{id}/mapping/suggest")).await).await;
    assert_eq!(suggested["email"], "data.object.customer_details.email", "{suggested}");

    let mapping = json!({
        "email": "data.object.customer_details.email",
        "event_name": {"path": "type"},
        "attributes": {"plan": "data.object.metadata.plan", "name": "data.object.customer_details.name"},
        "properties": {"amount": "data.object.amount_total"},
        "dedupe_key": "id"
    });
    let (status, preview) = json(
        app.post(&format!("/api/v1/sources/{id}/mapping/preview"), &json!({"mapping": mapping, "sample": 0})).await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["event"]["email"], "buyer@shop.test");
    let bad_mapping = json!({"email": "data..x", "event_name": {"path": "type"}});
    let error = expect_error(
        app.request(Method::PATCH, &format!("/api/v1/sources/{id}"))
            .json(&json!({"mapping": bad_mapping}))
            .send()
            .await
            .expect("patch"),
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(error["field"].as_str().is_some_and(|f| f.starts_with("mapping")), "{error}");
    let (status, _) = json(
        app.request(Method::PATCH, &format!("/api/v1/sources/{id}"))
            .json(&json!({"mapping": mapping}))
            .send()
            .await
            .expect("patch"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (_, mapped) = send(&app, &url, &json!({"id": "evt_2", "type": "checkout.session.completed", "data": {"object": {"customer_details": {"email": "Buyer@Shop.test", "name": "Bea"}, "amount_total": 4900, "metadata": {"plan": "pro"}}}})).await;
    let contact = &contacts(&app, "?email=buyer@shop.test").await[0];
    assert_eq!(mapped["contact_id"], contact["id"]);
    assert_eq!(contact["attributes"]["plan"], "pro");
    let event = &events(&app, "?name=checkout.session.completed").await[0];
    assert_eq!(event["properties"]["amount"], 4900);
    // A request the mapping cannot read: still 200, the outcome says why.
    let (status, unreadable) = send(
        &app,
        &url,
        &json!({"id": "evt_3", "type": "x", "data": {"object": {"customer_details": {"email": "nope"}}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, detail) =
        json(app.get(&format!("/api/v1/events/{}", unreadable["event_id"].as_str().expect("id"))).await).await;
    assert!(detail["outcome"]["notes"].to_string().contains("mapping could not read"), "{detail}");
    app.stop().await;
}

async fn batches_accept_the_valid_items(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, url) = source(&app, "generic").await;
    let batch = json!([
        {"email": "b1@example.com", "event": "one"},
        {"email": "bad", "event": "two"},
        {"email": "b3@example.com", "event": "three"},
        {"userId": "unknown"}
    ]);
    let (status, body) = json(app.client.post(format!("{url}/batch")).json(&batch).send().await.expect("post")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["accepted"].clone(), body["rejected"].clone()), (json!(2), json!(2)));
    let results = body["results"].as_array().expect("results");
    assert_eq!(results[0]["status"], "accepted");
    assert_eq!(results[1]["status"], "rejected");
    assert_eq!(results[1]["error"]["field"], "email");
    assert_eq!(results[3]["error"]["field"], "email");
    assert_eq!(
        results.iter().map(|r| r["index"].clone()).collect::<Vec<_>>(),
        vec![json!(0), json!(1), json!(2), json!(3)]
    );
    assert_eq!(events(&app, "").await.len(), 2);

    let big: Vec<Value> =
        (0..1000).map(|i| json!({"email": format!("bulk{i}@example.com"), "event": "bulk"})).collect();
    let (status, body) = json(
        app.client
            .post(format!("{url}/batch"))
            .header("idempotency-key", "bulk-1")
            .json(&big)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!((status, body["accepted"].clone()), (StatusCode::OK, json!(1000)));
    let (_, again) = json(
        app.client
            .post(format!("{url}/batch"))
            .header("idempotency-key", "bulk-1")
            .json(&big)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(again["results"], body["results"], "a replayed batch changes nothing");
    assert_eq!(events(&app, "?name=bulk&limit=500").await.len(), 500);
    let too_many: Vec<Value> = (0..1001).map(|i| json!({"email": format!("x{i}@example.com")})).collect();
    let error = expect_error(
        app.client.post(format!("{url}/batch")).json(&too_many).send().await.expect("post"),
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains("1000")));
    expect_error(
        app.client.post(format!("{url}/batch")).json(&json!({"email": "a@example.com"})).send().await.expect("post"),
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    app.stop().await;
}

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, url) = source(&app, "generic").await;
    let (status, _) = json(
        app.request(Method::PATCH, &format!("/api/v1/sources/{id}"))
            .json(&json!({"rate_limit_per_second": 2}))
            .send()
            .await
            .expect("patch"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let payload = json!({"email": "r@example.com"});
    assert_eq!(send(&app, &url, &payload).await.0, StatusCode::OK);
    assert_eq!(send(&app, &url, &payload).await.0, StatusCode::OK);
    let limited = app.client.post(&url).json(&payload).send().await.expect("post");
    assert_eq!(limited.headers()["retry-after"], "1");
    expect_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(send(&app, &url, &payload).await.0, StatusCode::OK, "refilled by the clock");
    app.request(Method::PATCH, &format!("/api/v1/sources/{id}"))
        .json(&json!({"rate_limit_per_second": null}))
        .send()
        .await
        .expect("patch");
    for _ in 0..5 {
        assert_eq!(send(&app, &url, &payload).await.0, StatusCode::OK, "limit removed");
    }
    app.stop().await;
}

async fn contacts_api_and_csv_import(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, created) = json(
        app.post(
            "/api/v1/contacts",
            &json!({"email": "Ann@Example.com", "first_name": "Ann", "attributes": {"plan": "free"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let error = expect_error(
        app.post("/api/v1/contacts", &json!({"email": "ann@example.com"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(error["field"], "email");
    let error = expect_error(
        app.post("/api/v1/contacts", &json!({"first_name": "Nobody"})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(error["field"], "email");
    let (status, patched) = json(
        app.request(Method::PATCH, &format!("/api/v1/contacts/{id}"))
            .json(&json!({"user_id": 77, "first_name": null, "attributes": {"plan": "pro", "seats": 3}}))
            .send()
            .await
            .expect("patch"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (patched["user_id"].clone(), patched["first_name"].clone(), patched["attributes"].clone()),
        (json!("77"), Value::Null, json!({"plan": "pro", "seats": 3}))
    );

    let mut csv = String::from("email,first_name,plan,company\n");
    for i in 0..5000 {
        csv.push_str(&format!("person{i}@example.com,P{i},free,Co {i}\n"));
    }
    csv.push_str("ann@example.com,Ann,enterprise,\n");
    csv.push_str("not-an-email,X,free,\n");
    csv.push_str(",NoEmail,free,\n");
    let response = app
        .request(Method::POST, "/api/v1/contacts/import")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("import");
    let (status, summary) = json(response).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(
        (summary["created"].clone(), summary["updated"].clone(), summary["failed"].clone()),
        (json!(5000), json!(1), json!(2))
    );
    assert_eq!(summary["errors"][0]["row"], 5002);
    assert!(summary["errors"][0]["message"].as_str().is_some_and(|m| m.starts_with("email")));
    assert_eq!(contacts(&app, "?email=person4999@example.com").await[0]["attributes"]["company"], "Co 4999");
    assert_eq!(contacts(&app, "?email=ann@example.com").await[0]["attributes"]["plan"], "enterprise");
    let wrong = app.request(Method::POST, "/api/v1/contacts/import").json(&json!([])).send().await.expect("import");
    expect_error(wrong, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let headerless = app
        .request(Method::POST, "/api/v1/contacts/import")
        .header("content-type", "text/csv")
        .body("name\nx\n")
        .send()
        .await
        .expect("import");
    expect_error(headerless, StatusCode::BAD_REQUEST, "validation_failed").await;

    let deleted = app.delete(&format!("/api/v1/contacts/{id}")).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    expect_error(app.get(&format!("/api/v1/contacts/{id}")).await, StatusCode::NOT_FOUND, "not_found").await;
    app.stop().await;
}

async fn event_log_filters_and_explains(backend: Backend) {
    let app = spawn_app(backend).await;
    let (source_a, url_a) = source(&app, "generic").await;
    let (_, url_b) = source(&app, "generic").await;
    send(&app, &url_a, &json!({"email": "a@example.com", "event": "signup"})).await;
    app.clock.advance(Duration::from_secs(60));
    send(&app, &url_b, &json!({"email": "b@example.com", "event": "Signup"})).await;
    app.clock.advance(Duration::from_secs(60));
    let (_, last) = send(&app, &url_a, &json!({"email": "a@example.com"})).await;
    assert_eq!(events(&app, "").await.len(), 3);
    assert_eq!(events(&app, "?name=signup").await.len(), 1, "names are case-sensitive");
    assert_eq!(events(&app, &format!("?source_id={source_a}")).await.len(), 2);
    assert_eq!(events(&app, &format!("?contact_id={}", last["contact_id"].as_str().expect("id"))).await.len(), 2);
    assert_eq!(events(&app, "?from=2026-01-01T00:01:00Z&until=2026-01-01T00:02:00Z").await.len(), 1);
    expect_error(app.get("/api/v1/events?from=yesterday").await, StatusCode::BAD_REQUEST, "validation_failed").await;
    expect_error(app.get("/api/v1/events?contact_id=evt_1").await, StatusCode::BAD_REQUEST, "validation_failed").await;
    let (_, detail) = json(app.get(&format!("/api/v1/events/{}", last["event_id"].as_str().expect("id"))).await).await;
    assert_eq!(detail["request"]["body"], r#"{"email":"a@example.com"}"#);
    assert_eq!(detail["request"]["body_encoding"], "utf8");
    assert_eq!(detail["outcome"]["contact"], "unchanged");
    assert!(detail["outcome"]["notes"][0].as_str().is_some_and(|n| n.contains("No event name")), "{detail}");
    app.stop().await;
}

async fn identity_conflicts_are_recorded_not_merged(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, url) = source(&app, "generic").await;
    let (_, x) = send(&app, &url, &json!({"email": "x@example.com"})).await;
    let (_, y) = send(&app, &url, &json!({"email": "y@example.com", "userId": "u-y"})).await;
    let (status, event) =
        send(&app, &url, &json!({"email": "x@example.com", "userId": "u-y", "data": {"plan": "pro"}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(event["contact_id"], x["contact_id"], "email wins");
    let (_, detail) = json(app.get(&format!("/api/v1/events/{}", event["event_id"].as_str().expect("id"))).await).await;
    assert_eq!(detail["outcome"]["conflicts"][0]["kind"], "held_by_other");
    assert_eq!(detail["outcome"]["conflicts"][0]["contact"], y["contact_id"]);
    let (_, y_contact) =
        json(app.get(&format!("/api/v1/contacts/{}", y["contact_id"].as_str().expect("id"))).await).await;
    assert_eq!(y_contact["attributes"], json!({}), "the other contact is untouched");
    app.stop().await;
}

async fn csv_import_takes_a_hundred_thousand_rows_in_one_call(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut csv = String::with_capacity(5_000_000);
    csv.push_str("email,first_name,last_name,plan,seats\n");
    for i in 0..100_000 {
        csv.push_str(&format!("member{i}@example.com,First{i},Last{i},free,{}\n", i % 50));
    }
    let response = app
        .request(Method::POST, "/api/v1/contacts/import")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("import");
    let (status, summary) = json(response).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!((summary["created"].clone(), summary["failed"].clone()), (json!(100_000), json!(0)));
    let found = contacts(&app, "?email=member99999@example.com").await;
    assert_eq!(found[0]["last_name"], "Last99999");
    assert_eq!(found[0]["attributes"]["seats"], "49");
    app.stop().await;
}

async fn housekeeping_purges_expired_idempotency_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, url) = source(&app, "generic").await;
    let payload = json!({"email": "h@example.com", "event": "paid"});
    for key in ["a", "b"] {
        let response = app.client.post(&url).header("idempotency-key", key).json(&payload).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let clock: herald_server::clock::SharedClock = std::sync::Arc::new(app.clock.clone());
    assert_eq!(
        herald_server::app::housekeeping::run_once(&app.store, &clock).await.expect("purge"),
        0,
        "still in the window"
    );
    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(herald_server::app::housekeeping::run_once(&app.store, &clock).await.expect("purge"), 2);
    app.stop().await;
}

async fn a_change_made_by_another_node_applies_within_a_second(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, url) = source(&app, "generic").await;
    let payload = json!({"email": "n@example.com"});
    assert_eq!(send(&app, &url, &payload).await.0, StatusCode::OK);
    // Another node disables the source: this node trusts its cached copy for at most a second.
    let workspace = app.store.ensure_default_workspace(app.clock.now()).await.expect("workspace");
    let update = herald_store::SourceUpdate { enabled: Some(false), ..Default::default() };
    app.store.update_source(workspace.id, id.parse().expect("id"), update, app.clock.now()).await.expect("disable");
    assert_eq!(send(&app, &url, &payload).await.0, StatusCode::OK);
    app.clock.advance(herald_server::ingest::cache::TTL);
    assert_eq!(send(&app, &url, &payload).await.0, StatusCode::NOT_FOUND);
    app.stop().await;
}
