//! The mapping document (`MappingSpec`) a user writes for a mapped source, and its
//! validation into a `CompiledMapping`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::compiled::{CompiledEventName, CompiledMapping};
use super::{JsonPath, MAX_NAME_CHARS};
use crate::inbound::EventName;

/// How a mapped source turns a JSON body into an event: the shape of the HTTP API.
///
/// Every field is optional; paths are `JsonPath` strings; unknown keys are refused so a typo
/// does not silently map nothing. When serialized, absent fields are written as `null` and
/// empty maps as `{}`.
///
/// ```json
/// {
///   "email": "customer.email",
///   "user_id": "customer.id",
///   "phone": "customer.phone",
///   "event_name": {"path": "type"},
///   "occurred_at": "created_at",
///   "attributes": {"plan": "data.object.plan", "first_name": "customer.first_name"},
///   "properties": {"amount": "data.object.amount", "sku": "items[0].sku"},
///   "include_body_as_properties": false,
///   "dedupe_key": "id"
/// }
/// ```
///
/// - `email`, `user_id`, `phone`: paths to the contact's identity (numbers are accepted as
///   their digits for `user_id` and `phone`). At least one must be mapped.
/// - `event_name`: `{"path": "..."}` to read the name from the body, or
///   `{"constant": "order_paid"}`; absent (or a path that finds nothing) means the request
///   only creates or updates the contact.
/// - `occurred_at`: an RFC 3339 string, or a Unix timestamp in seconds (a number, or a string
///   of digits from form tools); absent means the receive time.
/// - `attributes`: contact attribute name → path; `name`, `first_name` and `last_name` also
///   fill the contact's name fields.
/// - `properties`: event property name → path.
/// - `include_body_as_properties`: start the event's properties from the whole body (when it
///   is an object); `properties` entries then override.
/// - `dedupe_key`: path to a string or number identifying the delivery (at most 255
///   characters), so a retried webhook is recorded once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingSpec {
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub phone: Option<String>,
    pub event_name: Option<EventNameSource>,
    pub occurred_at: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub properties: BTreeMap<String, String>,
    pub include_body_as_properties: bool,
    pub dedupe_key: Option<String>,
}

/// Where the event name comes from: `{"path": "type"}` or `{"constant": "order_paid"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventNameSource {
    Path(String),
    Constant(String),
}

/// A field of a `MappingSpec` that cannot be used, named as in the spec's JSON
/// (`email`, `event_name.path`, `attributes.plan`), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct MappingError {
    pub field: String,
    pub reason: String,
}

impl MappingError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        Err("the name must not be empty")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err("the name must be at most 100 characters")
    } else if name.chars().any(char::is_control) {
        Err("the name must not contain control characters")
    } else {
        Ok(())
    }
}

