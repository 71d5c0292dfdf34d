//! The campaign editor: name, trigger, entry rule and goal, and the steps as an ordered,
//! nestable list (a branch holds two lists), edited as one HTML form that needs no script.
//!
//! Every button posts the whole form with an `op`: add a step to a list, move or remove one,
//! add or remove a condition rule, preview an email, save. The server rebuilds the document
//! from the fields, applies the op and shows the form again, so nothing typed is lost between
//! round trips. Fields are named by their path in the document (`steps[2].then[0].subject`),
//! which is how the compiler names its errors, so each error is shown next to its field.
//! Saving goes through the API's validation and storage ([`service::save_campaign`]): editing an
//! active campaign saves a new version, and running journeys finish on theirs.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use herald_domain::{CampaignId, CampaignState, Contact, ContactId, EmailAddress, PageRequest, WorkspaceId};
use herald_store::ContactFilter;
use serde_json::{Map, Value, json};

use super::CampaignsState;
use super::service;
use crate::campaigns::{CompileFailure, compile_document, secrets};
use crate::web::{Form, Layout, Session, UiError, UiResult, parse_id, render, see_other};

/// Branches nest at most this deep in the editor (the form is read no deeper).
const MAX_DEPTH: usize = 8;
/// Event names offered for autocomplete.
const EVENT_NAMES: u32 = 500;

const STEP_KINDS: [(&str, &str); 7] = [
    ("wait", "Wait"),
    ("email", "Send email"),
    ("webhook", "Webhook"),
    ("branch", "Branch (if / else)"),
    ("set_attribute", "Set attribute"),
    ("unset_attribute", "Unset attribute"),
    ("exit", "Exit"),
];

const TRIGGERS: [(&str, &str); 5] = [
    ("event", "An event arrives"),
    ("drop_off", "Drop-off: an event not followed by another"),
    ("inactivity", "Inactivity: no events for a while"),
    ("source", "Every request on a source"),
    ("manual", "Only when enrolled through the API"),
];

const OPS: [(&str, &str); 12] = [
    ("eq", "equals"),
    ("ne", "does not equal"),
    ("gt", "greater than"),
    ("gte", "at least"),
    ("lt", "less than"),
    ("lte", "at most"),
    ("contains", "contains"),
    ("not_contains", "does not contain"),
    ("exists", "exists"),
    ("not_exists", "does not exist"),
    ("in", "is one of"),
    ("not_in", "is none of"),
];

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

// ---------------------------------------------------------------------------------------
// Reading the form into a document.

/// The posted fields, in order, repeated names kept (checkbox groups).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A field's value, or "" when absent.
    fn raw(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// A non-blank field, trimmed.
    fn filled(&self, key: &str) -> Option<&str> {
        self.get(key).map(str::trim).filter(|v| !v.is_empty())
    }

    fn checked(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }
}

/// Builds the document the form describes. Values are kept as typed (a bad duration stays a
/// string for the compiler to name), except where the form itself can tell what is wrong.
fn read_document(f: &Fields) -> Value {
    let mut doc = Map::new();
    doc.insert("name".into(), f.raw("name").trim().into());
    if let Some(description) = f.filled("description") {
        doc.insert("description".into(), description.into());
    }
    doc.insert("trigger".into(), read_trigger(f));
    doc.insert("entry".into(), f.filled("entry").unwrap_or("once").into());
    if let Some(event) = f.get("goal.event").filter(|e| !e.is_empty()) {
        let mut goal = json!({"event": event, "exit": f.checked("goal.exit")});
        if let Some(within) = f.filled("goal.within") {
            goal["within"] = within.into();
        }
        doc.insert("goal".into(), goal);
    }
    if let Some(timezone) = f.filled("timezone") {
        doc.insert("timezone".into(), timezone.into());
    }
    doc.insert("steps".into(), Value::Array(read_steps(f, "steps", 0)));
    Value::Object(doc)
}

fn read_trigger(f: &Fields) -> Value {
    let kind = f.filled("trigger.type").unwrap_or("event");
    let mut trigger = json!({"type": kind});
    match kind {
        "event" => {
            trigger["event"] = f.raw("trigger.event").into();
            if let Some(nth) = f.filled("trigger.occurrence.nth") {
                let mut occurrence = json!({"nth": number_or_text(nth)});
                if let Some(within) = f.filled("trigger.occurrence.within") {
                    occurrence["within"] = within.into();
                }
                trigger["occurrence"] = occurrence;
            }
        }
        "drop_off" => {
            trigger["event"] = f.raw("trigger.event").into();
            trigger["missing"] = f.raw("trigger.missing").into();
            trigger["within"] = f.raw("trigger.within").trim().into();
        }
        "inactivity" => {
            trigger["after"] = f.raw("trigger.after").trim().into();
            let events: Vec<Value> = split_list(f.raw("trigger.events")).map(Value::from).collect();
            if !events.is_empty() {
                trigger["events"] = Value::Array(events);
            }
        }
        "source" => trigger["source_id"] = f.raw("trigger.source_id").trim().into(),
        _ => {}
    }
    if matches!(kind, "event" | "drop_off")
        && let Some(filter) = read_condition(f, "trigger.filter")
    {
        trigger["filter"] = filter;
    }
    trigger
}

