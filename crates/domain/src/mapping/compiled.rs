//! A validated mapping (`CompiledMapping`) and how it maps one request body to an
//! `InboundEvent`: every refusal names the spec field and the path it read.

use std::fmt;

use serde_json::{Map, Number, Value};

use super::{JsonPath, MAX_DEDUPE_KEY_CHARS};
use crate::Timestamp;
use crate::contact::{EmailAddress, Identity, IdentityError, Phone, UserId};
use crate::inbound::{
    EventName, FieldError, InboundEvent, Names, WhenUnmatched, identity_field, scalar_text, timestamp_field,
};

/// A validated `MappingSpec`, ready to apply to request bodies.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledMapping {
    pub(super) email: Option<JsonPath>,
    pub(super) user_id: Option<JsonPath>,
    pub(super) phone: Option<JsonPath>,
    pub(super) event_name: Option<CompiledEventName>,
    pub(super) occurred_at: Option<JsonPath>,
    pub(super) attributes: Vec<(String, JsonPath)>,
    pub(super) properties: Vec<(String, JsonPath)>,
    pub(super) include_body_as_properties: bool,
    pub(super) dedupe_key: Option<JsonPath>,
}

/// Where a compiled mapping takes the event name from.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum CompiledEventName {
    Path(JsonPath),
    Constant(EventName),
}

const OCCURRED_AT_REASON: &str =
    "must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z, or a Unix timestamp in seconds";

/// A refusal naming the spec field and, in the reason, the path it read.
fn at_path(field: &str, path: &JsonPath, reason: impl fmt::Display) -> FieldError {
    FieldError::new(field, format!("{path}: {reason}"))
}

fn identity<T>(
    body: &Value,
    path: Option<&JsonPath>,
    field: &str,
    parse: impl Fn(&str) -> Result<T, IdentityError>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let path = path?;
    identity_field(path.get(body), field, parse).unwrap_or_else(|e| {
        errors.push(at_path(field, path, e.reason));
        None
    })
}

/// A Unix timestamp in seconds, possibly fractional. Values beyond the representable years
/// are refused rather than clamped: they are almost always milliseconds sent as seconds, and
/// clamping would silently date the event in the year 9999.
fn unix_seconds(n: &Number) -> Result<Timestamp, String> {
    let millis = match n.as_i64() {
        Some(seconds) => seconds.checked_mul(1000),
        None => n
            .as_f64()
            .map(|seconds| (seconds * 1000.0).round())
            .filter(|m| {
                m.is_finite() && *m >= Timestamp::MIN.unix_millis() as f64 && *m <= Timestamp::MAX.unix_millis() as f64
            })
            .map(|m| m as i64),
    };
    millis
        .filter(|m| (Timestamp::MIN.unix_millis()..=Timestamp::MAX.unix_millis()).contains(m))
        .map(Timestamp::from_unix_millis)
        .ok_or_else(|| "is out of range for a Unix timestamp in seconds (milliseconds are not accepted)".to_owned())
}

fn occurred_at(value: &Value) -> Result<Option<Timestamp>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => unix_seconds(n).map(Some),
        Value::String(s) => match timestamp_field(Some(value), "occurred_at") {
            Ok(parsed) => Ok(parsed),
            // Form tools send every value as a string, Unix timestamps included.
            Err(_) => match s.trim().parse::<i64>() {
                Ok(seconds) => unix_seconds(&Number::from(seconds)).map(Some),
                Err(_) => Err(OCCURRED_AT_REASON.to_owned()),
            },
        },
        _ => Err(OCCURRED_AT_REASON.to_owned()),
    }
}

fn event_name_at(value: Option<&Value>) -> Result<Option<EventName>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => EventName::parse(s).map(Some),
        Some(_) => Err("must be a string".to_owned()),
    }
}

fn dedupe_key_at(value: Option<&Value>) -> Result<Option<String>, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let key = scalar_text(value).ok_or_else(|| "must be a string or a number".to_owned())?;
    if key.is_empty() {
        Err("must not be empty".to_owned())
    } else if key.chars().count() > MAX_DEDUPE_KEY_CHARS {
        Err(format!("must be at most {MAX_DEDUPE_KEY_CHARS} characters"))
    } else {
        Ok(Some(key))
    }
}

