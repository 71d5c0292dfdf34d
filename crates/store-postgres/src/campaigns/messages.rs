//! Messages on PostgreSQL: the emails a journey's steps render, written by the work commit,
//! read back by the message log.

use herald_domain::{
    BounceKind, CampaignId, ContactId, JourneyId, Message, MessageId, Page, PageRequest, TopicId, Tracking, WorkspaceId,
};
use herald_store::campaign::MessageFilter;
use herald_store::{StoreError, StoreResult};
use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::INSERT_CHUNK;
use super::{number, parse};
use crate::encode;
use crate::rows::{corrupt, get, object, opt_ts, ts, uuid};
use crate::{Tx, db_error};

macro_rules! message_columns {
    () => {
        "id, workspace_id, campaign_id, journey_id, step, contact_id, status, status_reason, to_address, from_address, \
         reply_to, subject, html, text, headers, warnings, transport, internet_message_id, attempts, reply, from_domain, \
         created_at, sent_at, bounce, track_opens, track_clicks, topic_id"
    };
}

fn message(row: &PgRow) -> StoreResult<Message> {
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
        headers: object(row, "headers")?,
        warnings: get::<Json<Vec<String>>>(row, "warnings")?.0,
        transport: get(row, "transport")?,
        internet_message_id: get(row, "internet_message_id")?,
        attempts: number(row, "attempts")?,
        reply: get(row, "reply")?,
        bounce: get::<Option<String>>(row, "bounce")?
            .map(|b| b.parse().map_err(|e: String| corrupt("bounce", e)))
            .transpose()?,
        tracking: Tracking { opens: get(row, "track_opens")?, clicks: get(row, "track_clicks")? },
        topic: get::<Option<uuid::Uuid>>(row, "topic_id")?.map(TopicId::from_uuid),
        created_at: ts(row, "created_at")?,
        sent_at: opt_ts(row, "sent_at")?,
    })
}

/// Inserts `messages`, each in its workspace, as multi-row statements.
pub(crate) async fn insert(tx: &mut Tx, messages: &[(WorkspaceId, &Message)]) -> StoreResult<()> {
    for chunk in messages.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Postgres>::new(concat!("INSERT INTO messages (", message_columns!(), ") "));
        insert.push_values(chunk, |mut row, (workspace, m)| {
            row.push_bind(m.id.as_uuid())
                .push_bind(workspace.as_uuid())
                .push_bind(m.campaign_id.map(|c| c.as_uuid()))
                .push_bind(m.journey_id.map(|j| j.as_uuid()))
                .push_bind(encode::text(&m.step).into_owned())
                .push_bind(m.contact_id.as_uuid())
                .push_bind(m.status.as_str())
                .push_bind(m.status_reason.as_deref().map(|r| encode::text(r).into_owned()))
                .push_bind(encode::text(&m.to).into_owned())
                .push_bind(encode::text(&m.from).into_owned())
                .push_bind(m.reply_to.as_deref().map(|r| encode::text(r).into_owned()))
                .push_bind(encode::text(&m.subject).into_owned())
                .push_bind(encode::text(&m.html).into_owned())
                .push_bind(encode::text(&m.text).into_owned())
                .push_bind(Json(encode::json_map(&m.headers).into_owned()))
                .push_bind(Json(encode::json(&json!(m.warnings)).into_owned()))
                .push_bind(encode::text(&m.transport).into_owned())
                .push_bind(encode::text(&m.internet_message_id).into_owned())
                .push_bind(i32::try_from(m.attempts).unwrap_or(i32::MAX))
                .push_bind(m.reply.as_deref().map(|r| encode::text(r).into_owned()))
                .push_bind(encode::text(&herald_store::email::from_domain(&m.from)).into_owned())
                .push_bind(encode::ts(m.created_at))
                .push_bind(m.sent_at.map(encode::ts))
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
    pool: &PgPool,
    workspace: WorkspaceId,
    filter: &MessageFilter,
    page: PageRequest<MessageId>,
) -> StoreResult<Page<Message>> {
    let mut query =
        QueryBuilder::<Postgres>::new(concat!("SELECT ", message_columns!(), " FROM messages WHERE workspace_id = "));
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
    let rows = query.build().fetch_all(pool).await.map_err(db_error)?;
    let messages = rows.iter().map(message).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_overfetch(messages, page.limit, |m| m.id))
}

pub(super) async fn by_id(pool: &PgPool, workspace: WorkspaceId, id: MessageId) -> StoreResult<Message> {
    let row = sqlx::query(concat!("SELECT ", message_columns!(), " FROM messages WHERE workspace_id = $1 AND id = $2"))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(db_error)?
        .ok_or(StoreError::NotFound { entity: "message" })?;
    message(&row)
}

pub(super) async fn by_ids(pool: &PgPool, workspace: WorkspaceId, ids: &[MessageId]) -> StoreResult<Vec<Message>> {
    let ids: Vec<_> = ids.iter().map(MessageId::as_uuid).collect();
    let rows =
        sqlx::query(concat!("SELECT ", message_columns!(), " FROM messages WHERE workspace_id = $1 AND id = ANY($2)"))
            .bind(workspace.as_uuid())
            .bind(&ids)
            .fetch_all(pool)
            .await
            .map_err(db_error)?;
    rows.iter().map(message).collect()
}