fn split_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `3` as a number; anything else as typed, for the compiler to refuse by name.
fn number_or_text(raw: &str) -> Value {
    raw.parse::<u64>().map_or_else(|_| raw.into(), Value::from)
}

/// A value typed into a one-line field: JSON scalars (`50`, `149.00`, `true`, `"50"`) as
/// such, anything else as text.
fn scalar(raw: &str) -> Value {
    match serde_json::from_str::<Value>(raw.trim()) {
        Ok(value) if !value.is_object() && !value.is_array() && !value.is_null() => value,
        _ => raw.into(),
    }
}

/// How [`scalar`] reads back what it wrote.
fn show_scalar(value: &Value) -> String {
    match value {
        Value::String(text) if scalar(text) == *value => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A condition from its rule rows (`PATH.match`, `PATH.rules[i].field|op|value`) or, for
/// one nested deeper than the editor shows, from its JSON (`PATH.json`). `None` when empty.
fn read_condition(f: &Fields, path: &str) -> Option<Value> {
    if let Some(text) = f.get(&format!("{path}.json")) {
        return (!text.trim().is_empty()).then(|| serde_json::from_str(text).unwrap_or_else(|_| text.into()));
    }
    let rules: Vec<Value> = (0..)
        .map_while(|i| {
            let rule = format!("{path}.rules[{i}]");
            let field = f.get(&format!("{rule}.field"))?;
            let op = f.filled(&format!("{rule}.op")).unwrap_or("eq");
            let mut value = json!({"field": field.trim(), "op": op});
            let raw = f.raw(&format!("{rule}.value"));
            match op {
                "exists" | "not_exists" => {}
                "in" | "not_in" => {
                    value["value"] = match serde_json::from_str::<Value>(raw) {
                        Ok(list @ Value::Array(_)) => list,
                        _ => Value::Array(split_list(raw).map(scalar).collect()),
                    }
                }
                _ => value["value"] = scalar(raw),
            }
            Some(value)
        })
        .collect();
    if rules.is_empty() {
        return None;
    }
    let combine = if f.get(&format!("{path}.match")) == Some("any") { "any" } else { "all" };
    Some(json!({ combine: rules }))
}

fn read_steps(f: &Fields, list: &str, depth: usize) -> Vec<Value> {
    if depth > MAX_DEPTH {
        return Vec::new();
    }
    (0..)
        .map_while(|i| {
            let path = format!("{list}[{i}]");
            let kind = f.get(&format!("{path}.type"))?;
            Some(read_step(f, &path, kind, depth))
        })
        .collect()
}

fn read_step(f: &Fields, p: &str, kind: &str, depth: usize) -> Value {
    let key = |name: &str| format!("{p}.{name}");
    let mut step = Map::new();
    step.insert("type".into(), kind.into());
    if let Some(id) = f.filled(&key("id")) {
        step.insert("id".into(), id.into());
    }
    let mut put = |name: &str, value: Value| {
        step.insert(name.into(), value);
    };
    match kind {
        "wait" => {
            if let Some(duration) = f.filled(&key("duration")) {
                put("duration", duration.into());
            }
            if let Some(time) = f.filled(&key("until.time")) {
                put("until", json!({"time": time, "weekdays": f.all(&key("until.weekdays"))}));
            }
        }
        "email" => {
            put("from", f.raw(&key("from")).trim().into());
            if let Some(reply_to) = f.filled(&key("reply_to")) {
                put("reply_to", reply_to.into());
            }
            put("subject", f.raw(&key("subject")).into());
            put("html", f.raw(&key("html")).into());
            if let Some(text) = f.get(&key("text")).filter(|t| !t.trim().is_empty()) {
                put("text", text.into());
            }
        }
        "webhook" => {
            put("draft", f.checked(&key("draft")).into());
            put("conversion", f.checked(&key("conversion")).into());
            if let Some(action) = f.filled(&key("action")) {
                put("action", action.into());
            } else {
                put("method", f.filled(&key("method")).unwrap_or("POST").into());
                put("url", f.raw(&key("url")).trim().into());
                put("headers", Value::Object(read_pairs(f.raw(&key("headers")), ':')));
                if let Some(username) = f.filled(&key("basic_auth.username")) {
                    put("basic_auth", json!({"username": username, "password": f.raw(&key("basic_auth.password"))}));
                }
                put("content_type", f.filled(&key("content_type")).unwrap_or("application/json").into());
                put("body", f.raw(&key("body")).into());
                if let Some(timeout) = f.filled(&key("timeout")) {
                    put("timeout", timeout.into());
                }
                put("log_response_body", f.checked(&key("log_response_body")).into());
                put("set_attributes", Value::Object(read_pairs(f.raw(&key("set_attributes")), '=')));
            }
        }
        "branch" => {
            put("condition", read_condition(f, &key("condition")).unwrap_or_else(|| json!({"all": []})));
            put("then", Value::Array(read_steps(f, &key("then"), depth + 1)));
            put("else", Value::Array(read_steps(f, &key("else"), depth + 1)));
        }
        "set_attribute" | "unset_attribute" => {
            put("attribute", f.raw(&key("attribute")).trim().into());
            if kind == "set_attribute" {
                put("value", scalar(f.raw(&key("value"))));
            }
            if f.get(&key("scope")) == Some("custom_variables") {
                put("scope", "custom_variables".into());
            }
        }
        _ => {}
    }
    Value::Object(step)
}

/// `Name: value` (or `name = value`) lines as an object; blank lines skipped. A line without
/// the separator becomes a key with an empty value, which validation then names.
fn read_pairs(text: &str, separator: char) -> Map<String, Value> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| match line.split_once(separator) {
            Some((name, value)) => (name.trim().to_owned(), Value::from(value.trim())),
            None => (line.to_owned(), Value::from("")),
        })
        .collect()
}

