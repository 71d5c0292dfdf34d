//! Outbound webhook deliveries, their attempts and the signing keys on PostgreSQL.

use async_trait::async_trait;
use herald_domain::{
    CampaignId, CampaignWebhookId, ContactId, JourneyId, Page, PageRequest, Timestamp, WebhookAttempt, WebhookDelivery,
    WebhookDeliveryId, WebhookStatus, WorkspaceId,
};
use herald_store::secrets::{Document, columns};
use herald_store::webhook::{
    AttemptRecord, CallRecord, DeliveryFilter, DeliveryProgress, NewDelivery, SigningKeyRecord, WebhookStore,
    call_already_open, webhook_job,
};
use herald_store::{StoreError, StoreResult, new_uuid};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};

use crate::jobs::{finish, insert_jobs};
use crate::rows::{corrupt, document, get, opt_ts, opt_uuid, ts, uuid};
use crate::{PgStore, Tx, db_error, encode, savepoint, settle};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "webhook delivery" };

macro_rules! delivery_columns {
    () => {
        "id, workspace_id, journey_id, campaign_id, contact_id, step, campaign_webhook_id, idempotency_key, endpoint, request, status, \
         attempts, last_status, last_error, response, created_at, updated_at, finished_at"
    };
}

fn json(row: &PgRow, column: &str) -> StoreResult<Value> {
    get::<Json<Value>>(row, column).map(|j| j.0)
}

fn delivery(row: &PgRow) -> StoreResult<WebhookDelivery> {
    let id = |column| opt_uuid(row, column);
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
        attempts: u32::try_from(get::<i32>(row, "attempts")?).map_err(|e| corrupt("attempts", e))?,
        last_status: get::<Option<i32>>(row, "last_status")?.and_then(|s| u16::try_from(s).ok()),
        last_error: get(row, "last_error")?,
        response: json(row, "response")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        finished_at: opt_ts(row, "finished_at")?,
    })
}

