//! Previewing an email step in the editor: its templates rendered for a chosen contact (or
//! an example one), with the renderer's warnings, shown under the step.

use std::collections::BTreeMap;

use herald_domain::{Contact, ContactId, EmailAddress, PageRequest, WorkspaceId};
use herald_store::ContactFilter;
use serde_json::{Map, Value, json};

use super::ops::pointer;
use crate::campaigns::{CampaignsState, service};
use crate::web::UiError;

/// A rendered email under its step.
pub struct PreviewView {
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub warnings: Vec<String>,
    pub error: Option<String>,
}

/// Renders the email step at `step` for the contact named by `who` (an email address or a
/// contact id; an example contact when blank). Problems are shown in the preview.
pub(super) async fn preview(
    state: &CampaignsState,
    ws: WorkspaceId,
    doc: &Value,
    step: &str,
    who: &str,
) -> Result<PreviewView, UiError> {
    let email = doc.pointer(&pointer(step)).cloned().unwrap_or(Value::Null);
    let mut view = PreviewView {
        to: String::new(),
        subject: String::new(),
        html: String::new(),
        text: String::new(),
        warnings: Vec::new(),
        error: None,
    };
    let now = state.clock.now();
    let contact = match find_contact(state, ws, who, now).await {
        Ok(contact) => contact,
        Err(message) => {
            view.error = Some(message);
            return Ok(view);
        }
    };
    view.to = contact.email.as_ref().map_or_else(|| contact.id.to_string(), |e| e.as_str().to_owned());
    let templates: BTreeMap<String, String> = ["subject", "html", "text"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), email[name].as_str()?.to_owned())))
        .collect();
    let custom_variables = Map::new();
    let scope = herald_campaign::context::Scope {
        contact: &contact,
        event: None,
        custom_variables: &custom_variables,
        campaign: None,
        unsubscribe_url: "https://example.invalid/unsubscribe",
        emails: &[],
    };
    match service::render_preview(&scope, templates, now) {
        Ok(mut parts) => {
            let mut take = |name: &str| {
                parts.remove(name).map(|part| {
                    view.warnings.extend(part.warnings.into_iter().map(|w| format!("{name}: {w}")));
                    part.output
                })
            };
            view.subject = take("subject").unwrap_or_default();
            view.html = take("html").unwrap_or_default();
            view.text = take("text").unwrap_or_default();
        }
        Err(e) => view.error = Some(e.message.replacen("templates.", "", 1)),
    }
    Ok(view)
}

async fn find_contact(
    state: &CampaignsState,
    ws: WorkspaceId,
    who: &str,
    now: herald_domain::Timestamp,
) -> Result<Contact, String> {
    if who.is_empty() {
        let example = serde_json::from_value(json!({
            "email": "jane@example.com", "first_name": "Jane", "last_name": "Doe", "name": "Jane Doe",
            "attributes": {"plan": "free"}
        }))
        .map_err(|e| e.to_string())?;
        return service::some_contact(state, ws, None, Some(example), now).await.map_err(|e| e.message);
    }
    if who.parse::<ContactId>().is_ok() {
        return service::some_contact(state, ws, Some(who.to_owned()), None, now)
            .await
            .map_err(|_| format!("No contact {who} in this workspace."));
    }
    let email = EmailAddress::parse(who).map_err(|e| format!("Preview for: {e}"))?;
    let filter = ContactFilter { email: Some(email), ..ContactFilter::default() };
    let page = state
        .store
        .list_contacts(ws, &filter, PageRequest { after: None, limit: 1 })
        .await
        .map_err(|e| e.to_string())?;
    page.items.into_iter().next().ok_or_else(|| format!("No contact with the email {who}."))
}
