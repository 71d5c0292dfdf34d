//! The durable job queue's vocabulary: what a job is, how it ends, and when a failed one
//! runs again.
//!
//! A job is work that follows from a committed state change (the outbox pattern): the change
//! and its jobs commit together, a worker claims due jobs under a time-limited lease, and the
//! job's effect commits together with its completion, fenced by that lease. A worker that
//! dies simply lets its lease run out; the job becomes due again and another worker takes it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::retry::{Attempt, RetrySchedule, Verdict, minutes};
use crate::{JobId, LeaseId, Timestamp, WorkspaceId};

/// What a job does. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Proves the workers drain the queue: its only effect is one row in the ping log, written
    /// in the transaction that completes the job. Operators enqueue pings with
    /// `herald queue ping`; the multi-process queue tests count them.
    Ping,
    /// Runs campaign triggers and goals for a batch of committed events.
    EvaluateEvents,
    /// Runs a journey from its current step until it waits or ends.
    JourneyStep,
    /// Closes a drop-off or inactivity window: enrols the contact if the awaited event did
    /// not come.
    WindowCheck,
    /// Hands one queued message to the SMTP transport (or holds, suppresses or fails it).
    DeliverMessage,
    /// Makes one attempt of an outbound webhook call.
    DeliverWebhook,
    /// Applies a saved action run's `set_attributes` to its contact after the call succeeded.
    ActionResult,
    /// Tells a campaign's event webhooks about the journeys that exited because the campaign
    /// was archived (`contact_exited`, reason `campaign archived`).
    ArchiveExits,
    /// Turns tracked opens and clicks, stored as they arrived, into email activities.
    RecordHits,
    /// Re-decides the segment memberships of contacts whose attributes changed without an
    /// event, or whose time-relative conditions may have changed their answer (a timer).
    RefreshSegments,
    /// Computes a new or edited segment over the workspace's contacts, one page at a time.
    BuildSegment,
    /// Writes one page of a broadcast's recipients (their messages and delivery jobs) and
    /// queues the next page.
    FanOutBroadcast,
}

impl JobKind {
    pub const ALL: [JobKind; 12] = [
        JobKind::Ping,
        JobKind::EvaluateEvents,
        JobKind::JourneyStep,
        JobKind::WindowCheck,
        JobKind::DeliverMessage,
        JobKind::DeliverWebhook,
        JobKind::ActionResult,
        JobKind::ArchiveExits,
        JobKind::RecordHits,
        JobKind::RefreshSegments,
        JobKind::BuildSegment,
        JobKind::FanOutBroadcast,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Ping => "ping",
            JobKind::EvaluateEvents => "evaluate_events",
            JobKind::JourneyStep => "journey_step",
            JobKind::WindowCheck => "window_check",
            JobKind::DeliverMessage => "deliver_message",
            JobKind::DeliverWebhook => "deliver_webhook",
            JobKind::ActionResult => "action_result",
            JobKind::ArchiveExits => "archive_exits",
            JobKind::RecordHits => "record_hits",
            JobKind::RefreshSegments => "refresh_segments",
            JobKind::BuildSegment => "build_segment",
            JobKind::FanOutBroadcast => "fan_out_broadcast",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job kind {0:?}")]
pub struct UnknownJobKind(pub String);

impl FromStr for JobKind {
    type Err = UnknownJobKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownJobKind(s.to_owned()))
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for `run_at`.
    Queued,
    /// Claimed by a worker whose lease has not been given back.
    Running,
    /// Finished; its effect is committed.
    Done,
    /// Given up on; `last_error` says why.
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queued" => Ok(JobState::Queued),
            "running" => Ok(JobState::Running),
            "done" => Ok(JobState::Done),
            "dead" => Ok(JobState::Dead),
            other => Err(format!("unknown job state {other:?}")),
        }
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: JobKind,
    pub payload: serde_json::Value,
    pub run_at: Timestamp,
    pub max_attempts: u32,
}

