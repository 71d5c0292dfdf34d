//! The storage interface: one trait whose methods are Herald's use cases, each atomic, and
//! the errors they return. Two backends implement it (`herald-store-sqlite`,
//! `herald-store-postgres`); the `conformance` feature holds the suite both must pass.
//!
//! Rules every implementation keeps:
//! - every method is one transaction: it happens entirely or not at all;
//! - every read of tenant data is scoped by a `WorkspaceId`; there is no lookup by id alone;
//! - `now` is always a parameter: no SQL reads the database clock, so a manual clock in tests
//!   governs everything;
//! - no method holds a transaction open after it returns (callers do network I/O between
//!   calls, never inside one).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use herald_domain::job::{JobLease, JobOutcome, LeasedJob};
use herald_domain::{
    ApiKey, ApiKeyId, ApiKeyName, Job, JobId, NewJob, Page, PageRequest, Timestamp, TokenHash,
    Workspace, WorkspaceId, WorkspaceName,
};
use uuid::{ContextV7, Uuid};

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;

pub use error::StoreError;

pub type StoreResult<T> = Result<T, StoreError>;

/// A store shared by every task of the process.
pub type SharedStore = Arc<dyn Store>;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A fresh UUIDv7 for `now`. Ids take their time from the injected clock, so records created
/// under a manual clock sort the way the test's timeline says; within one process, ids made in
/// the same millisecond still sort in creation order (uuid's `ContextV7` counter), which is
/// what makes "ordered by id" mean "ordered by creation" for lists and cursors.
pub fn new_uuid(now: Timestamp) -> Uuid {
    static CONTEXT: Mutex<ContextV7> = Mutex::new(ContextV7::new());
    let millis = u64::try_from(now.unix_millis()).unwrap_or(0);
    let context = CONTEXT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let timestamp =
        uuid::Timestamp::from_unix(&*context, millis / 1000, (millis % 1000) as u32 * 1_000_000);
    Uuid::new_v7(timestamp)
}

/// The workspace an authenticated request acts for, and the key it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub workspace_id: WorkspaceId,
    pub api_key_id: ApiKeyId,
}

/// A new API key: its label and the hash of its token (the token itself never reaches the
/// store).
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: ApiKeyName,
    pub hash: TokenHash,
    pub hint: String,
}

/// A request to claim due jobs.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// Names the claiming worker in the job row, for operators.
    pub worker: String,
    pub now: Timestamp,
    /// How long the claim lasts without the job being finished.
    pub lease: Duration,
    pub limit: u32,
}

/// Counts of jobs by where they are, as of `now`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Queued with `run_at <= now`, plus running with an expired lease: claimable now.
    pub due: u64,
    /// Queued for later.
    pub scheduled: u64,
    /// Held by a live lease.
    pub running: u64,
    pub dead: u64,
}

/// One application of a ping job's effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingRecord {
    pub job_id: JobId,
    pub worker: String,
    pub applied_at: Timestamp,
}

/// Everything Herald stores, as use cases. Split by concern; `Store` is all of them.
#[async_trait]
pub trait Store: WorkspaceStore + JobStore + Send + Sync + std::fmt::Debug + 'static {
    fn backend(&self) -> Backend;

    /// Applies pending migrations. Safe to call from several processes at once.
    async fn migrate(&self) -> StoreResult<()>;

    /// Succeeds when the database answers a trivial query (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// Closes the connections; later calls fail.
    async fn close(&self);
}

/// Workspaces and the API keys that act for them.
#[async_trait]
pub trait WorkspaceStore {
    /// The `default` workspace, created on first call.
    async fn ensure_default_workspace(&self, now: Timestamp) -> StoreResult<Workspace>;

    /// Fails with `Conflict { constraint: "workspaces_name" }` when the name is taken.
    async fn create_workspace(
        &self,
        name: &WorkspaceName,
        now: Timestamp,
    ) -> StoreResult<Workspace>;

    async fn workspace_by_name(&self, name: &WorkspaceName) -> StoreResult<Option<Workspace>>;

    async fn get_workspace(&self, id: WorkspaceId) -> StoreResult<Workspace>;

    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>>;

    async fn create_api_key(
        &self,
        workspace: WorkspaceId,
        key: NewApiKey,
        now: Timestamp,
    ) -> StoreResult<ApiKey>;

    /// Makes `hash` the workspace's bootstrap key (the operator's `HERALD_ADMIN_TOKEN`),
    /// revoking a previous bootstrap key with a different hash. Idempotent across restarts.
    async fn install_bootstrap_key(
        &self,
        workspace: WorkspaceId,
        hash: TokenHash,
        now: Timestamp,
    ) -> StoreResult<ApiKey>;

    /// The principal of an unrevoked key with this hash.
    async fn authenticate(&self, hash: &TokenHash) -> StoreResult<Option<Principal>>;

    async fn list_api_keys(
        &self,
        workspace: WorkspaceId,
        page: PageRequest<ApiKeyId>,
    ) -> StoreResult<Page<ApiKey>>;

    async fn get_api_key(&self, workspace: WorkspaceId, id: ApiKeyId) -> StoreResult<ApiKey>;

    /// Revokes a key; revoking twice keeps the first time.
    async fn revoke_api_key(
        &self,
        workspace: WorkspaceId,
        id: ApiKeyId,
        now: Timestamp,
    ) -> StoreResult<ApiKey>;
}

/// The durable job queue.
#[async_trait]
pub trait JobStore {
    /// Enqueues jobs in one transaction (all or none).
    async fn enqueue_jobs(
        &self,
        workspace: WorkspaceId,
        jobs: &[NewJob],
        now: Timestamp,
    ) -> StoreResult<Vec<JobId>>;

    /// Claims up to `limit` due jobs, oldest due first: queued jobs whose `run_at` has come
    /// and running jobs whose lease has expired. Each claim counts as an attempt. Concurrent
    /// callers (also in other processes) never receive the same job under live leases.
    async fn claim_jobs(&self, request: &ClaimRequest) -> StoreResult<Vec<LeasedJob>>;

    /// Records how a run ended. Fails with `LeaseLost` if the lease expired and the job was
    /// claimed again, in which case nothing is written.
    async fn finish_job(
        &self,
        lease: &JobLease,
        outcome: &JobOutcome,
        now: Timestamp,
    ) -> StoreResult<()>;

    /// The effect of a ping job, committed together with the job's completion under its
    /// lease: either both happen or neither.
    async fn complete_ping(
        &self,
        lease: &JobLease,
        worker: &str,
        now: Timestamp,
    ) -> StoreResult<()>;

    async fn ping_records(&self, workspace: WorkspaceId) -> StoreResult<Vec<PingRecord>>;

    async fn get_job(&self, workspace: WorkspaceId, id: JobId) -> StoreResult<Job>;

    /// When the earliest queued or leased job becomes due, if any: how long a worker may
    /// sleep.
    async fn next_job_due(&self) -> StoreResult<Option<Timestamp>>;

    async fn queue_stats(&self, now: Timestamp) -> StoreResult<QueueStats>;
}
