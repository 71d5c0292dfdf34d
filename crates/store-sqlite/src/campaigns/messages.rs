//! Messages on SQLite: the emails a journey's steps render, written by the work commit,
//! read back by the message log.

use herald_domain::{
    BounceKind, CampaignId, ContactId, JourneyId, Message, MessageId, Page, PageRequest, Timestamp, TopicId, Tracking,
    WorkspaceId,
};
use herald_store::campaign::MessageFilter;
use herald_store::{StoreError, StoreResult};
use serde_json::{Value, json};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::{number, parse};
use crate::rows::{corrupt, get, json_object, opt_ts, ts, uuid};
use crate::{CHUNK, Tx, db_error};

macro_rules! message_columns {
    () => {
        "id, workspace_id, campaign_id, journey_id, step, contact_id, status, status_reason, to_address, from_address, \
         reply_to, subject, html, text, headers, warnings, transport, internet_message_id, attempts, reply, from_domain, \
         created_at, sent_at, bounce, track_opens, track_clicks, topic_id"
    };
}

fn json_value(row: &SqliteRow, column: &str) -> StoreResult<Value> {
    serde_json::from_str(&get::<String>(row, column)?).map_err(|e| corrupt(column, e))
}

fn message(row: &SqliteRow) -> StoreResult<Message> {
    Ok(Message {
        id: MessageId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        campaign_id: get::<Option<uuid::Uuid>>(row, "campaign_id")?.map(CampaignId::from_uuid),
        journey_id: get::<Option<uuid::Uuid>>(row, "journey_id")?.map(JourneyId::from_uuid),
        step: get(row, "step")?,
        contact_id: ContactId::from_uuid(uuid(row, "contact_id")?),
        status: parse(row, "status")?,
        status_reason: get(row, "status_reason")?,
        to: get(row, "to_address")?,
        from: get(row, "from_address")?,
        reply_to: get(row, "reply_to")?,
        subject: get(row, "subject")?,
        html: get(row, "html")?,
        text: get(row, "text")?,
        headers: json_object(row, "headers")?,
        warnings: serde_json::from_value(json_value(row, "warnings")?).map_err(|e| corrupt("warnings", e))?,
        transport: get(row, "transport")?,
        internet_message_id: get(row, "internet_message_id")?,
        attempts: number(row, "attempts")?,
        reply: get(row, "reply")?,
        bounce: get::<Option<String>>(row, "bounce")?
            .map(|b| b.parse().map_err(|e: String| corrupt("bounce", e)))
            .transpose()?,
        tracking: Tracking {
            opens: get::<i64>(row, "track_opens")? != 0,
            clicks: get::<i64>(row, "track_clicks")? != 0,
        },
        topic: get::<Option<uuid::Uuid>>(row, "topic_id")?.map(TopicId::from_uuid),
        created_at: ts(row, "created_at")?,
        sent_at: opt_ts(row, "sent_at")?,
    })
}

/// Inserts `messages`, each in its workspace, as multi-row statements.
pub(crate) async fn insert(tx: &mut Tx, messages: &[(WorkspaceId, &Message)]) -> StoreResult<()> {
    for chunk in messages.chunks(CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(concat!("INSERT INTO messages (", message_columns!(), ") "));
        insert.push_values(chunk, |mut row, (workspace, m)| {
            row.push_bind(m.id.as_uuid())
                .push_bind(workspace.as_uuid())
                .push_bind(m.campaign_id.map(|c| c.as_uuid()))
                .push_bind(m.journey_id.map(|j| j.as_uuid()))
                .push_bind(m.step.clone())
                .push_bind(m.contact_id.as_uuid())
                .push_bind(m.status.as_str())
                .push_bind(m.status_reason.clone())
                .push_bind(m.to.clone())
                .push_bind(m.from.clone())
                .push_bind(m.reply_to.clone())
                .push_bind(m.subject.clone())
                .push_bind(m.html.clone())
                .push_bind(m.text.clone())
                .push_bind(Value::Object(m.headers.clone()).to_string())
                .push_bind(json!(m.warnings).to_string())
                .push_bind(m.transport.clone())
                .push_bind(m.internet_message_id.clone())
                .push_bind(i64::from(m.attempts))
                .push_bind(m.reply.clone())
                .push_bind(herald_store::email::from_domain(&m.from))
                .push_bind(m.created_at.unix_millis())
                .push_bind(m.sent_at.map(Timestamp::unix_millis))
                .push_bind(m.bounce.map(BounceKind::as_str))
                .push_bind(m.tracking.opens)
                .push_bind(m.tracking.clicks)
                .push_bind(m.topic.map(|t| t.as_uuid()));
        });
        insert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    // A message handed to the embedded outbox is sent as it is written: its first activity.
    for (workspace, m) in messages.iter().filter(|(_, m)| m.status == herald_domain::MessageStatus::Sent) {
        if let Some(target) = crate::activity::target(tx, *workspace, m.id).await? {
            let at = m.sent_at.unwrap_or(m.created_at);
            let activity = herald_domain::Activity::new(m.id, herald_domain::ActivityKind::Sent, &m.transport, at);
            crate::activity::insert_activity(tx, *workspace, &target, &activity, m.created_at).await?;
        }
    }
    Ok(())
}

/// A page of the workspace's messages matching `filter`, newest first.
pub(super) async fn list(
    readers: &SqlitePool,
    workspace: WorkspaceId,
    filter: &MessageFilter,
    page: PageRequest<MessageId>,
) -> StoreResult<Page<Message>> {
    let mut query =
        QueryBuilder::<Sqlite>::new(concat!("SELECT ", message_columns!(), " FROM messages WHERE workspace_id = "));
    query.push_bind(workspace.as_uuid());
    if let Some(contact) = filter.contact {
        query.push(" AND contact_id = ").push_bind(contact.as_uuid());
    }
    if let Some(campaign) = filter.campaign {
        query.push(" AND campaign_id = ").push_bind(campaign.as_uuid());
    }
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(after) = page.after {
        query.push(" AND id < ").push_bind(after.as_uuid());
    }
    query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(page.limit) + 1);
    let rows = query.build().fetch_all(readers).await.map_err(db_error)?;
    let messages = rows.iter().map(message).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_overfetch(messages, page.limit, |m| m.id))
}

pub(super) async fn by_id(readers: &SqlitePool, workspace: WorkspaceId, id: MessageId) -> StoreResult<Message> {
    let row = sqlx::query(concat!("SELECT ", message_columns!(), " FROM messages WHERE workspace_id = ? AND id = ?"))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(readers)
        .await
        .map_err(db_error)?
        .ok_or(StoreError::NotFound { entity: "message" })?;
    message(&row)
}

pub(super) async fn by_ids(
    readers: &SqlitePool,
    workspace: WorkspaceId,
    ids: &[MessageId],
) -> StoreResult<Vec<Message>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut query =
            QueryBuilder::<Sqlite>::new(concat!("SELECT ", message_columns!(), " FROM messages WHERE workspace_id = "));
        query.push_bind(workspace.as_uuid()).push(" AND id IN (");
        let mut list = query.separated(", ");
        for id in chunk {
            list.push_bind(id.as_uuid());
        }
        query.push(")");
        for row in query.build().fetch_all(readers).await.map_err(db_error)? {
            found.push(message(&row)?);
        }
    }
    Ok(found)
}
