//! Secrets in campaign documents: an inline webhook step's Basic password and the values of
//! its secret-looking headers (`herald_domain::webhook::secret_header`: credentials, API keys, tokens).
//! They are stored as written, because journeys send them, but never shown: a document
//! leaves the API and the UI with each one replaced by `***`. A document saved with `***`
//! there (or, for a password, an empty one) keeps the secret the same step (by id) has in
//! the stored version, so what was read can be edited and saved back; a `***` with nothing
//! to keep is refused, naming its place.

use std::collections::BTreeMap;

use herald_domain::webhook::{MASK, secret_header};
use serde_json::Value;

/// Why a document with a `***` nothing can replace is refused.
pub const NOTHING_TO_KEEP: &str = "is masked (***) and this step has no stored secret to keep: write the secret itself";

/// The document as the API and the UI show it: every secret replaced by `***`.
pub fn masked(doc: &Value) -> Value {
    let mut doc = doc.clone();
    for_each_step(&mut doc, &mut |_, step| {
        if let Some(password) = step.pointer_mut("/basic_auth/password")
            && password.as_str().is_some_and(|p| !p.is_empty())
        {
            *password = MASK.into();
        }
        for (name, value) in step.get_mut("headers").and_then(Value::as_object_mut).into_iter().flatten() {
            if secret_header(name) && value.as_str().is_some_and(|v| !v.is_empty()) {
                *value = MASK.into();
            }
        }
    });
    doc
}

/// The secrets of the stored version, by step id: the password, then secret headers.
type Kept = BTreeMap<String, (Option<String>, BTreeMap<String, String>)>;

/// Puts the stored secrets back where `doc` has `***` (or an empty password) for a step the
/// stored version has. `Err` names the path of a `***` left with nothing to replace it.
pub fn restore(doc: &mut Value, stored: Option<&Value>) -> Result<(), String> {
    let mut kept = Kept::new();
    if let Some(stored) = stored {
        let mut stored = stored.clone();
        for_each_step(&mut stored, &mut |_, step| {
            let Some(id) = step["id"].as_str().map(str::to_owned) else { return };
            let password = step.pointer("/basic_auth/password").and_then(Value::as_str).map(str::to_owned);
            let headers = step["headers"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(name, _)| secret_header(name))
                .filter_map(|(name, value)| Some((name.to_ascii_lowercase(), value.as_str()?.to_owned())))
                .collect();
            kept.insert(id, (password, headers));
        });
    }
    let mut left = None;
    for_each_step(doc, &mut |path, step| {
        let old = step["id"].as_str().and_then(|id| kept.get(id));
        if let Some(password) = step.pointer_mut("/basic_auth/password") {
            let hidden = password.as_str().is_none_or(|p| p.is_empty() || p == MASK);
            match old.and_then(|(p, _)| p.as_ref()) {
                Some(secret) if hidden => *password = secret.clone().into(),
                _ if password.as_str() == Some(MASK) => {
                    left.get_or_insert_with(|| format!("{path}.basic_auth.password"));
                }
                _ => {}
            }
        }
        for (name, value) in step.get_mut("headers").and_then(Value::as_object_mut).into_iter().flatten() {
            if value.as_str() != Some(MASK) {
                continue;
            }
            match old.and_then(|(_, headers)| headers.get(&name.to_ascii_lowercase())) {
                Some(secret) => *value = secret.clone().into(),
                None => {
                    left.get_or_insert_with(|| format!("{path}.headers.{name}"));
                }
            }
        }
    });
    left.map_or(Ok(()), Err)
}

/// Calls `f` with every step of the document (branches' `then`/`else` included) and its path
/// (`steps[1].then[0]`).
fn for_each_step(doc: &mut Value, f: &mut dyn FnMut(&str, &mut Value)) {
    fn walk(steps: &mut Value, path: &str, f: &mut dyn FnMut(&str, &mut Value)) {
        for (i, step) in steps.as_array_mut().into_iter().flatten().enumerate() {
            let here = format!("{path}[{i}]");
            f(&here, step);
            for arm in ["then", "else"] {
                if let Some(nested) = step.get_mut(arm) {
                    walk(nested, &format!("{here}.{arm}"), f);
                }
            }
        }
    }
    if let Some(steps) = doc.get_mut("steps") {
        walk(steps, "steps", f);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(password: &str, token: &str) -> Value {
        json!({"name": "n", "steps": [
            {"id": "check", "type": "branch", "then": [
                {"id": "crm", "type": "webhook", "url": "https://crm.example/hook",
                 "basic_auth": {"username": "u", "password": password},
                 "headers": {"Authorization": token, "X-Team": "growth"}}
            ]}
        ]})
    }

    #[test]
    fn secrets_are_masked_and_nothing_else() {
        let shown = masked(&doc("hunter2", "Bearer abc"));
        assert_eq!(shown, doc(MASK, MASK));
        assert_eq!(shown["steps"][0]["then"][0]["headers"]["X-Team"], "growth");
        assert_eq!(masked(&doc("", "")), doc("", ""), "empty values stay empty");
    }

    #[test]
    fn masked_or_blank_secrets_keep_the_stored_ones() {
        let stored = doc("hunter2", "Bearer abc");
        for (password, token) in [(MASK, MASK), ("", MASK)] {
            let mut saved = doc(password, token);
            restore(&mut saved, Some(&stored)).expect("restored");
            assert_eq!(saved, stored);
        }
        let mut changed = doc("new-password", "Bearer new");
        restore(&mut changed, Some(&stored)).expect("kept as written");
        assert_eq!(changed, doc("new-password", "Bearer new"));
    }

    #[test]
    fn a_mask_with_nothing_to_keep_is_refused_by_path() {
        let mut imported = doc(MASK, "Bearer abc");
        let err = restore(&mut imported, None).expect_err("nothing stored");
        assert_eq!(err, "steps[0].then[0].basic_auth.password");
        let mut other_step = doc("p", MASK);
        other_step["steps"][0]["then"][0]["id"] = "renamed".into();
        let err = restore(&mut other_step, Some(&doc("p", "Bearer abc"))).expect_err("another step");
        assert_eq!(err, "steps[0].then[0].headers.Authorization");
    }
}