impl CompiledMapping {
    /// Maps one request body. This is also the preview shown when editing a mapping against a
    /// captured sample.
    ///
    /// A path that finds nothing leaves its field absent; a value of the wrong type or with
    /// invalid content is refused, naming the spec field (`email`, `event_name`,
    /// `occurred_at`, `dedupe_key`) with the path in the reason. Every refusal is reported.
    pub fn map_body(&self, body: &Value) -> Result<InboundEvent, Vec<FieldError>> {
        let mut errors = Vec::new();
        let identity = Identity {
            email: identity(body, self.email.as_ref(), "email", EmailAddress::parse, &mut errors),
            user_id: identity(body, self.user_id.as_ref(), "user_id", UserId::parse, &mut errors),
            phone: identity(body, self.phone.as_ref(), "phone", Phone::parse, &mut errors),
        };
        // Only when no identity field was refused: its own error already says what is wrong.
        if identity == Identity::default() && errors.is_empty() {
            let reason = "is required (or user_id or phone of an existing contact)";
            errors.push(match &self.email {
                Some(path) => at_path("email", path, reason),
                None => FieldError::new("email", reason),
            });
        }

        let name = match &self.event_name {
            None => None,
            Some(CompiledEventName::Constant(name)) => Some(name.clone()),
            Some(CompiledEventName::Path(path)) => event_name_at(path.get(body)).unwrap_or_else(|reason| {
                errors.push(at_path("event_name", path, reason));
                None
            }),
        };
        let occurred_at = self.occurred_at.as_ref().and_then(|path| {
            path.get(body).map_or(Ok(None), occurred_at).unwrap_or_else(|reason| {
                errors.push(at_path("occurred_at", path, reason));
                None
            })
        });
        let dedupe_key = self.dedupe_key.as_ref().and_then(|path| {
            dedupe_key_at(path.get(body)).unwrap_or_else(|reason| {
                errors.push(at_path("dedupe_key", path, reason));
                None
            })
        });
        if !errors.is_empty() {
            return Err(errors);
        }

        let mut properties = match body {
            Value::Object(object) if self.include_body_as_properties => object.clone(),
            _ => Map::new(),
        };
        for (key, path) in &self.properties {
            if let Some(value) = path.get(body) {
                properties.insert(key.clone(), value.clone());
            }
        }
        let mut attributes = Map::new();
        for (key, path) in &self.attributes {
            // `null` in attributes means "remove" when merged into the contact; webhooks send
            // `null` for every unset field, which must not wipe what the contact already has.
            if let Some(value) = path.get(body).filter(|v| !v.is_null()) {
                attributes.insert(key.clone(), value.clone());
            }
        }

        let mut event = InboundEvent {
            identity,
            name,
            properties,
            attributes,
            attributes_once: Map::new(),
            names: Names::default(),
            occurred_at,
            dedupe_key,
            when_unmatched: WhenUnmatched::Reject,
        };
        event.take_names_from_attributes();
        Ok(event.replace_nul())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::mapping::fixtures::{json_key, json_value, shopify_order, spec, stripe_checkout};
    use crate::mapping::{EventNameSource, MappingSpec};

    #[test]
    fn maps_a_stripe_checkout_session_end_to_end() {
        let mapping = spec(json!({
            "email": "data.object.customer_details.email",
            "user_id": "data.object.client_reference_id",
            "phone": "data.object.customer_details.phone",
            "event_name": {"path": "type"},
            "occurred_at": "created",
            "attributes": {
                "plan": "data.object.metadata.plan",
                "name": "data.object.customer_details.name",
                "country": "data.object.customer_details.address.country",
                "coupon": "data.object.discount.coupon"
            },
            "properties": {
                "amount": "data.object.amount_total",
                "currency": "data.object.currency",
                "legacy_user": "data.object.metadata[\"user-id\"]"
            },
            "dedupe_key": "id"
        }))
        .validate()
        .expect("valid");
        let event = mapping.map_body(&stripe_checkout()).expect("maps");
        assert_eq!(event.identity.email.as_ref().map(EmailAddress::as_str), Some("jenny.rosen@example.com"));
        assert_eq!(event.identity.user_id.as_ref().map(UserId::as_str), Some("usr_8a3f2d"));
        assert_eq!(event.identity.phone, None, "null phone is absent");
        assert_eq!(event.name.as_ref().map(EventName::as_str), Some("checkout.session.completed"));
        assert_eq!(event.occurred_at, Some(Timestamp::from_unix_millis(1_686_089_970_000)));
        assert_eq!(
            Value::Object(event.attributes.clone()),
            json!({"plan": "pro", "name": "Jenny Rosen", "country": "US"})
        );
        assert_eq!(
            Value::Object(event.properties.clone()),
            json!({"amount": 2000, "currency": "usd", "legacy_user": "42"})
        );
        assert_eq!(event.names.name.as_deref(), Some("Jenny Rosen"));
        assert_eq!(event.names.first_name, None);
        assert_eq!(event.dedupe_key.as_deref(), Some("evt_1NG8Du2eZvKYlo2CUI79vXWy"));
        assert_eq!(event.when_unmatched, WhenUnmatched::Reject);
        assert!(event.attributes_once.is_empty());
    }

    #[test]
    fn maps_a_shopify_order_end_to_end() {
        let mapping = spec(json!({
            "email": "customer.email",
            "user_id": "customer.id",
            "phone": "customer.phone",
            "event_name": {"constant": "orders/create"},
            "occurred_at": "created_at",
            "attributes": {"first_name": "customer.first_name", "last_name": "customer.last_name"},
            "properties": {"sku": "line_items[0].sku", "second_sku": "line_items[1].sku", "total": "total_price", "name": "customer.first_name"},
            "include_body_as_properties": true,
            "dedupe_key": "id"
        }))
        .validate()
        .expect("valid");
        let body = shopify_order();
        let event = mapping.map_body(&body).expect("maps");
        assert_eq!(event.identity.email.as_ref().map(EmailAddress::as_str), Some("john@example.com"));
        assert_eq!(
            event.identity.user_id.as_ref().map(UserId::as_str),
            Some("115310627314723954"),
            "numeric ids become their digits"
        );
        assert_eq!(event.identity.phone.as_ref().map(Phone::as_str), Some("+16135551111"));
        assert_eq!(event.name.as_ref().map(EventName::as_str), Some("orders/create"));
        assert_eq!(event.occurred_at, Some(Timestamp::from_unix_millis(1_640_995_200_000)));
        assert_eq!(event.properties["sku"], "IPOD2008PINK");
        assert_eq!(event.properties["second_sku"], Value::Null);
        assert_eq!(event.properties["total"], "403.00");
        assert_eq!(event.properties["name"], "John", "entries override the body");
        assert_eq!(event.properties["currency"], "USD", "the body is included");
        assert_eq!(event.properties.len(), body.as_object().map_or(0, Map::len) + 3);
        assert_eq!(event.names, Names { name: None, first_name: Some("John".into()), last_name: Some("Smith".into()) });
        assert_eq!(event.dedupe_key.as_deref(), Some("820982911946154508"));
    }

    #[test]
    fn map_body_refusals_name_the_spec_field_and_path() {
        let mapping = spec(json!({
            "email": "customer.email",
            "user_id": "customer.id",
            "phone": "customer.phone",
            "event_name": {"path": "type"},
            "occurred_at": "created_at",
            "dedupe_key": "id"
        }))
        .validate()
        .expect("valid");
        let ok = json!({"customer": {"email": "a@example.com"}});
        let cases = [
            (json!({"customer": {"email": "nope"}}), "email", "customer.email: must contain exactly one `@`"),
            (json!({"customer": {"email": ["a@example.com"]}}), "email", "customer.email: must be a string"),
            (json!({"customer": {"id": ""}}), "user_id", "customer.id: must not be empty"),
            (json!({"customer": {"id": true}}), "user_id", "customer.id: must be a string"),
            (json!({"customer": {"phone": "call me"}}), "phone", "customer.phone: must have 5 to 20 digits"),
            (json!({"customer": {}}), "email", "customer.email: is required"),
            (json!({"customer": {"email": "a@example.com"}, "type": 3}), "event_name", "type: must be a string"),
            (json!({"customer": {"email": "a@example.com"}, "type": ""}), "event_name", "type: must not be empty"),
            (
                json!({"customer": {"email": "a@example.com"}, "created_at": "yesterday"}),
                "occurred_at",
                "created_at: must be an RFC 3339 date-time",
            ),
            (
                json!({"customer": {"email": "a@example.com"}, "created_at": true}),
                "occurred_at",
                "created_at: must be an RFC 3339",
            ),
            (
                json!({"customer": {"email": "a@example.com"}, "created_at": 1_686_089_970_000_000_i64}),
                "occurred_at",
                "created_at: is out of range",
            ),
            (
                json!({"customer": {"email": "a@example.com"}, "created_at": 1e300}),
                "occurred_at",
                "created_at: is out of range",
            ),
            (
                json!({"customer": {"email": "a@example.com"}, "id": {"a": 1}}),
                "dedupe_key",
                "id: must be a string or a number",
            ),
            (
                json!({"customer": {"email": "a@example.com"}, "id": "x".repeat(256)}),
                "dedupe_key",
                "id: must be at most 255 characters",
            ),
        ];
        for (body, field, reason) in cases {
            let errors = mapping.map_body(&body).expect_err("refused");
            assert_eq!(errors.len(), 1, "{body}: {errors:?}");
            assert_eq!(errors[0].field, field, "{body}");
            assert!(errors[0].reason.starts_with(reason), "{body}: {}", errors[0]);
        }
        assert!(mapping.map_body(&ok).is_ok());

        let several =
            mapping.map_body(&json!({"customer": {"email": 1, "phone": false}, "type": []})).expect_err("refused");
        let fields: Vec<&str> = several.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "phone", "event_name"]);

