//! The event log and batched ingest on PostgreSQL.
//!
//! A batch is one transaction: lock the contacts its identities match, read its idempotency
//! keys, let `plan_batch` decide, then write changed contacts, new contacts, events and keys
//! with one statement each. Races with concurrent batches (in this process or another) are
//! resolved by running the batch again; see `contacts` for the contact side. Idempotency
//! keys have the same problem: a key first seen by two concurrent batches is missing from
//! both lookups. The key upsert replaces only rows older than the window, so the batch that
//! comes second writes fewer keys than it planned, knows it lost, and runs again, this time
//! replaying the other's receipt.

use std::borrow::Cow;
use std::collections::HashMap;

use async_trait::async_trait;
use herald_domain::{ContactId, Event, EventId, EventOutcome, Page, PageRequest, SourceId, Timestamp, WorkspaceId};
use herald_store::ingest::{
    BatchSnapshot, IDEMPOTENCY_WINDOW, IdempotencyRecord, IngestRequest, IngestResult, Receipt, batch_keys, plan_batch,
};
use herald_store::{EventFilter, EventStore, OutcomeFilter, StoreError, StoreResult};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::contacts::{Taken, insert_contacts, lock_matching, retry, update_contacts};
use crate::encode;
use crate::jobs::insert_jobs;
use crate::rows::{self, event_columns, get, opt_uuid, ts, uuid};
use crate::{PgStore, Tx, db_error};

/// Reads the live idempotency records of the batch's keys.
async fn read_keys(
    conn: &mut PgConnection,
    keys: &[(SourceId, String)],
    window_start: Timestamp,
) -> StoreResult<Vec<IdempotencyRecord>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sources: Vec<Uuid> = keys.iter().map(|(s, _)| s.as_uuid()).collect();
    let names: Vec<_> = keys.iter().map(|(_, k)| encode::text(k)).collect();
    let rows = sqlx::query(
        "SELECT i.source_id, i.key, i.event_id, i.contact_id, i.created_at \
         FROM idempotency_keys i \
         JOIN UNNEST($1::uuid[], $2::text[]) AS t (source_id, key) \
           ON i.source_id = t.source_id AND i.key = t.key \
         WHERE i.created_at > $3",
    )
    .bind(sources)
    .bind(names)
    .bind(encode::ts(window_start))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    // The planner looks keys up as the requests carry them; map a stored (NUL-free) key
    // back to the request's spelling.
    let spelling: HashMap<(SourceId, String), &String> =
        keys.iter().map(|(s, k)| ((*s, encode::text(k).into_owned()), k)).collect();
    rows.iter()
        .map(|row| {
            let source_id = SourceId::from_uuid(uuid(row, "source_id")?);
            let stored: String = get(row, "key")?;
            let key = spelling.get(&(source_id, stored.clone())).map_or(stored, |k| (*k).clone());
            Ok(IdempotencyRecord {
                source_id,
                key,
                receipt: Receipt {
                    event_id: EventId::from_uuid(uuid(row, "event_id")?),
                    contact_id: opt_uuid(row, "contact_id")?.map(ContactId::from_uuid),
                },
                created_at: ts(row, "created_at")?,
            })
        })
        .collect()
}

/// The outcome as `jsonb` accepts it. Its conflicts hold parsed identifiers (no control
/// characters), but notes may come from the receiving side and quote the request.
fn outcome(outcome: &EventOutcome) -> Cow<'_, EventOutcome> {
    if outcome.notes.iter().any(|n| n.contains('\0')) {
        let mut clean = outcome.clone();
        for note in &mut clean.notes {
            *note = encode::text(note).into_owned();
        }
        Cow::Owned(clean)
    } else {
        Cow::Borrowed(outcome)
    }
}

