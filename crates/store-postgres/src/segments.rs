//! Segments on PostgreSQL: definitions, memberships with their timers, history and daily sizes.
//! A live decision locks the membership row it saw (or, for a contact entering, inserts it
//! only if no other node did meanwhile), so two nodes never record the same change twice.

use async_trait::async_trait;
use herald_domain::{ContactId, Page, PageRequest, SegmentId, Timestamp, WorkspaceId};
use herald_store::campaign::evaluation_jobs;
use herald_store::segment::{
    BuildPage, DailySize, EventFact, MEMBERSHIP_RACE, Member, Membership, MembershipChange, REFERENCED,
    SegmentDecision, SegmentDraft, SegmentRecord, SegmentStatus, SegmentStore, SegmentWork, build_job, day_of, tally,
};
use herald_store::{StoreError, StoreResult, new_uuid};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;

use crate::encode;
use crate::rows::{self, corrupt, count, get, opt_ts, ts, uuid};
use crate::{PgStore, Tx, db_error};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "segment" };

macro_rules! segment_columns {
    () => {
        "id, workspace_id, name, definition, status, generation, progress, cursor, members, created_at, updated_at"
    };
}

fn segment(row: &PgRow) -> StoreResult<SegmentRecord> {
    let status: String = get(row, "status")?;
    Ok(SegmentRecord {
        id: SegmentId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        definition: get::<Json<serde_json::Value>>(row, "definition")?.0,
        status: SegmentStatus::parse(&status).ok_or_else(|| corrupt("status", status))?,
        generation: u32::try_from(get::<i32>(row, "generation")?).map_err(|e| corrupt("generation", e))?,
        progress: count(row, "progress")?,
        cursor: get::<Option<uuid::Uuid>>(row, "cursor")?.map(ContactId::from_uuid),
        members: count(row, "members")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

async fn write_references(tx: &mut Tx, workspace: WorkspaceId, id: SegmentId, draft: &SegmentDraft) -> StoreResult<()> {
    sqlx::query("DELETE FROM segment_references WHERE segment_id = $1")
        .bind(id.as_uuid())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    for target in &draft.references {
        // Locked, so a concurrent deletion waits for this reference and then refuses.
        let known: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM segments WHERE workspace_id = $1 AND id = $2 FOR SHARE")
                .bind(workspace.as_uuid())
                .bind(target.as_uuid())
                .fetch_optional(&mut **tx)
                .await
                .map_err(db_error)?;
        if known.is_none() {
            return Err(NOT_FOUND);
        }
        sqlx::query("INSERT INTO segment_references (segment_id, refers_to) VALUES ($1, $2)")
            .bind(id.as_uuid())
            .bind(target.as_uuid())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

async fn read_segment(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    id: SegmentId,
    lock: bool,
) -> StoreResult<SegmentRecord> {
    let sql = if lock {
        concat!("SELECT ", segment_columns!(), " FROM segments WHERE workspace_id = $1 AND id = $2 FOR UPDATE")
    } else {
        concat!("SELECT ", segment_columns!(), " FROM segments WHERE workspace_id = $1 AND id = $2")
    };
    let row = sqlx::query(sql)
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?
        .ok_or(NOT_FOUND)?;
    segment(&row)
}

/// Writes one decision; returns +1, -1 or 0 for the change in members.
async fn decide(tx: &mut Tx, workspace: WorkspaceId, d: &SegmentDecision, now: Timestamp) -> StoreResult<i64> {
    let race = || StoreError::Conflict { constraint: MEMBERSHIP_RACE.into() };
    let current: Option<(bool, Option<OffsetDateTime>)> = sqlx::query_as(
        "SELECT member, since FROM segment_memberships WHERE segment_id = $1 AND contact_id = $2 FOR UPDATE",
    )
    .bind(d.segment_id.as_uuid())
    .bind(d.contact_id.as_uuid())
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    let was = current.is_some_and(|(member, _)| member);
    if d.was_member.is_some_and(|expected| expected != was) {
        return Err(race());
    }
    if !d.member && d.recheck_at.is_none() {
        sqlx::query("DELETE FROM segment_memberships WHERE segment_id = $1 AND contact_id = $2")
            .bind(d.segment_id.as_uuid())
            .bind(d.contact_id.as_uuid())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    } else {
        let since = match (d.member, was) {
            (true, true) => current.and_then(|(_, since)| since),
            (true, false) => Some(encode::ts(now)),
            (false, _) => None,
        };
        // Entering: another node's uncommitted entry of the same contact makes this wait, then
        // update nothing.
        let written = sqlx::query(
            "INSERT INTO segment_memberships (segment_id, contact_id, workspace_id, member, since, recheck_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (segment_id, contact_id) DO UPDATE SET \
             member = excluded.member, since = excluded.since, recheck_at = excluded.recheck_at \
             WHERE segment_memberships.member = $7 OR NOT excluded.member",
        )
        .bind(d.segment_id.as_uuid())
        .bind(d.contact_id.as_uuid())
        .bind(workspace.as_uuid())
        .bind(d.member)
        .bind(since)
        .bind(d.recheck_at.map(encode::ts))
        .bind(was)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
        if written.rows_affected() == 0 {
            return Err(race());
        }
    }
    if d.member == was {
        return Ok(0);
    }
    sqlx::query(
        "INSERT INTO segment_history (workspace_id, segment_id, contact_id, entered, at, reason) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(workspace.as_uuid())
    .bind(d.segment_id.as_uuid())
    .bind(d.contact_id.as_uuid())
    .bind(d.member)
    .bind(encode::ts(now))
    .bind(encode::text(&d.reason).as_ref())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(if d.member { 1 } else { -1 })
}

/// Moves the segments' member counts and today's sizes, in segment order (no deadlocks
/// between two transactions counting the same segments).
async fn count_changes(tx: &mut Tx, mut changes: Vec<(SegmentId, i64)>, now: Timestamp) -> StoreResult<()> {
    let day = day_of(now);
    changes.sort();
    for (segment, delta) in changes.iter().filter(|(_, d)| *d != 0) {
        let members: i64 =
            sqlx::query_scalar("UPDATE segments SET members = members + $1 WHERE id = $2 RETURNING members")
                .bind(delta)
                .bind(segment.as_uuid())
                .fetch_one(&mut **tx)
                .await
                .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO segment_sizes (segment_id, day, members) VALUES ($1, $2, $3) \
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

/// Writes one page of a build inside `tx`; `false` (writing nothing) when the segment was
/// edited or deleted since, or another run wrote the page.
async fn build_page(tx: &mut Tx, workspace: WorkspaceId, page: &BuildPage, now: Timestamp) -> StoreResult<bool> {
    let place: Option<(i32, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT generation, cursor FROM segments WHERE workspace_id = $1 AND id = $2 FOR UPDATE")
            .bind(workspace.as_uuid())
            .bind(page.segment.as_uuid())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
    let generation = i32::try_from(page.generation).unwrap_or(i32::MAX);
    if place != Some((generation, page.after.map(|c| c.as_uuid()))) {
        return Ok(false);
    }
    let mut changes = Vec::new();
    for decision in &page.decisions {
        // Changed since the page was read: its own re-decision (queued with the change)
        // decides it on what is committed.
        let changed: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM contacts c WHERE c.id = $1 AND (c.updated_at > $2 OR EXISTS \
             (SELECT 1 FROM events e WHERE e.contact_id = $1 AND e.received_at > $2))",
        )
        .bind(decision.contact_id.as_uuid())
        .bind(encode::ts(page.read_at))
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?;
        if changed.is_none() {
            let delta = decide(tx, workspace, decision, now).await?;
            tally(&mut changes, decision.segment_id, delta);
        }
    }
    let status = if page.cursor.is_some() { SegmentStatus::Building } else { SegmentStatus::Ready };
    sqlx::query("UPDATE segments SET progress = progress + $1, cursor = $2, status = $3 WHERE id = $4")
        .bind(i64::try_from(page.decided).unwrap_or(i64::MAX))
        .bind(page.cursor.map(|c| c.as_uuid()))
        .bind(status.as_str())
        .bind(page.segment.as_uuid())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    count_changes(tx, changes, now).await?;
    crate::jobs::insert_jobs(tx, workspace, &page.jobs, now).await?;
    Ok(true)
}

#[async_trait]
impl SegmentStore for PgStore {
    async fn create_segment(
        &self,
        workspace: WorkspaceId,
        draft: &SegmentDraft,
        now: Timestamp,
    ) -> StoreResult<SegmentRecord> {
        let id = SegmentId::from_uuid(new_uuid(now));
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO segments (id, workspace_id, name, definition, status, generation, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'building', 1, $5, $5)",
        )
        .bind(id.as_uuid())
        .bind(workspace.as_uuid())
        .bind(encode::text(&draft.name).as_ref())
        .bind(Json(&draft.definition))
        .bind(encode::ts(now))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        write_references(&mut tx, workspace, id, draft).await?;
        crate::jobs::insert_jobs(&mut tx, workspace, &[build_job(id, 1, now)], now).await?;
        let record = read_segment(&mut tx, workspace, id, false).await?;
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
        let mut tx = self.begin().await?;
        let generation: i32 = sqlx::query_scalar(
            "UPDATE segments SET name = $1, definition = $2, status = 'building', generation = generation + 1, \
             progress = 0, cursor = NULL, updated_at = $3 WHERE workspace_id = $4 AND id = $5 RETURNING generation",
        )
        .bind(encode::text(&draft.name).as_ref())
        .bind(Json(&draft.definition))
        .bind(encode::ts(now))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or(NOT_FOUND)?;
        write_references(&mut tx, workspace, id, draft).await?;
        let generation = u32::try_from(generation).map_err(|e| corrupt("generation", e))?;
        crate::jobs::insert_jobs(&mut tx, workspace, &[build_job(id, generation, now)], now).await?;
        let record = read_segment(&mut tx, workspace, id, false).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(record)
    }

    async fn delete_segment(&self, workspace: WorkspaceId, id: SegmentId) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        read_segment(&mut tx, workspace, id, true).await?;
        let used: Option<i32> = sqlx::query_scalar("SELECT 1 FROM segment_references WHERE refers_to = $1 LIMIT 1")
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        if used.is_some() {
            return Err(StoreError::Conflict { constraint: REFERENCED.into() });
        }
        sqlx::query("DELETE FROM segments WHERE workspace_id = $1 AND id = $2")
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn get_segment(&self, workspace: WorkspaceId, id: SegmentId) -> StoreResult<SegmentRecord> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        read_segment(&mut conn, workspace, id, false).await
    }

    async fn list_segments(&self, workspace: WorkspaceId) -> StoreResult<Vec<SegmentRecord>> {
        let rows =
            sqlx::query(concat!("SELECT ", segment_columns!(), " FROM segments WHERE workspace_id = $1 ORDER BY id"))
                .bind(workspace.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        rows.iter().map(segment).collect()
    }

    async fn memberships_of(&self, workspace: WorkspaceId, contacts: &[ContactId]) -> StoreResult<Vec<Membership>> {
        let ids: Vec<uuid::Uuid> = contacts.iter().map(|c| c.as_uuid()).collect();
        let rows = sqlx::query(
            "SELECT segment_id, contact_id, member, since, recheck_at FROM segment_memberships \
             WHERE contact_id = ANY($1) AND workspace_id = $2",
        )
        .bind(&ids)
        .bind(workspace.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(Membership {
                    segment_id: SegmentId::from_uuid(uuid(row, "segment_id")?),
                    contact_id: ContactId::from_uuid(uuid(row, "contact_id")?),
                    member: get(row, "member")?,
                    since: opt_ts(row, "since")?,
                    recheck_at: opt_ts(row, "recheck_at")?,
                })
            })
            .collect()
    }

    async fn event_facts_of(
        &self,
        workspace: WorkspaceId,
        contacts: &[ContactId],
        names: &[String],
        limit: u32,
    ) -> StoreResult<Vec<(ContactId, EventFact)>> {
        if names.is_empty() || contacts.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<uuid::Uuid> = contacts.iter().map(|c| c.as_uuid()).collect();
        // Each contact's newest `limit`, through its own index scan.
        let rows = sqlx::query(
            "SELECT c.id AS contact_id, f.name, f.occurred_at, f.properties FROM unnest($2::uuid[]) AS c (id) \
             CROSS JOIN LATERAL (SELECT name, occurred_at, properties FROM events \
             WHERE workspace_id = $1 AND contact_id = c.id AND name = ANY($3) \
             ORDER BY occurred_at DESC LIMIT $4) f ORDER BY c.id, f.occurred_at DESC",
        )
        .bind(workspace.as_uuid())
        .bind(&ids)
        .bind(names)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let fact = EventFact {
                    name: get(row, "name")?,
                    occurred_at: ts(row, "occurred_at")?,
                    properties: rows::object(row, "properties")?,
                };
                Ok((ContactId::from_uuid(uuid(row, "contact_id")?), fact))
            })
            .collect()
    }

    async fn apply_segment_work(&self, workspace: WorkspaceId, work: &SegmentWork, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let mut changes = Vec::new();
        for decision in &work.decisions {
            let delta = decide(&mut tx, workspace, decision, now).await?;
            tally(&mut changes, decision.segment_id, delta);
        }
        count_changes(&mut tx, changes, now).await?;
        crate::events::insert_events(&mut tx, &work.events).await?;
        let mut jobs = work.jobs.clone();
        if !work.events.is_empty() {
            let live: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM campaigns WHERE workspace_id = $1 AND state IN ('active', 'paused') LIMIT 1",
            )
            .bind(workspace.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            if work.evaluate || live.is_some() {
                jobs.extend(evaluation_jobs(&work.events, |_| true, now).into_iter().map(|(_, job)| job));
            }
        }
        crate::jobs::insert_jobs(&mut tx, workspace, &jobs, now).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn apply_build_pages(
        &self,
        workspace: WorkspaceId,
        pages: &[BuildPage],
        now: Timestamp,
    ) -> StoreResult<Vec<bool>> {
        let mut tx = self.begin().await?;
        // In segment order: two nodes locking the same segments never wait for each other in
        // a circle.
        let mut order: Vec<usize> = (0..pages.len()).collect();
        order.sort_by_key(|&i| pages[i].segment);
        let mut written = vec![false; pages.len()];
        for i in order {
            written[i] = build_page(&mut tx, workspace, &pages[i], now).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(written)
    }

    async fn list_members(
        &self,
        workspace: WorkspaceId,
        segment: SegmentId,
        page: PageRequest<ContactId>,
    ) -> StoreResult<Page<Member>> {
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT m.since AS member_since, c.id, c.workspace_id, c.email, c.user_id, c.phone, c.name, c.first_name, \
             c.last_name, c.attributes, c.created_at, c.updated_at FROM segment_memberships m \
             JOIN contacts c ON c.id = m.contact_id WHERE m.member AND m.workspace_id = ",
        );
        query.push_bind(workspace.as_uuid()).push(" AND m.segment_id = ").push_bind(segment.as_uuid());
        if let Some(after) = page.after {
            query.push(" AND m.contact_id > ").push_bind(after.as_uuid());
        }
        query.push(" ORDER BY m.contact_id LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.pool).await.map_err(db_error)?;
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
        let rows = sqlx::query(
            "SELECT segment_id, contact_id, entered, at, reason FROM segment_history WHERE workspace_id = $1 \
             AND ($2::uuid IS NULL OR segment_id = $2) AND ($3::uuid IS NULL OR contact_id = $3) \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(workspace.as_uuid())
        .bind(segment.map(|s| s.as_uuid()))
        .bind(contact.map(|c| c.as_uuid()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
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
        let rows = sqlx::query(
            "SELECT s.day, s.members FROM segment_sizes s JOIN segments g ON g.id = s.segment_id \
             WHERE g.workspace_id = $1 AND s.segment_id = $2 ORDER BY s.day DESC LIMIT $3",
        )
        .bind(workspace.as_uuid())
        .bind(segment.as_uuid())
        .bind(i64::from(days))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut sizes = rows
            .iter()
            .map(|row| Ok(DailySize { day: get(row, "day")?, members: count(row, "members")? }))
            .collect::<StoreResult<Vec<_>>>()?;
        sizes.reverse();
        Ok(sizes)
    }
}
