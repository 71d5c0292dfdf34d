//! The campaign document: what users write, store, export and import (campaigns as code).
//!
//! ```json
//! {
//!   "name": "Onboarding",
//!   "trigger": {"type": "event", "event": "user_signed_up"},
//!   "entry": "once",
//!   "goal": {"event": "subscription_started", "within": "30d", "exit": true},
//!   "steps": [
//!     {"id": "welcome", "type": "email", "from": "Acme <hello@acme.test>",
//!      "subject": "Welcome, {{ first_name | default: \"there\" }}", "html": "<p>Hi!</p>"},
//!     {"id": "tips", "type": "email", "from": "hello@acme.test", "template": "tpl_0193…"},
//!     {"id": "day-2", "type": "wait", "duration": "2d"},
//!     {"id": "on-free", "type": "branch",
//!      "condition": {"field": "contact.plan", "op": "eq", "value": "free"},
//!      "then": [{"type": "email", "from": "hello@acme.test", "subject": "Upgrade?", "html": "..."}],
//!      "else": []}
//!   ]
//! }
//! ```
//!
//! Steps form an ordered list; a branch holds two nested lists and the journey continues
//! after the branch when an arm ends. Step ids are optional on input and filled in on save, so
//! per-step statistics follow a step across versions. Serde reads the shape; [`crate::compile`]
//! checks the meaning.

use herald_domain::{SegmentId, SourceId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::condition::Condition;
use crate::span::Span;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignDocument {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub trigger: Trigger,
    #[serde(default)]
    pub entry: EntryRule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
    /// IANA time zone for `wait` steps with `until`, for contacts without a `timezone`
    /// attribute. UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    pub steps: Vec<Step>,
}

/// What enrols a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// An event with this exact (case-sensitive) name, optionally filtered, optionally only
    /// the contact's Nth such event.
    Event {
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Condition>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        occurrence: Option<Occurrence>,
    },
    /// `event` not followed by `missing` within `within`: decided when the window closes.
    DropOff {
        event: String,
        missing: String,
        within: Span,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<Condition>,
    },
    /// No event (or none of `events`) for `after`, counted from the contact's last one.
    Inactivity {
        after: Span,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        events: Vec<String>,
    },
    /// Every accepted request on this source; its mapped fields become `custom_variables`.
    Source { source_id: SourceId },
    /// The contact enters (or, with `"on": "leave"`, leaves) a segment.
    Segment {
        segment_id: SegmentId,
        #[serde(default)]
        on: SegmentChange,
    },
    /// Only `POST /api/v1/campaigns/{id}/enroll`.
    Manual,
}

/// Which change of a segment's membership a segment trigger starts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentChange {
    #[default]
    Enter,
    Leave,
}

impl SegmentChange {
    /// The contact event that records the change.
    pub fn event_name(self) -> &'static str {
        match self {
            SegmentChange::Enter => herald_domain::activity::SEGMENT_ENTERED,
            SegmentChange::Leave => herald_domain::activity::SEGMENT_LEFT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Occurrence {
    /// Fires on exactly the Nth event (counting this one), not after.
    pub nth: u32,
    /// Count only events within this span before the triggering one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Span>,
}

/// How often one contact may enter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryRule {
    /// Once ever.
    #[default]
    Once,
    /// Again only after the previous journey ended.
    OnceAtATime,
    /// Every time the trigger fires.
    EveryTime,
}

impl EntryRule {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryRule::Once => "once",
            EntryRule::OnceAtATime => "once_at_a_time",
            EntryRule::EveryTime => "every_time",
        }
    }
}

/// A conversion: this event within `within` of entry marks the journey converted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Span>,
    /// Leave the campaign before the next step once converted.
    #[serde(default = "yes")]
    pub exit: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Step {
    Wait(WaitStep),
    Email(EmailStep),
    Branch(BranchStep),
    SetAttribute(SetAttributeStep),
    UnsetAttribute(UnsetAttributeStep),
    Exit(ExitStep),
    /// Calls another system; the journey goes on once the call succeeded or failed for good.
    Webhook(WebhookStep),
}

