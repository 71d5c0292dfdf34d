//! Sources, their rejection logs and samples on PostgreSQL.
//!
//! The two logs are appended to and trimmed in one transaction. Their `bigint` identity ids
//! give the order of arrival (rows of one call are inserted in the caller's order), and
//! trimming deletes, per affected source, every row at or below the id of the newest row that
//! is one too many.

use async_trait::async_trait;
use herald_domain::{Page, PageRequest, Source, SourceId, Timestamp, TokenHash, WorkspaceId};
use herald_store::{
    NewSource, REJECTIONS_KEPT, Rejection, SAMPLES_KEPT, Sample, SourceStore, SourceUpdate, StoreError, StoreResult,
    new_uuid,
};
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::encode;
use crate::rows::{self, get, source_columns, ts, uuid};
use crate::{PgStore, db_error};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "source" };

/// Distinct source ids, for trimming.
fn distinct_sources(ids: impl Iterator<Item = SourceId>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = ids.map(|id| id.as_uuid()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Runs `trim` (a DELETE keeping the newest `$2` rows of each source in `$1`) for `sources`.
async fn trim_per_source(
    tx: &mut crate::Tx,
    trim: &'static str,
    sources: impl Iterator<Item = SourceId>,
    keep: u32,
) -> StoreResult<()> {
    sqlx::query(trim)
        .bind(distinct_sources(sources))
        .bind(i64::from(keep))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl SourceStore for PgStore {
    async fn create_source(&self, workspace: WorkspaceId, source: NewSource, now: Timestamp) -> StoreResult<Source> {
        let row = sqlx::query(concat!(
            "INSERT INTO sources (id, workspace_id, name, kind, token_hash, token_hint, created_at, updated_at) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ",
            source_columns!()
        ))
        .bind(new_uuid(now))
        .bind(workspace.as_uuid())
        .bind(encode::text(&source.name))
        .bind(source.kind.as_str())
        .bind(source.token_hash.as_bytes().as_slice())
        .bind(encode::text(&source.token_hint))
        .bind(encode::ts(now))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        rows::source(&row)
    }

    async fn list_sources(&self, workspace: WorkspaceId, page: PageRequest<SourceId>) -> StoreResult<Page<Source>> {
        let after = page.after.map_or(Uuid::nil(), |id| id.as_uuid());
        let rows = sqlx::query(concat!(
            "SELECT ",
            source_columns!(),
            " FROM sources WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(workspace.as_uuid())
        .bind(after)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let sources = rows.iter().map(rows::source).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(sources, page.limit, |s| s.id))
    }

    async fn get_source(&self, workspace: WorkspaceId, id: SourceId) -> StoreResult<Source> {
        let row =
            sqlx::query(concat!("SELECT ", source_columns!(), " FROM sources WHERE workspace_id = $1 AND id = $2"))
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
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
        // One statement: `COALESCE` keeps a field the update leaves as `None`; the two fields
        // that can be cleared carry a flag saying whether to replace them (with NULL, maybe).
        let mapping = update.mapping.as_ref().map(|m| m.as_ref().map(encode::json));
        let row = sqlx::query(concat!(
            "UPDATE sources SET name = COALESCE($3, name), enabled = COALESCE($4, enabled), ",
            "rate_limit_per_second = CASE WHEN $5 THEN $6 ELSE rate_limit_per_second END, ",
            "mapping = CASE WHEN $7 THEN $8 ELSE mapping END, updated_at = $9 ",
            "WHERE workspace_id = $1 AND id = $2 RETURNING ",
            source_columns!()
        ))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .bind(update.name.as_deref().map(encode::text))
        .bind(update.enabled)
        .bind(update.rate_limit_per_second.is_some())
        .bind(update.rate_limit_per_second.flatten().map(i64::from))
        .bind(mapping.is_some())
        .bind(mapping.flatten().map(|m| Json(m.into_owned())))
        .bind(encode::ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .ok_or(NOT_FOUND)?;
        rows::source(&row)
    }

    async fn delete_source(&self, workspace: WorkspaceId, id: SourceId) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // Rejections and samples go with it (foreign keys); events stay. Its idempotency
        // keys can never match again (ids are not reused), so they go too.
        let deleted = sqlx::query("DELETE FROM sources WHERE workspace_id = $1 AND id = $2")
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(NOT_FOUND);
        }
        sqlx::query("DELETE FROM idempotency_keys WHERE source_id = $1")
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
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
        // On the right-hand side of SET, `token_hash` is the value before this update.
        let row = sqlx::query(concat!(
            "UPDATE sources SET ",
            "previous_token_hash = CASE WHEN $5::timestamptz IS NULL THEN NULL ELSE token_hash END, ",
            "previous_token_expires_at = $5, token_hash = $3, token_hint = $4, updated_at = $6 ",
            "WHERE workspace_id = $1 AND id = $2 RETURNING ",
            source_columns!()
        ))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .bind(token_hash.as_bytes().as_slice())
        .bind(encode::text(&token_hint))
        .bind(grace_until.map(encode::ts))
        .bind(encode::ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .ok_or(NOT_FOUND)?;
        rows::source(&row)
    }

    async fn source_by_token(&self, hash: &TokenHash, now: Timestamp) -> StoreResult<Option<Source>> {
        // The current token wins should a hash ever be both one source's token and another's
        // previous one.
        sqlx::query(concat!(
            "SELECT ",
            source_columns!(),
            " FROM sources WHERE enabled AND (token_hash = $1 ",
            "OR (previous_token_hash = $1 AND previous_token_expires_at > $2)) ",
            "ORDER BY token_hash = $1 DESC LIMIT 1"
        ))
        .bind(hash.as_bytes().as_slice())
        .bind(encode::ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .map(|row| rows::source(&row))
        .transpose()
    }

    async fn record_rejections(&self, rejections: &[Rejection]) -> StoreResult<()> {
        if rejections.is_empty() {
            return Ok(());
        }
        let workspaces: Vec<Uuid> = rejections.iter().map(|r| r.workspace_id.as_uuid()).collect();
        let sources: Vec<Uuid> = rejections.iter().map(|r| r.source_id.as_uuid()).collect();
        let received: Vec<OffsetDateTime> = rejections.iter().map(|r| encode::ts(r.received_at)).collect();
        let statuses: Vec<i32> = rejections.iter().map(|r| i32::from(r.status)).collect();
        let codes: Vec<_> = rejections.iter().map(|r| encode::text(&r.code)).collect();
        let reasons: Vec<_> = rejections.iter().map(|r| encode::text(&r.reason)).collect();
        let bodies: Vec<&[u8]> = rejections.iter().map(|r| r.body_prefix.as_slice()).collect();
        let mut tx = self.begin().await?;
        // In the caller's order, so ids follow it. Rejections of a source deleted meanwhile
        // (or not in the rejection's workspace) are dropped by the join: the log is best effort and
        // must not fail the others.
        sqlx::query(
            "INSERT INTO source_rejections (source_id, received_at, status, code, reason, body_prefix) \
             SELECT t.source_id, t.received_at, t.status, t.code, t.reason, t.body_prefix \
             FROM UNNEST($1::uuid[], $2::timestamptz[], $3::integer[], $4::text[], $5::text[], $6::bytea[], \
                         $7::uuid[]) \
                  WITH ORDINALITY AS t (source_id, received_at, status, code, reason, body_prefix, workspace_id, n) \
             JOIN sources s ON s.id = t.source_id AND s.workspace_id = t.workspace_id ORDER BY t.n",
        )
        .bind(sources)
        .bind(received)
        .bind(statuses)
        .bind(codes)
        .bind(reasons)
        .bind(bodies)
        .bind(workspaces)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let trim = "DELETE FROM source_rejections r USING ( \
                 SELECT s.id AS source_id, (SELECT id FROM source_rejections \
                     WHERE source_id = s.id ORDER BY id DESC OFFSET $2 LIMIT 1) AS cutoff \
                 FROM UNNEST($1::uuid[]) AS s (id)) c \
             WHERE r.source_id = c.source_id AND r.id <= c.cutoff";
        trim_per_source(&mut tx, trim, rejections.iter().map(|r| r.source_id), REJECTIONS_KEPT).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn list_rejections(&self, workspace: WorkspaceId, source: SourceId) -> StoreResult<Vec<Rejection>> {
        let rows = sqlx::query(
            "SELECT s.workspace_id, r.source_id, r.received_at, r.status, r.code, r.reason, r.body_prefix \
             FROM source_rejections r JOIN sources s ON s.id = r.source_id \
             WHERE s.workspace_id = $1 AND r.source_id = $2 ORDER BY r.id DESC LIMIT $3",
        )
        .bind(workspace.as_uuid())
        .bind(source.as_uuid())
        .bind(i64::from(REJECTIONS_KEPT))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(Rejection {
                    workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
                    source_id: SourceId::from_uuid(uuid(row, "source_id")?),
                    received_at: ts(row, "received_at")?,
                    status: u16::try_from(get::<i32>(row, "status")?)
                        .map_err(|e| rows::corrupt("source_rejections.status", e))?,
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
        let workspaces: Vec<Uuid> = samples.iter().map(|s| s.workspace_id.as_uuid()).collect();
        let sources: Vec<Uuid> = samples.iter().map(|s| s.source_id.as_uuid()).collect();
        let received: Vec<OffsetDateTime> = samples.iter().map(|s| encode::ts(s.received_at)).collect();
        let cleaned: Vec<_> = samples.iter().map(|s| encode::json(&s.body)).collect();
        let bodies: Vec<&Value> = cleaned.iter().map(AsRef::as_ref).collect();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO source_samples (source_id, received_at, body) \
             SELECT t.source_id, t.received_at, t.body \
             FROM UNNEST($1::uuid[], $2::timestamptz[], $3::jsonb[], $4::uuid[]) \
                  WITH ORDINALITY AS t (source_id, received_at, body, workspace_id, n) \
             JOIN sources s ON s.id = t.source_id AND s.workspace_id = t.workspace_id ORDER BY t.n",
        )
        .bind(sources)
        .bind(received)
        .bind(bodies)
        .bind(workspaces)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let trim = "DELETE FROM source_samples r USING ( \
                 SELECT s.id AS source_id, (SELECT id FROM source_samples \
                     WHERE source_id = s.id ORDER BY id DESC OFFSET $2 LIMIT 1) AS cutoff \
                 FROM UNNEST($1::uuid[]) AS s (id)) c \
             WHERE r.source_id = c.source_id AND r.id <= c.cutoff";
        trim_per_source(&mut tx, trim, samples.iter().map(|s| s.source_id), SAMPLES_KEPT).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn list_samples(&self, workspace: WorkspaceId, source: SourceId) -> StoreResult<Vec<Sample>> {
        let rows = sqlx::query(
            "SELECT s.workspace_id, r.source_id, r.received_at, r.body \
             FROM source_samples r JOIN sources s ON s.id = r.source_id \
             WHERE s.workspace_id = $1 AND r.source_id = $2 ORDER BY r.id DESC LIMIT $3",
        )
        .bind(workspace.as_uuid())
        .bind(source.as_uuid())
        .bind(i64::from(SAMPLES_KEPT))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(Sample {
                    workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
                    source_id: SourceId::from_uuid(uuid(row, "source_id")?),
                    received_at: ts(row, "received_at")?,
                    body: get(row, "body")?,
                })
            })
            .collect()
    }
}
