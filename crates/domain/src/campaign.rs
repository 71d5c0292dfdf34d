//! Campaigns, journeys and messages as stored. The campaign document's format and the
//! journey engine live in `herald-campaign`; the store keeps documents as JSON.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{CampaignId, ContactId, EventId, JourneyId, MessageId, Timestamp, TopicId, WorkspaceId};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(concat!("unknown ", stringify!($name), " {:?}"), other)),
                }
            }
        }
    };
}

pub(crate) use string_enum;

string_enum!(
    /// draft → active ⇄ paused → archived.
    CampaignState {
        /// Editable; enrols nobody.
        Draft = "draft",
        /// Triggers enrol contacts; journeys run.
        Active = "active",
        /// Enrols nobody; journeys hold at their next step until resumed.
        Paused = "paused",
        /// Finished: its running journeys exited; kept for its history.
        Archived = "archived",
    }
);

string_enum!(
    /// Where a journey is.
    JourneyStatus {
        Active = "active",
        /// Ran its last step.
        Completed = "completed",
        /// Left early: an exit step, a conversion with exit, or the campaign archived.
        Exited = "exited",
    }
);

string_enum!(
    /// What became of a message.
    MessageStatus {
        Queued = "queued",
        Sent = "sent",
        Failed = "failed",
        /// The contact is on the suppression list; nothing was sent.
        Suppressed = "suppressed",
        /// Waiting for something (a verified sending domain) before it can be sent.
        Held = "held",
        /// The receiving side refused the address for good (a hard bounce); the address is
        /// suppressed.
        Bounced = "bounced",
        /// The receiving side (or the provider) said it reached the mailbox.
        Delivered = "delivered",
        /// The recipient marked it as spam (a feedback report); the address is suppressed.
        Complained = "complained",
    }
);

string_enum!(
    /// How a message bounced.
    BounceKind {
        /// Refused for good (an SMTP 5xx at RCPT or DATA): the address is suppressed at once.
        Hard = "hard",
        /// Deferred (4xx) until the retries ran out: the message failed; three such messages
        /// to one address within seven days suppress it.
        Soft = "soft",
    }
);

/// A campaign's record, with the document of its current version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    pub id: CampaignId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub state: CampaignState,
    /// The newest version; new journeys start on it.
    pub version: u32,
    pub document: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One contact's way through one version of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Journey {
    pub id: JourneyId,
    pub workspace_id: WorkspaceId,
    pub campaign_id: CampaignId,
    pub version: u32,
    pub contact_id: ContactId,
    /// The event that started it, if one did.
    pub event_id: Option<EventId>,
    pub status: JourneyStatus,
    /// The step that runs next (an index into the version's program) and when.
    pub step: Option<u32>,
    pub run_at: Option<Timestamp>,
    /// Its campaign was paused when the step fell due; it runs again on resume.
    pub held: bool,
    pub custom_variables: Map<String, Value>,
    pub entered_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub exit_reason: Option<String>,
    pub converted_at: Option<Timestamp>,
    /// Until when the goal event counts as a conversion.
    pub goal_until: Option<Timestamp>,
    /// The last step credited with a conversion so far: an email handed to its transport, or
    /// a webhook step marked `conversion` that succeeded.
    pub conversion_step: Option<String>,
}

/// An email a campaign step produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: MessageId,
    pub workspace_id: WorkspaceId,
    /// The campaign and journey whose email step made it; `None` for a transactional send.
    pub campaign_id: Option<CampaignId>,
    pub journey_id: Option<JourneyId>,
    /// The step's id; empty for a transactional send.
    pub step: String,
    pub contact_id: ContactId,
    pub status: MessageStatus,
    /// Why it failed, was suppressed or is held.
    pub status_reason: Option<String>,
    pub to: String,
    pub from: String,
    pub reply_to: Option<String>,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub headers: Map<String, Value>,
    /// Missing variables and the like, from rendering.
    pub warnings: Vec<String>,
    /// `outbox` for the embedded transport, `smtp` for an SMTP server, [`Message::NO_TRANSPORT`]
    /// for none.
    pub transport: String,
    /// The `Message-ID` header (without angle brackets), fixed when the message is created so
    /// that a retried delivery carries the same one and receivers can deduplicate.
    pub internet_message_id: String,
    /// Hand-overs to the transport tried so far.
    pub attempts: u32,
    /// The transport's last reply (for SMTP: the server's reply line, e.g. `250 2.0.0 Ok`).
    pub reply: Option<String>,
    /// Set when the message bounced: `hard` (status `bounced`) or `soft` (status `failed`).
    pub bounce: Option<BounceKind>,
    /// Whether its opens and clicks are tracked when it is composed for a relay.
    pub tracking: Tracking,
    /// The subscription topic it was sent under: a contact who left the topic is not sent it,
    /// and its unsubscribe link and one-click header leave that topic. `None`: mail about no
    /// topic (one-click leaves everything).
    pub topic: Option<TopicId>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

/// Which of a message's opens and clicks are tracked: an open pixel in the HTML, and links
/// rewritten to a signed redirect. Where a message comes from decides the default: a campaign
/// email step tracks both unless its document switches them off; anything else (mail sent
/// for one transaction) starts from `Tracking::default()`, which tracks nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    pub opens: bool,
    pub clicks: bool,
}

impl Message {
    /// The transport of a message handed to none: its address was suppressed when its step
    /// ran, or its templates failed to render.
    pub const NO_TRANSPORT: &str = "none";

    /// Whether it has bodies that could be sent: not a message whose templates failed to
    /// render (recorded `failed` without a transport, which is the only way to get there).
    pub fn was_rendered(&self) -> bool {
        !(self.status == MessageStatus::Failed && self.transport == Self::NO_TRANSPORT)
    }
}

/// What a campaign did with an event, stored in the event's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignReaction {
    pub campaign_id: CampaignId,
    pub campaign: String,
    pub action: ReactionKind,
    /// Why, for `skipped`; what, for the others.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

string_enum!(
    ReactionKind {
        /// A journey started.
        Started = "started",
        /// A drop-off window opened; the campaign decides when it closes.
        Scheduled = "scheduled",
        /// A journey reached its goal.
        Converted = "converted",
        /// A journey left because of this event.
        Exited = "exited",
        /// The trigger matched by name but the campaign did not fire.
        Skipped = "skipped",
    }
);
