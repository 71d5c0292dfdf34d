//! Outbound webhook endpoint health on SQLite.

use async_trait::async_trait;
use herald_domain::{EndpointHealth, EndpointId, Event, Timestamp, WorkspaceId};
use herald_store::endpoint::EndpointStore;
use herald_store::{StoreError, StoreResult, new_uuid};
use sqlx::sqlite::SqliteRow;

use crate::rows::{get, opt_ts, uuid};
use crate::{SqliteStore, db_error};

macro_rules! columns {
    () => {
        "id, workspace_id, endpoint, failing_since, last_success_at, disabled_at, disabled_reason"
    };
}

fn health(row: &SqliteRow) -> StoreResult<EndpointHealth> {
    Ok(EndpointHealth {
        id: EndpointId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        endpoint: get(row, "endpoint")?,
        failing_since: opt_ts(row, "failing_since")?,
        last_success_at: opt_ts(row, "last_success_at")?,
        disabled_at: opt_ts(row, "disabled_at")?,
        disabled_reason: get(row, "disabled_reason")?,
    })
}

#[async_trait]
impl EndpointStore for SqliteStore {
    async fn endpoint_failed(
        &self,
        workspace: WorkspaceId,
        endpoint: &str,
        now: Timestamp,
    ) -> StoreResult<EndpointHealth> {
        let mut tx = self.write().await?;
        let row = sqlx::query(concat!(
            "INSERT INTO webhook_endpoints (id, workspace_id, endpoint, failing_since) VALUES (?, ?, ?, ?) \
             ON CONFLICT (workspace_id, endpoint) DO UPDATE SET failing_since = COALESCE(failing_since, excluded.failing_since) \
             RETURNING ",
            columns!()
        ))
        .bind(new_uuid(now))
        .bind(workspace.as_uuid())
        .bind(endpoint)
        .bind(now.unix_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let health = health(&row)?;
        tx.commit().await.map_err(db_error)?;
        Ok(health)
    }

    async fn endpoint_succeeded(&self, workspace: WorkspaceId, endpoint: &str, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, workspace_id, endpoint, last_success_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (workspace_id, endpoint) DO UPDATE SET failing_since = NULL, \
             last_success_at = excluded.last_success_at",
        )
        .bind(new_uuid(now))
        .bind(workspace.as_uuid())
        .bind(endpoint)
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn disable_endpoint(
        &self,
        workspace: WorkspaceId,
        endpoint: &str,
        failing_since: Timestamp,
        reason: &str,
        event: &Event,
    ) -> StoreResult<bool> {
        let now = event.received_at;
        self.write_direct(|db| {
            let disabled = db
                .execute(
                    "UPDATE webhook_endpoints SET disabled_at = ?1, disabled_reason = ?2 \
                     WHERE workspace_id = ?3 AND endpoint = ?4 AND failing_since = ?5 AND disabled_at IS NULL",
                    rusqlite::params![
                        now.unix_millis(),
                        reason,
                        &workspace.as_uuid().as_bytes()[..],
                        endpoint,
                        failing_since.unix_millis(),
                    ],
                )
                .map_err(crate::direct::direct_error)?
                == 1;
            if disabled {
                crate::events::insert_events(db, std::slice::from_ref(event))?;
            }
            Ok(disabled)
        })
        .await
    }

    async fn list_endpoints(&self, workspace: WorkspaceId) -> StoreResult<Vec<EndpointHealth>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM webhook_endpoints WHERE workspace_id = ? \
             ORDER BY disabled_at IS NULL, failing_since IS NULL, endpoint"
        ))
        .bind(workspace.as_uuid())
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter().map(health).collect()
    }

    async fn disabled_endpoints(&self) -> StoreResult<Vec<(WorkspaceId, String)>> {
        let rows = sqlx::query("SELECT workspace_id, endpoint FROM webhook_endpoints WHERE disabled_at IS NOT NULL")
            .fetch_all(&self.readers)
            .await
            .map_err(db_error)?;
        rows.iter().map(|row| Ok((WorkspaceId::from_uuid(uuid(row, "workspace_id")?), get(row, "endpoint")?))).collect()
    }

    async fn enable_endpoint(&self, workspace: WorkspaceId, id: EndpointId) -> StoreResult<EndpointHealth> {
        let mut tx = self.write().await?;
        let row = sqlx::query(concat!(
            "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, failing_since = NULL \
             WHERE workspace_id = ? AND id = ? RETURNING ",
            columns!()
        ))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let health = health(&row.ok_or(StoreError::NotFound { entity: "endpoint" })?)?;
        tx.commit().await.map_err(db_error)?;
        Ok(health)
    }
}
