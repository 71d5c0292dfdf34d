//! Campaign event webhooks (as hosted tools offer them per campaign): a campaign's
//! subscriptions to its own events, and the
//! pure parts of each call: the default payload document of an event, custom payloads built
//! from field mappings, and their encoding as JSON or as form/query parameters. The server
//! reads the records and sends the requests through the ordinary delivery job.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::campaign::string_enum;
use crate::{CampaignId, CampaignWebhookId, Contact, JourneyId, MessageId, Timestamp, WorkspaceId};

string_enum!(
    /// A campaign event a webhook can subscribe to.
    CampaignEventKind {
        /// A journey started.
        ContactEntered = "contact_entered",
        /// An email step's message was handed to the relay (or the embedded outbox).
        EmailSent = "email_sent",
        /// The relay refused the message for good, its retries ran out, or it could not be built.
        EmailFailed = "email_failed",
        /// The receiving side refused the address for good (a hard bounce).
        EmailBounced = "email_bounced",
        /// The message was not sent: the address is on the suppression list.
        EmailSuppressed = "email_suppressed",
        /// The receiving side or the provider reported the message in the mailbox.
        EmailDelivered = "email_delivered",
        /// The recipient marked the message as spam.
        EmailComplained = "email_complained",
        /// The message's tracking image was fetched (by a person or a privacy proxy).
        EmailOpened = "email_opened",
        /// A tracked link of the message was followed.
        EmailClicked = "email_clicked",
        /// A webhook step's call failed for good or ran out of retries.
        WebhookFailed = "webhook_failed",
        /// The contact reached the campaign's goal.
        ContactConverted = "contact_converted",
        /// A journey ended: its last step ran, an exit step, or the goal with exit.
        ContactExited = "contact_exited",
        /// The contact unsubscribed (a link or one-click) while having a journey in the campaign.
        ContactUnsubscribed = "contact_unsubscribed",
    }
);

string_enum!(
    /// How a payload is encoded.
    PayloadEncoding {
        /// `application/json`.
        Json = "json",
        /// `application/x-www-form-urlencoded`, nested fields as `contact[email]`.
        Form = "form",
    }
);

string_enum!(
    /// The method of a campaign event webhook. GET carries the payload as query parameters.
    HookMethod {
        Post = "POST",
        Get = "GET",
    }
);

/// One campaign event webhook as stored. `Debug` hides the password and the secret.
#[derive(Clone, PartialEq)]
pub struct CampaignWebhook {
    pub id: CampaignWebhookId,
    pub workspace_id: WorkspaceId,
    pub campaign_id: CampaignId,
    pub url: String,
    pub content_type: PayloadEncoding,
    pub method: HookMethod,
    /// Username and password for Basic authentication (POST only). The password is write-only.
    pub basic_auth: Option<(String, String)>,
    /// Signs the calls instead of the workspace's keys; write-only.
    pub secret: Option<String>,
    pub log_response_body: bool,
    pub active: bool,
    pub events: Vec<CampaignEventKind>,
    /// A custom payload; `None` sends the default document.
    pub payload: Option<PayloadMapping>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl fmt::Debug for CampaignWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CampaignWebhook")
            .field("id", &self.id)
            .field("campaign_id", &self.campaign_id)
            .field("url", &self.url)
            .field("method", &self.method)
            .field("events", &self.events)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl CampaignWebhook {
    /// Whether an event of `kind` makes a call now.
    pub fn listens_to(&self, kind: CampaignEventKind) -> bool {
        self.active && self.events.contains(&kind)
    }
}

/// Where a custom payload field's value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldSource {
    /// A path into the event's default document: `contact.email`, `campaign.name`,
    /// `contact.attributes.plan`, `data.message_id`, `event`, `timestamp`, `journey_id`.
    From { from: String },
    /// A fixed value.
    Value { value: Value },
}

/// A custom payload: field name → its source. Sent as a flat object (JSON) or flat
/// parameters (form, query).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PayloadMapping(BTreeMap<String, FieldSource>);

/// Why a payload mapping was refused: the JSON path of the offending part and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct MappingError {
    pub path: String,
    pub reason: String,
}

/// Most fields a custom payload may have.
pub const MAX_MAPPED_FIELDS: usize = 100;
const MAX_FIELD_NAME: usize = 200;

/// The roots a `from` path may start with, and what may follow each.
const FROM_ROOTS: &str = "event, timestamp, journey_id, campaign.id, campaign.name, contact.id, contact.email, \
                          contact.user_id, contact.phone, contact.attributes[.name…], data[.field…]";