/// Inserts events in one statement.
pub(crate) async fn insert_events(conn: &mut PgConnection, events: &[Event]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = events.iter().map(|e| e.id.as_uuid()).collect();
    let workspaces: Vec<Uuid> = events.iter().map(|e| e.workspace_id.as_uuid()).collect();
    let sources: Vec<Option<Uuid>> = events.iter().map(|e| e.source_id.map(|s| s.as_uuid())).collect();
    let contacts: Vec<Option<Uuid>> = events.iter().map(|e| e.contact_id.map(|c| c.as_uuid())).collect();
    let names: Vec<_> = events.iter().map(|e| encode::opt_text(e.name.as_deref())).collect();
    let properties: Vec<_> = events.iter().map(|e| encode::json_map(&e.properties)).collect();
    let occurred: Vec<OffsetDateTime> = events.iter().map(|e| encode::ts(e.occurred_at)).collect();
    let received: Vec<OffsetDateTime> = events.iter().map(|e| encode::ts(e.received_at)).collect();
    let keys: Vec<_> = events.iter().map(|e| encode::opt_text(e.idempotency_key.as_deref())).collect();
    let methods: Vec<_> = events.iter().map(|e| e.request.as_ref().map(|r| encode::text(&r.method))).collect();
    let content_types: Vec<_> =
        events.iter().map(|e| e.request.as_ref().and_then(|r| encode::opt_text(r.content_type.as_deref()))).collect();
    let bodies: Vec<Option<&[u8]>> = events.iter().map(|e| e.request.as_ref().map(|r| r.body.as_slice())).collect();
    let outcomes: Vec<_> = events.iter().map(|e| outcome(&e.outcome)).collect();
    let outcomes: Vec<Json<&EventOutcome>> = outcomes.iter().map(|o| Json(o.as_ref())).collect();
    sqlx::query(
        "INSERT INTO events (id, workspace_id, source_id, contact_id, name, properties, occurred_at, \
                             received_at, idempotency_key, method, content_type, body, outcome) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::jsonb[], \
                              $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], $11::text[], \
                              $12::bytea[], $13::jsonb[])",
    )
    .bind(ids)
    .bind(workspaces)
    .bind(sources)
    .bind(contacts)
    .bind(names)
    .bind(properties.iter().map(|p| Json(p.as_ref())).collect::<Vec<_>>())
    .bind(occurred)
    .bind(received)
    .bind(keys)
    .bind(methods)
    .bind(content_types)
    .bind(bodies)
    .bind(outcomes)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Upserts the batch's new idempotency records, replacing only expired ones. Returns false
/// when a concurrent batch committed one of the keys first (the batch must run again).
async fn write_keys(
    conn: &mut PgConnection,
    records: &[IdempotencyRecord],
    window_start: Timestamp,
) -> StoreResult<bool> {
    if records.is_empty() {
        return Ok(true);
    }
    // In key order, so two batches sharing keys wait for each other instead of deadlocking.
    // Two keys differing only in a NUL versus U+FFFD are one stored key: the first wins
    // (an upsert may not touch a row twice).
    let mut sorted: Vec<(SourceId, Cow<'_, str>, &IdempotencyRecord)> =
        records.iter().map(|r| (r.source_id, encode::text(&r.key), r)).collect();
    sorted.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    sorted.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let written = sqlx::query(
        "INSERT INTO idempotency_keys (source_id, key, event_id, contact_id, created_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::timestamptz[]) \
         ON CONFLICT (source_id, key) DO UPDATE SET event_id = EXCLUDED.event_id, \
             contact_id = EXCLUDED.contact_id, created_at = EXCLUDED.created_at \
         WHERE idempotency_keys.created_at <= $6",
    )
    .bind(sorted.iter().map(|r| r.0.as_uuid()).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.1.as_ref()).collect::<Vec<&str>>())
    .bind(sorted.iter().map(|r| r.2.receipt.event_id.as_uuid()).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.2.receipt.contact_id.map(|c| c.as_uuid())).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| encode::ts(r.2.created_at)).collect::<Vec<_>>())
    .bind(encode::ts(window_start))
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(written.rows_affected() == sorted.len() as u64)
}

impl PgStore {
    /// One attempt at a batch; `Ok(None)` when it lost a race (a new contact or idempotency
    /// key committed by another batch first) and rolled back.
    async fn try_ingest(&self, requests: &[IngestRequest], now: Timestamp) -> StoreResult<Option<Vec<IngestResult>>> {
        let window_start = now - IDEMPOTENCY_WINDOW;
        let mut keys: Vec<_> = batch_keys(requests).into_iter().collect();
        // Workspaces in id order: with contacts in id order within each, every batch locks
        // in one global order.
        keys.sort_by_key(|(ws, _)| *ws);
        let mut tx = self.begin().await?;
        let mut snapshot = BatchSnapshot::default();
        let mut idempotency = Vec::new();
        for (workspace, keys) in &keys {
            snapshot.contacts.extend(lock_matching(&mut tx, *workspace, keys).await?);
            idempotency.extend(keys.idempotency.iter().cloned());
        }
        snapshot.idempotency = read_keys(&mut tx, &idempotency, window_start).await?;
        let (writes, results) = plan_batch(requests, snapshot, now);
        // Changed contacts first: they are locked already, so this waits on another batch only
        // for an identifier it claims that the other is inserting.
        update_contacts(&mut tx, &writes.changed_contacts).await?;
        if !insert_contacts(&mut tx, &writes.new_contacts, Taken::Skip).await? {
            // Another batch created one of these contacts after our lookup. Dropping the
            // transaction rolls it back; the next attempt finds that contact.
            return Ok(None);
        }
        insert_events(&mut tx, &writes.events).await?;
        if !write_keys(&mut tx, &writes.idempotency, window_start).await? {
            // Dropping the transaction rolls it back.
            return Ok(None);
        }
        enqueue_evaluation(&mut tx, &writes.events, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(results))
    }
}

