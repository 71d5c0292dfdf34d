//! Sealing stored secrets again with the current key: those written in clear before secrets
//! were sealed, and those a previous key sealed (a rotation).

use herald_store::StoreResult;
use herald_store::secrets::{Document, columns};
use serde_json::Value;
use sqlx::Postgres;
use sqlx::types::Json;

use crate::actions::{open_definition, seal_definition};
use crate::{PgStore, Tx, db_error, encode};

/// How a sealed column holds its value.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Bytes,
    /// `jsonb`: the sealed text as a JSON string, a clear value as the object it was.
    Json,
}

/// Every sealed column: table, column, the name it seals under, and its kind.
const SEALED: [(&str, &str, &str, Kind); 7] = [
    ("transports", "password", columns::TRANSPORT_PASSWORD, Kind::Text),
    ("campaign_webhooks", "password", columns::HOOK_PASSWORD, Kind::Text),
    ("campaign_webhooks", "secret", columns::HOOK_SECRET, Kind::Text),
    ("webhook_keys", "secret", columns::SIGNING_SECRET, Kind::Bytes),
    ("actions", "definition", columns::ACTION_DEFINITION, Kind::Json),
    ("domains", "private_key", columns::PRIVATE_KEY, Kind::Text),
    ("workspaces", "email_secret", columns::EMAIL_SECRET, Kind::Text),
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

/// A value as read, by its column's kind.
enum Stored {
    Text(String),
    Bytes(Vec<u8>),
    Json(Value),
}

impl PgStore {
    /// Rows are locked as they are read, so nodes starting together seal each value once.
    pub(crate) async fn reseal(&self) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        let mut sealed = 0;
        for (table, column, name, kind) in SEALED {
            let select = format!("SELECT ctid::text, {column} FROM {table} WHERE {column} IS NOT NULL FOR UPDATE");
            let rows: Vec<(String, Stored)> = match kind {
                Kind::Text => fetch(&mut tx, select, Stored::Text).await?,
                Kind::Bytes => fetch(&mut tx, select, Stored::Bytes).await?,
                Kind::Json => fetch(&mut tx, select, |json: Json<Value>| Stored::Json(json.0)).await?,
            };
            let update = format!("UPDATE {table} SET {column} = $1 WHERE ctid = $2::tid");
            for (ctid, stored) in rows {
                let query = sqlx::query(sqlx::AssertSqlSafe(update.clone()));
                let query = match stored {
                    Stored::Text(text) => match self.secrets.reseal(name, text.as_bytes())? {
                        Some(value) => query.bind(value),
                        None => continue,
                    },
                    Stored::Bytes(bytes) => match self.secrets.reseal(name, &bytes)? {
                        Some(value) => query.bind(value.into_bytes()),
                        None => continue,
                    },
                    Stored::Json(Value::String(text)) if self.secrets.is_current(text.as_bytes()) => continue,
                    Stored::Json(json) => {
                        query.bind(seal_definition(&self.secrets, &open_definition(&self.secrets, json)?))
                    }
                };
                query.bind(ctid).execute(&mut *tx).await.map_err(db_error)?;
                sealed += 1;
            }
        }
        tx.commit().await.map_err(db_error)?;
        for (table, column, name, document, holds) in DOCUMENTS {
            loop {
                let mut tx = self.begin().await?;
                let batch = reseal_documents(&mut tx, table, column, name, document, holds).await?;
                tx.commit().await.map_err(db_error)?;
                let Some(with_secrets) = batch else { break };
                sealed += with_secrets;
            }
        }
        Ok(sealed)
    }
}

/// Seals again up to [`BATCH`] documents of `table.column` whose `sealed_with` is not the
/// current key (sealed with a previous one, or `'clear'`: written before); `None` when there
/// was none left, else how many of them hold secrets. A node starting at the same time waits
/// for the rows locked here, then finds them sealed with the current key and passes them by.
async fn reseal_documents(
    tx: &mut Tx,
    table: &str,
    column: &str,
    name: &'static str,
    document: Document,
    holds: &str,
) -> StoreResult<Option<u64>> {
    let keys = tx.secrets.clone();
    // Two ranges rather than `<>`, so the partial index on `sealed_with` serves them.
    let rows: Vec<(String, Json<Value>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT ctid::text, {column} FROM {table} WHERE (sealed_with < $1 OR sealed_with > $1) AND {holds} \
         LIMIT {BATCH} FOR UPDATE"
    )))
    .bind(keys.current_id())
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let update = format!("UPDATE {table} SET {column} = $1, sealed_with = $2 WHERE ctid = $3::tid");
    let mut with_secrets = 0;
    for (ctid, Json(mut doc)) in rows {
        keys.open_document(document, name, &mut doc)?;
        let sealed = keys.seal_document(document, name, &doc);
        with_secrets += u64::from(sealed.key.is_some());
        sqlx::query(sqlx::AssertSqlSafe(update.clone()))
            .bind(Json(encode::json(&sealed.value)))
            .bind(sealed.key)
            .bind(ctid)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(Some(with_secrets))
}

/// Runs `select` (ctid as text, then the value) and wraps each value.
async fn fetch<T>(tx: &mut Tx, select: String, wrap: impl Fn(T) -> Stored) -> StoreResult<Vec<(String, Stored)>>
where
    T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres> + Send + Unpin,
{
    let rows: Vec<(String, T)> =
        sqlx::query_as(sqlx::AssertSqlSafe(select)).fetch_all(&mut **tx).await.map_err(db_error)?;
    Ok(rows.into_iter().map(|(ctid, value)| (ctid, wrap(value))).collect())
}
