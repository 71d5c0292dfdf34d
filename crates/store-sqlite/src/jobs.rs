//! The job queue on SQLite. Claims run inside the single writer's `BEGIN IMMEDIATE`
//! transaction, which serialises them: no two claims can see the same due row.

use std::sync::Arc;

use async_trait::async_trait;
use herald_domain::job::{JobLease, JobOutcome, JobState, LeasedJob};
use herald_domain::{Job, JobId, LeaseId, NewJob, Timestamp, WorkspaceId};
use herald_store::secrets::Document;
use herald_store::{ClaimRequest, JobStore, PingRecord, QueueSignal, QueueStats, StoreError, StoreResult, new_uuid};
use sqlx::{QueryBuilder, Sqlite};

use crate::rows::{self, get, ts, uuid};
use crate::{CHUNK, SqliteStore, Tx, db_error};

/// The columns a new job is inserted with, by [`insert_jobs`] and [`insert_job_direct`].
macro_rules! new_job_columns {
    () => {
        "id, workspace_id, kind, payload, sealed_with, state, run_at, due_at, max_attempts, created_at, updated_at"
    };
}

macro_rules! job_columns {
    () => {
        "id, workspace_id, kind, payload, state, run_at, attempts, max_attempts, last_error, created_at, updated_at"
    };
}

/// Inserts jobs inside the caller's transaction: the outbox half of every use case that
/// implies work. The transaction announces them when it commits, and seals the secrets of the
/// calls they carry.
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
    for (chunk, chunk_ids) in jobs.chunks(CHUNK).zip(ids.chunks(CHUNK)) {
        let mut insert = QueryBuilder::<Sqlite>::new(concat!("INSERT INTO jobs (", new_job_columns!(), ") "));
        let secrets = tx.secrets.clone();
        insert.push_values(chunk.iter().zip(chunk_ids), |mut row, (job, id)| {
            let payload = secrets.seal_job(job.kind.as_str(), &job.payload);
            row.push_bind(id.as_uuid())
                .push_bind(workspace.as_uuid())
                .push_bind(job.kind.as_str())
                .push_bind(payload.value.to_string())
                .push_bind(payload.key.map(str::to_owned))
                .push_bind(JobState::Queued.as_str())
                .push_bind(job.run_at.unix_millis())
                .push_bind(job.run_at.unix_millis())
                .push_bind(i64::from(job.max_attempts))
                .push_bind(now.unix_millis())
                .push_bind(now.unix_millis());
        });
        insert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(ids)
}

/// Inserts one job inside a [direct](crate::direct) transaction: the jobs that evaluate
/// ingested events, which carry no secret (the direct writer has no keys to seal them with).
pub(crate) fn insert_job_direct(
    db: &rusqlite::Connection,
    workspace: WorkspaceId,
    job: &NewJob,
    now: Timestamp,
) -> StoreResult<()> {
    debug_assert_eq!(Document::of_job(job.kind.as_str()), None, "a job with secrets written unsealed");
    db.execute(
        concat!("INSERT INTO jobs (", new_job_columns!(), ") VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?6, ?7, ?8, ?8)"),
        rusqlite::params![
            &new_uuid(now).as_bytes()[..],
            &workspace.as_uuid().as_bytes()[..],
            job.kind.as_str(),
            job.payload.to_string(),
            JobState::Queued.as_str(),
            job.run_at.unix_millis(),
            i64::from(job.max_attempts),
            now.unix_millis(),
        ],
    )
    .map_err(crate::direct::direct_error)?;
    Ok(())
}

/// Applies a run's outcome if `lease` is still the current lease of `workspace`'s job.
pub(crate) async fn finish(
    tx: &mut Tx,
    workspace: WorkspaceId,
    lease: &JobLease,
    outcome: &JobOutcome,
    now: Timestamp,
) -> StoreResult<()> {
    finish_all(tx, &[(workspace, lease, outcome)], now).await
}