impl PayloadMapping {
    /// Parses `{"field": {"from": "contact.email"} | {"value": …}, …}`; errors name the path
    /// under `at` (for example `payload.email.from`).
    pub fn parse(value: &Value, at: &str) -> Result<PayloadMapping, MappingError> {
        let error = |path: String, reason: &str| MappingError { path, reason: reason.to_owned() };
        let Value::Object(fields) = value else {
            return Err(error(at.to_owned(), "must be an object of field name → {\"from\": path} or {\"value\": v}"));
        };
        if fields.is_empty() {
            return Err(error(at.to_owned(), "must map at least one field (or be null for the default payload)"));
        }
        if fields.len() > MAX_MAPPED_FIELDS {
            return Err(error(at.to_owned(), &format!("at most {MAX_MAPPED_FIELDS} fields")));
        }
        let mut mapping = BTreeMap::new();
        for (name, source) in fields {
            let path = format!("{at}.{name}");
            if name.trim().is_empty() || name.len() > MAX_FIELD_NAME || name.chars().any(char::is_control) {
                return Err(error(path, &format!("field names are 1 to {MAX_FIELD_NAME} printable characters")));
            }
            let source = match source {
                Value::Object(object) if object.len() == 1 && object.contains_key("from") => {
                    let Some(from) = object["from"].as_str() else {
                        return Err(error(format!("{path}.from"), "must be a string"));
                    };
                    check_from(from).map_err(|reason| error(format!("{path}.from"), &reason))?;
                    FieldSource::From { from: from.to_owned() }
                }
                Value::Object(object) if object.len() == 1 && object.contains_key("value") => {
                    FieldSource::Value { value: object["value"].clone() }
                }
                _ => return Err(error(path, "must be {\"from\": \"contact.email\"} or {\"value\": \"static\"}")),
            };
            mapping.insert(name.clone(), source);
        }
        Ok(PayloadMapping(mapping))
    }

    /// The payload for an event whose default document is `document`; a path that is absent
    /// in this event gives `null`.
    pub fn build_payload(&self, document: &Value) -> Value {
        let fields = self.0.iter().map(|(name, source)| {
            let value = match source {
                FieldSource::Value { value } => value.clone(),
                FieldSource::From { from } => {
                    from.split('.').try_fold(document, |v, key| v.get(key)).cloned().unwrap_or(Value::Null)
                }
            };
            (name.clone(), value)
        });
        Value::Object(fields.collect())
    }
}

fn check_from(from: &str) -> Result<(), String> {
    let mut parts = from.split('.');
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    if rest.iter().any(|p| p.is_empty()) {
        return Err(format!("{from:?} has an empty segment"));
    }
    let ok = matches!(
        (first, rest.as_slice()),
        ("event" | "timestamp" | "journey_id", [])
            | ("campaign", ["id" | "name"])
            | ("contact", ["id" | "email" | "user_id" | "phone"])
            | ("contact", ["attributes", ..])
            | ("data", _)
    );
    if ok { Ok(()) } else { Err(format!("unknown source {from:?}; use one of {FROM_ROOTS}")) }
}

/// One occurrence of a campaign event, with what its payload says.
#[derive(Debug, Clone)]
pub struct CampaignEvent<'a> {
    pub kind: CampaignEventKind,
    pub at: Timestamp,
    pub campaign_id: CampaignId,
    pub campaign_name: &'a str,
    pub journey_id: Option<JourneyId>,
    pub contact: &'a Contact,
    /// The event's own fields (an object): message id and status, delivery id, exit reason…
    pub data: Value,
    /// What makes this occurrence unique among events of its kind (a journey, message,
    /// delivery id…): with the webhook and the kind, it derives the idempotency key, so an
    /// occurrence recorded twice is still one call.
    pub occurrence: String,
}

impl CampaignEvent<'_> {
    /// The default payload document.
    pub fn document(&self) -> Value {
        let contact = self.contact;
        json!({
            "event": self.kind,
            "timestamp": self.at,
            "campaign": {"id": self.campaign_id, "name": self.campaign_name},
            "journey_id": self.journey_id,
            "contact": {
                "id": contact.id,
                "email": contact.email.as_ref().map(|e| e.as_str()),
                "user_id": contact.user_id.as_ref().map(|u| u.as_str()),
                "phone": contact.phone.as_ref().map(|p| p.as_str()),
                "attributes": contact.attributes,
            },
            "data": self.data,
        })
    }

    /// What `hook` sends for this event: its mapping applied, or the default document.
    pub fn payload_for(&self, hook: &CampaignWebhook) -> Value {
        let document = self.document();
        match &hook.payload {
            Some(mapping) => mapping.build_payload(&document),
            None => document,
        }
    }
}

