//! Opens and clicks as they arrive. The tracking endpoints are public and hot (a campaign
//! sent to many people makes bursts), so a hit is stored durably as one small row before its
//! answer, and everything it causes (the message activity, the contact's event and the jobs
//! evaluating it, the campaign event webhooks) is written afterwards by a `record_hits` job,
//! away from the request.

use async_trait::async_trait;
use herald_domain::{Activity, ActivityKind, JobKind, MessageId, NewJob, Timestamp, WorkspaceId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::StoreResult;

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

/// The payload of a `record_hits` job: the hits of its workspace that one write stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HitsPayload {
    pub hits: Vec<Uuid>,
}

/// The `record_hits` job of the hits `ids`, due `now`.
pub fn record_hits_job(ids: Vec<Uuid>, now: Timestamp) -> NewJob {
    NewJob::new(JobKind::RecordHits, serde_json::json!(HitsPayload { hits: ids }), now)
}

#[async_trait]
pub trait HitStore {
    /// Stores `hits` and, for each workspace among them, one `record_hits` job naming its
    /// hits, in one durable transaction.
    async fn store_hits(&self, hits: &[Hit], now: Timestamp) -> StoreResult<()>;

    /// The hits of `workspace` among `ids` that are still stored, with their ids, oldest first.
    async fn stored_hits(&self, workspace: WorkspaceId, ids: &[Uuid]) -> StoreResult<Vec<(Uuid, Hit)>>;

    /// Forgets hits of `workspace` once their activities are recorded.
    async fn delete_hits(&self, workspace: WorkspaceId, ids: &[Uuid]) -> StoreResult<()>;
}