        let phone_only = spec(json!({"phone": "p"})).validate().expect("valid");
        let missing = phone_only.map_body(&json!({})).expect_err("no identity");
        assert_eq!(missing, [FieldError::new("email", "is required (or user_id or phone of an existing contact)")]);
    }

    #[test]
    fn occurred_at_accepts_rfc3339_and_unix_seconds() {
        let mapping = spec(json!({"email": "e", "occurred_at": "t"})).validate().expect("valid");
        let at = |t: Value| mapping.map_body(&json!({"e": "a@example.com", "t": t})).expect("maps").occurred_at;
        let expected = Some(Timestamp::from_unix_millis(1_700_000_000_000));
        assert_eq!(at(json!("2023-11-14T22:13:20Z")), expected);
        assert_eq!(at(json!(1_700_000_000)), expected);
        assert_eq!(at(json!("1700000000")), expected, "form tools send strings");
        assert_eq!(at(json!(1_700_000_000.25)), Some(Timestamp::from_unix_millis(1_700_000_000_250)));
        assert_eq!(at(json!(-1)), Some(Timestamp::from_unix_millis(-1000)));
        assert_eq!(at(Value::Null), None);
        assert_eq!(mapping.map_body(&json!({"e": "a@example.com"})).expect("maps").occurred_at, None);
    }

    #[test]
    fn null_attributes_do_not_clear_the_contact() {
        let mapping = spec(
            json!({"email": "e", "attributes": {"plan": "plan", "seats": "seats"}, "properties": {"plan": "plan"}}),
        )
        .validate()
        .expect("valid");
        let event = mapping.map_body(&json!({"e": "a@example.com", "plan": null})).expect("maps");
        assert!(event.attributes.is_empty());
        assert_eq!(event.properties["plan"], Value::Null);
        assert_eq!(event.name, None, "no event name mapped: contact only");
    }

    fn raw_path() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "email",
                "customer.email",
                "data.email",
                "[0].email",
                "items[0].id",
                "id",
                "type",
                "event",
                "created_at",
                "user_id",
                "customer.id",
                "phone",
                "data[\"0\"]",
                "0",
            ])
            .prop_map(str::to_owned),
            "[a-z0-9.\\[\\]\"]{0,12}",
        ]
    }

    fn mapping_spec() -> impl Strategy<Value = MappingSpec> {
        let event_name = prop::option::of(prop_oneof![
            raw_path().prop_map(EventNameSource::Path),
            "\\PC{0,6}".prop_map(EventNameSource::Constant),
        ]);
        (
            (
                prop::option::of(raw_path()),
                prop::option::of(raw_path()),
                prop::option::of(raw_path()),
                event_name,
                prop::option::of(raw_path()),
            ),
            prop::collection::btree_map(json_key(), raw_path(), 0..4),
            prop::collection::btree_map(json_key(), raw_path(), 0..4),
            any::<bool>(),
            prop::option::of(raw_path()),
        )
            .prop_map(
                |(
                    (email, user_id, phone, event_name, occurred_at),
                    attributes,
                    properties,
                    include_body_as_properties,
                    dedupe_key,
                )| MappingSpec {
                    email,
                    user_id,
                    phone,
                    event_name,
                    occurred_at,
                    attributes,
                    properties,
                    include_body_as_properties,
                    dedupe_key,
                },
            )
    }

    proptest! {
        #[test]
        fn map_body_never_panics(spec in mapping_spec(), body in json_value()) {
            if let Ok(mapping) = spec.validate() {
                match mapping.map_body(&body) {
                    Ok(event) => prop_assert!(event.identity != Identity::default()),
                    Err(errors) => prop_assert!(!errors.is_empty()),
                }
            }
        }
    }
}
