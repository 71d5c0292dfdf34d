//! Transactional sends on PostgreSQL: the key, the message and its job in one transaction;
//! the key's row is inserted first, so a concurrent send with the same key waits for this one
//! and then finds it.

use async_trait::async_trait;
use herald_domain::{MessageId, Timestamp, WorkspaceId};
use herald_store::StoreResult;
use herald_store::send::{SendOutcome, SendStore, TransactionalSend};

use crate::campaigns::messages;
use crate::jobs::insert_jobs;
use crate::rows::uuid;
use crate::{PgStore, db_error, encode};

#[async_trait]
impl SendStore for PgStore {
    async fn send_transactional(
        &self,
        workspace: WorkspaceId,
        send: TransactionalSend<'_>,
        now: Timestamp,
    ) -> StoreResult<SendOutcome> {
        let mut tx = self.begin().await?;
        if let Some((key, fingerprint)) = send.key {
            let inserted = sqlx::query(
                "INSERT INTO send_keys (workspace_id, key, fingerprint, message_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id, key) DO NOTHING",
            )
            .bind(workspace.as_uuid())
            .bind(encode::text(key))
            .bind(fingerprint)
            .bind(send.message.id.as_uuid())
            .bind(encode::ts(now))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            if inserted.rows_affected() == 0 {
                let row =
                    sqlx::query("SELECT fingerprint, message_id FROM send_keys WHERE workspace_id = $1 AND key = $2")
                        .bind(workspace.as_uuid())
                        .bind(encode::text(key))
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_error)?;
                tx.rollback().await.map_err(db_error)?;
                let same = crate::rows::get::<String>(&row, "fingerprint")? == fingerprint;
                return Ok(match same {
                    true => SendOutcome::Replayed(MessageId::from_uuid(uuid(&row, "message_id")?)),
                    false => SendOutcome::KeyReused,
                });
            }
        }
        messages::insert(&mut tx, &[(workspace, send.message)]).await?;
        let jobs: Vec<_> = send.job.into_iter().cloned().collect();
        insert_jobs(&mut tx, workspace, &jobs, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(SendOutcome::Accepted(send.message.id))
    }

    async fn purge_send_keys(&self, before: Timestamp) -> StoreResult<u64> {
        let purged = sqlx::query("DELETE FROM send_keys WHERE created_at < $1")
            .bind(encode::ts(before))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(purged.rows_affected())
    }
}
