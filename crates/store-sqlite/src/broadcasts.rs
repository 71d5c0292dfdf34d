//! Broadcasts on SQLite: drafts, their start, fan-out pages written under the job's lease,
//! pause, resume and cancel, and the recipients' standing.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use herald_domain::job::{JobLease, JobOutcome};
use herald_domain::{BroadcastId, ContactId, Page, PageRequest, Timestamp, WorkspaceId};
use herald_store::broadcast::{
    Audience, AudienceMember, BROADCAST_STATE, Broadcast, BroadcastDraft, BroadcastStart, BroadcastState,
    BroadcastStore, FanOutPage, FanOutResult, Progress, Recipient, broadcast_delivery_job, due_times, fan_out_job,
    next_page_at,
};
use herald_store::{StoreError, StoreResult, new_uuid};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::campaigns::messages;
use crate::jobs::{finish, insert_jobs};
use crate::rows::{self, corrupt, get, opt_ts, ts, uuid};
use crate::{SqliteStore, Tx, db_error};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "broadcast" };

fn wrong_state() -> StoreError {
    StoreError::Conflict { constraint: BROADCAST_STATE.into() }
}

/// When a paused broadcast's queued deliveries are put off to: resuming brings them back.
const PUT_OFF: Timestamp = Timestamp::MAX;

macro_rules! broadcast_columns {
    () => {
        "id, workspace_id, name, content, audience_kind, audience_id, rate_per_hour, state, start_at, cursor, \
         next_slot, paused_at, finished_at, audience_size, recipients, created_at, updated_at"
    };
}

