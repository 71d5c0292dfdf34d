//! Tracked opens and clicks on PostgreSQL: a batch is one `UNNEST` insert and its jobs.

use std::collections::BTreeSet;

use async_trait::async_trait;
use herald_domain::{MessageId, Timestamp, WorkspaceId};
use herald_store::email::ActivityWrite;
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
        let workspaces: BTreeSet<WorkspaceId> = hits.iter().map(|hit| hit.workspace).collect();
        for workspace in workspaces {
            // Locks the queued job, if there is one, so that no worker claims it before this
            // commits (claims skip locked rows): it will then see these hits. A job claimed
            // meanwhile is no longer queued, and a new one is added.
            let queued = sqlx::query(
                "SELECT id FROM jobs WHERE workspace_id = $1 AND kind = 'record_hits' AND state = 'queued' \
                 LIMIT 1 FOR UPDATE",
            )
            .bind(workspace.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            if queued.is_none() {
                insert_jobs(&mut tx, workspace, &[record_hits_job(now)], now).await?;
            }
        }
        tx.commit().await.map_err(db_error)
    }

    async fn stored_hits(&self, workspace: WorkspaceId, limit: u32) -> StoreResult<Vec<(Uuid, Hit)>> {
        let rows = sqlx::query(
            "SELECT id, message_id, kind, url, machine, occurred_at FROM tracked_hits \
             WHERE workspace_id = $1 ORDER BY id LIMIT $2",
        )
        .bind(workspace.as_uuid())
        .bind(i64::from(limit))
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

    async fn record_hits(
        &self,
        workspace: WorkspaceId,
        writes: &[ActivityWrite],
        ids: &[Uuid],
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for write in writes {
            crate::activity::apply(&mut tx, write, now).await?;
        }
        sqlx::query("DELETE FROM tracked_hits WHERE workspace_id = $1 AND id = ANY($2)")
            .bind(workspace.as_uuid())
            .bind(ids)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }
}
