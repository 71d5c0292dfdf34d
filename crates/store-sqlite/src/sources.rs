//! Sources (inbound endpoints), their rejection logs and samples, on SQLite.

use async_trait::async_trait;
use herald_domain::{Page, PageRequest, Source, SourceId, Timestamp, TokenHash, WorkspaceId};
use herald_store::{
    NewSource, REJECTIONS_KEPT, Rejection, SAMPLES_KEPT, Sample, SourceStore, SourceUpdate, StoreError, StoreResult,
    new_uuid,
};
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::rows::{self, get, ts, uuid};
use crate::{SqliteStore, db_error};

macro_rules! source_columns {
    () => {
        "id, workspace_id, name, kind, enabled, token_hint, previous_token_expires_at, rate_limit_per_second, mapping, created_at, updated_at"
    };
}

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "source" };

impl SqliteStore {
    /// Runs `trim` (a DELETE keeping the newest `?2` rows of source `?1`) for each source.
    async fn trim_per_source(
        tx: &mut crate::Tx,
        trim: &'static str,
        sources: &[SourceId],
        keep: u32,
    ) -> StoreResult<()> {
        let sql = trim;
        let mut distinct = sources.to_vec();
        distinct.sort();
        distinct.dedup();
        for source in distinct {
            sqlx::query(sql).bind(source.as_uuid()).bind(i64::from(keep)).execute(&mut **tx).await.map_err(db_error)?;
        }
        Ok(())
    }
}

