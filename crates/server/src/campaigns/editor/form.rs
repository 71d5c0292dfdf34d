//! Reading the posted form into a campaign document: each field is named by its path in the
//! document, and values are kept as typed so that the compiler can name what is wrong. The
//! one-line encodings (scalars, `Name: value` lines) are read and shown back here, so a value
//! comes back in the field it was typed into.

use serde_json::{Map, Value, json};

use super::MAX_DEPTH;

/// The posted fields, in order, repeated names kept (checkbox groups).
pub(super) struct Fields(pub(super) Vec<(String, String)>);

impl Fields {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A field's value, or "" when absent.
    pub(super) fn raw(&self, key: &str) -> &str {
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

    /// Fields as a test writes them.
    #[cfg(test)]
    pub(super) fn of(pairs: &[(&str, &str)]) -> Self {
        Self(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }
}

/// Builds the document the form describes. Values are kept as typed (a bad duration stays a
/// string for the compiler to name), except where the form itself can tell what is wrong.
pub(super) fn read_document(f: &Fields) -> Value {
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
        "segment" => {
            trigger["segment_id"] = f.raw("trigger.segment_id").trim().into();
            trigger["on"] = if f.raw("trigger.on") == "leave" { "leave" } else { "enter" }.into();
        }
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
pub(super) fn show_scalar(value: &Value) -> String {
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
            match f.filled(&key("topic")) {
                Some("transactional") => put("transactional", true.into()),
                Some(topic) => put("topic", topic.into()),
                None => {}
            }
            put("track_opens", f.checked(&key("track_opens")).into());
            put("track_clicks", f.checked(&key("track_clicks")).into());
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

pub(super) fn show_pairs(value: &Value, separator: &str) -> String {
    value
        .as_object()
        .map(|map| {
            map.iter().map(|(k, v)| format!("{k}{separator}{}", v.as_str().unwrap_or_default())).collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaigns::editor::fields::condition_view;

    #[test]
    fn a_form_reads_back_as_the_document_it_shows() {
        let f = Fields::of(&[
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
    fn a_segment_trigger_reads_its_segment_and_change() {
        let segment = "seg_0190c9a0000070008000000000000001";
        for (on, expected) in [("leave", "leave"), ("enter", "enter"), ("", "enter")] {
            let f = Fields::of(&[
                ("name", "Win back"),
                ("trigger.type", "segment"),
                ("trigger.segment_id", segment),
                ("trigger.on", on),
                ("steps[0].type", "exit"),
            ]);
            let doc = read_document(&f);
            assert_eq!(doc["trigger"], json!({"type": "segment", "segment_id": segment, "on": expected}));
            let parsed: herald_campaign::document::CampaignDocument = serde_json::from_value(doc).expect("a document");
            assert!(matches!(parsed.trigger, herald_campaign::document::Trigger::Segment { .. }));
        }
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
}
