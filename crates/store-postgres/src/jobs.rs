//! The job queue on PostgreSQL. Claims lock their rows with `FOR UPDATE SKIP LOCKED`, so
//! claimers in any number of processes take disjoint sets of due jobs without waiting for
//! each other, and finishing is fenced by the lease id.

use std::sync::Arc;

use async_trait::async_trait;
use herald_domain::job::{JobLease, JobOutcome, JobState, LeasedJob};
use herald_domain::{Job, JobId, LeaseId, NewJob, Timestamp, WorkspaceId};
use herald_store::{ClaimRequest, JobStore, PingRecord, QueueSignal, QueueStats, StoreError, StoreResult, new_uuid};
use time::OffsetDateTime;

use crate::rows::{self, count, get, ts, uuid};
use crate::{PgStore, Tx, db_error};

macro_rules! job_columns {
    () => {
        "id, workspace_id, kind, payload, state, run_at, attempts, max_attempts, last_error, created_at, updated_at"
    };
}

/// Inserts jobs inside the caller's transaction: the outbox half of every use case that
/// implies work. The transaction announces them when it commits, and seals the secrets of the
/// calls they carry.
///
/// One statement whatever the count: the per-job values travel as six arrays that
/// `UNNEST` turns back into rows, so 10,000 jobs cost one round trip and five bind
/// parameters, far from PostgreSQL's limit of 65,535 parameters per statement that a
/// multi-row `VALUES` list would have to be chunked around.
pub(crate) async fn insert_jobs(
    tx: &mut Tx,
    workspace: WorkspaceId,
    jobs: &[NewJob],
    now: Timestamp,
) -> StoreResult<Vec<JobId>> {
    if let Some(due) = jobs.iter().map(|job| job.run_at).min() {
        tx.jobs_due(due);
    }
    let ids: Vec<JobId> = jobs.iter().map(|_| JobId::from_uuid(new_uuid(now))).collect();
    let kinds: Vec<&str> = jobs.iter().map(|job| job.kind.as_str()).collect();
    let keys = tx.secrets.clone();
    let sealed: Vec<_> = jobs.iter().map(|job| keys.seal_job(job.kind.as_str(), &job.payload)).collect();
    let payloads: Vec<&serde_json::Value> = sealed.iter().map(|s| s.value.as_ref()).collect();
    let sealed_with: Vec<Option<&str>> = sealed.iter().map(|s| s.key).collect();
    let run_ats: Vec<OffsetDateTime> = jobs.iter().map(|job| job.run_at.to_offset_date_time()).collect();
    let max_attempts: Vec<i64> = jobs.iter().map(|job| i64::from(job.max_attempts)).collect();
    sqlx::query(
        "INSERT INTO jobs (id, workspace_id, kind, payload, sealed_with, state, run_at, due_at, max_attempts, \
         created_at, updated_at) \
         SELECT t.id, $1, t.kind, t.payload, t.sealed_with, $2, t.run_at, t.run_at, t.max_attempts, $3, $3 \
         FROM UNNEST($4::uuid[], $5::text[], $6::jsonb[], $7::text[], $8::timestamptz[], $9::bigint[]) \
              AS t (id, kind, payload, sealed_with, run_at, max_attempts)",
    )
    .bind(workspace.as_uuid())
    .bind(JobState::Queued.as_str())
    .bind(now.to_offset_date_time())
    .bind(ids.iter().map(|id| id.as_uuid()).collect::<Vec<_>>())
    .bind(kinds)
    .bind(payloads)
    .bind(sealed_with)
    .bind(run_ats)
    .bind(max_attempts)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(ids)
}

/// Applies a run's outcome if `lease` is still the current lease of `workspace`'s job.
pub(crate) async fn finish(
    tx: &mut Tx,
    workspace: WorkspaceId,
    lease: &JobLease,
    outcome: &JobOutcome,
    now: Timestamp,
) -> StoreResult<()> {
    let (state, run_at, error) = match outcome {
        JobOutcome::Done => (JobState::Done, None, None),
        JobOutcome::Retry { at, error } => (JobState::Queued, Some(at.to_offset_date_time()), Some(error.as_str())),
        JobOutcome::Dead { error } => (JobState::Dead, None, Some(error.as_str())),
    };
    // If a claim races this (the lease has just expired), whichever locks the row first
    // wins: a claim skips the row while this UPDATE holds it, and this UPDATE, having waited
    // for a claim's lock, re-checks `lease_id` on the claimed row, matches nothing and
    // reports `LeaseLost`.
    let updated = sqlx::query(
        "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), due_at = $2, \
         last_error = COALESCE($3, last_error), lease_id = NULL, leased_by = NULL, updated_at = $4 \
         WHERE id = $5 AND lease_id = $6 AND workspace_id = $7",
    )
    .bind(state.as_str())
    .bind(run_at)
    .bind(error)
    .bind(now.to_offset_date_time())
    .bind(lease.job_id.as_uuid())
    .bind(lease.lease_id.as_uuid())
    .bind(workspace.as_uuid())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::LeaseLost);
    }
    if let JobOutcome::Retry { at, .. } = outcome {
        tx.jobs_due(*at);
    }
    Ok(())
}