#[async_trait]
impl SourceStore for SqliteStore {
    async fn create_source(&self, workspace: WorkspaceId, source: NewSource, now: Timestamp) -> StoreResult<Source> {
        let id = SourceId::from_uuid(new_uuid(now));
        let mut tx = self.write().await?;
        let row = sqlx::query(concat!(
            "INSERT INTO sources (id, workspace_id, name, kind, token_hash, token_hint, created_at, updated_at) ",
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING ",
            source_columns!()
        ))
        .bind(id.as_uuid())
        .bind(workspace.as_uuid())
        .bind(&source.name)
        .bind(source.kind.as_str())
        .bind(source.token_hash.as_bytes().as_slice())
        .bind(&source.token_hint)
        .bind(now.unix_millis())
        .bind(now.unix_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        rows::source(&row)
    }

    async fn list_sources(&self, workspace: WorkspaceId, page: PageRequest<SourceId>) -> StoreResult<Page<Source>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            source_columns!(),
            " FROM sources WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?"
        ))
        .bind(workspace.as_uuid())
        .bind(page.after.map_or(Uuid::nil(), |id| id.as_uuid()))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        let sources = rows.iter().map(rows::source).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(sources, page.limit, |s| s.id))
    }

    async fn get_source(&self, workspace: WorkspaceId, id: SourceId) -> StoreResult<Source> {
        let row = sqlx::query(concat!("SELECT ", source_columns!(), " FROM sources WHERE workspace_id = ? AND id = ?"))
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?
            .ok_or(NOT_FOUND)?;
        rows::source(&row)
    }

    async fn update_source(
        &self,
        workspace: WorkspaceId,
        id: SourceId,
        update: SourceUpdate,
        now: Timestamp,
    ) -> StoreResult<Source> {
        let mut tx = self.write().await?;
        // Each optional field: a flag saying whether to set it, and the value.
        let row = sqlx::query(concat!(
            "UPDATE sources SET ",
            "name = COALESCE(?, name), enabled = COALESCE(?, enabled), ",
            "rate_limit_per_second = CASE WHEN ? THEN ? ELSE rate_limit_per_second END, ",
            "mapping = CASE WHEN ? THEN ? ELSE mapping END, updated_at = ? ",
            "WHERE workspace_id = ? AND id = ? RETURNING ",
            source_columns!()
        ))
        .bind(update.name)
        .bind(update.enabled)
        .bind(update.rate_limit_per_second.is_some())
        .bind(update.rate_limit_per_second.flatten().map(i64::from))
        .bind(update.mapping.is_some())
        .bind(update.mapping.flatten().map(|m| m.to_string()))
        .bind(now.unix_millis())
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or(NOT_FOUND)?;
        tx.commit().await.map_err(db_error)?;
        rows::source(&row)
    }

    async fn delete_source(&self, workspace: WorkspaceId, id: SourceId) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM sources WHERE workspace_id = ? AND id = ?")
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(NOT_FOUND);
        }
        tx.commit().await.map_err(db_error)
    }

    async fn rotate_source_token(
        &self,
        workspace: WorkspaceId,
        id: SourceId,
        token_hash: TokenHash,
        token_hint: String,
        grace_until: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<Source> {
        let mut tx = self.write().await?;
        let row = sqlx::query(concat!(
            "UPDATE sources SET previous_token_hash = CASE WHEN ?1 IS NULL THEN NULL ELSE token_hash END, ",
            "previous_token_expires_at = ?1, token_hash = ?2, token_hint = ?3, updated_at = ?4 ",
            "WHERE workspace_id = ?5 AND id = ?6 RETURNING ",
            source_columns!()
        ))
        .bind(grace_until.map(Timestamp::unix_millis))
        .bind(token_hash.as_bytes().as_slice())
        .bind(token_hint)
        .bind(now.unix_millis())
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or(NOT_FOUND)?;
        tx.commit().await.map_err(db_error)?;
        rows::source(&row)
    }

    async fn source_by_token(&self, hash: &TokenHash, now: Timestamp) -> StoreResult<Option<Source>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            source_columns!(),
            " FROM sources WHERE enabled = 1 AND token_hash = ?1 ",
            "UNION ALL SELECT ",
            source_columns!(),
            " FROM sources WHERE enabled = 1 AND previous_token_hash = ?1 AND previous_token_expires_at > ?2 ",
            "LIMIT 1"
        ))
        .bind(hash.as_bytes().as_slice())
        .bind(now.unix_millis())
        .fetch_optional(&self.readers)
        .await
        .map_err(db_error)?;
        row.map(|r| rows::source(&r)).transpose()
    }

    async fn record_rejections(&self, rejections: &[Rejection]) -> StoreResult<()> {
        if rejections.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        let mut insert = QueryBuilder::<Sqlite>::new(
            "WITH t (n, workspace_id, source_id, received_at, status, code, reason, body_prefix) AS (",
        );
        insert.push_values(rejections.iter().enumerate(), |mut row, (n, r)| {
            row.push_bind(n as i64)
                .push_bind(r.workspace_id.as_uuid())
                .push_bind(r.source_id.as_uuid())
                .push_bind(r.received_at.unix_millis())
                .push_bind(i64::from(r.status))
                .push_bind(r.code.clone())
                .push_bind(r.reason.clone())
                .push_bind(r.body_prefix.clone());
        });
        // In the caller's order, so ids follow it. Rejections of a source deleted meanwhile
        // (or not in the rejection's workspace) are dropped by the join: the log is best effort and
        // must not fail the others.
        insert.push(
            ") INSERT INTO source_rejections (source_id, received_at, status, code, reason, body_prefix) \
             SELECT t.source_id, t.received_at, t.status, t.code, t.reason, t.body_prefix FROM t \
             JOIN sources s ON s.id = t.source_id AND s.workspace_id = t.workspace_id ORDER BY t.n",
        );
        insert.build().execute(&mut *tx).await.map_err(db_error)?;
        let sources: Vec<SourceId> = rejections.iter().map(|r| r.source_id).collect();
        let trim = "DELETE FROM source_rejections WHERE source_id = ?1 AND id NOT IN \
                    (SELECT id FROM source_rejections WHERE source_id = ?1 ORDER BY id DESC LIMIT ?2)";
        Self::trim_per_source(&mut tx, trim, &sources, REJECTIONS_KEPT).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn list_rejections(&self, workspace: WorkspaceId, source: SourceId) -> StoreResult<Vec<Rejection>> {
        let rows = sqlx::query(
            "SELECT s.workspace_id, r.source_id, r.received_at, r.status, r.code, r.reason, r.body_prefix \
             FROM source_rejections r \
             JOIN sources s ON s.id = r.source_id WHERE s.workspace_id = ? AND r.source_id = ? ORDER BY r.id DESC",
        )
        .bind(workspace.as_uuid())
        .bind(source.as_uuid())
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(Rejection {
                    workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
                    source_id: SourceId::from_uuid(uuid(row, "source_id")?),
                    received_at: ts(row, "received_at")?,
                    status: u16::try_from(get::<i64>(row, "status")?).map_err(|e| rows::corrupt("status", e))?,
                    code: get(row, "code")?,
                    reason: get(row, "reason")?,
                    body_prefix: get(row, "body_prefix")?,
                })
            })
            .collect()
    }

    async fn record_samples(&self, samples: &[Sample]) -> StoreResult<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        let mut insert = QueryBuilder::<Sqlite>::new("WITH t (n, workspace_id, source_id, received_at, body) AS (");
        insert.push_values(samples.iter().enumerate(), |mut row, (n, sample)| {
            row.push_bind(n as i64)
                .push_bind(sample.workspace_id.as_uuid())
                .push_bind(sample.source_id.as_uuid())
                .push_bind(sample.received_at.unix_millis())
                .push_bind(sample.body.to_string());
        });
        // As with rejections, samples of a source not in their workspace are dropped.
        insert.push(
            ") INSERT INTO source_samples (source_id, received_at, body) \
             SELECT t.source_id, t.received_at, t.body FROM t \
             JOIN sources s ON s.id = t.source_id AND s.workspace_id = t.workspace_id ORDER BY t.n",
        );
        insert.build().execute(&mut *tx).await.map_err(db_error)?;
        let sources: Vec<SourceId> = samples.iter().map(|s| s.source_id).collect();
        let trim = "DELETE FROM source_samples WHERE source_id = ?1 AND id NOT IN \
                    (SELECT id FROM source_samples WHERE source_id = ?1 ORDER BY id DESC LIMIT ?2)";
        Self::trim_per_source(&mut tx, trim, &sources, SAMPLES_KEPT).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn list_samples(&self, workspace: WorkspaceId, source: SourceId) -> StoreResult<Vec<Sample>> {
        let rows = sqlx::query(
            "SELECT s.workspace_id, x.source_id, x.received_at, x.body FROM source_samples x \
             JOIN sources s ON s.id = x.source_id \
             WHERE s.workspace_id = ? AND x.source_id = ? ORDER BY x.id DESC",
        )
        .bind(workspace.as_uuid())
        .bind(source.as_uuid())
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let body: String = get(row, "body")?;
                Ok(Sample {
                    workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
                    source_id: SourceId::from_uuid(uuid(row, "source_id")?),
                    received_at: ts(row, "received_at")?,
                    body: serde_json::from_str(&body).map_err(|e| rows::corrupt("source_samples.body", e))?,
                })
            })
            .collect()
    }
}
