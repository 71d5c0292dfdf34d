//! The editor's structural edits of a campaign document: adding, moving and removing steps,
//! adding and removing condition rules, each named by a form path that is read here as a
//! JSON pointer.

use serde_json::{Value, json};

use super::STEP_KINDS;
use super::form::Fields;

/// `steps[2].then[0]` as the JSON pointer `/steps/2/then/0`.
pub(super) fn pointer(path: &str) -> String {
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

/// Edits the document's structure by an op (`add:LIST`, `remove:STEP`, `up:STEP`, `down:STEP`,
/// `rule:CONDITION`, `unrule:CONDITION:INDEX`); unknown or stale ops change nothing.
pub(super) fn edit_document(doc: &mut Value, op: &str, f: &Fields) {
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
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_pointers_and_steps_split_into_list_and_index() {
        assert_eq!(pointer("steps[2].then[0]"), "/steps/2/then/0");
        assert_eq!(pointer("trigger.filter"), "/trigger/filter");
        assert_eq!(split_step("steps[2].else[10]"), Some(("steps[2].else", 10)));
        assert_eq!(split_step("steps"), None);
    }

    #[test]
    fn ops_add_move_and_remove_steps_and_rules() {
        let f = Fields::of(&[("kind:steps", "email"), ("kind:steps[1].then", "exit")]);
        let mut doc =
            json!({"steps": [{"type": "wait"}, {"type": "branch", "condition": {"all": []}, "then": [], "else": []}]});
        edit_document(&mut doc, "add:steps", &f);
        assert_eq!(doc["steps"][2]["type"], "email");
        edit_document(&mut doc, "add:steps[1].then", &f);
        assert_eq!(doc["steps"][1]["then"][0]["type"], "exit");
        edit_document(&mut doc, "up:steps[2]", &f);
        assert_eq!(doc["steps"][1]["type"], "email");
        edit_document(&mut doc, "down:steps[0]", &f);
        assert_eq!(doc["steps"][0]["type"], "email");
        edit_document(&mut doc, "rule:steps[2].condition", &f);
        assert_eq!(doc["steps"][2]["condition"]["all"].as_array().map(Vec::len), Some(1));
        edit_document(&mut doc, "unrule:steps[2].condition:0", &f);
        assert_eq!(doc["steps"][2]["condition"]["all"], json!([]));
        edit_document(&mut doc, "rule:trigger.filter", &f);
        assert_eq!(doc["trigger"]["filter"]["all"].as_array().map(Vec::len), None, "no trigger object to hold it");
        edit_document(&mut doc, "remove:steps[1]", &f);
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
            edit_document(&mut doc, stale, &f);
            assert_eq!(doc, before, "{stale} changes nothing");
        }
    }
}
