//! Broadcasts: one email to every contact of an audience (a segment, a topic's subscribers,
//! everyone subscribed), each contact at most once, sent now, at a time, or at a local time
//! in each contact's zone, within a rate limit, and paused, resumed or cancelled by hand.
//!
//! `service` holds the use cases (check a draft, start, preview, test send, numbers), `api`
//! the JSON handlers, `pages` the screen. The fan-out job here writes the audience out a page at a time: one
//! transaction per page, fenced by the job's lease, holds the recipients (whose primary key
//! makes a repeated page harmless), their messages and delivery jobs, and the next page's job.
//! Delivery is the message delivery job's, with its one documented SMTP window. ADR 0019.

pub mod api;
pub mod pages;
pub mod service;

use std::time::Duration;

use herald_campaign::SharedEmail;
use herald_campaign::compile::parse_mailbox;
use herald_domain::job::{JobOutcome, LeasedJob};
use herald_domain::{Contact, Message, MessageId, MessageStatus, PageRequest, Timestamp, TopicId, Tracking};
use herald_store::broadcast::{Broadcast, FanOutPage, FanOutPayload, Recipient};
use herald_store::email::from_domain;
use herald_store::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

use crate::delivery::email::EmailState;
use crate::delivery::email::transport::Transport;
use crate::templates::service::{render, variables};

/// Contacts per fan-out page: a page's transaction stays short (SQLite has one writer).
const PAGE: u32 = 200;

/// How far ahead of the due deliveries a rate-limited fan-out writes: a few minutes of sends,
/// so the queue (and what a pause must hold) stays small.
pub const HORIZON: Duration = Duration::from_secs(5 * 60);

/// What a broadcast sends and how: its document, stored with it (the store keeps it opaque).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// A saved template (`tpl_…`), sent inside its layout; or `subject` and `html`.
    pub template: Option<herald_domain::TemplateId>,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    /// A layout around inline `html` (a template brings its own).
    pub layout: Option<herald_domain::TemplateId>,
    pub from: String,
    pub reply_to: Option<String>,
    /// The subscription topic; `None` for transactional mail.
    pub topic: Option<TopicId>,
    /// An event that counts as converting when a recipient performs it after the send.
    pub goal: Option<String>,
    pub tracking: Tracking,
    /// The schedule and the sources as sent, fixed when the broadcast starts.
    pub started: Option<Started>,
}

/// What a start fixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Started {
    pub schedule: Schedule,
    /// The template's version, when sent from a saved template.
    pub template_version: Option<u32>,
    pub subject: String,
    pub html: String,
    pub text: Option<String>,
}

/// When recipients are sent their message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// All from `at` (the start, or a time given).
    At { at: Timestamp },
    /// At `time` on `date` in each contact's zone (its `timezone` attribute), or in
    /// `timezone` for contacts without one.
    Local { date: String, hour: i8, minute: i8, timezone: String },
}

impl Content {
    /// The content as stored.
    pub fn of(broadcast: &Broadcast) -> Result<Self, serde_json::Error> {
        serde_json::from_value(broadcast.content.clone())
    }

    /// The sources as sent (after the start).
    pub fn sent_email(&self) -> Option<SharedEmail> {
        self.started.as_ref().map(|s| SharedEmail {
            subject: s.subject.clone(),
            html: s.html.clone(),
            text: s.text.clone(),
        })
    }
}

impl Schedule {
    /// When `contact`'s message may go at the earliest.
    pub fn due_for(&self, contact: &Contact) -> Option<Timestamp> {
        match self {
            Schedule::At { at } => Some(*at),
            Schedule::Local { date, hour, minute, timezone } => {
                let own = contact.attributes.get("timezone").and_then(serde_json::Value::as_str);
                own.and_then(|zone| herald_campaign::engine::local_instant(date, *hour, *minute, zone))
                    .or_else(|| herald_campaign::engine::local_instant(date, *hour, *minute, timezone))
            }
        }
    }
}

/// The spacing between deliveries under a rate limit of `rate` messages per hour.
pub fn spacing(rate: Option<u32>) -> Option<Duration> {
    rate.filter(|r| *r > 0).map(|r| Duration::from_secs_f64(3600.0 / f64::from(r)))
}