impl NewJob {
    /// A job due at `run_at` with the default attempt budget.
    pub fn new(kind: JobKind, payload: serde_json::Value, run_at: Timestamp) -> Self {
        Self { kind, payload, run_at, max_attempts: JOB_RETRY.max_attempts() }
    }
}

/// A job as stored. `kind` stays a string: a node may meet a kind that only a newer node
/// knows, and must be able to leave it alone rather than fail to read the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: JobId,
    pub workspace_id: WorkspaceId,
    pub kind: String,
    pub payload: serde_json::Value,
    pub state: JobState,
    pub run_at: Timestamp,
    /// Claims so far, including the current one.
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Proof of a claim. Finishing a job needs it, and fails once the lease has been lost (it
/// expired and another worker claimed the job), so a slow worker cannot apply a job's effect
/// a second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLease {
    pub job_id: JobId,
    pub lease_id: LeaseId,
    pub expires_at: Timestamp,
}

/// A claimed job with its lease.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedJob {
    pub job: Job,
    pub lease: JobLease,
}

/// How a run of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    Retry { at: Timestamp, error: String },
    Dead { error: String },
}

const JOB_DELAYS: [Duration; 11] = [
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(20),
    Duration::from_secs(40),
    Duration::from_secs(80),
    Duration::from_secs(160),
    Duration::from_secs(320),
    Duration::from_secs(640),
    Duration::from_secs(1280),
    Duration::from_secs(2560),
    minutes(60),
];

/// How internal jobs that failed (a store error, a kind only a newer node knows) are
/// retried: from 5 s, doubling, at most an hour apart, 12 attempts (about 3 hours).
pub const JOB_RETRY: RetrySchedule =
    RetrySchedule { max_retries: 11, delays: &JOB_DELAYS, jitter: 0.2, max_retry_after: minutes(60) };

impl JobOutcome {
    /// What becomes of a job whose run failed with `error`, judged by `schedule` after
    /// `attempts` claims (this one included).
    pub fn after_failure(schedule: &RetrySchedule, attempts: u32, error: String, now: Timestamp, random: f64) -> Self {
        let attempt = Attempt::Transient { reason: error, retry_after: None };
        match schedule.judge(attempts.saturating_sub(1), attempt, now, random) {
            Verdict::Retry { not_before, reason } => JobOutcome::Retry { at: not_before, error: reason },
            Verdict::GiveUp { reason, .. } => JobOutcome::Dead { error: reason },
            Verdict::Delivered => JobOutcome::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn failed_jobs_back_off_then_die_when_the_attempts_are_spent() {
        let now = Timestamp::from_unix_millis(1_000_000);
        assert_eq!(
            JobOutcome::after_failure(&JOB_RETRY, 4, "boom".into(), now, 0.5),
            JobOutcome::Retry { at: now + Duration::from_secs(40), error: "boom".into() }
        );
        assert_eq!(
            JobOutcome::after_failure(&JOB_RETRY, 12, "boom".into(), now, 0.5),
            JobOutcome::Dead { error: "gave up after 12 attempts: boom".into() }
        );
        assert_eq!(JOB_RETRY.max_attempts(), 12);
    }

    #[test]
    fn kinds_and_states_round_trip() {
        assert_eq!("ping".parse::<JobKind>(), Ok(JobKind::Ping));
        assert!("pong".parse::<JobKind>().is_err());
        for s in [JobState::Queued, JobState::Running, JobState::Done, JobState::Dead] {
            assert_eq!(s.as_str().parse::<JobState>(), Ok(s));
        }
    }

    proptest! {
        #[test]
        fn job_delays_grow_and_stay_within_an_hour_and_its_jitter(retry in 1u32..100) {
            let d = JOB_RETRY.base_delay(retry);
            prop_assert!(d <= Duration::from_secs(3600));
            prop_assert!(JOB_RETRY.base_delay(retry + 1) >= d);
        }
    }
}
