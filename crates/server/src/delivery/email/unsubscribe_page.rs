//! The preference page behind every campaign email's unsubscribe link (`{{ unsubscribe_url }}`
//! and the `List-Unsubscribe` header). No login: the signed token in the path is the key, and
//! it cannot be edited to reach someone else or another topic.
//!
//! GET shows the workspace's topics with the contact's standing in each and changes nothing
//! (link scanners open URLs). POST acts: from the page, it leaves or re-joins one topic, or
//! leaves everything (the suppression list's `unsubscribed`, which stops all mail, transactional
//! too); from a mail client's one-click button (RFC 8058, body `List-Unsubscribe=One-Click`),
//! it leaves the message's topic, or everything when the message had none (or the topic was
//! deleted since). Links sent before
//! topics existed carry no topic: their page shows every topic, their one-click leaves
//! everything, and their page's old button (a POST with no action) still leaves everything.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use herald_domain::{
    Activity, ActivityKind, ConsentSource, ContactId, MessageStatus, PageRequest, Suppression, Timestamp, TopicId,
    WorkspaceId,
};
use herald_store::campaign::MessageFilter;
use herald_store::{StoreError, StoreResult};
use serde::Deserialize;

use crate::audiences::topics::service::{self as topics, Standing};
use crate::delivery::email::EmailState;
use crate::delivery::webhooks::campaign_events::unsubscribe_jobs;
use crate::web::error::ApiError;
use crate::web::render;
use herald_domain::signed::unsubscribe::Claim;

/// The reason recorded on the suppression list.
const REASON: &str = "unsubscribed";

