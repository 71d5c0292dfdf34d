//! Outbound webhook deliveries, their attempts and the signing keys on SQLite.

use async_trait::async_trait;
use herald_domain::{
    CampaignId, CampaignWebhookId, ContactId, JourneyId, Page, PageRequest, Timestamp, WebhookAttempt, WebhookDelivery,
    WebhookDeliveryId, WebhookStatus, WorkspaceId,
};
use herald_store::webhook::{AttemptRecord, DeliveryFilter, NewDelivery, SigningKeyRecord, WebhookStore, webhook_job};
use herald_store::{StoreError, StoreResult, new_uuid};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, Transaction};
use uuid::Uuid;

use crate::jobs::{finish, insert_jobs};
use crate::rows::{corrupt, get, opt_ts, ts, uuid};
use crate::{SqliteStore, db_error, savepoint, settle};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "webhook delivery" };

macro_rules! delivery_columns {
    () => {
        "id, workspace_id, journey_id, campaign_id, contact_id, step, campaign_webhook_id, idempotency_key, endpoint, request, status, \
         attempts, last_status, last_error, response, created_at, updated_at, finished_at"
    };
}

fn json(row: &SqliteRow, column: &str) -> StoreResult<Value> {
    serde_json::from_str(&get::<String>(row, column)?).map_err(|e| corrupt(column, e))
}

fn delivery(row: &SqliteRow) -> StoreResult<WebhookDelivery> {
    let id = |column| get::<Option<Uuid>>(row, column);
    Ok(WebhookDelivery {
        id: WebhookDeliveryId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        journey_id: id("journey_id")?.map(JourneyId::from_uuid),
        campaign_id: id("campaign_id")?.map(CampaignId::from_uuid),
        contact_id: id("contact_id")?.map(ContactId::from_uuid),
        step: get(row, "step")?,
        campaign_webhook_id: id("campaign_webhook_id")?.map(CampaignWebhookId::from_uuid),
        idempotency_key: get(row, "idempotency_key")?,
        endpoint: get(row, "endpoint")?,
        request: json(row, "request")?,
        status: get::<String>(row, "status")?.parse().map_err(|e: String| corrupt("status", e))?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?).map_err(|e| corrupt("attempts", e))?,
        last_status: get::<Option<i64>>(row, "last_status")?.and_then(|s| u16::try_from(s).ok()),
        last_error: get(row, "last_error")?,
        response: json(row, "response")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        finished_at: opt_ts(row, "finished_at")?,
    })
}

