//! Trigger decisions: given what the store knows about a contact, does this event enrol them,
//! and if not, why not (the event log explains every campaign that did not fire).

use serde_json::Value;

use crate::condition::Condition;
use crate::document::{EntryRule, Occurrence, Trigger};

/// How an event relates to a campaign's trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The event may enrol the contact now.
    Enters,
    /// The event opens a drop-off window; the check runs when it closes.
    OpensWindow,
    /// The event resets an inactivity timer.
    Activity,
    /// Unrelated.
    None,
}

/// What the event means for `trigger`. `source` is the event's source id as text.
pub fn role(trigger: &Trigger, name: Option<&str>, source: Option<&str>) -> Role {
    match trigger {
        Trigger::Event { event, .. } if Some(event.as_str()) == name => Role::Enters,
        Trigger::DropOff { event, .. } if Some(event.as_str()) == name => Role::OpensWindow,
        Trigger::Inactivity { events, .. }
            if events.is_empty() || name.is_some_and(|n| events.iter().any(|e| e == n)) =>
        {
            Role::Activity
        }
        Trigger::Source { source_id } if source.is_some_and(|s| s == source_id.to_string()) => Role::Enters,
        _ => Role::None,
    }
}

/// The trigger's filter, if any, on the event's variables.
pub fn filter(trigger: &Trigger) -> Option<&Condition> {
    match trigger {
        Trigger::Event { filter, .. } | Trigger::DropOff { filter, .. } => filter.as_ref(),
        _ => None,
    }
}

/// `Err(why)` when the filter is false.
pub fn check_filter(trigger: &Trigger, variables: &Value) -> Result<(), String> {
    match filter(trigger) {
        Some(condition) if !condition.holds(variables) => {
            Err(format!("filter false: {}", condition.explain(variables)))
        }
        _ => Ok(()),
    }
}

/// The Nth-occurrence rule, given how many such events the contact has had, this one
/// included (within the window, when there is one).
pub fn check_occurrence(occurrence: Option<&Occurrence>, count: u64) -> Result<(), String> {
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
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known.into_iter().find(|k| *k != name && k.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;

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
