//! Broadcasts: one email to every contact of an audience (a segment, a topic's subscribers,
//! or everyone subscribed), each contact at most once.
//!
//! A started broadcast is written out by a fan-out job, one page of the audience (by contact
//! id, after the broadcast's cursor) per run. A page commits in one transaction fenced by the
//! job's lease: the recipients (primary key broadcast and contact, so a contact written once is
//! never written again), their messages and delivery jobs, the new cursor and the next page's
//! job. With a rate limit, each recipient's delivery is due one slot after the previous one
//! (`next_slot`, kept on the broadcast in the same transaction), and the next page is due only
//! when the queued deliveries come within [`FanOutPage::horizon`] of running out.

use std::time::Duration;

use async_trait::async_trait;
use herald_domain::job::JobLease;
use herald_domain::{
    BroadcastId, Contact, ContactId, JobKind, Message, NewJob, Page, PageRequest, SegmentId, Timestamp, TopicId,
    WorkspaceId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::StoreResult;

/// The constraint a change reports when the broadcast is not in a state that allows it (an
/// edit after the start, a pause of a finished broadcast).
pub const BROADCAST_STATE: &str = "broadcast_state";

/// Where a broadcast is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastState {
    /// Being written: editable, deletable, sends nothing.
    Draft,
    /// Started, its first page due at `start_at`.
    Scheduled,
    /// Writing out recipients.
    Sending,
    /// Writes nothing and holds its queued messages until resumed.
    Paused,
    /// Every recipient has its message (some may still be queued).
    Finished,
    /// Ended by hand: nothing more is written, its unsent messages are withdrawn.
    Cancelled,
}

impl BroadcastState {
    pub fn as_str(self) -> &'static str {
        match self {
            BroadcastState::Draft => "draft",
            BroadcastState::Scheduled => "scheduled",
            BroadcastState::Sending => "sending",
            BroadcastState::Paused => "paused",
            BroadcastState::Finished => "finished",
            BroadcastState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            BroadcastState::Draft,
            BroadcastState::Scheduled,
            BroadcastState::Sending,
            BroadcastState::Paused,
            BroadcastState::Finished,
            BroadcastState::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether a fan-out job still writes pages in this state.
    pub fn fans_out(self) -> bool {
        matches!(self, BroadcastState::Scheduled | BroadcastState::Sending)
    }

    /// Whether a pause applies: while written out, and after (messages may still be queued).
    pub fn pausable(self) -> bool {
        matches!(self, BroadcastState::Scheduled | BroadcastState::Sending | BroadcastState::Finished)
    }
}

/// Who a broadcast is sent to. Only contacts with an email address are in any audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Audience {
    /// The segment's members.
    Segment(SegmentId),
    /// The contacts who have not left the topic.
    Topic(TopicId),
    /// Every contact who has not unsubscribed from everything (is not suppressed).
    Everyone,
}

impl Audience {
    pub fn kind(self) -> &'static str {
        match self {
            Audience::Segment(_) => "segment",
            Audience::Topic(_) => "topic",
            Audience::Everyone => "everyone",
        }
    }

    /// The segment's or topic's id.
    pub fn id(self) -> Option<uuid::Uuid> {
        match self {
            Audience::Segment(id) => Some(id.as_uuid()),
            Audience::Topic(id) => Some(id.as_uuid()),
            Audience::Everyone => None,
        }
    }

    /// The audience stored as `kind` and `id`.
    pub fn from_parts(kind: &str, id: Option<uuid::Uuid>) -> Option<Self> {
        match (kind, id) {
            ("segment", Some(id)) => Some(Audience::Segment(SegmentId::from_uuid(id))),
            ("topic", Some(id)) => Some(Audience::Topic(TopicId::from_uuid(id))),
            ("everyone", None) => Some(Audience::Everyone),
            _ => None,
        }
    }
}

/// A broadcast as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub id: BroadcastId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// What is sent and how (the server's document: template or inline parts, sender,
    /// topic, goal, schedule); pinned when the broadcast starts.
    pub content: Value,
    pub audience: Audience,
    /// Messages per hour; `None`: as fast as delivery goes.
    pub rate_per_hour: Option<u32>,
    pub state: BroadcastState,
    /// When the first page is due (set when started).
    pub start_at: Option<Timestamp>,
    /// The last contact written out; the next page starts after it.
    pub cursor: Option<ContactId>,
    /// With a rate limit: when the next recipient's delivery is due.
    pub next_slot: Option<Timestamp>,
    /// When the broadcast was paused (while it is).
    pub paused_at: Option<Timestamp>,
    /// When its last page was written: every recipient has its message.
    pub finished_at: Option<Timestamp>,
    /// The audience's size when the broadcast started.
    pub audience_size: u64,
    /// Recipients written out so far.
    pub recipients: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A broadcast to save as a draft.
