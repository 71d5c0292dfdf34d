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

use herald_domain::WorkspaceId;
use tokio::sync::Notify;

use crate::campaigns::Campaigns;
use crate::clock::SharedClock;
use crate::group_commit::GroupCommit;

/// Commits inbound requests in shared transactions.
pub type Committer = GroupCommit<IngestRequest, IngestResult>;

/// Starts the ingest committers. After a commit that accepted events in a workspace with
/// live campaigns, the local worker is woken: their evaluation jobs are due now.
pub fn committer(
    store: SharedStore,
    clock: SharedClock,
    committers: usize,
    campaigns: Arc<Campaigns>,
    wake: Arc<Notify>,
) -> Committer {
    GroupCommit::start(
        "ingest",
        clock,
        committers,
        Arc::new(move |requests: Vec<IngestRequest>, now| {
            let (store, campaigns, wake) = (store.clone(), campaigns.clone(), wake.clone());
            Box::pin(async move {
                let results = store.ingest(&requests, now).await?;
                let mut workspaces: Vec<WorkspaceId> = requests
                    .iter()
                    .zip(&results)
                    .filter(|(_, r)| matches!(r, IngestResult::Accepted(_)))
                    .map(|(q, _)| q.workspace_id)
                    .collect();
                workspaces.dedup();
                if !workspaces.is_empty() && campaigns.any_live(&workspaces).await {
                    wake.notify_one();
                }
                Ok(results)
            })
        }),
    )
}
