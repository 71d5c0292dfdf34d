//! Ingest: the first stage of the pipeline. `receive` turns an HTTP request on a source URL
//! into an `IngestRequest` (or a rejection naming the field), [`Committer`] commits requests
//! in shared transactions (group commit) and answers each after its commit, `log` keeps the
//! per-source rejection log and samples off the hot path, `limiter` enforces per-source rates
//! and `cache` keeps sources by token. `service` holds the use cases on sources, which the
//! sources API (`api`) and the sources pages (`pages`, `mapping`) both call.

pub mod api;
pub mod cache;
pub mod limiter;
pub mod log;
pub(crate) mod mapping;
pub(crate) mod pages;
pub mod receive;
pub mod service;

use std::sync::Arc;

use herald_store::SharedStore;
use herald_store::ingest::{IngestRequest, IngestResult};

use crate::clock::SharedClock;
use crate::group_commit::GroupCommit;

/// Commits inbound requests in shared transactions.
pub type Committer = GroupCommit<IngestRequest, IngestResult>;

/// What ingest and the sources' pages and API use.
#[derive(Clone, Debug)]
pub struct IngestState {
    pub store: SharedStore,
    pub clock: SharedClock,
    /// Base URL of the source URLs handed out, without a trailing slash.
    pub public_url: Arc<str>,
    /// Commits inbound events in shared transactions.
    pub committer: Committer,
    /// Per-source rejection log and samples, written off the request path.
    pub source_log: log::SourceLog,
    pub limiter: Arc<limiter::Limiter>,
    /// Sources by token hash, briefly cached for the hot path.
    pub sources: Arc<cache::SourceCache>,
    /// Largest inbound webhook body, in bytes.
    pub body_limit: usize,
}

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
