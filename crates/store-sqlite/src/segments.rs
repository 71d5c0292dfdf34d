//! Segments on SQLite: definitions, memberships with their timers, history and daily sizes.

use std::collections::HashMap;

use async_trait::async_trait;
use herald_domain::{ContactId, NewJob, Page, PageRequest, SegmentId, Timestamp, WorkspaceId};
use herald_store::campaign::evaluation_jobs;
use herald_store::segment::{
    BuildPage, DailySize, EventFact, MEMBERSHIP_RACE, Member, Membership, MembershipChange, REFERENCED,
    SegmentDecision, SegmentDraft, SegmentRecord, SegmentStatus, SegmentStore, SegmentWork, build_job, day_of,
    refresh_job, tally,
};
use herald_store::{StoreError, StoreResult, new_uuid};
use rusqlite::{Connection, OptionalExtension, params};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::direct::direct_error;
use crate::rows::{self, corrupt, get, opt_ts, ts, uuid};
use crate::{SqliteStore, Tx, db_error};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "segment" };
/// Contacts per read of a batch's standings or events (bound parameters stay well within
/// SQLite's limit).
const READ_CHUNK: usize = 500;

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
/// whose `was_member` no longer holds fails with the membership race. Runs on the direct
/// writer: a batch of decisions is hundreds of statements, each costing SQLite's time only.
fn decide(db: &Connection, workspace: WorkspaceId, d: &SegmentDecision, now: Timestamp) -> StoreResult<i64> {
    let (segment, contact) = (d.segment_id.as_uuid().into_bytes(), d.contact_id.as_uuid().into_bytes());
    let current: Option<(bool, Option<i64>)> = db
        .prepare_cached("SELECT member, since FROM segment_memberships WHERE segment_id = ?1 AND contact_id = ?2")
        .and_then(|mut read| read.query_row(params![segment, contact], |row| Ok((row.get(0)?, row.get(1)?))).optional())
        .map_err(direct_error)?;
    let was = current.is_some_and(|(member, _)| member);
    if d.was_member.is_some_and(|expected| expected != was) {
        return Err(StoreError::Conflict { constraint: MEMBERSHIP_RACE.into() });
    }
    if !d.member && d.recheck_at.is_none() {
        // Non-members without a timer have no row.
        if current.is_some() {
            db.prepare_cached("DELETE FROM segment_memberships WHERE segment_id = ?1 AND contact_id = ?2")
                .and_then(|mut delete| delete.execute(params![segment, contact]))
                .map_err(direct_error)?;
        }
    } else {
        let since = match (d.member, was) {
            (true, true) => current.and_then(|(_, since)| since),
            (true, false) => Some(now.unix_millis()),
            (false, _) => None,
        };
        db.prepare_cached(
            "INSERT INTO segment_memberships (segment_id, contact_id, workspace_id, member, since, recheck_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (segment_id, contact_id) DO UPDATE SET \
             member = excluded.member, since = excluded.since, recheck_at = excluded.recheck_at",
        )
        .and_then(|mut upsert| {
            upsert.execute(params![
                segment,
                contact,
                &workspace.as_uuid().as_bytes()[..],
                d.member,
                since,
                d.recheck_at.map(Timestamp::unix_millis)
            ])
        })
        .map_err(direct_error)?;
    }
    if d.member == was {
        return Ok(0);
    }
    db.prepare_cached(
        "INSERT INTO segment_history (workspace_id, segment_id, contact_id, entered, at, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            &workspace.as_uuid().as_bytes()[..],
            segment,
            contact,
            d.member,
            now.unix_millis(),
            d.reason
        ])
    })
    .map_err(direct_error)?;
    Ok(if d.member { 1 } else { -1 })
}

