//! What happened to a message after it was handed over: sent, delivered, bounced, complained
//! about, opened, clicked, unsubscribed from. Each activity is recorded once (a repeated
//! [`Activity::key`] is recognised), moves the message's status where it says something final,
//! and becomes an `email_*` event of the contact, so that campaigns can trigger on it, wait for
//! it as a goal and test it in conditions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::campaign::{BounceKind, MessageStatus, string_enum};
use crate::{CampaignId, MessageId, Timestamp};

string_enum!(
    /// What kind of thing happened to a message.
    ActivityKind {
        /// The transport accepted it.
        Sent = "sent",
        /// The receiving side (or the provider) said it reached the mailbox.
        Delivered = "delivered",
        /// Refused: at once by the relay, or later by a delivery status notification or a
        /// provider's notification.
        Bounced = "bounced",
        /// The recipient marked it as spam (a feedback report, a provider's notification).
        Complained = "complained",
        /// Its tracking image was fetched.
        Opened = "opened",
        /// One of its tracked links was followed.
        Clicked = "clicked",
        /// Its recipient used its unsubscribe link or `List-Unsubscribe`.
        Unsubscribed = "unsubscribed",
    }
);

/// The events Herald records about a contact that are not something the contact did in the
/// product (an open or a click is): what happened to their messages, their subscription
/// choices, and their entering and leaving segments. They do not count as activity for an
/// inactivity window.
pub const NOT_CONTACT_ACTIVITY: [&str; 9] = [
    "email_sent",
    "email_delivered",
    "email_bounced",
    "email_complained",
    "email_unsubscribed",
    "topic_subscribed",
    "topic_unsubscribed",
    SEGMENT_ENTERED,
    SEGMENT_LEFT,
];

/// The contact event recorded when a contact enters a segment (properties: `segment_id`,
/// `segment`, `reason`).
pub const SEGMENT_ENTERED: &str = "segment_entered";
/// The contact event recorded when a contact leaves a segment.
pub const SEGMENT_LEFT: &str = "segment_left";

/// Whether an event (by its name and whether it came through a source) is one Herald recorded
/// about a message rather than something the contact did.
pub fn is_message_record(name: Option<&str>, from_source: bool) -> bool {
    !from_source && name.is_some_and(|name| NOT_CONTACT_ACTIVITY.contains(&name))
}

impl ActivityKind {
    /// The name of the contact event it becomes (`email_opened`, …).
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Sent => "email_sent",
            Self::Delivered => "email_delivered",
            Self::Bounced => "email_bounced",
            Self::Complained => "email_complained",
            Self::Opened => "email_opened",
            Self::Clicked => "email_clicked",
            Self::Unsubscribed => "email_unsubscribed",
        }
    }
}

/// One thing that happened to one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub message_id: MessageId,
    pub kind: ActivityKind,
    /// Bounced: hard (for good) or soft (given up after deferrals).
    pub bounce: Option<BounceKind>,
    /// Bounced: the diagnostic (`550 5.1.1 user unknown`); Complained: the feedback type
    /// (`abuse`).
    pub reason: Option<String>,
    /// Clicked: the address the person went to.
    pub url: Option<String>,
    /// Opened by a mail privacy proxy or a prefetch rather than by a person.
    pub machine: bool,
    /// Who told: `smtp`, `dsn`, `arf`, `ses`, `postmark`, `resend`, `tracking`, `unsubscribe`.
    pub source: String,
    /// What makes a report of it the same report: a provider's event id, a notification's
    /// `Message-ID`. A second activity with the same key in the workspace changes nothing.
    pub key: Option<String>,
    pub occurred_at: Timestamp,
}

impl Activity {
    /// An activity with only its kind, message, source and time set.
    pub fn new(message_id: MessageId, kind: ActivityKind, source: &str, occurred_at: Timestamp) -> Self {
        Self {
            message_id,
            kind,
            bounce: None,
            reason: None,
            url: None,
            machine: false,
            source: source.to_owned(),
            key: None,
            occurred_at,
        }
    }

    /// The message's status after this activity, when it changes it. Final answers win over
    /// earlier ones: a bounce or a complaint after `delivered` stands, `delivered` after a
    /// bounce does not undo it; opens, clicks and unsubscribes leave the status alone.
    pub fn status_after(&self, current: MessageStatus) -> Option<MessageStatus> {
        use MessageStatus as S;
        let next = match (self.kind, self.bounce) {
            (ActivityKind::Delivered, _) => (current == S::Sent).then_some(S::Delivered)?,
            (ActivityKind::Bounced, Some(BounceKind::Soft)) => {
                matches!(current, S::Sent | S::Delivered | S::Queued).then_some(S::Failed)?
            }
            (ActivityKind::Bounced, _) => {
                matches!(current, S::Sent | S::Delivered | S::Queued | S::Failed).then_some(S::Bounced)?
            }
            (ActivityKind::Complained, _) => (current != S::Complained).then_some(S::Complained)?,
            (ActivityKind::Sent | ActivityKind::Opened | ActivityKind::Clicked | ActivityKind::Unsubscribed, _) => {
                return None;
            }
        };
        (next != current).then_some(next)
    }