/// A small page of its own (no app frame: the person reading it has no account).
pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}\
         button{{font-size:1rem;padding:.6rem 1.2rem;border-radius:.4rem;border:1px solid #888;background:#f4f4f4;cursor:pointer}}</style>\
         </head><body><h1>{title}</h1>{body}</body></html>"
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn not_found() -> Response {
    page(StatusCode::NOT_FOUND, "Link not valid", "<p>This unsubscribe link is not valid.</p>")
}

/// Checks the token against its workspace's secret.
async fn claim(state: &EmailState, token: &str) -> Result<Option<Claim>, ApiError> {
    let Some(claim) = Claim::parse(token) else { return Ok(None) };
    let secret = match state.email.secret(claim.workspace).await {
        Ok(secret) => secret,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(claim.verify(&secret).then_some(claim))
}

pub struct TopicRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub subscribed: bool,
    /// The topic of the message the link came in.
    pub current: bool,
}

#[derive(Template)]
#[template(path = "preferences.html")]
struct PreferencePage {
    notice: Option<&'static str>,
    suppressed: bool,
    /// The name of the message's topic.
    current: Option<String>,
    topics: Vec<TopicRow>,
}

/// The page as the contact stands now, with `notice` on top.
async fn preferences(state: &EmailState, claim: &Claim, notice: Option<&'static str>) -> Result<Response, ApiError> {
    let contact = match state.store.get_contact(claim.workspace, claim.contact).await {
        Ok(contact) => contact,
        // Deleted since: nothing is sent to them, and nothing about them is left to show.
        Err(StoreError::NotFound { .. }) => {
            return Ok(page(StatusCode::OK, "Unsubscribed", "<p>You will not receive these emails any more.</p>"));
        }
        Err(e) => return Err(e.into()),
    };
    let suppressed = match &contact.email {
        Some(email) => state.store.suppression(claim.workspace, &email.as_str().to_lowercase()).await?.is_some(),
        None => true,
    };
    let standings = topics::standings(&state.store, claim.workspace, contact.id).await?;
    let current = standings.iter().find(|s| Some(s.topic.id) == claim.topic).map(|s| s.topic.name.clone());
    let row = |s: Standing| TopicRow {
        id: s.topic.id.to_string(),
        current: Some(s.topic.id) == claim.topic,
        name: s.topic.name,
        description: s.topic.description,
        subscribed: s.subscribed,
    };
    let page = PreferencePage { notice, suppressed, current, topics: standings.into_iter().map(row).collect() };
    let mut response = render(&page);
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The preference page.
pub async fn show(State(state): State<EmailState>, Path(token): Path<String>) -> Result<Response, ApiError> {
    match claim(&state, &token).await? {
        Some(claim) => preferences(&state, &claim, None).await,
        None => Ok(not_found()),
    }
}

/// What the page's forms post.
#[derive(Debug, Default, Deserialize)]
struct Choice {
    /// `leave` or `join` (with `topic`), or `everything`; absent on the page links sent before
    /// topics existed showed, whose one button left everything.
    action: Option<String>,
    topic: Option<String>,
}

/// Acts on the page's forms and on one-click unsubscribes.
pub async fn unsubscribe(
    State(state): State<EmailState>,
    Path(token): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    let Some(claim) = claim(&state, &token).await? else { return Ok(not_found()) };
    if body.contains("List-Unsubscribe=One-Click") {
        // The message's topic when it still exists; everything otherwise.
        if let Some(topic) = claim.topic
            && topics::get(&state.store, claim.workspace, topic).await.is_ok()
        {
            leave_topic(&state, &claim, topic, ConsentSource::OneClick).await?;
            return Ok(page(StatusCode::OK, "Unsubscribed", "<p>You will not receive these emails any more.</p>"));
        }
        leave_everything(&state, &claim, "one-click (List-Unsubscribe-Post)").await?;
        return Ok(page(StatusCode::OK, "Unsubscribed", "<p>You will not receive these emails any more.</p>"));
    }
    let Ok(choice) = serde_urlencoded::from_str::<Choice>(&body) else { return Ok(bad_choice()) };
    let topic = match choice.topic.as_deref().map(str::parse::<TopicId>) {
        Some(Ok(topic)) => Some(topic),
        Some(Err(_)) => return Ok(bad_choice()),
        None => None,
    };
    let notice = match (choice.action.as_deref(), topic) {
        (None | Some("everything"), None) => {
            leave_everything(&state, &claim, "unsubscribe page").await?;
            "You are unsubscribed from all of our email."
        }
        (Some(action @ ("leave" | "join")), Some(topic)) => {
            if topics::get(&state.store, claim.workspace, topic).await.is_err() {
                return Ok(bad_choice());
            }
            if action == "leave" {
                leave_topic(&state, &claim, topic, ConsentSource::PreferencePage).await?;
                "Unsubscribed from that topic. You still receive the others."
            } else {
                choose(&state, &claim, topic, true, ConsentSource::PreferencePage).await?;
                "Subscribed again."
            }
        }
        _ => return Ok(bad_choice()),
    };
    preferences(&state, &claim, Some(notice)).await
}

fn bad_choice() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Not understood",
        "<p>That choice is not one this page offers. Go back and try again.</p>",
    )
}

/// Records the contact's choice about `topic`; a contact deleted since is left alone.
async fn choose(
    state: &EmailState,
    claim: &Claim,
    topic: TopicId,
    subscribed: bool,
    source: ConsentSource,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    match topics::choose(&state.store, claim.workspace, claim.contact, &[(topic, subscribed)], source, "topic", now)
        .await
    {
        Err(e) if e.status == StatusCode::NOT_FOUND => Ok(()),
        other => other,
    }
}

/// Leaves one topic; when it is the topic of the message the link came in, the unsubscribe
/// also counts as that message's (its campaign's and step's numbers).
async fn leave_topic(state: &EmailState, claim: &Claim, topic: TopicId, source: ConsentSource) -> Result<(), ApiError> {
    choose(state, claim, topic, false, source).await?;
    if claim.topic == Some(topic) {
        let detail = format!("left topic {topic} ({source})");
        record_unsubscribe(state, claim.workspace, claim.contact, Some(topic), detail, state.clock.now()).await?;
    }
    tracing::info!(workspace = %claim.workspace, contact = %claim.contact, %topic, %source, "contact left a topic");
    Ok(())
}

/// Puts the contact's address on the suppression list as `unsubscribed`: no more mail at all.
async fn leave_everything(state: &EmailState, claim: &Claim, detail: &str) -> Result<(), ApiError> {
    let contact = match state.store.get_contact(claim.workspace, claim.contact).await {
        Ok(contact) => contact,
        // Deleted since: nothing will be sent to them anyway.
        Err(StoreError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let Some(email) = &contact.email else { return Ok(()) };
    let suppression = Suppression {
        email: email.as_str().to_owned(),
        contact_id: Some(contact.id),
        reason: REASON.into(),
        detail: Some(detail.into()),
        message_id: None,
        created_at: state.clock.now(),
    };
    let hooks = unsubscribe_jobs(&state.store, claim.workspace, &suppression, state.clock.now()).await?;
    let stored = state.store.add_suppression(claim.workspace, &suppression, &hooks).await?;
    if stored == suppression {
        let at = suppression.created_at;
        record_unsubscribe(state, claim.workspace, contact.id, None, detail.to_owned(), at).await?;
    }
    tracing::info!(workspace = %claim.workspace, contact = %contact.id, detail, "contact unsubscribed");
    Ok(())
}

/// The unsubscribe as an activity of the last message handed over to the contact (of
/// `topic`, when it is about one): the one whose link or header was most likely used, so it
/// counts in that message's campaign and step and becomes the contact's `email_unsubscribed`
/// event.
async fn record_unsubscribe(
    state: &EmailState,
    workspace: WorkspaceId,
    contact: ContactId,
    topic: Option<TopicId>,
    detail: String,
    at: Timestamp,
) -> StoreResult<()> {
    let filter = MessageFilter { contact: Some(contact), ..MessageFilter::default() };
    let recent = state.store.list_messages(workspace, &filter, PageRequest::first(20)).await?;
    let handed_over = [MessageStatus::Sent, MessageStatus::Delivered];
    let about = |topic_of: Option<TopicId>| topic.is_none() || topic_of == topic;
    if let Some(message) = recent.items.iter().find(|m| handed_over.contains(&m.status) && about(m.topic)) {
        let mut activity = Activity::new(message.id, ActivityKind::Unsubscribed, "unsubscribe", at);
        activity.reason = Some(detail);
        activity.key = Some(format!("unsubscribe:{contact}:{}", at.unix_millis()));
        state.email.record_activity(workspace, activity).await?;
    }
    Ok(())
}
