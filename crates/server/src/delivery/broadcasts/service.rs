//! The broadcast use cases the API calls: check a draft's fields, start it (pinning its
//! template's version), preview it for a contact, send a test, and read its progress and
//! numbers.

use herald_campaign::SharedEmail;
use herald_domain::{BroadcastId, ContactId, SegmentId, TemplateKind, TopicId, WorkspaceId};
use herald_store::broadcast::{Audience, Broadcast, BroadcastDraft, BroadcastStart, Progress};
use herald_store::email::{ActivityScope, EmailCounts, EmailNumbers, Grouping};
use herald_store::{StoreError, segment::SegmentStatus};
use serde_json::Map;

use super::{Content, Schedule, Started};
use crate::delivery::email::EmailState;
use crate::delivery::email::send::{SendBody, send_email, sender};
use crate::templates::TemplatesState;
use crate::templates::service::{RenderedEmail, as_sent, invalid_template, latest, of_kind, render, variables};
use crate::web::error::ApiError;

/// A broadcast as the API reads it: name, audience kind and id, content and rate.
#[derive(Debug, Clone)]
pub struct Fields {
    pub name: String,
    pub audience: String,
    pub audience_id: Option<String>,
    pub content: Content,
    pub rate_per_hour: Option<i64>,
}

/// When a broadcast starts: now, at a time, or at a local time.
#[derive(Debug, Clone)]
pub enum When {
    Now,
    At(herald_domain::Timestamp),
    Local { date: String, time: String, timezone: String },
}

fn templates(state: &EmailState) -> TemplatesState {
    TemplatesState { store: state.store.clone(), clock: state.clock.clone() }
}

/// Checks a draft's fields (each refusal names its field) and returns it as stored.
pub async fn check(state: &EmailState, workspace: WorkspaceId, fields: Fields) -> Result<BroadcastDraft, ApiError> {
    let name = fields.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "give a name of 1 to 200 characters"));
    }
    let audience = audience(state, workspace, &fields.audience, fields.audience_id.as_deref()).await?;
    let rate_per_hour = match fields.rate_per_hour {
        None => None,
        Some(rate) if rate > 0 => {
            Some(u32::try_from(rate).map_err(|_| ApiError::invalid("rate_per_hour", "too large"))?)
        }
        Some(_) => return Err(ApiError::invalid("rate_per_hour", "must be a positive number of messages per hour")),
    };
    let content = fields.content;
    sender(state, workspace, &content.from).await?;
    if let Some(reply_to) = &content.reply_to {
        herald_campaign::compile::parse_mailbox(reply_to).map_err(|e| ApiError::invalid("reply_to", e))?;
    }
    if let Some(topic) = content.topic {
        let known = state.store.topics_by_ids(workspace, &[topic]).await?;
        if !known.iter().any(|t| t.id == topic && t.deleted_at.is_none()) {
            return Err(ApiError::invalid("topic", format!("no topic {topic} in this workspace")));
        }
    }
    if content.goal.as_deref().is_some_and(|g| g.trim().is_empty()) {
        return Err(ApiError::invalid("goal", "name the event, or leave the goal out"));
    }
    email_of(state, workspace, &content).await?;
    Ok(BroadcastDraft { name, content: serde_json::to_value(&content).unwrap_or_default(), audience, rate_per_hour })
}

/// The audience named by `kind` and `id`, which must exist in the workspace.
async fn audience(
    state: &EmailState,
    workspace: WorkspaceId,
    kind: &str,
    id: Option<&str>,
) -> Result<Audience, ApiError> {
    let id_of = || id.ok_or_else(|| ApiError::invalid("audience.id", format!("a {kind} audience names its {kind}")));
    match kind {
        "segment" => {
            let segment: SegmentId = id_of()?.parse().map_err(|e| ApiError::invalid("audience.id", e))?;
            match state.store.get_segment(workspace, segment).await {
                Ok(_) => Ok(Audience::Segment(segment)),
                Err(StoreError::NotFound { .. }) => {
                    Err(ApiError::invalid("audience.id", format!("no segment {segment} in this workspace")))
                }
                Err(e) => Err(e.into()),
            }
        }
        "topic" => {
            let topic: TopicId = id_of()?.parse().map_err(|e| ApiError::invalid("audience.id", e))?;
            let known = state.store.topics_by_ids(workspace, &[topic]).await?;
            if known.iter().any(|t| t.id == topic && t.deleted_at.is_none()) {
                Ok(Audience::Topic(topic))
            } else {
                Err(ApiError::invalid("audience.id", format!("no topic {topic} in this workspace")))
            }
        }
        "everyone" if id.is_none() => Ok(Audience::Everyone),
        "everyone" => Err(ApiError::invalid("audience.id", "everyone names no id")),
        _ => Err(ApiError::invalid("audience.kind", "must be segment, topic or everyone")),
    }
}