    /// The suppression reason it puts on the recipient's address at once, if any: a hard
    /// bounce and a complaint do (the repeated soft bounce is counted by the caller).
    pub fn suppresses(&self) -> Option<&'static str> {
        match (self.kind, self.bounce) {
            (ActivityKind::Bounced, Some(BounceKind::Soft)) => None,
            (ActivityKind::Bounced, _) => Some("hard_bounce"),
            (ActivityKind::Complained, _) => Some("complaint"),
            _ => None,
        }
    }

    /// What happened, in words: "opened", "bounced (hard): 550 5.1.1 user unknown".
    pub fn summary(&self) -> String {
        let mut words = self.kind.as_str().to_owned();
        if let Some(bounce) = self.bounce {
            words.push_str(&format!(" ({bounce})"));
        }
        if self.machine {
            words.push_str(" by a machine");
        }
        if let Some(detail) = self.reason.as_ref().or(self.url.as_ref()) {
            words.push_str(&format!(": {detail}"));
        }
        words
    }

    /// The properties of the contact event it becomes: which message (campaign, step,
    /// subject) and what the activity itself carries.
    pub fn event_properties(
        &self,
        campaign_id: Option<CampaignId>,
        campaign: &str,
        step: &str,
        subject: &str,
    ) -> Map<String, Value> {
        let mut properties = Map::new();
        properties.insert("message_id".into(), json!(self.message_id));
        properties.insert("campaign_id".into(), json!(campaign_id));
        properties.insert("campaign".into(), json!(campaign));
        properties.insert("step".into(), json!(step));
        properties.insert("subject".into(), json!(subject));
        properties.insert("source".into(), json!(self.source));
        if let Some(bounce) = self.bounce {
            properties.insert("bounce".into(), json!(bounce.as_str()));
        }
        if let Some(reason) = &self.reason {
            properties.insert("reason".into(), json!(reason));
        }
        if let Some(url) = &self.url {
            properties.insert("url".into(), json!(url));
        }
        if self.kind == ActivityKind::Opened {
            properties.insert("machine".into(), json!(self.machine));
        }
        properties
    }
}

/// One email of a journey with what its recipient did with it, as branch conditions and
/// templates see it (`emails.previous.opened`, `emails.<step>.clicked_urls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSummary {
    pub message_id: MessageId,
    pub step: String,
    pub status: MessageStatus,
    pub created_at: Timestamp,
    /// Opens by a person (the tracking image fetched by a mail client).
    pub opens: u32,
    /// Opens by a privacy proxy or a prefetch.
    pub machine_opens: u32,
    pub clicks: u32,
    /// The addresses its clicks went to, each once, in the order first clicked.
    pub clicked_urls: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageStatus as S;

    fn activity(kind: ActivityKind, bounce: Option<BounceKind>) -> Activity {
        let mut activity =
            Activity::new(MessageId::from_uuid(uuid::Uuid::nil()), kind, "test", Timestamp::from_unix_millis(0));
        activity.bounce = bounce;
        activity
    }

    #[test]
    fn final_answers_move_the_status_and_the_rest_leave_it() {
        let delivered = activity(ActivityKind::Delivered, None);
        assert_eq!(delivered.status_after(S::Sent), Some(S::Delivered));
        assert_eq!(delivered.status_after(S::Bounced), None, "a bounce is not undone");
        let hard = activity(ActivityKind::Bounced, Some(BounceKind::Hard));
        assert_eq!(hard.status_after(S::Delivered), Some(S::Bounced));
        assert_eq!(hard.status_after(S::Bounced), None);
        assert_eq!(hard.status_after(S::Complained), None);
        let soft = activity(ActivityKind::Bounced, Some(BounceKind::Soft));
        assert_eq!(soft.status_after(S::Sent), Some(S::Failed));
        assert_eq!(soft.status_after(S::Bounced), None);
        let complaint = activity(ActivityKind::Complained, None);
        assert_eq!(complaint.status_after(S::Delivered), Some(S::Complained));
        assert_eq!(complaint.status_after(S::Bounced), Some(S::Complained));
        for kind in [ActivityKind::Sent, ActivityKind::Opened, ActivityKind::Clicked, ActivityKind::Unsubscribed] {
            assert_eq!(activity(kind, None).status_after(S::Sent), None, "{kind:?}");
        }
    }

    #[test]
    fn hard_bounces_and_complaints_suppress_at_once() {
        assert_eq!(activity(ActivityKind::Bounced, Some(BounceKind::Hard)).suppresses(), Some("hard_bounce"));
        assert_eq!(activity(ActivityKind::Bounced, None).suppresses(), Some("hard_bounce"));
        assert_eq!(activity(ActivityKind::Bounced, Some(BounceKind::Soft)).suppresses(), None);
        assert_eq!(activity(ActivityKind::Complained, None).suppresses(), Some("complaint"));
        assert_eq!(activity(ActivityKind::Opened, None).suppresses(), None);
    }
}
