//! Email's numbers as use cases: the workspace's deliverability (bounce and complaint rates
//! over the last days, judged against the mailbox providers' bulk-sender limit) and what
//! happened to one message.

use herald_domain::{Activity, MessageId, Timestamp, WorkspaceId};
use herald_store::StoreResult;
use herald_store::email::{ActivityScope, EmailCounts, EmailNumbers, Grouping};
use serde::Serialize;

use super::EmailState;
use super::service::{ComplaintLevel, recent_numbers};
use crate::web::error::ApiError;

/// Deliverability over a window of days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deliverability {
    pub days: u32,
    pub sent: u64,
    pub bounced_hard: u64,
    pub bounced_soft: u64,
    pub complained: u64,
    /// Bounces (hard and soft) per message sent.
    pub bounce_rate: f64,
    /// Complaints per message sent.
    pub complaint_rate: f64,
    pub complaint_state: ComplaintLevel,
}

impl Deliverability {
    pub fn of(days: u32, numbers: &EmailNumbers) -> Self {
        let counts = &numbers.counts;
        Self {
            days,
            sent: counts.sent,
            bounced_hard: counts.bounced_hard,
            bounced_soft: counts.bounced_soft,
            complained: counts.complained,
            bounce_rate: numbers.rates.bounced,
            complaint_rate: numbers.rates.complained,
            complaint_state: ComplaintLevel::of(numbers.rates.complained),
        }
    }
}

/// The workspace's deliverability over the last 7 and the last 30 days.
pub async fn deliverability(
    state: &EmailState,
    workspace: WorkspaceId,
) -> Result<(Deliverability, Deliverability), ApiError> {
    let week = recent_numbers(state, workspace, 7).await?;
    let month = recent_numbers(state, workspace, 30).await?;
    Ok((Deliverability::of(7, &week), Deliverability::of(30, &month)))
}

/// How many of a message's activities are shown.
const ACTIVITIES: u32 = 500;

/// One message's numbers and activities.
#[derive(Debug, Serialize)]
pub struct MessageActivity {
    pub numbers: EmailNumbers,
    pub activities: Vec<ActivityDto>,
}

/// One activity as the API shows it.
#[derive(Debug, Serialize)]
pub struct ActivityDto {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub machine: bool,
    pub source: String,
    pub occurred_at: Timestamp,
    pub recorded_at: Timestamp,
}

impl ActivityDto {
    fn new(activity: Activity, recorded_at: Timestamp) -> Self {
        Self {
            kind: activity.kind.as_str().to_owned(),
            bounce: activity.bounce.map(|b| b.as_str().to_owned()),
            reason: activity.reason,
            url: activity.url,
            machine: activity.machine,
            source: activity.source,
            occurred_at: activity.occurred_at,
            recorded_at,
        }
    }
}

/// What happened to one message of the workspace (`NotFound` when there is none).
pub async fn message_activity(
    state: &EmailState,
    workspace: WorkspaceId,
    id: MessageId,
) -> StoreResult<MessageActivity> {
    state.store.get_message(workspace, id).await?;
    let scope = ActivityScope { message: Some(id), ..ActivityScope::default() };
    let rows = state.store.activity_counts(workspace, &scope, None, Grouping::Total).await?;
    let converted = state.store.conversions(workspace, &scope).await?;
    let activities = state.store.message_activities(workspace, id, ACTIVITIES).await?;
    Ok(MessageActivity {
        numbers: EmailNumbers::new(EmailCounts::of(&rows), Some(converted)),
        activities: activities.into_iter().map(|r| ActivityDto::new(r.activity, r.recorded_at)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_judged_by_its_complaint_rate() {
        let counts = EmailCounts { sent: 1000, complained: 3, bounced_hard: 20, ..EmailCounts::default() };
        let judged = Deliverability::of(7, &EmailNumbers::new(counts, None));
        assert_eq!((judged.complaint_state, judged.bounce_rate), (ComplaintLevel::Alarm, 0.02));
    }
}
