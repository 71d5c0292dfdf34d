//! Secrets inside JSON documents: a webhook call (a delivery job's payload, a delivery's or a
//! draft's stored call) and a campaign document carry passwords, signing secrets and
//! secret-looking header values among data that must stay readable, by people and by SQL
//! (fast recovery finds waiting retries by the call's `endpoint`, the delivery log filters on
//! its `action`). So each secret string is sealed where it stands, as the envelope of
//! [`SecretKeys::seal`], and the rest of the document is stored as it is. ADR 0011.
//!
//! A row holding such a document also stores which key sealed it (`sealed_with`): the id of
//! [`SecretKeys::current_id`], `NULL` when the document holds no secret, and the column's
//! default `'clear'` for rows written by a Herald that did not seal them. Sealing again on
//! start then reads only the rows whose `sealed_with` is not the current key, through an
//! index, instead of every call ever made.

use std::borrow::Cow;

use herald_domain::JobKind;
use herald_domain::webhook::secret_header;
use serde_json::Value;

use super::{OpenError, SecretKeys, columns};

/// A kind of JSON document that carries secrets, and so where its secrets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// A webhook call: its `basic_auth` (`user:password`), its own signing `secret`, and the
    /// values of its request's secret-looking headers (`[name, value]` pairs).
    Call,
    /// A campaign document: each step's `basic_auth.password` and the values of its
    /// secret-looking headers (a `name → value` object), in branches' `then` and `else` too.
    Campaign,
}

/// A document as stored: its secrets sealed, and the id of the key that sealed them (`None`
/// when it holds no secret, and is stored as it is).
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed<'a> {
    pub value: Cow<'a, Value>,
    pub key: Option<&'a str>,
}

impl Document {
    /// What a job of `kind` carries, if it can hold secrets.
    pub fn of_job(kind: &str) -> Option<Document> {
        (kind == JobKind::DeliverWebhook.as_str()).then_some(Document::Call)
    }

    /// The JSON pointers of the secrets in `doc` (non-empty strings only: there is nothing to
    /// hide in an empty password, and masking leaves it empty too).
    fn secrets(self, doc: &Value) -> Vec<String> {
        let mut found = Vec::new();
        let mut secret = |value: Option<&Value>, path: String| {
            if value.and_then(Value::as_str).is_some_and(|s| !s.is_empty()) {
                found.push(path);
            }
        };
        match self {
            Document::Call => {
                secret(doc.get("basic_auth"), "/basic_auth".into());
                secret(doc.get("secret"), "/secret".into());
                let headers = doc.pointer("/request/headers").and_then(Value::as_array);
                for (i, pair) in headers.into_iter().flatten().enumerate() {
                    if pair.get(0).and_then(Value::as_str).is_some_and(secret_header) {
                        secret(pair.get(1), format!("/request/headers/{i}/1"));
                    }
                }
            }
            Document::Campaign => {
                let mut steps = vec![(doc.get("steps"), "/steps".to_owned())];
                while let Some((list, path)) = steps.pop() {
                    for (i, step) in list.and_then(Value::as_array).into_iter().flatten().enumerate() {
                        let here = format!("{path}/{i}");
                        secret(step.pointer("/basic_auth/password"), format!("{here}/basic_auth/password"));
                        let headers = step.get("headers").and_then(Value::as_object);
                        for (name, value) in headers.into_iter().flatten().filter(|(name, _)| secret_header(name)) {
                            secret(Some(value), format!("{here}/headers/{}", escape(name)));
                        }
                        for arm in ["then", "else"] {
                            steps.push((step.get(arm), format!("{here}/{arm}")));
                        }
                    }
                }
            }
        }
        found
    }
}

/// A name as one JSON pointer token.
fn escape(name: &str) -> Cow<'_, str> {
    if name.contains(['~', '/']) { name.replace('~', "~0").replace('/', "~1").into() } else { name.into() }
}