impl MappingSpec {
    /// Parses every path and checks every name, reporting all problems at once so a form can
    /// highlight each field.
    pub fn validate(&self) -> Result<CompiledMapping, Vec<MappingError>> {
        let mut errors = Vec::new();
        let mut path = |field: &str, raw: &Option<String>| -> Option<JsonPath> {
            JsonPath::parse(raw.as_deref()?).map_err(|e| errors.push(MappingError::new(field, e.to_string()))).ok()
        };
        let email = path("email", &self.email);
        let user_id = path("user_id", &self.user_id);
        let phone = path("phone", &self.phone);
        let occurred_at = path("occurred_at", &self.occurred_at);
        let dedupe_key = path("dedupe_key", &self.dedupe_key);
        let event_name = match &self.event_name {
            None => None,
            Some(EventNameSource::Path(raw)) => JsonPath::parse(raw)
                .map(CompiledEventName::Path)
                .map_err(|e| errors.push(MappingError::new("event_name.path", e.to_string())))
                .ok(),
            Some(EventNameSource::Constant(raw)) => EventName::parse(raw)
                .map(CompiledEventName::Constant)
                .map_err(|e| errors.push(MappingError::new("event_name.constant", e)))
                .ok(),
        };
        let attributes = named_paths("attributes", &self.attributes, &mut errors);
        let properties = named_paths("properties", &self.properties, &mut errors);
        if self.email.is_none() && self.user_id.is_none() && self.phone.is_none() {
            // Every event must belong to a contact, so a mapping without any identity could
            // never accept a request.
            errors.push(MappingError::new("email", "map at least one of `email`, `user_id` or `phone`"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CompiledMapping {
            email,
            user_id,
            phone,
            event_name,
            occurred_at,
            attributes,
            properties,
            include_body_as_properties: self.include_body_as_properties,
            dedupe_key,
        })
    }
}

fn named_paths(
    section: &str,
    entries: &BTreeMap<String, String>,
    errors: &mut Vec<MappingError>,
) -> Vec<(String, JsonPath)> {
    let mut compiled = Vec::with_capacity(entries.len());
    for (name, raw) in entries {
        let field = format!("{section}.{name}");
        if let Err(reason) = check_name(name) {
            errors.push(MappingError::new(field, reason));
            continue;
        }
        match JsonPath::parse(raw) {
            Ok(path) => compiled.push((name.clone(), path)),
            Err(e) => errors.push(MappingError::new(field, e.to_string())),
        }
    }
    compiled
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mapping::fixtures::spec;

    #[test]
    fn spec_json_shape_round_trips_and_refuses_unknown_fields() {
        let raw = json!({
            "email": "customer.email",
            "user_id": null,
            "phone": null,
            "event_name": {"path": "type"},
            "occurred_at": null,
            "attributes": {"plan": "plan"},
            "properties": {},
            "include_body_as_properties": false,
            "dedupe_key": "id"
        });
        let parsed = spec(raw.clone());
        assert_eq!(serde_json::to_value(&parsed).expect("ser"), raw);
        assert_eq!(
            spec(json!({"event_name": {"constant": "order_paid"}})).event_name,
            Some(EventNameSource::Constant("order_paid".into()))
        );
        assert_eq!(spec(json!({})), MappingSpec::default());
        for bad in [
            json!({"emial": "email"}),
            json!({"event_name": {"path": "type", "constant": "x"}}),
            json!({"event_name": {"field": "type"}}),
            json!({"event_name": "type"}),
            json!({"attributes": {"plan": 5}}),
        ] {
            assert!(serde_json::from_value::<MappingSpec>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_each_spec_field() {
        let long_name = "n".repeat(MAX_NAME_CHARS + 1);
        let errors = spec(json!({
            "email": "customer..email",
            "user_id": "ok.path",
            "phone": "",
            "event_name": {"path": "a["},
            "occurred_at": "created at",
            "attributes": {"plan": "data[x]", "": "a", "bad\nname": "a", long_name.clone(): "a", "fine": "fine"},
            "properties": {"amount": "[100001]", "sku": "items[0].sku"},
            "dedupe_key": "id]"
        }))
        .validate()
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let long_field = format!("attributes.{long_name}");
        assert_eq!(
            fields,
            [
                "email",
                "phone",
                "occurred_at",
                "dedupe_key",
                "event_name.path",
                "attributes.",
                "attributes.bad\nname",
                long_field.as_str(),
                "attributes.plan",
                "properties.amount",
            ]
        );
        assert!(errors[0].reason.contains("position 9"), "{}", errors[0]);
        assert_eq!(errors[1].reason, "must not be empty");
        assert!(errors[5].reason.contains("must not be empty"));
        assert!(errors[6].reason.contains("control characters"));
        assert!(errors[7].reason.contains("at most 100 characters"));
        assert!(errors[9].reason.contains("at most 100000"));

        let constant =
            spec(json!({"email": "e", "event_name": {"constant": " "}})).validate().expect_err("blank constant");
        assert_eq!(constant[0].field, "event_name.constant");

        let anonymous = MappingSpec { include_body_as_properties: true, ..MappingSpec::default() }
            .validate()
            .expect_err("no identity");
        assert_eq!(anonymous.len(), 1);
        assert_eq!(anonymous[0].field, "email");
        assert!(spec(json!({"phone": "p"})).validate().is_ok());
    }
}
