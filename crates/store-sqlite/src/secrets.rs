//! Sealing stored secrets again with the current key: those written in clear before secrets
//! were sealed, and those a previous key sealed (a rotation).

use herald_store::StoreResult;
use herald_store::secrets::{Document, columns};

use crate::rows::corrupt;
use crate::{SqliteStore, Tx, db_error};

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

/// Every column of documents with secrets inside: table, column, the name they seal under,
/// the document, and which rows hold one.
const DOCUMENTS: [(&str, &str, &str, Document, &str); 4] = [
    ("jobs", "payload", columns::JOB_PAYLOAD, Document::Call, "kind = 'deliver_webhook'"),
    ("webhook_deliveries", "call", columns::DELIVERY_CALL, Document::Call, "TRUE"),
    ("webhook_drafts", "call", columns::DRAFT_CALL, Document::Call, "TRUE"),
    ("campaign_versions", "document", columns::CAMPAIGN_DOCUMENT, Document::Campaign, "TRUE"),
];

/// Documents sealed again per transaction.
const BATCH: i64 = 500;

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
        let mut rewritten = sealed > 0;
        for (table, column, name, document, holds) in DOCUMENTS {
            loop {
                let mut tx = self.write().await?;
                let batch = reseal_documents(&mut tx, table, column, name, document, holds).await?;
                tx.commit().await.map_err(db_error)?;
                let Some(with_secrets) = batch else { break };
                sealed += with_secrets;
                rewritten = true;
            }
        }
        if rewritten {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await.map_err(db_error)?;
        }
        Ok(sealed)
    }
}

/// Seals again up to [`BATCH`] documents of `table.column` whose `sealed_with` is not the
/// current key (sealed with a previous one, or `'clear'`: written before); `None` when there
/// was none left, else how many of them hold secrets.
async fn reseal_documents(
    tx: &mut Tx,
    table: &str,
    column: &str,
    name: &'static str,
    document: Document,
    holds: &str,
) -> StoreResult<Option<u64>> {
    sqlx::query("PRAGMA secure_delete = ON").execute(&mut **tx).await.map_err(db_error)?;
    let keys = tx.secrets.clone();
    // Two ranges rather than `<>`, so the partial index on `sealed_with` serves them.
    let rows: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT rowid, {column} FROM {table} WHERE (sealed_with < ?1 OR sealed_with > ?1) AND {holds} LIMIT {BATCH}"
    )))
    .bind(keys.current_id())
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let update = format!("UPDATE {table} SET {column} = ?, sealed_with = ? WHERE rowid = ?");
    let mut with_secrets = 0;
    for (rowid, stored) in rows {
        let mut doc = serde_json::from_str(&stored).map_err(|e| corrupt(name, e))?;
        keys.open_document(document, name, &mut doc)?;
        let sealed = keys.seal_document(document, name, &doc);
        with_secrets += u64::from(sealed.key.is_some());
        sqlx::query(sqlx::AssertSqlSafe(update.clone()))
            .bind(sealed.value.to_string())
            .bind(sealed.key)
            .bind(rowid)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    sqlx::query("PRAGMA secure_delete = OFF").execute(&mut **tx).await.map_err(db_error)?;
    Ok(Some(with_secrets))
}
