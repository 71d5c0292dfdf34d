//! The event log and batched ingest on SQLite. A batch is one `BEGIN IMMEDIATE` transaction
//! on the single writer: read the contacts and idempotency keys it needs, let the shared
//! planner decide, write with multi-row statements, commit once for every request in it.

use std::collections::HashMap;

use async_trait::async_trait;
use herald_domain::{Contact, ContactId, Event, EventId, Page, PageRequest, SourceId, Timestamp, WorkspaceId};
use herald_store::ingest::{
    BatchSnapshot, IdempotencyRecord, IngestRequest, IngestResult, Receipt, batch_keys, plan_batch,
};
use herald_store::{EventFilter, EventStore, OutcomeFilter, StoreError, StoreResult};
use rusqlite::{Connection, params};
use sqlx::{QueryBuilder, Sqlite};

use crate::contacts::{read_contacts, update_contact_data, write_contacts};
use crate::direct::{self, direct_error};
use crate::rows;
use crate::{SqliteStore, db_error};

macro_rules! event_columns {
    () => {
        "id, workspace_id, source_id, contact_id, name, properties, occurred_at, received_at, idempotency_key, outcome"
    };
}

fn read_idempotency(db: &Connection, keys: &[(SourceId, String)]) -> StoreResult<Vec<IdempotencyRecord>> {
    let mut found = Vec::new();
    if keys.is_empty() {
        return Ok(found);
    }
    let mut select = db
        .prepare_cached(
            "SELECT event_id, contact_id, created_at FROM idempotency_keys WHERE source_id = ?1 AND key = ?2",
        )
        .map_err(direct_error)?;
    for (source, key) in keys {
        let mut rows = select.query(params![&source.as_uuid().as_bytes()[..], key]).map_err(direct_error)?;
        if let Some(row) = rows.next().map_err(direct_error)? {
            found.push(IdempotencyRecord {
                source_id: *source,
                key: key.clone(),
                receipt: Receipt {
                    event_id: EventId::from_uuid(direct::id(row, 0)?),
                    contact_id: direct::opt_id(row, 1)?.map(ContactId::from_uuid),
                },
                created_at: Timestamp::from_unix_millis(row.get(2).map_err(direct_error)?),
            });
        }
    }
    Ok(found)
}

