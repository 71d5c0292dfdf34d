//! The test harness: the real application on a random loopback port, a fresh database per
//! test (a SQLite file in a temp dir, or a new PostgreSQL database), a manual clock, and the
//! worker driven by `run_until_idle` instead of a background loop (except in
//! [`spawn_app_running`], which tests the loop itself).

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod browser;
pub mod mail;
pub mod openapi;
pub mod process;
pub mod sending;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use herald_domain::{ApiToken, Timestamp};
use herald_server::app::config::WorkerSettings;
use herald_server::app::connections::ConnectionLimits;
use herald_server::app::{self, App};
use herald_server::clock::{ManualClock, SharedClock};
use herald_server::delivery::email::EmailSettings;
use herald_store::{SharedStore, Store};
use herald_store_sqlite::SqliteStore;
use herald_webhook::client::ClientSettings;
use herald_webhook::policy::AddressPolicy;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The admin token every test app is bootstrapped with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Where the tests start their clock: 2026-01-01T00:00:00Z.
pub const START: Timestamp = Timestamp::from_unix_millis(1_767_225_600_000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated store on a fresh database, and the guard that owns the database.
pub async fn fresh_store(backend: Backend) -> (SharedStore, Box<dyn Any + Send>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("herald.db").display());
            let store = SqliteStore::connect(&url).await.expect("open sqlite");
            store.migrate().await.expect("migrate");
            (Arc::new(store), Box::new(dir))
        }
        Backend::Postgres => {
            let (store, db) = herald_store_postgres::test_support::fresh_store().await;
            (store, Box::new(db))
        }
    }
}

/// A running Herald with a manual clock.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub store: SharedStore,
    pub app: App,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _database: Box<dyn Any + Send>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, EmailSettings::default()).await
}

/// A running Herald with a manual clock and these email settings; webhooks may reach loopback
/// over plain http.
pub async fn spawn_app_with(backend: Backend, email: EmailSettings) -> TestApp {
    spawn_app_full(backend, email, loopback_webhooks()).await
}

/// Webhooks that may reach loopback over plain http.
fn loopback_webhooks() -> ClientSettings {
    let loopback = AddressPolicy::allowing(["127.0.0.0/8".parse().expect("net"), "::1/128".parse().expect("net")]);
    ClientSettings { policy: loopback, allow_http: true, ..ClientSettings::default() }
}

/// A running Herald with a manual clock, these email settings and this webhook policy.
pub async fn spawn_app_full(backend: Backend, email: EmailSettings, webhooks: ClientSettings) -> TestApp {
    spawn_app_limited(backend, email, webhooks, ConnectionLimits::default()).await
}

/// [`spawn_app_full`] with these connection limits.
pub async fn spawn_app_limited(
    backend: Backend,
    email: EmailSettings,
    webhooks: ClientSettings,
    limits: ConnectionLimits,
) -> TestApp {
    start(backend, email, webhooks, WorkerSettings::default(), false, limits).await
}

/// A running Herald with a manual clock and these email settings whose worker loop runs in
/// the background with these settings, as `herald serve` runs it.
pub async fn spawn_app_running(backend: Backend, email: EmailSettings, worker: WorkerSettings) -> TestApp {
    start(backend, email, loopback_webhooks(), worker, true, ConnectionLimits::default()).await
}

async fn start(
    backend: Backend,
    email: EmailSettings,
    webhooks: ClientSettings,
    worker: WorkerSettings,
    run_worker: bool,
    limits: ConnectionLimits,
) -> TestApp {
    let (store, database) = fresh_store(backend).await;
    start_on(store, database, email, webhooks, worker, run_worker, limits).await
}

/// A running Herald with a manual clock on this store; `database` keeps it alive.
pub async fn spawn_app_on(
    store: SharedStore,
    database: Box<dyn Any + Send>,
    email: EmailSettings,
    webhooks: ClientSettings,
) -> TestApp {
    start_on(store, database, email, webhooks, WorkerSettings::default(), false, ConnectionLimits::default()).await
}

async fn start_on(
    store: SharedStore,
    database: Box<dyn Any + Send>,
    email: EmailSettings,
    webhooks: ClientSettings,
    worker: WorkerSettings,
    run_worker: bool,
    limits: ConnectionLimits,
) -> TestApp {
    let clock = ManualClock::new(START);
    let shared_clock: SharedClock = Arc::new(clock.clone());
    let token = ApiToken::parse_supplied(ADMIN_TOKEN).expect("valid token");
    app::bootstrap(&store, &shared_clock, Some(&token)).await.expect("bootstrap");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let app = App::with_webhooks(store.clone(), shared_clock, &address, worker, 256 * 1024, email, webhooks)
        .expect("app")
        .with_connection_limits(limits);
    let shutdown = CancellationToken::new();
    // Without the background worker, tests step it with `run_until_idle`.
    let server = tokio::spawn(app.clone().serve(listener, run_worker, Duration::from_secs(5), shutdown.clone()));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    TestApp { address, client, clock, store, app, shutdown, server, _database: database }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request authenticated with the admin token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(ADMIN_TOKEN)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("request")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path).json(body).send().await.expect("request")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path).send().await.expect("request")
    }

    /// What owns the app's database: the SQLite file's `tempfile::TempDir`, or PostgreSQL's
    /// `TestDatabase` (for tests that reach the database behind the store's back).
    pub fn database(&self) -> &(dyn Any + Send) {
        &*self._database
    }

    /// Runs every job due now, and what they make due, until none is.
    pub async fn run_jobs(&self) -> usize {
        self.app.worker.run_until_idle().await.expect("run jobs")
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.expect("server task").expect("server");
        self.store.close().await;
    }
}

/// Reads a response's status and JSON body.
pub async fn json(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, body)
}

/// Asserts the API's error shape and returns the body's `error` object.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let (got, body) = json(response).await;
    assert_eq!(got, status, "{body}");
    let error = body.get("error").unwrap_or_else(|| panic!("no `error` in {body}")).clone();
    assert_eq!(error["code"], code, "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(error.get("field").is_some(), "`field` is always present: {body}");
    error
}

/// Defines each listed `async fn name(backend: Backend)` as a test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )*
        }
    };
}
