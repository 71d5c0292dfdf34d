//! Segments on SQLite: definitions, memberships with their timers, history and daily sizes.

use async_trait::async_trait;
use herald_domain::{ContactId, Page, PageRequest, SegmentId, Timestamp, WorkspaceId};
use herald_store::segment::{
    BuildPage, DailySize, EventFact, MEMBERSHIP_RACE, Member, Membership, MembershipChange, REFERENCED,
    SegmentDecision, SegmentDraft, SegmentRecord, SegmentStatus, SegmentStore, SegmentWork, build_job, day_of,
    refresh_job, tally,
};
use herald_store::{StoreError, StoreResult, new_uuid};
use rusqlite::Connection;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::direct::direct_error;
use crate::rows::{self, corrupt, get, opt_ts, ts, uuid};
use crate::{SqliteStore, Tx, db_error};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "segment" };

macro_rules! segment_columns {
    () => {
        "id, workspace_id, name, definition, status, generation, progress, cursor, members, created_at, updated_at"
    };
}

fn segment(row: &SqliteRow) -> StoreResult<SegmentRecord> {
    let status: String = get(row, "status")?;
    let definition: String = get(row, "definition")?;
    Ok(SegmentRecord {
        id: SegmentId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        definition: serde_json::from_str(&definition).map_err(|e| corrupt("definition", e))?,
        status: SegmentStatus::parse(&status).ok_or_else(|| corrupt("status", status))?,
        generation: u32::try_from(get::<i64>(row, "generation")?).map_err(|e| corrupt("generation", e))?,
        progress: u64::try_from(get::<i64>(row, "progress")?).map_err(|e| corrupt("progress", e))?,
        cursor: get::<Option<uuid::Uuid>>(row, "cursor")?.map(ContactId::from_uuid),
        members: u64::try_from(get::<i64>(row, "members")?).map_err(|e| corrupt("members", e))?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// Whether the workspace has segments: its events and contact changes then need deciding.
pub(crate) fn has_segments(db: &Connection, workspace: WorkspaceId) -> StoreResult<bool> {
    db.prepare_cached("SELECT 1 FROM segments WHERE workspace_id = ?1 LIMIT 1")
        .and_then(|mut probe| probe.exists([&workspace.as_uuid().as_bytes()[..]]))
        .map_err(direct_error)
}

/// Enqueues the re-decision of contacts whose attributes changed without an event (an API
/// update, an import), inside a direct transaction, when the workspace has segments. Returns
/// when the job is due.
pub(crate) fn refresh_direct(
    db: &Connection,
    workspace: WorkspaceId,
    contacts: &[ContactId],
    now: Timestamp,
) -> StoreResult<Option<Timestamp>> {
    if contacts.is_empty() || !has_segments(db, workspace)? {
        return Ok(None);
    }
    let job = refresh_job(contacts, now);
    crate::jobs::insert_job_direct(db, workspace, &job, now)?;
    Ok(Some(now))
}

/// [`refresh_direct`] inside a sqlx transaction: for the attribute steps of journeys and
/// actions, committed with their job.
pub(crate) async fn enqueue_refresh(
    tx: &mut Tx,
    workspace: WorkspaceId,
    contacts: &[ContactId],
    now: Timestamp,
) -> StoreResult<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM segments WHERE workspace_id = ? LIMIT 1")
        .bind(workspace.as_uuid())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?;
    if any.is_some() {
        crate::jobs::insert_jobs(tx, workspace, &[refresh_job(contacts, now)], now).await?;
    }
    Ok(())
}

async fn write_references(tx: &mut Tx, workspace: WorkspaceId, id: SegmentId, draft: &SegmentDraft) -> StoreResult<()> {
    sqlx::query("DELETE FROM segment_references WHERE segment_id = ?")
        .bind(id.as_uuid())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    for target in &draft.references {
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM segments WHERE workspace_id = ? AND id = ?")
            .bind(workspace.as_uuid())
            .bind(target.as_uuid())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
        if known.is_none() {
            return Err(NOT_FOUND);
        }
        sqlx::query("INSERT INTO segment_references (segment_id, refers_to) VALUES (?, ?)")
            .bind(id.as_uuid())
            .bind(target.as_uuid())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

async fn read_segment(tx: &mut Tx, workspace: WorkspaceId, id: SegmentId) -> StoreResult<SegmentRecord> {
    let row = sqlx::query(concat!("SELECT ", segment_columns!(), " FROM segments WHERE workspace_id = ? AND id = ?"))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?
        .ok_or(NOT_FOUND)?;
    segment(&row)
}

/// Writes one decision; returns +1, -1 or 0 for the change in members. A live decision
/// whose `was_member` no longer holds fails with the membership race.
async fn decide(tx: &mut Tx, workspace: WorkspaceId, d: &SegmentDecision, now: Timestamp) -> StoreResult<i64> {
    let current: Option<(bool, Option<i64>)> =
        sqlx::query_as("SELECT member, since FROM segment_memberships WHERE segment_id = ? AND contact_id = ?")
            .bind(d.segment_id.as_uuid())
            .bind(d.contact_id.as_uuid())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
    let was = current.is_some_and(|(member, _)| member);
    if d.was_member.is_some_and(|expected| expected != was) {
        return Err(StoreError::Conflict { constraint: MEMBERSHIP_RACE.into() });
    }
    if !d.member && d.recheck_at.is_none() {
        sqlx::query("DELETE FROM segment_memberships WHERE segment_id = ? AND contact_id = ?")
            .bind(d.segment_id.as_uuid())
            .bind(d.contact_id.as_uuid())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    } else {
        let since = match (d.member, was) {
            (true, true) => current.and_then(|(_, since)| since),
            (true, false) => Some(now.unix_millis()),
            (false, _) => None,
        };
        sqlx::query(
            "INSERT INTO segment_memberships (segment_id, contact_id, workspace_id, member, since, recheck_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (segment_id, contact_id) DO UPDATE SET \
             member = excluded.member, since = excluded.since, recheck_at = excluded.recheck_at",
        )
        .bind(d.segment_id.as_uuid())
        .bind(d.contact_id.as_uuid())
        .bind(workspace.as_uuid())
        .bind(d.member)
        .bind(since)
        .bind(d.recheck_at.map(Timestamp::unix_millis))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    if d.member == was {
        return Ok(0);
    }
    sqlx::query(
        "INSERT INTO segment_history (workspace_id, segment_id, contact_id, entered, at, reason) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(workspace.as_uuid())
    .bind(d.segment_id.as_uuid())
    .bind(d.contact_id.as_uuid())
    .bind(d.member)
    .bind(now.unix_millis())
    .bind(&d.reason)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(if d.member { 1 } else { -1 })
}

/// Moves the segments' member counts and today's sizes by the changes of a transaction.
async fn count_changes(tx: &mut Tx, mut changes: Vec<(SegmentId, i64)>, now: Timestamp) -> StoreResult<()> {
    let day = day_of(now);
    changes.sort();
    for (segment, delta) in changes.iter().filter(|(_, d)| *d != 0) {
        let members: i64 =
            sqlx::query_scalar("UPDATE segments SET members = members + ? WHERE id = ? RETURNING members")
                .bind(delta)
                .bind(segment.as_uuid())
                .fetch_one(&mut **tx)
                .await
                .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO segment_sizes (segment_id, day, members) VALUES (?, ?, ?) \
             ON CONFLICT (segment_id, day) DO UPDATE SET members = excluded.members",
        )
        .bind(segment.as_uuid())
        .bind(&day)
        .bind(members)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

#[async_trait]
impl SegmentStore for SqliteStore {
    async fn create_segment(
        &self,
        workspace: WorkspaceId,
        draft: &SegmentDraft,
        now: Timestamp,
    ) -> StoreResult<SegmentRecord> {
        let id = SegmentId::from_uuid(new_uuid(now));
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO segments (id, workspace_id, name, definition, status, generation, created_at, updated_at) \
             VALUES (?, ?, ?, ?, 'building', 1, ?, ?)",
        )
        .bind(id.as_uuid())
        .bind(workspace.as_uuid())
        .bind(&draft.name)
        .bind(draft.definition.to_string())
        .bind(now.unix_millis())
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        write_references(&mut tx, workspace, id, draft).await?;
        crate::jobs::insert_jobs(&mut tx, workspace, &[build_job(id, 1, now)], now).await?;
        let record = read_segment(&mut tx, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(record)
    }

    async fn update_segment(
        &self,
        workspace: WorkspaceId,
        id: SegmentId,
        draft: &SegmentDraft,
        now: Timestamp,
    ) -> StoreResult<SegmentRecord> {
        let mut tx = self.write().await?;
        let generation: i64 = sqlx::query_scalar(
            "UPDATE segments SET name = ?, definition = ?, status = 'building', generation = generation + 1, \
             progress = 0, cursor = NULL, updated_at = ? WHERE workspace_id = ? AND id = ? RETURNING generation",
        )
        .bind(&draft.name)
        .bind(draft.definition.to_string())
        .bind(now.unix_millis())
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or(NOT_FOUND)?;
        write_references(&mut tx, workspace, id, draft).await?;
        let generation = u32::try_from(generation).map_err(|e| corrupt("generation", e))?;
        crate::jobs::insert_jobs(&mut tx, workspace, &[build_job(id, generation, now)], now).await?;
        let record = read_segment(&mut tx, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(record)
    }

    async fn delete_segment(&self, workspace: WorkspaceId, id: SegmentId) -> StoreResult<()> {
        let mut tx = self.write().await?;
        read_segment(&mut tx, workspace, id).await?;
        let used: Option<i64> = sqlx::query_scalar("SELECT 1 FROM segment_references WHERE refers_to = ? LIMIT 1")
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        if used.is_some() {
            return Err(StoreError::Conflict { constraint: REFERENCED.into() });
        }
        sqlx::query("DELETE FROM segments WHERE workspace_id = ? AND id = ?")
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn get_segment(&self, workspace: WorkspaceId, id: SegmentId) -> StoreResult<SegmentRecord> {
        let row =
            sqlx::query(concat!("SELECT ", segment_columns!(), " FROM segments WHERE workspace_id = ? AND id = ?"))
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.readers)
                .await
                .map_err(db_error)?
                .ok_or(NOT_FOUND)?;
        segment(&row)
    }

    async fn list_segments(&self, workspace: WorkspaceId) -> StoreResult<Vec<SegmentRecord>> {
        let rows =
            sqlx::query(concat!("SELECT ", segment_columns!(), " FROM segments WHERE workspace_id = ? ORDER BY id"))
                .bind(workspace.as_uuid())
                .fetch_all(&self.readers)
                .await
                .map_err(db_error)?;
        rows.iter().map(segment).collect()
    }

    async fn contact_memberships(&self, workspace: WorkspaceId, contact: ContactId) -> StoreResult<Vec<Membership>> {
        let rows = sqlx::query(
            "SELECT segment_id, member, since, recheck_at FROM segment_memberships \
             WHERE contact_id = ? AND workspace_id = ?",
        )
        .bind(contact.as_uuid())
        .bind(workspace.as_uuid())
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(Membership {
                    segment_id: SegmentId::from_uuid(uuid(row, "segment_id")?),
                    contact_id: contact,
                    member: get(row, "member")?,
                    since: opt_ts(row, "since")?,
                    recheck_at: opt_ts(row, "recheck_at")?,
                })
            })
            .collect()
    }

    async fn contact_event_facts(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
        names: &[String],
        limit: u32,
    ) -> StoreResult<Vec<EventFact>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT name, occurred_at, properties FROM events WHERE +workspace_id = ");
        query.push_bind(workspace.as_uuid()).push(" AND contact_id = ").push_bind(contact.as_uuid());
        query.push(" AND name IN (");
        let mut list = query.separated(", ");
        for name in names {
            list.push_bind(name.clone());
        }
        query.push(") ORDER BY occurred_at DESC LIMIT ").push_bind(i64::from(limit));
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(EventFact {
                    name: get(row, "name")?,
                    occurred_at: ts(row, "occurred_at")?,
                    properties: rows::json_object(row, "properties")?,
                })
            })
            .collect()
    }

    async fn apply_segment_work(&self, workspace: WorkspaceId, work: &SegmentWork, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let mut changes = Vec::new();
        for decision in &work.decisions {
            let delta = decide(&mut tx, workspace, decision, now).await?;
            tally(&mut changes, decision.segment_id, delta);
        }
        count_changes(&mut tx, changes, now).await?;
        for event in &work.events {
            crate::activity::insert_event(&mut tx, event).await?;
        }
        crate::jobs::insert_jobs(&mut tx, workspace, &work.jobs, now).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn apply_build_page(&self, workspace: WorkspaceId, page: &BuildPage, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let place: Option<(i64, Option<uuid::Uuid>)> =
            sqlx::query_as("SELECT generation, cursor FROM segments WHERE workspace_id = ? AND id = ?")
                .bind(workspace.as_uuid())
                .bind(page.segment.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        if place != Some((i64::from(page.generation), page.after.map(|c| c.as_uuid()))) {
            return Ok(false);
        }
        let mut changes = Vec::new();
        for decision in &page.decisions {
            // Changed since the page was read: its own re-decision (queued with the change)
            // decides it on what is committed.
            let changed: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM contacts c WHERE c.id = ?1 AND (c.updated_at > ?2 OR EXISTS \
                 (SELECT 1 FROM events e WHERE e.contact_id = ?1 AND e.received_at > ?2))",
            )
            .bind(decision.contact_id.as_uuid())
            .bind(page.read_at.unix_millis())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            if changed.is_none() {
                let delta = decide(&mut tx, workspace, decision, now).await?;
                tally(&mut changes, decision.segment_id, delta);
            }
        }
        count_changes(&mut tx, changes, now).await?;
        let status = if page.cursor.is_some() { SegmentStatus::Building } else { SegmentStatus::Ready };
        sqlx::query("UPDATE segments SET progress = progress + ?, cursor = ?, status = ? WHERE id = ?")
            .bind(i64::try_from(page.decided).unwrap_or(i64::MAX))
            .bind(page.cursor.map(|c| c.as_uuid()))
            .bind(status.as_str())
            .bind(page.segment.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        crate::jobs::insert_jobs(&mut tx, workspace, &page.jobs, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn list_members(
        &self,
        workspace: WorkspaceId,
        segment: SegmentId,
        page: PageRequest<ContactId>,
    ) -> StoreResult<Page<Member>> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT m.since AS member_since, c.id, c.workspace_id, c.email, c.user_id, c.phone, c.name, c.first_name, \
             c.last_name, c.attributes, c.created_at, c.updated_at FROM segment_memberships m \
             JOIN contacts c ON c.id = m.contact_id WHERE m.member = 1 AND m.workspace_id = ",
        );
        query.push_bind(workspace.as_uuid()).push(" AND m.segment_id = ").push_bind(segment.as_uuid());
        if let Some(after) = page.after {
            query.push(" AND m.contact_id > ").push_bind(after.as_uuid());
        }
        query.push(" ORDER BY m.contact_id LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
        let members = rows
            .iter()
            .map(|row| Ok(Member { contact: rows::contact(row)?, since: ts(row, "member_since")? }))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(members, page.limit, |m| m.contact.id))
    }

    async fn membership_history(
        &self,
        workspace: WorkspaceId,
        segment: Option<SegmentId>,
        contact: Option<ContactId>,
        limit: u32,
    ) -> StoreResult<Vec<MembershipChange>> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT segment_id, contact_id, entered, at, reason FROM segment_history WHERE workspace_id = ",
        );
        query.push_bind(workspace.as_uuid());
        if let Some(segment) = segment {
            query.push(" AND segment_id = ").push_bind(segment.as_uuid());
        }
        if let Some(contact) = contact {
            query.push(" AND contact_id = ").push_bind(contact.as_uuid());
        }
        query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit));
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(MembershipChange {
                    segment_id: SegmentId::from_uuid(uuid(row, "segment_id")?),
                    contact_id: ContactId::from_uuid(uuid(row, "contact_id")?),
                    entered: get(row, "entered")?,
                    at: ts(row, "at")?,
                    reason: get(row, "reason")?,
                })
            })
            .collect()
    }

    async fn segment_sizes(
        &self,
        workspace: WorkspaceId,
        segment: SegmentId,
        days: u32,
    ) -> StoreResult<Vec<DailySize>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT s.day, s.members FROM segment_sizes s JOIN segments g ON g.id = s.segment_id \
             WHERE g.workspace_id = ? AND s.segment_id = ? ORDER BY s.day DESC LIMIT ?",
        )
        .bind(workspace.as_uuid())
        .bind(segment.as_uuid())
        .bind(i64::from(days))
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        let mut sizes = rows
            .into_iter()
            .map(|(day, members)| {
                Ok(DailySize { day, members: u64::try_from(members).map_err(|e| corrupt("members", e))? })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        sizes.reverse();
        Ok(sizes)
    }
}