fn show_pairs(value: &Value, separator: &str) -> String {
    value
        .as_object()
        .map(|map| {
            map.iter().map(|(k, v)| format!("{k}{separator}{}", v.as_str().unwrap_or_default())).collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .join("\n")
}

// ---------------------------------------------------------------------------------------
// Operations on the document.

/// `steps[2].then[0]` as the JSON pointer `/steps/2/then/0`.
fn pointer(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        let (name, indexes) = part.split_once('[').map_or((part, ""), |(n, rest)| (n, rest));
        out.push('/');
        out.push_str(name);
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            out.push('/');
            out.push_str(index.trim_end_matches(']'));
        }
    }
    out
}

/// A step's list and index: `steps[2].then[0]` → (`steps[2].then`, 0).
fn split_step(path: &str) -> Option<(&str, usize)> {
    let open = path.rfind('[')?;
    let index = path[open + 1..].strip_suffix(']')?.parse().ok()?;
    Some((&path[..open], index))
}

fn list_at<'a>(doc: &'a mut Value, list: &str) -> Option<&'a mut Vec<Value>> {
    doc.pointer_mut(&pointer(list)).and_then(Value::as_array_mut)
}

fn new_step(kind: &str) -> Value {
    match kind {
        "wait" => json!({"type": "wait", "duration": "1d"}),
        "email" => json!({"type": "email", "from": "", "subject": "", "html": ""}),
        "webhook" => json!({"type": "webhook", "method": "POST", "url": "", "content_type": "application/json"}),
        "branch" => json!({"type": "branch", "condition": {"all": [{"field": "", "op": "eq", "value": ""}]},
                           "then": [], "else": []}),
        "set_attribute" => json!({"type": "set_attribute", "attribute": "", "value": ""}),
        "unset_attribute" => json!({"type": "unset_attribute", "attribute": ""}),
        _ => json!({"type": "exit"}),
    }
}

/// Applies a structural op (`add:LIST`, `remove:STEP`, `up:STEP`, `down:STEP`,
/// `rule:CONDITION`, `unrule:CONDITION:INDEX`); unknown or stale ops change nothing.
fn apply(doc: &mut Value, op: &str, f: &Fields) {
    let Some((verb, target)) = op.split_once(':') else { return };
    match verb {
        "add" => {
            let kind = f.get(&format!("kind:{target}")).unwrap_or("wait");
            if STEP_KINDS.iter().any(|(k, _)| *k == kind)
                && let Some(list) = list_at(doc, target)
            {
                list.push(new_step(kind));
            }
        }
        "remove" | "up" | "down" => {
            let Some((list, index)) = split_step(target) else { return };
            let Some(list) = list_at(doc, list) else { return };
            match verb {
                "remove" if index < list.len() => {
                    list.remove(index);
                }
                "up" if index > 0 && index < list.len() => list.swap(index, index - 1),
                "down" if index + 1 < list.len() => list.swap(index, index + 1),
                _ => {}
            }
        }
        "rule" => {
            let blank = json!({"field": "", "op": "eq", "value": ""});
            let parent = target.rsplit_once('.').map_or("", |(parent, _)| parent);
            let name = target.rsplit('.').next().unwrap_or(target);
            let Some(owner) = doc.pointer_mut(&pointer(parent)).and_then(Value::as_object_mut) else { return };
            match owner.get_mut(name).and_then(rule_list) {
                Some(rules) => rules.push(blank),
                None => {
                    owner.insert(name.into(), json!({"all": [blank]}));
                }
            }
        }
        "unrule" => {
            let Some((condition, index)) = target.rsplit_once(':') else { return };
            let Ok(index) = index.parse::<usize>() else { return };
            if let Some(rules) = doc.pointer_mut(&pointer(condition)).and_then(rule_list)
                && index < rules.len()
            {
                rules.remove(index);
            }
        }
        _ => {}
    }
}

