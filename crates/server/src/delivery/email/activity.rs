//! What happened to a message after it was handed over, from whoever tells: a delivery
//! status notification or a feedback report received by the mail listener, a provider's
//! notification, a tracked open or click, an unsubscribe. Every report goes through
//! [`Email::record_activity`]: the activity is group-committed with the others arriving at the
//! same time, together with the message's new status, the suppression it causes, the
//! `email_*` event of the contact and the campaign event webhooks it fires.

use herald_domain::campaign_webhook::message_data;
use herald_domain::{Activity, ActivityKind, BounceKind, CampaignEventKind, Message, MessageId, Suppression};
use herald_domain::{NewJob, Timestamp, WorkspaceId};
use std::time::Duration;

use herald_store::StoreError;
use herald_store::email::ActivityWrite;
pub use herald_store::email::Recorded;

use super::Email;
use crate::group_commit::{CommitError, GroupCommit};

/// This many soft bounces of one address within [`SOFT_BOUNCE_WINDOW`] suppress it.
pub(super) const SOFT_BOUNCES_TO_SUPPRESS: u64 = 3;
pub(super) const SOFT_BOUNCE_WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// The committer of activity writes.
pub(super) type Committer = GroupCommit<ActivityWrite, Recorded>;

/// Starts the committers of activity writes.
pub(super) fn committer(
    store: herald_store::SharedStore,
    clock: crate::clock::SharedClock,
    committers: usize,
) -> Committer {
    GroupCommit::start(
        "email_activity",
        clock,
        committers,
        std::sync::Arc::new(move |writes: Vec<ActivityWrite>, now| {
            let store = store.clone();
            Box::pin(async move { store.record_activities(&writes, now).await })
        }),
    )
}

impl Email {
    /// Records one activity of a message of `workspace`: durable when this returns.
    pub async fn record_activity(&self, workspace: WorkspaceId, activity: Activity) -> Result<Recorded, StoreError> {
        let Some(write) = self.activity_write(workspace, activity).await? else {
            return Ok(Recorded::UnknownMessage);
        };
        match self.activities.submit(vec![write]).await {
            Ok(mut results) => results.pop().ok_or_else(|| StoreError::Corrupt("no result".into())),
            Err(CommitError::Store(e)) => Err(StoreError::Other(Box::new(e))),
            Err(CommitError::Closed) => Err(StoreError::Other("the server is shutting down".into())),
        }
    }

    /// The write that records `activity` with what it causes; `None` when its message is
    /// gone (deleted with its contact or campaign).
    pub(super) async fn activity_write(
        &self,
        workspace: WorkspaceId,
        activity: Activity,
    ) -> Result<Option<ActivityWrite>, StoreError> {
        let message = match self.store.get_message(workspace, activity.message_id).await {
            Ok(message) => message,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.write_for(&message, activity, true).await.map(Some)
    }

    /// The write that records `activity` of `message` with what it causes. `hooked` says
    /// whether the message's campaign may have event webhooks listening (`false` when the
    /// caller knows it has none, sparing their lookup).
    pub(super) async fn write_for(
        &self,
        message: &Message,
        activity: Activity,
        hooked: bool,
    ) -> Result<ActivityWrite, StoreError> {
        let suppress = self.activity_suppression(message, &activity).await?;
        let follow_up = if hooked { self.activity_hooks(message, &activity).await? } else { Vec::new() };
        Ok(ActivityWrite { workspace: message.workspace_id, activity, suppress, follow_up })
    }

    /// The message that carries this `Message-ID` (without angle brackets), in any workspace.
    pub async fn message_by_internet_id(
        &self,
        internet_message_id: &str,
    ) -> Result<Option<(WorkspaceId, MessageId)>, StoreError> {
        self.store.message_by_internet_id(internet_message_id).await
    }

    /// What the activity puts on the suppression list: a hard bounce and a complaint at once,
    /// a soft bounce when it is the third of the address within a week.
    async fn activity_suppression(
        &self,
        message: &Message,
        activity: &Activity,
    ) -> Result<Option<Suppression>, StoreError> {
        let now = self.clock.now();
        let detail = activity.reason.clone().unwrap_or_else(|| format!("reported by {}", activity.source));
        if let Some(reason) = activity.suppresses() {
            return Ok(Some(suppression(message, reason, detail, now)));
        }
        if activity.kind == ActivityKind::Bounced && activity.bounce == Some(BounceKind::Soft) {
            let earlier = self.store.soft_bounces(message.workspace_id, &message.to, now - SOFT_BOUNCE_WINDOW).await?;
            // This message counts once, whether or not it was already counted as soft.
            let counted = u64::from(message.bounce == Some(BounceKind::Soft));
            let total = earlier - counted.min(earlier) + 1;
            if total >= SOFT_BOUNCES_TO_SUPPRESS {
                let detail = format!("{total} soft bounces within 7 days, the last of message {}", message.id);
                return Ok(Some(suppression(message, "soft_bounce", detail, now)));
            }
        }
        Ok(None)
    }

    /// The campaign event webhook calls the activity fires.
    async fn activity_hooks(&self, message: &Message, activity: &Activity) -> Result<Vec<NewJob>, StoreError> {
        let kind = match activity.kind {
            ActivityKind::Delivered => CampaignEventKind::EmailDelivered,
            ActivityKind::Bounced => CampaignEventKind::EmailBounced,
            ActivityKind::Complained => CampaignEventKind::EmailComplained,
            ActivityKind::Opened => CampaignEventKind::EmailOpened,
            ActivityKind::Clicked => CampaignEventKind::EmailClicked,
            // Sent fires with its delivery, an unsubscribe with its suppression.
            ActivityKind::Sent | ActivityKind::Unsubscribed => return Ok(Vec::new()),
        };
        let status = activity.status_after(message.status).unwrap_or(message.status);
        let mut data = message_data(
            message.id,
            &message.step,
            &message.to,
            &message.subject,
            status.as_str(),
            activity.reason.as_deref(),
        );
        if let Some(object) = data.as_object_mut() {
            object.insert("source".into(), activity.source.clone().into());
            if let Some(bounce) = activity.bounce {
                object.insert("bounce".into(), bounce.as_str().into());
            }
            if let Some(url) = &activity.url {
                object.insert("url".into(), url.clone().into());
            }
            if activity.kind == ActivityKind::Opened {
                object.insert("machine".into(), activity.machine.into());
            }
        }
        let occurrence = match &activity.key {
            Some(key) => format!("{}:{key}", message.id),
            None => format!("{}:{}:{}", message.id, activity.kind, activity.occurred_at.unix_millis()),
        };
        self.message_hooks(message, kind, data, occurrence, self.clock.now()).await
    }
}

/// The suppression a bounce or a complaint causes.
pub(super) fn suppression(message: &Message, reason: &str, detail: String, now: Timestamp) -> Suppression {
    Suppression {
        email: message.to.to_lowercase(),
        contact_id: Some(message.contact_id),
        reason: reason.to_owned(),
        detail: Some(detail),
        message_id: Some(message.id),
        created_at: now,
    }
}
