//! Herald's storage on SQLite: the zero-configuration backend.
//!
//! One file, WAL mode, `synchronous=FULL` (an acknowledged write survives power loss). SQLite
//! allows one writer at a time, so the store keeps one writer connection and a pool of
//! readers: writers queue in the pool instead of spinning on `SQLITE_BUSY`, and readers never
//! wait for writers (WAL). Every write transaction starts with `BEGIN IMMEDIATE`, so another
//! process writing to the same file (a CLI command while the server runs) waits on the busy
//! timeout instead of failing a read-to-write upgrade.

mod actions;
mod activity;
mod broadcasts;
mod campaign_webhooks;
mod campaigns;
mod checkpoint;
mod contacts;
mod direct;
mod drafts;
mod email;
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
mod topics;
mod users;
mod webhooks;
mod workspaces;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use herald_domain::Timestamp;
use herald_store::secrets::SecretKeys;
use herald_store::{Backend, QueueSignal, Store, StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};

/// How long a write waits for another process's write lock (a CLI command, say).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A store on one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    /// Batch writes' own connection (see [`direct`]).
    direct: direct::DirectWriter,
    /// Taken by a direct write for its whole transaction, by a sqlx write until its
    /// `BEGIN IMMEDIATE` holds SQLite's write lock: the two writers take turns in order, and
    /// neither sleeps in SQLite's busy handler waiting for the other.
    gate: Arc<tokio::sync::Mutex<()>>,
    /// The thread that checkpoints the WAL, off the commit path.
    checkpointer: checkpoint::Checkpointer,
    readers: SqlitePool,
    /// Seals and opens the secrets this store keeps (`herald_store::secrets`).
    secrets: Arc<SecretKeys>,
    /// Told by each commit that made jobs due (see [`Tx`]).
    signal: Arc<QueueSignal>,
}

/// A sqlx write transaction that keeps the earliest due time of the jobs it enqueues (or
/// brings forward) and announces it on the store's [`QueueSignal`] once it commits, so the
/// worker hears of every job without any caller waking it. It seals the secrets inside the
/// documents it writes with the store's keys.
pub(crate) struct Tx {
    inner: Transaction<'static, Sqlite>,
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
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.inner
    }
}

/// Why a SQLite URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("an in-memory SQLite database cannot be shared by Herald's connections; give a file path")]
    InMemory,
    #[error("not a SQLite URL: {0}")]
    BadUrl(#[source] sqlx::Error),
    #[error("cannot open the database")]
    Open(#[source] sqlx::Error),
    #[error("cannot open the database")]
    Direct(#[source] rusqlite::Error),
    #[error("cannot start the WAL checkpoint thread")]
    Thread(#[source] std::io::Error),
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://PATH` URL. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(ConnectError::BadUrl)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // Statement journals (kept by every multi-row write inside a transaction) stay in
            // memory: spilled to a temporary file they cost ~40% of ingest's write syscalls.
            .pragma("temp_store", "memory");
        if options.get_filename().as_os_str() == ":memory:" || url.contains("mode=memory") {
            return Err(ConnectError::InMemory);
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // A larger page cache for the writer (the journeys and jobs campaign work rewrites
            // stay hot; the direct writer keeps a small one, see `direct`).
            // Checkpoints run on a thread of their own (`checkpoint`), not in a commit.
            // Batches write multi-row statements whose text depends on the row count: the
            // writer keeps many prepared (sqlx's default of 100 kept a fifth of its CPU busy
            // preparing them again).
            .connect_with(
                options
                    .clone()
                    .statement_cache_capacity(WRITER_STATEMENTS)
                    .pragma("cache_size", "-65536")
                    .pragma("wal_autocheckpoint", checkpoint::BACKSTOP.to_string()),
            )
            .await
            .map_err(ConnectError::Open)?;
        let direct = direct::DirectWriter::open(options.get_filename()).map_err(ConnectError::Direct)?;
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        let checkpointer = checkpoint::Checkpointer::start(options.get_filename(), gate.clone())?;
        // Readers get a page cache of their own (16 MiB each instead of SQLite's 2 MiB), so
        // the journeys and contacts a runner reads stay in memory as the tables grow.
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true).pragma("cache_size", "-16384"))
            .await
            .map_err(ConnectError::Open)?;
        Ok(Self {
            writer,
            direct,
            gate,
            checkpointer,
            readers,
            signal: Arc::default(),
            secrets: Arc::new(SecretKeys::ephemeral()),
        })
    }

    /// The database file a `sqlite://PATH` URL names.
    pub fn file_path(url: &str) -> Option<std::path::PathBuf> {
        SqliteConnectOptions::from_str(url).ok().map(|options| options.get_filename().to_path_buf())
    }

    /// The store sealing secrets with `keys` instead of a key that lives as long as the
    /// process.
    #[must_use]
    pub fn with_secrets(self, keys: SecretKeys) -> Self {
        Self { secrets: Arc::new(keys), ..self }
    }

    /// Starts a write transaction that holds SQLite's write lock from its first statement and
    /// whose commit is durable: it returns once the WAL is synced to disk.
    async fn write(&self) -> StoreResult<Tx> {
        let _gate = self.gate.lock().await;
        let inner = self.writer.begin_with("PRAGMA synchronous = FULL; BEGIN IMMEDIATE").await.map_err(db_error)?;
        Ok(Tx { inner, due: None, signal: self.signal.clone(), secrets: self.secrets.clone() })
    }

    /// Starts a write transaction whose commit does not wait for a sync of its own: the next
    /// durable commit (every other write) syncs it along, and a crash before that loses it
    /// whole, never in part. Only for writes whose loss a crash makes harmless anyway (a job
    /// claim: its job is claimed again, as it would be after the lease of a dead worker).
    /// Each transaction sets the level it needs, so none inherits another's.
    async fn write_unsynced(&self) -> StoreResult<Tx> {
        let _gate = self.gate.lock().await;
        let inner = self.writer.begin_with("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE").await.map_err(db_error)?;
        Ok(Tx { inner, due: None, signal: self.signal.clone(), secrets: self.secrets.clone() })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut tx = self.write().await?;
        migrate::apply(&mut tx).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn reseal_secrets(&self) -> StoreResult<u64> {
        self.reseal().await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.readers).await.map_err(db_error)?;
        Ok(())
    }

    async fn close(&self) {
        self.checkpointer.stop();
        self.readers.close().await;
        self.writer.close().await;
    }
}

/// Maps a driver error onto the store's error: unique violations become `Conflict` named
/// `<table>_<column>` (matching the unique index names in the migrations), lock contention
/// becomes `Busy`.
pub(crate) fn db_error(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) => {
            let code = db.code();
            let primary = code.as_deref().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff);
            let message = db.message().to_owned();
            sqlite_error(primary, &message, Box::new(err))
        }
        sqlx::Error::PoolTimedOut => StoreError::Busy(Box::new(err)),
        _ => StoreError::Other(Box::new(err)),
    }
}