/// The rules of an `all`/`any` condition.
fn rule_list(condition: &mut Value) -> Option<&mut Vec<Value>> {
    let object = condition.as_object_mut()?;
    let key = if object.contains_key("any") { "any" } else { "all" };
    object.get_mut(key)?.as_array_mut()
}

// ---------------------------------------------------------------------------------------
// Showing the document as a form.

/// One input, rendered by the template's `field` macro.
pub struct FieldView {
    pub name: String,
    pub label: &'static str,
    /// `text`, `textarea`, `code` (monospace textarea), `select`, `checkbox`, `weekdays`,
    /// `password`.
    pub input: &'static str,
    pub value: String,
    /// (value, label, selected) for selects and checkbox groups.
    pub options: Vec<(String, String, bool)>,
    pub help: &'static str,
    /// A `<datalist>` id for suggestions.
    pub list: &'static str,
    pub error: Option<String>,
}

impl FieldView {
    fn new(name: String, label: &'static str, input: &'static str, value: impl Into<String>) -> Self {
        Self { name, label, input, value: value.into(), options: Vec::new(), help: "", list: "", error: None }
    }

    fn text(name: String, label: &'static str, value: &Value) -> Self {
        Self::new(name, label, "text", value.as_str().unwrap_or_default())
    }

    fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }

    fn select(name: String, label: &'static str, current: &str, options: &[(&str, &str)]) -> Self {
        let mut field = Self::new(name, label, "select", current);
        field.options = options.iter().map(|(v, l)| ((*v).to_owned(), (*l).to_owned(), *v == current)).collect();
        field
    }

    fn checkbox(name: String, label: &'static str, on: bool) -> Self {
        Self::new(name, label, "checkbox", if on { "on" } else { "" })
    }
}

pub struct RuleView {
    pub field: FieldView,
    pub op: FieldView,
    pub value: FieldView,
}

pub struct ConditionView {
    pub path: String,
    pub any: bool,
    pub rules: Vec<RuleView>,
    /// A condition nested deeper than rule rows show, edited as JSON.
    pub json: Option<FieldView>,
}

fn condition_view(path: &str, condition: &Value) -> ConditionView {
    let rules = |list: &Value| -> Option<Vec<Value>> {
        let list = list.as_array()?;
        list.iter().all(|r| r.get("field").is_some()).then(|| list.clone())
    };
    let (any, list) = match condition {
        Value::Null => (false, Some(Vec::new())),
        c if c.get("field").is_some() => (false, Some(vec![c.clone()])),
        c if c.get("any").is_some() => (true, rules(&c["any"])),
        c => (false, rules(&c["all"])),
    };
    let Some(list) = list else {
        let text = if condition.is_string() {
            condition.as_str().unwrap_or_default().to_owned()
        } else {
            crate::web::pretty(condition)
        };
        return ConditionView {
            path: path.to_owned(),
            any,
            rules: Vec::new(),
            json: Some(FieldView::new(format!("{path}.json"), "Condition (JSON)", "code", text)),
        };
    };
    let rules = list
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let at = format!("{path}.rules[{i}]");
            let op = rule["op"].as_str().unwrap_or("eq");
            let value = match &rule["value"] {
                Value::Array(items) if items.iter().all(|v| !show_scalar(v).contains(',')) => {
                    items.iter().map(show_scalar).collect::<Vec<_>>().join(", ")
                }
                other => show_scalar(other),
            };
            let mut field = FieldView::text(format!("{at}.field"), "Field", &rule["field"]);
            field.list = "condition-fields";
            RuleView {
                field,
                op: FieldView::select(format!("{at}.op"), "Operator", op, &OPS),
                value: FieldView::new(format!("{at}.value"), "Value", "text", value),
            }
        })
        .collect();
    ConditionView { path: path.to_owned(), any, rules, json: None }
}

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

/// A rendered email under its step.
pub struct PreviewView {
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub warnings: Vec<String>,
    pub error: Option<String>,
}

/// The flattened tree: a step, the start of a branch arm, or a list's end (its add control).
pub struct Row {
    pub depth: usize,
    pub step: Option<StepView>,
    pub arm: &'static str,
    pub add_to: String,
}

fn kind_title(kind: &str) -> &str {
    STEP_KINDS.iter().find(|(k, _)| *k == kind).map_or(kind, |(_, title)| title)
}

