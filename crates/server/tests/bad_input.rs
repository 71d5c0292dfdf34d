//! Bad input through HTTP on both backends: NUL characters in identity fields, invalid UTF-8
//! in forms and query strings, events too large inside a batch, attribute limits, and
//! numbers that cannot be kept exactly. Each is refused in the one error shape naming the
//! field, or kept exactly; nothing is changed silently.

mod common;

use common::{Backend, TestApp, expect_error, json, spawn_app};
use herald_domain::contact::{MAX_ATTRIBUTE_NAME_BYTES, MAX_ATTRIBUTE_VALUE_BYTES, MAX_ATTRIBUTES};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

on_both_backends!(
    nul_in_identity_fields_is_refused_naming_the_field,
    invalid_utf8_in_forms_and_queries_is_refused_naming_the_field,
    batch_items_over_the_event_limit_are_refused_each,
    attribute_limits_hold_at_ingest_in_the_api_and_in_imports,
    numbers_are_kept_exactly_or_refused_naming_the_field,
);

/// Creates a source of `kind` and returns its URL.
async fn source(app: &TestApp, kind: &str) -> String {
    let (status, body) =
        json(app.post("/api/v1/sources", &json!({"name": format!("{kind} source"), "kind": kind})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["url"].as_str().expect("url").to_owned()
}

async fn post_raw(app: &TestApp, url: &str, content_type: &str, body: impl Into<Vec<u8>>) -> reqwest::Response {
    app.client.post(url).header("content-type", content_type).body(body.into()).send().await.expect("post")
}

/// Asserts a 400 `validation_failed` naming `field`.
async fn refused(response: reqwest::Response, field: &str) -> Value {
    let error = expect_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], field, "{error}");
    error
}

