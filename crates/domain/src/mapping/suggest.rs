//! Drafting a `MappingSpec` from a captured sample, so a new mapped source starts from
//! something that already applies to what the sender posts.

use std::collections::VecDeque;

use serde_json::Value;

use super::{EventNameSource, JsonPath, MAX_PATH_INDEX, MappingSpec, Segment};
use crate::contact::{EmailAddress, Phone, UserId};
use crate::inbound::{EventName, scalar_text};

/// How deep `suggest` looks into a sample.
const SUGGEST_MAX_DEPTH: usize = 8;
/// How many values `suggest` looks at, so a huge sample cannot make it slow.
const SUGGEST_MAX_NODES: usize = 10_000;

/// Keys that usually hold the sender's own id for the person, most specific first.
const USER_ID_KEYS: [&str; 6] =
    ["user_id", "userId", "client_reference_id", "customer_id", "customerId", "distinct_id"];
/// Objects whose `id` is the person's id (`customer.id` in Shopify).
const PERSON_OBJECTS: [&str; 2] = ["customer", "user"];
const PHONE_KEYS: [&str; 4] = ["phone", "phone_number", "phoneNumber", "mobile"];
const EVENT_NAME_KEYS: [&str; 4] = ["event", "type", "event_type", "topic"];

/// Visits the values of `root` breadth-first (shallowest first) down to `SUGGEST_MAX_DEPTH`,
/// with their paths, until `visit` returns something.
fn breadth_first<T>(root: &Value, mut visit: impl FnMut(&[Segment], &Value) -> Option<T>) -> Option<T> {
    let mut queue = VecDeque::from([(Vec::new(), root)]);
    let mut visited = 0;
    while let Some((path, value)) = queue.pop_front() {
        visited += 1;
        if visited > SUGGEST_MAX_NODES {
            return None;
        }
        if let Some(found) = visit(&path, value) {
            return Some(found);
        }
        if path.len() >= SUGGEST_MAX_DEPTH {
            continue;
        }
        let child = |segment| {
            let mut child = path.clone();
            child.push(segment);
            child
        };
        match value {
            Value::Object(object) => {
                queue.extend(object.iter().map(|(key, value)| (child(Segment::Key(key.clone())), value)))
            }
            Value::Array(items) => queue.extend(
                items
                    .iter()
                    .take(MAX_PATH_INDEX + 1)
                    .enumerate()
                    .map(|(index, value)| (child(Segment::Index(index)), value)),
            ),
            _ => {}
        }
    }
    None
}

/// `base` + `keys` as a path string, if it fits the path limits.
fn path_string(base: &[Segment], keys: &[&str]) -> Option<String> {
    let mut segments = base.to_vec();
    segments.extend(keys.iter().map(|k| Segment::Key((*k).to_owned())));
    JsonPath::from_segments(segments).ok().map(|p| p.to_string())
}

fn parses_as<T, E>(value: Option<&Value>, parse: impl Fn(&str) -> Result<T, E>) -> bool {
    value.and_then(scalar_text).is_some_and(|text| parse(&text).is_ok())
}

