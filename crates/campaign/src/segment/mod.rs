//! Segments: saved conditions over contacts, whose members Herald keeps current.
//!
//! A segment's definition is a tree of `{"all": [...]}`, `{"any": [...]}` and `{"not": {...}}`
//! over tests of four kinds:
//!
//! - a contact's fields and attributes, with every operator of branch conditions
//!   (`{"field": "plan", "op": "eq", "value": "pro"}`) plus dates: `before` / `after` a time,
//!   `within_last` a span (`{"field": "trial_ends_at", "op": "within_last", "value": "7d"}`);
//! - behaviour: `{"performed": "order_placed", "where": {...}, "times": {"at_least": 3},
//!   "within": "30d"}`, `{"not_performed": "login", "within": "14d"}`, and
//!   `{"first_performed" | "last_performed": "signup", "before" | "after": "2026-01-01T00:00:00Z"}`,
//!   where `where` is a condition on the event's properties;
//! - email engagement, the `email_*` events Herald records of a contact's messages:
//!   `{"email": "opened", "campaign_id": "cmp_…", "within": "30d"}` is a readable
//!   `performed email_opened where campaign_id = …`;
//! - a subscription topic: `{"subscribed_to": "top_…"}` (the contact has not left it; one who
//!   never chose is subscribed) or `{"not_subscribed_to": "top_…"}` (they left it);
//! - membership of another segment: `{"member_of": "seg_…"}`.
//!
//! [`Segment::evaluate`] answers for one contact from its attributes, its events of the names
//! the definition mentions ([`Segment::event_names`]), its topic choices when the definition
//! tests topics ([`Segment::topics`]) and `now`: whether the contact is a
//! member, and the earliest time at which the answer can change by time alone (a window
//! sliding past an event, a date attribute coming within range), for which the caller sets a
//! timer. [`graph`] refuses definitions that refer to themselves and orders segments so that
//! each is decided after those it refers to.

mod evaluate;
pub mod graph;
mod parse;

use std::collections::BTreeSet;

use herald_domain::{SegmentId, Timestamp, TopicId};
use serde_json::Value;

use crate::condition::Condition;
use crate::span::Span;

pub use evaluate::{EventFact, Facts, Verdict};

/// The most events of one contact a decision reads (newest first): counts above it are
/// counted as this many.
pub const MAX_EVENTS_READ: u32 = 10_000;

/// A compiled segment definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    /// A rule with one of the branch conditions' operators, on the contact object.
    Attribute(Condition),
    /// A date attribute compared with a fixed time or a window ending now.
    Date {
        field: String,
        test: DateTest,
    },
    Behaviour(Behaviour),
    /// Whether the contact is subscribed to a topic (`subscribed`) or left it.
    Topic {
        topic: TopicId,
        subscribed: bool,
    },
    MemberOf(SegmentId),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum DateTest {
    Before(Timestamp),
    After(Timestamp),
    WithinLast(Span),
}

/// A test on the contact's events named `name` (whose properties pass `filter`).
#[derive(Debug, Clone, PartialEq)]
struct Behaviour {
    name: String,
    filter: Option<Condition>,
    test: EventTest,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum EventTest {
    /// How many such events, ever or within the last span.
    Count { compare: Compare, n: u32, within: Option<Span> },
    /// The first such event before or after a time.
    First(Moment),
    /// The last such event before or after a time.
    Last(Moment),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    AtLeast,
    AtMost,
    Exactly,
}

impl Compare {
    fn holds(self, count: u64, n: u32) -> bool {
        let n = u64::from(n);
        match self {
            Compare::AtLeast => count >= n,
            Compare::AtMost => count <= n,
            Compare::Exactly => count == n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Moment {
    Before(Timestamp),
    After(Timestamp),
}

impl Moment {
    fn holds(self, at: Timestamp) -> bool {
        match self {
            Moment::Before(t) => at < t,
            Moment::After(t) => at > t,
        }
    }
}

impl Segment {
    /// Parses a definition, naming the place of the first problem (`all[1].times.at_least`).
    pub fn from_json(value: &Value) -> Result<Segment, crate::DocumentError> {
        parse::definition(value).map(|root| Segment { root })
    }

    /// The names of the events the definition reads.
    pub fn event_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        self.root.walk(&mut |node| {
            if let Node::Behaviour(b) = node {
                names.insert(b.name.clone());
            }
        });
        names
    }

    /// The segments the definition's `member_of` tests name.
    pub fn references(&self) -> BTreeSet<SegmentId> {
        let mut ids = BTreeSet::new();
        self.root.walk(&mut |node| {
            if let Node::MemberOf(id) = node {
                ids.insert(*id);
            }
        });
        ids
    }

    /// The topics the definition's `subscribed_to` and `not_subscribed_to` tests name.
    pub fn topics(&self) -> BTreeSet<TopicId> {
        let mut ids = BTreeSet::new();
        self.root.walk(&mut |node| {
            if let Node::Topic { topic, .. } = node {
                ids.insert(*topic);
            }
        });
        ids
    }

    /// Whether the contact of `facts` is a member, and until when that answer holds.
    pub fn evaluate(&self, facts: &Facts<'_>) -> Verdict {
        evaluate::node(&self.root, facts)
    }
}

impl Node {
    fn walk(&self, visit: &mut impl FnMut(&Node)) {
        visit(self);
        match self {
            Node::All(items) | Node::Any(items) => items.iter().for_each(|n| n.walk(visit)),
            Node::Not(inner) => inner.walk(visit),
            _ => {}
        }
    }
}

/// Every operator an attribute test may use: the branch conditions' and the dates', for
/// screens that offer them.
pub fn attribute_operators() -> Vec<&'static str> {
    crate::condition::OPS.iter().map(|(name, _)| *name).chain(parse::DATE_OPS).collect()
}

/// The activities an `email` test may name (`opened`, `clicked`, …).
pub fn email_activities() -> Vec<&'static str> {
    parse::EMAIL_KINDS.iter().map(|(kind, _)| *kind).collect()
}

/// The contact as a definition's attribute tests see it: fields and attributes at the top
/// level (`plan`, `email`, `created_at`).
pub fn contact_variables(contact: &herald_domain::Contact) -> Value {
    Value::Object(crate::context::contact_object(contact))
}

/// A time written in a definition or held by an attribute: RFC 3339 text, a date
/// (`2026-01-31`, midnight UTC) or Unix seconds.
fn time_value(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(text) => {
            let text = text.trim();
            serde_json::from_value::<Timestamp>(Value::String(text.to_owned()))
                .or_else(|_| serde_json::from_value(Value::String(format!("{text}T00:00:00Z"))))
                .ok()
        }
        Value::Number(n) => {
            n.as_f64().filter(|s| s.is_finite()).map(|s| Timestamp::from_unix_millis((s * 1000.0) as i64))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
