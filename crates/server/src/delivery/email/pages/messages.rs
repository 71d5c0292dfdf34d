//! Messages: every email campaign steps made, newest first, filtered by status, campaign and
//! contact; one message as its recipient sees it (the HTML in a sandboxed frame), with its
//! text part, headers, delivery state, numbers and activities.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use herald_domain::{CampaignId, MessageId, MessageStatus};
use herald_store::campaign::MessageFilter;
use herald_store::email::ActivityScope;
use serde::Deserialize;

use crate::delivery::email::{EmailState, service};
use crate::web::error::ApiError;
use crate::web::numbers::{Figure, figures};
use crate::web::{
    EMAIL_PREVIEW_CSP, Empty, Form, Layout, NoticeQuery, SelectOption, Session, UiError, UiResult, cursor, list_url,
    non_blank, parse_id, render, status_badge, when,
};

pub struct MessageRow {
    pub id: String,
    pub to: String,
    pub contact_id: String,
    pub subject: String,
    pub status: String,
    pub badge: &'static str,
    pub created: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct MessageQuery {
    status: Option<String>,
    campaign: Option<String>,
    contact: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct MessagesPage {
    l: Layout,
    rows: Vec<MessageRow>,
    statuses: Vec<SelectOption>,
    campaigns: Vec<SelectOption>,
    contact: String,
    contact_error: Option<String>,
    filtered: bool,
    next: Option<String>,
}

pub async fn list(State(state): State<EmailState>, session: Session, Query(q): Query<MessageQuery>) -> UiResult {
    let ws = session.workspace_id;
    let status = non_blank(&q.status)
        .map(str::parse::<MessageStatus>)
        .transpose()
        .map_err(|e| UiError(ApiError::invalid("status", e)))?;
    let campaign = non_blank(&q.campaign)
        .map(str::parse::<CampaignId>)
        .transpose()
        .map_err(|e| UiError(ApiError::invalid("campaign", e)))?;
    let (contact, contact_error) = match non_blank(&q.contact) {
        Some(raw) => match crate::web::contact_filter(&state.store, session.workspace_id, raw).await {
            Ok(id) => (id, None),
            Err(e) => (None, Some(e)),
        },
        None => (None, None),
    };
    let after = cursor::<MessageId>(&q.cursor)?;
    let (rows, next) = if contact_error.is_some() {
        (Vec::new(), None)
    } else {
        let filter = MessageFilter { contact, campaign, status };
        let page = state.store.list_messages(ws, &filter, herald_domain::PageRequest { after, limit: 50 }).await?;
        let rows = page
            .items
            .iter()
            .map(|m| MessageRow {
                id: m.id.to_string(),
                to: m.to.clone(),
                contact_id: m.contact_id.to_string(),
                subject: crate::web::subject_label(&m.subject),
                status: m.status.to_string(),
                badge: status_badge(m.status.as_str()),
                created: when(m.created_at),
            })
            .collect();
        let filters =
            [("status", q.status.as_deref()), ("campaign", q.campaign.as_deref()), ("contact", q.contact.as_deref())];
        (rows, page.next_cursor.map(|c| list_url("/messages", &filters, Some(c.as_str()))))
    };
    let page = MessagesPage {
        l: Layout::new(&session, "/messages", "Messages"),
        rows,
        statuses: SelectOption::statuses(
            &MessageStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            status.map(MessageStatus::as_str),
        ),
        campaigns: SelectOption::campaigns(&state.store, ws, campaign).await?,
        contact: non_blank(&q.contact).unwrap_or_default().to_owned(),
        filtered: status.is_some() || campaign.is_some() || non_blank(&q.contact).is_some(),
        contact_error,
        next,
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    l: Layout,
    /// `None` for a transactional send.
    campaign_id: Option<String>,
    contact_id: String,
    step: String,
    to: String,
    from: String,
    reply_to: Option<String>,
    subject: String,
    status: String,
    badge: &'static str,
    reason: Option<String>,
    transport: String,
    reply: Option<String>,
    message_id: String,
    attempts: u32,
    created: String,
    sent: Option<String>,
    text: String,
    html: String,
    headers: Vec<(String, String)>,
    warnings: Vec<String>,
    /// What happened to it, in numbers.
    email: Vec<Figure>,
    activities: Vec<ActivityLine>,
    id: String,
    /// Sent, failed or suppressed, and rendered: it can be sent again (as a copy).
    can_resend: bool,
}

/// One recorded activity of a message.
pub struct ActivityLine {
    pub kind: String,
    /// `hard` or `soft` for a bounce.
    pub bounce: Option<String>,
    pub when: String,
    pub source: String,
    pub url: Option<String>,
    pub machine: bool,
    pub reason: Option<String>,
}

/// Activities a message's page lists (a message opened more often is rare).
const ACTIVITIES_LISTED: u32 = 200;

pub async fn show(
    State(state): State<EmailState>,
    session: Session,
    Path(id): Path<String>,
    Query(notice): Query<NoticeQuery>,
) -> UiResult {
    let id: MessageId = parse_id(&id)?;
    let m = state.store.get_message(session.workspace_id, id).await?;
    let scope = ActivityScope { message: Some(id), ..ActivityScope::default() };
    let numbers = state.store.email_numbers(session.workspace_id, &scope).await?;
    let activities = state.store.message_activities(session.workspace_id, id, ACTIVITIES_LISTED).await?;
    let page = MessagePage {
        l: Layout::new(&session, "/messages", crate::web::subject_label(&m.subject)).with_notice(notice.message()),
        id: m.id.to_string(),
        can_resend: !matches!(m.status, MessageStatus::Queued | MessageStatus::Held) && m.was_rendered(),
        campaign_id: m.campaign_id.map(|c| c.to_string()),
        contact_id: m.contact_id.to_string(),
        step: m.step,
        to: m.to,
        from: m.from,
        reply_to: m.reply_to,
        subject: m.subject,
        status: m.status.to_string(),
        badge: status_badge(m.status.as_str()),
        reason: m.status_reason,
        transport: m.transport,
        reply: m.reply,
        message_id: m.internet_message_id,
        attempts: m.attempts,
        created: when(m.created_at),
        sent: m.sent_at.map(when),
        text: m.text,
        html: m.html,
        headers: m
            .headers
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                (name, value)
            })
            .collect(),
        warnings: m.warnings,
        email: figures(&numbers),
        activities: activities
            .into_iter()
            .map(|r| ActivityLine {
                kind: r.activity.kind.to_string(),
                bounce: r.activity.bounce.map(|b| b.to_string()),
                when: when(r.activity.occurred_at),
                source: r.activity.source,
                url: r.activity.url,
                machine: r.activity.machine,
                reason: r.activity.reason,
            })
            .collect(),
    };
    let mut response = render(&page);
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(EMAIL_PREVIEW_CSP));
    Ok(response)
}

/// Sends a message again as a copy; shows the copy.
pub async fn resend(
    State(state): State<EmailState>,
    Path(id): Path<String>,
    Form(session, Empty {}): Form<Empty>,
) -> UiResult {
    let id: MessageId = parse_id(&id)?;
    let copy = service::resend(&state, session.workspace_id, id).await?;
    Ok(crate::web::see_other(&format!("/messages/{}", copy.id), "message_resent"))
}
