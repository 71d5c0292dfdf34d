//! Write transactions run synchronously on a connection of their own, for the hot batch
//! writes (ingest, contact imports and edits, and the endpoint disabling that logs an event).
//!
//! Through sqlx, every statement is a round trip to the connection's worker thread and back
//! to the async task; an ingest batch took a dozen of them, and on two busy cores each waited
//! for a scheduler slot, so a 32-event batch spent most of its 3 ms waiting (BENCHMARKS.md,
//! 2026-11-24). Here the whole transaction runs in one go with rusqlite and prepared
//! statements kept across batches: its statements cost only SQLite's own time. It holds the
//! store's write gate throughout, so it and the sqlx writer take turns in order instead of
//! meeting `SQLITE_BUSY`.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use herald_domain::{Contact, ContactId, EmailAddress, Phone, Timestamp, UserId, WorkspaceId};
use herald_store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::rows::corrupt;
use crate::{BUSY_TIMEOUT, SqliteStore, sqlite_error};

/// The direct writer's connection.
#[derive(Debug, Clone)]
pub(crate) struct DirectWriter(Arc<Mutex<Connection>>);

/// Statements the direct writer keeps prepared.
const STATEMENTS: usize = 64;

impl DirectWriter {
    /// Opens the database file with the writer's settings (the pool's are set through sqlx):
    /// every commit is durable (`synchronous = FULL`).
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Self> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_handler(Some(wait_for_lock))?;
        // A small page cache (4 MiB): the operating system's file cache holds the database
        // anyway, and SQLite scans its whole cache at the end of a transaction whenever a
        // b-tree balance renumbered pages (it parks one past `PENDING_BYTE`), which is most
        // commits once indexes grow at random. At 1,000,000 contacts that scan was 9% of
        // herald's CPU with 64 MiB, 1% with 4 MiB (see BENCHMARKS.md).
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = memory; PRAGMA cache_size = -4096;",
        )?;
        connection.pragma_update(None, "wal_autocheckpoint", crate::checkpoint::BACKSTOP)?;
        connection.set_prepared_statement_cache_capacity(STATEMENTS);
        Ok(Self(Arc::new(Mutex::new(connection))))
    }
}

/// SQLite's busy handler for the direct writer: a write it waits for is short (a sqlx
/// transaction of this process, begun before the gate let this one in), so it polls every
/// 100 µs instead of SQLite's default backoff of up to 100 ms a try; it gives up after
/// [`BUSY_TIMEOUT`] (another process holding the lock).
fn wait_for_lock(attempts: i32) -> bool {
    const POLL: Duration = Duration::from_micros(100);
    if POLL * u32::try_from(attempts).unwrap_or(u32::MAX) >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(POLL);
    true
}

impl SqliteStore {
    /// Tells this process's worker about a job a direct write made due.
    pub(crate) fn announce(&self, due: Option<herald_domain::Timestamp>) {
        if let Some(due) = due {
            self.signal.jobs_due(due);
        }
    }

    /// Runs `work` in one durable `BEGIN IMMEDIATE` transaction on the direct writer and
    /// commits it (rolled back if `work` fails). `work` runs synchronously: on a multi-thread
    /// runtime the worker hands its other tasks to another thread meanwhile
    /// (`block_in_place`); on a current-thread runtime (tests) it simply blocks.
    pub(crate) async fn write_direct<R>(&self, work: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        let _gate = self.gate.lock().await;
        let run = || {
            let mut connection = self.direct.0.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(direct_error)?;
            let result = work(&tx)?;
            tx.commit().map_err(direct_error)?;
            Ok(result)
        };
        match Handle::current().runtime_flavor() {
            RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
            _ => run(),
        }
    }
}

/// Maps a rusqlite error as [`db_error`] maps sqlx's.
pub(crate) fn direct_error(err: rusqlite::Error) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let (primary, message) = (failure.extended_code & 0xff, message.clone().unwrap_or_default());
            sqlite_error(Some(primary), &message, Box::new(err))
        }
        _ => StoreError::Other(Box::new(err)),
    }
}

