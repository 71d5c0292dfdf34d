//! Trigger decisions: given what the store knows about a contact, does this event enrol them,
//! and if not, why not (the event log explains every campaign that did not fire).
//!
//! [`decide`] is the one sequence of checks, used by the live evaluator and by the simulation
//! alike: the trigger's role, the campaign's state, the filter, then what the event opens or
//! starts. What only history can settle (how many such events came before, which journeys
//! the contact already has) is left to the caller to look up, and judged here too
//! ([`Count::check`], [`check_entry`]).

use herald_domain::{Contact, Event, Timestamp};
use serde_json::{Map, Value};

use crate::condition::Condition;
use crate::context::{CampaignInfo, Scope};
use crate::document::{CampaignDocument, EntryRule, Occurrence, Trigger};

/// What an event does to one campaign, before the contact's history is consulted.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing to do or to say: an unrelated event, or activity that does not count.
    Ignore,
    /// The trigger matched, but the contact does not enter; why.
    Skip(String),
    /// A drop-off window opens; the contact enters at `closes` unless `missing` arrives first.
    OpenWindow { closes: Timestamp, missing: String },
    /// Activity restarts an inactivity timer; the contact enters at `closes` unless more
    /// activity comes first.
    RestartTimer { closes: Timestamp },
    /// The contact enters, if the Nth-occurrence rule (when there is one) and the entry rule
    /// allow it.
    Enter(Entry),
}

/// An entry the trigger allows, with what the contact's history must still confirm.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The journey's custom variables (a source trigger's request fields).
    pub custom_variables: Map<String, Value>,
    /// The events to count for the Nth-occurrence rule, if the trigger has one.
    pub count: Option<Count>,
}

/// Which of the contact's events the Nth-occurrence rule counts: those named `name` received
/// at or after `since` (all of them when `None`), up to and including this one.
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    pub name: String,
    pub since: Option<Timestamp>,
    rule: Occurrence,
}

impl Count {
    /// `Err(why)` unless `count` such events is the one the rule wants.
    pub fn check(&self, count: u64) -> Result<(), String> {
        check_occurrence(Some(&self.rule), count)
    }
}

/// What `event` does to the campaign of `document` (`active` unless paused) for `contact`.
pub fn decide(
    document: &CampaignDocument,
    active: bool,
    info: &CampaignInfo,
    contact: &Contact,
    event: &Event,
) -> Decision {
    let name = event.name.as_deref();
    let source = event.source_id.map(|s| s.to_string());
    let segment = event.properties.get("segment_id").and_then(Value::as_str);
    let role = role(&document.trigger, name, source.as_deref(), segment);
    if role == Role::None {
        // The most common support question: the right name in the wrong case.
        if let (Trigger::Event { event: wanted, .. }, Some(name)) = (&document.trigger, name)
            && active
            && did_you_mean(name, [wanted.as_str()]).is_some()
        {
            return Decision::Skip(format!(
                "the trigger is {wanted:?} and names are case-sensitive: did you mean {wanted:?}?"
            ));
        }
        return Decision::Ignore;
    }
    // Activity that does not count is not worth a word in the event log.
    let skip = |why: String| if role == Role::Activity { Decision::Ignore } else { Decision::Skip(why) };
    if !active {
        return skip("the campaign is paused".into());
    }
    let empty = Map::new();
    let variables = Scope {
        contact,
        event: Some(event),
        custom_variables: &empty,
        campaign: Some(info),
        unsubscribe_url: "",
        emails: &[],
    }
    .variables();
    if let Err(why) = check_filter(&document.trigger, &variables) {
        return skip(why);
    }
    match (&document.trigger, role) {
        (Trigger::DropOff { within, missing, .. }, Role::OpensWindow) => {
            Decision::OpenWindow { closes: event.received_at + within.as_duration(), missing: missing.clone() }
        }
        (Trigger::Inactivity { after, .. }, Role::Activity) => {
            Decision::RestartTimer { closes: event.received_at + after.as_duration() }
        }
        (Trigger::Event { occurrence, .. }, Role::Enters) => {
            let count = occurrence.as_ref().zip(name).map(|(rule, name)| Count {
                name: name.to_owned(),
                since: rule.within.map(|w| event.received_at - w.as_duration()),
                rule: *rule,
            });
            Decision::Enter(Entry { custom_variables: Map::new(), count })
        }
        // The request's fields are the journey's custom variables.
        (Trigger::Source { .. }, Role::Enters) => {
            Decision::Enter(Entry { custom_variables: event.properties.clone(), count: None })
        }
        (Trigger::Segment { .. }, Role::Enters) => Decision::Enter(Entry { custom_variables: Map::new(), count: None }),
        _ => Decision::Ignore,
    }
}