/// The sources the content sends (its template's latest version inside its layout, or the
/// inline parts inside the layout), checked to compile; with the template's version.
async fn email_of(
    state: &EmailState,
    workspace: WorkspaceId,
    content: &Content,
) -> Result<(SharedEmail, Option<u32>), ApiError> {
    let templates = templates(state);
    if let Some(id) = content.template {
        if content.subject.is_some() || content.html.is_some() || content.text.is_some() {
            return Err(ApiError::invalid("template", "a template brings its subject, html and text; leave them out"));
        }
        let template = of_kind(&templates, workspace, TemplateKind::Template, id)
            .await
            .map_err(|_| ApiError::invalid("template", format!("no template {id} in this workspace")))?;
        return Ok((as_sent(&templates, &template).await?, Some(template.version)));
    }
    let subject = content.subject.clone().filter(|s| !s.trim().is_empty());
    let html = content.html.clone().filter(|h| !h.trim().is_empty());
    let (Some(subject), Some(html)) = (subject, html) else {
        let field = if content.subject.as_deref().is_none_or(|s| s.trim().is_empty()) { "subject" } else { "html" };
        return Err(ApiError::invalid(field, "give a template, or a subject and html"));
    };
    for (field, source) in [("subject", Some(&subject)), ("html", Some(&html)), ("text", content.text.as_ref())] {
        if let Some(source) = source {
            herald_template::Template::compile(source).map_err(|e| invalid_template(field, e))?;
        }
    }
    let email = match content.layout {
        None => SharedEmail { subject, html, text: content.text.clone() },
        Some(id) => {
            let layout = latest(&templates, workspace, id)
                .await
                .ok()
                .filter(|l| l.kind == TemplateKind::Layout)
                .ok_or_else(|| ApiError::invalid("layout", format!("no layout {id} in this workspace")))?;
            let mut inline = layout.clone();
            inline.kind = TemplateKind::Template;
            inline.content =
                herald_domain::TemplateContent { subject, html, text: content.text.clone(), layout: Some(id) };
            crate::templates::shared_email(&inline, Some(&layout))
        }
    };
    Ok((email, None))
}