/// A contact from a row of `contacts::CONTACT_COLUMNS`.
pub(crate) fn contact(row: &rusqlite::Row<'_>) -> StoreResult<Contact> {
    let column = |e: rusqlite::Error| corrupt("contacts", e);
    let attributes: String = row.get(8).map_err(column)?;
    Ok(Contact {
        id: ContactId::from_uuid(id(row, 0)?),
        workspace_id: WorkspaceId::from_uuid(id(row, 1)?),
        email: row.get::<_, Option<String>>(2).map_err(column)?.map(EmailAddress::from_stored),
        user_id: row.get::<_, Option<String>>(3).map_err(column)?.map(UserId::from_stored),
        phone: row.get::<_, Option<String>>(4).map_err(column)?.map(Phone::from_stored),
        name: row.get(5).map_err(column)?,
        first_name: row.get(6).map_err(column)?,
        last_name: row.get(7).map_err(column)?,
        attributes: serde_json::from_str(&attributes).map_err(|e| corrupt("contacts.attributes", e))?,
        created_at: Timestamp::from_unix_millis(row.get(9).map_err(column)?),
        updated_at: Timestamp::from_unix_millis(row.get(10).map_err(column)?),
    })
}

/// A JSON object as stored in a TEXT column, serialized from the borrowed map.
pub(crate) fn object_text(map: &serde_json::Map<String, serde_json::Value>) -> String {
    // A map with string keys always serializes.
    serde_json::to_string(map).unwrap_or_else(|_| "{}".to_owned())
}

/// A 16-byte BLOB id, as sqlx stores a `Uuid`.
pub(crate) fn id(row: &rusqlite::Row<'_>, index: usize) -> StoreResult<uuid::Uuid> {
    let bytes: Vec<u8> = row.get(index).map_err(|e| corrupt("id", e))?;
    uuid::Uuid::from_slice(&bytes).map_err(|e| corrupt("id", e))
}

/// An optional 16-byte BLOB id.
pub(crate) fn opt_id(row: &rusqlite::Row<'_>, index: usize) -> StoreResult<Option<uuid::Uuid>> {
    let bytes: Option<Vec<u8>> = row.get(index).map_err(|e| corrupt("id", e))?;
    bytes.map(|b| uuid::Uuid::from_slice(&b).map_err(|e| corrupt("id", e))).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db_error;

    async fn scratch() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            SqliteStore::connect(&format!("sqlite://{}", dir.path().join("h.db").display())).await.expect("connect");
        let mut tx = store.write().await.expect("write");
        sqlx::query("CREATE TABLE t (x INTEGER NOT NULL UNIQUE)").execute(&mut *tx).await.expect("create");
        tx.commit().await.expect("commit");
        (dir, store)
    }

    async fn count(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&store.readers).await.expect("count")
    }

    /// Direct and sqlx writes from many tasks at once: the gate lets each in turn, none fails
    /// busy, none is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn direct_and_pooled_writes_take_turns() {
        let (_dir, store) = scratch().await;
        let tasks: Vec<_> = (0..200_i64)
            .map(|x| {
                let store = store.clone();
                tokio::spawn(async move {
                    if x % 2 == 0 {
                        store
                            .write_direct(|db| db.execute("INSERT INTO t (x) VALUES (?1)", [x]).map_err(direct_error))
                            .await?;
                    } else {
                        let mut tx = store.write().await?;
                        sqlx::query("INSERT INTO t (x) VALUES (?)")
                            .bind(x)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                        tx.commit().await.map_err(db_error)?;
                    }
                    StoreResult::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("write");
        }
        assert_eq!(count(&store).await, 200);
    }

    /// A direct write whose work fails leaves nothing behind, and maps SQLite's unique
    /// violation as the sqlx writes do.
    #[tokio::test]
    async fn a_failed_direct_write_is_rolled_back() {
        let (_dir, store) = scratch().await;
        store
            .write_direct(|db| db.execute("INSERT INTO t (x) VALUES (1)", []).map_err(direct_error))
            .await
            .expect("one");
        let refused = store
            .write_direct(|db| {
                db.execute("INSERT INTO t (x) VALUES (2)", []).map_err(direct_error)?;
                db.execute("INSERT INTO t (x) VALUES (1)", []).map_err(direct_error)
            })
            .await;
        assert!(matches!(&refused, Err(StoreError::Conflict { constraint }) if constraint == "t_x"), "{refused:?}");
        assert_eq!(count(&store).await, 1, "the refused transaction's first insert was rolled back");
    }

    /// The direct writer's commits are durable: `synchronous = FULL`, as the sqlx writes.
    #[tokio::test]
    async fn direct_writes_sync_at_commit() {
        let (_dir, store) = scratch().await;
        let level = store
            .write_direct(|db| db.query_row("PRAGMA synchronous", [], |row| row.get::<_, i64>(0)).map_err(direct_error))
            .await
            .expect("pragma");
        assert_eq!(level, 2);
    }
}