#[derive(Debug, Clone)]
pub struct BroadcastDraft {
    pub name: String,
    pub content: Value,
    pub audience: Audience,
    pub rate_per_hour: Option<u32>,
}

/// A draft becoming a started broadcast.
#[derive(Debug, Clone)]
pub struct BroadcastStart {
    /// The content with its template version pinned and its schedule.
    pub content: Value,
    /// When the first page is due (and, with a rate limit, the first delivery).
    pub at: Timestamp,
    pub audience_size: u64,
}

/// One contact of an audience page.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceMember {
    pub contact: Contact,
    /// Why its address is suppressed, if it is.
    pub suppressed: Option<String>,
}

/// One recipient of a page: its message and when its delivery may run at the earliest.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub message: Message,
    /// The recipient's time (the broadcast's start, or its local time); with a rate limit,
    /// the delivery runs at the later of this and the broadcast's next slot.
    pub not_before: Timestamp,
    /// Whether the message needs a delivery job (not when it is already suppressed or sent
    /// through the outbox).
    pub deliver: bool,
}

/// One page of a fan-out, to commit.
#[derive(Debug, Clone)]
pub struct FanOutPage {
    pub broadcast: BroadcastId,
    /// The broadcast's cursor when the page was read: a page whose broadcast has moved on
    /// (or stopped fanning out) meanwhile writes nothing.
    pub after: Option<ContactId>,
    /// The page's last contact (`None` for an empty page).
    pub last: Option<ContactId>,
    /// Whether this is the last page.
    pub done: bool,
    pub recipients: Vec<Recipient>,
    /// With a rate limit: the spacing between deliveries (3600 s / rate).
    pub spacing: Option<Duration>,
    /// How far ahead of the due deliveries the next page runs.
    pub horizon: Duration,
}

/// What a fan-out page did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanOutResult {
    /// Whether the page was written (`false`: the broadcast moved on or stopped).
    pub written: bool,
    /// Recipients new in this page (a contact already written is left alone).
    pub added: u64,
}

/// How a broadcast's recipients stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Messages waiting for delivery (held while paused included).
    pub queued: u64,
    /// Handed to the relay (delivered and complained included).
    pub sent: u64,
    /// Failed or bounced.
    pub failed: u64,
    /// Skipped: suppressed, or left the topic before delivery.
    pub suppressed: u64,
    /// Withdrawn when the broadcast was cancelled.
    pub cancelled: u64,
    /// Still to send: queued, plus the audience not written out yet.
    pub left: u64,
}

impl Progress {
    /// The standing from the count of recipients per message status (`None`: the message
    /// was withdrawn by a cancel), as the backends read them.
    pub fn of(broadcast: &Broadcast, counts: &[(Option<String>, i64)]) -> Self {
        let mut progress = Progress::default();
        for (status, count) in counts {
            let count = u64::try_from(*count).unwrap_or(0);
            let slot = match status.as_deref() {
                Some("queued" | "held") => &mut progress.queued,
                Some("sent" | "delivered" | "complained") => &mut progress.sent,
                Some("suppressed") => &mut progress.suppressed,
                Some(_) => &mut progress.failed,
                None => &mut progress.cancelled,
            };
            *slot += count;
        }
        let unwritten = match broadcast.state {
            BroadcastState::Finished | BroadcastState::Cancelled => 0,
            _ => broadcast.audience_size.saturating_sub(broadcast.recipients),
        };
        progress.left = progress.queued + unwritten;
        progress
    }
}

/// What the fan-out job works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanOutPayload {
    pub broadcast: BroadcastId,
}

/// The fan-out job of `broadcast`, due at `at`.
pub fn fan_out_job(broadcast: BroadcastId, at: Timestamp) -> NewJob {
    NewJob::new(JobKind::FanOutBroadcast, serde_json::json!(FanOutPayload { broadcast }), at)
}

/// The delivery job of a broadcast's message: the delivery job, told the broadcast so that it
/// holds the message while the broadcast is paused.
pub fn broadcast_delivery_job(broadcast: BroadcastId, message: herald_domain::MessageId, at: Timestamp) -> NewJob {
    let mut job = crate::email::delivery_job(message, at);
    if let Value::Object(payload) = &mut job.payload {
        payload.insert("broadcast".into(), Value::String(broadcast.to_string()));
    }
    job
}

/// When the next page of a rate-limited fan-out is due: `horizon` before the deliveries
/// queued so far run out, and not before `now`.
pub fn next_page_at(next_slot: Option<Timestamp>, horizon: Duration, now: Timestamp) -> Timestamp {
    match next_slot {
        Some(slot) if slot - horizon > now => slot - horizon,
        _ => now,
    }
}

