//! Message activities: each report of what happened to a message (sent, delivered, bounced,
//! complained, opened, clicked, unsubscribed) as a row, its effect on the message, and the
//! contact event it becomes, with the jobs that evaluate that event.

use herald_domain::{Activity, BounceKind, CampaignId, ContactId, Event, MessageId, WorkspaceId};
use herald_domain::{MessageStatus, Timestamp};
use herald_store::email::{ActivityTarget, ActivityWrite, Recorded, activity_event};
use herald_store::{StoreResult, new_uuid};

use crate::email::insert_suppression;
use crate::jobs::insert_jobs;
use crate::rows::{corrupt, get, uuid};
use crate::{SqliteStore, Tx, db_error};

impl SqliteStore {
    pub(crate) async fn write_activities(
        &self,
        writes: &[ActivityWrite],
        now: Timestamp,
    ) -> StoreResult<Vec<Recorded>> {
        let mut tx = self.write().await?;
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            results.push(apply(&mut tx, write, now).await?);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(results)
    }

    pub(crate) async fn find_internet_id(
        &self,
        internet_message_id: &str,
    ) -> StoreResult<Option<(WorkspaceId, MessageId)>> {
        let row = sqlx::query("SELECT workspace_id, id FROM messages WHERE internet_message_id = ? LIMIT 1")
            .bind(internet_message_id)
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?;
        row.map(|row| {
            Ok((WorkspaceId::from_uuid(uuid(&row, "workspace_id")?), MessageId::from_uuid(uuid(&row, "id")?)))
        })
        .transpose()
    }
}

/// One write: the activity row (skipped as a duplicate when its key was seen), the message's
/// new status, the suppression, the contact event and the follow-up jobs.
async fn apply(tx: &mut Tx, write: &ActivityWrite, now: Timestamp) -> StoreResult<Recorded> {
    let workspace = write.workspace;
    let activity = &write.activity;
    let Some(target) = target(tx, workspace, activity.message_id).await? else {
        return Ok(Recorded::UnknownMessage);
    };
    if !insert_activity(tx, workspace, &target, activity, now).await? {
        return Ok(Recorded::Duplicate);
    }
    if let Some(status) = activity.status_after(target.status) {
        sqlx::query(
            "UPDATE messages SET status = ?, bounce = COALESCE(?, bounce), \
             status_reason = COALESCE(?, status_reason) WHERE workspace_id = ? AND id = ?",
        )
        .bind(status.as_str())
        .bind(activity.bounce.map(BounceKind::as_str))
        .bind(activity.reason.as_deref().filter(|_| status != MessageStatus::Delivered))
        .bind(workspace.as_uuid())
        .bind(activity.message_id.as_uuid())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    if let Some(suppression) = &write.suppress {
        insert_suppression(tx, workspace, suppression).await?;
    }
    insert_jobs(tx, workspace, &write.follow_up, now).await?;
    Ok(Recorded::Applied)
}

/// The message an activity is about, with its campaign's name.
pub(crate) async fn target(
    tx: &mut Tx,
    workspace: WorkspaceId,
    message: MessageId,
) -> StoreResult<Option<ActivityTarget>> {
    let row = sqlx::query(
        "SELECT m.campaign_id, c.name AS campaign, m.step, m.subject, m.contact_id, m.status \
         FROM messages m JOIN campaigns c ON c.id = m.campaign_id WHERE m.workspace_id = ? AND m.id = ?",
    )
    .bind(workspace.as_uuid())
    .bind(message.as_uuid())
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(ActivityTarget {
        campaign_id: CampaignId::from_uuid(uuid(&row, "campaign_id")?),
        campaign: get(&row, "campaign")?,
        step: get(&row, "step")?,
        subject: get(&row, "subject")?,
        contact_id: ContactId::from_uuid(uuid(&row, "contact_id")?),
        status: get::<String>(&row, "status")?.parse().map_err(|e: String| corrupt("messages.status", e))?,
    }))
}

/// Inserts the activity row and the contact event it becomes (with the job evaluating it when
/// the workspace has live campaigns); `false`, with nothing written, when its key was
/// recorded before.
pub(crate) async fn insert_activity(
    tx: &mut Tx,
    workspace: WorkspaceId,
    target: &ActivityTarget,
    activity: &Activity,
    now: Timestamp,
) -> StoreResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO message_activities (id, workspace_id, message_id, campaign_id, step, kind, bounce, machine, \
         reason, url, source, key, occurred_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (workspace_id, key) WHERE key IS NOT NULL DO NOTHING",
    )
    .bind(new_uuid(now))
    .bind(workspace.as_uuid())
    .bind(activity.message_id.as_uuid())
    .bind(target.campaign_id.as_uuid())
    .bind(&target.step)
    .bind(activity.kind.as_str())
    .bind(activity.bounce.map(BounceKind::as_str))
    .bind(activity.machine)
    .bind(&activity.reason)
    .bind(&activity.url)
    .bind(&activity.source)
    .bind(&activity.key)
    .bind(activity.occurred_at.unix_millis())
    .bind(now.unix_millis())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    let event = activity_event(workspace, target, activity, now);
    insert_event(tx, &event).await?;
    let live: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM campaigns WHERE workspace_id = ? AND state IN ('active', 'paused') LIMIT 1")
            .bind(workspace.as_uuid())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
    let jobs: Vec<_> = herald_store::campaign::evaluation_jobs(std::slice::from_ref(&event), |_| live.is_some(), now)
        .into_iter()
        .map(|(_, job)| job)
        .collect();
    insert_jobs(tx, workspace, &jobs, now).await?;
    Ok(true)
}

/// An event Herald itself records (no request behind it).
async fn insert_event(tx: &mut Tx, event: &Event) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO events (id, workspace_id, source_id, contact_id, name, properties, occurred_at, received_at, \
         idempotency_key, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(event.id.as_uuid())
    .bind(event.workspace_id.as_uuid())
    .bind(event.source_id.map(|s| s.as_uuid()))
    .bind(event.contact_id.map(|c| c.as_uuid()))
    .bind(&event.name)
    .bind(crate::direct::object_text(&event.properties))
    .bind(event.occurred_at.unix_millis())
    .bind(event.received_at.unix_millis())
    .bind(&event.idempotency_key)
    .bind(serde_json::to_string(&event.outcome).unwrap_or_else(|_| "{}".to_owned()))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}
