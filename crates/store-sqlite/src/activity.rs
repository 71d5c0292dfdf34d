//! Message activities: each report of what happened to a message (sent, delivered, bounced,
//! complained, opened, clicked, unsubscribed) as a row, its effect on the message, and the
//! contact event it becomes, with the jobs that evaluate that event.

use herald_domain::{
    Activity, ActivityKind, BounceKind, CampaignId, ContactId, EmailSummary, Event, JourneyId, MessageId, Suppression,
    WorkspaceId,
};
use herald_domain::{MessageStatus, Timestamp};
use herald_store::email::{
    ActivityCount, ActivityRecord, ActivityScope, ActivityTarget, ActivityWrite, Grouping, Recorded, activity_event,
};
use herald_store::{StoreResult, new_uuid};
use sqlx::{QueryBuilder, Sqlite};

use crate::jobs::insert_jobs;
use crate::rows::{corrupt, get, ts, uuid};
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

/// The journey's emails, oldest first, each with its opens (by people and by machines), its
/// clicks and the distinct addresses clicked.
pub(crate) async fn journey_emails(
    readers: &sqlx::SqlitePool,
    workspace: WorkspaceId,
    journey: JourneyId,
) -> StoreResult<Vec<EmailSummary>> {
    let rows = sqlx::query(
        "SELECT m.id, m.step, m.status, m.created_at, \
         (SELECT COUNT(*) FROM message_activities a WHERE a.message_id = m.id AND a.kind = 'opened' \
          AND a.machine = 0) AS opens, \
         (SELECT COUNT(*) FROM message_activities a WHERE a.message_id = m.id AND a.kind = 'opened' \
          AND a.machine = 1) AS machine_opens, \
         (SELECT COUNT(*) FROM message_activities a WHERE a.message_id = m.id AND a.kind = 'clicked') AS clicks, \
         (SELECT group_concat(url, char(10)) FROM (SELECT url FROM message_activities a WHERE a.message_id = m.id \
          AND a.kind = 'clicked' GROUP BY url ORDER BY MIN(a.occurred_at))) AS urls \
         FROM messages m WHERE m.workspace_id = ? AND m.journey_id = ? ORDER BY m.created_at, m.id",
    )
    .bind(workspace.as_uuid())
    .bind(journey.as_uuid())
    .fetch_all(readers)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|row| {
            let count = |column| get::<i64>(row, column).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
            Ok(EmailSummary {
                message_id: MessageId::from_uuid(uuid(row, "id")?),
                step: get(row, "step")?,
                status: get::<String>(row, "status")?.parse().map_err(|e: String| corrupt("messages.status", e))?,
                created_at: crate::rows::ts(row, "created_at")?,
                opens: count("opens")?,
                machine_opens: count("machine_opens")?,
                clicks: count("clicks")?,
                clicked_urls: get::<Option<String>>(row, "urls")?
                    .map(|urls| urls.lines().map(str::to_owned).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
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
        "SELECT m.campaign_id, COALESCE(c.name, '') AS campaign, m.step, m.subject, m.contact_id, m.status \
         FROM messages m LEFT JOIN campaigns c ON c.id = m.campaign_id WHERE m.workspace_id = ? AND m.id = ?",
    )
    .bind(workspace.as_uuid())
    .bind(message.as_uuid())
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(ActivityTarget {
        campaign_id: get::<Option<uuid::Uuid>>(&row, "campaign_id")?.map(CampaignId::from_uuid),
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
    .bind(target.campaign_id.map(|c| c.as_uuid()))
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
    enqueue_evaluation(tx, workspace, std::slice::from_ref(&event), now).await?;
    Ok(true)
}

/// The jobs evaluating events Herald recorded in `workspace` (which campaigns they start,
/// convert or open a window for), when the workspace has live campaigns or segments.
pub(crate) async fn enqueue_evaluation(
    tx: &mut Tx,
    workspace: WorkspaceId,
    events: &[Event],
    now: Timestamp,
) -> StoreResult<()> {
    let live: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM campaigns WHERE workspace_id = ?1 AND state IN ('active', 'paused') \
         UNION ALL SELECT 1 FROM segments WHERE workspace_id = ?1 LIMIT 1",
    )
    .bind(workspace.as_uuid())
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    let jobs: Vec<_> = herald_store::campaign::evaluation_jobs(events, |_| live.is_some(), now)
        .into_iter()
        .map(|(_, job)| job)
        .collect();
    insert_jobs(tx, workspace, &jobs, now).await?;
    Ok(())
}

/// An event Herald itself records (no request behind it).
pub(crate) async fn insert_event(tx: &mut Tx, event: &Event) -> StoreResult<()> {
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

/// `AND …` for each part of `scope`, on `message_activities a`.
fn push_scope(query: &mut QueryBuilder<Sqlite>, scope: &ActivityScope) {
    if let Some(campaign) = scope.campaign {
        query.push(" AND a.campaign_id = ").push_bind(campaign.as_uuid());
        if let Some(step) = &scope.step {
            query.push(" AND a.step = ").push_bind(step.clone());
        }
    }
    if let Some(broadcast) = scope.broadcast {
        query
            .push(" AND a.message_id IN (SELECT m.id FROM messages m WHERE m.broadcast_id = ")
            .push_bind(broadcast.as_uuid())
            .push(")");
    }
    if let Some(message) = scope.message {
        query.push(" AND a.message_id = ").push_bind(message.as_uuid());
    }
}

pub(crate) async fn activity_counts(
    readers: &sqlx::SqlitePool,
    workspace: WorkspaceId,
    scope: &ActivityScope,
    since: Option<Timestamp>,
    grouping: Grouping,
) -> StoreResult<Vec<ActivityCount>> {
    let (day, step) = match grouping {
        Grouping::Total => ("NULL", "NULL"),
        Grouping::Day => ("a.occurred_at / 86400000", "NULL"),
        Grouping::Step => ("NULL", "a.step"),
    };
    let mut query = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {day} AS day, {step} AS step, a.kind, a.bounce, a.machine, COUNT(DISTINCT a.message_id) AS messages, \
         COUNT(*) AS total FROM message_activities a WHERE a.workspace_id = "
    ));
    query.push_bind(workspace.as_uuid());
    push_scope(&mut query, scope);
    if let Some(since) = since {
        query.push(" AND a.occurred_at >= ").push_bind(since.unix_millis());
    }
    query.push(" GROUP BY 1, 2, a.kind, a.bounce, a.machine");
    let rows = query.build().fetch_all(readers).await.map_err(db_error)?;
    rows.iter()
        .map(|row| {
            let count = |column| get::<i64>(row, column).map(|n| u64::try_from(n).unwrap_or(0));
            Ok(ActivityCount {
                day: get(row, "day")?,
                step: get(row, "step")?,
                kind: get::<String>(row, "kind")?.parse().map_err(|e: String| corrupt("message_activities.kind", e))?,
                bounce: get::<Option<String>>(row, "bounce")?
                    .map(|b| b.parse().map_err(|e: String| corrupt("message_activities.bounce", e)))
                    .transpose()?,
                machine: get(row, "machine")?,
                messages: count("messages")?,
                total: count("total")?,
            })
        })
        .collect()
}

pub(crate) async fn conversions(
    readers: &sqlx::SqlitePool,
    workspace: WorkspaceId,
    scope: &ActivityScope,
) -> StoreResult<u64> {
    // A broadcast converts against its goal event, not through journeys.
    if scope.broadcast.is_some() {
        return Ok(0);
    }
    let mut query = QueryBuilder::<Sqlite>::new(
        "SELECT COUNT(*) FROM journeys j WHERE j.converted_at IS NOT NULL AND j.workspace_id = ",
    );
    query.push_bind(workspace.as_uuid());
    if let Some(campaign) = scope.campaign {
        query.push(" AND j.campaign_id = ").push_bind(campaign.as_uuid());
        if let Some(step) = &scope.step {
            query.push(" AND j.conversion_step = ").push_bind(step.clone());
        }
    }
    if let Some(message) = scope.message {
        query
            .push(" AND EXISTS (SELECT 1 FROM messages m WHERE m.id = ")
            .push_bind(message.as_uuid())
            .push(" AND m.journey_id = j.id AND m.step = j.conversion_step)");
    }
    let count: i64 = query.build_query_scalar().fetch_one(readers).await.map_err(db_error)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

pub(crate) async fn message_activities(
    readers: &sqlx::SqlitePool,
    workspace: WorkspaceId,
    message: MessageId,
    limit: u32,
) -> StoreResult<Vec<ActivityRecord>> {
    let rows = sqlx::query(
        "SELECT kind, bounce, machine, reason, url, source, key, occurred_at, created_at FROM message_activities \
         WHERE workspace_id = ? AND message_id = ? ORDER BY occurred_at, id LIMIT ?",
    )
    .bind(workspace.as_uuid())
    .bind(message.as_uuid())
    .bind(i64::from(limit))
    .fetch_all(readers)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|row| {
            let kind: ActivityKind =
                get::<String>(row, "kind")?.parse().map_err(|e: String| corrupt("message_activities.kind", e))?;
            let mut activity = Activity::new(message, kind, &get::<String>(row, "source")?, ts(row, "occurred_at")?);
            activity.bounce = get::<Option<String>>(row, "bounce")?
                .map(|b| b.parse().map_err(|e: String| corrupt("message_activities.bounce", e)))
                .transpose()?;
            activity.machine = get(row, "machine")?;
            activity.reason = get(row, "reason")?;
            activity.url = get(row, "url")?;
            activity.key = get(row, "key")?;
            Ok(ActivityRecord { activity, recorded_at: ts(row, "created_at")? })
        })
        .collect()
}

/// Puts an address on the suppression list unless it is there already; whether it was added.
pub(crate) async fn insert_suppression(tx: &mut Tx, workspace: WorkspaceId, new: &Suppression) -> StoreResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO suppressions (workspace_id, email, contact_id, reason, detail, message_id, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, email) DO NOTHING",
    )
    .bind(workspace.as_uuid())
    .bind(&new.email)
    .bind(new.contact_id.map(|c| c.as_uuid()))
    .bind(&new.reason)
    .bind(&new.detail)
    .bind(new.message_id.map(|m| m.as_uuid()))
    .bind(new.created_at.unix_millis())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(inserted.rows_affected() == 1)
}
