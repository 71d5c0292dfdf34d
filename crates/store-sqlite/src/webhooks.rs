//! Outbound webhook deliveries, their attempts and the signing keys on SQLite.

use std::collections::{BTreeMap, HashMap};

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
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::jobs::{finish_all, insert_jobs};
use crate::rows::{corrupt, document, get, opt_ts, ts, uuid};
use crate::{CHUNK, SqliteStore, Tx, db_error};

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
        crate::batch_or_each(self, calls, |tx, calls| Box::pin(open_all(tx, calls, now)), |_| true).await
    }

    async fn record_attempts(&self, records: &[AttemptRecord], now: Timestamp) -> StoreResult<Vec<StoreResult<()>>> {
        crate::batch_or_each(self, records, |tx, records| Box::pin(record_all(tx, records, now)), |_| true).await
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
        if released.rows_affected() > 0 {
            tx.jobs_due(now);
        }
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
        // A call whose request could not be rendered has nothing to send again.
        query.push_bind(workspace.as_uuid()).push(" AND status <> 'pending' AND call <> 'null'");
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
            jobs.push(webhook_job(document(row, "call", &self.secrets, Document::Call, columns::DELIVERY_CALL)?, now));
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
        .bind(self.secrets.seal(columns::SIGNING_SECRET, &key.secret).into_bytes())
        .bind(key.created_at.unix_millis())
        .bind(key.retires_at.map(Timestamp::unix_millis))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }
}

/// Opens deliveries (or finds the ones already open under the same idempotency keys), with
/// one statement per chunk to insert and one per workspace and chunk to read them back.
async fn open_all(
    tx: &mut Tx,
    calls: &[(WorkspaceId, NewDelivery)],
    now: Timestamp,
) -> StoreResult<Vec<WebhookDelivery>> {
    let rows: Vec<_> = calls
        .iter()
        .map(|(workspace, new)| (*workspace, WebhookDeliveryId::from_uuid(new_uuid(now)), new, None))
        .collect();
    insert_deliveries(tx, &rows, now).await?;
    let mut keys: BTreeMap<WorkspaceId, Vec<&str>> = BTreeMap::new();
    for (workspace, new) in calls {
        keys.entry(*workspace).or_default().push(&new.idempotency_key);
    }
    let mut open = HashMap::with_capacity(calls.len());
    for (workspace, keys) in keys {
        for chunk in keys.chunks(CHUNK) {
            let mut select = QueryBuilder::<Sqlite>::new(concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries WHERE workspace_id = "
            ));
            select.push_bind(workspace.as_uuid()).push(" AND idempotency_key IN (");
            let mut list = select.separated(", ");
            for key in chunk {
                list.push_bind(*key);
            }
            select.push(")");
            for row in select.build().fetch_all(&mut **tx).await.map_err(db_error)? {
                let delivery = delivery(&row)?;
                open.insert((workspace, delivery.idempotency_key.clone()), delivery);
            }
        }
    }
    calls
        .iter()
        .map(|(workspace, new)| open.get(&(*workspace, new.idempotency_key.clone())).cloned().ok_or(NOT_FOUND))
        .collect()
}

/// Records jobs' attempts, each fenced by its job's lease, with a few multi-row statements.
async fn record_all(tx: &mut Tx, records: &[AttemptRecord], now: Timestamp) -> StoreResult<Vec<()>> {
    let runs: Vec<_> = records.iter().map(|r| (r.workspace, &r.lease, &r.outcome)).collect();
    finish_all(tx, &runs, now).await?;
    let progress: Vec<_> = records.iter().map(|r| (r.workspace, r.delivery, &r.attempt, &r.progress)).collect();
    record_progress(tx, &progress, now).await?;
    let follow_ups = records.iter().map(|r| (r.workspace, r.follow_up.as_slice()));
    for (workspace, jobs) in herald_store::campaign::jobs_by_workspace(follow_ups) {
        insert_jobs(tx, workspace, &jobs, now).await?;
    }
    Ok(vec![(); records.len()])
}

/// Records calls a journey step made at once: each delivery inserted under its id as its
/// first attempt left it, with that attempt. A call whose idempotency key is already open is
/// refused ([`call_already_open`]).
pub(crate) async fn record_calls(tx: &mut Tx, calls: &[(WorkspaceId, &CallRecord)], now: Timestamp) -> StoreResult<()> {
    let rows: Vec<_> = calls
        .iter()
        .map(|(workspace, call)| (*workspace, call.id, &call.delivery, Some((&call.attempt, &call.progress))))
        .collect();
    if insert_deliveries(tx, &rows, now).await? != calls.len() as u64 {
        return Err(call_already_open());
    }
    let attempts: Vec<_> = calls.iter().map(|(_, call)| (call.id, &call.attempt)).collect();
    insert_attempts(tx, &attempts).await
}

/// An attempt and what it changed on its delivery.
type Progress<'a> = (WorkspaceId, WebhookDeliveryId, &'a WebhookAttempt, &'a DeliveryProgress);

