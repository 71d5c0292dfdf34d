//! WAL checkpoints off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the commit that pushes the WAL over its limit:
//! that commit copies thousands of pages into the database file and syncs it while holding
//! the write lock, and every request waiting behind it waits too (ingest's p99 was 28–74 ms,
//! its median 4–5 ms). Here a thread of the store checkpoints every [`EVERY`] on a
//! connection of its own, `PASSIVE`, alongside the writers. A passive checkpoint never
//! catches up with a steady stream of commits, and SQLite only starts the WAL over once
//! every frame in it has been copied; so when the WAL has grown past [`RESTART_AFTER`]
//! frames, the thread repeats passive passes until few frames came in during one, then takes
//! the write gate and copies those: the next write starts the WAL over. The writers keep
//! SQLite's automatic checkpoint as a backstop at [`BACKSTOP`] frames, should this thread
//! fall behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

use rusqlite::Connection;

use crate::ConnectError;

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_secs(1);
/// WAL frames (pages) past which a checkpoint also lets the WAL start over.
const RESTART_AFTER: i64 = 4_000;
/// Passive passes at most before the gated one.
const CATCH_UP_PASSES: usize = 8;
/// Frames committed during a passive pass few enough to copy with the writers held.
const GATED_FRAMES: i64 = 500;
/// The writers' own automatic checkpoint, should this thread fall behind (256 MiB of WAL).
pub(crate) const BACKSTOP: u32 = 65_536;

/// Stops the checkpoint thread when the last handle is dropped or [`Checkpointer::stop`] is called.
#[derive(Debug, Clone)]
pub(crate) struct Checkpointer {
    stop: Arc<Sender<()>>,
}

/// What one checkpoint did, in WAL frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Frames in the WAL.
    pub(crate) wal: i64,
    /// Frames copied into the database file, of those.
    pub(crate) copied: i64,
}

impl Checkpointer {
    /// Starts the thread for the database at `path`; `gate` is the store's write gate.
    pub(crate) fn start(path: &Path, gate: Arc<tokio::sync::Mutex<()>>) -> Result<Self, ConnectError> {
        let connection = Connection::open(path).map_err(ConnectError::Direct)?;
        connection.busy_timeout(Duration::from_secs(1)).map_err(ConnectError::Direct)?;
        let (stop, stopped) = mpsc::channel();
        let path = PathBuf::from(path);
        std::thread::Builder::new()
            .name("herald-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    if let Err(error) = checkpoint(&connection, &gate, RESTART_AFTER) {
                        tracing::warn!(%error, path = %path.display(), "WAL checkpoint failed");
                    }
                }
            })
            .map_err(ConnectError::Thread)?;
        Ok(Self { stop: Arc::new(stop) })
    }

    /// Stops the thread after its current checkpoint.
    pub(crate) fn stop(&self) {
        let _ = self.stop.send(());
    }
}

/// One checkpoint: a passive pass alongside the writers; then, if the WAL holds
/// `restart_after` frames or more, more passive passes (each copies only what was committed
/// during the one before) until few frames came in during one; those few are copied with the
/// writers held at the gate, so the WAL can start over. If the passes do not converge (the
/// writers outpace the copy), the WAL goes on growing until a later round, or until the
/// writers' own [`BACKSTOP`] checkpoint: holding the writers for a long copy is what this
/// thread is here to avoid.
fn checkpoint(connection: &Connection, gate: &tokio::sync::Mutex<()>, restart_after: i64) -> rusqlite::Result<Pass> {
    let mut pass = passive(connection)?;
    if pass.wal < restart_after {
        return Ok(pass);
    }
    for _ in 0..CATCH_UP_PASSES {
        let before = pass.wal;
        pass = passive(connection)?;
        if pass.wal - before <= GATED_FRAMES {
            let _held = gate.blocking_lock();
            return passive(connection);
        }
    }
    Ok(pass)
}

fn passive(connection: &Connection) -> rusqlite::Result<Pass> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok(Pass { wal: row.get(1)?, copied: row.get(2)? }))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::SqliteStore;
    use crate::direct::direct_error;

    async fn store_with_table(dir: &tempfile::TempDir) -> (SqliteStore, PathBuf) {
        let path = dir.path().join("h.db");
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display())).await.expect("connect");
        store.checkpointer.stop();
        store.write_direct(|db| db.execute("CREATE TABLE t (b BLOB)", []).map_err(direct_error)).await.expect("table");
        (store, path)
    }

    /// Appends `rows` rows of one page each.
    async fn write(store: &SqliteStore, rows: u32) {
        store
            .write_direct(move |db| {
                for _ in 0..rows {
                    db.execute("INSERT INTO t (b) VALUES (zeroblob(3500))", []).map_err(direct_error)?;
                }
                Ok(())
            })
            .await
            .expect("write");
    }

    /// With nothing writing meanwhile, one pass copies the whole WAL and the next write
    /// starts it over.
    #[tokio::test]
    async fn a_quiet_wal_is_copied_and_starts_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, path) = store_with_table(&dir).await;
        write(&store, 50).await;
        let connection = Connection::open(&path).expect("open");
        let pass = checkpoint(&connection, &store.gate, RESTART_AFTER).expect("checkpoint");
        assert!(pass.wal >= 50, "one page a row: {pass:?}");
        assert_eq!(pass.copied, pass.wal, "every frame copied");
        write(&store, 1).await;
        let after = passive(&connection).expect("checkpoint");
        assert!(after.wal < 10, "the next write started the WAL over: {after:?} after {pass:?}");
    }

    /// Under a steady stream of commits, the pass taken at the gate copies everything
    /// committed, so the WAL starts over at the next write instead of growing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_long_wal_starts_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, path) = store_with_table(&dir).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    write(&store, 1).await;
                }
            })
        };
        write(&store, 300).await;
        let gate = store.gate.clone();
        let long = tokio::task::spawn_blocking(move || {
            let connection = Connection::open(&path).expect("open");
            let long = checkpoint(&connection, &gate, 10).expect("checkpoint");
            (long, connection)
        });
        let (long, connection) = long.await.expect("checkpoint thread");
        write(&store, 1).await;
        stop.store(true, Ordering::Relaxed);
        writer.await.expect("writer");
        let after = passive(&connection).expect("checkpoint");
        assert!(long.wal >= 300, "{long:?}");
        assert_eq!(long.copied, long.wal, "the pass at the gate copied every committed frame: {long:?}");
        assert!(after.wal < long.wal, "the WAL started over: {after:?} after {long:?}");
    }
}
