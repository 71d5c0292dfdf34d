//! Opens and clicks, from their answer to their effects. An endpoint commits the hit alone,
//! group-committed with the others arriving at the same time ([`Email::track`]); the
//! `record_hits` job that commits with them then records each as an email activity, with its
//! contact event, the jobs evaluating it and the campaign event webhooks it fires
//! ([`Email::record_hits`]), reading the messages of a job's hits and the workspace's campaign
//! event webhooks once per job. Each hit's activity is keyed by the hit, so a job run again
//! after a crash records nothing twice.

use std::collections::{BTreeSet, HashMap, HashSet};

use herald_domain::job::{JobOutcome, LeasedJob};
use herald_domain::{CampaignEventKind, CampaignId, Message, MessageId};
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
        // One read of the hits' messages and one of the workspace's campaign event webhooks,
        // not one of each per hit.
        let wanted: BTreeSet<MessageId> = hits.iter().map(|(_, hit)| hit.message).collect();
        let wanted: Vec<MessageId> = wanted.into_iter().collect();
        let messages: HashMap<MessageId, Message> =
            self.store.get_messages(workspace, &wanted).await?.into_iter().map(|m| (m.id, m)).collect();
        let hooked: HashSet<CampaignId> = self
            .store
            .list_campaign_webhooks(workspace, None)
            .await?
            .iter()
            .filter(|hook| {
                hook.listens_to(CampaignEventKind::EmailOpened) || hook.listens_to(CampaignEventKind::EmailClicked)
            })
            .map(|hook| hook.campaign_id)
            .collect();
        let mut writes = Vec::with_capacity(hits.len());
        for (id, hit) in &hits {
            // A hit of a message deleted since has nothing left to count.
            let Some(message) = messages.get(&hit.message) else { continue };
            let hooked = message.campaign_id.is_some_and(|campaign| hooked.contains(&campaign));
            writes.push(self.write_for(message, hit.activity(*id), hooked).await?);
        }
        if !writes.is_empty() {
            self.store.record_activities(&writes, now).await?;
        }
        self.store.delete_hits(workspace, &ids).await?;
        self.store.finish_job(workspace, &leased.lease, &JobOutcome::Done, now).await?;
        Ok("done")
    }
}