/// What SQLite's primary result code and message mean to the store, for both drivers.
pub(crate) fn sqlite_error(
    primary: Option<i32>,
    message: &str,
    err: Box<dyn std::error::Error + Send + Sync>,
) -> StoreError {
    match primary {
        // SQLITE_CONSTRAINT with a UNIQUE/PRIMARY KEY message: "UNIQUE constraint failed: t.a, t.b"
        Some(19) if message.starts_with("UNIQUE constraint failed: ") => {
            let columns = message.trim_start_matches("UNIQUE constraint failed: ");
            // An index on an expression (`lower(name)`) is reported by its name.
            if let Some(index) = columns.strip_prefix("index '").and_then(|rest| rest.strip_suffix('\'')) {
                return StoreError::Conflict { constraint: index.to_owned() };
            }
            let table = columns.split('.').next().unwrap_or_default();
            let mut names: Vec<&str> = columns.split(", ").filter_map(|c| c.split('.').nth(1)).collect();
            // Per-workspace unique indexes are named after their own column.
            if names.len() > 1 {
                names.retain(|c| *c != "workspace_id");
            }
            StoreError::Conflict { constraint: format!("{table}_{}", names.join("_")) }
        }
        // SQLITE_BUSY, SQLITE_LOCKED
        Some(5 | 6) => StoreError::Busy(err),
        _ => StoreError::Other(err),
    }
}

/// Rows per multi-row statement: at most 23 parameters a row stays under SQLite's limit.
pub(crate) const CHUNK: usize = 1000;

/// Prepared statements the writer keeps: a dozen batch statements, each in a text per row
/// count, and the single-row ones.
const WRITER_STATEMENTS: usize = 1024;

/// Commits a batch in one transaction: all items at once through `apply` (a few multi-row
/// statements), or, when that fails with an error `own` says belongs to some item, again item
/// by item under savepoints, so only the refused items fail. Other errors fail the batch.
pub(crate) async fn batch_or_each<T: Sync, R: Send>(
    store: &SqliteStore,
    items: &[T],
    apply: impl for<'a> Fn(&'a mut Tx, &'a [T]) -> BoxFuture<'a, StoreResult<Vec<R>>> + Sync,
    own: impl Fn(&StoreError) -> bool + Sync,
) -> StoreResult<Vec<StoreResult<R>>> {
    let mut tx = store.write().await?;
    match apply(&mut tx, items).await {
        Ok(results) => {
            tx.commit().await.map_err(db_error)?;
            return Ok(results.into_iter().map(Ok).collect());
        }
        Err(e) if own(&e) => tx.rollback().await.map_err(db_error)?,
        Err(e) => return Err(e),
    }
    let mut tx = store.write().await?;
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        savepoint(&mut tx).await?;
        let applied = apply(&mut tx, std::slice::from_ref(item))
            .await
            .and_then(|mut one| one.pop().ok_or_else(|| StoreError::Corrupt("a batch of one gave no result".into())));
        match applied {
            Err(e) if !own(&e) => return Err(e),
            applied => results.push(settle(&mut tx, applied).await?),
        }
    }
    tx.commit().await.map_err(db_error)?;
    Ok(results)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The synchronous level a transaction runs at (1 NORMAL, 2 FULL); it commits.
    async fn level(mut tx: Tx) -> i64 {
        let level = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *tx).await.expect("pragma");
        tx.commit().await.expect("commit");
        level
    }

    #[tokio::test]
    async fn every_write_sets_its_own_sync_level() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            SqliteStore::connect(&format!("sqlite://{}", dir.path().join("h.db").display())).await.expect("connect");
        assert_eq!(level(store.write_unsynced().await.expect("unsynced")).await, 1);
        assert_eq!(level(store.write().await.expect("durable")).await, 2, "a durable write after an unsynced one");
        assert_eq!(level(store.write_unsynced().await.expect("unsynced")).await, 1);
    }
}