#[async_trait]
impl JobStore for PgStore {
    async fn enqueue_jobs(&self, workspace: WorkspaceId, jobs: &[NewJob], now: Timestamp) -> StoreResult<Vec<JobId>> {
        let mut tx = self.begin().await?;
        let ids = insert_jobs(&mut tx, workspace, jobs, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(ids)
    }

    async fn claim_jobs(&self, request: &ClaimRequest) -> StoreResult<Vec<LeasedJob>> {
        let lease_id = LeaseId::from_uuid(new_uuid(request.now));
        let expires_at = request.now + request.lease;
        let mut tx = self.begin().await?;
        // `SKIP LOCKED` is what lets several processes share the queue: a claimer passes over
        // rows another claimer has locked instead of queueing behind it. A row that another
        // claim has already committed is re-checked against `due_at <= now` on its newest
        // version before it is locked, so it is skipped too (its `due_at` is now the lease's
        // expiry). The CTE's column is renamed so that `RETURNING id` is not ambiguous.
        let claimed = sqlx::query(concat!(
            "WITH picked AS (",
            "SELECT id AS picked_id FROM jobs WHERE due_at IS NOT NULL AND due_at <= $1 ",
            "ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) ",
            "UPDATE jobs SET state = 'running', due_at = $3, lease_id = $4, leased_by = $5, ",
            "attempts = jobs.attempts + 1, updated_at = $1 ",
            "FROM picked WHERE jobs.id = picked.picked_id ",
            "RETURNING ",
            job_columns!()
        ))
        .bind(request.now.to_offset_date_time())
        .bind(i64::from(request.limit))
        .bind(expires_at.to_offset_date_time())
        .bind(lease_id.as_uuid())
        .bind(&request.worker)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let mut jobs = claimed.iter().map(|row| rows::job(row, &self.secrets)).collect::<StoreResult<Vec<Job>>>()?;
        // RETURNING gives no order; hand jobs out in the order they fell due.
        jobs.sort_by_key(|j| (j.run_at, j.id));
        Ok(jobs
            .into_iter()
            .map(|job| LeasedJob { lease: JobLease { job_id: job.id, lease_id, expires_at }, job })
            .collect())
    }

    async fn finish_job_and_enqueue(
        &self,
        workspace: WorkspaceId,
        lease: &JobLease,
        outcome: &JobOutcome,
        follow_up: &[NewJob],
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // On `LeaseLost` the transaction is dropped, which rolls it back: nothing enqueued.
        finish(&mut tx, workspace, lease, outcome, now).await?;
        if !follow_up.is_empty() {
            insert_jobs(&mut tx, workspace, follow_up, now).await?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn complete_ping(
        &self,
        workspace: WorkspaceId,
        lease: &JobLease,
        worker: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // On `LeaseLost` the transaction is dropped, which rolls it back: no effect either.
        finish(&mut tx, workspace, lease, &JobOutcome::Done, now).await?;
        sqlx::query("INSERT INTO ping_log (job_id, workspace_id, worker, applied_at) VALUES ($1, $2, $3, $4)")
            .bind(lease.job_id.as_uuid())
            .bind(workspace.as_uuid())
            .bind(worker)
            .bind(now.to_offset_date_time())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn ping_records(&self, workspace: WorkspaceId) -> StoreResult<Vec<PingRecord>> {
        let rows =
            sqlx::query("SELECT job_id, worker, applied_at FROM ping_log WHERE workspace_id = $1 ORDER BY job_id")
                .bind(workspace.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(PingRecord {
                    job_id: JobId::from_uuid(uuid(row, "job_id")?),
                    worker: get(row, "worker")?,
                    applied_at: ts(row, "applied_at")?,
                })
            })
            .collect()
    }

    async fn get_job(&self, workspace: WorkspaceId, id: JobId) -> StoreResult<Job> {
        let row = sqlx::query(concat!("SELECT ", job_columns!(), " FROM jobs WHERE workspace_id = $1 AND id = $2"))
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
            .ok_or(StoreError::NotFound { entity: "job" })?;
        rows::job(&row, &self.secrets)
    }

    async fn next_job_due(&self) -> StoreResult<Option<Timestamp>> {
        let next: Option<OffsetDateTime> = sqlx::query_scalar("SELECT MIN(due_at) FROM jobs WHERE due_at IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(next.map(Timestamp::from_offset_date_time))
    }

    async fn purge_finished_jobs(
        &self,
        done_before: Timestamp,
        dead_before: Timestamp,
        limit: u32,
    ) -> StoreResult<u64> {
        let purged = sqlx::query(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE due_at IS NULL AND updated_at < $1 \
             AND ((state = 'done' AND updated_at < $2) OR (state = 'dead' AND updated_at < $3)) LIMIT $4)",
        )
        .bind(crate::encode::ts(done_before.max(dead_before)))
        .bind(crate::encode::ts(done_before))
        .bind(crate::encode::ts(dead_before))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(purged.rows_affected())
    }

    fn queue_signal(&self) -> &Arc<QueueSignal> {
        &self.signal
    }

    async fn queue_stats(&self, now: Timestamp) -> StoreResult<QueueStats> {
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE due_at <= $1) AS due, \
                    COUNT(*) FILTER (WHERE due_at > $1 AND state = 'queued') AS scheduled, \
                    COUNT(*) FILTER (WHERE due_at > $1 AND state = 'running') AS running, \
                    (SELECT COUNT(*) FROM jobs WHERE state = 'dead') AS dead \
             FROM jobs WHERE due_at IS NOT NULL",
        )
        .bind(now.to_offset_date_time())
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(QueueStats {
            due: count(&row, "due")?,
            scheduled: count(&row, "scheduled")?,
            running: count(&row, "running")?,
            dead: count(&row, "dead")?,
        })
    }
}