fn step_fields(p: &str, kind: &str, step: &Value, actions: &[(String, String)]) -> Vec<FieldView> {
    let key = |name: &str| format!("{p}.{name}");
    match kind {
        "wait" => {
            let days: Vec<&str> =
                step["until"]["weekdays"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let mut weekdays = FieldView::new(key("until.weekdays"), "On", "weekdays", "");
            weekdays.options = WEEKDAYS.iter().map(|d| ((*d).to_owned(), (*d).to_owned(), days.contains(d))).collect();
            vec![
                FieldView::text(key("duration"), "For", &step["duration"]).help("30m, 24h, 2d, 1w"),
                FieldView::text(key("until.time"), "Or until (HH:MM)", &step["until"]["time"])
                    .help("In the contact's timezone attribute, else the campaign's"),
                weekdays,
            ]
        }
        "email" => vec![
            FieldView::text(key("from"), "From", &step["from"]).help("Name <hello@your-domain>"),
            FieldView::text(key("reply_to"), "Reply-To", &step["reply_to"]),
            FieldView::text(key("subject"), "Subject", &step["subject"]),
            FieldView::new(key("html"), "HTML body", "code", step["html"].as_str().unwrap_or_default())
                .help("Liquid: {{ first_name | default: \"there\" }}, {{ event.data.plan }}"),
            FieldView::new(key("text"), "Text body", "code", step["text"].as_str().unwrap_or_default())
                .help("Derived from the HTML when blank"),
        ],
        "webhook" => {
            let action = step["action"].as_str().unwrap_or_default();
            let mut choices = vec![(String::new(), "None: the request below".to_owned(), action.is_empty())];
            choices.extend(actions.iter().map(|(id, name)| (id.clone(), name.clone(), id == action)));
            if !action.is_empty() && !actions.iter().any(|(id, _)| id == action) {
                choices.push((action.to_owned(), format!("{action} (not found)"), true));
            }
            let mut saved = FieldView::new(key("action"), "Saved action", "select", action);
            saved.options = choices;
            let mut fields = vec![
                saved,
                FieldView::checkbox(
                    key("draft"),
                    "Draft: hold each journey until someone sends or skips",
                    step["draft"] == true,
                ),
                FieldView::checkbox(
                    key("conversion"),
                    "A successful call counts as a conversion",
                    step["conversion"] == true,
                ),
            ];
            if action.is_empty() {
                let method = step["method"].as_str().unwrap_or("POST");
                let content_type = step["content_type"].as_str().unwrap_or("application/json");
                let types = [
                    ("application/json", "JSON"),
                    ("application/x-www-form-urlencoded", "Form"),
                    ("text/plain", "Text"),
                    ("text/xml", "XML"),
                ];
                let password_set = step["basic_auth"]["password"].as_str().is_some_and(|p| !p.is_empty());
                let mut password = FieldView::new(key("basic_auth.password"), "Basic password", "password", "");
                if password_set {
                    password.help = "Set; leave blank to keep it";
                }
                fields.extend([
                    FieldView::select(
                        key("method"),
                        "Method",
                        method,
                        &[("GET", "GET"), ("POST", "POST"), ("PUT", "PUT"), ("PATCH", "PATCH"), ("DELETE", "DELETE")],
                    ),
                    FieldView::text(key("url"), "URL", &step["url"])
                        .help("A template: https://crm.example.com/leads/{{ customer.id }}"),
                    FieldView::new(key("headers"), "Headers", "code", show_pairs(&step["headers"], ": "))
                        .help("One per line: Name: value"),
                    FieldView::text(key("basic_auth.username"), "Basic username", &step["basic_auth"]["username"]),
                    password,
                    FieldView::select(key("content_type"), "Body type", content_type, &types),
                    FieldView::new(key("body"), "Body", "code", step["body"].as_str().unwrap_or_default())
                        .help("{{ customer | json }} emits any value as JSON"),
                    FieldView::text(key("timeout"), "Timeout", &step["timeout"]).help("Default 4s, at most 30s"),
                    FieldView::checkbox(
                        key("log_response_body"),
                        "Keep response bodies in the delivery log",
                        step["log_response_body"] == true,
                    ),
                    FieldView::new(
                        key("set_attributes"),
                        "Set attributes from the response",
                        "code",
                        show_pairs(&step["set_attributes"], " = "),
                    )
                    .help("One per line: attribute = {{ response.lead_id }}"),
                ]);
            }
            fields
        }
        "set_attribute" | "unset_attribute" => {
            let scope = step["scope"].as_str().unwrap_or("contact");
            let mut fields = vec![FieldView::text(key("attribute"), "Attribute", &step["attribute"])];
            if kind == "set_attribute" {
                fields.push(
                    FieldView::new(key("value"), "Value", "text", show_scalar(&step["value"]))
                        .help("A template or a JSON value: {{ event.data.plan }}, 42, true"),
                );
            }
            fields.push(FieldView::select(
                key("scope"),
                "On",
                scope,
                &[("contact", "The contact"), ("custom_variables", "This journey's custom_variables")],
            ));
            fields
        }
        _ => Vec::new(),
    }
}

struct Flatten<'a> {
    rows: Vec<Row>,
    actions: &'a [(String, String)],
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
                fields: step_fields(&path, kind, step, self.actions),
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
struct EditorPage {
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

struct Choices {
    actions: Vec<(String, String)>,
    sources: Vec<(String, String)>,
    event_names: Vec<String>,
}

async fn choices(state: &CampaignsState, workspace: WorkspaceId) -> Result<Choices, UiError> {
    let actions = state.store.list_actions(workspace).await?;
    let sources = state.store.list_sources(workspace, PageRequest { after: None, limit: 200 }).await?;
    Ok(Choices {
        actions: actions.into_iter().map(|a| (a.id.to_string(), a.name)).collect(),
        sources: sources.items.into_iter().map(|s| (s.id.to_string(), s.name)).collect(),
        event_names: state.store.event_names(workspace, EVENT_NAMES).await?,
    })
}

struct Editing<'a> {
    session: &'a Session,
    id: Option<(CampaignId, CampaignState)>,
    doc: &'a Value,
    errors: BTreeMap<String, String>,
    previews: BTreeMap<String, PreviewView>,
    preview_contact: String,
}

fn editor_page(e: Editing<'_>, choices: Choices) -> EditorPage {
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
    let mut flatten = Flatten { rows: Vec::new(), actions: &choices.actions, previews: &mut previews };
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

fn starter() -> Value {
    json!({"name": "", "trigger": {"type": "event", "event": ""}, "entry": "once", "steps": []})
}

pub async fn new(State(state): State<CampaignsState>, session: Session) -> UiResult {
    let doc = starter();
    let editing = Editing {
        session: &session,
        id: None,
        doc: &doc,
        errors: BTreeMap::new(),
        previews: BTreeMap::new(),
        preview_contact: String::new(),
    };
    Ok(render(&editor_page(editing, choices(&state, session.workspace_id).await?)))
}

pub async fn edit(State(state): State<CampaignsState>, session: Session, Path(id): Path<String>) -> UiResult {
    let id: CampaignId = parse_id(&id)?;
    let campaign = state.store.get_campaign(session.workspace_id, id).await?;
    let editing = Editing {
        session: &session,
        id: Some((id, campaign.state)),
        doc: &secrets::masked(&campaign.document),
        errors: BTreeMap::new(),
        previews: BTreeMap::new(),
        preview_contact: String::new(),
    };
    Ok(render(&editor_page(editing, choices(&state, session.workspace_id).await?)))
}

pub async fn submit_new(
    State(state): State<CampaignsState>,
    Form(session, fields): Form<Vec<(String, String)>>,
) -> UiResult {
    submit(state, session, None, Fields(fields)).await
}

pub async fn submit_edit(
    State(state): State<CampaignsState>,
    Path(id): Path<String>,
    Form(session, fields): Form<Vec<(String, String)>>,
) -> UiResult {
    let id: CampaignId = parse_id(&id)?;
    submit(state, session, Some(id), Fields(fields)).await
}

async fn submit(state: CampaignsState, session: Session, id: Option<CampaignId>, f: Fields) -> UiResult {
    let ws = session.workspace_id;
    let stored = match id {
        Some(id) => Some(state.store.get_campaign(ws, id).await?),
        None => None,
    };
    let mut doc = read_document(&f);
    let op = f.get("op").unwrap_or("refresh").to_owned();
    let preview_contact = f.raw("preview_contact").trim().to_owned();
    let mut errors = BTreeMap::new();
    let mut previews = BTreeMap::new();
    if op == "save" {
        // Secrets show as `***` (or, for a password, not at all): the stored ones stay.
        if let Err(path) = secrets::restore(&mut doc, stored.as_ref().map(|c| &c.document)) {
            errors.insert(path, secrets::NOTHING_TO_KEEP.to_owned());
        } else {
            match compile_document(&state.store, ws, doc.clone(), false).await {
                Err(CompileFailure::Store(e)) => return Err(e.into()),
                Err(CompileFailure::Invalid(found)) => {
                    for error in found {
                        errors.entry(error.path).or_insert(error.message);
                    }
                }
                Ok(_) => match service::save_campaign(&state, ws, id, doc.clone()).await {
                    Ok(campaign) => return Ok(see_other(&format!("/campaigns/{}", campaign.id), "saved")),
                    Err(e) => {
                        let prefix = e.field.as_ref().map(|f| format!("{f}: "));
                        let message = prefix
                            .and_then(|p| e.message.strip_prefix(&p).map(str::to_owned))
                            .unwrap_or(e.message.clone());
                        errors.insert(e.field.unwrap_or_default(), message);
                    }
                },
            }
        }
    } else if let Some(step) = op.strip_prefix("preview:") {
        previews.insert(step.to_owned(), preview(&state, ws, &doc, step, &preview_contact).await?);
    } else {
        apply(&mut doc, &op, &f);
    }
    let editing = Editing {
        session: &session,
        id: stored.as_ref().map(|c| (c.id, c.state)),
        doc: &secrets::masked(&doc),
        errors,
        previews,
        preview_contact,
    };
    let page = render(&editor_page(editing, choices(&state, ws).await?));
    Ok(if op == "save" { (axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response() } else { page })
}

/// Renders the email step at `step` for the contact named by `who` (an email address or a
/// contact id; an example contact when blank). Problems are shown in the preview.
async fn preview(
    state: &CampaignsState,
    ws: WorkspaceId,
    doc: &Value,
    step: &str,
    who: &str,
) -> Result<PreviewView, UiError> {
    let email = doc.pointer(&pointer(step)).cloned().unwrap_or(Value::Null);
    let mut view = PreviewView {
        to: String::new(),
        subject: String::new(),
        html: String::new(),
        text: String::new(),
        warnings: Vec::new(),
        error: None,
    };
    let now = state.clock.now();
    let contact = match find_contact(state, ws, who, now).await {
        Ok(contact) => contact,
        Err(message) => {
            view.error = Some(message);
            return Ok(view);
        }
    };
    view.to = contact.email.as_ref().map_or_else(|| contact.id.to_string(), |e| e.as_str().to_owned());
    let templates: BTreeMap<String, String> = ["subject", "html", "text"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), email[name].as_str()?.to_owned())))
        .collect();
    let custom_variables = Map::new();
    let scope = herald_campaign::context::Scope {
        contact: &contact,
        event: None,
        custom_variables: &custom_variables,
        campaign: None,
        unsubscribe_url: "https://example.invalid/unsubscribe",
    };
    match service::render_preview(&scope, templates, now) {
        Ok(mut parts) => {
            let mut take = |name: &str| {
                parts.remove(name).map(|part| {
                    view.warnings.extend(part.warnings.into_iter().map(|w| format!("{name}: {w}")));
                    part.output
                })
            };
            view.subject = take("subject").unwrap_or_default();
            view.html = take("html").unwrap_or_default();
            view.text = take("text").unwrap_or_default();
        }
        Err(e) => view.error = Some(e.message.replacen("templates.", "", 1)),
    }
    Ok(view)
}

