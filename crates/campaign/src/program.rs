//! What a validated campaign is: its document and the program compiled from it (steps as
//! nodes with their successors and their templates compiled), which the engine runs.

use std::fmt;

use herald_domain::{EmailAddress, TopicId, Tracking};
use herald_template::Template;
use serde::Serialize;
use serde_json::Value;

use crate::condition::Condition;
use crate::document::{CampaignDocument, Scope};
use crate::span::Span;

/// A validated campaign: the document (with every step id filled in) and its program.
#[derive(Debug, Clone)]
pub struct CompiledCampaign {
    pub document: CampaignDocument,
    pub program: Program,
    /// Whether a condition or template refers to the journey's emails (`emails.*`), which
    /// then are read before each step.
    pub reads_emails: bool,
}

impl CompiledCampaign {
    /// Whether step `id` is a webhook whose success counts toward conversions.
    pub fn counts_conversion(&self, id: &str) -> bool {
        self.program.nodes.iter().any(|n| n.id == id && matches!(&n.action, Action::Webhook(w) if w.conversion))
    }

    /// The subscription topics its email steps name, each once.
    pub fn topics(&self) -> Vec<TopicId> {
        let mut topics = Vec::new();
        for node in &self.program.nodes {
            if let Action::Email(email) = &node.action
                && let Some(topic) = email.topic
                && !topics.contains(&topic)
            {
                topics.push(topic);
            }
        }
        topics
    }

    /// Whether step `id` is a webhook held as a draft until someone sends or skips it.
    pub fn is_draft(&self, id: &str) -> bool {
        self.program.nodes.iter().any(|n| n.id == id && matches!(&n.action, Action::Webhook(w) if w.draft))
    }
}

/// The steps as nodes: index 0 is the first step.
#[derive(Debug, Clone)]
pub struct Program {
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub action: Action,
    /// The step after this one; `None` ends the journey.
    pub next: Option<usize>,
}

#[derive(Debug, Clone)]
pub enum Action {
    Wait(Wait),
    Email(Box<EmailTemplate>),
    Branch { condition: Condition, then: Option<usize>, otherwise: Option<usize> },
    Webhook(Box<WebhookTemplate>),
    Set { attribute: String, value: ValueTemplate, scope: Scope },
    Unset { attribute: String, scope: Scope },
    Exit,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    For(Span),
    /// Local time of day (hour, minute) on one of the weekdays (Monday = 0).
    Until {
        hour: i8,
        minute: i8,
        weekdays: [bool; 7],
    },
}

/// A sender or reply-to: an address with an optional display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: EmailAddress,
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} <{}>", self.address.as_str()),
            None => f.write_str(self.address.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmailTemplate {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub subject: Template,
    pub html: Template,
    pub text: Option<Template>,
    pub tracking: Tracking,
    /// The subscription topic it is sent under; `None` for mail about no topic.
    pub topic: Option<TopicId>,
}

/// A webhook step, compiled.
#[derive(Debug, Clone)]
pub struct WebhookTemplate {
    /// Upper case: GET, POST, PUT, PATCH or DELETE.
    pub method: String,
    pub url: Template,
    pub headers: Vec<(String, Template)>,
    pub basic_auth: Option<(String, String)>,
    pub content_type: String,
    pub body: Option<Template>,
    pub timeout: std::time::Duration,
    pub log_response_body: bool,
    pub set_attributes: Vec<(String, Template)>,
    /// A success counts toward the campaign's conversions.
    pub conversion: bool,
    /// Journeys wait here until someone sends or skips the rendered request.
    pub draft: bool,
}

/// Methods a webhook step may use.
pub const WEBHOOK_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
/// Body types a webhook step may send.
pub const WEBHOOK_CONTENT_TYPES: [&str; 4] =
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "text/xml"];
/// The longest a webhook attempt may take.
pub const WEBHOOK_MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A set-attribute value: a string is a template, anything else is stored as given.
#[derive(Debug, Clone)]
pub enum ValueTemplate {
    Literal(Value),
    Template(Template),
}