/// Reads a step by its `type`, keeping the path inside it (`duration`, `then[0].subject`) in
/// the error, which serde's internally tagged enums lose.
impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        fn inner<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
            serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                if path == "." { e.into_inner().to_string() } else { format!("{path}: {}", e.into_inner()) }
            })
        }
        let mut value = Value::deserialize(deserializer)?;
        let Some(object) = value.as_object_mut() else {
            return Err(D::Error::custom("a step must be an object with a \"type\""));
        };
        let kind = match object.remove("type") {
            Some(Value::String(kind)) => kind,
            Some(_) => return Err(D::Error::custom("type: must be a string")),
            None => {
                return Err(D::Error::custom(
                    "type: is required (wait, email, webhook, branch, set_attribute, unset_attribute, exit)",
                ));
            }
        };
        match kind.as_str() {
            "wait" => inner(value).map(Step::Wait),
            "email" => inner(value).map(Step::Email),
            "branch" => inner(value).map(Step::Branch),
            "set_attribute" => inner(value).map(Step::SetAttribute),
            "unset_attribute" => inner(value).map(Step::UnsetAttribute),
            "exit" => inner(value).map(Step::Exit),
            "webhook" => inner(value).map(Step::Webhook),
            other => Err(format!(
                "type: unknown step type {other:?}; use wait, email, webhook, branch, set_attribute, unset_attribute or exit"
            )),
        }
        .map_err(D::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<WaitUntil>,
}

/// The next moment, in the contact's time zone, on one of `weekdays` at `time`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitUntil {
    /// `HH:MM`, 24-hour.
    pub time: String,
    /// `mon` … `sun`; every day when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailStep {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `Name <address>` or a bare address.
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// A shared template (`tpl_…`) whose subject, HTML and text (inside its layout, if it
    /// names one) this step sends; `subject`, `html` and `text` are then left out. A journey
    /// sends the template's version that was current when it entered the campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Required unless `template` is given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// Required unless `template` is given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub html: String,
    /// Derived from the HTML when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Add an open pixel to the HTML. Campaign mail is tracked unless switched off here.
    #[serde(default = "tracked", skip_serializing_if = "is_tracked")]
    pub track_opens: bool,
    /// Send the HTML's links through Herald's signed redirect to count clicks (never the
    /// unsubscribe link).
    #[serde(default = "tracked", skip_serializing_if = "is_tracked")]
    pub track_clicks: bool,
    /// The subscription topic (`top_…`) the email belongs to: contacts who left the topic are
    /// not sent it (the message is recorded as suppressed), and its unsubscribe link and
    /// one-click header leave that topic only. An email that names neither a topic nor
    /// `transactional` is marketing mail about no topic: it goes to everyone not on the
    /// suppression list, and its one-click unsubscribe leaves everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Mail the contact needs whatever their topics (a receipt, a password reset): it names no
    /// topic, and like all mail never goes to a suppressed address.
    #[serde(default, skip_serializing_if = "is_default")]
    pub transactional: bool,
}

/// An HTTP request to another system (what Customer.io calls a "Send and receive data" action).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookStep {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// A saved action (`act_…`) whose request this step sends; the request fields below are
    /// then left out. Journeys use the action as it is when they reach the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Hold each journey here until someone sends or skips the rendered request.
    #[serde(default, skip_serializing_if = "is_default")]
    pub draft: bool,
    /// A successful call counts toward the campaign's conversions (conversions are credited
    /// to the last email or conversion webhook before the goal event).
    #[serde(default, skip_serializing_if = "is_default")]
    pub conversion: bool,
    /// GET, POST, PUT, PATCH or DELETE.
    #[serde(default = "post")]
    pub method: String,
    /// A template: `https://crm.example.com/leads/{{ customer.id }}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// Header name → value template. `Content-Type` comes from `content_type`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// `application/json` (the rendered body must parse), `application/x-www-form-urlencoded`,
    /// `text/plain` or `text/xml`.
    #[serde(default = "json_type")]
    pub content_type: String,
    /// A template; `{{ customer | json }}` emits any value as JSON.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// How long one attempt may take; default 4 s, at most 30 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// Keep the response body (up to 64 KiB) with each attempt.
    #[serde(default, skip_serializing_if = "is_default")]
    pub log_response_body: bool,
    /// Contact attribute → value template over `response` (the parsed JSON response) and the
    /// usual variables, applied when the call succeeds: `{"lead_id": "{{ response.lead_id }}"}`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub set_attributes: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl WebhookStep {
    /// Whether any request field is set (a step that uses a saved action sets none).
    pub fn has_request(&self) -> bool {
        let request_only =
            WebhookStep { id: String::new(), action: None, draft: false, conversion: false, ..self.clone() };
        request_only != WebhookStep::from_action_defaults()
    }

    /// A step with every request field at its default.
    fn from_action_defaults() -> Self {
        WebhookStep {
            id: String::new(),
            action: None,
            draft: false,
            conversion: false,
            method: post(),
            url: String::new(),
            headers: Default::default(),
            basic_auth: None,
            content_type: json_type(),
            body: String::new(),
            timeout: None,
            log_response_body: false,
            set_attributes: Default::default(),
        }
    }

    /// This step's flags and id over a saved action's request.
    pub fn with_request_of(&self, action: &WebhookStep) -> WebhookStep {
        WebhookStep {
            id: self.id.clone(),
            action: self.action.clone(),
            draft: self.draft,
            conversion: self.conversion,
            ..action.clone()
        }
    }
}