/// The due times of deliveries whose recipients may go at `not_before` each (in order): each
/// at its own time, and with a rate limit (`spacing`) also no earlier than one slot after the
/// previous one, the first at `next_slot`. Returns them with the slot after the last. How a
/// page is spaced, and how a resume spaces the held messages again.
pub fn due_times(
    not_before: impl IntoIterator<Item = Timestamp>,
    mut next_slot: Option<Timestamp>,
    spacing: Option<Duration>,
) -> (Vec<Timestamp>, Option<Timestamp>) {
    let due = not_before
        .into_iter()
        .map(|own| match (spacing, next_slot) {
            (Some(spacing), Some(slot)) => {
                let at = slot.max(own);
                next_slot = Some(at + spacing);
                at
            }
            _ => own,
        })
        .collect();
    (due, next_slot)
}

#[async_trait]
pub trait BroadcastStore {
    async fn create_broadcast(
        &self,
        workspace: WorkspaceId,
        draft: &BroadcastDraft,
        now: Timestamp,
    ) -> StoreResult<Broadcast>;

    /// Replaces a draft's name, content, audience and rate (`Conflict { BROADCAST_STATE }`
    /// once started).
    async fn update_broadcast(
        &self,
        workspace: WorkspaceId,
        id: BroadcastId,
        draft: &BroadcastDraft,
        now: Timestamp,
    ) -> StoreResult<Broadcast>;

    /// Deletes a draft (`Conflict { BROADCAST_STATE }` once started).
    async fn delete_broadcast(&self, workspace: WorkspaceId, id: BroadcastId) -> StoreResult<()>;

    async fn get_broadcast(&self, workspace: WorkspaceId, id: BroadcastId) -> StoreResult<Broadcast>;

    /// The workspace's broadcasts, newest first.
    async fn list_broadcasts(
        &self,
        workspace: WorkspaceId,
        page: PageRequest<BroadcastId>,
    ) -> StoreResult<Page<Broadcast>>;

    /// Starts a draft: pins its content, sets its start and first slot, and queues its first
    /// fan-out page at `start.at` (`Conflict { BROADCAST_STATE }` unless a draft).
    async fn start_broadcast(
        &self,
        workspace: WorkspaceId,
        id: BroadcastId,
        start: &BroadcastStart,
        now: Timestamp,
    ) -> StoreResult<Broadcast>;

    /// The audience's contacts with an email address after `page.after`, by id, each with its
    /// suppression.
    async fn audience_page(
        &self,
        workspace: WorkspaceId,
        audience: Audience,
        page: PageRequest<ContactId>,
    ) -> StoreResult<Page<AudienceMember>>;

    /// How many contacts the audience has now.
    async fn audience_size(&self, workspace: WorkspaceId, audience: Audience) -> StoreResult<u64>;

    /// Writes a page in one transaction fenced by `lease` (`LeaseLost`, nothing written,
    /// when it is not the job's lease any more), completing the job: the new recipients,
    /// their messages (with the broadcast) and delivery jobs, the cursor and next slot, the
    /// state (`finished` after the last page) and the next page's job.
    async fn fan_out_page(
        &self,
        workspace: WorkspaceId,
        lease: &JobLease,
        page: &FanOutPage,
        now: Timestamp,
    ) -> StoreResult<FanOutResult>;

    /// Pauses a scheduled, sending or finished broadcast: no page is written and its queued
    /// deliveries are put off until resumed (`Conflict { BROADCAST_STATE }` otherwise).
    async fn pause_broadcast(&self, workspace: WorkspaceId, id: BroadcastId, now: Timestamp) -> StoreResult<Broadcast>;

    /// Resumes a paused broadcast where it stopped: its held deliveries are due again, each at
    /// its recipient's own time but not before `now` (or the start), spaced by `spacing` when
    /// rate-limited (the next slot after them), and the fan-out goes on
    /// (`Conflict { BROADCAST_STATE }` unless paused).
    async fn resume_broadcast(
        &self,
        workspace: WorkspaceId,
        id: BroadcastId,
        spacing: Option<Duration>,
        horizon: Duration,
        now: Timestamp,
    ) -> StoreResult<Broadcast>;

    /// Cancels a started broadcast: nothing more is written and its queued messages are
    /// withdrawn with their jobs (`Conflict { BROADCAST_STATE }` for a draft or a cancelled
    /// one).
    async fn cancel_broadcast(&self, workspace: WorkspaceId, id: BroadcastId, now: Timestamp)
    -> StoreResult<Broadcast>;

    /// The recipients' standing.
    async fn broadcast_progress(&self, workspace: WorkspaceId, id: BroadcastId) -> StoreResult<Progress>;

    /// Recipients who performed `goal` after their message was sent.
    async fn broadcast_conversions(&self, workspace: WorkspaceId, id: BroadcastId, goal: &str) -> StoreResult<u64>;
}
