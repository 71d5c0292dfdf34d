//! Inbound payloads turned into one shape, `InboundEvent`: the generic webhook (hosted tools'
//! `email`/`event`/`userId`/`data`, also sent as a form or query string) and PostHog's webhook
//! destination. Mapped sources produce the same shape through `mapping`. Every refusal names
//! the field at fault.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Timestamp;
use crate::contact::{EmailAddress, Identity, Phone, UserId};

/// An event name, exactly as sent (case-sensitive, not trimmed): 1–255 characters without
/// control characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EventName(String);

impl EventName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().count() > 255 {
            return Err("must be at most 255 characters".into());
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A field of the payload that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Path of the field in the payload (`email`, `data`, `event.distinct_id`); empty for the
    /// whole body.
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// What to do with an event whose identity matches no contact and carries no email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenUnmatched {
    /// Refuse the request (400): the sender can fix it.
    Reject,
    /// Accept it and log it as skipped: the sender (PostHog) would count a 4xx as a failure
    /// and eventually disable the destination, and cannot do anything about it.
    Skip,
}

/// The person's name fields, from `name`/`first_name`/`last_name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Names {
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// One inbound event in Herald's terms, whatever shape it arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    pub identity: Identity,
    /// `None`: the request only creates or updates the contact.
    pub name: Option<EventName>,
    pub properties: Map<String, Value>,
    /// Merged into the contact's attributes.
    pub attributes: Map<String, Value>,
    /// Set on the contact only where absent (PostHog `$set_once`).
    pub attributes_once: Map<String, Value>,
    pub names: Names,
    /// When it happened, if the sender said; otherwise the receive time is used.
    pub occurred_at: Option<Timestamp>,
    /// A key in the payload identifying this event for deduplication (PostHog's `uuid`).
    pub dedupe_key: Option<String>,
    pub when_unmatched: WhenUnmatched,
}

impl InboundEvent {
    /// Applies the event's attributes and names to its contact; returns whether anything
    /// changed.
    pub fn apply_to(&self, contact: &mut crate::Contact) -> bool {
        let mut changed = crate::contact::merge_attributes(&mut contact.attributes, &self.attributes);
        changed |= crate::contact::set_attributes_once(&mut contact.attributes, &self.attributes_once);
        for (field, value) in [
            (&mut contact.name, &self.names.name),
            (&mut contact.first_name, &self.names.first_name),
            (&mut contact.last_name, &self.names.last_name),
        ] {
            if value.is_some() && field != value {
                field.clone_from(value);
                changed = true;
            }
        }
        changed
    }

    /// Checks that applying the event to `contact` keeps it within the attribute limits.
    pub fn check_attribute_limits(&self, contact: &crate::Contact) -> Result<(), crate::contact::AttributeError> {
        crate::contact::check_attribute_merge(&contact.attributes, &self.attributes, &self.attributes_once)
    }

    /// Replaces NUL characters in the free-form text the event stores (properties,
    /// attributes, names, the deduplication key) with U+FFFD, which both backends can hold.
    /// Identity fields and the event name refuse NUL like every control character, before
    /// this runs: there a silent change would change who the contact is.
    pub(crate) fn replace_nul(mut self) -> Self {
        for map in [&mut self.properties, &mut self.attributes, &mut self.attributes_once] {
            if map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
                let mut value = Value::Object(std::mem::take(map));
                crate::payload::replace_nul(&mut value);
                if let Value::Object(clean) = value {
                    *map = clean;
                }
            }
        }
        let names = &mut self.names;
        for text in [&mut names.name, &mut names.first_name, &mut names.last_name, &mut self.dedupe_key] {
            if let Some(text) = text.as_mut().filter(|t| t.contains('\0')) {
                *text = text.replace('\0', "\u{fffd}");
            }
        }
        self
    }

    fn new(when_unmatched: WhenUnmatched) -> Self {
        Self {
            identity: Identity::default(),
            name: None,
            properties: Map::new(),
            attributes: Map::new(),
            attributes_once: Map::new(),
            names: Names::default(),
            occurred_at: None,
            dedupe_key: None,
            when_unmatched,
        }
    }

    /// Fills the name fields from `name`, `first_name`, `last_name` string attributes.
    pub(crate) fn take_names_from_attributes(&mut self) {
        let get = |key: &str| {
            self.attributes.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        self.names = Names { name: get("name"), first_name: get("first_name"), last_name: get("last_name") };
    }
}

/// Whether a value holds a NUL character in a string or key.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A string, or a number written as its digits (user ids and phones are often numbers).
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn optional<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