/// Moves the segments' member counts and today's sizes by the changes of a transaction.
fn count_changes(db: &Connection, mut changes: Vec<(SegmentId, i64)>, now: Timestamp) -> StoreResult<()> {
    let day = day_of(now);
    changes.sort();
    for (segment, delta) in changes.iter().filter(|(_, d)| *d != 0) {
        let segment = segment.as_uuid().into_bytes();
        let members: i64 = db
            .prepare_cached("UPDATE segments SET members = members + ?1 WHERE id = ?2 RETURNING members")
            .and_then(|mut update| update.query_row(params![delta, segment], |row| row.get(0)))
            .map_err(direct_error)?;
        db.prepare_cached(
            "INSERT INTO segment_sizes (segment_id, day, members) VALUES (?1, ?2, ?3) \
             ON CONFLICT (segment_id, day) DO UPDATE SET members = excluded.members",
        )
        .and_then(|mut upsert| upsert.execute(params![segment, day, members]))
        .map_err(direct_error)?;
    }
    Ok(())
}

/// Inserts a transaction's jobs (segment and evaluation jobs carry no secret); when the
/// earliest is due, for the store to announce after the commit.
fn insert_jobs(
    db: &Connection,
    workspace: WorkspaceId,
    jobs: &[NewJob],
    now: Timestamp,
) -> StoreResult<Option<Timestamp>> {
    for job in jobs {
        crate::jobs::insert_job_direct(db, workspace, job, now)?;
    }
    Ok(jobs.iter().map(|job| job.run_at).min())
}

