//! The editor page: the document shown as the form, with the step tree flattened into rows
//! (a step, the start of a branch arm, a list's add control), each error placed next to the
//! field or step it names, and the choices the form offers (saved actions, sources, segments,
//! event names).

use std::collections::BTreeMap;

use askama::Template;
use herald_domain::{CampaignId, CampaignState, PageRequest, WorkspaceId};
use serde_json::Value;

use super::fields::{ConditionView, FieldView, StepChoices, condition_view, kind_title, step_fields};
use super::form::show_scalar;
use super::preview::PreviewView;
use super::{MAX_DEPTH, STEP_KINDS};
use crate::campaigns::CampaignsState;
use crate::web::{Layout, Session, UiError};

/// Event names offered for autocomplete.
const EVENT_NAMES: u32 = 500;

const TRIGGERS: [(&str, &str); 6] = [
    ("event", "An event arrives"),
    ("drop_off", "Drop-off: an event not followed by another"),
    ("inactivity", "Inactivity: no events for a while"),
    ("source", "Every request on a source"),
    ("segment", "A contact enters or leaves a segment"),
    ("manual", "Only when enrolled through the API"),
];

pub struct StepView {
    pub path: String,
    pub kind: String,
    pub title: String,
    pub id: String,
    pub fields: Vec<FieldView>,
    pub condition: Option<ConditionView>,
    pub preview: Option<PreviewView>,
    pub error: Option<String>,
    pub first: bool,
    pub last: bool,
}

/// The flattened tree: a step, the start of a branch arm, or a list's end (its add control).
pub struct Row {
    pub depth: usize,
    pub step: Option<StepView>,
    pub arm: &'static str,
    pub add_to: String,
}

struct Flatten<'a> {
    rows: Vec<Row>,
    saved: StepChoices<'a>,
    previews: &'a mut BTreeMap<String, PreviewView>,
}

impl Flatten<'_> {
    fn list(&mut self, steps: &Value, list: &str, depth: usize) {
        let steps = steps.as_array().map(Vec::as_slice).unwrap_or_default();
        for (i, step) in steps.iter().enumerate() {
            let path = format!("{list}[{i}]");
            let kind = step["type"].as_str().unwrap_or_default();
            let id = step["id"].as_str().unwrap_or_default();
            let view = StepView {
                kind: kind.to_owned(),
                title: kind_title(kind).to_owned(),
                id: id.to_owned(),
                fields: step_fields(&path, kind, step, &self.saved),
                condition: (kind == "branch").then(|| condition_view(&format!("{path}.condition"), &step["condition"])),
                preview: self.previews.remove(&path),
                error: None,
                first: i == 0,
                last: i + 1 == steps.len(),
                path: path.clone(),
            };
            self.rows.push(Row { depth, step: Some(view), arm: "", add_to: String::new() });
            if kind == "branch" && depth < MAX_DEPTH {
                for (arm, label) in [("then", "If the condition holds"), ("else", "Otherwise")] {
                    self.rows.push(Row { depth: depth + 1, step: None, arm: label, add_to: String::new() });
                    self.list(&step[arm], &format!("{path}.{arm}"), depth + 1);
                }
            }
        }
        self.rows.push(Row { depth, step: None, arm: "", add_to: list.to_owned() });
    }
}

