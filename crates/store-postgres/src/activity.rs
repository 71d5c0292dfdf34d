//! Message activities: each report of what happened to a message (sent, delivered, bounced,
//! complained, opened, clicked, unsubscribed) as a row, its effect on the message, and the
//! contact event it becomes, with the jobs that evaluate that event.

use herald_domain::{
    Activity, ActivityKind, BounceKind, CampaignId, ContactId, EmailSummary, JourneyId, MessageId, MessageStatus,
    Suppression, Timestamp, WorkspaceId,
};
use herald_store::email::{
    ActivityCount, ActivityRecord, ActivityScope, ActivityTarget, ActivityWrite, Grouping, Recorded, activity_event,
};
use herald_store::{StoreResult, new_uuid};
use sqlx::{Postgres, QueryBuilder};

use crate::events::{enqueue_evaluation, insert_events};
use crate::jobs::insert_jobs;
use crate::rows::{corrupt, get, ts, uuid};
use crate::{PgStore, Tx, db_error, encode};

impl PgStore {
    pub(crate) async fn write_activities(
        &self,
        writes: &[ActivityWrite],
        now: Timestamp,
    ) -> StoreResult<Vec<Recorded>> {
        let mut tx = self.begin().await?;
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
        let row = sqlx::query("SELECT workspace_id, id FROM messages WHERE internet_message_id = $1 LIMIT 1")
            .bind(encode::text(internet_message_id))
            .fetch_optional(&self.pool)
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
    pool: &sqlx::PgPool,
    workspace: WorkspaceId,
    journey: JourneyId,
) -> StoreResult<Vec<EmailSummary>> {
    let rows = sqlx::query(
        "SELECT m.id, m.step, m.status, m.created_at, \
         (SELECT COUNT(*) FROM message_activities a WHERE a.message_id = m.id AND a.kind = 'opened' \
          AND NOT a.machine) AS opens, \
         (SELECT COUNT(*) FROM message_activities a WHERE a.message_id = m.id AND a.kind = 'opened' \
          AND a.machine) AS machine_opens, \
         (SELECT COUNT(*) FROM message_activities a WHERE a.message_id = m.id AND a.kind = 'clicked') AS clicks, \
         ARRAY(SELECT a.url FROM message_activities a WHERE a.message_id = m.id AND a.kind = 'clicked' \
          AND a.url IS NOT NULL GROUP BY a.url ORDER BY MIN(a.occurred_at)) AS urls \
         FROM messages m WHERE m.workspace_id = $1 AND m.journey_id = $2 ORDER BY m.created_at, m.id",
    )
    .bind(workspace.as_uuid())
    .bind(journey.as_uuid())
    .fetch_all(pool)
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
                clicked_urls: get(row, "urls")?,
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
            "UPDATE messages SET status = $1, bounce = COALESCE($2, bounce), \
             status_reason = COALESCE($3, status_reason) WHERE workspace_id = $4 AND id = $5",
        )
        .bind(status.as_str())
        .bind(activity.bounce.map(BounceKind::as_str))
        .bind(encode::opt_text(activity.reason.as_deref().filter(|_| status != MessageStatus::Delivered)))
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

/// The message an activity is about, with its campaign's name, locked until the commit so
/// that two reports of one message change its status one after the other.
pub(crate) async fn target(
    tx: &mut Tx,
    workspace: WorkspaceId,
    message: MessageId,
) -> StoreResult<Option<ActivityTarget>> {
    let row = sqlx::query(
        "SELECT m.campaign_id, COALESCE(c.name, '') AS campaign, m.step, m.subject, m.contact_id, m.status \
         FROM messages m LEFT JOIN campaigns c ON c.id = m.campaign_id WHERE m.workspace_id = $1 AND m.id = $2 \
         FOR UPDATE OF m",
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
         reason, url, source, key, occurred_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (workspace_id, key) WHERE key IS NOT NULL DO NOTHING",
    )
    .bind(new_uuid(now))
    .bind(workspace.as_uuid())
    .bind(activity.message_id.as_uuid())
    .bind(target.campaign_id.map(|c| c.as_uuid()))
    .bind(encode::text(&target.step))
    .bind(activity.kind.as_str())
    .bind(activity.bounce.map(BounceKind::as_str))
    .bind(activity.machine)
    .bind(encode::opt_text(activity.reason.as_deref()))
    .bind(encode::opt_text(activity.url.as_deref()))
    .bind(encode::text(&activity.source))
    .bind(encode::opt_text(activity.key.as_deref()))
    .bind(encode::ts(activity.occurred_at))
    .bind(encode::ts(now))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    let event = activity_event(workspace, target, activity, now);
    let events = std::slice::from_ref(&event);
    insert_events(tx, events).await?;
    enqueue_evaluation(tx, events, now).await?;
    Ok(true)
}

/// `AND …` for each part of `scope`, on `message_activities a`.
fn push_scope(query: &mut QueryBuilder<Postgres>, scope: &ActivityScope) {
    if let Some(campaign) = scope.campaign {
        query.push(" AND a.campaign_id = ").push_bind(campaign.as_uuid());
        if let Some(step) = &scope.step {
            query.push(" AND a.step = ").push_bind(encode::text(step).into_owned());
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
    pool: &sqlx::PgPool,
    workspace: WorkspaceId,
    scope: &ActivityScope,
    since: Option<Timestamp>,
    grouping: Grouping,
) -> StoreResult<Vec<ActivityCount>> {
    let (day, step) = match grouping {
        Grouping::Total => ("NULL::bigint", "NULL::text"),
        Grouping::Day => ("floor(extract(epoch FROM a.occurred_at) / 86400)::bigint", "NULL::text"),
        Grouping::Step => ("NULL::bigint", "a.step"),
    };
    let mut query = QueryBuilder::<Postgres>::new(format!(
        "SELECT {day} AS day, {step} AS step, a.kind, a.bounce, a.machine, COUNT(DISTINCT a.message_id) AS messages, \
         COUNT(*) AS total FROM message_activities a WHERE a.workspace_id = "
    ));
    query.push_bind(workspace.as_uuid());
    push_scope(&mut query, scope);
    if let Some(since) = since {
        query.push(" AND a.occurred_at >= ").push_bind(encode::ts(since));
    }
    query.push(" GROUP BY 1, 2, a.kind, a.bounce, a.machine");
    let rows = query.build().fetch_all(pool).await.map_err(db_error)?;
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
    pool: &sqlx::PgPool,
    workspace: WorkspaceId,
    scope: &ActivityScope,
) -> StoreResult<u64> {
    // A broadcast converts against its goal event, not through journeys.
    if scope.broadcast.is_some() {
        return Ok(0);
    }
    let mut query = QueryBuilder::<Postgres>::new(
        "SELECT COUNT(*) FROM journeys j WHERE j.converted_at IS NOT NULL AND j.workspace_id = ",
    );
    query.push_bind(workspace.as_uuid());
    if let Some(campaign) = scope.campaign {
        query.push(" AND j.campaign_id = ").push_bind(campaign.as_uuid());
        if let Some(step) = &scope.step {
            query.push(" AND j.conversion_step = ").push_bind(encode::text(step).into_owned());
        }
    }
    if let Some(message) = scope.message {
        query
            .push(" AND EXISTS (SELECT 1 FROM messages m WHERE m.id = ")
            .push_bind(message.as_uuid())
            .push(" AND m.journey_id = j.id AND m.step = j.conversion_step)");
    }
    let count: i64 = query.build_query_scalar().fetch_one(pool).await.map_err(db_error)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

pub(crate) async fn message_activities(
    pool: &sqlx::PgPool,
    workspace: WorkspaceId,
    message: MessageId,
    limit: u32,
) -> StoreResult<Vec<ActivityRecord>> {
    let rows = sqlx::query(
        "SELECT kind, bounce, machine, reason, url, source, key, occurred_at, created_at FROM message_activities \
         WHERE workspace_id = $1 AND message_id = $2 ORDER BY occurred_at, id LIMIT $3",
    )
    .bind(workspace.as_uuid())
    .bind(message.as_uuid())
    .bind(i64::from(limit))
    .fetch_all(pool)
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
        "INSERT INTO suppressions (workspace_id, email, contact_id, reason, detail, created_at, message_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workspace_id, email) DO NOTHING",
    )
    .bind(workspace.as_uuid())
    .bind(encode::text(&new.email))
    .bind(new.contact_id.map(|c| c.as_uuid()))
    .bind(encode::text(&new.reason))
    .bind(encode::opt_text(new.detail.as_deref()))
    .bind(encode::ts(new.created_at))
    .bind(new.message_id.map(|m| m.as_uuid()))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(inserted.rows_affected() == 1)
}