fn broadcast(row: &SqliteRow) -> StoreResult<Broadcast> {
    let state: String = get(row, "state")?;
    let content: String = get(row, "content")?;
    let kind: String = get(row, "audience_kind")?;
    let count = |column| get::<i64>(row, column).map(|n| u64::try_from(n).unwrap_or(0));
    Ok(Broadcast {
        id: BroadcastId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        content: serde_json::from_str(&content).map_err(|e| corrupt("broadcasts.content", e))?,
        audience: Audience::from_parts(&kind, get(row, "audience_id")?)
            .ok_or_else(|| corrupt("broadcasts.audience_kind", kind))?,
        rate_per_hour: get::<Option<i64>>(row, "rate_per_hour")?.map(|r| u32::try_from(r).unwrap_or(u32::MAX)),
        state: BroadcastState::parse(&state).ok_or_else(|| corrupt("broadcasts.state", state))?,
        start_at: opt_ts(row, "start_at")?,
        cursor: get::<Option<uuid::Uuid>>(row, "cursor")?.map(ContactId::from_uuid),
        next_slot: opt_ts(row, "next_slot")?,
        paused_at: opt_ts(row, "paused_at")?,
        finished_at: opt_ts(row, "finished_at")?,
        audience_size: count("audience_size")?,
        recipients: count("recipients")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

async fn read(tx: &mut Tx, workspace: WorkspaceId, id: BroadcastId) -> StoreResult<Broadcast> {
    let row =
        sqlx::query(concat!("SELECT ", broadcast_columns!(), " FROM broadcasts WHERE workspace_id = ? AND id = ?"))
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
    broadcast(&row.ok_or(NOT_FOUND)?)
}

/// The audience's condition on the workspace's contacts `c` with an email address.
fn push_audience(query: &mut QueryBuilder<Sqlite>, workspace: WorkspaceId, audience: Audience) {
    query.push(" FROM contacts c WHERE c.workspace_id = ").push_bind(workspace.as_uuid());
    query.push(" AND c.email IS NOT NULL");
    match audience {
        Audience::Segment(segment) => {
            query
                .push(" AND EXISTS (SELECT 1 FROM segment_memberships m WHERE m.segment_id = ")
                .push_bind(segment.as_uuid())
                .push(" AND m.contact_id = c.id AND m.member = 1)");
        }
        Audience::Topic(topic) => {
            query
                .push(" AND NOT EXISTS (SELECT 1 FROM topic_consents t WHERE t.workspace_id = c.workspace_id AND t.topic_id = ")
                .push_bind(topic.as_uuid())
                .push(" AND t.contact_id = c.id AND t.subscribed = 0)");
        }
        Audience::Everyone => {
            query.push(
                " AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.workspace_id = c.workspace_id \
                 AND s.email = lower(c.email))",
            );
        }
    }
}

#[async_trait]
impl BroadcastStore for SqliteStore {
    async fn create_broadcast(
        &self,
        workspace: WorkspaceId,
        draft: &BroadcastDraft,
        now: Timestamp,
    ) -> StoreResult<Broadcast> {
        let id = BroadcastId::from_uuid(new_uuid(now));
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO broadcasts (id, workspace_id, name, content, audience_kind, audience_id, rate_per_hour, \
             state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?)",
        )
        .bind(id.as_uuid())
        .bind(workspace.as_uuid())
        .bind(&draft.name)
        .bind(draft.content.to_string())
        .bind(draft.audience.kind())
        .bind(draft.audience.id())
        .bind(draft.rate_per_hour.map(i64::from))
        .bind(now.unix_millis())
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let created = read(&mut tx, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(created)
    }

    async fn update_broadcast(
        &self,
        workspace: WorkspaceId,
        id: BroadcastId,
        draft: &BroadcastDraft,
        now: Timestamp,
    ) -> StoreResult<Broadcast> {
        let mut tx = self.write().await?;
        if read(&mut tx, workspace, id).await?.state != BroadcastState::Draft {
            return Err(wrong_state());
        }
        sqlx::query(
            "UPDATE broadcasts SET name = ?, content = ?, audience_kind = ?, audience_id = ?, rate_per_hour = ?, \
             updated_at = ? WHERE id = ?",
        )
        .bind(&draft.name)
        .bind(draft.content.to_string())
        .bind(draft.audience.kind())
        .bind(draft.audience.id())
        .bind(draft.rate_per_hour.map(i64::from))
        .bind(now.unix_millis())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let updated = read(&mut tx, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(updated)
    }

    async fn delete_broadcast(&self, workspace: WorkspaceId, id: BroadcastId) -> StoreResult<()> {
        let mut tx = self.write().await?;
        if read(&mut tx, workspace, id).await?.state != BroadcastState::Draft {
            return Err(wrong_state());
        }
        sqlx::query("DELETE FROM broadcasts WHERE id = ?")
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn get_broadcast(&self, workspace: WorkspaceId, id: BroadcastId) -> StoreResult<Broadcast> {
        let row =
            sqlx::query(concat!("SELECT ", broadcast_columns!(), " FROM broadcasts WHERE workspace_id = ? AND id = ?"))
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.readers)
                .await
                .map_err(db_error)?;
        broadcast(&row.ok_or(NOT_FOUND)?)
    }

    async fn list_broadcasts(
        &self,
        workspace: WorkspaceId,
        page: PageRequest<BroadcastId>,
    ) -> StoreResult<Page<Broadcast>> {
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            broadcast_columns!(),
            " FROM broadcasts WHERE workspace_id = "
        ));
        query.push_bind(workspace.as_uuid());
        if let Some(after) = page.after {
            query.push(" AND id < ").push_bind(after.as_uuid());
        }
        query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
        let items = rows.iter().map(broadcast).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit, |b| b.id))
    }

    async fn start_broadcast(
        &self,
        workspace: WorkspaceId,
        id: BroadcastId,
        start: &BroadcastStart,
        now: Timestamp,
    ) -> StoreResult<Broadcast> {
        let mut tx = self.write().await?;
        if read(&mut tx, workspace, id).await?.state != BroadcastState::Draft {
            return Err(wrong_state());
        }
        sqlx::query(
            "UPDATE broadcasts SET content = ?, state = 'scheduled', start_at = ?, next_slot = ?, audience_size = ?, \
             updated_at = ? WHERE id = ?",
        )
        .bind(start.content.to_string())
        .bind(start.at.unix_millis())
        .bind(start.at.unix_millis())
        .bind(i64::try_from(start.audience_size).unwrap_or(i64::MAX))
        .bind(now.unix_millis())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        insert_jobs(&mut tx, workspace, &[fan_out_job(id, start.at)], now).await?;
        let started = read(&mut tx, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(started)
    }

    async fn audience_page(
        &self,
        workspace: WorkspaceId,
        audience: Audience,
        page: PageRequest<ContactId>,
    ) -> StoreResult<Page<AudienceMember>> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT c.id, c.workspace_id, c.email, c.user_id, c.phone, c.name, c.first_name, c.last_name, \
             c.attributes, c.created_at, c.updated_at, (SELECT s.reason FROM suppressions s \
             WHERE s.workspace_id = c.workspace_id AND s.email = lower(c.email)) AS suppressed",
        );
        push_audience(&mut query, workspace, audience);
        if let Some(after) = page.after {
            query.push(" AND c.id > ").push_bind(after.as_uuid());
        }
        query.push(" ORDER BY c.id LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
        let members = rows
            .iter()
            .map(|row| Ok(AudienceMember { contact: rows::contact(row)?, suppressed: get(row, "suppressed")? }))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(members, page.limit, |m| m.contact.id))
    }

    async fn audience_size(&self, workspace: WorkspaceId, audience: Audience) -> StoreResult<u64> {
        let mut query = QueryBuilder::<Sqlite>::new("SELECT COUNT(*)");
        push_audience(&mut query, workspace, audience);
        let count: i64 = query.build_query_scalar().fetch_one(&self.readers).await.map_err(db_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn fan_out_page(
        &self,
        workspace: WorkspaceId,
        lease: &JobLease,
        page: &FanOutPage,
        now: Timestamp,
    ) -> StoreResult<FanOutResult> {
        let mut tx = self.write().await?;
        finish(&mut tx, workspace, lease, &JobOutcome::Done, now).await?;
        let current = read(&mut tx, workspace, page.broadcast).await?;
        if !current.state.fans_out() || current.cursor != page.after {
            // Paused, cancelled, or written by another run: only the job is finished.
            tx.commit().await.map_err(db_error)?;
            return Ok(FanOutResult { written: false, added: 0 });
        }
        let (added, next_slot) = write_recipients(&mut tx, workspace, page, current.next_slot, now).await?;
        let state = if page.done { BroadcastState::Finished } else { BroadcastState::Sending };
        sqlx::query(
            "UPDATE broadcasts SET cursor = ?, next_slot = ?, state = ?, finished_at = ?, recipients = recipients + ?, \
             updated_at = ? WHERE id = ?",
        )
        .bind(page.last.or(current.cursor).map(|c| c.as_uuid()))
        .bind(next_slot.map(Timestamp::unix_millis))
        .bind(state.as_str())
        .bind(page.done.then_some(now.unix_millis()))
        .bind(i64::try_from(added.len()).unwrap_or(i64::MAX))
        .bind(now.unix_millis())
        .bind(page.broadcast.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if !page.done {
            let at = if page.spacing.is_some() { next_page_at(next_slot, page.horizon, now) } else { now };
            insert_jobs(&mut tx, workspace, &[fan_out_job(page.broadcast, at)], now).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(FanOutResult { written: true, added: added.len() as u64 })
    }

    async fn pause_broadcast(&self, workspace: WorkspaceId, id: BroadcastId, now: Timestamp) -> StoreResult<Broadcast> {
        let mut tx = self.write().await?;
        if !read(&mut tx, workspace, id).await?.state.pausable() {
            return Err(wrong_state());
        }
        sqlx::query("UPDATE broadcasts SET state = 'paused', paused_at = ?, updated_at = ? WHERE id = ?")
            .bind(now.unix_millis())
            .bind(now.unix_millis())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "UPDATE jobs SET run_at = ?1, due_at = ?1, updated_at = ?2 WHERE state = 'queued' AND id IN \
             (SELECT job_id FROM broadcast_recipients WHERE broadcast_id = ?3 AND job_id IS NOT NULL)",
        )
        .bind(PUT_OFF.unix_millis())
        .bind(now.unix_millis())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let paused = read(&mut tx, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(paused)
    }

    async fn resume_broadcast(
        &self,
        workspace: WorkspaceId,
        id: BroadcastId,
        spacing: Option<Duration>,
        horizon: Duration,
        now: Timestamp,
    ) -> StoreResult<Broadcast> {
        let mut tx = self.write().await?;
        let current = read(&mut tx, workspace, id).await?;
        if current.state != BroadcastState::Paused {
            return Err(wrong_state());
        }
        // The held deliveries, in the order of their recipients' times, each at its time (not
        // before now) and, under a rate limit, in the next free slot.
        let held: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
            "SELECT j.id, r.not_before FROM broadcast_recipients r JOIN jobs j ON j.id = r.job_id \
             WHERE r.broadcast_id = ? AND j.state = 'queued' ORDER BY r.not_before, j.id",
        )
        .bind(id.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let from = current.start_at.map_or(now, |start| start.max(now));
        let own = held.iter().map(|(_, at)| Timestamp::from_unix_millis(*at).max(from));
        let (due, next_slot) = due_times(own, spacing.map(|_| from), spacing);
        for ((job, _), at) in held.iter().zip(&due) {
            sqlx::query("UPDATE jobs SET run_at = ?1, due_at = ?1, updated_at = ?2 WHERE id = ?3")
                .bind(at.unix_millis())
                .bind(now.unix_millis())
                .bind(job)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        let state = match (current.finished_at, current.recipients) {
            (Some(_), _) => BroadcastState::Finished,
            (None, 0) => BroadcastState::Scheduled,
            (None, _) => BroadcastState::Sending,
        };
        sqlx::query("UPDATE broadcasts SET state = ?, paused_at = NULL, next_slot = ?, updated_at = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(next_slot.map(Timestamp::unix_millis))
            .bind(now.unix_millis())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let at = if spacing.is_some() { next_page_at(next_slot, horizon, from) } else { from };
        if current.finished_at.is_none() {
            insert_jobs(&mut tx, workspace, &[fan_out_job(id, at)], now).await?;
        }
        let resumed = read(&mut tx, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(resumed)
    }

    async fn cancel_broadcast(
        &self,
        workspace: WorkspaceId,
        id: BroadcastId,
        now: Timestamp,
    ) -> StoreResult<Broadcast> {
        let mut tx = self.write().await?;
        let state = read(&mut tx, workspace, id).await?.state;
        if matches!(state, BroadcastState::Draft | BroadcastState::Cancelled) {
            return Err(wrong_state());
        }
        sqlx::query("UPDATE broadcasts SET state = 'cancelled', paused_at = NULL, updated_at = ? WHERE id = ?")
            .bind(now.unix_millis())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        withdraw_queued(&mut tx, id, now).await?;
        let cancelled = read(&mut tx, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(cancelled)
    }

    async fn broadcast_progress(&self, workspace: WorkspaceId, id: BroadcastId) -> StoreResult<Progress> {
        let broadcast = self.get_broadcast(workspace, id).await?;
        let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
            "SELECT m.status, COUNT(*) FROM broadcast_recipients r LEFT JOIN messages m ON m.id = r.message_id \
             WHERE r.broadcast_id = ? GROUP BY m.status",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        Ok(Progress::of(&broadcast, &rows))
    }

    async fn broadcast_conversions(&self, workspace: WorkspaceId, id: BroadcastId, goal: &str) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM broadcast_recipients r JOIN messages m ON m.id = r.message_id \
             WHERE r.broadcast_id = ?1 AND m.workspace_id = ?2 AND m.sent_at IS NOT NULL AND EXISTS \
             (SELECT 1 FROM events e WHERE e.workspace_id = ?2 AND e.contact_id = r.contact_id AND e.name = ?3 \
              AND e.occurred_at >= m.sent_at)",
        )
        .bind(id.as_uuid())
        .bind(workspace.as_uuid())
        .bind(goal)
        .fetch_one(&self.readers)
        .await
        .map_err(db_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// Writes a page's recipients in a handful of statements (a page fits in one statement of
/// each): the recipient rows, whose primary key leaves a contact already written alone; the
/// messages of the new ones, marked as the broadcast's; and the delivery jobs of those that
/// need one, linked from their rows. Returns the new recipients and the broadcast's next slot.
async fn write_recipients<'a>(
    tx: &mut Tx,
    workspace: WorkspaceId,
    page: &'a FanOutPage,
    next_slot: Option<Timestamp>,
    now: Timestamp,
) -> StoreResult<(Vec<&'a Recipient>, Option<Timestamp>)> {
    if page.recipients.is_empty() {
        return Ok((Vec::new(), next_slot));
    }
    let broadcast = page.broadcast.as_uuid();
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO broadcast_recipients (broadcast_id, contact_id, message_id, not_before, created_at) ",
    );
    insert.push_values(&page.recipients, |mut row, r| {
        row.push_bind(broadcast)
            .push_bind(r.message.contact_id.as_uuid())
            .push_bind(r.message.id.as_uuid())
            .push_bind(r.not_before.unix_millis())
            .push_bind(now.unix_millis());
    });
    insert.push(" ON CONFLICT DO NOTHING RETURNING contact_id");
    let new: HashSet<uuid::Uuid> =
        insert.build_query_scalar().fetch_all(&mut **tx).await.map_err(db_error)?.into_iter().collect();
    let added: Vec<&Recipient> =
        page.recipients.iter().filter(|r| new.contains(&r.message.contact_id.as_uuid())).collect();
    if added.is_empty() {
        return Ok((added, next_slot));
    }
    let messages: Vec<_> = added.iter().map(|r| (workspace, &r.message)).collect();
    messages::insert(tx, &messages).await?;
    let mut mark = QueryBuilder::<Sqlite>::new("UPDATE messages SET broadcast_id = ");
    mark.push_bind(broadcast).push(" WHERE id IN (");
    let mut ids = mark.separated(", ");
    for r in &added {
        ids.push_bind(r.message.id.as_uuid());
    }
    mark.push(")").build().execute(&mut **tx).await.map_err(db_error)?;
    let delivered: Vec<_> = added.iter().filter(|r| r.deliver).collect();
    let (due, next_slot) = due_times(delivered.iter().map(|r| r.not_before), next_slot, page.spacing);
    let jobs: Vec<_> =
        delivered.iter().zip(due).map(|(r, at)| broadcast_delivery_job(page.broadcast, r.message.id, at)).collect();
    let job_ids = insert_jobs(tx, workspace, &jobs, now).await?;
    if !job_ids.is_empty() {
        let mut link = QueryBuilder::<Sqlite>::new("UPDATE broadcast_recipients SET job_id = v.column2 FROM (");
        link.push_values(delivered.iter().zip(&job_ids), |mut row, (r, job)| {
            row.push_bind(r.message.id.as_uuid()).push_bind(job.as_uuid());
        });
        link.push(") AS v WHERE broadcast_recipients.broadcast_id = ")
            .push_bind(broadcast)
            .push(" AND broadcast_recipients.message_id = v.column1");
        link.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok((added, next_slot))
}

/// Withdraws a cancelled broadcast's queued messages whose delivery has not started: the
/// messages are deleted (a recipient row without its message reads as cancelled) and their
/// jobs finished. A delivery running now goes on and is recorded.
async fn withdraw_queued(tx: &mut Tx, id: BroadcastId, now: Timestamp) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM messages WHERE status = 'queued' AND id IN (SELECT r.message_id FROM broadcast_recipients r \
         JOIN jobs j ON j.id = r.job_id WHERE r.broadcast_id = ?1 AND j.state = 'queued')",
    )
    .bind(id.as_uuid())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    sqlx::query(
        "UPDATE jobs SET state = 'done', due_at = NULL, updated_at = ?1, last_error = 'the broadcast was cancelled' \
         WHERE state = 'queued' AND id IN (SELECT job_id FROM broadcast_recipients WHERE broadcast_id = ?2)",
    )
    .bind(now.unix_millis())
    .bind(id.as_uuid())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}
