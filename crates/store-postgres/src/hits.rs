//! Tracked opens and clicks on PostgreSQL: a batch is one `UNNEST` insert and its jobs.

use std::collections::BTreeMap;

use async_trait::async_trait;
use herald_domain::{MessageId, Timestamp, WorkspaceId};
use herald_store::hits::{Hit, HitStore, record_hits_job};
use herald_store::{StoreResult, new_uuid};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::jobs::insert_jobs;
use crate::rows::{corrupt, get, ts, uuid};
use crate::{PgStore, db_error};

#[async_trait]
impl HitStore for PgStore {
    async fn store_hits(&self, hits: &[Hit], now: Timestamp) -> StoreResult<()> {
        if hits.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = hits.iter().map(|_| new_uuid(now)).collect();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO tracked_hits (id, workspace_id, message_id, kind, url, machine, occurred_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::boolean[], \
             $7::timestamptz[])",
        )
        .bind(&ids)
        .bind(hits.iter().map(|h| h.workspace.as_uuid()).collect::<Vec<_>>())
        .bind(hits.iter().map(|h| h.message.as_uuid()).collect::<Vec<_>>())
        .bind(hits.iter().map(|h| h.kind.as_str()).collect::<Vec<_>>())
        .bind(hits.iter().map(|h| h.url.as_deref()).collect::<Vec<_>>())
        .bind(hits.iter().map(|h| h.machine).collect::<Vec<_>>())
        .bind(hits.iter().map(|h| h.occurred_at.to_offset_date_time()).collect::<Vec<OffsetDateTime>>())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let mut by_workspace: BTreeMap<WorkspaceId, Vec<Uuid>> = BTreeMap::new();
        for (hit, id) in hits.iter().zip(ids) {
            by_workspace.entry(hit.workspace).or_default().push(id);
        }
        for (workspace, ids) in by_workspace {
            insert_jobs(&mut tx, workspace, &[record_hits_job(ids, now)], now).await?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn stored_hits(&self, workspace: WorkspaceId, ids: &[Uuid]) -> StoreResult<Vec<(Uuid, Hit)>> {
        let rows = sqlx::query(
            "SELECT id, message_id, kind, url, machine, occurred_at FROM tracked_hits \
             WHERE workspace_id = $1 AND id = ANY($2) ORDER BY id",
        )
        .bind(workspace.as_uuid())
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let hit = Hit {
                    workspace,
                    message: MessageId::from_uuid(uuid(row, "message_id")?),
                    kind: get::<String>(row, "kind")?.parse().map_err(|e| corrupt("tracked_hits.kind", e))?,
                    url: get(row, "url")?,
                    machine: get(row, "machine")?,
                    occurred_at: ts(row, "occurred_at")?,
                };
                Ok((uuid(row, "id")?, hit))
            })
            .collect()
    }

    async fn delete_hits(&self, workspace: WorkspaceId, ids: &[Uuid]) -> StoreResult<()> {
        sqlx::query("DELETE FROM tracked_hits WHERE workspace_id = $1 AND id = ANY($2)")
            .bind(workspace.as_uuid())
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
