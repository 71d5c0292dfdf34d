//! Herald's storage on PostgreSQL: the backend for several `herald serve` processes sharing
//! one database.
//!
//! One connection pool per process. Transactions run at PostgreSQL's default READ COMMITTED
//! isolation: every store method is written so that it stays correct when another process
//! runs the same method at the same time (claims skip rows another claim has locked, lost
//! leases are fenced by `lease_id`, "create if missing" uses `ON CONFLICT` or a row lock),
//! so nothing needs SERIALIZABLE. Unlike SQLite, writers do not queue behind one connection:
//! PostgreSQL locks rows, not the database.
//!
//! The one race row locks cannot settle is creating a row that does not exist yet: two ingest
//! batches (or imports) may both decide to create the contact for a new email, or both see an
//! idempotency key as new. The unique index keeps the second from writing it; that batch is
//! rolled back and run again from the start, and then finds what the first committed (see
//! `contacts` and `events`).

mod actions;
mod activity;
mod broadcasts;
mod campaign_webhooks;
mod campaigns;
mod contacts;
mod drafts;
mod email;
mod encode;
mod endpoints;
mod events;
mod hits;
mod jobs;
mod migrate;
mod rows;
mod secrets;
mod segments;
mod send;
mod sources;
mod templates;
#[cfg(feature = "test-support")]
pub mod test_support;
mod topics;
mod users;
mod webhooks;
mod workspaces;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use herald_domain::Timestamp;
use herald_store::secrets::SecretKeys;
use herald_store::{Backend, QueueSignal, Store, StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// Connections per process unless the operator says otherwise: enough for the HTTP handlers
/// and the workers to overlap, few enough that a handful of processes stay well under
/// PostgreSQL's default `max_connections` of 100.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// How long a call waits for a free connection before failing with `StoreError::Busy`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// A store on one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Seals and opens the secrets this store keeps (`herald_store::secrets`).
    secrets: Arc<SecretKeys>,
    /// Told by each commit that made jobs due (see [`Tx`]).
    signal: Arc<QueueSignal>,
}

/// A transaction that keeps the earliest due time of the jobs it enqueues (or brings forward)
/// and announces it on the store's [`QueueSignal`] once it commits, so this process's worker
/// hears of every job without any caller waking it. It seals the secrets inside the documents
/// it writes with the store's keys.
pub(crate) struct Tx {
    inner: Transaction<'static, Postgres>,
    due: Option<Timestamp>,
    signal: Arc<QueueSignal>,
    pub(crate) secrets: Arc<SecretKeys>,
}

impl Tx {
    /// Notes a job this transaction makes due at `at`.
    pub(crate) fn jobs_due(&mut self, at: Timestamp) {
        self.due = Some(self.due.map_or(at, |due| due.min(at)));
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.inner.commit().await?;
        if let Some(due) = self.due {
            self.signal.jobs_due(due);
        }
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.inner.rollback().await
    }
}

impl std::ops::Deref for Tx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.inner
    }
}

/// Why a PostgreSQL URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("not a PostgreSQL URL: {0}")]
    BadUrl(#[source] sqlx::Error),
    #[error("cannot connect to the database")]
    Open(#[source] sqlx::Error),
}

impl PgStore {
    /// Connects to the database at a `postgres://` URL with [`DEFAULT_MAX_CONNECTIONS`].
    /// Does not migrate.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::connect_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Connects with a pool of at most `max_connections`. One connection is opened right
    /// away, so a wrong URL, password or unreachable server fails here, at start-up, rather
    /// than on the first request.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, ConnectError> {
        let options = PgConnectOptions::from_str(url).map_err(ConnectError::BadUrl)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(ConnectError::Open)?;
        Ok(Self { pool, signal: Arc::default(), secrets: Arc::new(SecretKeys::ephemeral()) })
    }

    /// The store sealing secrets with `keys` instead of a key that lives as long as the
    /// process.
    #[must_use]
    pub fn with_secrets(self, keys: SecretKeys) -> Self {
        Self { secrets: Arc::new(keys), ..self }
    }

    /// Starts a transaction (READ COMMITTED; see the module comment for why that suffices).
    async fn begin(&self) -> StoreResult<Tx> {
        let inner = self.pool.begin().await.map_err(db_error)?;
        Ok(Tx { inner, due: None, signal: self.signal.clone(), secrets: self.secrets.clone() })
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        migrate::apply(&mut tx).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn reseal_secrets(&self) -> StoreResult<u64> {
        self.reseal().await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_error)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// Maps a driver error onto the store's error by SQLSTATE: unique violations become
/// `Conflict` named after the violated index (the migrations name unique indexes
/// `<table>_<column>`, as SQLite's backend reports them), and the states that mean "try again
/// later" become `Busy`.
pub(crate) fn db_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // unique_violation; PostgreSQL always names the index, but keep the cause if not.
            Some("23505") => match db.constraint() {
                Some(constraint) => StoreError::Conflict { constraint: constraint.to_owned() },
                None => StoreError::Other(Box::new(err)),
            },
            // serialization_failure, deadlock_detected, lock_not_available,
            // too_many_connections, cannot_connect_now (starting up or shutting down).
            Some("40001" | "40P01" | "55P03" | "53300" | "57P03") => StoreError::Busy(Box::new(err)),
            _ => StoreError::Other(Box::new(err)),
        },
        sqlx::Error::PoolTimedOut => StoreError::Busy(Box::new(err)),
        _ => StoreError::Other(Box::new(err)),
    }
}

/// Starts one item of a batch: [`settle`] undoes only its writes if it fails.
pub(crate) async fn savepoint(tx: &mut Tx) -> StoreResult<()> {
    sqlx::query("SAVEPOINT item").execute(&mut **tx).await.map_err(db_error)?;
    Ok(())
}

/// Ends the item started by [`savepoint`]: its error undoes its writes and becomes its result.
pub(crate) async fn settle<T>(tx: &mut Tx, result: StoreResult<T>) -> StoreResult<StoreResult<T>> {
    if result.is_err() {
        sqlx::query("ROLLBACK TO SAVEPOINT item").execute(&mut **tx).await.map_err(db_error)?;
    }
    sqlx::query("RELEASE SAVEPOINT item").execute(&mut **tx).await.map_err(db_error)?;
    Ok(result)
}
