//! The journey-step jobs, the one part of campaigns that other stages enqueue: a step to run,
//! a journey resumed once its webhook call is over (delivery), a journey moved on past a
//! skipped draft (drafts). Kept apart from the journey runner so that delivery reaches
//! campaigns through these constructors alone.

use herald_domain::{JobKind, JourneyId, NewJob, Timestamp, WebhookDeliveryId};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Where the journey stood when the job was scheduled; the job runs only if it still does.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StepPayload {
    pub(super) journey: JourneyId,
    pub(super) step: Option<u32>,
    pub(super) run_at: Option<Timestamp>,
    /// The finished webhook call the journey was waiting for at `step`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) webhook: Option<WebhookDeliveryId>,
    /// The draft the journey was held at, at `step`, was skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) skipped: bool,
}

pub fn step_job(journey: JourneyId, step: Option<u32>, run_at: Option<Timestamp>, now: Timestamp) -> NewJob {
    let payload = StepPayload { journey, step, run_at, webhook: None, skipped: false };
    NewJob::new(JobKind::JourneyStep, json!(payload), run_at.unwrap_or(now).max(now))
}

/// The job that resumes a journey waiting at webhook step `step` once `delivery` finished.
pub fn resume_job(journey: JourneyId, step: u32, delivery: WebhookDeliveryId, now: Timestamp) -> NewJob {
    let payload = StepPayload { journey, step: Some(step), run_at: None, webhook: Some(delivery), skipped: false };
    NewJob::new(JobKind::JourneyStep, json!(payload), now)
}

/// The job that moves a journey on past the draft at step `step` that someone skipped.
pub fn skip_job(journey: JourneyId, step: u32, now: Timestamp) -> NewJob {
    let payload = StepPayload { journey, step: Some(step), run_at: None, webhook: None, skipped: true };
    NewJob::new(JobKind::JourneyStep, json!(payload), now)
}
