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
}

impl JobKind {
    pub const ALL: [JobKind; 8] = [
        JobKind::Ping,
        JobKind::EvaluateEvents,
        JobKind::JourneyStep,
        JobKind::WindowCheck,
        JobKind::DeliverMessage,
        JobKind::DeliverWebhook,
        JobKind::ActionResult,
        JobKind::ArchiveExits,
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
        Self { kind, payload, run_at, max_attempts: RetryPolicy::DEFAULT.max_attempts }
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

/// Exponential backoff with jitter, capped, with an attempt budget. Pure: the caller passes
/// the jitter (a number in `[0, 1)`) so tests can pin it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// For internal jobs: 5 s, doubling, at most 1 h apart, 12 attempts (about 5 hours).
    pub const DEFAULT: RetryPolicy =
        RetryPolicy { first_delay: Duration::from_secs(5), max_delay: Duration::from_secs(3600), max_attempts: 12 };

    /// The wait after the `attempts`-th failed attempt (1-based): `first_delay · 2^(attempts-1)`
    /// capped at `max_delay`, then "equal jitter": half fixed, half scaled by `jitter`, so
    /// retries of many jobs that failed together spread out instead of arriving in a herd.
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        let exponent = attempts.saturating_sub(1).min(32);
        let full = self.first_delay.saturating_mul(1u32 << exponent.min(31)).min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// What to do after attempt number `attempts` failed with `error`.
    pub fn after_failure(&self, attempts: u32, now: Timestamp, jitter: f64, error: String) -> JobOutcome {
        if attempts >= self.max_attempts {
            JobOutcome::Dead { error }
        } else {
            JobOutcome::Retry { at: now + self.delay(attempts, jitter), error }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: RetryPolicy =
        RetryPolicy { first_delay: Duration::from_secs(10), max_delay: Duration::from_secs(300), max_attempts: 5 };

    #[test]
    fn backoff_table() {
        // (attempts, jitter, expected delay)
        let cases = [
            (1, 0.0, 5),
            (1, 1.0, 10),
            (2, 0.0, 10),
            (2, 1.0, 20),
            (3, 0.5, 30),
            (5, 1.0, 160),
            (6, 1.0, 300),
            (40, 1.0, 300),
            (40, 0.0, 150),
        ];
        for (attempts, jitter, secs) in cases {
            assert_eq!(POLICY.delay(attempts, jitter), Duration::from_secs(secs), "attempt {attempts} jitter {jitter}");
        }
    }

    #[test]
    fn gives_up_after_the_budget() {
        let now = Timestamp::from_unix_millis(1_000_000);
        assert_eq!(
            POLICY.after_failure(4, now, 0.0, "boom".into()),
            JobOutcome::Retry { at: now + Duration::from_secs(40), error: "boom".into() }
        );
        assert_eq!(POLICY.after_failure(5, now, 0.0, "boom".into()), JobOutcome::Dead { error: "boom".into() });
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
        fn delay_is_monotonic_and_bounded(attempts in 1u32..100, jitter in 0.0f64..1.0) {
            let d = POLICY.delay(attempts, jitter);
            prop_assert!(d <= POLICY.max_delay);
            prop_assert!(d >= POLICY.delay(attempts, 0.0));
            prop_assert!(POLICY.delay(attempts + 1, 0.0) >= POLICY.delay(attempts, 0.0));
        }
    }
}
