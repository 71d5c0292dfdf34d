//! The form's inputs for a piece of the document: a condition's rule rows (or its JSON, when
//! nested deeper than rows show) and each kind of step's fields, named by their paths so the
//! form reads them back and errors find them.

use serde_json::Value;

use super::STEP_KINDS;
use super::form::{show_pairs, show_scalar};

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
    pub(super) fn new(name: String, label: &'static str, input: &'static str, value: impl Into<String>) -> Self {
        Self { name, label, input, value: value.into(), options: Vec::new(), help: "", list: "", error: None }
    }

    pub(super) fn text(name: String, label: &'static str, value: &Value) -> Self {
        Self::new(name, label, "text", value.as_str().unwrap_or_default())
    }

    pub(super) fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }

    pub(super) fn select(name: String, label: &'static str, current: &str, options: &[(&str, &str)]) -> Self {
        let mut field = Self::new(name, label, "select", current);
        field.options = options.iter().map(|(v, l)| ((*v).to_owned(), (*l).to_owned(), *v == current)).collect();
        field
    }

    pub(super) fn checkbox(name: String, label: &'static str, on: bool) -> Self {
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

pub(super) fn condition_view(path: &str, condition: &Value) -> ConditionView {
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

pub(super) fn kind_title(kind: &str) -> &str {
    STEP_KINDS.iter().find(|(k, _)| *k == kind).map_or(kind, |(_, title)| title)
}

/// The saved things a step's fields offer: actions and topics, each as (id, name).
pub(super) struct StepChoices<'a> {
    pub(super) actions: &'a [(String, String)],
    pub(super) topics: &'a [(String, String)],
}

/// What an email step is about: `transactional`, a topic's id, or empty (marketing mail about
/// no topic), with a topic the workspace no longer lists kept as it is.
fn mail_kind(name: String, step: &Value, topics: &[(String, String)]) -> FieldView {
    let current = match (step["transactional"] == true, step["topic"].as_str()) {
        (true, _) => "transactional",
        (false, Some(topic)) => topic,
        (false, None) => "",
    };
    let mut choices = vec![
        (
            String::new(),
            "No topic: marketing mail, stopped only by unsubscribing from everything".to_owned(),
            current.is_empty(),
        ),
        (
            "transactional".to_owned(),
            "Transactional: sent whatever the contact's topics".to_owned(),
            current == "transactional",
        ),
    ];
    choices.extend(topics.iter().map(|(id, name)| (id.clone(), format!("Topic: {name}"), id == current)));
    if current.starts_with("top_") && !topics.iter().any(|(id, _)| id == current) {
        choices.push((current.to_owned(), format!("{current} (not found)"), true));
    }
    let mut field = FieldView::new(name, "Topic", "select", current);
    field.options = choices;
    field.help("Contacts who left the topic are not sent this email; its unsubscribe link leaves the topic")
}

pub(super) fn step_fields(p: &str, kind: &str, step: &Value, saved: &StepChoices<'_>) -> Vec<FieldView> {
    let actions = saved.actions;
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
            mail_kind(key("topic"), step, saved.topics),
            FieldView::new(key("html"), "HTML body", "code", step["html"].as_str().unwrap_or_default())
                .help("Liquid: {{ first_name | default: \"there\" }}, {{ event.data.plan }}"),
            FieldView::new(key("text"), "Text body", "code", step["text"].as_str().unwrap_or_default())
                .help("Derived from the HTML when blank"),
            // Absent means on: campaign mail is tracked unless switched off.
            FieldView::checkbox(key("track_opens"), "Track opens (a 1×1 image)", step["track_opens"] != false),
            FieldView::checkbox(
                key("track_clicks"),
                "Track clicks (links go through a signed redirect; never the unsubscribe link)",
                step["track_clicks"] != false,
            ),
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
