//! Opening the store: the database URL's scheme picks the backend, once, here; everything
//! after talks to `dyn Store`.

use std::sync::Arc;

use anyhow::Context;
use herald_store::SharedStore;
use herald_store_postgres::PgStore;
use herald_store_sqlite::SqliteStore;

use super::config::DatabaseUrl;

/// Connects and applies pending migrations.
pub async fn open(url: &DatabaseUrl) -> anyhow::Result<SharedStore> {
    let store: SharedStore = match url {
        DatabaseUrl::Sqlite(url) => {
            Arc::new(SqliteStore::connect(url).await.with_context(|| format!("cannot open SQLite database {url}"))?)
        }
        DatabaseUrl::Postgres(_) => Arc::new(
            PgStore::connect(url.as_str()).await.with_context(|| format!("cannot connect to PostgreSQL at {url:?}"))?,
        ),
    };
    store.migrate().await.context("cannot apply database migrations")?;
    Ok(store)
}