fn identity_columns(c: &Contact) -> [Option<String>; 3] {
    [
        c.email.as_ref().map(|e| e.as_str().to_owned()),
        c.user_id.as_ref().map(|u| u.as_str().to_owned()),
        c.phone.as_ref().map(|p| p.as_str().to_owned()),
    ]
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn ingest(&self, requests: &[IngestRequest], now: Timestamp) -> StoreResult<Vec<IngestResult>> {
        let (results, due) = self.write_direct(|db| {
            let mut snapshot = BatchSnapshot::default();
            for (workspace, keys) in batch_keys(requests) {
                snapshot.contacts.extend(read_contacts(db, workspace, &keys)?);
                snapshot.idempotency.extend(read_idempotency(db, &keys.idempotency)?);
            }
            // The identities as read, to tell a contact that only gained attributes (most
            // events) from one whose email, user id or phone changed.
            let read: HashMap<ContactId, [Option<String>; 3]> =
                snapshot.contacts.iter().map(|c| (c.id, identity_columns(c))).collect();
            let (mut writes, results) = plan_batch(requests, snapshot, now);
            let (same_identity, reidentified): (Vec<Contact>, Vec<Contact>) =
                std::mem::take(&mut writes.changed_contacts)
                    .into_iter()
                    .partition(|c| read.get(&c.id) == Some(&identity_columns(c)));
            writes.changed_contacts = reidentified;
            write_contacts(db, &writes)?;
            update_contact_data(db, &same_identity)?;
            insert_events(db, &writes.events)?;
            if !writes.idempotency.is_empty() {
                let mut upsert = db
                    .prepare_cached(
                        "INSERT INTO idempotency_keys (source_id, key, event_id, contact_id, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (source_id, key) DO UPDATE SET \
                         event_id = excluded.event_id, contact_id = excluded.contact_id, created_at = excluded.created_at",
                    )
                    .map_err(direct_error)?;
                for r in &writes.idempotency {
                    upsert
                        .execute(params![
                            &r.source_id.as_uuid().as_bytes()[..],
                            r.key,
                            &r.receipt.event_id.as_uuid().as_bytes()[..],
                            r.receipt.contact_id.map(|c| c.as_uuid().into_bytes()),
                            r.created_at.unix_millis(),
                        ])
                        .map_err(direct_error)?;
                }
            }
            let due = crate::campaigns::enqueue_evaluation(db, &writes.events, now)?;
            Ok((results, due))
        })
        .await?;
        // The direct writer's commit is done: the evaluations may run.
        if let Some(due) = due {
            self.signal.jobs_due(due);
        }
        Ok(results)
    }

    async fn list_events(
        &self,
        workspace: WorkspaceId,
        filter: &EventFilter,
        page: PageRequest<EventId>,
    ) -> StoreResult<Page<Event>> {
        let mut query =
            QueryBuilder::<Sqlite>::new(concat!("SELECT ", event_columns!(), " FROM events WHERE workspace_id = "));
        query.push_bind(workspace.as_uuid());
        if let Some(after) = page.after {
            query.push(" AND id < ").push_bind(after.as_uuid());
        }
        if let Some(contact) = filter.contact {
            query.push(" AND contact_id = ").push_bind(contact.as_uuid());
        }
        if let Some(name) = &filter.name {
            query.push(" AND name = ").push_bind(name.clone());
        }
        if let Some(source) = filter.source {
            query.push(" AND source_id = ").push_bind(source.as_uuid());
        }
        if let Some(from) = filter.from {
            query.push(" AND received_at >= ").push_bind(from.unix_millis());
        }
        if let Some(until) = filter.until {
            query.push(" AND received_at < ").push_bind(until.unix_millis());
        }
        if let Some(outcome) = filter.outcome {
            query.push(match outcome {
                OutcomeFilter::ContactCreated => " AND json_extract(outcome, '$.contact') = 'created'",
                OutcomeFilter::ContactUpdated => " AND json_extract(outcome, '$.contact') = 'updated'",
                OutcomeFilter::StartedCampaign => " AND EXISTS (SELECT 1 FROM json_each(outcome, '$.campaigns') WHERE json_extract(value, '$.action') = 'started')",
                OutcomeFilter::Nothing => {
                    " AND json_extract(outcome, '$.contact') IN ('unchanged', 'skipped') AND NOT EXISTS (SELECT 1 FROM json_each(outcome, '$.campaigns') WHERE json_extract(value, '$.action') = 'started')"
                }
            });
        }
        query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
        let events = rows.iter().map(|r| rows::event(r, false)).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(events, page.limit, |e| e.id))
    }

    async fn get_event(&self, workspace: WorkspaceId, id: EventId) -> StoreResult<Event> {
        let row = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            ", method, content_type, body FROM events WHERE workspace_id = ? AND id = ?"
        ))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&self.readers)
        .await
        .map_err(db_error)?
        .ok_or(StoreError::NotFound { entity: "event" })?;
        rows::event(&row, true)
    }

    async fn event_names(&self, workspace: WorkspaceId, limit: u32) -> StoreResult<Vec<String>> {
        // A skip scan over the (workspace_id, name, id) index: one seek per distinct name.
        sqlx::query_scalar(
            "WITH RECURSIVE names(name) AS ( \
               SELECT MIN(name) FROM events WHERE workspace_id = ?1 AND name IS NOT NULL \
               UNION ALL \
               SELECT (SELECT MIN(e.name) FROM events e WHERE e.workspace_id = ?1 AND e.name > names.name) \
               FROM names WHERE names.name IS NOT NULL) \
             SELECT name FROM names WHERE name IS NOT NULL LIMIT ?2",
        )
        .bind(workspace.as_uuid())
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)
    }

    async fn purge_idempotency_keys(&self, before: Timestamp) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let purged = sqlx::query(
            "DELETE FROM idempotency_keys WHERE created_at < ? \
             OR NOT EXISTS (SELECT 1 FROM events e WHERE e.id = idempotency_keys.event_id)",
        )
        .bind(before.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(purged.rows_affected())
    }
}

/// Inserts events.
pub(crate) fn insert_events(db: &Connection, events: &[Event]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = db
        .prepare_cached(concat!(
            "INSERT INTO events (",
            event_columns!(),
            ", method, content_type, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ))
        .map_err(direct_error)?;
    for e in events {
        let request = e.request.as_ref();
        insert
            .execute(params![
                &e.id.as_uuid().as_bytes()[..],
                &e.workspace_id.as_uuid().as_bytes()[..],
                e.source_id.map(|s| s.as_uuid().into_bytes()),
                e.contact_id.map(|c| c.as_uuid().into_bytes()),
                e.name,
                direct::object_text(&e.properties),
                e.occurred_at.unix_millis(),
                e.received_at.unix_millis(),
                e.idempotency_key,
                serde_json::to_string(&e.outcome).unwrap_or_else(|_| "{}".to_owned()),
                request.map(|r| r.method.as_str()),
                request.and_then(|r| r.content_type.as_deref()),
                request.map(|r| r.body.as_slice()),
            ])
            .map_err(direct_error)?;
    }
    Ok(())
}