/// Puts each error next to the field (or step) it names; the rest go above the form.
fn place_errors(
    groups: [&mut [FieldView]; 3],
    condition: Option<&mut ConditionView>,
    rows: &mut [Row],
    mut errors: BTreeMap<String, String>,
) -> Vec<String> {
    fn take(field: &mut FieldView, errors: &mut BTreeMap<String, String>) {
        field.error = errors.remove(&field.name).map(|message| crate::web::capitalize(&message));
    }
    fn take_condition(c: &mut ConditionView, errors: &mut BTreeMap<String, String>) {
        for rule in &mut c.rules {
            for field in [&mut rule.field, &mut rule.op, &mut rule.value] {
                take(field, errors);
            }
        }
        if let Some(json) = &mut c.json {
            take(json, errors);
        }
        // The compiler names a condition's parts by its own shape (`all[0].field`): shown
        // with the condition.
        let prefix = format!("{}.", c.path);
        let inner: Vec<String> = errors.keys().filter(|k| **k == c.path || k.starts_with(&prefix)).cloned().collect();
        if let Some(first) = inner.first() {
            let message = errors.remove(first).unwrap_or_default();
            let target = c.json.as_mut().or(c.rules.first_mut().map(|r| &mut r.field));
            match target {
                Some(field) if field.error.is_none() => field.error = Some(format!("{first}: {message}")),
                _ => {
                    errors.insert(first.clone(), message);
                }
            }
        }
    }
    for field in groups.into_iter().flatten() {
        take(field, &mut errors);
    }
    if let Some(c) = condition {
        take_condition(c, &mut errors);
    }
    for row in rows.iter_mut() {
        let Some(step) = &mut row.step else { continue };
        for field in &mut step.fields {
            take(field, &mut errors);
        }
        if let Some(c) = &mut step.condition {
            take_condition(c, &mut errors);
        }
        step.error = errors.remove(&step.path).or_else(|| errors.remove(&format!("{}.id", step.path)));
    }
    errors
        .into_iter()
        .map(|(path, message)| if path.is_empty() { message } else { format!("{path}: {message}") })
        .collect()
}

#[derive(Template)]
#[template(path = "campaign_edit.html")]
pub(super) struct EditorPage {
    l: Layout,
    /// Where the form posts: `/campaigns/new` or `/campaigns/{id}/edit`.
    action: String,
    campaign_id: Option<String>,
    state: Option<String>,
    head: Vec<FieldView>,
    trigger_kind: String,
    trigger: Vec<FieldView>,
    filter: Option<ConditionView>,
    goal: Vec<FieldView>,
    rows: Vec<Row>,
    errors: Vec<String>,
    step_kinds: Vec<(&'static str, &'static str)>,
    event_names: Vec<String>,
    preview_contact: String,
}

pub(super) struct Choices {
    actions: Vec<(String, String)>,
    topics: Vec<(String, String)>,
    sources: Vec<(String, String)>,
    segments: Vec<(String, String)>,
    event_names: Vec<String>,
}

pub(super) async fn choices(state: &CampaignsState, workspace: WorkspaceId) -> Result<Choices, UiError> {
    let actions = state.store.list_actions(workspace).await?;
    let topics = state.store.list_topics(workspace).await?;
    let sources = state.store.list_sources(workspace, PageRequest { after: None, limit: 200 }).await?;
    Ok(Choices {
        actions: actions.into_iter().map(|a| (a.id.to_string(), a.name)).collect(),
        topics: topics.into_iter().map(|t| (t.id.to_string(), t.name)).collect(),
        sources: sources.items.into_iter().map(|s| (s.id.to_string(), s.name)).collect(),
        segments: state.store.list_segments(workspace).await?.into_iter().map(|s| (s.id.to_string(), s.name)).collect(),
        event_names: state.store.event_names(workspace, EVENT_NAMES).await?,
    })
}

pub(super) struct Editing<'a> {
    pub(super) session: &'a Session,
    pub(super) id: Option<(CampaignId, CampaignState)>,
    pub(super) doc: &'a Value,
    pub(super) errors: BTreeMap<String, String>,
    pub(super) previews: BTreeMap<String, PreviewView>,
    pub(super) preview_contact: String,
}

