//! Opens and clicks, from their answer to their effects. An endpoint commits the hit alone,
//! group-committed with the others arriving at the same time ([`Email::track`]); the
//! workspace's `record_hits` job (one is queued whenever hits wait) then records each as an
//! email activity, with its contact event, the jobs evaluating it and the campaign event
//! webhooks it fires ([`Email::record_hits`]). Each hit's activity is keyed by the hit, so a job run again after
//! a crash records nothing twice.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use herald_domain::job::{JobOutcome, LeasedJob};
use herald_domain::{Message, MessageId};
use herald_store::StoreError;
use herald_store::hits::Hit;

use crate::delivery::email::Email;
use crate::group_commit::{CommitError, GroupCommit};

/// How many hits one transaction of a `record_hits` job records.
const HITS_PER_WRITE: u32 = 500;

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

    /// Runs a `record_hits` job: records the activities of the workspace's stored hits and
    /// forgets them, a page at a time until none is left, then finishes the job. Returns the
    /// outcome's metric label.
    pub async fn record_hits(&self, leased: &LeasedJob) -> Result<&'static str, StoreError> {
        let workspace = leased.job.workspace_id;
        loop {
            let hits = self.store.stored_hits(workspace, HITS_PER_WRITE).await?;
            if hits.is_empty() {
                break;
            }
            // A message is read once however many of its hits the page holds.
            let mut messages: HashMap<MessageId, Option<Message>> = HashMap::new();
            let mut writes = Vec::with_capacity(hits.len());
            for (id, hit) in &hits {
                let message = match messages.entry(hit.message) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(slot) => match self.store.get_message(workspace, hit.message).await {
                        Ok(message) => slot.insert(Some(message)),
                        Err(StoreError::NotFound { .. }) => slot.insert(None),
                        Err(e) => return Err(e),
                    },
                };
                // A hit of a message deleted since has nothing left to count.
                if let Some(message) = message {
                    writes.push(self.write_for(message, hit.activity(*id)).await?);
                }
            }
            let ids: Vec<_> = hits.iter().map(|(id, _)| *id).collect();
            self.store.record_hits(workspace, &writes, &ids, self.clock.now()).await?;
        }
        self.store.finish_job(workspace, &leased.lease, &JobOutcome::Done, self.clock.now()).await?;
        Ok("done")
    }
}