/// Starts a draft: checks the audience is not empty and the time not past, pins the
/// template's version and queues the first page.
pub async fn start(
    state: &EmailState,
    workspace: WorkspaceId,
    id: BroadcastId,
    when: When,
) -> Result<Broadcast, ApiError> {
    let now = state.clock.now();
    let broadcast = state.store.get_broadcast(workspace, id).await?;
    let mut content = Content::of(&broadcast).map_err(|e| ApiError::invalid("content", e))?;
    let (schedule, at) = match when {
        When::Now => (Schedule::At { at: now }, now),
        When::At(at) if at < now => return Err(ApiError::invalid("at", "is in the past")),
        When::At(at) => (Schedule::At { at }, at),
        When::Local { date, time, timezone } => {
            let (hour, minute) = parse_time(&time)?;
            let own = herald_campaign::engine::local_instant(&date, hour, minute, &timezone).ok_or_else(|| {
                ApiError::invalid("local", "give a date (YYYY-MM-DD), a time (HH:MM) and an IANA time zone")
            })?;
            if own < now {
                return Err(ApiError::invalid("local", "is in the past in the broadcast's time zone"));
            }
            if broadcast.rate_per_hour.is_some() {
                return Err(ApiError::invalid(
                    "local",
                    "a broadcast with a rate limit is sent from one time; give `at` or no rate limit",
                ));
            }
            // Contacts in zones where the time comes earliest are written out from now on.
            (Schedule::Local { date, hour, minute, timezone }, now)
        }
    };
    if let Audience::Segment(segment) = broadcast.audience {
        match state.store.get_segment(workspace, segment).await {
            Ok(s) if s.status == SegmentStatus::Ready && s.members == 0 => {
                return Err(ApiError::invalid("audience.id", "the segment has no members"));
            }
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                return Err(ApiError::invalid("audience.id", format!("the segment {segment} was deleted")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let audience_size = state.store.audience_size(workspace, broadcast.audience).await?;
    if audience_size == 0 {
        return Err(ApiError::invalid("audience", "the audience has no contact with an email address"));
    }
    let (email, template_version) = email_of(state, workspace, &content).await?;
    content.started =
        Some(Started { schedule, template_version, subject: email.subject, html: email.html, text: email.text });
    let start = BroadcastStart { content: serde_json::to_value(&content).unwrap_or_default(), at, audience_size };
    Ok(state.store.start_broadcast(workspace, id, &start, now).await?)
}

/// `HH:MM` as hour and minute.
fn parse_time(time: &str) -> Result<(i8, i8), ApiError> {
    let invalid = || ApiError::invalid("local.time", "give the time as HH:MM");
    let (hour, minute) = time.split_once(':').ok_or_else(invalid)?;
    let hour: i8 = hour.parse().map_err(|_| invalid())?;
    let minute: i8 = minute.parse().map_err(|_| invalid())?;
    if !(0..24).contains(&hour) || !(0..60).contains(&minute) {
        return Err(invalid());
    }
    Ok((hour, minute))
}

/// The broadcast rendered for `contact` (its pinned sources once started).
pub async fn preview(
    state: &EmailState,
    workspace: WorkspaceId,
    id: BroadcastId,
    contact: ContactId,
) -> Result<RenderedEmail, ApiError> {
    let broadcast = state.store.get_broadcast(workspace, id).await?;
    let content = Content::of(&broadcast).map_err(|e| ApiError::invalid("content", e))?;
    let email = match content.sent_email() {
        Some(email) => email,
        None => email_of(state, workspace, &content).await?.0,
    };
    let contact = match state.store.get_contact(workspace, contact).await {
        Ok(contact) => contact,
        Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::invalid("contact_id", "no such contact in this workspace"));
        }
        Err(e) => return Err(e.into()),
    };
    let unsubscribe_url = state.email.unsubscribe_url(workspace, contact.id, content.topic).await?;
    render(&email, &variables(&contact, Map::new(), &unsubscribe_url), state.clock.now())
}

/// Sends the broadcast's email to each of `to` as a transactional test (not a recipient,
/// not counted in its numbers); returns the messages' ids.
pub async fn test_send(
    state: &EmailState,
    workspace: WorkspaceId,
    id: BroadcastId,
    to: &[String],
) -> Result<Vec<herald_domain::MessageId>, ApiError> {
    if to.is_empty() || to.len() > 10 {
        return Err(ApiError::invalid("to", "give 1 to 10 addresses"));
    }
    let broadcast = state.store.get_broadcast(workspace, id).await?;
    let content = Content::of(&broadcast).map_err(|e| ApiError::invalid("content", e))?;
    let email = match content.sent_email() {
        Some(email) => email,
        None => email_of(state, workspace, &content).await?.0,
    };
    let mut sent = Vec::with_capacity(to.len());
    for address in to {
        let body: SendBody = serde_json::from_value(serde_json::json!({
            "to": address, "from": content.from, "reply_to": content.reply_to,
            "subject": format!("[Test] {}", email.subject), "html": email.html, "text": email.text,
        }))
        .map_err(|e| ApiError::invalid("to", e))?;
        sent.push(send_email(state, workspace, None, body, "").await?.id);
    }
    Ok(sent)
}

/// The recipients' standing and the broadcast's email numbers, conversions against its goal.
pub async fn numbers(state: &EmailState, broadcast: &Broadcast) -> Result<(Progress, EmailNumbers), ApiError> {
    let workspace = broadcast.workspace_id;
    let progress = state.store.broadcast_progress(workspace, broadcast.id).await?;
    let scope = ActivityScope { broadcast: Some(broadcast.id), ..ActivityScope::default() };
    let totals = state.store.activity_counts(workspace, &scope, None, Grouping::Total).await?;
    let goal = Content::of(broadcast).ok().and_then(|c| c.goal);
    let converted = match goal {
        Some(goal) => Some(state.store.broadcast_conversions(workspace, broadcast.id, &goal).await?),
        None => None,
    };
    Ok((progress, EmailNumbers::new(EmailCounts::of(&totals), converted)))
}