fn post() -> String {
    "POST".into()
}

fn tracked() -> bool {
    true
}

fn is_tracked(value: &bool) -> bool {
    *value
}

fn json_type() -> String {
    "application/json".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchStep {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub condition: Condition,
    pub then: Vec<Step>,
    #[serde(rename = "else")]
    pub otherwise: Vec<Step>,
}

/// Where a set-attribute step writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The contact's attributes (kept after the journey).
    #[default]
    Contact,
    /// The journey's `custom_variables` (seen by later steps of this journey only).
    CustomVariables,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetAttributeStep {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub attribute: String,
    /// Any JSON value; a string is a template.
    pub value: Value,
    #[serde(default, skip_serializing_if = "is_default")]
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsetAttributeStep {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub attribute: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitStep {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Step {
    pub fn id(&self) -> &str {
        match self {
            Step::Wait(s) => &s.id,
            Step::Email(s) => &s.id,
            Step::Branch(s) => &s.id,
            Step::SetAttribute(s) => &s.id,
            Step::UnsetAttribute(s) => &s.id,
            Step::Exit(s) => &s.id,
            Step::Webhook(s) => &s.id,
        }
    }

    pub(crate) fn id_mut(&mut self) -> Option<&mut String> {
        match self {
            Step::Wait(s) => Some(&mut s.id),
            Step::Email(s) => Some(&mut s.id),
            Step::Branch(s) => Some(&mut s.id),
            Step::SetAttribute(s) => Some(&mut s.id),
            Step::UnsetAttribute(s) => Some(&mut s.id),
            Step::Exit(s) => Some(&mut s.id),
            Step::Webhook(s) => Some(&mut s.id),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Step::Wait(_) => "wait",
            Step::Email(_) => "email",
            Step::Branch(_) => "branch",
            Step::SetAttribute(_) => "set_attribute",
            Step::UnsetAttribute(_) => "unset_attribute",
            Step::Exit(_) => "exit",
            Step::Webhook(_) => "webhook",
        }
    }
}

/// Reads a document from JSON with errors naming the path (`steps[2].duration: ...`).
pub fn document_from_value(value: Value) -> Result<CampaignDocument, crate::DocumentError> {
    from_value(value)
}

/// Reads a saved action's request (a webhook step's fields) with errors naming the field.
pub fn action_from_value(value: Value) -> Result<WebhookStep, crate::DocumentError> {
    from_value(value)
}

fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, crate::DocumentError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = e.path().to_string();
        let mut message = e.into_inner().to_string();
        if path == "." {
            path.clear();
        }
        // A step's own error starts with the path inside the step: move it into the path.
        while let Some((inner, rest)) = message.split_once(": ")
            && !inner.is_empty()
            && inner.chars().all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c))
        {
            path = if path.is_empty() { inner.to_owned() } else { format!("{path}.{inner}") };
            message = rest.to_owned();
        }
        crate::DocumentError { path, message }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn errors_inside_steps_keep_their_path() {
        let error = document_from_value(json!({
            "name": "x", "trigger": {"type": "manual"},
            "steps": [{"type": "branch", "condition": {"field": "a", "op": "exists"}, "then": [{"type": "wait", "duration": "0d"}], "else": []}]
        }))
        .expect_err("zero wait");
        assert_eq!(error.path, "steps[0].then[0].duration", "{error:?}");
        assert!(error.message.starts_with("\"0d\" is zero"), "{error:?}");
    }
}
