//! Contacts: search by email, user id or attribute; a contact page with identifiers,
//! attributes, suppression, recent events and messages.

use askama::Template;
use axum::extract::{Path, Query, State};
use herald_domain::{Contact, ContactId, Cursor, EmailAddress, PageRequest, UserId};
use herald_store::campaign::MessageFilter;
use herald_store::{ContactFilter, EventFilter};
use serde::Deserialize;

use super::{Layout, Session, UiError, UiResult, non_blank, parse_id, pretty, render, when};
use crate::http::AppState;
use crate::http::error::ApiError;

pub struct ContactRow {
    pub id: String,
    pub email: String,
    pub user_id: String,
    pub name: String,
    pub created: String,
}

fn display_name(c: &Contact) -> String {
    c.name.clone().unwrap_or_else(|| {
        [c.first_name.as_deref(), c.last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ")
    })
}

fn row(c: &Contact) -> ContactRow {
    ContactRow {
        id: c.id.to_string(),
        email: c.email.as_ref().map(|e| e.as_str().to_owned()).unwrap_or_default(),
        user_id: c.user_id.as_ref().map(|u| u.as_str().to_owned()).unwrap_or_default(),
        name: display_name(c),
        created: when(c.created_at),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "contacts.html")]
struct ContactsPage {
    l: Layout,
    q: String,
    rows: Vec<ContactRow>,
    next: Option<String>,
    error: Option<String>,
}

/// What a search box means: `key=value` an attribute (the value as JSON when it parses,
/// else as text), something with `@` an email, anything else a user id.
fn parse_search(q: &str) -> Result<ContactFilter, String> {
    if let Some((key, value)) = q.split_once('=') {
        let key = key.trim();
        if key.is_empty() {
            return Err("Write attribute searches as name=value, e.g. plan=pro.".into());
        }
        let value = value.trim();
        let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        return Ok(ContactFilter { attribute: Some((key.to_owned(), value)), ..ContactFilter::default() });
    }
    if q.contains('@') {
        let email = EmailAddress::parse(q).map_err(|e| format!("Not an email address: {e}."))?;
        return Ok(ContactFilter { email: Some(email), ..ContactFilter::default() });
    }
    let user_id = UserId::parse(q).map_err(|e| format!("Not a user id: {e}."))?;
    Ok(ContactFilter { user_id: Some(user_id), ..ContactFilter::default() })
}

pub async fn list(State(state): State<AppState>, session: Session, Query(query): Query<SearchQuery>) -> UiResult {
    let q = non_blank(&query.q).unwrap_or_default().to_owned();
    let after = non_blank(&query.cursor)
        .map(Cursor::decode::<ContactId>)
        .transpose()
        .map_err(|_| UiError(ApiError::invalid("cursor", "is not a cursor")))?;
    let (filter, error) = if q.is_empty() {
        (Some(ContactFilter::default()), None)
    } else {
        match parse_search(&q) {
            Ok(f) => (Some(f), None),
            Err(e) => (None, Some(e)),
        }
    };
    let (rows, next) = match filter {
        Some(filter) => {
            let page =
                state.store.list_contacts(session.workspace_id, &filter, PageRequest { after, limit: 50 }).await?;
            let next = page.next_cursor.map(|c| {
                let params = [("q", q.as_str()), ("cursor", c.as_str())];
                format!("/contacts?{}", serde_urlencoded::to_string(params).unwrap_or_default())
            });
            (page.items.iter().map(row).collect(), next)
        }
        None => (Vec::new(), None),
    };
    Ok(render(&ContactsPage { l: Layout::new(&session, "/contacts", "Contacts"), q, rows, next, error }))
}

pub struct EventLine {
    pub id: String,
    pub name: String,
    pub received: String,
}

pub struct MessageLine {
    pub id: String,
    pub subject: String,
    pub status: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "contact.html")]
struct ContactPage {
    l: Layout,
    c: ContactRow,
    phone: Option<String>,
    updated: String,
    attributes: String,
    suppressed: Option<String>,
    events: Vec<EventLine>,
    more_events: bool,
    messages: Vec<MessageLine>,
}

pub async fn show(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> UiResult {
    let id: ContactId = parse_id(&id)?;
    let ws = session.workspace_id;
    let contact = state.store.get_contact(ws, id).await?;
    let filter = EventFilter { contact: Some(id), ..EventFilter::default() };
    let events = state.store.list_events(ws, &filter, PageRequest { after: None, limit: 20 }).await?;
    let messages = state
        .store
        .list_messages(
            ws,
            &MessageFilter { contact: Some(id), ..MessageFilter::default() },
            PageRequest { after: None, limit: 20 },
        )
        .await?;
    let suppressed = match &contact.email {
        Some(email) => state
            .store
            .suppression(ws, email.as_str())
            .await?
            .map(|s| format!("{} since {}", s.reason, when(s.created_at))),
        None => None,
    };
    let page = ContactPage {
        l: Layout::new(
            &session,
            "/contacts",
            contact.email.as_ref().map_or_else(|| contact.id.to_string(), |e| e.as_str().to_owned()),
        ),
        c: row(&contact),
        phone: contact.phone.as_ref().map(|p| p.as_str().to_owned()),
        updated: when(contact.updated_at),
        attributes: pretty(&serde_json::Value::Object(contact.attributes.clone())),
        suppressed,
        more_events: events.next_cursor.is_some(),
        events: events
            .items
            .iter()
            .map(|e| EventLine {
                id: e.id.to_string(),
                name: e.name.clone().unwrap_or_else(|| "(contact only)".into()),
                received: when(e.received_at),
            })
            .collect(),
        messages: messages
            .items
            .iter()
            .map(|m| MessageLine {
                id: m.id.to_string(),
                subject: m.subject.clone(),
                status: m.status.to_string(),
                created: when(m.created_at),
            })
            .collect(),
    };
    Ok(render(&page))
}

#[cfg(test)]
mod tests {
    use super::parse_search;

    #[test]
    fn searches_read_as_attribute_email_or_user_id() {
        let f = parse_search("plan=pro").expect("attribute");
        assert_eq!(f.attribute, Some(("plan".into(), serde_json::json!("pro"))));
        let f = parse_search("seats=3").expect("attribute");
        assert_eq!(f.attribute, Some(("seats".into(), serde_json::json!(3))));
        assert!(parse_search("ada@example.com").expect("email").email.is_some());
        assert!(parse_search("user-42").expect("user id").user_id.is_some());
        assert!(parse_search("=x").is_err());
    }
}
