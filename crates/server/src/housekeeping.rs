//! Housekeeping: periodic deletion of what no longer serves a purpose. Today that is
//! idempotency keys past their 24-hour window (they would otherwise grow without bound).
//! Every node runs it; the deletes are idempotent, so several nodes doing it is harmless.

use std::time::Duration;

use herald_store::ingest::IDEMPOTENCY_WINDOW;
use herald_store::{SharedStore, StoreResult};
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;

/// How often housekeeping runs.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// One round of housekeeping as of the clock's now; returns how many rows went.
pub async fn run_once(store: &SharedStore, clock: &SharedClock) -> StoreResult<u64> {
    store.purge_idempotency_keys(clock.now() - IDEMPOTENCY_WINDOW).await
}

/// Runs housekeeping every `INTERVAL` until shutdown.
pub async fn run(store: SharedStore, clock: SharedClock, shutdown: CancellationToken) {
    loop {
        match run_once(&store, &clock).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired idempotency keys purged"),
            Err(e) => tracing::warn!(error = %crate::http::error::error_chain(&e), "housekeeping failed; will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
