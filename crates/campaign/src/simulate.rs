//! Simulation: what a campaign would do for one contact and a timeline of events, on a
//! virtual clock, writing nothing and sending nothing. It makes the same decisions as the
//! live runner with the same code ([`crate::trigger::decide`], [`crate::engine::advance`]); only the
//! history it consults (earlier events, earlier journeys) is the timeline instead of the
//! database.

use std::collections::BTreeMap;

use herald_domain::{Contact, Event, InboundEvent, Timestamp};
use herald_template::Limits;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::compile::CompiledCampaign;
use crate::context::CampaignInfo;
use crate::engine::{
    Advance, JourneyState, Next, StepRun, Surroundings, TopicUrls, WebhookOutcome, WebhookResult, advance,
    after_webhook,
};
use crate::trigger::{self, Decision, Entry, History};

/// The most timeline entries a simulation produces before it stops.
pub const MAX_ITEMS: usize = 5_000;

/// One event of the timeline: as logged, and as parsed (what it does to the contact).
#[derive(Debug, Clone)]
pub struct SimEvent {
    pub event: Event,
    pub data: InboundEvent,
}

/// What happened, in time order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimItem {
    pub at: Timestamp,
    #[serde(flatten)]
    pub what: What,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum What {
    /// An event of the timeline arrived.
    Event {
        name: Option<String>,
    },
    /// A journey started (journeys are numbered from 1 in the order they start).
    Entered {
        journey: usize,
    },
    /// The trigger matched but the contact did not enter, and why.
    Skipped {
        reason: String,
    },
    /// A drop-off or inactivity window opened; it is decided when it closes.
    WindowOpened {
        closes: Timestamp,
    },
    /// A step ran.
    Step {
        journey: usize,
        #[serde(flatten)]
        run: StepRun,
    },
    Converted {
        journey: usize,
        exits: bool,
    },
    Completed {
        journey: usize,
    },
    Exited {
        journey: usize,
    },
}

/// The result of a simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    pub items: Vec<SimItem>,
    /// Journeys still waiting at `until`, with when their next step would run.
    pub waiting: Vec<(usize, Timestamp)>,
    /// Stopped at [`MAX_ITEMS`].
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Agenda {
    /// An event of the timeline (by index).
    Event(usize),
    /// Journey `.0` runs node `.1`.
    Step(usize, usize),
    /// The window opened by event `.0` closes.
    Window(usize),
}

struct Journey {
    state: JourneyState,
    event: usize,
    active: bool,
    converted: bool,
    goal_until: Option<Timestamp>,
    /// The place it waits at, so a stale agenda entry is ignored.
    next: Option<(Timestamp, usize)>,
}

