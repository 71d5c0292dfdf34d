//! A crash between the commits of one job, on both backends. The database refuses one write
//! the way a process dying at that point would leave it unwritten (a trigger refuses the
//! journey's resumption), then the trigger goes, as with a restart, and the worker runs what
//! is due. Whatever a job implies must commit with the job's completion, or the job must run
//! again: a journey waiting for a call is never stranded.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode as AxumStatus;
use common::{Backend, TestApp, json, spawn_app_with};
use herald_domain::job::JobOutcome;
use herald_domain::{PageRequest, WebhookAttempt, WebhookStatus};
use herald_server::clock::Clock;
use herald_server::delivery::email::EmailSettings;
use herald_store::ClaimRequest;
use herald_store::webhook::{DeliveryFilter, DeliveryProgress, webhook_job};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

on_both_backends!(a_crash_while_a_replayed_call_resumes_its_journey_strands_nothing);

/// A receiver that answers its first request with 500 and every later one with 200; returns
/// its request count and URL.
async fn receiver() -> (Arc<AtomicUsize>, String) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = Router::new().route(
        "/hook",
        axum::routing::post(move || async move {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 { AxumStatus::INTERNAL_SERVER_ERROR } else { AxumStatus::OK }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (count, url)
}

/// Runs `sql` on the app's database over a connection of its own, behind the store's back.
async fn execute(app: &TestApp, backend: Backend, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match backend {
        Backend::Sqlite => {
            let dir = app.database().downcast_ref::<tempfile::TempDir>().unwrap();
            let url = format!("sqlite://{}", dir.path().join("herald.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            let database = app.database().downcast_ref::<herald_store_postgres::test_support::TestDatabase>().unwrap();
            let mut conn = sqlx::PgConnection::connect(database.url()).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
}

/// Makes every insert of a journey-step job fail, as if the process died before writing it.
async fn crash_before_resuming(app: &TestApp, backend: Backend) {
    let sql = match backend {
        Backend::Sqlite => {
            "CREATE TRIGGER crash BEFORE INSERT ON jobs WHEN NEW.kind = 'journey_step' \
             BEGIN SELECT RAISE(ABORT, 'the process died here'); END"
        }
        Backend::Postgres => {
            "CREATE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'the process died here'; END $$; \
             CREATE TRIGGER crash BEFORE INSERT ON jobs FOR EACH ROW WHEN (NEW.kind = 'journey_step') \
             EXECUTE FUNCTION crash()"
        }
    };
    execute(app, backend, sql).await;
}

async fn restart(app: &TestApp, backend: Backend) {
    let sql = match backend {
        Backend::Sqlite => "DROP TRIGGER crash",
        Backend::Postgres => "DROP TRIGGER crash ON jobs",
    };
    execute(app, backend, sql).await;
}

/// A delivery job that finds its call already over (a replayed or duplicated job) is what
/// resumes a journey still waiting for that call. It used to finish itself and enqueue the
/// resumption in two commits: a crash between them left the job done and the journey waiting
/// for good. Committed together, the crash leaves the job to run again after its lease.
async fn a_crash_while_a_replayed_call_resumes_its_journey_strands_nothing(backend: Backend) {
    let app = spawn_app_with(backend, EmailSettings::default()).await;
    let (calls, hook) = receiver().await;
    let document = json!({"name": "Sync", "trigger": {"type": "event", "event": "go"},
        "steps": [{"id": "sync", "type": "webhook", "url": hook, "timeout": "1s", "body": "{}"},
                  {"id": "after", "type": "set_attribute", "attribute": "after_hook",
                   "value": "{{ custom_variables.last_webhook.outcome }}"}]});
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let campaign = body["id"].as_str().unwrap().to_owned();
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{campaign}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let source = body["url"].as_str().unwrap().to_owned();
    let event = json!({"email": "ada@example.com", "event": "go"});
    let (status, accepted) = json(app.client.post(&source).json(&event).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    let contact = accepted["contact_id"].as_str().unwrap().to_owned();

    // The step calls at once, gets a 500, and the journey waits for the call's retry job.
    app.run_jobs().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The call's result comes on record without the journey being told, as when another
    // delivery job of the same call finished it: here a worker takes the retry job and
    // records a success with no follow-up. Herald's own paths always queue the resumption
    // with the result; this leaves the delivery job below as the only thing that can resume
    // the journey, which is the case it resumes journeys for.
    app.clock.advance(Duration::from_secs(600));
    let now = app.clock.now();
    let claim = ClaimRequest { worker: "other".into(), now, lease: Duration::from_secs(30), limit: 10 };
    let mut claimed = app.store.claim_jobs(&claim).await.unwrap();
    assert_eq!(claimed.len(), 1, "only the call's retry job is due");
    let retry = claimed.remove(0);
    let workspace = retry.job.workspace_id;
    let delivery = app.store.list_deliveries(workspace, &DeliveryFilter::default(), PageRequest::first(10)).await;
    let delivery = delivery.unwrap().items.remove(0);
    let attempt = WebhookAttempt {
        number: 2,
        at: now,
        request_line: format!("POST {hook}"),
        request_headers: json!({}),
        status: Some(200),
        latency_ms: 1,
        response_body: None,
        error: None,
    };
    let progress = DeliveryProgress {
        status: WebhookStatus::Succeeded,
        last_status: Some(200),
        last_error: None,
        response: json!({}),
    };
    let store = &app.store;
    store
        .record_attempt(workspace, &retry.lease, delivery.id, &attempt, &progress, &JobOutcome::Done, &[], now)
        .await
        .unwrap();
    // The replayed delivery job.
    store.enqueue_jobs(workspace, &[webhook_job(retry.job.payload.clone(), now)], now).await.unwrap();

    // It runs into the crash: the journey's resumption cannot be written.
    crash_before_resuming(&app, backend).await;
    app.run_jobs().await;
    restart(&app, backend).await;

    // After the restart, past any lease and backoff, the journey goes on with the result on
    // record, and no second call is made.
    app.clock.advance(Duration::from_secs(3600));
    app.run_jobs().await;
    let (_, contact) = json(app.get(&format!("/api/v1/contacts/{contact}")).await).await;
    assert_eq!(contact["attributes"]["after_hook"], "succeeded", "the journey was resumed: {contact}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the replayed job made no second call");
    let (_, stats) = json(app.get(&format!("/api/v1/campaigns/{campaign}/stats")).await).await;
    assert_eq!((stats["active"].as_u64(), stats["completed"].as_u64()), (Some(0), Some(1)), "{stats}");
    app.stop().await;
}