fn attempt(row: &SqliteRow) -> StoreResult<WebhookAttempt> {
    Ok(WebhookAttempt {
        number: u32::try_from(get::<i64>(row, "number")?).map_err(|e| corrupt("number", e))?,
        at: ts(row, "at")?,
        request_line: get(row, "request_line")?,
        request_headers: json(row, "request_headers")?,
        status: get::<Option<i64>>(row, "status")?.and_then(|s| u16::try_from(s).ok()),
        latency_ms: u64::try_from(get::<i64>(row, "latency_ms")?).unwrap_or(0),
        response_body: get(row, "response_body")?,
        error: get(row, "error")?,
    })
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn open_deliveries(
        &self,
        calls: &[(WorkspaceId, NewDelivery)],
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<WebhookDelivery>>> {
        let mut tx = self.write().await?;
        let mut results = Vec::with_capacity(calls.len());
        for (workspace, new) in calls {
            savepoint(&mut tx).await?;
            let opened = open(&mut tx, *workspace, new, now).await;
            results.push(settle(&mut tx, opened).await?);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(results)
    }

    async fn record_attempts(&self, records: &[AttemptRecord], now: Timestamp) -> StoreResult<Vec<StoreResult<()>>> {
        let mut tx = self.write().await?;
        let mut results = Vec::with_capacity(records.len());
        for record in records {
            savepoint(&mut tx).await?;
            let recorded = record_attempt(&mut tx, record, now).await;
            results.push(settle(&mut tx, recorded).await?);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(results)
    }

    async fn get_delivery(
        &self,
        workspace: WorkspaceId,
        id: WebhookDeliveryId,
    ) -> StoreResult<(WebhookDelivery, Vec<WebhookAttempt>)> {
        let mut conn = self.readers.acquire().await.map_err(db_error)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE workspace_id = ? AND id = ?"
        ))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?
        .ok_or(NOT_FOUND)?;
        let attempts = sqlx::query("SELECT * FROM webhook_attempts WHERE delivery_id = ? ORDER BY number")
            .bind(id.as_uuid())
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)?;
        Ok((delivery(&row)?, attempts.iter().map(attempt).collect::<StoreResult<_>>()?))
    }

    async fn list_deliveries(
        &self,
        workspace: WorkspaceId,
        filter: &DeliveryFilter,
        page: PageRequest<WebhookDeliveryId>,
    ) -> StoreResult<Page<WebhookDelivery>> {
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE workspace_id = "
        ));
        query.push_bind(workspace.as_uuid());
        if let Some(journey) = filter.journey {
            query.push(" AND journey_id = ").push_bind(journey.as_uuid());
        }
        if let Some(contact) = filter.contact {
            query.push(" AND contact_id = ").push_bind(contact.as_uuid());
        }
        if let Some(campaign) = filter.campaign {
            query.push(" AND campaign_id = ").push_bind(campaign.as_uuid());
        }
        if let Some(hook) = filter.campaign_webhook {
            query.push(" AND campaign_webhook_id = ").push_bind(hook.as_uuid());
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(step) = &filter.step {
            query.push(" AND step = ").push_bind(step.clone());
        }
        if let Some(calls) = &filter.action {
            query.push(" AND (json_extract(call, '$.action') = ").push_bind(calls.action.to_string());
            for (campaign, step) in &calls.steps {
                query.push(" OR (campaign_id = ").push_bind(campaign.as_uuid());
                query.push(" AND step = ").push_bind(step.clone()).push(")");
            }
            query.push(")");
        }
        if let Some(after) = page.after {
            query.push(" AND id < ").push_bind(after.as_uuid());
        }
        query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
        let items = rows.iter().map(delivery).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit, |d| d.id))
    }

    async fn release_endpoint_retries(
        &self,
        workspace: WorkspaceId,
        endpoint: &str,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let released = sqlx::query(
            "UPDATE jobs SET run_at = ?1, due_at = ?1, updated_at = ?1 WHERE id IN (\
             SELECT id FROM jobs WHERE due_at > ?1 AND state = 'queued' AND kind = 'deliver_webhook' \
             AND workspace_id = ?2 AND json_extract(payload, '$.endpoint') = ?3 ORDER BY due_at LIMIT ?4)",
        )
        .bind(now.unix_millis())
        .bind(workspace.as_uuid())
        .bind(endpoint)
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(released.rows_affected())
    }

    async fn resend_deliveries(
        &self,
        workspace: WorkspaceId,
        ids: &[WebhookDeliveryId],
        status: Option<WebhookStatus>,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<Vec<WebhookDeliveryId>> {
        let mut tx = self.write().await?;
        let mut query = QueryBuilder::<Sqlite>::new(
            "UPDATE webhook_deliveries SET status = 'pending', finished_at = NULL, updated_at = ",
        );
        query.push_bind(now.unix_millis());
        query.push(" WHERE id IN (SELECT id FROM webhook_deliveries WHERE workspace_id = ");
        query.push_bind(workspace.as_uuid()).push(" AND status <> 'pending'");
        if ids.is_empty() {
            query.push(" AND finished_at >= ").push_bind(from.unix_millis());
            query.push(" AND finished_at < ").push_bind(to.unix_millis());
            if let Some(status) = status {
                query.push(" AND status = ").push_bind(status.as_str());
            }
        } else {
            query.push(" AND id IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(id.as_uuid());
            }
            query.push(")");
        }
        query.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit)).push(")");
        query.push(" RETURNING id, call");
        let rows = query.build().fetch_all(&mut *tx).await.map_err(db_error)?;
        let mut resent = Vec::with_capacity(rows.len());
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            resent.push(WebhookDeliveryId::from_uuid(uuid(row, "id")?));
            jobs.push(webhook_job(json(row, "call")?, now));
        }
        insert_jobs(&mut tx, workspace, &jobs, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(resent)
    }

    async fn signing_keys(&self, workspace: WorkspaceId, now: Timestamp) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT id, secret, created_at, retires_at FROM webhook_keys \
             WHERE workspace_id = ? AND (retires_at IS NULL OR retires_at > ?) ORDER BY created_at DESC, id DESC",
        )
        .bind(workspace.as_uuid())
        .bind(now.unix_millis())
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRecord {
                    id: get(row, "id")?,
                    secret: get(row, "secret")?,
                    created_at: ts(row, "created_at")?,
                    retires_at: opt_ts(row, "retires_at")?,
                })
            })
            .collect()
    }

    async fn rotate_signing_key(
        &self,
        workspace: WorkspaceId,
        key: &SigningKeyRecord,
        retire_at: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE webhook_keys SET retires_at = ? WHERE workspace_id = ? AND (retires_at IS NULL OR retires_at > ?)",
        )
        .bind(retire_at.unix_millis())
        .bind(workspace.as_uuid())
        .bind(retire_at.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO webhook_keys (workspace_id, id, secret, created_at, retires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(workspace.as_uuid())
        .bind(&key.id)
        .bind(&key.secret)
        .bind(key.created_at.unix_millis())
        .bind(key.retires_at.map(Timestamp::unix_millis))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }
}