/// The events whose arrival before a drop-off or inactivity window closes keeps the contact
/// out (every event, when empty); `None` for triggers without a window.
pub fn awaited(trigger: &Trigger) -> Option<&[String]> {
    match trigger {
        Trigger::DropOff { missing, .. } => Some(std::slice::from_ref(missing)),
        Trigger::Inactivity { events, .. } => Some(events),
        _ => None,
    }
}

/// How an event relates to a campaign's trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The event may enrol the contact now.
    Enters,
    /// The event opens a drop-off window; the check runs when it closes.
    OpensWindow,
    /// The event resets an inactivity timer.
    Activity,
    /// Unrelated.
    None,
}

/// What the event means for `trigger`. `source` is the event's source id as text, `segment`
/// the segment a segment change names.
fn role(trigger: &Trigger, name: Option<&str>, source: Option<&str>, segment: Option<&str>) -> Role {
    match trigger {
        Trigger::Event { event, .. } if Some(event.as_str()) == name => Role::Enters,
        Trigger::DropOff { event, .. } if Some(event.as_str()) == name => Role::OpensWindow,
        Trigger::Inactivity { events, .. }
            if (events.is_empty() && !herald_domain::activity::is_message_record(name, source.is_some()))
                || name.is_some_and(|n| events.iter().any(|e| e == n)) =>
        {
            Role::Activity
        }
        Trigger::Source { source_id } if source.is_some_and(|s| s == source_id.to_string()) => Role::Enters,
        // Herald records segment changes itself: an event sent by a source with the same name
        // is someone else's.
        Trigger::Segment { segment_id, on }
            if source.is_none()
                && name == Some(on.event_name())
                && segment.is_some_and(|s| s == segment_id.to_string()) =>
        {
            Role::Enters
        }
        _ => Role::None,
    }
}

/// The trigger's filter, if any, on the event's variables.
fn filter(trigger: &Trigger) -> Option<&Condition> {
    match trigger {
        Trigger::Event { filter, .. } | Trigger::DropOff { filter, .. } => filter.as_ref(),
        _ => None,
    }
}

/// `Err(why)` when the filter is false.
fn check_filter(trigger: &Trigger, variables: &Value) -> Result<(), String> {
    match filter(trigger) {
        Some(condition) if !condition.holds(variables) => {
            Err(format!("filter false: {}", condition.explain(variables)))
        }
        _ => Ok(()),
    }
}

/// The Nth-occurrence rule, given how many such events the contact has had, this one
/// included (within the window, when there is one).
fn check_occurrence(occurrence: Option<&Occurrence>, count: u64) -> Result<(), String> {
    match occurrence {
        Some(o) if count != u64::from(o.nth) => Err(format!(
            "occurrence {count} of the event{}, the trigger wants number {}",
            o.within.map(|w| format!(" within {w}")).unwrap_or_default(),
            o.nth
        )),
        _ => Ok(()),
    }
}

/// What the store knows of the contact's journeys in the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct History {
    pub entered_before: bool,
    pub active_now: bool,
}

pub fn check_entry(rule: EntryRule, history: History) -> Result<(), String> {
    match rule {
        EntryRule::Once if history.entered_before => Err("entry rule \"once\": the contact entered before".into()),
        EntryRule::OnceAtATime if history.active_now => {
            Err("entry rule \"once_at_a_time\": the contact is still in the campaign".into())
        }
        _ => Ok(()),
    }
}

