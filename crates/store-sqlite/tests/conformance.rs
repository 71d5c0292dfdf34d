//! The storage conformance suite on SQLite: each case gets a fresh database file.

use std::sync::Arc;

use herald_store::{SharedStore, Store};
use herald_store_sqlite::SqliteStore;

/// A migrated store on a new file in a temp dir; the dir is removed when the guard drops.
async fn fresh_store() -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let store = SqliteStore::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    (Arc::new(store), dir)
}

herald_store::conformance_suite!(fresh_store);