/// Applies attempts to their deliveries and logs them, with two statements per chunk.
async fn record_progress(tx: &mut Tx, records: &[Progress<'_>], now: Timestamp) -> StoreResult<()> {
    for chunk in records.chunks(CHUNK) {
        let mut update = QueryBuilder::<Sqlite>::new(
            "WITH p (workspace, delivery, status, number, last_status, last_error, response, finished) AS (",
        );
        update.push_values(chunk, |mut row, (workspace, delivery, attempt, progress)| {
            row.push_bind(workspace.as_uuid())
                .push_bind(delivery.as_uuid())
                .push_bind(progress.status.as_str())
                .push_bind(i64::from(attempt.number))
                .push_bind(progress.last_status.map(i64::from))
                .push_bind(progress.last_error.clone())
                .push_bind(progress.response.to_string())
                .push_bind(progress.status != WebhookStatus::Pending);
        });
        update
            .push(
                ") UPDATE webhook_deliveries SET status = p.status, attempts = MAX(webhook_deliveries.attempts, p.number), \
                 last_status = p.last_status, last_error = p.last_error, response = p.response, updated_at = ",
            )
            .push_bind(now.unix_millis())
            .push(", finished_at = CASE WHEN p.finished THEN ")
            .push_bind(now.unix_millis())
            .push(
                " ELSE NULL END FROM p WHERE webhook_deliveries.workspace_id = p.workspace \
                 AND webhook_deliveries.id = p.delivery",
            );
        let updated = update.build().execute(&mut **tx).await.map_err(db_error)?;
        if updated.rows_affected() != chunk.len() as u64 {
            return Err(NOT_FOUND);
        }
    }
    let attempts: Vec<_> = records.iter().map(|(_, delivery, attempt, _)| (*delivery, *attempt)).collect();
    insert_attempts(tx, &attempts).await
}

/// Logs attempts (an attempt already logged is kept).
async fn insert_attempts(tx: &mut Tx, attempts: &[(WebhookDeliveryId, &WebhookAttempt)]) -> StoreResult<()> {
    for chunk in attempts.chunks(CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO webhook_attempts (delivery_id, number, at, request_line, request_headers, status, latency_ms, \
             response_body, error) ",
        );
        insert.push_values(chunk, |mut row, (delivery, attempt)| {
            row.push_bind(delivery.as_uuid())
                .push_bind(i64::from(attempt.number))
                .push_bind(attempt.at.unix_millis())
                .push_bind(attempt.request_line.clone())
                .push_bind(attempt.request_headers.to_string())
                .push_bind(attempt.status.map(i64::from))
                .push_bind(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX))
                .push_bind(attempt.response_body.clone())
                .push_bind(attempt.error.clone());
        });
        insert.push(" ON CONFLICT (delivery_id, number) DO NOTHING");
        insert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(())
}

/// A delivery to insert under its id, pending or as its first attempt left it.
type DeliveryRow<'a> =
    (WorkspaceId, WebhookDeliveryId, &'a NewDelivery, Option<(&'a WebhookAttempt, &'a DeliveryProgress)>);

/// Inserts deliveries under the given ids, pending or as the given attempt left them; one
/// already open under the same idempotency key is left as it is (and keeps its own id).
/// Returns how many were inserted.
async fn insert_deliveries(tx: &mut Tx, rows: &[DeliveryRow<'_>], now: Timestamp) -> StoreResult<u64> {
    let mut inserted = 0;
    for chunk in rows.chunks(CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO webhook_deliveries (id, workspace_id, journey_id, campaign_id, contact_id, step, \
             idempotency_key, endpoint, request, call, sealed_with, status, attempts, last_status, last_error, \
             response, created_at, updated_at, finished_at, campaign_webhook_id) ",
        );
        let secrets = tx.secrets.clone();
        insert.push_values(chunk, |mut row, (workspace, id, new, attempted)| {
            let call = secrets.seal_document(Document::Call, columns::DELIVERY_CALL, &new.call);
            let progress = attempted.map(|(_, progress)| progress);
            let finished = progress.is_some_and(|p| p.status != WebhookStatus::Pending);
            row.push_bind(id.as_uuid())
                .push_bind(workspace.as_uuid())
                .push_bind(new.journey_id.map(|j| j.as_uuid()))
                .push_bind(new.campaign_id.map(|c| c.as_uuid()))
                .push_bind(new.contact_id.map(|c| c.as_uuid()))
                .push_bind(new.step.clone())
                .push_bind(new.idempotency_key.clone())
                .push_bind(new.endpoint.clone())
                .push_bind(new.request.to_string())
                .push_bind(call.value.to_string())
                .push_bind(call.key.map(str::to_owned))
                .push_bind(progress.map_or(WebhookStatus::Pending, |p| p.status).as_str())
                .push_bind(attempted.map_or(0, |(attempt, _)| i64::from(attempt.number)))
                .push_bind(progress.and_then(|p| p.last_status).map(i64::from))
                .push_bind(progress.and_then(|p| p.last_error.clone()))
                .push_bind(progress.map_or(Value::Null, |p| p.response.clone()).to_string())
                .push_bind(now.unix_millis())
                .push_bind(now.unix_millis())
                .push_bind(finished.then_some(now.unix_millis()))
                .push_bind(new.campaign_webhook_id.map(|h| h.as_uuid()));
        });
        insert.push(" ON CONFLICT (workspace_id, idempotency_key) DO NOTHING");
        inserted += insert.build().execute(&mut **tx).await.map_err(db_error)?.rows_affected();
    }
    Ok(inserted)
}