/// Whether a build page's segment is still at the generation and place the page was read
/// for (not edited or deleted since, and no other run wrote the page).
fn build_place_holds(db: &Connection, workspace: WorkspaceId, page: &BuildPage) -> StoreResult<bool> {
    let place: Option<(i64, Option<Vec<u8>>)> = db
        .prepare_cached("SELECT generation, cursor FROM segments WHERE workspace_id = ?1 AND id = ?2")
        .and_then(|mut read| {
            read.query_row(params![workspace.as_uuid().into_bytes(), page.segment.as_uuid().into_bytes()], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
        })
        .map_err(direct_error)?;
    let after = page.after.map(|c| c.as_uuid().as_bytes().to_vec());
    Ok(place == Some((i64::from(page.generation), after)))
}

/// Whether the workspace has a campaign whose triggers may react to events.
fn live_campaigns(db: &Connection, workspace: WorkspaceId) -> StoreResult<bool> {
    db.prepare_cached("SELECT 1 FROM campaigns WHERE workspace_id = ?1 AND state IN ('active', 'paused') LIMIT 1")
        .and_then(|mut probe| probe.exists([&workspace.as_uuid().as_bytes()[..]]))
        .map_err(direct_error)
}

/// Whether the contact changed after `read_at`: its attributes, or an event received since.
fn changed_since(db: &Connection, contact: ContactId, read_at: Timestamp) -> StoreResult<bool> {
    db.prepare_cached(
        "SELECT 1 FROM contacts c WHERE c.id = ?1 AND (c.updated_at > ?2 OR EXISTS \
         (SELECT 1 FROM events e WHERE e.contact_id = ?1 AND e.received_at > ?2))",
    )
    .and_then(|mut probe| probe.exists(params![&contact.as_uuid().as_bytes()[..], read_at.unix_millis()]))
    .map_err(direct_error)
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

    async fn memberships_of(&self, workspace: WorkspaceId, contacts: &[ContactId]) -> StoreResult<Vec<Membership>> {
        let mut found = Vec::new();
        for chunk in contacts.chunks(READ_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT segment_id, contact_id, member, since, recheck_at FROM segment_memberships WHERE contact_id IN (",
            );
            let mut list = query.separated(", ");
            for contact in chunk {
                list.push_bind(contact.as_uuid());
            }
            query.push(") AND workspace_id = ").push_bind(workspace.as_uuid());
            let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
            for row in &rows {
                found.push(Membership {
                    segment_id: SegmentId::from_uuid(uuid(row, "segment_id")?),
                    contact_id: ContactId::from_uuid(uuid(row, "contact_id")?),
                    member: get(row, "member")?,
                    since: opt_ts(row, "since")?,
                    recheck_at: opt_ts(row, "recheck_at")?,
                });
            }
        }
        Ok(found)
    }

    async fn event_facts_of(
        &self,
        workspace: WorkspaceId,
        contacts: &[ContactId],
        names: &[String],
        limit: u32,
    ) -> StoreResult<Vec<(ContactId, EventFact)>> {
        let mut found = Vec::new();
        if names.is_empty() {
            return Ok(found);
        }
        for chunk in contacts.chunks(READ_CHUNK) {
            // `+workspace_id`: the contacts' index, not the workspace's, finds the rows.
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT contact_id, name, occurred_at, properties FROM (SELECT contact_id, name, occurred_at, \
                 properties, row_number() OVER (PARTITION BY contact_id ORDER BY occurred_at DESC) AS n \
                 FROM events WHERE +workspace_id = ",
            );
            query.push_bind(workspace.as_uuid()).push(" AND contact_id IN (");
            let mut list = query.separated(", ");
            for contact in chunk {
                list.push_bind(contact.as_uuid());
            }
            query.push(") AND name IN (");
            let mut list = query.separated(", ");
            for name in names {
                list.push_bind(name.clone());
            }
            query.push(")) WHERE n <= ").push_bind(i64::from(limit)).push(" ORDER BY contact_id, n");
            let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
            for row in &rows {
                let fact = EventFact {
                    name: get(row, "name")?,
                    occurred_at: ts(row, "occurred_at")?,
                    properties: rows::json_object(row, "properties")?,
                };
                found.push((ContactId::from_uuid(uuid(row, "contact_id")?), fact));
            }
        }
        Ok(found)
    }

    async fn apply_segment_work(&self, workspace: WorkspaceId, work: &SegmentWork, now: Timestamp) -> StoreResult<()> {
        let due = self
            .write_direct(|db| {
                let mut changes = Vec::new();
                for decision in &work.decisions {
                    let delta = decide(db, workspace, decision, now)?;
                    tally(&mut changes, decision.segment_id, delta);
                }
                count_changes(db, changes, now)?;
                crate::events::insert_events(db, &work.events)?;
                let mut jobs = work.jobs.clone();
                if !work.events.is_empty() && (work.evaluate || live_campaigns(db, workspace)?) {
                    jobs.extend(evaluation_jobs(&work.events, |_| true, now).into_iter().map(|(_, job)| job));
                }
                insert_jobs(db, workspace, &jobs, now)
            })
            .await?;
        self.announce(due);
        Ok(())
    }

    async fn apply_build_pages(
        &self,
        workspace: WorkspaceId,
        pages: &[BuildPage],
        now: Timestamp,
    ) -> StoreResult<Vec<bool>> {
        let (written, due) = self
            .write_direct(|db| {
                // Whether each contact changed since its page was read, asked once per contact.
                let mut changed: HashMap<(ContactId, Timestamp), bool> = HashMap::new();
                let mut counts = Vec::new();
                let (mut written, mut jobs) = (Vec::with_capacity(pages.len()), Vec::new());
                for page in pages {
                    if !build_place_holds(db, workspace, page)? {
                        written.push(false);
                        continue;
                    }
                    for decision in &page.decisions {
                        let key = (decision.contact_id, page.read_at);
                        let since = match changed.get(&key) {
                            Some(since) => *since,
                            None => {
                                let since = changed_since(db, decision.contact_id, page.read_at)?;
                                changed.insert(key, since);
                                since
                            }
                        };
                        // Changed since the page was read: its own re-decision (queued with
                        // the change) decides it on what is committed.
                        if !since {
                            let delta = decide(db, workspace, decision, now)?;
                            tally(&mut counts, decision.segment_id, delta);
                        }
                    }
                    let status = if page.cursor.is_some() { SegmentStatus::Building } else { SegmentStatus::Ready };
                    db.prepare_cached(
                        "UPDATE segments SET progress = progress + ?1, cursor = ?2, status = ?3 WHERE id = ?4",
                    )
                    .and_then(|mut update| {
                        update.execute(params![
                            i64::try_from(page.decided).unwrap_or(i64::MAX),
                            page.cursor.map(|c| c.as_uuid().into_bytes()),
                            status.as_str(),
                            page.segment.as_uuid().into_bytes()
                        ])
                    })
                    .map_err(direct_error)?;
                    jobs.extend(page.jobs.iter().cloned());
                    written.push(true);
                }
                count_changes(db, counts, now)?;
                Ok((written, insert_jobs(db, workspace, &jobs, now)?))
            })
            .await?;
        self.announce(due);
        Ok(written)
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