/// Applies runs' outcomes in one statement per chunk if every lease is still its job's
/// current lease, in the workspace given with it; `LeaseLost` (and nothing applied by that
/// statement) if any is not.
pub(crate) async fn finish_all(
    tx: &mut Tx,
    runs: &[(WorkspaceId, &JobLease, &JobOutcome)],
    now: Timestamp,
) -> StoreResult<()> {
    for chunk in runs.chunks(CHUNK) {
        let mut update = QueryBuilder::<Sqlite>::new("WITH f (job, lease, workspace, state, retry_at, error) AS (");
        update.push_values(chunk, |mut row, (workspace, lease, outcome)| {
            let (state, retry_at, error) = match outcome {
                JobOutcome::Done => (JobState::Done, None, None),
                JobOutcome::Retry { at, error } => (JobState::Queued, Some(at.unix_millis()), Some(error.clone())),
                JobOutcome::Dead { error } => (JobState::Dead, None, Some(error.clone())),
            };
            row.push_bind(lease.job_id.as_uuid())
                .push_bind(lease.lease_id.as_uuid())
                .push_bind(workspace.as_uuid())
                .push_bind(state.as_str())
                .push_bind(retry_at)
                .push_bind(error);
        });
        update
            .push(
                ") UPDATE jobs SET state = f.state, run_at = COALESCE(f.retry_at, jobs.run_at), due_at = f.retry_at, \
                 last_error = COALESCE(f.error, jobs.last_error), lease_id = NULL, leased_by = NULL, updated_at = ",
            )
            .push_bind(now.unix_millis())
            .push(" FROM f WHERE jobs.id = f.job AND jobs.lease_id = f.lease AND jobs.workspace_id = f.workspace");
        let updated = update.build().execute(&mut **tx).await.map_err(db_error)?;
        if updated.rows_affected() != chunk.len() as u64 {
            return Err(StoreError::LeaseLost);
        }
    }
    for (_, _, outcome) in runs {
        if let JobOutcome::Retry { at, .. } = outcome {
            tx.jobs_due(*at);
        }
    }
    Ok(())
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn enqueue_jobs(&self, workspace: WorkspaceId, jobs: &[NewJob], now: Timestamp) -> StoreResult<Vec<JobId>> {
        let mut tx = self.write().await?;
        let ids = insert_jobs(&mut tx, workspace, jobs, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(ids)
    }

    async fn claim_jobs(&self, request: &ClaimRequest) -> StoreResult<Vec<LeasedJob>> {
        let lease_id = LeaseId::from_uuid(new_uuid(request.now));
        let expires_at = request.now + request.lease;
        let mut tx = self.write_unsynced().await?;
        // The limit is written into the text, not bound: SQLite prepares a statement with a
        // bound LIMIT again whenever the bound value changes, and free slots vary per claim.
        let mut claim = QueryBuilder::<Sqlite>::new("UPDATE jobs SET state = 'running', due_at = ");
        claim
            .push_bind(expires_at.unix_millis())
            .push(", lease_id = ")
            .push_bind(lease_id.as_uuid())
            .push(", leased_by = ")
            .push_bind(&request.worker)
            .push(", attempts = attempts + 1, updated_at = ")
            .push_bind(request.now.unix_millis())
            .push(" WHERE id IN (SELECT id FROM jobs WHERE due_at IS NOT NULL AND due_at <= ")
            .push_bind(request.now.unix_millis())
            .push(format_args!(" ORDER BY due_at, id LIMIT {}) RETURNING ", request.limit))
            .push(job_columns!());
        let claimed = claim.build().fetch_all(&mut *tx).await.map_err(db_error)?;
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
        let mut tx = self.write().await?;
        finish(&mut tx, workspace, lease, outcome, now).await?;
        insert_jobs(&mut tx, workspace, follow_up, now).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn complete_ping(
        &self,
        workspace: WorkspaceId,
        lease: &JobLease,
        worker: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        finish(&mut tx, workspace, lease, &JobOutcome::Done, now).await?;
        sqlx::query("INSERT INTO ping_log (job_id, workspace_id, worker, applied_at) VALUES (?, ?, ?, ?)")
            .bind(lease.job_id.as_uuid())
            .bind(workspace.as_uuid())
            .bind(worker)
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn ping_records(&self, workspace: WorkspaceId) -> StoreResult<Vec<PingRecord>> {
        let rows =
            sqlx::query("SELECT job_id, worker, applied_at FROM ping_log WHERE workspace_id = ? ORDER BY job_id")
                .bind(workspace.as_uuid())
                .fetch_all(&self.readers)
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
        let row = sqlx::query(concat!("SELECT ", job_columns!(), " FROM jobs WHERE workspace_id = ? AND id = ?"))
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?
            .ok_or(StoreError::NotFound { entity: "job" })?;
        rows::job(&row, &self.secrets)
    }

    async fn next_job_due(&self) -> StoreResult<Option<Timestamp>> {
        let next: Option<i64> = sqlx::query_scalar("SELECT MIN(due_at) FROM jobs WHERE due_at IS NOT NULL")
            .fetch_one(&self.readers)
            .await
            .map_err(db_error)?;
        Ok(next.map(Timestamp::from_unix_millis))
    }

    async fn purge_finished_jobs(
        &self,
        done_before: Timestamp,
        dead_before: Timestamp,
        limit: u32,
    ) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let purged = sqlx::query(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE due_at IS NULL AND updated_at < ?1 \
             AND ((state = 'done' AND updated_at < ?2) OR (state = 'dead' AND updated_at < ?3)) LIMIT ?4)",
        )
        .bind(done_before.max(dead_before).unix_millis())
        .bind(done_before.unix_millis())
        .bind(dead_before.unix_millis())
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(purged.rows_affected())
    }

    fn queue_signal(&self) -> &Arc<QueueSignal> {
        &self.signal
    }

    async fn queue_stats(&self, now: Timestamp) -> StoreResult<QueueStats> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(due_at <= ?1), 0) AS due, \
                    COALESCE(SUM(due_at > ?1 AND state = 'queued'), 0) AS scheduled, \
                    COALESCE(SUM(due_at > ?1 AND state = 'running'), 0) AS running, \
                    (SELECT COUNT(*) FROM jobs WHERE state = 'dead') AS dead \
             FROM jobs WHERE due_at IS NOT NULL",
        )
        .bind(now.unix_millis())
        .fetch_one(&self.readers)
        .await
        .map_err(db_error)?;
        let count = |column: &str| -> StoreResult<u64> {
            u64::try_from(get::<i64>(&row, column)?).map_err(|e| rows::corrupt(column, e))
        };
        Ok(QueueStats {
            due: count("due")?,
            scheduled: count("scheduled")?,
            running: count("running")?,
            dead: count("dead")?,
        })
    }
}
