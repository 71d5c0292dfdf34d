//! Checks answers against the OpenAPI document the app itself serves: a response must have a
//! status the operation documents and a body its schema accepts (with the `$ref`s into
//! `components` resolved), so a test that reads a response also proves the document right.

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use super::TestApp;

/// The document served at `/api/v1/openapi.json`.
pub struct Spec {
    doc: Value,
}

impl Spec {
    pub async fn fetch(app: &TestApp) -> Self {
        let (status, doc) = super::json(app.get("/api/v1/openapi.json").await).await;
        assert_eq!(status, StatusCode::OK, "{doc}");
        Self { doc }
    }

    /// Every `(method, path template)` the document describes.
    pub fn operations(&self) -> Vec<(Method, String, &Value)> {
        let mut found = Vec::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                if let Ok(method) = method.to_uppercase().parse::<Method>() {
                    found.push((method, path.clone(), operation));
                }
            }
        }
        found
    }

    /// Reads `response` to `method` like [`super::json`], and asserts that the document
    /// describes it: the operation of that path, the status, and the body's schema.
    pub async fn check(&self, method: &Method, response: Response) -> (StatusCode, Value) {
        let path = response.url().path().to_owned();
        let status = response.status();
        let text = response.text().await.expect("body");
        let operation = self.operation(method, &path);
        let responses = &operation["responses"];
        let code = status.as_u16().to_string();
        let range = format!("{}XX", status.as_u16() / 100);
        let documented = [code.as_str(), range.as_str(), "default"]
            .into_iter()
            .find_map(|key| responses.get(key))
            .unwrap_or_else(|| panic!("{method} {path} answered {status}, which it does not document: {text}"));
        let Some(schema) = documented.pointer("/content/application~1json/schema") else {
            assert!(text.is_empty(), "{method} {path} answered {status} with a body it does not document: {text}");
            return (status, Value::Null);
        };
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        self.assert_matches(schema, &body, &format!("{method} {path} {status}"));
        (status, body)
    }

    /// Asserts that `body` fits `schema`, a schema of this document.
    fn assert_matches(&self, schema: &Value, body: &Value, what: &str) {
        // The schema with the document's components beside it, so that its
        // `#/components/schemas/…` references resolve within it.
        let mut root = schema.clone();
        root.as_object_mut().expect("a schema object").insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{what}: bad schema ({e}): {root}"));
        let errors: Vec<String> =
            validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{what}: the body does not fit its schema:\n{}\n{body:#}", errors.join("\n"));
    }

    /// The operation serving `method path`: of the templates that match, the one with the
    /// most literal segments (`/webhook-deliveries/resend` before `/webhook-deliveries/{id}`).
    fn operation(&self, method: &Method, path: &str) -> &Value {
        let method = method.as_str().to_lowercase();
        let segments: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .filter_map(|(template, item)| {
                let parts: Vec<&str> = template.split('/').collect();
                let fits = parts.len() == segments.len()
                    && parts.iter().zip(&segments).all(|(part, segment)| part.starts_with('{') || part == segment);
                let literal = parts.iter().filter(|p| !p.starts_with('{')).count();
                fits.then(|| item.get(&method).map(|operation| (literal, operation))).flatten()
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, operation)| operation)
            .unwrap_or_else(|| panic!("the document has no {method} {path}"))
    }
}