pub(super) fn editor_page(e: Editing<'_>, choices: Choices) -> EditorPage {
    let doc = e.doc;
    let trigger = &doc["trigger"];
    let trigger_kind = trigger["type"].as_str().unwrap_or("event").to_owned();
    let entry = doc["entry"].as_str().unwrap_or("once");
    let mut head = vec![
        FieldView::text("name".into(), "Name", &doc["name"]),
        FieldView::text("description".into(), "Description", &doc["description"]),
        FieldView::select("trigger.type".into(), "Starts when", &trigger_kind, &TRIGGERS),
        FieldView::select(
            "entry".into(),
            "A contact may enter",
            entry,
            &[
                ("once", "Once ever"),
                ("once_at_a_time", "Again after their journey ends"),
                ("every_time", "Every time"),
            ],
        ),
        FieldView::text("timezone".into(), "Time zone", &doc["timezone"])
            .help("IANA name for contacts without a timezone attribute; UTC when blank"),
    ];
    let mut event =
        FieldView::text("trigger.event".into(), "Event name", &trigger["event"]).help("Exact and case-sensitive");
    event.list = "event-names";
    let mut trigger_fields = match trigger_kind.as_str() {
        "event" => vec![
            event,
            FieldView::new(
                "trigger.occurrence.nth".into(),
                "Only the Nth such event",
                "text",
                show_scalar(&trigger["occurrence"]["nth"]),
            )
            .help("Blank: every one; 3: the contact's third"),
            FieldView::text(
                "trigger.occurrence.within".into(),
                "Counting events within",
                &trigger["occurrence"]["within"],
            ),
        ],
        "drop_off" => {
            let mut missing = FieldView::text("trigger.missing".into(), "Not followed by", &trigger["missing"]);
            missing.list = "event-names";
            vec![event, missing, FieldView::text("trigger.within".into(), "Within", &trigger["within"]).help("24h, 2d")]
        }
        "inactivity" => {
            let events =
                trigger["events"].as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>();
            vec![
                FieldView::text("trigger.after".into(), "No events for", &trigger["after"]).help("7d, 2w"),
                FieldView::new("trigger.events".into(), "Counting only", "text", events.join(", "))
                    .help("Event names, comma-separated; blank: any event"),
            ]
        }
        "source" => {
            let current = trigger["source_id"].as_str().unwrap_or_default();
            let mut source = FieldView::new("trigger.source_id".into(), "Source", "select", current);
            source.options = std::iter::once((String::new(), "Choose a source".to_owned(), current.is_empty()))
                .chain(choices.sources.iter().map(|(id, name)| (id.clone(), name.clone(), id == current)))
                .collect();
            vec![source]
        }
        "segment" => {
            let current = trigger["segment_id"].as_str().unwrap_or_default();
            let mut segment = FieldView::new("trigger.segment_id".into(), "Segment", "select", current);
            segment.options = std::iter::once((String::new(), "Choose a segment".to_owned(), current.is_empty()))
                .chain(choices.segments.iter().map(|(id, name)| (id.clone(), name.clone(), id == current)))
                .collect();
            let on = trigger["on"].as_str().unwrap_or("enter");
            let change = [("enter", "Enters it"), ("leave", "Leaves it")];
            vec![segment, FieldView::select("trigger.on".into(), "When the contact", on, &change)]
        }
        _ => Vec::new(),
    };
    let mut filter = matches!(trigger_kind.as_str(), "event" | "drop_off")
        .then(|| condition_view("trigger.filter", &trigger["filter"]));
    let goal = &doc["goal"];
    let mut goal_event =
        FieldView::text("goal.event".into(), "Conversion event", &goal["event"]).help("Blank: no goal");
    goal_event.list = "event-names";
    let mut goal_fields = vec![
        goal_event,
        FieldView::text("goal.within".into(), "Within", &goal["within"]).help("Of entering; blank: any time"),
        FieldView::checkbox(
            "goal.exit".into(),
            "Leave the campaign once converted",
            goal.is_null() || goal["exit"] != false,
        ),
    ];
    let mut previews = e.previews;
    let saved = StepChoices { actions: &choices.actions, topics: &choices.topics };
    let mut flatten = Flatten { rows: Vec::new(), saved, previews: &mut previews };
    flatten.list(&doc["steps"], "steps", 0);
    let mut rows = flatten.rows;
    let general =
        place_errors([&mut head, &mut trigger_fields, &mut goal_fields], filter.as_mut(), &mut rows, e.errors);
    let (action, campaign_id, state) = match e.id {
        Some((id, state)) => (format!("/campaigns/{id}/edit"), Some(id.to_string()), Some(state.to_string())),
        None => ("/campaigns/new".to_owned(), None, None),
    };
    let title = match (&campaign_id, doc["name"].as_str().filter(|n| !n.is_empty())) {
        (Some(_), Some(name)) => format!("Edit {name}"),
        _ => "New campaign".to_owned(),
    };
    EditorPage {
        l: Layout::new(e.session, "/campaigns", title),
        action,
        campaign_id,
        state,
        head,
        trigger_kind,
        trigger: trigger_fields,
        filter,
        goal: goal_fields,
        rows,
        errors: general,
        step_kinds: STEP_KINDS.to_vec(),
        event_names: choices.event_names,
        preview_contact: e.preview_contact,
    }
}
