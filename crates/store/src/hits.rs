//! Opens and clicks as they arrive. The tracking endpoints are public and hot (a campaign
//! sent to many people makes bursts), so a hit is stored durably as one small row before its
//! answer, and everything it causes (the message activity, the contact's event and the jobs
//! evaluating it, the campaign event webhooks) is written afterwards by a `record_hits` job,
//! away from the request.

use async_trait::async_trait;
use herald_domain::{Activity, ActivityKind, JobKind, MessageId, NewJob, Timestamp, WorkspaceId};
use uuid::Uuid;

use crate::StoreResult;
use crate::email::ActivityWrite;

/// Where a hit's activity comes from (`Activity::source`).
pub const HIT_SOURCE: &str = "tracking";

/// An open or a click of a message of `workspace`, as its endpoint saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub workspace: WorkspaceId,
    pub message: MessageId,
    /// `Opened` or `Clicked`.
    pub kind: ActivityKind,
    /// The link followed (clicks).
    pub url: Option<String>,
    /// Fetched by a mail privacy proxy or a scanner rather than a person (opens).
    pub machine: bool,
    pub occurred_at: Timestamp,
}

impl Hit {
    /// The activity a stored hit becomes. Its key is the hit's id, so that recording it
    /// again (a job run twice after a crash) changes nothing.
    pub fn activity(&self, id: Uuid) -> Activity {
        let mut activity = Activity::new(self.message, self.kind, HIT_SOURCE, self.occurred_at);
        activity.url = self.url.clone();
        activity.machine = self.machine;
        activity.key = Some(format!("hit:{id}"));
        activity
    }
}

/// The `record_hits` job of a workspace's stored hits, due `now`. A workspace has at most one
/// queued: the hits arriving while it waits are recorded by it, so a burst makes few jobs.
pub fn record_hits_job(now: Timestamp) -> NewJob {
    NewJob::new(JobKind::RecordHits, serde_json::json!({}), now)
}

#[async_trait]
pub trait HitStore {
    /// Stores `hits` and makes sure each of their workspaces has a `record_hits` job queued,
    /// in one durable transaction.
    async fn store_hits(&self, hits: &[Hit], now: Timestamp) -> StoreResult<()>;

    /// The oldest `limit` hits of `workspace` still stored, with their ids.
    async fn stored_hits(&self, workspace: WorkspaceId, limit: u32) -> StoreResult<Vec<(Uuid, Hit)>>;

    /// Records the activities of hits (as [`crate::email::EmailStore::record_activities`]
    /// does) and forgets the hits `ids`, in one transaction.
    async fn record_hits(
        &self,
        workspace: WorkspaceId,
        writes: &[ActivityWrite],
        ids: &[Uuid],
        now: Timestamp,
    ) -> StoreResult<()>;
}
