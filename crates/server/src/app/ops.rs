//! Operations endpoints, outside the authenticated API: liveness, readiness, metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::state::AppState;
use crate::web::error::error_chain;

/// How long readiness waits for the database before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` with a reason.
    #[schema(example = "ok")]
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", reason: None })
}

/// Readiness: the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    security(()),
    responses((status = 200, body = Health), (status = 503, description = "the database is unreachable", body = Health))
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let reason = match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => {
            return (StatusCode::OK, Json(Health { status: "ok", reason: None }));
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %error_chain(&e), "readiness check failed");
            "the database does not answer queries".to_owned()
        }
        Err(_) => format!("the database did not answer within {READY_TIMEOUT:?}"),
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable", reason: Some(reason) }))
}

/// Prometheus metrics in text format. Queue gauges are read from the database at scrape time,
/// so every node reports the shared queue.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()), responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.queue_stats(state.clock.now()).await {
        Ok(stats) => {
            for (name, value) in
                [("due", stats.due), ("scheduled", stats.scheduled), ("running", stats.running), ("dead", stats.dead)]
            {
                #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                metrics::gauge!("herald_queue_jobs", "state" => name).set(value as f64);
            }
            metrics::gauge!("herald_database_up").set(1.0);
        }
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "cannot read queue stats for metrics");
            metrics::gauge!("herald_database_up").set(0.0);
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
