//! Ingest: the inbound half of the pipeline. `receive` turns an HTTP request on a source URL
//! into an `IngestRequest` (or a rejection naming the field), [`Committer`] commits requests
//! in shared transactions (group commit) and answers each after its commit, `log` keeps the
//! per-source rejection log and samples off the hot path, `limiter` enforces per-source rates.

pub mod limiter;
pub mod log;
pub mod receive;
pub mod sources;

use std::sync::Arc;

use herald_store::SharedStore;
use herald_store::ingest::{IngestRequest, IngestResult};

use crate::clock::SharedClock;
use crate::group_commit::GroupCommit;

/// Commits inbound requests in shared transactions.
pub type Committer = GroupCommit<IngestRequest, IngestResult>;

/// Starts the ingest committers. A commit that accepted events in a workspace with live
/// campaigns enqueued their evaluation; the store wakes the local worker for it.
pub fn committer(store: SharedStore, clock: SharedClock, committers: usize) -> Committer {
    GroupCommit::start(
        "ingest",
        clock,
        committers,
        Arc::new(move |requests: Vec<IngestRequest>, now| {
            let store = store.clone();
            Box::pin(async move { store.ingest(&requests, now).await })
        }),
    )
}