/// Runs `compiled` for `contact` over `events` (sorted by their `received_at`) until `until`.
pub fn simulate(
    compiled: &CompiledCampaign,
    info: &CampaignInfo,
    limits: &Limits,
    workspace_timezone: Option<&str>,
    mut contact: Contact,
    events: &[SimEvent],
    until: Timestamp,
) -> Simulation {
    // (time, order of insertion) → what; events before timers at the same instant.
    let mut agenda: BTreeMap<(Timestamp, u8, usize), Agenda> = BTreeMap::new();
    let mut order = 0;
    let mut schedule = |agenda: &mut BTreeMap<_, _>, at: Timestamp, item: Agenda| {
        order += 1;
        let rank = u8::from(!matches!(item, Agenda::Event(_)));
        agenda.insert((at, rank, order), item);
    };
    for (i, e) in events.iter().enumerate() {
        schedule(&mut agenda, e.event.received_at, Agenda::Event(i));
    }
    let mut items = Vec::new();
    let mut journeys: Vec<Journey> = Vec::new();
    let mut truncated = false;
    while let Some(((at, _, _), item)) = agenda.pop_first() {
        if at > until {
            break;
        }
        if items.len() >= MAX_ITEMS {
            truncated = true;
            break;
        }
        let enter = |items: &mut Vec<SimItem>,
                     journeys: &mut Vec<Journey>,
                     contact: &Contact,
                     event: usize,
                     custom_variables: Map<String, Value>| {
            let history =
                History { entered_before: !journeys.is_empty(), active_now: journeys.iter().any(|j| j.active) };
            if let Err(reason) = trigger::check_entry(compiled.document.entry, history) {
                items.push(SimItem { at, what: What::Skipped { reason } });
                return None;
            }
            journeys.push(Journey {
                state: JourneyState { contact: contact.clone(), custom_variables },
                event,
                active: true,
                converted: false,
                goal_until: compiled
                    .document
                    .goal
                    .as_ref()
                    .map(|g| g.within.map_or(Timestamp::MAX, |w| at + w.as_duration())),
                next: Some((at, 0)),
            });
            items.push(SimItem { at, what: What::Entered { journey: journeys.len() } });
            Some(journeys.len() - 1)
        };
        match item {
            Agenda::Event(i) => {
                let sim = &events[i];
                sim.data.apply_to(&mut contact);
                items.push(SimItem { at, what: What::Event { name: sim.event.name.clone() } });
                // Goals first: a journey this event starts cannot be converted by it.
                if let Some(goal) =
                    compiled.document.goal.as_ref().filter(|g| Some(g.event.as_str()) == sim.event.name.as_deref())
                {
                    for (n, journey) in journeys.iter_mut().enumerate() {
                        if journey.active && !journey.converted && journey.goal_until.is_some_and(|u| u >= at) {
                            journey.converted = true;
                            items.push(SimItem { at, what: What::Converted { journey: n + 1, exits: goal.exit } });
                            if goal.exit {
                                journey.active = false;
                                journey.next = None;
                                items.push(SimItem { at, what: What::Exited { journey: n + 1 } });
                            }
                        }
                    }
                }
                match trigger::decide(&compiled.document, true, info, &contact, &sim.event) {
                    Decision::Ignore => {}
                    Decision::Skip(reason) => items.push(SimItem { at, what: What::Skipped { reason } }),
                    Decision::OpenWindow { closes, .. } => {
                        items.push(SimItem { at, what: What::WindowOpened { closes } });
                        schedule(&mut agenda, closes, Agenda::Window(i));
                    }
                    Decision::RestartTimer { closes } => schedule(&mut agenda, closes, Agenda::Window(i)),
                    Decision::Enter(Entry { custom_variables, count }) => {
                        if let Some(count) = count {
                            let since = count.since.unwrap_or(Timestamp::MIN);
                            let so_far = events[..=i]
                                .iter()
                                .filter(|e| {
                                    e.event.name.as_deref() == Some(count.name.as_str()) && e.event.received_at >= since
                                })
                                .count();
                            if let Err(reason) = count.check(so_far as u64) {
                                items.push(SimItem { at, what: What::Skipped { reason } });
                                continue;
                            }
                        }
                        if let Some(j) = enter(&mut items, &mut journeys, &contact, i, custom_variables) {
                            schedule(&mut agenda, at, Agenda::Step(j, 0));
                        }
                    }
                }
            }
            Agenda::Window(i) => {
                let awaited = trigger::awaited(&compiled.document.trigger).unwrap_or_default();
                let came = events[i + 1..].iter().any(|e| {
                    e.event.received_at <= at
                        && (awaited.is_empty() || e.event.name.as_ref().is_some_and(|n| awaited.contains(n)))
                });
                if !came && let Some(j) = enter(&mut items, &mut journeys, &contact, i, Map::new()) {
                    schedule(&mut agenda, at, Agenda::Step(j, 0));
                }
            }
            Agenda::Step(j, node) => {
                let journey = &mut journeys[j];
                if !journey.active || journey.next != Some((at, node)) {
                    continue;
                }
                journey.state.contact = contact.clone();
                let surroundings = Surroundings {
                    campaign: compiled,
                    info,
                    event: Some(&events[journey.event].event),
                    unsubscribe_url: "",
                    topic_unsubscribe_urls: &TopicUrls::new(),
                    limits,
                    workspace_timezone,
                    emails: &[],
                };
                let Advance { mut runs, mut next } = advance(&surroundings, &mut journey.state, node, at);
                // A simulation calls nobody: a webhook counts as answered 2xx with an empty body.
                while let Next::AwaitWebhook { step } = next {
                    let answered =
                        WebhookResult { outcome: WebhookOutcome::Succeeded, status: None, response: Value::Null };
                    let more = after_webhook(&surroundings, &mut journey.state, step, &answered, at);
                    runs.extend(more.runs);
                    next = more.next;
                }
                contact = journey.state.contact.clone();
                items.extend(runs.into_iter().map(|run| SimItem { at, what: What::Step { journey: j + 1, run } }));
                match next {
                    Next::At { at: due, step } => {
                        journey.next = Some((due, step));
                        schedule(&mut agenda, due, Agenda::Step(j, step));
                    }
                    // (A webhook's wait was resolved just above.)
                    Next::Completed | Next::Exited | Next::AwaitWebhook { .. } => {
                        journey.active = false;
                        journey.next = None;
                        let what = if next == Next::Completed {
                            What::Completed { journey: j + 1 }
                        } else {
                            What::Exited { journey: j + 1 }
                        };
                        items.push(SimItem { at, what });
                    }
                }
            }
        }
    }
    let waiting = journeys
        .iter()
        .enumerate()
        .filter_map(|(n, j)| j.next.filter(|_| j.active).map(|(at, _)| (n + 1, at)))
        .collect();
    Simulation { items, waiting, truncated }
}
