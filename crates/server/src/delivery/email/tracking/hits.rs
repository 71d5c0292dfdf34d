//! Opens and clicks, from their answer to their effects. An endpoint commits the hit alone,
//! group-committed with the others arriving at the same time ([`Email::track`]); the
//! `record_hits` job that commits with them then records each as an email activity, with its
//! contact event, the jobs evaluating it and the campaign event webhooks it fires
//! ([`Email::record_hits`]). Each hit's activity is keyed by the hit, so a job run again after
//! a crash records nothing twice.

use herald_domain::job::{JobOutcome, LeasedJob};
use herald_store::StoreError;
use herald_store::hits::{Hit, HitsPayload};

use crate::delivery::email::Email;
use crate::group_commit::{CommitError, GroupCommit};

/// The committer of hits.
pub(in crate::delivery::email) type Committer = GroupCommit<Hit, ()>;

/// Starts the committers of hits.
pub(in crate::delivery::email) fn committer(
    store: herald_store::SharedStore,
    clock: crate::clock::SharedClock,
    committers: usize,
) -> Committer {
    GroupCommit::start(
        "tracked_hits",
        clock,
        committers,
        std::sync::Arc::new(move |hits: Vec<Hit>, now| {
            let store = store.clone();
            Box::pin(async move {
                store.store_hits(&hits, now).await?;
                Ok(vec![(); hits.len()])
            })
        }),
    )
}

impl Email {
    /// Stores an open or a click: durable when this returns.
    pub async fn track(&self, hit: Hit) -> Result<(), StoreError> {
        match self.hits.submit(vec![hit]).await {
            Ok(_) => Ok(()),
            Err(CommitError::Store(e)) => Err(StoreError::Other(Box::new(e))),
            Err(CommitError::Closed) => Err(StoreError::Other("the server is shutting down".into())),
        }
    }

    /// Runs a `record_hits` job: records the activities of its hits that are still stored,
    /// forgets the hits, and finishes the job. Returns the outcome's metric label.
    pub async fn record_hits(&self, leased: &LeasedJob) -> Result<&'static str, StoreError> {
        let workspace = leased.job.workspace_id;
        let now = self.clock.now();
        let Ok(HitsPayload { hits: ids }) = serde_json::from_value(leased.job.payload.clone()) else {
            let error = "the job's payload names no hits".to_owned();
            self.store.finish_job(workspace, &leased.lease, &JobOutcome::Dead { error }, now).await?;
            return Ok("dead");
        };
        let hits = self.store.stored_hits(workspace, &ids).await?;
        let mut writes = Vec::with_capacity(hits.len());
        for (id, hit) in &hits {
            // A hit of a message deleted since has nothing left to count.
            writes.extend(self.activity_write(workspace, hit.activity(*id)).await?);
        }
        if !writes.is_empty() {
            self.store.record_activities(&writes, now).await?;
        }
        self.store.delete_hits(workspace, &ids).await?;
        self.store.finish_job(workspace, &leased.lease, &JobOutcome::Done, now).await?;
        Ok("done")
    }
}