/// A starting point for a mapping, from a captured sample: the first email found
/// (breadth-first), the usual user id and phone keys, the event name from a top-level
/// `event`/`type`/`event_type`/`topic` string, and the whole body as the event's properties.
/// Only values that would map cleanly are suggested, so the spec applies to its own sample
/// whenever it found an identity.
pub fn suggest(sample: &Value) -> MappingSpec {
    let email = breadth_first(sample, |path, value| {
        let text = value.as_str()?;
        if path.is_empty() || EmailAddress::parse(text).is_err() {
            return None;
        }
        path_string(path, &[])
    });
    let user_id = breadth_first(sample, |path, value| {
        let object = value.as_object()?;
        let direct = USER_ID_KEYS
            .iter()
            .find(|key| parses_as(object.get(**key), UserId::parse))
            .and_then(|key| path_string(path, &[key]));
        direct.or_else(|| {
            PERSON_OBJECTS
                .iter()
                .find(|container| {
                    let id = object.get(**container).and_then(|c| c.get("id"));
                    parses_as(id, UserId::parse)
                })
                .and_then(|container| path_string(path, &[container, "id"]))
        })
    });
    let phone = breadth_first(sample, |path, value| {
        let object = value.as_object()?;
        PHONE_KEYS
            .iter()
            .find(|key| parses_as(object.get(**key), Phone::parse))
            .and_then(|key| path_string(path, &[key]))
    });
    let event_name = sample.as_object().and_then(|object| {
        EVENT_NAME_KEYS
            .iter()
            .find(|key| object.get(**key).and_then(Value::as_str).is_some_and(|name| EventName::parse(name).is_ok()))
            .and_then(|key| path_string(&[], &[key]))
            .map(EventNameSource::Path)
    });
    MappingSpec { email, user_id, phone, event_name, include_body_as_properties: true, ..MappingSpec::default() }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::mapping::fixtures::{json_value, shopify_order, stripe_checkout};

    #[test]
    fn suggests_a_mapping_from_samples() {
        let stripe = suggest(&stripe_checkout());
        assert_eq!(
            stripe,
            MappingSpec {
                email: Some("data.object.customer_details.email".into()),
                user_id: Some("data.object.client_reference_id".into()),
                phone: None,
                event_name: Some(EventNameSource::Path("type".into())),
                include_body_as_properties: true,
                ..MappingSpec::default()
            }
        );
        let shopify = suggest(&shopify_order());
        assert_eq!(
            shopify,
            MappingSpec {
                email: Some("email".into()),
                user_id: Some("customer.id".into()),
                phone: Some("customer.phone".into()),
                event_name: None,
                include_body_as_properties: true,
                ..MappingSpec::default()
            }
        );
        for sample in [stripe_checkout(), shopify_order()] {
            let event =
                suggest(&sample).validate().expect("valid").map_body(&sample).expect("applies to its own sample");
            assert_eq!(Some(&Value::Object(event.properties)), Some(&sample));
        }

        let posthog_like = suggest(
            &json!({"event": {"event": "x"}, "type": "signup", "user": {"id": 9, "contact": {"mail": "deep@example.com"}}}),
        );
        assert_eq!(
            posthog_like.event_name,
            Some(EventNameSource::Path("type".into())),
            "a non-string `event` is skipped"
        );
        assert_eq!(posthog_like.user_id.as_deref(), Some("user.id"));
        assert_eq!(posthog_like.email.as_deref(), Some("user.contact.mail"));

        let quoted = suggest(&json!({"lead form": [{"e-mail": "x@example.com"}]}));
        assert_eq!(quoted.email.as_deref(), Some(r#"["lead form"][0].e-mail"#));

        let too_deep = suggest(&json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": "x@example.com"}}}}}}}}}));
        assert_eq!(too_deep.email, None);
        let deepest = suggest(&json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": "x@example.com"}}}}}}}}));
        assert_eq!(deepest.email.as_deref(), Some("a.b.c.d.e.f.g.h"));
        assert_eq!(suggest(&json!("x@example.com")).email, None);
    }

    proptest! {
        #[test]
        fn suggestions_apply_to_their_own_sample(body in json_value()) {
            let suggested = suggest(&body);
            let has_identity = suggested.email.is_some()
                || suggested.user_id.is_some()
                || suggested.phone.is_some();
            match suggested.validate() {
                Ok(mapping) => {
                    prop_assert!(has_identity);
                    prop_assert!(mapping.map_body(&body).is_ok(), "{:?}", mapping.map_body(&body));
                }
                Err(errors) => {
                    prop_assert!(!has_identity);
                    prop_assert_eq!(errors.len(), 1);
                }
            }
        }
    }
}
