//! Tracked opens and clicks on SQLite: stored by the direct writer, which commits a batch of
//! them in one short transaction with no round trips through sqlx.

use std::collections::BTreeMap;

use async_trait::async_trait;
use herald_domain::{MessageId, Timestamp, WorkspaceId};
use herald_store::hits::{Hit, HitStore, record_hits_job};
use herald_store::{StoreResult, new_uuid};
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::direct::direct_error;
use crate::jobs::insert_job_direct;
use crate::rows::{corrupt, get, ts, uuid};
use crate::{SqliteStore, db_error};

#[async_trait]
impl HitStore for SqliteStore {
    async fn store_hits(&self, hits: &[Hit], now: Timestamp) -> StoreResult<()> {
        if hits.is_empty() {
            return Ok(());
        }
        self.write_direct(|db| {
            let mut insert = db
                .prepare_cached(
                    "INSERT INTO tracked_hits (id, workspace_id, message_id, kind, url, machine, occurred_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(direct_error)?;
            let mut by_workspace: BTreeMap<WorkspaceId, Vec<Uuid>> = BTreeMap::new();
            for hit in hits {
                let id = new_uuid(now);
                insert
                    .execute(rusqlite::params![
                        &id.as_bytes()[..],
                        &hit.workspace.as_uuid().as_bytes()[..],
                        &hit.message.as_uuid().as_bytes()[..],
                        hit.kind.as_str(),
                        hit.url,
                        hit.machine,
                        hit.occurred_at.unix_millis(),
                    ])
                    .map_err(direct_error)?;
                by_workspace.entry(hit.workspace).or_default().push(id);
            }
            for (workspace, ids) in by_workspace {
                insert_job_direct(db, workspace, &record_hits_job(ids, now), now)?;
            }
            Ok(())
        })
        .await?;
        // The direct writer's commit is done: the jobs may run.
        self.signal.jobs_due(now);
        Ok(())
    }

    async fn stored_hits(&self, workspace: WorkspaceId, ids: &[Uuid]) -> StoreResult<Vec<(Uuid, Hit)>> {
        let mut hits = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(crate::CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT id, message_id, kind, url, machine, occurred_at FROM tracked_hits WHERE workspace_id = ",
            );
            query.push_bind(workspace.as_uuid()).push(" AND id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            query.push(") ORDER BY id");
            let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
            for row in &rows {
                let hit = Hit {
                    workspace,
                    message: MessageId::from_uuid(uuid(row, "message_id")?),
                    kind: get::<String>(row, "kind")?.parse().map_err(|e| corrupt("tracked_hits.kind", e))?,
                    url: get(row, "url")?,
                    machine: get(row, "machine")?,
                    occurred_at: ts(row, "occurred_at")?,
                };
                hits.push((uuid(row, "id")?, hit));
            }
        }
        Ok(hits)
    }

    async fn delete_hits(&self, workspace: WorkspaceId, ids: &[Uuid]) -> StoreResult<()> {
        let mut tx = self.write().await?;
        for chunk in ids.chunks(crate::CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new("DELETE FROM tracked_hits WHERE workspace_id = ");
            query.push_bind(workspace.as_uuid()).push(" AND id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            query.push(")");
            query.build().execute(&mut *tx).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }
}
