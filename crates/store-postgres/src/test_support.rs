//! Fresh, empty PostgreSQL databases for tests (feature `test-support`): this crate's
//! conformance tests and the server's API tests each get a database of their own, so tests
//! run in parallel without seeing each other's rows.
//!
//! The server comes from `HERALD_TEST_POSTGRES_URL`, a superuser URL that `cargo xtask test`
//! (or `cargo xtask pg`, for running `cargo test` by hand) sets to a throwaway cluster.

use std::str::FromStr;
use std::sync::Arc;

use herald_domain::Timestamp;
use herald_store::{SharedStore, Store, new_uuid};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use time::OffsetDateTime;

use crate::PgStore;

/// The variable naming the PostgreSQL server that tests may create databases on.
pub const URL_VAR: &str = "HERALD_TEST_POSTGRES_URL";

/// A database created for one test. Dropping it drops the database, unless the test is
/// panicking: a failed test's data is kept for inspection (its name is printed).
///
/// `Drop` cannot be async, so it drops the database from a short-lived thread with its own
/// runtime, best effort. Whatever is left behind (failed tests, a killed test process) goes
/// away with the throwaway cluster, which `cargo xtask` deletes after the run.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin: PgConnectOptions,
}

impl TestDatabase {
    /// The database's name (`herald_test_<uuid>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL connecting to this database with the superuser's credentials.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("herald-store-postgres: keeping database {} of the failed test", self.name);
            return;
        }
        let admin = self.admin.clone();
        let name = self.name.clone();
        // A thread of its own: we may be inside a runtime (the test's), where blocking on a
        // new one would panic. Joining blocks the test's thread for the few milliseconds
        // the DROP takes, which a test can afford.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect_with(&admin).await?;
                // FORCE (PostgreSQL 13+) ends connections still open on it, e.g. from a
                // pool the test did not close.
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
                conn.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("herald-store-postgres: could not drop test database {}: {err}", self.name),
            Err(_) => eprintln!("herald-store-postgres: dropping test database {} panicked", self.name),
        }
    }
}

/// Creates an empty database on the server named by `HERALD_TEST_POSTGRES_URL`.
///
/// # Panics
///
/// When the variable is unset (the message says how to get a server), or the server refuses:
/// this is for tests, where a panic is the clearest failure.
pub async fn fresh_database() -> TestDatabase {
    let base = std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{URL_VAR} is not set, so the PostgreSQL tests have no server to run on. \
             Run the whole suite with `cargo xtask test`, or start a throwaway server with \
             `cargo xtask pg` and export the {URL_VAR}=... line it prints."
        )
    });
    let admin = PgConnectOptions::from_str(&base).unwrap_or_else(|e| panic!("{URL_VAR} is not a PostgreSQL URL: {e}"));
    // Only for a unique name, so the wall clock is fine; UUIDv7 names sort by creation,
    // which helps when looking through databases kept by failed tests.
    let id = new_uuid(Timestamp::from_offset_date_time(OffsetDateTime::now_utc()));
    let name = format!("herald_test_{}", id.simple());
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR} ({base}): {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    // Closing politely; a failure here does not affect the new database.
    let _ = conn.close().await;
    let url = admin.clone().database(&name).to_url_lossy().to_string();
    TestDatabase { name, url, admin }
}

/// A migrated [`PgStore`] on a fresh database, as the store the conformance suite and API
/// tests run against. Keep the [`TestDatabase`] alive as long as the store is used.
pub async fn fresh_store() -> (SharedStore, TestDatabase) {
    let db = fresh_database().await;
    let store = PgStore::connect(db.url())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to test database {}: {e}", db.name()));
    store.migrate().await.expect("migrate the test database");
    (Arc::new(store), db)
}
