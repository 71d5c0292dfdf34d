//! The variables a template or condition sees.
//!
//! Contact fields and attributes sit at the top level, as the generic-webhook tools write
//! them (`{{first_name}}`, `{{plan}}`) and again under `customer.*` (Customer.io) and `contact.*`; the trigger event
//! under `event.*` (`event.name`, `event.data.*`, the same under `event.properties.*`);
//! values set by earlier steps and mapped source fields under `custom_variables.*`; the
//! campaign under `campaign.*`; and `unsubscribe_url`. Fields win over attributes of the
//! same name at the top level.

use herald_domain::{CampaignId, Contact, EmailSummary, Event, MessageStatus};
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
    /// The journey's emails so far, oldest first (`emails.*`).
    pub emails: &'a [EmailSummary],
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
        if !self.emails.is_empty() {
            top.insert("emails".into(), emails_object(self.emails));
        }
        Value::Object(top)
    }
}

/// The journey's emails: each under its step's id, and the newest again as `previous`, so a
/// branch can ask "opened the previous email" (`emails.previous.opened`) or "clicked a link
/// containing /pricing" (`emails.previous.links_clicked` `contains` `/pricing`).
fn emails_object(emails: &[EmailSummary]) -> Value {
    let mut object = Map::new();
    for email in emails {
        object.insert(email.step.clone(), email_object(email));
    }
    if let Some(last) = emails.last() {
        object.insert("previous".into(), email_object(last));
    }
    Value::Object(object)
}

fn email_object(email: &EmailSummary) -> Value {
    use MessageStatus as S;
    let opens = email.opens + email.machine_opens;
    json!({
        "message_id": email.message_id.to_string(),
        "status": email.status.as_str(),
        "sent": matches!(email.status, S::Sent | S::Delivered | S::Bounced | S::Complained),
        "delivered": email.status == S::Delivered || opens + email.clicks > 0,
        "bounced": email.status == S::Bounced,
        "complained": email.status == S::Complained,
        // A click proves an open even when images stayed blocked.
        "opened": opens + email.clicks > 0,
        "opened_by_person": email.opens + email.clicks > 0,
        "opens": opens,
        "clicked": email.clicks > 0,
        "clicks": email.clicks,
        "clicked_urls": email.clicked_urls,
        "links_clicked": email.clicked_urls.join(" "),
    })
}

/// The contact's fields and attributes as one object (what `contact.*` holds); fields win over
/// attributes of the same name.
pub fn contact_object(contact: &Contact) -> Map<String, Value> {
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
