//! Secrets at rest, on both backends, opened the way `herald` opens its database
//! (`db::open`: the key from the settings or the SQLite key file): the raw database (SQLite's
//! file and WAL, PostgreSQL's rows as text) holds none of the secrets in clear, the server
//! still calls with them, rows from before encryption are sealed on start, and the key rotates.

#![allow(clippy::unwrap_used)]

mod common;

use std::any::Any;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Backend, json, spawn_app_on};
use herald_server::app::config::{CommonSettings, DatabaseUrl, LogFormat, SecretKey};
use herald_server::app::db;
use herald_server::delivery::email::EmailSettings;
use herald_store::SharedStore;
use herald_store::email::TransportRecord;
use herald_store::secrets::SecretKeys;
use herald_store::webhook::{SigningKeyRecord, webhook_job};
use herald_webhook::client::ClientSettings;
use herald_webhook::policy::AddressPolicy;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;

on_both_backends!(
    stored_secrets_are_sealed_and_still_used,
    secrets_inside_calls_and_campaigns_are_sealed_and_still_used,
    clear_secrets_are_sealed_on_start_and_keys_rotate
);

const KEY_A: [u8; 32] = [0xa1; 32];
const KEY_B: [u8; 32] = [0xb2; 32];

/// A database of its own, and how to open it.
struct Database {
    backend: Backend,
    url: String,
    /// The SQLite file's directory, or the PostgreSQL database's guard.
    _guard: Box<dyn Any + Send>,
    sqlite_dir: Option<PathBuf>,
}

async fn database(backend: Backend) -> Database {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_owned();
            let url = format!("sqlite://{}", path.join("herald.db").display());
            Database { backend, url, _guard: Box::new(dir), sqlite_dir: Some(path) }
        }
        Backend::Postgres => {
            let db = herald_store_postgres::test_support::fresh_database().await;
            Database { backend, url: db.url().to_owned(), _guard: Box::new(db), sqlite_dir: None }
        }
    }
}

impl Database {
    fn settings(&self, key: Option<[u8; 32]>, previous: &[[u8; 32]]) -> CommonSettings {
        CommonSettings {
            database: match self.backend {
                Backend::Sqlite => DatabaseUrl::Sqlite(self.url.clone()),
                Backend::Postgres => DatabaseUrl::Postgres(self.url.clone()),
            },
            log_format: LogFormat::Text,
            log_filter: "warn".into(),
            secret_key: key.map(SecretKey),
            previous_secret_keys: previous.iter().copied().map(SecretKey).collect(),
        }
    }

    /// On SQLite the key file by default, on PostgreSQL (where a key is required) `KEY_A`.
    async fn open(&self) -> SharedStore {
        let key = (self.backend == Backend::Postgres).then_some(KEY_A);
        db::open(&self.settings(key, &[])).await.unwrap()
    }