/// A name that differs only in case from one of `known`: the most common support question of
/// hosted event-triggered email tools ("User_Signed_Up" sent, "user_signed_up" expected).
fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known.into_iter().find(|k| *k != name && k.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::document_from_value;
    use crate::span::Span;
    use herald_domain::event::{ContactAction, EventOutcome};
    use herald_domain::{CampaignId, ContactId, EventId, WorkspaceId};
    use serde_json::json;

    const UUID: &str = "0190c9a0000070008000000000000001";
    const AT: Timestamp = Timestamp::UNIX_EPOCH;

    fn id<T: std::str::FromStr>(prefix: &str) -> T {
        format!("{prefix}_{UUID}").parse().ok().expect("a valid id")
    }

    fn document(trigger: Value) -> CampaignDocument {
        document_from_value(json!({"name": "c", "trigger": trigger, "steps": []})).expect("a valid document")
    }

    fn contact(plan: &str) -> Contact {
        Contact {
            id: id(ContactId::PREFIX),
            workspace_id: id(WorkspaceId::PREFIX),
            email: None,
            user_id: None,
            phone: None,
            name: None,
            first_name: None,
            last_name: None,
            attributes: json!({"plan": plan}).as_object().cloned().unwrap_or_default(),
            created_at: AT,
            updated_at: AT,
        }
    }

    fn event(name: &str) -> Event {
        Event {
            id: id(EventId::PREFIX),
            workspace_id: id(WorkspaceId::PREFIX),
            source_id: None,
            contact_id: None,
            name: Some(name.to_owned()),
            properties: json!({"amount": 5}).as_object().cloned().unwrap_or_default(),
            occurred_at: AT,
            received_at: AT,
            idempotency_key: None,
            request: None,
            outcome: EventOutcome {
                contact: ContactAction::Unchanged,
                conflicts: Vec::new(),
                notes: Vec::new(),
                campaigns: Vec::new(),
            },
        }
    }

    fn decide_on(trigger: Value, active: bool, plan: &str, name: &str) -> Decision {
        let info = CampaignInfo { id: id(CampaignId::PREFIX), name: "c".into(), version: 1 };
        decide(&document(trigger), active, &info, &contact(plan), &event(name))
    }

    #[test]
    fn segment_triggers_start_on_the_change_they_name() {
        let info = CampaignInfo { id: id(CampaignId::PREFIX), name: "c".into(), version: 1 };
        let segment = format!("seg_{UUID}");
        let change = |name: &str, segment: &str| {
            let mut event = event(name);
            event.properties.insert("segment_id".into(), json!(segment));
            event
        };
        let enters = document(json!({"type": "segment", "segment_id": segment}));
        let leaves = document(json!({"type": "segment", "segment_id": segment, "on": "leave"}));
        let entered = Decision::Enter(Entry { custom_variables: Map::new(), count: None });
        assert_eq!(decide(&enters, true, &info, &contact("free"), &change("segment_entered", &segment)), entered);
        assert_eq!(decide(&enters, true, &info, &contact("free"), &change("segment_left", &segment)), Decision::Ignore);
        assert_eq!(decide(&leaves, true, &info, &contact("free"), &change("segment_left", &segment)), entered);
        let other = format!("seg_{}", UUID.replace('1', "2"));
        assert_eq!(
            decide(&enters, true, &info, &contact("free"), &change("segment_entered", &other)),
            Decision::Ignore
        );
        // The same name sent through a source is not Herald's record of a change.
        let mut sent = change("segment_entered", &segment);
        sent.source_id = Some(id(herald_domain::SourceId::PREFIX));
        assert_eq!(decide(&enters, true, &info, &contact("free"), &sent), Decision::Ignore);
    }

    #[test]
    fn the_one_sequence_of_trigger_checks() {
        let signup =
            json!({"type": "event", "event": "signed_up", "filter": {"field": "plan", "op": "eq", "value": "pro"}});
        assert_eq!(
            decide_on(signup.clone(), true, "pro", "signed_up"),
            Decision::Enter(Entry { custom_variables: Map::new(), count: None })
        );
        assert_eq!(decide_on(signup.clone(), true, "pro", "other"), Decision::Ignore);
        assert_eq!(
            decide_on(signup.clone(), false, "pro", "signed_up"),
            Decision::Skip("the campaign is paused".into())
        );
        assert!(
            matches!(decide_on(signup.clone(), true, "free", "signed_up"), Decision::Skip(why) if why.starts_with("filter false")),
        );
        assert!(
            matches!(decide_on(signup.clone(), true, "pro", "Signed_Up"), Decision::Skip(why) if why.contains("did you mean \"signed_up\"")),
        );
        // A paused campaign does not explain case mistakes.
        assert_eq!(decide_on(signup, false, "pro", "Signed_Up"), Decision::Ignore);
    }

    #[test]
    fn windows_open_and_timers_restart_but_activity_never_explains_itself() {
        let drop_off = json!({"type": "drop_off", "event": "cart", "missing": "paid", "within": "1h"});
        assert_eq!(
            decide_on(drop_off, true, "pro", "cart"),
            Decision::OpenWindow { closes: AT + std::time::Duration::from_secs(3600), missing: "paid".into() }
        );
        let idle = json!({"type": "inactivity", "after": "7d"});
        assert_eq!(
            decide_on(idle.clone(), true, "pro", "anything"),
            Decision::RestartTimer { closes: AT + std::time::Duration::from_secs(7 * 86_400) }
        );
        assert_eq!(decide_on(idle, false, "pro", "anything"), Decision::Ignore);
    }

    #[test]
    fn the_nth_occurrence_is_left_to_count_and_then_checked() {
        let third = json!({"type": "event", "event": "order", "occurrence": {"nth": 3, "within": "7d"}});
        let Decision::Enter(Entry { count: Some(count), .. }) = decide_on(third, true, "pro", "order") else {
            panic!("an entry that needs a count");
        };
        assert_eq!(
            (count.name.as_str(), count.since),
            ("order", Some(AT - std::time::Duration::from_secs(7 * 86_400)))
        );
        assert!(count.check(2).is_err());
        assert!(count.check(3).is_ok());
    }

    #[test]
    fn awaited_events_close_windows() {
        let drop_off = document(json!({"type": "drop_off", "event": "cart", "missing": "paid", "within": "1h"}));
        assert_eq!(awaited(&drop_off.trigger), Some(&["paid".to_owned()][..]));
        assert_eq!(awaited(&document(json!({"type": "manual"})).trigger), None);
    }

    #[test]
    fn nth_fires_on_exactly_the_nth() {
        let third = Occurrence { nth: 3, within: None };
        assert!(check_occurrence(Some(&third), 2).is_err());
        assert!(check_occurrence(Some(&third), 3).is_ok());
        assert!(check_occurrence(Some(&third), 4).is_err());
        assert!(check_occurrence(None, 7).is_ok());
        let windowed = Occurrence { nth: 3, within: "7d".parse::<Span>().ok() };
        assert_eq!(
            check_occurrence(Some(&windowed), 1),
            Err("occurrence 1 of the event within 1w, the trigger wants number 3".into())
        );
    }

    #[test]
    fn entry_rules() {
        let before = History { entered_before: true, active_now: false };
        let active = History { entered_before: true, active_now: true };
        assert!(check_entry(EntryRule::Once, History::default()).is_ok());
        assert!(check_entry(EntryRule::Once, before).is_err());
        assert!(check_entry(EntryRule::OnceAtATime, before).is_ok());
        assert!(check_entry(EntryRule::OnceAtATime, active).is_err());
        assert!(check_entry(EntryRule::EveryTime, active).is_ok());
    }

    #[test]
    fn suggests_the_name_in_the_right_case() {
        assert_eq!(did_you_mean("User_Signed_Up", ["user_signed_up", "other"]), Some("user_signed_up"));
        assert_eq!(did_you_mean("user_signed_up", ["user_signed_up"]), None);
        assert_eq!(did_you_mean("signup", ["user_signed_up"]), None);
    }
}
