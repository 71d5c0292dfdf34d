//! Transactional sends on SQLite: the key, the message and its job in one write transaction
//! (the one writer orders sends with the same key).

use async_trait::async_trait;
use herald_domain::{MessageId, Timestamp, WorkspaceId};
use herald_store::StoreResult;
use herald_store::send::{SendOutcome, SendStore, TransactionalSend};

use crate::campaigns::messages;
use crate::jobs::insert_jobs;
use crate::rows::uuid;
use crate::{SqliteStore, db_error};

#[async_trait]
impl SendStore for SqliteStore {
    async fn send_transactional(
        &self,
        workspace: WorkspaceId,
        send: TransactionalSend<'_>,
        now: Timestamp,
    ) -> StoreResult<SendOutcome> {
        let mut tx = self.write().await?;
        if let Some((key, fingerprint)) = send.key {
            let before =
                sqlx::query("SELECT fingerprint, message_id FROM send_keys WHERE workspace_id = ? AND key = ?")
                    .bind(workspace.as_uuid())
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
            if let Some(row) = before {
                tx.rollback().await.map_err(db_error)?;
                let same = crate::rows::get::<String>(&row, "fingerprint")? == fingerprint;
                return Ok(match same {
                    true => SendOutcome::Replayed(MessageId::from_uuid(uuid(&row, "message_id")?)),
                    false => SendOutcome::KeyReused,
                });
            }
            sqlx::query(
                "INSERT INTO send_keys (workspace_id, key, fingerprint, message_id, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(workspace.as_uuid())
            .bind(key)
            .bind(fingerprint)
            .bind(send.message.id.as_uuid())
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        messages::insert(&mut tx, &[(workspace, send.message)]).await?;
        let jobs: Vec<_> = send.job.into_iter().cloned().collect();
        insert_jobs(&mut tx, workspace, &jobs, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(SendOutcome::Accepted(send.message.id))
    }

    async fn purge_send_keys(&self, before: Timestamp) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let purged = sqlx::query("DELETE FROM send_keys WHERE created_at < ?")
            .bind(before.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(purged.rows_affected())
    }
}