/// A payload as `application/x-www-form-urlencoded` (the body of a form POST, or a GET's
/// query): nested objects and arrays in bracket notation (`contact[attributes][plan]=pro`,
/// `tags[0]=a`), strings as they are, numbers and booleans as JSON text, null as empty.
pub fn form_encode(payload: &Value) -> String {
    let mut pairs = Vec::new();
    flatten(None, payload, &mut pairs);
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        form.append_pair(&name, &value);
    }
    form.finish()
}

fn flatten(prefix: Option<String>, value: &Value, out: &mut Vec<(String, String)>) {
    let key = |k: &str| prefix.as_ref().map_or_else(|| k.to_owned(), |p| format!("{p}[{k}]"));
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| flatten(Some(key(k)), v, out)),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| flatten(Some(key(&i.to_string())), v, out)),
        scalar => {
            let text = match scalar {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            out.push((prefix.unwrap_or_default(), text));
        }
    }
}

/// The default document's `data` for a message event.
pub fn message_data(id: MessageId, step: &str, to: &str, subject: &str, status: &str, reason: Option<&str>) -> Value {
    let mut data = Map::new();
    data.insert("message_id".into(), json!(id));
    data.insert("step".into(), json!(step));
    data.insert("to".into(), json!(to));
    data.insert("subject".into(), json!(subject));
    data.insert("status".into(), json!(status));
    data.insert("reason".into(), json!(reason));
    Value::Object(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContactId, EmailAddress};

    fn contact() -> Contact {
        Contact {
            id: ContactId::from_uuid(uuid::Uuid::from_u128(1)),
            workspace_id: WorkspaceId::from_uuid(uuid::Uuid::from_u128(2)),
            email: Some(EmailAddress::parse("ada@example.com").expect("email")),
            user_id: None,
            phone: None,
            name: None,
            first_name: None,
            last_name: None,
            attributes: json!({"plan": "pro", "seats": 3}).as_object().cloned().unwrap_or_default(),
            created_at: Timestamp::from_unix_millis(0),
            updated_at: Timestamp::from_unix_millis(0),
        }
    }

    fn event(contact: &Contact) -> CampaignEvent<'_> {
        CampaignEvent {
            kind: CampaignEventKind::EmailSent,
            at: Timestamp::from_unix_millis(1_767_225_600_000),
            campaign_id: CampaignId::from_uuid(uuid::Uuid::from_u128(3)),
            campaign_name: "Summer Promotion",
            journey_id: None,
            contact,
            data: json!({"message_id": "msg_1"}),
            occurrence: "msg_1".into(),
        }
    }

    #[test]
    fn mappings_pick_from_the_document_or_fix_a_value() {
        let mapping = PayloadMapping::parse(
            &json!({"email": {"from": "contact.email"}, "campaign_name": {"from": "campaign.name"},
                    "source": {"value": "webhook"}, "plan": {"from": "contact.attributes.plan"},
                    "missing": {"from": "data.nothing"}}),
            "payload",
        )
        .expect("valid");
        let contact = contact();
        let payload = mapping.build_payload(&event(&contact).document());
        assert_eq!(
            payload,
            json!({"email": "ada@example.com", "campaign_name": "Summer Promotion", "source": "webhook",
                   "plan": "pro", "missing": null})
        );
    }

    #[test]
    fn bad_mappings_name_their_path() {
        let cases = [
            (json!([]), "payload"),
            (json!({}), "payload"),
            (json!({"a": "contact.email"}), "payload.a"),
            (json!({"a": {"from": 1}}), "payload.a.from"),
            (json!({"a": {"from": "contact.password"}}), "payload.a.from"),
            (json!({"a": {"from": "data..x"}}), "payload.a.from"),
            (json!({"a": {"from": "contact.email", "value": 1}}), "payload.a"),
            (json!({" ": {"value": 1}}), "payload. "),
        ];
        for (value, path) in cases {
            let err = PayloadMapping::parse(&value, "payload").expect_err("refused");
            assert_eq!(err.path, path, "{value}: {err}");
        }
    }

    #[test]
    fn forms_flatten_in_bracket_notation() {
        let form = form_encode(&json!({"a": "x y", "n": 2, "b": {"c": [true, null]}}));
        assert_eq!(form, "a=x+y&b%5Bc%5D%5B0%5D=true&b%5Bc%5D%5B1%5D=&n=2");
    }

    #[test]
    fn the_default_document_names_event_campaign_contact_and_data() {
        let contact = contact();
        let document = event(&contact).document();
        assert_eq!(document["event"], "email_sent");
        assert_eq!(document["timestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(document["campaign"]["name"], "Summer Promotion");
        assert_eq!(document["contact"]["email"], "ada@example.com");
        assert_eq!(document["contact"]["attributes"]["seats"], 3);
        assert_eq!(document["data"]["message_id"], "msg_1");
        assert_eq!(document["journey_id"], Value::Null);
    }
}