impl SecretKeys {
    /// `doc` as `column` stores it: each secret sealed where it stands. A document without
    /// secrets is borrowed as it is.
    pub fn seal_document<'a>(&'a self, kind: Document, column: &'static str, doc: &'a Value) -> Sealed<'a> {
        let paths = kind.secrets(doc);
        if paths.is_empty() {
            return Sealed { value: Cow::Borrowed(doc), key: None };
        }
        let mut sealed = doc.clone();
        for path in paths {
            if let Some(Value::String(secret)) = sealed.pointer_mut(&path) {
                *secret = self.seal_text(column, secret);
            }
        }
        Sealed { value: Cow::Owned(sealed), key: Some(self.current_id()) }
    }

    /// Opens the secrets of a stored `doc` of `column` in place. A secret stored in clear
    /// before secrets were sealed is read as it is ([`SecretKeys::open`]).
    pub fn open_document(&self, kind: Document, column: &'static str, doc: &mut Value) -> Result<(), OpenError> {
        for path in kind.secrets(doc) {
            if let Some(Value::String(secret)) = doc.pointer_mut(&path) {
                *secret = self.open_text(column, secret)?;
            }
        }
        Ok(())
    }

    /// A job's payload as `jobs.payload` stores it: a call's secrets sealed, the payload of a
    /// job of another kind as it is.
    pub fn seal_job<'a>(&'a self, kind: &str, payload: &'a Value) -> Sealed<'a> {
        match Document::of_job(kind) {
            Some(document) => self.seal_document(document, columns::JOB_PAYLOAD, payload),
            None => Sealed { value: Cow::Borrowed(payload), key: None },
        }
    }

    /// Opens the secrets of a stored payload of a job of `kind` in place.
    pub fn open_job(&self, kind: &str, payload: &mut Value) -> Result<(), OpenError> {
        match Document::of_job(kind) {
            Some(document) => self.open_document(document, columns::JOB_PAYLOAD, payload),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::secrets::KEY_LEN;

    const COLUMN: &str = "jobs.payload";

    fn call() -> Value {
        json!({
            "journey": "jrn_1", "endpoint": "https://crm.test:443", "basic_auth": "crm:hunter2",
            "secret": "whsec-own", "request": {"url": "https://crm.test/x", "body": "{\"a\":1}",
            "headers": [["Authorization", "Bearer tok"], ["X-Team", "growth"], ["Idempotency-Key", "k"],
                        ["X-Api-Key", ""]]}
        })
    }

    fn campaign() -> Value {
        json!({"name": "n", "steps": [
            {"id": "a", "type": "webhook", "basic_auth": {"username": "u", "password": "pw-1"},
             "headers": {"X-Token/Main": "tok-1", "X-Team": "growth"}},
            {"id": "b", "type": "branch", "then": [
                {"id": "c", "type": "webhook", "basic_auth": {"username": "u", "password": "pw-2"}}
            ], "else": [{"id": "d", "type": "webhook", "headers": {"Cookie": "tok-2"}}]}
        ]})
    }

    #[test]
    fn secrets_are_sealed_where_they_stand_and_open_again() {
        let keys = SecretKeys::new(&[7; KEY_LEN], &[]);
        for (kind, doc, secrets) in [
            (Document::Call, call(), ["crm:hunter2", "whsec-own", "Bearer tok"].as_slice()),
            (Document::Campaign, campaign(), ["pw-1", "pw-2", "tok-1", "tok-2"].as_slice()),
        ] {
            let sealed = keys.seal_document(kind, COLUMN, &doc);
            assert_eq!(sealed.key, Some(keys.current_id()));
            let text = sealed.value.to_string();
            for secret in secrets {
                assert!(!text.contains(secret), "{secret} in clear: {text}");
            }
            assert_eq!(text.matches("\"hs1.").count(), secrets.len(), "{text}");
            assert!(text.contains("growth"), "the rest stays as it was: {text}");
            let mut opened = sealed.value.into_owned();
            keys.open_document(kind, COLUMN, &mut opened).unwrap();
            assert_eq!(opened, doc);
        }
    }

    #[test]
    fn a_document_without_secrets_is_stored_as_it_is() {
        let keys = SecretKeys::new(&[7; KEY_LEN], &[]);
        let doc = json!({"endpoint": "https://x.test:443", "request": {"headers": [["X-Team", "growth"]]}});
        let sealed = keys.seal_document(Document::Call, COLUMN, &doc);
        assert_eq!(sealed, Sealed { value: Cow::Borrowed(&doc), key: None });
        let step = json!({"journey": "jrn_1", "basic_auth": "not a call"});
        assert_eq!(keys.seal_job("journey_step", &step), Sealed { value: Cow::Borrowed(&step), key: None });
        let sealed = keys.seal_job("deliver_webhook", &step);
        assert_eq!(sealed.key, Some(keys.current_id()), "a call's secrets are sealed");
        let mut opened = sealed.value.into_owned();
        keys.open_job("deliver_webhook", &mut opened).unwrap();
        assert_eq!(opened, step);
    }

    #[test]
    fn clear_secrets_from_before_open_as_they_are_and_sealed_ones_need_their_key() {
        let keys = SecretKeys::new(&[7; KEY_LEN], &[]);
        let mut clear = call();
        keys.open_document(Document::Call, COLUMN, &mut clear).unwrap();
        assert_eq!(clear, call());
        let sealed = keys.seal_document(Document::Call, COLUMN, &clear).value.into_owned();
        let mut elsewhere = sealed.clone();
        let other = keys.open_document(Document::Call, "webhook_deliveries.call", &mut elsewhere);
        assert_eq!(other, Err(OpenError::Damaged("webhook_deliveries.call")), "sealed for one column only");
        let stranger = SecretKeys::new(&[8; KEY_LEN], &[]);
        let mut copy = sealed;
        assert!(matches!(stranger.open_document(Document::Call, COLUMN, &mut copy), Err(OpenError::UnknownKey(_))));
    }
}