/// Records a call, or reads the one already recorded with its idempotency key.
async fn open(
    tx: &mut Transaction<'static, Sqlite>,
    workspace: WorkspaceId,
    new: &NewDelivery,
    now: Timestamp,
) -> StoreResult<WebhookDelivery> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, workspace_id, journey_id, campaign_id, contact_id, step, \
             idempotency_key, endpoint, request, call, status, created_at, updated_at, campaign_webhook_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) \
             ON CONFLICT (workspace_id, idempotency_key) DO NOTHING",
    )
    .bind(new_uuid(now))
    .bind(workspace.as_uuid())
    .bind(new.journey_id.map(|j| j.as_uuid()))
    .bind(new.campaign_id.map(|c| c.as_uuid()))
    .bind(new.contact_id.map(|c| c.as_uuid()))
    .bind(&new.step)
    .bind(&new.idempotency_key)
    .bind(&new.endpoint)
    .bind(new.request.to_string())
    .bind(new.call.to_string())
    .bind(now.unix_millis())
    .bind(now.unix_millis())
    .bind(new.campaign_webhook_id.map(|h| h.as_uuid()))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    let row = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM webhook_deliveries WHERE workspace_id = ? AND idempotency_key = ?"
    ))
    .bind(workspace.as_uuid())
    .bind(&new.idempotency_key)
    .fetch_one(&mut **tx)
    .await
    .map_err(db_error)?;
    delivery(&row)
}

/// Records one job's attempt, fenced by its lease.
async fn record_attempt(
    tx: &mut Transaction<'static, Sqlite>,
    record: &AttemptRecord,
    now: Timestamp,
) -> StoreResult<()> {
    let AttemptRecord { workspace, lease, delivery: id, attempt, progress, outcome, follow_up } = record;
    let workspace = *workspace;
    finish(tx, lease, outcome, now).await?;
    let finished = progress.status != WebhookStatus::Pending;
    let updated = sqlx::query(
        "UPDATE webhook_deliveries SET status = ?, attempts = MAX(attempts, ?), last_status = ?, last_error = ?, \
             response = ?, updated_at = ?, finished_at = CASE WHEN ? THEN ? ELSE NULL END \
             WHERE workspace_id = ? AND id = ?",
    )
    .bind(progress.status.as_str())
    .bind(i64::from(attempt.number))
    .bind(progress.last_status.map(i64::from))
    .bind(&progress.last_error)
    .bind(progress.response.to_string())
    .bind(now.unix_millis())
    .bind(finished)
    .bind(now.unix_millis())
    .bind(workspace.as_uuid())
    .bind(id.as_uuid())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    if updated.rows_affected() == 0 {
        return Err(NOT_FOUND);
    }
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, number, at, request_line, request_headers, status, latency_ms, \
             response_body, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, number) DO NOTHING",
    )
    .bind(id.as_uuid())
    .bind(i64::from(attempt.number))
    .bind(attempt.at.unix_millis())
    .bind(&attempt.request_line)
    .bind(attempt.request_headers.to_string())
    .bind(attempt.status.map(i64::from))
    .bind(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX))
    .bind(&attempt.response_body)
    .bind(&attempt.error)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    insert_jobs(tx, workspace, follow_up, now).await?;
    Ok(())
}