    /// Everything stored, as raw bytes: SQLite's database file and its WAL; every row of
    /// every PostgreSQL table as text.
    async fn raw(&self) -> Vec<u8> {
        if let Some(dir) = &self.sqlite_dir {
            let mut bytes = std::fs::read(dir.join("herald.db")).unwrap();
            bytes.extend(std::fs::read(dir.join("herald.db-wal")).unwrap_or_default());
            return bytes;
        }
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert!(tables.len() > 10, "{tables:?}");
        let mut text = String::new();
        for table in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT t::text FROM \"{table}\" t")))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            text.extend(rows.into_iter().map(|row| row + "\n"));
        }
        text.into_bytes()
    }

    /// Runs statements on the database directly, as a Herald from before would have written.
    async fn execute(&self, statements: &[String]) {
        if self.backend == Backend::Postgres {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            for statement in statements {
                sqlx::query(sqlx::AssertSqlSafe(statement.clone())).execute(&mut conn).await.unwrap();
            }
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            for statement in statements {
                sqlx::query(sqlx::AssertSqlSafe(statement.clone())).execute(&mut conn).await.unwrap();
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// The requests a receiver got: path and headers.
type Seen = Arc<Mutex<Vec<(String, HeaderMap, Vec<u8>)>>>;

/// A receiver recording every request; it answers the first request to `/flaky` with a 500.
async fn receiver() -> (Seen, String) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/{path}",
            axum::routing::any(
                |State(seen): State<Seen>, Path(path): Path<String>, headers: HeaderMap, body: Bytes| async move {
                    let mut seen = seen.lock().unwrap();
                    let first = !seen.iter().any(|(p, ..)| *p == path);
                    seen.push((path.clone(), headers, body.to_vec()));
                    let status =
                        if first && path == "flaky" { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
                    (status, "{}")
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (seen, base)
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

async fn stored_secrets_are_sealed_and_still_used(backend: Backend) {
    let db = database(backend).await;
    let store = db.open().await;
    if let Some(dir) = &db.sqlite_dir {
        let key_file = dir.join("herald.db.key");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key_file).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "the key file Herald created is its owner's alone");
    }
    let loopback = AddressPolicy::allowing(["127.0.0.0/8".parse().unwrap()]);
    let webhooks = ClientSettings { policy: loopback, allow_http: true, ..ClientSettings::default() };
    let app = spawn_app_on(store, Box::new(()), EmailSettings::default(), webhooks).await;
    let (seen, base) = receiver().await;

    let transport = json!({"host": "127.0.0.1", "port": 2525, "security": "none",
                           "username": "herald", "password": "smtp-pass-Zq81"});
    let (status, body) =
        json(app.request(Method::PUT, "/api/v1/transport").json(&transport).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let action = json!({"name": "Ticket", "url": format!("{base}/action"), "timeout": "1s",
                        "headers": {"X-Api-Key": "action-header-Zq83"},
                        "basic_auth": {"username": "crm", "password": "action-pass-Zq82"}});
    let (status, action) = json(app.post("/api/v1/actions", &action).await).await;
    assert_eq!(status, StatusCode::CREATED, "{action}");
    let (status, key) = json(app.post("/api/v1/webhook-signing-key/rotate", &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let signing = key["secret"].as_str().unwrap().to_owned();
    let signing_bytes = STANDARD.decode(signing.trim_start_matches("whsec_")).unwrap();
    let step = json!({"id": "step", "type": "webhook", "url": format!("{base}/step"), "timeout": "1s", "body": "{}"});
    let document = json!({"name": "Hooks", "trigger": {"type": "event", "event": "go"}, "steps": [step]});
    let (status, campaign) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let campaign = campaign["id"].as_str().unwrap().to_owned();
    let hook = json!({"url": format!("{base}/hook"), "events": ["contact_entered"], "secret": "hook-secret-Zq84-text",
                      "auth": "basic", "username": "ops", "password": "hook-pass-Zq85"});
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{campaign}/webhooks"), &hook).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = json(app.post("/api/v1/domains", &json!({"name": "mail.acme.test"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let raw = db.raw().await;
    assert!(contains(&raw, b"mail.acme.test"), "the raw read sees what is stored");
    for needle in [
        "smtp-pass-Zq81",
        "action-pass-Zq82",
        "action-header-Zq83",
        "hook-secret-Zq84",
        "hook-pass-Zq85",
        signing.as_str(),
        signing.trim_start_matches("whsec_"),
        "PRIVATE KEY",
    ] {
        assert!(!contains(&raw, needle.as_bytes()), "{needle} is stored in clear ({backend:?})");
    }
    assert!(!contains(&raw, &signing_bytes), "the signing key's bytes are stored in clear");

    // The server still calls with them: the action's credentials and header, the campaign
    // webhook's credentials and its own secret's signature, the workspace key's signature.
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{campaign}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, source) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let event = json!({"email": "bo@example.com", "event": "go"});
    let (status, accepted) =
        json(app.client.post(source["url"].as_str().unwrap()).json(&event).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    app.run_jobs().await;
    let run = format!("/api/v1/actions/{}/run", action["id"].as_str().unwrap());
    let (status, body) = json(app.post(&run, &json!({"contact_id": accepted["contact_id"]})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.run_jobs().await;

    let seen = seen.lock().unwrap().clone();
    let request =
        |path: &str| seen.iter().find(|(p, ..)| p == path).unwrap_or_else(|| panic!("no call to /{path}")).clone();
    let verifies = |(_, headers, body): &(String, HeaderMap, Vec<u8>), secret: &str| {
        let header = |name: &str| headers[name].to_str().unwrap().to_owned();
        herald_webhook::sign::verify_v0(
            secret,
            header("x-herald-timestamp").parse().unwrap(),
            body,
            &header("x-herald-signature"),
        )
    };
    let call = request("action");
    assert_eq!(call.1["authorization"], basic("crm", "action-pass-Zq82").as_str());
    assert_eq!(call.1["x-api-key"], "action-header-Zq83");
    assert!(verifies(&call, &signing), "signed with the workspace key");
    assert!(verifies(&request("step"), &signing), "a step call signed with the workspace key");
    let call = request("hook");
    assert_eq!(call.1["authorization"], basic("ops", "hook-pass-Zq85").as_str());
    assert!(verifies(&call, "hook-secret-Zq84-text"), "signed with the webhook's own secret");
    let (_, transport) = json(app.get("/api/v1/transport").await).await;
    assert_eq!(transport["password_set"], true, "{transport}");
    app.stop().await;
}

/// The secrets campaigns and calls carry inside their documents: a webhook step's Basic
/// password and secret header in the campaign, in its call's retry job and stored call, and in
/// a draft's call; a campaign event webhook's own secret and password in its stored call.
async fn secrets_inside_calls_and_campaigns_are_sealed_and_still_used(backend: Backend) {
    let db = database(backend).await;
    let loopback = AddressPolicy::allowing(["127.0.0.0/8".parse().unwrap()]);
    let webhooks = ClientSettings { policy: loopback, allow_http: true, ..ClientSettings::default() };
    let app = spawn_app_on(db.open().await, Box::new(()), EmailSettings::default(), webhooks).await;
    let (seen, base) = receiver().await;
    // The campaign event webhook calls another endpoint: its success would otherwise release
    // the step's waiting retry at once (fast recovery).
    let (event_seen, event_base) = receiver().await;
    let needles =
        ["step-pass-Zq86", "step-header-Zq87", "draft-pass-Zq88", "event-secret-Zq89-text", "event-pass-Zq90"];
    let sealed = async |when: &str| {
        let raw = db.raw().await;
        assert!(contains(&raw, b"X-Team-Zq91"), "the raw read sees the documents ({when})");
        for needle in needles {
            assert!(!contains(&raw, needle.as_bytes()), "{needle} is stored in clear {when} ({backend:?})");
        }
    };

    let flaky = json!({"id": "flaky", "type": "webhook", "url": format!("{base}/flaky"), "timeout": "1s", "body": "{}",
                       "basic_auth": {"username": "crm", "password": "step-pass-Zq86"},
                       "headers": {"X-Api-Key": "step-header-Zq87", "X-Team-Zq91": "growth"}});
    let review = json!({"id": "review", "type": "webhook", "url": format!("{base}/review"), "timeout": "1s",
                        "draft": true, "basic_auth": {"username": "rev", "password": "draft-pass-Zq88"}});
    let document = json!({"name": "Calls", "trigger": {"type": "event", "event": "go"}, "steps": [flaky, review]});
    let (status, campaign) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let campaign = campaign["id"].as_str().unwrap().to_owned();
    let hook = json!({"url": format!("{event_base}/event"), "events": ["contact_entered"],
                      "secret": "event-secret-Zq89-text", "auth": "basic", "username": "ops", "password": "event-pass-Zq90"});
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{campaign}/webhooks"), &hook).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{campaign}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sealed("in the campaign").await;

    // The step's first attempt fails: its retry waits in the queue, its call in the delivery.
    let (status, source) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let event = json!({"email": "bo@example.com", "event": "go"});
    let (status, accepted) =
        json(app.client.post(source["url"].as_str().unwrap()).json(&event).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    app.run_jobs().await;
    let calls = |path: &str| seen.lock().unwrap().iter().filter(|(p, ..)| p == path).cloned().collect::<Vec<_>>();
    assert_eq!(calls("flaky").len(), 1, "the first attempt");
    let event_call = event_seen.lock().unwrap().pop().expect("the campaign event webhook's call");
    assert_eq!(event_call.1["authorization"], basic("ops", "event-pass-Zq90").as_str());
    let header = |name: &str| event_call.1[name].to_str().unwrap().to_owned();
    let timestamp = header("x-herald-timestamp").parse().unwrap();
    let signature = header("x-herald-signature");
    assert!(herald_webhook::sign::verify_v0("event-secret-Zq89-text", timestamp, &event_call.2, &signature));
    sealed("with a retry queued").await;

    // The retry still authenticates; the journey goes on to the draft, which holds its call.
    app.clock.advance(std::time::Duration::from_secs(600));
    app.run_jobs().await;
    let attempts = calls("flaky");
    assert_eq!(attempts.len(), 2, "the retry");
    for (_, headers, _) in &attempts {
        assert_eq!(headers["authorization"], basic("crm", "step-pass-Zq86").as_str());
        assert_eq!(headers["x-api-key"], "step-header-Zq87");
    }
    let (status, drafts) = json(app.get(&format!("/api/v1/webhook-drafts?campaign={campaign}")).await).await;
    assert_eq!(status, StatusCode::OK, "{drafts}");
    let draft = drafts["data"][0]["id"].as_str().unwrap_or_else(|| panic!("a draft: {drafts}")).to_owned();
    sealed("with a draft held").await;

    let (status, body) = json(app.post(&format!("/api/v1/webhook-drafts/{draft}/send"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.run_jobs().await;
    let sent = calls("review").pop().expect("the draft's call");
    assert_eq!(sent.1["authorization"], basic("rev", "draft-pass-Zq88").as_str());
    sealed("once every call is made").await;
    app.stop().await;
}

async fn clear_secrets_are_sealed_on_start_and_keys_rotate(backend: Backend) {
    let db = database(backend).await;
    let store = db.open().await;
    let now = common::START;
    let workspace = store.ensure_default_workspace(now).await.unwrap().id;
    // Written through the store, then put back in clear as a Herald from before stored them.
    store
        .set_transport(
            workspace,
            Some(&TransportRecord {
                settings: json!({"host": "relay.test"}),
                password: Some("x".into()),
                updated_at: now,
            }),
        )
        .await
        .unwrap();
    let legacy_key = vec![0x5a_u8; 32];
    let record = SigningKeyRecord { id: "whk_legacy".into(), secret: vec![0; 32], created_at: now, retires_at: None };
    store.rotate_signing_key(workspace, &record, now).await.unwrap();
    let definition =
        json!({"url": "https://crm.test/x", "basic_auth": {"username": "u", "password": "legacy-action-pw"}});
    let action = store.create_action(workspace, "Legacy", &json!({}), now).await.unwrap();
    let document = json!({"name": "Legacy", "steps": [{"id": "crm", "type": "webhook", "url": "https://crm.test/x",
                          "basic_auth": {"username": "u", "password": "legacy-step-pw"}}]});
    let campaign = store.create_campaign(workspace, "Legacy", &document, now).await.unwrap();
    let call = json!({"endpoint": "https://crm.test:443", "basic_auth": "u:legacy-call-pw",
                      "request": {"headers": [["X-Api-Key", "legacy-header-pw"]]}});
    let job = store.enqueue_jobs(workspace, &[webhook_job(call.clone(), now)], now).await.unwrap()[0];
    store.close().await;
    let hex: String = legacy_key.iter().map(|b| format!("{b:02x}")).collect();
    let blob = if backend == Backend::Postgres { format!("'\\x{hex}'") } else { format!("X'{hex}'") };
    let definition_sql = definition.to_string();
    db.execute(&[
        "UPDATE transports SET password = 'legacy-smtp-pw'".to_owned(),
        format!("UPDATE webhook_keys SET secret = {blob}"),
        format!("UPDATE actions SET definition = '{definition_sql}'"),
        format!("UPDATE campaign_versions SET document = '{document}', sealed_with = 'clear'"),
        format!("UPDATE jobs SET payload = '{call}', sealed_with = 'clear' WHERE kind = 'deliver_webhook'"),
    ])
    .await;
    let raw = db.raw().await;
    assert!(contains(&raw, b"legacy-smtp-pw"), "the rows are in clear before the start");
    assert!(contains(&raw, b"legacy-step-pw") && contains(&raw, b"legacy-call-pw"), "the documents too");

    // A start seals them; they read back the same.
    let store = db.open().await;
    let raw = db.raw().await;
    let documents = [b"legacy-step-pw".as_slice(), b"legacy-call-pw", b"legacy-header-pw"];
    for needle in [b"legacy-smtp-pw".as_slice(), b"legacy-action-pw", &legacy_key].into_iter().chain(documents) {
        assert!(!contains(&raw, needle), "{} still in clear", String::from_utf8_lossy(needle));
    }
    let check = async |store: &SharedStore| {
        let transport = store.transport(workspace).await.unwrap().unwrap();
        assert_eq!(transport.password.as_deref(), Some("legacy-smtp-pw"));
        let keys = store.signing_keys(workspace, now).await.unwrap();
        assert_eq!(keys.iter().map(|k| k.secret.clone()).collect::<Vec<_>>(), std::slice::from_ref(&legacy_key));
        let actions = store.actions_by_ids(workspace, &[action.id]).await.unwrap();
        assert_eq!(actions[0].definition, definition);
        assert_eq!(store.get_campaign(workspace, campaign.id).await.unwrap().document, document);
        assert_eq!(store.get_job(workspace, job).await.unwrap().payload, call);
    };
    check(&store).await;
    store.close().await;

    // Rotation: the new key with the old one as previous (on SQLite the key file's key is the
    // previous one by itself) seals everything again with the new key.
    let old_key: [u8; 32] = match &db.sqlite_dir {
        Some(dir) => SecretKey::parse(&std::fs::read_to_string(dir.join("herald.db.key")).unwrap()).unwrap().0,
        None => KEY_A,
    };
    let id = |key: &[u8; 32]| SecretKeys::new(key, &[]).current_id().to_owned();
    let previous: &[[u8; 32]] = if backend == Backend::Postgres { &[KEY_A] } else { &[] };
    let store = db::open(&db.settings(Some(KEY_B), previous)).await.unwrap();
    check(&store).await;
    store.close().await;
    let raw = db.raw().await;
    assert!(contains(&raw, format!("hs1.{}.", id(&KEY_B)).as_bytes()), "sealed with the new key");
    assert!(!contains(&raw, format!("hs1.{}.", id(&old_key)).as_bytes()), "nothing left under the old key");
    if let Some(dir) = &db.sqlite_dir {
        // With the key file gone, the new key alone opens everything.
        std::fs::remove_file(dir.join("herald.db.key")).unwrap();
    }
    let store = db::open(&db.settings(Some(KEY_B), &[])).await.unwrap();
    check(&store).await;
    store.close().await;

    // The old key alone no longer opens them, and says which key is missing.
    let error = db::open(&db.settings(Some(old_key), &[])).await.expect_err("the old key");
    let says = format!("sealed with secret key {}, which is not configured", id(&KEY_B));
    assert!(format!("{error:#}").contains(&says), "{error:#}");
    if backend == Backend::Postgres {
        let error = db::open(&db.settings(None, &[])).await.expect_err("PostgreSQL without a key");
        assert!(format!("{error:#}").contains("HERALD_SECRET_KEY is required with PostgreSQL"), "{error:#}");
    }
}