fn attempt(row: &PgRow) -> StoreResult<WebhookAttempt> {
    Ok(WebhookAttempt {
        number: u32::try_from(get::<i32>(row, "number")?).map_err(|e| corrupt("number", e))?,
        at: ts(row, "at")?,
        request_line: get(row, "request_line")?,
        request_headers: json(row, "request_headers")?,
        status: get::<Option<i32>>(row, "status")?.and_then(|s| u16::try_from(s).ok()),
        latency_ms: u64::try_from(get::<i64>(row, "latency_ms")?).unwrap_or(0),
        response_body: get(row, "response_body")?,
        error: get(row, "error")?,
    })
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn open_deliveries(
        &self,
        calls: &[(WorkspaceId, NewDelivery)],
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<WebhookDelivery>>> {
        let mut tx = self.begin().await?;
        // In key order, so that two batches that share keys (replays) cannot deadlock.
        let mut order: Vec<usize> = (0..calls.len()).collect();
        order.sort_by_key(|&i| (calls[i].0, &calls[i].1.idempotency_key));
        let mut results: Vec<Option<StoreResult<WebhookDelivery>>> = calls.iter().map(|_| None).collect();
        for i in order {
            let (workspace, new) = &calls[i];
            savepoint(&mut tx).await?;
            let opened = open(&mut tx, *workspace, new, now).await;
            results[i] = Some(settle(&mut tx, opened).await?);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(results.into_iter().flatten().collect())
    }

    async fn record_attempts(&self, records: &[AttemptRecord], now: Timestamp) -> StoreResult<Vec<StoreResult<()>>> {
        let mut tx = self.begin().await?;
        // In row order, so that concurrent batches cannot deadlock.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|&i| (records[i].lease.job_id, records[i].delivery));
        let mut results: Vec<Option<StoreResult<()>>> = records.iter().map(|_| None).collect();
        for i in order {
            savepoint(&mut tx).await?;
            let recorded = record_attempt(&mut tx, &records[i], now).await;
            results[i] = Some(settle(&mut tx, recorded).await?);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(results.into_iter().flatten().collect())
    }

    async fn get_delivery(
        &self,
        workspace: WorkspaceId,
        id: WebhookDeliveryId,
    ) -> StoreResult<(WebhookDelivery, Vec<WebhookAttempt>)> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?
        .ok_or(NOT_FOUND)?;
        let attempts = sqlx::query("SELECT * FROM webhook_attempts WHERE delivery_id = $1 ORDER BY number")
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
        let mut query = QueryBuilder::<Postgres>::new(concat!(
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
            query.push(" AND step = ").push_bind(encode::text(step).into_owned());
        }
        if let Some(calls) = &filter.action {
            query.push(" AND (call->>'action' = ").push_bind(calls.action.to_string());
            for (campaign, step) in &calls.steps {
                query.push(" OR (campaign_id = ").push_bind(campaign.as_uuid());
                query.push(" AND step = ").push_bind(encode::text(step).into_owned()).push(")");
            }
            query.push(")");
        }
        if let Some(after) = page.after {
            query.push(" AND id < ").push_bind(after.as_uuid());
        }
        query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.pool).await.map_err(db_error)?;
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
        let released = sqlx::query(
            "UPDATE jobs SET run_at = $1, due_at = $1, updated_at = $1 WHERE id IN (\
             SELECT id FROM jobs WHERE due_at > $1 AND state = 'queued' AND kind = 'deliver_webhook' \
             AND workspace_id = $2 AND payload->>'endpoint' = $3 ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED)",
        )
        .bind(encode::ts(now))
        .bind(workspace.as_uuid())
        .bind(encode::text(endpoint))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if released.rows_affected() > 0 {
            self.signal.jobs_due(now);
        }
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
        let mut tx = self.begin().await?;
        let mut query = QueryBuilder::<Postgres>::new(
            "UPDATE webhook_deliveries SET status = 'pending', finished_at = NULL, updated_at = ",
        );
        query.push_bind(encode::ts(now));
        query.push(" WHERE id IN (SELECT id FROM webhook_deliveries WHERE workspace_id = ");
        // A call whose request could not be rendered has nothing to send again.
        query.push_bind(workspace.as_uuid()).push(" AND status <> 'pending' AND call <> 'null'::jsonb");
        if ids.is_empty() {
            query.push(" AND finished_at >= ").push_bind(encode::ts(from));
            query.push(" AND finished_at < ").push_bind(encode::ts(to));
            if let Some(status) = status {
                query.push(" AND status = ").push_bind(status.as_str());
            }
        } else {
            let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
            query.push(" AND id = ANY(").push_bind(ids).push(")");
        }
        query.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit)).push(")");
        query.push(" RETURNING id, call");
        let rows = query.build().fetch_all(&mut *tx).await.map_err(db_error)?;
        let mut resent = Vec::with_capacity(rows.len());
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            resent.push(WebhookDeliveryId::from_uuid(uuid(row, "id")?));
            jobs.push(webhook_job(document(row, "call", &self.secrets, Document::Call, columns::DELIVERY_CALL)?, now));
        }
        insert_jobs(&mut tx, workspace, &jobs, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(resent)
    }

    async fn signing_keys(&self, workspace: WorkspaceId, now: Timestamp) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT id, secret, created_at, retires_at FROM webhook_keys \
             WHERE workspace_id = $1 AND (retires_at IS NULL OR retires_at > $2) ORDER BY created_at DESC, id DESC",
        )
        .bind(workspace.as_uuid())
        .bind(encode::ts(now))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRecord {
                    id: get(row, "id")?,
                    secret: self.secrets.open(columns::SIGNING_SECRET, &get::<Vec<u8>>(row, "secret")?)?,
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
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE webhook_keys SET retires_at = $1 WHERE workspace_id = $2 AND (retires_at IS NULL OR retires_at > $1)",
        )
        .bind(encode::ts(retire_at))
        .bind(workspace.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO webhook_keys (workspace_id, id, secret, created_at, retires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(workspace.as_uuid())
        .bind(&key.id)
        .bind(self.secrets.seal(columns::SIGNING_SECRET, &key.secret).into_bytes())
        .bind(encode::ts(key.created_at))
        .bind(key.retires_at.map(encode::ts))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }
}

/// Records a call, or reads the one already recorded with its idempotency key.
async fn open(tx: &mut Tx, workspace: WorkspaceId, new: &NewDelivery, now: Timestamp) -> StoreResult<WebhookDelivery> {
    insert_delivery(tx, workspace, WebhookDeliveryId::from_uuid(new_uuid(now)), new, now).await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM webhook_deliveries WHERE workspace_id = $1 AND idempotency_key = $2"
    ))
    .bind(workspace.as_uuid())
    .bind(encode::text(&new.idempotency_key))
    .fetch_one(&mut **tx)
    .await
    .map_err(db_error)?;
    delivery(&row)
}

