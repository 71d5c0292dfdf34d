//! The unsubscribe link of every campaign email (`{{ unsubscribe_url }}` and the
//! `List-Unsubscribe` header). GET shows a small page with a confirm button, so link scanners
//! that open URLs unsubscribe nobody; POST unsubscribes: from that page, or straight from a
//! mail client's one-click button (RFC 8058, body `List-Unsubscribe=One-Click`). The token in
//! the path is signed, so it cannot be edited to unsubscribe someone else.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use herald_domain::{Activity, ActivityKind, MessageStatus, PageRequest, Suppression, WorkspaceId};
use herald_store::campaign::MessageFilter;
use herald_store::{StoreError, StoreResult};

use crate::delivery::email::EmailState;
use crate::delivery::email::unsubscribe::Claim;
use crate::delivery::webhooks::campaign_events::unsubscribe_jobs;
use crate::web::error::ApiError;

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

/// The confirmation page.
pub async fn show(State(state): State<EmailState>, Path(token): Path<String>) -> Result<Response, ApiError> {
    if claim(&state, &token).await?.is_none() {
        return Ok(not_found());
    }
    Ok(page(
        StatusCode::OK,
        "Unsubscribe",
        "<p>Stop receiving these emails?</p><form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>",
    ))
}

/// The unsubscribe as an activity of the last message handed over to the contact (the one whose
/// link or header was most likely used), so it counts in that message's campaign and step and
/// becomes the contact's `email_unsubscribed` event.
async fn record_unsubscribe(state: &EmailState, workspace: WorkspaceId, suppression: &Suppression) -> StoreResult<()> {
    let Some(contact) = suppression.contact_id else { return Ok(()) };
    let filter = MessageFilter { contact: Some(contact), ..MessageFilter::default() };
    let recent = state.store.list_messages(workspace, &filter, PageRequest::first(20)).await?;
    let handed_over = [MessageStatus::Sent, MessageStatus::Delivered];
    if let Some(message) = recent.items.iter().find(|m| handed_over.contains(&m.status)) {
        let mut activity = Activity::new(message.id, ActivityKind::Unsubscribed, "unsubscribe", suppression.created_at);
        activity.reason = suppression.detail.clone();
        activity.key = Some(format!("unsubscribe:{contact}:{}", suppression.created_at.unix_millis()));
        state.email.record_activity(workspace, activity).await?;
    }
    Ok(())
}

/// Unsubscribes: the page's button, or a mail client's one-click POST.
pub async fn unsubscribe(
    State(state): State<EmailState>,
    Path(token): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    let Some(claim) = claim(&state, &token).await? else { return Ok(not_found()) };
    match state.store.get_contact(claim.workspace, claim.contact).await {
        Ok(contact) => {
            if let Some(email) = &contact.email {
                let one_click = body.contains("List-Unsubscribe=One-Click");
                let suppression = Suppression {
                    email: email.as_str().to_owned(),
                    contact_id: Some(contact.id),
                    reason: REASON.into(),
                    detail: Some(
                        if one_click { "one-click (List-Unsubscribe-Post)" } else { "unsubscribe page" }.into(),
                    ),
                    message_id: None,
                    created_at: state.clock.now(),
                };
                let hooks = unsubscribe_jobs(&state.store, claim.workspace, &suppression, state.clock.now()).await?;
                let stored = state.store.add_suppression(claim.workspace, &suppression, &hooks).await?;
                if stored == suppression {
                    record_unsubscribe(&state, claim.workspace, &suppression).await?;
                }
                tracing::info!(workspace = %claim.workspace, contact = %contact.id, one_click, "contact unsubscribed");
            }
        }
        // Deleted since: nothing will be sent to them anyway.
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(page(StatusCode::OK, "Unsubscribed", "<p>You will not receive these emails any more.</p>"))
}
