//! Contacts: search by email, user id or attribute; a contact page with identifiers,
//! attributes, suppression and a timeline of their events, journeys, emails and webhook calls; and what
//! can be done to one: unsubscribe, delete (after a confirmation page), run a saved action.

use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use herald_domain::{ActionId, Contact, ContactId, Cursor, EmailAddress, PageRequest, Timestamp, UserId};
use herald_store::campaign::MessageFilter;
use herald_store::webhook::DeliveryFilter;
use herald_store::{ContactFilter, EventFilter};
use serde::Deserialize;

use super::ContactsState;
use crate::web::error::ApiError;
use crate::web::{
    Empty, FieldErrors, Form, Layout, NoticeQuery, SelectOption, Session, UiError, UiResult, WebState, non_blank,
    parse_id, pretty, render, see_other, status_badge, thousands, when,
};

/// The contacts pages.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ContactsState: FromRef<S>,
    WebState: FromRef<S>,
{
    Router::new()
        .route("/contacts", get(list))
        .route("/contacts/{id}", get(show))
        .route("/contacts/{id}/unsubscribe", post(unsubscribe))
        .route("/contacts/{id}/delete", get(confirm_delete).post(delete))
        .route("/contacts/{id}/run-action", post(run_action))
}

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
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "contacts.html")]
struct ContactsPage {
    l: Layout,
    q: String,
    rows: Vec<ContactRow>,
    next: Option<String>,
    error: Option<String>,
    /// How many contacts an attribute search examines a page.
    window: String,
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

pub async fn list(State(state): State<ContactsState>, session: Session, Query(query): Query<SearchQuery>) -> UiResult {
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
    let l = Layout::new(&session, "/contacts", "Contacts").with_notice(NoticeQuery { notice: query.notice }.message());
    let window = thousands(ContactFilter::SCAN_WINDOW);
    Ok(render(&ContactsPage { l, q, rows, next, error, window }))
}

/// One line of a contact's timeline: an event, a journey, an email or a webhook call.
pub struct TimelineItem {
    at: Timestamp,
    pub when: String,
    pub kind: &'static str,
    pub label: String,
    pub href: String,
    pub status: Option<String>,
    pub badge: &'static str,
}

/// Lines of each kind a contact page reads; the timeline shows them merged, newest first.
const TIMELINE_EACH: u32 = 20;

#[derive(Template)]
#[template(path = "contact.html")]
struct ContactPage {
    l: Layout,
    c: ContactRow,
    phone: Option<String>,
    updated: String,
    attributes: String,
    suppressed: Option<String>,
    /// The workspace's topics with the contact's standing in each.
    topics: Vec<TopicStanding>,
    timeline: Vec<TimelineItem>,
    more_events: bool,
    more_messages: bool,
    more_deliveries: bool,
    actions: Vec<SelectOption>,
    ran: Option<String>,
    run_errors: FieldErrors,
}

pub struct TopicStanding {
    pub name: String,
    pub subscribed: bool,
    /// Who recorded the choice and when, in words; empty while the contact never chose.
    pub chosen: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ContactQuery {
    notice: Option<String>,
    /// The saved action just queued (`act_…`): the page links to its calls.
    ran: Option<String>,
}

impl ContactPage {
    async fn load(state: &ContactsState, session: &Session, id: ContactId) -> Result<Self, UiError> {
        let ws = session.workspace_id;
        let contact = state.store.get_contact(ws, id).await?;
        let events = state
            .store
            .list_events(
                ws,
                &EventFilter { contact: Some(id), ..EventFilter::default() },
                PageRequest { after: None, limit: TIMELINE_EACH },
            )
            .await?;
        let messages = state
            .store
            .list_messages(
                ws,
                &MessageFilter { contact: Some(id), ..MessageFilter::default() },
                PageRequest { after: None, limit: TIMELINE_EACH },
            )
            .await?;
        let deliveries = state
            .store
            .list_deliveries(
                ws,
                &DeliveryFilter { contact: Some(id), ..DeliveryFilter::default() },
                PageRequest { after: None, limit: TIMELINE_EACH },
            )
            .await?;
        let journeys = state.store.contact_journeys(ws, id, None, TIMELINE_EACH).await?;
        let mut campaign_names = std::collections::HashMap::new();
        for journey in &journeys {
            if let std::collections::hash_map::Entry::Vacant(slot) = campaign_names.entry(journey.campaign_id) {
                let name = match state.store.get_campaign(ws, journey.campaign_id).await {
                    Ok(campaign) => campaign.name,
                    Err(herald_store::StoreError::NotFound { .. }) => journey.campaign_id.to_string(),
                    Err(e) => return Err(e.into()),
                };
                slot.insert(name);
            }
        }
        let suppressed = match &contact.email {
            Some(email) => state
                .store
                .suppression(ws, email.as_str())
                .await?
                .map(|s| format!("{} since {}", s.reason, when(s.created_at))),
            None => None,
        };
        let mut timeline: Vec<TimelineItem> = events
            .items
            .iter()
            .map(|e| TimelineItem {
                at: e.received_at,
                when: when(e.received_at),
                kind: "event",
                label: e.name.clone().unwrap_or_else(|| "(contact only)".into()),
                href: format!("/events/{}", e.id),
                status: None,
                badge: "",
            })
            .chain(messages.items.iter().map(|m| TimelineItem {
                at: m.created_at,
                when: when(m.created_at),
                kind: "email",
                label: crate::web::subject_label(&m.subject),
                href: format!("/messages/{}", m.id),
                // Why it failed, was suppressed or is held, as a journey shows why it exited.
                status: Some(match &m.status_reason {
                    Some(reason) => format!("{}: {reason}", m.status),
                    None => m.status.to_string(),
                }),
                badge: status_badge(m.status.as_str()),
            }))
            .chain(deliveries.items.iter().map(|d| TimelineItem {
                at: d.created_at,
                when: when(d.created_at),
                kind: "webhook",
                label: d.request["url"].as_str().unwrap_or(&d.endpoint).to_owned(),
                href: format!("/deliveries/{}", d.id),
                status: Some(d.status.to_string()),
                badge: status_badge(d.status.as_str()),
            }))
            .chain(journeys.iter().map(|j| TimelineItem {
                at: j.entered_at,
                when: when(j.entered_at),
                kind: "journey",
                label: format!("Entered {}", campaign_names.get(&j.campaign_id).map_or("a campaign", String::as_str)),
                href: format!("/campaigns/{}", j.campaign_id),
                status: Some(match (&j.exit_reason, j.status) {
                    (Some(reason), _) => format!("exited: {reason}"),
                    (None, status) => status.to_string(),
                }),
                badge: match j.status {
                    herald_domain::JourneyStatus::Active => "warn",
                    herald_domain::JourneyStatus::Completed => "ok",
                    herald_domain::JourneyStatus::Exited => "",
                },
            }))
            .collect();
        timeline.sort_by_key(|t| std::cmp::Reverse(t.at));
        let actions = state
            .store
            .list_actions(ws)
            .await?
            .into_iter()
            .map(|a| SelectOption { value: a.id.to_string(), label: a.name, selected: false })
            .collect();
        let topics = (state.store.topic_standings(ws, id).await?.into_iter())
            .map(|(topic, choice)| TopicStanding {
                name: topic.name,
                subscribed: choice.as_ref().is_none_or(|c| c.subscribed),
                chosen: choice.map_or_else(String::new, |c| format!("{}, {}", c.source, when(c.updated_at))),
            })
            .collect();
        Ok(Self {
            l: Layout::new(
                session,
                "/contacts",
                contact.email.as_ref().map_or_else(|| contact.id.to_string(), |e| e.as_str().to_owned()),
            ),
            c: row(&contact),
            phone: contact.phone.as_ref().map(|p| p.as_str().to_owned()),
            updated: when(contact.updated_at),
            attributes: pretty(&serde_json::Value::Object(contact.attributes.clone())),
            suppressed,
            topics,
            timeline,
            more_events: events.next_cursor.is_some(),
            more_messages: messages.next_cursor.is_some(),
            more_deliveries: deliveries.next_cursor.is_some(),
            actions,
            ran: None,
            run_errors: FieldErrors::default(),
        })
    }
}

pub async fn show(
    State(state): State<ContactsState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<ContactQuery>,
) -> UiResult {
    let id: ContactId = parse_id(&id)?;
    let mut page = ContactPage::load(&state, &session, id).await?;
    page.l.notice = NoticeQuery { notice: q.notice }.message();
    // Only an action id is echoed back, and only as part of a link.
    page.ran = non_blank(&q.ran).and_then(|a| a.parse::<ActionId>().ok()).map(|a| a.to_string());
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "contact_delete.html")]
struct DeletePage {
    l: Layout,
    c: ContactRow,
}

/// Asks before deleting: the contact and their events go for good.
pub async fn confirm_delete(State(state): State<ContactsState>, session: Session, Path(id): Path<String>) -> UiResult {
    let id: ContactId = parse_id(&id)?;
    let contact = state.store.get_contact(session.workspace_id, id).await?;
    let page = DeletePage { l: Layout::new(&session, "/contacts", "Delete contact"), c: row(&contact) };
    Ok(render(&page))
}

/// Erases the contact and their events, as `DELETE /api/v1/contacts/{id}` does.
pub async fn delete(
    State(state): State<ContactsState>,
    Path(id): Path<String>,
    Form(session, Empty {}): Form<Empty>,
) -> UiResult {
    let id: ContactId = parse_id(&id)?;
    state.store.delete_contact(session.workspace_id, id).await?;
    tracing::info!(workspace = %session.workspace_id, contact = %id, "contact deleted in the web UI");
    Ok(see_other("/contacts", "contact_deleted"))
}

/// Unsubscribes the contact's address by hand, as `POST /api/v1/suppressions` does.
pub async fn unsubscribe(
    State(state): State<ContactsState>,
    Path(id): Path<String>,
    Form(session, Empty {}): Form<Empty>,
) -> UiResult {
    let id: ContactId = parse_id(&id)?;
    let contact = state.store.get_contact(session.workspace_id, id).await?;
    let Some(email) = contact.email else {
        return Err(UiError(ApiError::invalid("email", "this contact has no email address to unsubscribe")));
    };
    state
        .delivery
        .suppress(session.workspace_id, &email, "manual".to_owned(), Some("unsubscribed in the web UI".to_owned()))
        .await?;
    Ok(see_other(&format!("/contacts/{id}"), "unsubscribed"))
}

#[derive(Debug, Default, Deserialize)]
pub struct RunForm {
    #[serde(default)]
    action: String,
}

/// Runs a saved action for this contact, as `POST /api/v1/actions/{id}/run` does.
pub async fn run_action(
    State(state): State<ContactsState>,
    Path(id): Path<String>,
    Form(session, form): Form<RunForm>,
) -> UiResult {
    let id: ContactId = parse_id(&id)?;
    // The contact first: a missing one is a 404 page, and every later error is the action's.
    state.store.get_contact(session.workspace_id, id).await?;
    let action = form.action.trim();
    let result = if action.is_empty() {
        Err(ApiError::invalid("action", "choose an action to run"))
    } else {
        state.delivery.run_action(session.workspace_id, action, id).await
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/contacts/{id}?notice=action_queued&ran={action}")).into_response()),
        Err(mut e) => {
            // A missing action, or its request (`url`, `body`) not rendering for this contact:
            // shown next to the action picker.
            if e.field.as_deref() != Some("action") {
                e.message = format!("The action cannot run for this contact: {}", e.message);
                e.field = Some("action".to_owned());
            }
            let mut page = ContactPage::load(&state, &session, id).await?;
            page.run_errors = FieldErrors::from_api(e, &["action"]);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
    }
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
