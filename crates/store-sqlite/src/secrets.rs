//! Sealing stored secrets again with the current key: those written in clear before secrets
//! were sealed, and those a previous key sealed (a rotation).

use herald_store::StoreResult;
use herald_store::secrets::columns;

use crate::{SqliteStore, db_error};

/// Every sealed column: table, column, the name it seals under, and whether it is a BLOB.
const SEALED: [(&str, &str, &str, bool); 7] = [
    ("transports", "password", columns::TRANSPORT_PASSWORD, false),
    ("campaign_webhooks", "password", columns::HOOK_PASSWORD, false),
    ("campaign_webhooks", "secret", columns::HOOK_SECRET, false),
    ("webhook_keys", "secret", columns::SIGNING_SECRET, true),
    ("actions", "definition", columns::ACTION_DEFINITION, false),
    ("domains", "private_key", columns::PRIVATE_KEY, false),
    ("workspaces", "email_secret", columns::EMAIL_SECRET, false),
];

impl SqliteStore {
    /// `secure_delete` zeroes what an update replaces, and a WAL truncated afterwards keeps no
    /// old page either: nothing of a value once in clear is left in the file.
    pub(crate) async fn reseal(&self) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        sqlx::query("PRAGMA secure_delete = ON").execute(&mut *tx).await.map_err(db_error)?;
        let mut sealed = 0;
        for (table, column, name, blob) in SEALED {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT rowid, CAST({column} AS BLOB) FROM {table} WHERE {column} IS NOT NULL"
            )))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
            let update = format!("UPDATE {table} SET {column} = ? WHERE rowid = ?");
            for (rowid, stored) in rows {
                let Some(value) = self.secrets.reseal(name, &stored)? else { continue };
                let query = sqlx::query(sqlx::AssertSqlSafe(update.clone()));
                let query = if blob { query.bind(value.into_bytes()) } else { query.bind(value) };
                query.bind(rowid).execute(&mut *tx).await.map_err(db_error)?;
                sealed += 1;
            }
        }
        sqlx::query("PRAGMA secure_delete = OFF").execute(&mut *tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        if sealed > 0 {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await.map_err(db_error)?;
        }
        Ok(sealed)
    }
}
