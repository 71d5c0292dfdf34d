//! Housekeeping: periodic deletion of what no longer serves a purpose: idempotency keys (of
//! inbound events and of transactional sends) past their 24-hour window, and finished jobs (done for a week, dead for a month: long enough to
//! inspect). Both would otherwise grow without bound. Every node runs it; the deletes are
//! idempotent, so several nodes doing it is harmless.

use std::time::Duration;

use herald_store::ingest::IDEMPOTENCY_WINDOW;
use herald_store::{SharedStore, StoreResult};
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;

/// How often housekeeping runs.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// How long a job that ran to completion is kept.
pub const DONE_JOBS_KEPT: Duration = Duration::from_secs(7 * 86_400);
/// How long a job that was given up on is kept, for inspection.
pub const DEAD_JOBS_KEPT: Duration = Duration::from_secs(30 * 86_400);
/// Jobs deleted per transaction, so the writer is never held for long.
const JOB_PURGE_CHUNK: u32 = 10_000;

/// One round of housekeeping as of the clock's now; returns how many rows went.
pub async fn run_once(store: &SharedStore, clock: &SharedClock) -> StoreResult<u64> {
    let now = clock.now();
    let mut purged = store.purge_idempotency_keys(now - IDEMPOTENCY_WINDOW).await?;
    purged += store.purge_send_keys(now - IDEMPOTENCY_WINDOW).await?;
    loop {
        let jobs = store.purge_finished_jobs(now - DONE_JOBS_KEPT, now - DEAD_JOBS_KEPT, JOB_PURGE_CHUNK).await?;
        purged += jobs;
        if jobs < u64::from(JOB_PURGE_CHUNK) {
            return Ok(purged);
        }
    }
}

/// Runs housekeeping every `INTERVAL` until shutdown.
pub async fn run(store: SharedStore, clock: SharedClock, shutdown: CancellationToken) {
    loop {
        match run_once(&store, &clock).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired idempotency keys and finished jobs purged"),
            Err(e) => tracing::warn!(error = %crate::web::error::error_chain(&e), "housekeeping failed; will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