async fn contacts(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = json(app.get(&format!("/api/v1/contacts{query}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().expect("data").clone()
}

async fn nul_in_identity_fields_is_refused_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source(&app, "generic").await;
    for (body, field) in [
        (r#"{"email": "a\u0000b@example.com"}"#, "email"),
        (r#"{"email": "ok@example.com", "userId": "u\u00001"}"#, "userId"),
        (r#"{"email": "ok@example.com", "user_id": 12, "phone": "+1555\u00000109999"}"#, "phone"),
        (r#"{"email": "ok@example.com", "event": "sign\u0000up"}"#, "event"),
    ] {
        refused(post_raw(&app, &url, "application/json", body).await, field).await;
    }
    let form = post_raw(&app, &url, "application/x-www-form-urlencoded", "email=a%00b%40example.com").await;
    refused(form, "email").await;
    let query = app.client.get(format!("{url}?email=ok%40example.com&event=sign%00up")).send().await.expect("get");
    refused(query, "event").await;

    let posthog = source(&app, "posthog").await;
    let body = r#"{"event": {"event": "x", "distinct_id": "ph\u00001"}}"#;
    refused(post_raw(&app, &posthog, "application/json", body).await, "event.distinct_id").await;

    // The admin API refuses them the same way.
    let api = app.url("/api/v1/contacts");
    let create = |body: &'static str| {
        app.request(Method::POST, "/api/v1/contacts").header("content-type", "application/json").body(body).send()
    };
    refused(create(r#"{"email": "a\u0000b@example.com"}"#).await.expect("post"), "email").await;
    refused(create(r#"{"email": "ok@example.com", "user_id": "u\u0000"}"#).await.expect("post"), "user_id").await;
    let (status, created) = json(create(r#"{"email": "ok@example.com"}"#).await.expect("post")).await;
    assert_eq!(status, StatusCode::CREATED, "{created} at {api}");
    let patch = app
        .request(Method::PATCH, &format!("/api/v1/contacts/{}", created["id"].as_str().expect("id")))
        .header("content-type", "application/json")
        .body(r#"{"phone": "+1555\u00000109999"}"#)
        .send()
        .await
        .expect("patch");
    refused(patch, "phone").await;
    assert_eq!(contacts(&app, "").await.len(), 1, "only the valid contact exists");
    app.stop().await;
}

async fn invalid_utf8_in_forms_and_queries_is_refused_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source(&app, "generic").await;
    let form = "application/x-www-form-urlencoded";
    refused(post_raw(&app, &url, form, "email=a%40example.com&data.plan=%FF%FE").await, "data.plan").await;
    refused(post_raw(&app, &url, form, b"email=a%40example.com&city=\xff".to_vec()).await, "city").await;
    refused(post_raw(&app, &url, form, "email=a%40example.com%C3").await, "email").await;
    let error = expect_error(
        post_raw(&app, &url, form, "email=a%40example.com&k%FF=1").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains("UTF-8")), "{error}");
    let query = app.client.get(format!("{url}?email=a%40example.com&name=%C3")).send().await.expect("get");
    refused(query, "name").await;
    // A POST whose fields are in the query string is read the same way.
    let query = app.client.post(format!("{url}?email=%FF%40example.com")).send().await.expect("post");
    refused(query, "email").await;
    assert!(contacts(&app, "").await.is_empty(), "nothing was stored");
    // Valid UTF-8 in every spelling is still accepted.
    let ok = post_raw(&app, &url, form, "email=a%40example.com&city=K%C3%B6ln&name=J+Doe").await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(contacts(&app, "").await[0]["attributes"], json!({"city": "Köln", "name": "J Doe"}));
    app.stop().await;
}

async fn batch_items_over_the_event_limit_are_refused_each(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source(&app, "generic").await;
    // 100,000 keys, about 1.4 MB: over the single-event limit (256 KiB in the tests).
    let data: Map<String, Value> = (0..100_000).map(|i| (format!("k{i}"), json!(i))).collect();
    let huge = json!({"email": "huge@example.com", "event": "big", "data": data});
    let single = app.client.post(&url).json(&huge).send().await.expect("post");
    expect_error(single, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let batch = json!([{"email": "b0@example.com", "event": "small"}, huge, {"email": "b2@example.com"}]);
    let (status, body) = json(app.client.post(format!("{url}/batch")).json(&batch).send().await.expect("post")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["accepted"].clone(), body["rejected"].clone()), (json!(2), json!(1)), "{body}");
    let item = &body["results"][1];
    assert_eq!((item["index"].clone(), item["status"].clone()), (json!(1), json!("rejected")));
    assert_eq!(item["error"]["code"], "payload_too_large", "{item}");
    assert!(item["error"]["message"].as_str().is_some_and(|m| m.contains("262144")), "{item}");
    assert!(contacts(&app, "?email=huge@example.com").await.is_empty());
    assert_eq!(contacts(&app, "").await.len(), 2);
    app.stop().await;
}

/// `count` attributes named `prefix0`, `prefix1`, ….
fn attributes(prefix: &str, count: usize) -> Map<String, Value> {
    (0..count).map(|i| (format!("{prefix}{i}"), json!(i))).collect()
}

/// The field named when one more than `MAX_ATTRIBUTES` attributes `prefix…` arrive: the first
/// that does not fit, in the order the server reads them.
fn first_over(prefix: &str) -> String {
    let name = attributes(prefix, MAX_ATTRIBUTES + 1).keys().nth(MAX_ATTRIBUTES).cloned().expect("name");
    format!("attributes.{name}")
}

async fn attribute_limits_hold_at_ingest_in_the_api_and_in_imports(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source(&app, "generic").await;
    let send = |body: Value| app.client.post(&url).json(&body).send();

    // One event alone over each limit.
    let too_many = json!({"email": "many@example.com", "data": attributes("a", MAX_ATTRIBUTES + 1)});
    let error = refused(send(too_many).await.expect("post"), &first_over("a")).await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains("300")), "{error}");
    let long_name = "n".repeat(MAX_ATTRIBUTE_NAME_BYTES + 1);
    let body = json!({"email": "long@example.com", "data": {long_name.clone(): 1}});
    refused(send(body).await.expect("post"), &format!("attributes.{long_name}")).await;
    let big_value = "v".repeat(MAX_ATTRIBUTE_VALUE_BYTES);
    let body = json!({"email": "big@example.com", "data": {"notes": big_value}});
    let error = refused(send(body).await.expect("post"), "attributes.notes").await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains(&MAX_ATTRIBUTE_VALUE_BYTES.to_string())), "{error}");

    // Merges: a contact at the limit takes changes and removals, not one more attribute.
    let full = json!({"email": "full@example.com", "data": attributes("a", MAX_ATTRIBUTES)});
    assert_eq!(send(full).await.expect("post").status(), StatusCode::OK);
    let one_more = json!({"email": "full@example.com", "data": {"extra": true}});
    refused(send(one_more).await.expect("post"), "attributes.extra").await;
    let change = json!({"email": "full@example.com", "data": {"a0": "changed", "a1": null, "extra": true}});
    assert_eq!(send(change).await.expect("post").status(), StatusCode::OK);
    // A nested object merged key by key may not grow past the value limit either.
    let half = "h".repeat(MAX_ATTRIBUTE_VALUE_BYTES / 2 + 10);
    let body = json!({"email": "nested@example.com", "data": {"profile": {"a": half}}});
    assert_eq!(send(body).await.expect("post").status(), StatusCode::OK);
    let body = json!({"email": "nested@example.com", "data": {"profile": {"b": half}}});
    refused(send(body).await.expect("post"), "attributes.profile").await;
    let stored = &contacts(&app, "?email=full@example.com").await[0]["attributes"];
    assert_eq!(stored.as_object().expect("attributes").len(), MAX_ATTRIBUTES);
    assert_eq!((stored["a0"].clone(), stored["extra"].clone()), (json!("changed"), json!(true)));

    // A batch refuses the one item over a limit.
    let batch = json!([{"email": "full@example.com", "data": {"another": 1}}, {"email": "fine@example.com"}]);
    let (_, body) = json(app.client.post(format!("{url}/batch")).json(&batch).send().await.expect("post")).await;
    assert_eq!((body["accepted"].clone(), body["rejected"].clone()), (json!(1), json!(1)), "{body}");
    assert_eq!(body["results"][0]["error"]["field"], "attributes.another", "{body}");

    // PostHog cannot fix its people's properties: the event is kept, the attributes are not
    // applied, and the event's outcome says why.
    let posthog = source(&app, "posthog").await;
    let person = json!({"properties": attributes("p", MAX_ATTRIBUTES + 1)});
    let body = json!({"event": {"event": "seen", "distinct_id": "ph-1", "properties": {"email": "ph@example.com"}}, "person": person});
    let (status, accepted) = json(app.client.post(&posthog).json(&body).send().await.expect("post")).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    let (_, event) =
        json(app.get(&format!("/api/v1/events/{}", accepted["event_id"].as_str().expect("id"))).await).await;
    let notes = event["outcome"]["notes"].to_string();
    assert!(notes.contains(&first_over("p")) && notes.contains("300"), "{event}");
    assert_eq!(contacts(&app, "?email=ph@example.com").await[0]["attributes"], json!({}));

    // The contacts API.
    let error = refused(
        app.post("/api/v1/contacts", &json!({"email": "api@example.com", "attributes": attributes("a", 301)})).await,
        &first_over("a"),
    )
    .await;
    assert!(error["message"].as_str().is_some_and(|m| m.contains("300")), "{error}");
    let (status, created) = json(
        app.post("/api/v1/contacts", &json!({"email": "api@example.com", "attributes": attributes("a", 300)})).await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!("/api/v1/contacts/{}", created["id"].as_str().expect("id"));
    let patch = |body: Value| app.request(Method::PATCH, &path).json(&body).send();
    refused(patch(json!({"attributes": {"more": 1}})).await.expect("patch"), "attributes.more").await;
    let body = json!({"attributes": {"notes": "v".repeat(MAX_ATTRIBUTE_VALUE_BYTES)}});
    refused(patch(body).await.expect("patch"), "attributes.notes").await;
    assert_eq!(patch(json!({"attributes": {"a5": "x"}})).await.expect("patch").status(), StatusCode::OK);

    // CSV import: the row over a limit is reported, the others are imported.
    let columns: Vec<String> = (0..=MAX_ATTRIBUTES).map(|i| format!("c{i}")).collect();
    let wide_row: Vec<&str> = std::iter::repeat_n("1", columns.len()).collect();
    let csv = format!(
        "email,{}\nwide@example.com,{}\nnarrow@example.com,{}\n",
        columns.join(","),
        wide_row.join(","),
        vec![""; columns.len()].join(",")
    );
    let (status, summary) = json(
        app.request(Method::POST, "/api/v1/contacts/import")
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("import"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!((summary["created"].clone(), summary["failed"].clone()), (json!(1), json!(1)), "{summary}");
    assert_eq!(summary["errors"][0]["row"], 1);
    assert!(summary["errors"][0]["message"].as_str().is_some_and(|m| m.starts_with(&first_over("c"))), "{summary}");
    let csv = "email,api_notes\napi@example.com,x\n";
    let (_, summary) = json(
        app.request(Method::POST, "/api/v1/contacts/import")
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("import"),
    )
    .await;
    assert_eq!(summary["failed"], 1, "importing into a full contact: {summary}");
    app.stop().await;
}

async fn numbers_are_kept_exactly_or_refused_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = source(&app, "generic").await;
    let exact = r#"{"u64": 12345678901234567890, "max": 18446744073709551615, "min": -9223372036854775808, "p53": 9007199254740993, "tenth": 0.1, "avogadro": 6.02e23}"#;
    let body = format!(r#"{{"email": "n@example.com", "event": "numbers", "data": {exact}}}"#);
    let response = post_raw(&app, &url, "application/json", body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let contact = app.get("/api/v1/contacts?email=n@example.com").await.text().await.expect("body");
    let event = app.get("/api/v1/events?name=numbers").await.text().await.expect("body");
    for kept in ["12345678901234567890", "18446744073709551615", "-9223372036854775808", "9007199254740993"] {
        assert!(contact.contains(kept), "{kept} in the contact: {contact}");
        assert!(event.contains(kept), "{kept} in the event: {event}");
    }
    let attributes = &contacts(&app, "?email=n@example.com").await[0]["attributes"];
    assert_eq!((attributes["tenth"].clone(), attributes["avogadro"].clone()), (json!(0.1), json!(6.02e23)));

    // Integers beyond 64 bits and numbers beyond a 64-bit float cannot be kept: refused.
    for (data, field) in [
        (r#"{"big": 123456789012345678901234567890}"#, "data.big"),
        (r#"{"list": [1, -18446744073709551616]}"#, "data.list[1]"),
        (r#"{"inf": 1e400}"#, "data.inf"),
        (r#"{"deep": {"tiny": -1E+309}}"#, "data.deep.tiny"),
    ] {
        let body = format!(r#"{{"email": "bad@example.com", "data": {data}}}"#);
        let error = refused(post_raw(&app, &url, "application/json", body).await, field).await;
        assert!(error["message"].as_str().is_some_and(|m| m.contains("string")), "{error}");
    }
    let batch = r#"[{"email": "b@example.com"}, {"email": "b@example.com", "data": {"big": 99999999999999999999}}]"#;
    refused(post_raw(&app, &format!("{url}/batch"), "application/json", batch).await, "[1].data.big").await;
    assert!(contacts(&app, "?email=bad@example.com").await.is_empty());
    assert!(contacts(&app, "?email=b@example.com").await.is_empty());

    // The admin API: kept exactly on create and update, refused where it cannot be.
    let create = |body: String| {
        app.request(Method::POST, "/api/v1/contacts").header("content-type", "application/json").body(body).send()
    };
    let response = create(format!(r#"{{"email": "api@example.com", "attributes": {exact}}}"#)).await.expect("post");
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = response.text().await.expect("body");
    assert!(created.contains("12345678901234567890") && created.contains("9007199254740993"), "{created}");
    let id = serde_json::from_str::<Value>(&created).expect("json")["id"].as_str().expect("id").to_owned();
    let contact = app.get(&format!("/api/v1/contacts/{id}")).await.text().await.expect("body");
    assert!(contact.contains("18446744073709551615") && contact.contains("-9223372036854775808"), "{contact}");
    let response =
        create(r#"{"email": "api2@example.com", "attributes": {"big": 1e999}}"#.to_owned()).await.expect("post");
    refused(response, "attributes.big").await;
    let patch = app
        .request(Method::PATCH, &format!("/api/v1/contacts/{id}"))
        .header("content-type", "application/json")
        .body(r#"{"attributes": {"u64": 36893488147419103232}}"#)
        .send()
        .await
        .expect("patch");
    refused(patch, "attributes.u64").await;
    let contact = app.get(&format!("/api/v1/contacts/{id}")).await.text().await.expect("body");
    assert!(contact.contains("12345678901234567890"), "unchanged: {contact}");
    app.stop().await;
}
