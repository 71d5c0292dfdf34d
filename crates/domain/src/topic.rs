//! Subscription topics: the kinds of mail a workspace sends (a newsletter, product updates)
//! that a contact can leave one at a time, and each contact's recorded choice per topic.
//!
//! A contact who never chose is subscribed: a topic is something one leaves, the way the
//! global unsubscribe always worked. Leaving everything is not a topic choice but the
//! suppression list's `unsubscribed`, which stops every message, transactional ones too.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::campaign::string_enum;
use crate::{ContactId, Timestamp, TopicId, WorkspaceId};

/// The longest topic name, in characters.
pub const MAX_TOPIC_NAME: usize = 100;
/// The longest topic description, in characters.
pub const MAX_TOPIC_DESCRIPTION: usize = 1000;

/// A named kind of mail, shown to contacts on the preference page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub id: TopicId,
    pub workspace_id: WorkspaceId,
    /// Unique in the workspace, compared without regard to case.
    pub name: String,
    /// What the contact receives under it, in the workspace's words; may be empty.
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Deleted topics are kept for the campaign versions that name them: they are listed
    /// nowhere and no choice about them can be recorded any more, but the choices recorded
    /// before still hold for their mail.
    pub deleted_at: Option<Timestamp>,
}

string_enum!(
    /// Who or what recorded a contact's choice about a topic.
    ConsentSource {
        /// The API (`PUT /api/v1/contacts/{id}/topics`).
        Api = "api",
        /// A column of a contacts CSV import.
        Import = "import",
        /// The contact, on the hosted preference page.
        PreferencePage = "preference_page",
        /// The contact's mail client, through the one-click `List-Unsubscribe` POST.
        OneClick = "one_click",
    }
);

/// A contact's recorded choice about one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConsent {
    pub contact_id: ContactId,
    pub topic_id: TopicId,
    pub subscribed: bool,
    pub source: ConsentSource,
    /// When the choice was made.
    pub updated_at: Timestamp,
}

/// The contact event a change of choice becomes.
pub fn consent_event_name(subscribed: bool) -> &'static str {
    if subscribed { "topic_subscribed" } else { "topic_unsubscribed" }
}

/// Why a message under `topic` was not sent (its status is `suppressed`): the contact left
/// the topic, before it was rendered or while it waited for its delivery.
pub fn left_topic_reason(topic: TopicId) -> String {
    format!("the contact unsubscribed from topic {topic}")
}

/// Why a topic's name or description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicFieldError {
    #[error("must not be empty")]
    Empty,
    #[error("is too long (at most {0} characters)")]
    TooLong(usize),
    #[error("must not contain control characters")]
    Control,
}

/// A topic's name, trimmed: not empty, at most [`MAX_TOPIC_NAME`] characters, one line.
pub fn parse_topic_name(raw: &str) -> Result<String, TopicFieldError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(TopicFieldError::Empty);
    }
    if name.chars().count() > MAX_TOPIC_NAME {
        return Err(TopicFieldError::TooLong(MAX_TOPIC_NAME));
    }
    if name.chars().any(char::is_control) {
        return Err(TopicFieldError::Control);
    }
    Ok(name.to_owned())
}

/// A topic's description, trimmed: at most [`MAX_TOPIC_DESCRIPTION`] characters.
pub fn parse_topic_description(raw: &str) -> Result<String, TopicFieldError> {
    let description = raw.trim();
    if description.chars().count() > MAX_TOPIC_DESCRIPTION {
        return Err(TopicFieldError::TooLong(MAX_TOPIC_DESCRIPTION));
    }
    Ok(description.to_owned())
}

/// A yes/no consent value as a CSV cell or a form writes it: `yes`, `true`, `1`,
/// `subscribed` or `no`, `false`, `0`, `unsubscribed` (any case); `None` for anything else.
pub fn parse_consent(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "subscribed" => Some(true),
        "no" | "n" | "false" | "0" | "unsubscribed" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_topic_name("  Newsletter ").as_deref(), Ok("Newsletter"));
        assert_eq!(parse_topic_name("   "), Err(TopicFieldError::Empty));
        assert_eq!(parse_topic_name(&"x".repeat(101)), Err(TopicFieldError::TooLong(100)));
        assert_eq!(parse_topic_name("a\nb"), Err(TopicFieldError::Control));
        assert_eq!(parse_topic_description(&"x".repeat(1001)), Err(TopicFieldError::TooLong(1000)));
    }

    #[test]
    fn consent_values_read_yes_and_no_only() {
        for yes in ["yes", "YES", "true", "1", "subscribed", " y "] {
            assert_eq!(parse_consent(yes), Some(true), "{yes}");
        }
        for no in ["no", "False", "0", "unsubscribed", "n"] {
            assert_eq!(parse_consent(no), Some(false), "{no}");
        }
        for bad in ["", "maybe", "2", "yess"] {
            assert_eq!(parse_consent(bad), None, "{bad}");
        }
    }
}
