//! Deciding one contact's membership, and when time alone could change the answer.
//!
//! Each test returns its answer with the earliest future instant at which it could flip with
//! no new event or attribute change; a combination takes the earliest of its parts'. Taking
//! the earliest is safe (a re-decision then finds nothing changed and sets the next time) and
//! keeps the rule simple; behaviour tests are exact, so a contact with a steady stream of
//! events is not rechecked at every event's expiry, only when its answer flips.

use std::time::Duration;

use herald_domain::{SegmentId, Timestamp, TopicId};
use serde_json::Value;

use super::{Behaviour, Compare, DateTest, EventTest, Node, time_value};
use crate::condition::lookup;

/// One of the contact's events, as decisions read it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFact {
    pub name: String,
    /// When it happened (the event's `occurred_at`).
    pub at: Timestamp,
    /// The event's properties object.
    pub properties: Value,
}

/// What a decision reads about one contact.
pub struct Facts<'a> {
    /// The contact's fields and attributes ([`super::contact_variables`]).
    pub contact: &'a Value,
    /// Its events of the names the definition mentions, in any order.
    pub events: &'a [EventFact],
    /// Whether the contact is (as now decided) a member of another segment.
    pub member_of: &'a dyn Fn(SegmentId) -> bool,
    /// Whether the contact is subscribed to a topic (has not left it).
    pub subscribed: &'a dyn Fn(TopicId) -> bool,
    pub now: Timestamp,
}

impl std::fmt::Debug for Facts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facts").field("events", &self.events.len()).field("now", &self.now).finish_non_exhaustive()
    }
}

/// A decision: member or not, and until when that holds by time alone (`None`: until an
/// event or an attribute changes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub member: bool,
    pub changes_at: Option<Timestamp>,
}

impl Verdict {
    fn steady(member: bool) -> Self {
        Self { member, changes_at: None }
    }
}

/// The smallest step of time: a window `within the last 7d` still holds an event exactly 7
/// days old and no longer holds it a millisecond later.
const TICK: Duration = Duration::from_millis(1);

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub(super) fn node(node: &Node, facts: &Facts<'_>) -> Verdict {
    match node {
        Node::All(items) | Node::Any(items) => {
            let all = matches!(node, Node::All(_));
            let mut member = all;
            let mut changes_at = None;
            for item in items {
                let verdict = self::node(item, facts);
                member = if all { member && verdict.member } else { member || verdict.member };
                changes_at = earliest(changes_at, verdict.changes_at);
            }
            Verdict { member, changes_at }
        }
        Node::Not(inner) => {
            let verdict = self::node(inner, facts);
            Verdict { member: !verdict.member, ..verdict }
        }
        Node::Attribute(condition) => Verdict::steady(condition.holds(facts.contact)),
        Node::Date { field, test } => date(lookup(facts.contact, field).and_then(time_value), *test, facts.now),
        Node::Behaviour(behaviour) => self::behaviour(behaviour, facts),
        Node::Topic { topic, subscribed } => Verdict::steady((facts.subscribed)(*topic) == *subscribed),
        Node::MemberOf(id) => Verdict::steady((facts.member_of)(*id)),
    }
}

fn date(value: Option<Timestamp>, test: DateTest, now: Timestamp) -> Verdict {
    let Some(t) = value else { return Verdict::steady(false) };
    match test {
        DateTest::Before(limit) => Verdict::steady(t < limit),
        DateTest::After(limit) => Verdict::steady(t > limit),
        DateTest::WithinLast(span) => {
            let ends = t + span.as_duration();
            if t > now {
                // A date still to come enters the window when it arrives.
                Verdict { member: false, changes_at: Some(t) }
            } else if now <= ends {
                Verdict { member: true, changes_at: Some(ends + TICK) }
            } else {
                Verdict::steady(false)
            }
        }
    }
}

fn behaviour(behaviour: &Behaviour, facts: &Facts<'_>) -> Verdict {
    let now = facts.now;
    let mut past: Vec<Timestamp> = Vec::new();
    // An event dated in the future (sent with a later `occurred_at`) counts once it is due.
    let mut next_due: Option<Timestamp> = None;
    for event in facts
        .events
        .iter()
        .filter(|e| e.name == behaviour.name && behaviour.filter.as_ref().is_none_or(|f| f.holds(&e.properties)))
    {
        if event.at <= now {
            past.push(event.at);
        } else {
            next_due = earliest(next_due, Some(event.at));
        }
    }
    past.sort_unstable();
    let verdict = match behaviour.test {
        EventTest::Count { compare, n, within: None } => Verdict::steady(compare.holds(past.len() as u64, n)),
        EventTest::Count { compare, n, within: Some(span) } => {
            let since = now - span.as_duration();
            let inside = &past[past.partition_point(|at| *at < since)..];
            count_in_window(inside, compare, n, span.as_duration())
        }
        EventTest::First(moment) => Verdict::steady(past.first().is_some_and(|at| moment.holds(*at))),
        EventTest::Last(moment) => Verdict::steady(past.last().is_some_and(|at| moment.holds(*at))),
    };
    Verdict { changes_at: earliest(verdict.changes_at, next_due), ..verdict }
}

/// A count over a window that slides with time: the oldest events leave it one by one, each
/// a tick after it is `span` old. The answer changes when the count first reaches a value on
/// the other side of the comparison.
fn count_in_window(inside: &[Timestamp], compare: Compare, n: u32, span: Duration) -> Verdict {
    let count = inside.len() as u64;
    let member = compare.holds(count, n);
    let changes_at = inside
        .iter()
        .enumerate()
        .find(|(gone, _)| compare.holds(count - (*gone as u64 + 1), n) != member)
        .map(|(_, at)| *at + span + TICK);
    Verdict { member, changes_at }
}
