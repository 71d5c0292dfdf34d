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
use sqlx::{QueryBuilder, Sqlite, Transaction};

use crate::contacts::{read_contacts, update_contact_data, write_contacts};
use crate::rows::{self, get, ts, uuid};
use crate::{SqliteStore, db_error};

macro_rules! event_columns {
    () => {
        "id, workspace_id, source_id, contact_id, name, properties, occurred_at, received_at, idempotency_key, outcome"
    };
}

async fn read_idempotency(
    tx: &mut Transaction<'static, Sqlite>,
    keys: &[(SourceId, String)],
) -> StoreResult<Vec<IdempotencyRecord>> {
    let mut found = Vec::new();
    for chunk in keys.chunks(400) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT source_id, key, event_id, contact_id, created_at FROM idempotency_keys WHERE (source_id, key) IN (VALUES ",
        );
        let mut list = query.separated(", ");
        for (source, key) in chunk {
            list.push("(")
                .push_bind_unseparated(source.as_uuid())
                .push_unseparated(", ")
                .push_bind_unseparated(key.clone())
                .push_unseparated(")");
        }
        query.push(")");
        for row in query.build().fetch_all(&mut **tx).await.map_err(db_error)? {
            found.push(IdempotencyRecord {
                source_id: SourceId::from_uuid(uuid(&row, "source_id")?),
                key: get(&row, "key")?,
                receipt: Receipt {
                    event_id: EventId::from_uuid(uuid(&row, "event_id")?),
                    contact_id: get::<Option<uuid::Uuid>>(&row, "contact_id")?.map(ContactId::from_uuid),
                },
                created_at: ts(&row, "created_at")?,
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
        let mut tx = self.write().await?;
        let mut snapshot = BatchSnapshot::default();
        for (workspace, keys) in batch_keys(requests) {
            snapshot.contacts.extend(read_contacts(&mut tx, workspace, &keys).await?);
            snapshot.idempotency.extend(read_idempotency(&mut tx, &keys.idempotency).await?);
        }
        // The identities as read, to tell a contact that only gained attributes (most events)
        // from one whose email, user id or phone changed.
        let read: HashMap<ContactId, [Option<String>; 3]> =
            snapshot.contacts.iter().map(|c| (c.id, identity_columns(c))).collect();
        let (mut writes, results) = plan_batch(requests, snapshot, now);
        let (same_identity, reidentified): (Vec<Contact>, Vec<Contact>) = std::mem::take(&mut writes.changed_contacts)
            .into_iter()
            .partition(|c| read.get(&c.id) == Some(&identity_columns(c)));
        writes.changed_contacts = reidentified;
        write_contacts(&mut tx, &writes).await?;
        update_contact_data(&mut tx, &same_identity).await?;
        insert_events(&mut tx, &writes.events).await?;
        for chunk in writes.idempotency.chunks(1000) {
            let mut upsert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO idempotency_keys (source_id, key, event_id, contact_id, created_at) ",
            );
            upsert.push_values(chunk, |mut row, r| {
                row.push_bind(r.source_id.as_uuid())
                    .push_bind(r.key.clone())
                    .push_bind(r.receipt.event_id.as_uuid())
                    .push_bind(r.receipt.contact_id.map(|c| c.as_uuid()))
                    .push_bind(r.created_at.unix_millis());
            });
            upsert.push(
                " ON CONFLICT (source_id, key) DO UPDATE SET event_id = excluded.event_id, \
                 contact_id = excluded.contact_id, created_at = excluded.created_at",
            );
            upsert.build().execute(&mut *tx).await.map_err(db_error)?;
        }
        crate::campaigns::enqueue_evaluation(&mut tx, &writes.events, now).await?;
        tx.commit().await.map_err(db_error)?;
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

/// Inserts events, 13 parameters a row.
pub(crate) async fn insert_events(tx: &mut Transaction<'static, Sqlite>, events: &[Event]) -> StoreResult<()> {
    for chunk in events.chunks(1000) {
        let mut insert = QueryBuilder::<Sqlite>::new(concat!(
            "INSERT INTO events (",
            event_columns!(),
            ", method, content_type, body) "
        ));
        insert.push_values(chunk, |mut row, e| {
            let request = e.request.as_ref();
            row.push_bind(e.id.as_uuid())
                .push_bind(e.workspace_id.as_uuid())
                .push_bind(e.source_id.map(|s| s.as_uuid()))
                .push_bind(e.contact_id.map(|c| c.as_uuid()))
                .push_bind(e.name.clone())
                .push_bind(serde_json::Value::Object(e.properties.clone()).to_string())
                .push_bind(e.occurred_at.unix_millis())
                .push_bind(e.received_at.unix_millis())
                .push_bind(e.idempotency_key.clone())
                .push_bind(serde_json::to_string(&e.outcome).unwrap_or_else(|_| "{}".to_owned()))
                .push_bind(request.map(|r| r.method.clone()))
                .push_bind(request.and_then(|r| r.content_type.clone()))
                .push_bind(request.map(|r| r.body.clone()));
        });
        insert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(())
}