/// Inserts a delivery under `id`; one already open under the same idempotency key is left as
/// it is (and keeps its own id). Returns whether it was inserted.
async fn insert_delivery(
    tx: &mut Tx,
    workspace: WorkspaceId,
    id: WebhookDeliveryId,
    new: &NewDelivery,
    now: Timestamp,
) -> StoreResult<bool> {
    let keys = tx.secrets.clone();
    let call = keys.seal_document(Document::Call, columns::DELIVERY_CALL, &new.call);
    let inserted = sqlx::query(
        "INSERT INTO webhook_deliveries (id, workspace_id, journey_id, campaign_id, contact_id, step, \
             idempotency_key, endpoint, request, call, sealed_with, status, created_at, updated_at, \
             campaign_webhook_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $12, $13) \
             ON CONFLICT (workspace_id, idempotency_key) DO NOTHING",
    )
    .bind(id.as_uuid())
    .bind(workspace.as_uuid())
    .bind(new.journey_id.map(|j| j.as_uuid()))
    .bind(new.campaign_id.map(|c| c.as_uuid()))
    .bind(new.contact_id.map(|c| c.as_uuid()))
    .bind(encode::opt_text(new.step.as_deref()))
    .bind(encode::text(&new.idempotency_key))
    .bind(encode::text(&new.endpoint))
    .bind(Json(encode::json(&new.request)))
    .bind(Json(encode::json(&call.value)))
    .bind(call.key)
    .bind(encode::ts(now))
    .bind(new.campaign_webhook_id.map(|h| h.as_uuid()))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(inserted.rows_affected() == 1)
}

/// Records calls a journey step made at once: each delivery opened under its id, with its
/// first attempt. A call whose idempotency key is already open is refused
/// ([`call_already_open`]).
pub(crate) async fn record_calls(tx: &mut Tx, calls: &[(WorkspaceId, &CallRecord)], now: Timestamp) -> StoreResult<()> {
    for (workspace, call) in calls {
        if !insert_delivery(tx, *workspace, call.id, &call.delivery, now).await? {
            return Err(call_already_open());
        }
        record_progress(tx, *workspace, call.id, &call.attempt, &call.progress, now).await?;
    }
    Ok(())
}

/// Records one job's attempt, fenced by its lease.
async fn record_attempt(tx: &mut Tx, record: &AttemptRecord, now: Timestamp) -> StoreResult<()> {
    let AttemptRecord { workspace, lease, delivery: id, attempt, progress, outcome, follow_up } = record;
    finish(tx, *workspace, lease, outcome, now).await?;
    record_progress(tx, *workspace, *id, attempt, progress, now).await?;
    insert_jobs(tx, *workspace, follow_up, now).await?;
    Ok(())
}

/// Applies an attempt to its delivery and logs it.
async fn record_progress(
    tx: &mut Tx,
    workspace: WorkspaceId,
    id: WebhookDeliveryId,
    attempt: &WebhookAttempt,
    progress: &DeliveryProgress,
    now: Timestamp,
) -> StoreResult<()> {
    let finished = progress.status != WebhookStatus::Pending;
    let updated = sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, attempts = GREATEST(attempts, $2), last_status = $3, \
             last_error = $4, response = $5, updated_at = $6, finished_at = CASE WHEN $7 THEN $6 ELSE NULL END \
             WHERE workspace_id = $8 AND id = $9",
    )
    .bind(progress.status.as_str())
    .bind(i32::try_from(attempt.number).unwrap_or(i32::MAX))
    .bind(progress.last_status.map(i32::from))
    .bind(encode::opt_text(progress.last_error.as_deref()))
    .bind(Json(encode::json(&progress.response)))
    .bind(encode::ts(now))
    .bind(finished)
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
             response_body, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (delivery_id, number) DO NOTHING",
    )
    .bind(id.as_uuid())
    .bind(i32::try_from(attempt.number).unwrap_or(i32::MAX))
    .bind(encode::ts(attempt.at))
    .bind(encode::text(&attempt.request_line))
    .bind(Json(encode::json(&attempt.request_headers)))
    .bind(attempt.status.map(i32::from))
    .bind(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX))
    .bind(encode::opt_text(attempt.response_body.as_deref()))
    .bind(encode::opt_text(attempt.error.as_deref()))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}