/// Parses an identity field with `parse`, naming `field` on failure.
pub fn identity_field<T>(
    value: Option<&Value>,
    field: &str,
    parse: impl Fn(&str) -> Result<T, crate::contact::IdentityError>,
) -> Result<Option<T>, FieldError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let text = scalar_text(value).ok_or_else(|| FieldError::new(field, "must be a string"))?;
    parse(&text).map(Some).map_err(|e| FieldError::new(field, e.to_string()))
}

fn event_name(value: Option<&Value>, field: &str) -> Result<Option<EventName>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => EventName::parse(s).map(Some).map_err(|e| FieldError::new(field, e)),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

fn object_field(value: Option<&Value>, field: &str) -> Result<Map<String, Value>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(FieldError::new(field, "must be an object")),
    }
}

/// Parses an RFC 3339 timestamp field.
pub fn timestamp_field(value: Option<&Value>, field: &str) -> Result<Option<Timestamp>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339)
            .map(|t| Some(Timestamp::from_offset_date_time(t)))
            .map_err(|_| FieldError::new(field, "must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z")),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

/// Top-level keys of the generic payload with a meaning of their own.
const GENERIC_KEYS: [&str; 7] = ["email", "event", "userId", "user_id", "phone", "data", "timestamp"];

/// The generic webhook payload, as hosted tools such as Humanic accept it:
/// `{"email", "event", "userId" | "user_id", "phone", "timestamp", "data": {...}}`.
///
/// `data` becomes both the event's properties and the contact's attributes. Other top-level
/// keys (flat form posts and query strings) are treated as if they were in `data`, with
/// `data`'s own value winning a clash.
pub fn parse_generic(body: &Value) -> Result<InboundEvent, FieldError> {
    let object = body.as_object().ok_or_else(|| FieldError::new("", "the body must be a JSON object"))?;
    let mut event = InboundEvent::new(WhenUnmatched::Reject);
    event.identity.email = identity_field(optional(object, "email"), "email", EmailAddress::parse)?;
    let user_id_field = if optional(object, "userId").is_some() { "userId" } else { "user_id" };
    event.identity.user_id = identity_field(optional(object, user_id_field), user_id_field, UserId::parse)?;
    event.identity.phone = identity_field(optional(object, "phone"), "phone", Phone::parse)?;
    event.name = event_name(object.get("event"), "event")?;
    event.occurred_at = timestamp_field(object.get("timestamp"), "timestamp")?;
    let mut data: Map<String, Value> = object
        .iter()
        .filter(|(key, _)| !GENERIC_KEYS.contains(&key.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    data.extend(object_field(object.get("data"), "data")?);
    event.properties = data.clone();
    event.attributes = data;
    event.take_names_from_attributes();
    if event.identity == Identity::default() {
        return Err(FieldError::new("email", "is required (or userId or phone of an existing contact)"));
    }
    Ok(event.replace_nul())
}

/// A JSON object from form fields or query parameters. `data.plan=pro` and `data[plan]=pro`
/// land in the `data` object; everything else at the top level. Values stay strings.
pub fn object_from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Value {
    let mut top = Map::new();
    let mut data = Map::new();
    for (key, value) in pairs {
        let nested = key.strip_prefix("data.").or_else(|| key.strip_prefix("data[").and_then(|k| k.strip_suffix(']')));
        match nested {
            Some(inner) if !inner.is_empty() => {
                data.insert(inner.to_owned(), Value::String(value));
            }
            _ => {
                top.insert(key, Value::String(value));
            }
        }
    }
    if !data.is_empty() {
        top.insert("data".into(), Value::Object(data));
    }
    Value::Object(top)
}

/// PostHog's webhook destination payload:
/// `{"event": {"uuid", "event", "distinct_id", "properties", "timestamp", ...}, "person": {"id", "properties", ...}}`.
///
/// `distinct_id` is the user id; the email is `properties.email`, else `properties.$set.email`,
/// else `person.properties.email`; person properties and `$set` become attributes (`$set`
/// winning), `$set_once` sets attributes only where absent; the other properties are the
/// event's. An event whose person has no email and matches no contact is skipped, not refused.
pub fn parse_posthog(body: &Value) -> Result<InboundEvent, FieldError> {
    let object = body.as_object().ok_or_else(|| FieldError::new("", "the body must be a JSON object"))?;
    let source = object
        .get("event")
        .and_then(Value::as_object)
        .ok_or_else(|| FieldError::new("event", "must be PostHog's event object (with `event` and `distinct_id`)"))?;
    let person = object_field(object.get("person"), "person")?;
    let person_properties = object_field(person.get("properties"), "person.properties")?;
    let mut properties = object_field(source.get("properties"), "event.properties")?;
    let set = match properties.remove("$set") {
        Some(Value::Object(set)) => set,
        Some(Value::Null) | None => Map::new(),
        Some(_) => {
            return Err(FieldError::new("event.properties.$set", "must be an object"));
        }
    };
    let set_once = match properties.remove("$set_once") {
        Some(Value::Object(set)) => set,
        Some(Value::Null) | None => Map::new(),
        Some(_) => {
            return Err(FieldError::new("event.properties.$set_once", "must be an object"));
        }
    };

    let mut event = InboundEvent::new(WhenUnmatched::Skip);
    event.name = event_name(source.get("event"), "event.event")?;
    event.identity.user_id = identity_field(source.get("distinct_id"), "event.distinct_id", UserId::parse)?;
    let (email, email_field) = [
        (optional(&properties, "email"), "event.properties.email"),
        (optional(&set, "email"), "event.properties.$set.email"),
        (optional(&person_properties, "email"), "person.properties.email"),
    ]
    .into_iter()
    .find(|(value, _)| value.is_some())
    .unwrap_or((None, "email"));
    event.identity.email = identity_field(email, email_field, EmailAddress::parse)?;
    event.occurred_at = timestamp_field(source.get("timestamp"), "event.timestamp")?;
    event.dedupe_key = source.get("uuid").and_then(scalar_text).filter(|s| !s.is_empty() && s.len() <= 255);
    for key in ["url", "elements_chain"] {
        if let Some(value) = optional(source, key) {
            properties.entry(format!("$posthog_{key}")).or_insert_with(|| value.clone());
        }
    }
    event.properties = properties;
    event.attributes = person_properties;
    event.attributes.extend(set);
    event.attributes_once = set_once;
    if event.names.name.is_none() {
        event.take_names_from_attributes();
    }
    if let Some(name) = person.get("name").and_then(Value::as_str).filter(|n| !n.trim().is_empty()) {
        event.names.name.get_or_insert_with(|| name.trim().to_owned());
    }
    if event.identity == Identity::default() {
        return Err(FieldError::new("event.distinct_id", "is required"));
    }
    Ok(event.replace_nul())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seed_000_payloads() {
        let minimum = parse_generic(&json!({"email": "user@example.com"})).expect("minimum");
        assert_eq!(minimum.identity.email.as_ref().map(EmailAddress::as_str), Some("user@example.com"));
        assert_eq!(minimum.name, None);

        let full = parse_generic(&json!({
            "email": "User@Example.com",
            "event": "checkout_completed",
            "userId": "usr_8a3f2d",
            "data": {"name": "Alex Rivera", "first_name": "Alex", "last_name": "Rivera", "order_value": "149.00"}
        }))
        .expect("full");
        assert_eq!(full.identity.email.as_ref().map(EmailAddress::as_str), Some("user@example.com"));
        assert_eq!(full.identity.user_id.as_ref().map(UserId::as_str), Some("usr_8a3f2d"));
        assert_eq!(full.name.as_ref().map(EventName::as_str), Some("checkout_completed"));
        assert_eq!(full.properties["order_value"], "149.00");
        assert_eq!(full.attributes, full.properties);
        assert_eq!(
            full.names,
            Names {
                name: Some("Alex Rivera".into()),
                first_name: Some("Alex".into()),
                last_name: Some("Rivera".into())
            }
        );
    }

    #[test]
    fn generic_refusals_name_the_field() {
        let cases = [
            (json!([1]), ""),
            (json!("x"), ""),
            (json!({"event": "x"}), "email"),
            (json!({"email": "not-an-email"}), "email"),
            (json!({"email": 42}), "email"),
            (json!({"email": "a@example.com", "event": 5}), "event"),
            (json!({"email": "a@example.com", "event": ""}), "event"),
            (json!({"email": "a@example.com", "data": [1]}), "data"),
            (json!({"email": "a@example.com", "data": "x"}), "data"),
            (json!({"email": "a@example.com", "timestamp": "yesterday"}), "timestamp"),
            (json!({"userId": {"a": 1}}), "userId"),
            (json!({"user_id": ""}), "user_id"),
            (json!({"phone": "call me"}), "phone"),
            (json!({"email": "a\u{0}b@example.com"}), "email"),
            (json!({"email": "a@example.com", "userId": "u\u{0}1"}), "userId"),
            (json!({"email": "a@example.com", "phone": "+1555\u{0}0109999"}), "phone"),
            (json!({"email": "a@example.com", "event": "sign\u{0}up"}), "event"),
        ];
        for (body, field) in cases {
            let err = parse_generic(&body).expect_err("refused");
            assert_eq!(err.field, field, "{body} → {err}");
        }
    }

    #[test]
    fn nul_in_free_form_text_becomes_the_replacement_character() {
        let body = json!({"email": "a@example.com", "data": {"k\u{0}": ["x\u{0}"], "name": "A\u{0}"}});
        let event = parse_generic(&body).expect("ok");
        assert_eq!(
            event.properties,
            json!({"k\u{fffd}": ["x\u{fffd}"], "name": "A\u{fffd}"}).as_object().cloned().expect("obj")
        );
        assert_eq!(event.attributes, event.properties);
        assert_eq!(event.names.name.as_deref(), Some("A\u{fffd}"));
        let body = json!({"event": {"event": "x", "distinct_id": "d", "uuid": "u\u{0}", "properties": {"$set_once": {"a": "\u{0}"}}}});
        let event = parse_posthog(&body).expect("ok");
        assert_eq!((event.dedupe_key.as_deref(), &event.attributes_once["a"]), (Some("u\u{fffd}"), &json!("\u{fffd}")));
        let body = json!({"event": {"event": "x", "distinct_id": "d\u{0}"}});
        assert_eq!(parse_posthog(&body).expect_err("refused").field, "event.distinct_id");
    }

    #[test]
    fn generic_accepts_ids_without_email_numbers_and_flat_fields() {
        let event = parse_generic(
            &json!({"user_id": 12345, "event": "Login", "plan": "pro", "data": {"plan": "team"}, "email": null}),
        )
        .expect("ok");
        assert_eq!(event.identity.user_id.as_ref().map(UserId::as_str), Some("12345"));
        assert_eq!(event.identity.email, None);
        assert_eq!(event.name.as_ref().map(EventName::as_str), Some("Login"), "case kept");
        assert_eq!(event.properties["plan"], "team", "data wins over flat fields");
    }

    #[test]
    fn form_and_query_pairs_become_objects() {
        let pairs = [("email", "a@example.com"), ("data.plan", "pro"), ("data[seats]", "5"), ("utm", "x")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let value = object_from_pairs(pairs);
        assert_eq!(value, json!({"email": "a@example.com", "utm": "x", "data": {"plan": "pro", "seats": "5"}}));
        let event = parse_generic(&value).expect("ok");
        assert_eq!(
            event.properties,
            json!({"utm": "x", "plan": "pro", "seats": "5"}).as_object().cloned().expect("obj")
        );
    }

    #[test]
    fn posthog_destination_payload() {
        let body = json!({
            "event": {
                "uuid": "0190e7d2-7f0c-7a2b-8f6e-2c3d4e5f6a7b",
                "event": "pricing_page_viewed",
                "distinct_id": "ph_user_42",
                "properties": {"$current_url": "https://acme.test/pricing", "plan": "free", "$set": {"company": "Acme"}, "$set_once": {"first_touch": "ads"}},
                "timestamp": "2026-03-01T10:00:00.000Z",
                "elements_chain": "",
                "url": "https://eu.posthog.com/project/1/events/x"
            },
            "person": {"id": "p-1", "properties": {"email": "Alex@Acme.test", "name": "Alex", "company": "Old"}, "name": "Alex R", "url": "https://..."}
        });
        let event = parse_posthog(&body).expect("ok");
        assert_eq!(event.identity.user_id.as_ref().map(UserId::as_str), Some("ph_user_42"));
        assert_eq!(event.identity.email.as_ref().map(EmailAddress::as_str), Some("alex@acme.test"));
        assert_eq!(event.name.as_ref().map(EventName::as_str), Some("pricing_page_viewed"));
        assert_eq!(event.attributes["company"], "Acme", "$set wins over person properties");
        assert_eq!(event.attributes_once["first_touch"], "ads");
        assert!(event.properties.get("$set").is_none());
        assert_eq!(event.properties["plan"], "free");
        assert_eq!(event.dedupe_key.as_deref(), Some("0190e7d2-7f0c-7a2b-8f6e-2c3d4e5f6a7b"));
        assert_eq!(event.occurred_at, Some(Timestamp::from_unix_millis(1_772_359_200_000)));
        assert_eq!(event.names.name.as_deref(), Some("Alex"));
        assert_eq!(event.when_unmatched, WhenUnmatched::Skip);

        let anonymous = parse_posthog(&json!({"event": {"event": "$pageview", "distinct_id": "anon-1"}})).expect("ok");
        assert_eq!(anonymous.identity.email, None);
        assert_eq!(parse_posthog(&json!({"event": "x"})).expect_err("bad").field, "event");
        assert_eq!(parse_posthog(&json!({"event": {"event": "x"}})).expect_err("bad").field, "event.distinct_id");
    }
}