async fn find_contact(
    state: &CampaignsState,
    ws: WorkspaceId,
    who: &str,
    now: herald_domain::Timestamp,
) -> Result<Contact, String> {
    if who.is_empty() {
        let example = serde_json::from_value(json!({
            "email": "jane@example.com", "first_name": "Jane", "last_name": "Doe", "name": "Jane Doe",
            "attributes": {"plan": "free"}
        }))
        .map_err(|e| e.to_string())?;
        return service::some_contact(state, ws, None, Some(example), now).await.map_err(|e| e.message);
    }
    if who.parse::<ContactId>().is_ok() {
        return service::some_contact(state, ws, Some(who.to_owned()), None, now)
            .await
            .map_err(|_| format!("No contact {who} in this workspace."));
    }
    let email = EmailAddress::parse(who).map_err(|e| format!("Preview for: {e}"))?;
    let filter = ContactFilter { email: Some(email), ..ContactFilter::default() };
    let page = state
        .store
        .list_contacts(ws, &filter, PageRequest { after: None, limit: 1 })
        .await
        .map_err(|e| e.to_string())?;
    page.items.into_iter().next().ok_or_else(|| format!("No contact with the email {who}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn paths_become_pointers_and_steps_split_into_list_and_index() {
        assert_eq!(pointer("steps[2].then[0]"), "/steps/2/then/0");
        assert_eq!(pointer("trigger.filter"), "/trigger/filter");
        assert_eq!(split_step("steps[2].else[10]"), Some(("steps[2].else", 10)));
        assert_eq!(split_step("steps"), None);
    }

    #[test]
    fn a_form_reads_back_as_the_document_it_shows() {
        let f = fields(&[
            ("name", " Onboarding "),
            ("trigger.type", "event"),
            ("trigger.event", "user_signed_up"),
            ("trigger.filter.match", "any"),
            ("trigger.filter.rules[0].field", "event.data.cart_value"),
            ("trigger.filter.rules[0].op", "gt"),
            ("trigger.filter.rules[0].value", "50"),
            ("trigger.filter.rules[1].field", "contact.plan"),
            ("trigger.filter.rules[1].op", "in"),
            ("trigger.filter.rules[1].value", "free, trial"),
            ("entry", "every_time"),
            ("goal.event", "paid"),
            ("goal.exit", "on"),
            ("steps[0].type", "wait"),
            ("steps[0].id", "day-2"),
            ("steps[0].duration", "2d"),
            ("steps[1].type", "branch"),
            ("steps[1].condition.rules[0].field", "contact.plan"),
            ("steps[1].condition.rules[0].op", "exists"),
            ("steps[1].then[0].type", "set_attribute"),
            ("steps[1].then[0].attribute", "score"),
            ("steps[1].then[0].value", "42"),
            ("steps[1].else[0].type", "webhook"),
            ("steps[1].else[0].url", "https://crm.test/{{ customer.id }}"),
            ("steps[1].else[0].headers", "X-Team: growth\n\n"),
            ("steps[1].else[0].set_attributes", "lead = {{ response.id }}"),
        ]);
        let doc = read_document(&f);
        assert_eq!(doc["name"], "Onboarding");
        assert_eq!(
            doc["trigger"]["filter"],
            json!({"any": [{"field": "event.data.cart_value", "op": "gt", "value": 50},
                           {"field": "contact.plan", "op": "in", "value": ["free", "trial"]}]})
        );
        assert_eq!(doc["goal"], json!({"event": "paid", "exit": true}));
        assert_eq!(doc["steps"][0], json!({"type": "wait", "id": "day-2", "duration": "2d"}));
        assert_eq!(doc["steps"][1]["condition"], json!({"all": [{"field": "contact.plan", "op": "exists"}]}));
        assert_eq!(doc["steps"][1]["then"][0]["value"], 42);
        let hook = &doc["steps"][1]["else"][0];
        assert_eq!(hook["headers"], json!({"X-Team": "growth"}));
        assert_eq!(hook["set_attributes"], json!({"lead": "{{ response.id }}"}));
        let parsed: herald_campaign::document::CampaignDocument =
            serde_json::from_value(doc.clone()).expect("a document");
        assert_eq!(parsed.steps.len(), 2);

        // Shown again, every value comes back in the field it was typed into.
        let view = condition_view("trigger.filter", &doc["trigger"]["filter"]);
        assert!(view.any);
        assert_eq!(view.rules[1].value.value, "free, trial");
        assert_eq!(view.rules[0].value.value, "50");
    }

    #[test]
    fn scalars_read_as_json_where_they_are_and_text_otherwise() {
        assert_eq!(scalar("149.00"), json!(149.0));
        assert_eq!(scalar("{{ x }}"), json!("{{ x }}"));
        assert_eq!(scalar("\"50\""), json!("50"));
        for value in [json!("50"), json!(50), json!("free"), json!(true), json!("true")] {
            assert_eq!(scalar(&show_scalar(&value)), value, "{value} round-trips");
        }
    }

    #[test]
    fn ops_add_move_and_remove_steps_and_rules() {
        let f = fields(&[("kind:steps", "email"), ("kind:steps[1].then", "exit")]);
        let mut doc =
            json!({"steps": [{"type": "wait"}, {"type": "branch", "condition": {"all": []}, "then": [], "else": []}]});
        apply(&mut doc, "add:steps", &f);
        assert_eq!(doc["steps"][2]["type"], "email");
        apply(&mut doc, "add:steps[1].then", &f);
        assert_eq!(doc["steps"][1]["then"][0]["type"], "exit");
        apply(&mut doc, "up:steps[2]", &f);
        assert_eq!(doc["steps"][1]["type"], "email");
        apply(&mut doc, "down:steps[0]", &f);
        assert_eq!(doc["steps"][0]["type"], "email");
        apply(&mut doc, "rule:steps[2].condition", &f);
        assert_eq!(doc["steps"][2]["condition"]["all"].as_array().map(Vec::len), Some(1));
        apply(&mut doc, "unrule:steps[2].condition:0", &f);
        assert_eq!(doc["steps"][2]["condition"]["all"], json!([]));
        apply(&mut doc, "rule:trigger.filter", &f);
        assert_eq!(doc["trigger"]["filter"]["all"].as_array().map(Vec::len), None, "no trigger object to hold it");
        apply(&mut doc, "remove:steps[1]", &f);
        assert_eq!(doc["steps"].as_array().map(Vec::len), Some(2));
        for stale in [
            "remove:steps[9]",
            "up:steps[0]",
            "down:steps[1]",
            "add:nowhere",
            "unrule:x:1",
            "bogus",
            "add:",
            "remove:[",
            "up:steps[99999999999999999999999]",
            "add:steps]]",
            "rule:",
            "unrule:steps[0]:-1",
            "remove:steps[0].then[0].then[0]",
        ] {
            let before = doc.clone();
            apply(&mut doc, stale, &f);
            assert_eq!(doc, before, "{stale} changes nothing");
        }
    }
}