#[async_trait]
impl EventStore for PgStore {
    async fn ingest(&self, requests: &[IngestRequest], now: Timestamp) -> StoreResult<Vec<IngestResult>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        retry("ingest", || self.try_ingest(requests, now)).await
    }

    async fn list_events(
        &self,
        workspace: WorkspaceId,
        filter: &EventFilter,
        page: PageRequest<EventId>,
    ) -> StoreResult<Page<Event>> {
        let mut query =
            QueryBuilder::<Postgres>::new(concat!("SELECT ", event_columns!(), " FROM events WHERE workspace_id = "));
        query.push_bind(workspace.as_uuid());
        if let Some(after) = page.after {
            query.push(" AND id < ").push_bind(after.as_uuid());
        }
        if let Some(contact) = filter.contact {
            query.push(" AND contact_id = ").push_bind(contact.as_uuid());
        }
        if let Some(name) = &filter.name {
            query.push(" AND name = ").push_bind(encode::text(name).into_owned());
        }
        if let Some(source) = filter.source {
            query.push(" AND source_id = ").push_bind(source.as_uuid());
        }
        if let Some(from) = filter.from {
            query.push(" AND received_at >= ").push_bind(encode::ts(from));
        }
        if let Some(until) = filter.until {
            query.push(" AND received_at < ").push_bind(encode::ts(until));
        }
        if let Some(outcome) = filter.outcome {
            query.push(match outcome {
                OutcomeFilter::ContactCreated => " AND outcome->>'contact' = 'created'",
                OutcomeFilter::ContactUpdated => " AND outcome->>'contact' = 'updated'",
                OutcomeFilter::StartedCampaign => " AND COALESCE(outcome->'campaigns' @> '[{\"action\": \"started\"}]', FALSE)",
                OutcomeFilter::Nothing => {
                    " AND outcome->>'contact' IN ('unchanged', 'skipped') AND NOT COALESCE(outcome->'campaigns' @> '[{\"action\": \"started\"}]', FALSE)"
                }
            });
        }
        query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.pool).await.map_err(db_error)?;
        let events = rows.iter().map(|row| rows::event(row, false)).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(events, page.limit, |e| e.id))
    }

    async fn get_event(&self, workspace: WorkspaceId, id: EventId) -> StoreResult<Event> {
        let row = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            ", method, content_type, body FROM events WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .ok_or(StoreError::NotFound { entity: "event" })?;
        rows::event(&row, true)
    }

    async fn event_names(&self, workspace: WorkspaceId, limit: u32) -> StoreResult<Vec<String>> {
        // A skip scan over the (workspace_id, name, id) index: one seek per distinct name.
        sqlx::query_scalar(
            "WITH RECURSIVE names(name) AS ( \
               SELECT MIN(name) FROM events WHERE workspace_id = $1 AND name IS NOT NULL \
               UNION ALL \
               SELECT (SELECT MIN(e.name) FROM events e WHERE e.workspace_id = $1 AND e.name > names.name) \
               FROM names WHERE names.name IS NOT NULL) \
             SELECT name FROM names WHERE name IS NOT NULL LIMIT $2",
        )
        .bind(workspace.as_uuid())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)
    }

    async fn purge_idempotency_keys(&self, before: Timestamp) -> StoreResult<u64> {
        let purged = sqlx::query(
            "DELETE FROM idempotency_keys k WHERE k.created_at < $1 \
             OR NOT EXISTS (SELECT 1 FROM events e WHERE e.id = k.event_id)",
        )
        .bind(before.to_offset_date_time())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(purged.rows_affected())
    }
}

/// In an ingest transaction: the jobs that will decide segment memberships and evaluate
/// campaign triggers for `events` (in workspaces with campaigns or segments).
pub(crate) async fn enqueue_evaluation(
    tx: &mut Tx,
    events: &[herald_domain::Event],
    now: Timestamp,
) -> StoreResult<()> {
    let mut workspaces: Vec<Uuid> = events.iter().map(|e| e.workspace_id.as_uuid()).collect();
    workspaces.sort();
    workspaces.dedup();
    let live: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT workspace_id FROM campaigns WHERE workspace_id = ANY($1) AND state IN ('active', 'paused') \
         UNION SELECT DISTINCT workspace_id FROM segments WHERE workspace_id = ANY($1)",
    )
    .bind(&workspaces)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    for (workspace, job) in herald_store::campaign::evaluation_jobs(events, |w| live.contains(&w.as_uuid()), now) {
        insert_jobs(tx, workspace, &[job], now).await?;
    }
    Ok(())
}