/// The message `contact` is sent by the broadcast, rendered now, and whether it needs a
/// delivery job: suppressed addresses are recorded as suppressed, the outbox sends at once,
/// and a render that fails is a failed message.
pub async fn message_for(
    state: &EmailState,
    content: &Content,
    email: &SharedEmail,
    contact: &Contact,
    suppressed: Option<&str>,
    outbox: bool,
    now: Timestamp,
) -> StoreResult<(Message, bool)> {
    let workspace = contact.workspace_id;
    let id = MessageId::from_uuid(herald_store::new_uuid(now));
    let unsubscribe_url = state.email.unsubscribe_url(workspace, contact.id, content.topic).await?;
    let from = parse_mailbox(&content.from).map(|m| m.address.as_str().to_owned()).unwrap_or_default();
    let (status, reason, rendered) =
        match (suppressed, render(email, &variables(contact, Default::default(), &unsubscribe_url), now)) {
            (Some(why), rendered) => {
                (MessageStatus::Suppressed, Some(format!("the address is suppressed ({why})")), rendered.ok())
            }
            (None, Ok(rendered)) if outbox => (MessageStatus::Sent, None, Some(rendered)),
            (None, Ok(rendered)) => (MessageStatus::Queued, None, Some(rendered)),
            (None, Err(e)) => (MessageStatus::Failed, Some(e.message), None),
        };
    let rendered = rendered.unwrap_or_else(|| crate::templates::service::RenderedEmail {
        subject: email.subject.clone(),
        html: String::new(),
        text: String::new(),
        warnings: Vec::new(),
    });
    let message = Message {
        id,
        workspace_id: workspace,
        campaign_id: None,
        journey_id: None,
        step: String::new(),
        contact_id: contact.id,
        status,
        status_reason: reason,
        to: contact.email.as_ref().map(|e| e.as_str().to_owned()).unwrap_or_default(),
        from: content.from.clone(),
        reply_to: content.reply_to.clone(),
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        headers: crate::delivery::email::list_headers(&unsubscribe_url, &from),
        warnings: rendered.warnings,
        transport: if outbox { "outbox" } else { "smtp" }.into(),
        internet_message_id: format!("{id}@{}", from_domain(&from)),
        attempts: 0,
        reply: None,
        bounce: None,
        tracking: content.tracking,
        topic: content.topic,
        created_at: now,
        sent_at: (status == MessageStatus::Sent).then_some(now),
    };
    Ok((message, status == MessageStatus::Queued))
}

/// Runs one fan-out job: reads the next page of the audience, renders its messages and
/// commits them with the next page's job. Returns the outcome's metric label.
pub async fn fan_out(state: &EmailState, leased: &LeasedJob) -> Result<&'static str, StoreError> {
    let workspace = leased.job.workspace_id;
    let now = state.clock.now();
    let finish = |outcome: JobOutcome| async move {
        state.store.finish_job(workspace, &leased.lease, &outcome, now).await.map(|()| "done")
    };
    let Ok(FanOutPayload { broadcast: id }) = serde_json::from_value(leased.job.payload.clone()) else {
        return finish(JobOutcome::Dead { error: "the job's payload names no broadcast".into() }).await;
    };
    let broadcast = match state.store.get_broadcast(workspace, id).await {
        Ok(broadcast) if broadcast.state.fans_out() => broadcast,
        // Deleted, paused (a resume queues the next page), cancelled or finished.
        Ok(_) | Err(StoreError::NotFound { .. }) => return finish(JobOutcome::Done).await,
        Err(e) => return Err(e),
    };
    let (content, email, schedule) = match Content::of(&broadcast) {
        Ok(content) => match (content.sent_email(), content.started.clone()) {
            (Some(email), Some(started)) => (content, email, started.schedule),
            _ => return finish(JobOutcome::Dead { error: "the broadcast was not started".into() }).await,
        },
        Err(e) => return finish(JobOutcome::Dead { error: format!("the broadcast cannot be read: {e}") }).await,
    };
    let outbox = matches!(state.email.transport(workspace).await?, Transport::Outbox);
    let page = state
        .store
        .audience_page(workspace, broadcast.audience, PageRequest { after: broadcast.cursor, limit: PAGE })
        .await?;
    let mut recipients = Vec::with_capacity(page.items.len());
    for member in &page.items {
        let (message, deliver) =
            message_for(state, &content, &email, &member.contact, member.suppressed.as_deref(), outbox, now).await?;
        let not_before = schedule.due_for(&member.contact).unwrap_or(now).max(now);
        recipients.push(Recipient { message, not_before, deliver });
    }
    let page = FanOutPage {
        broadcast: id,
        after: broadcast.cursor,
        last: page.items.last().map(|m| m.contact.id),
        done: page.next_cursor.is_none(),
        recipients,
        spacing: spacing(broadcast.rate_per_hour),
        horizon: HORIZON,
    };
    let result = state.store.fan_out_page(workspace, &leased.lease, &page, now).await?;
    metrics::counter!("herald_broadcast_recipients_total").increment(result.added);
    Ok(if result.written { "done" } else { "skipped" })
}
