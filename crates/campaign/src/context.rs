//! The variables a template or condition sees.
//!
//! Contact fields and attributes sit at the top level, as the generic-webhook tools write
//! them (`{{first_name}}`, `{{plan}}`) and again under `customer.*` (Customer.io) and `contact.*`; the trigger event
//! under `event.*` (`event.name`, `event.data.*`, the same under `event.properties.*`);
//! values set by earlier steps and mapped source fields under `custom_variables.*`; the
//! campaign under `campaign.*`; and `unsubscribe_url`. Fields win over attributes of the
//! same name at the top level.

use herald_domain::{CampaignId, Contact, Event};
use serde_json::{Map, Value, json};

/// The campaign as templates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignInfo {
    pub id: CampaignId,
    pub name: String,
    pub version: u32,
}

/// Everything a template or condition can refer to.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub contact: &'a Contact,
    pub event: Option<&'a Event>,
    pub custom_variables: &'a Map<String, Value>,
    pub campaign: Option<&'a CampaignInfo>,
    pub unsubscribe_url: &'a str,
}

impl Scope<'_> {
    pub fn variables(&self) -> Value {
        let contact = contact_object(self.contact);
        let mut top = contact.clone();
        top.insert("customer".into(), Value::Object(contact.clone()));
        top.insert("contact".into(), Value::Object(contact));
        if let Some(event) = self.event {
            top.insert("event".into(), event_object(event));
        }
        top.insert("custom_variables".into(), Value::Object(self.custom_variables.clone()));
        if let Some(campaign) = self.campaign {
            top.insert(
                "campaign".into(),
                json!({"id": campaign.id.to_string(), "name": campaign.name, "version": campaign.version}),
            );
        }
        top.insert("unsubscribe_url".into(), Value::String(self.unsubscribe_url.to_owned()));
        Value::Object(top)
    }
}

fn contact_object(contact: &Contact) -> Map<String, Value> {
    let mut object = contact.attributes.clone();
    let text = |v: Option<&str>| v.map_or(Value::Null, |s| Value::String(s.to_owned()));
    object.insert("id".into(), Value::String(contact.id.to_string()));
    object.insert("email".into(), text(contact.email.as_ref().map(|e| e.as_str())));
    object.insert("user_id".into(), text(contact.user_id.as_ref().map(|u| u.as_str())));
    object.insert("phone".into(), text(contact.phone.as_ref().map(|p| p.as_str())));
    object.insert("name".into(), text(contact.name.as_deref()));
    object.insert("first_name".into(), text(contact.first_name.as_deref()));
    object.insert("last_name".into(), text(contact.last_name.as_deref()));
    object.insert("created_at".into(), Value::String(contact.created_at.to_string()));
    object
}

fn event_object(event: &Event) -> Value {
    let properties = Value::Object(event.properties.clone());
    json!({
        "id": event.id.to_string(),
        "name": event.name,
        "data": properties,
        "properties": properties,
        "occurred_at": event.occurred_at.to_string(),
        "timestamp": event.occurred_at.unix_millis().div_euclid(1000),
    })
}
