//! Sending domains, the suppression list, transports and delivery results on SQLite.

use async_trait::async_trait;
use herald_domain::job::{JobLease, JobOutcome};
use herald_domain::{
    BounceKind, ContactId, DomainId, DomainStatus, MessageId, NewJob, Page, PageRequest, SendingDomain, Suppression,
    Timestamp, WorkspaceId,
};
use herald_store::email::{
    ActivityCount, ActivityRecord, ActivityScope, ActivityWrite, DOMAIN_UNVERIFIED, Delivery, DomainCheck, EmailStore,
    Grouping, NewDomain, Recorded, TransportRecord, delivery_job,
};
use herald_store::secrets::columns;
use herald_store::{StoreError, StoreResult, new_uuid};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::activity::insert_suppression;
use crate::jobs::{finish, insert_jobs};
use crate::rows::{corrupt, get, opt_ts, ts, uuid};
use crate::{SqliteStore, db_error};

const DOMAIN_NOT_FOUND: StoreError = StoreError::NotFound { entity: "domain" };

macro_rules! domain_columns {
    () => {
        "id, workspace_id, name, selector, algorithm, status, records, checks, warning, created_at, checked_at, \
         verified_at"
    };
}

fn json_value(row: &SqliteRow, column: &str) -> StoreResult<Value> {
    serde_json::from_str(&get::<String>(row, column)?).map_err(|e| corrupt(column, e))
}

fn domain(row: &SqliteRow) -> StoreResult<SendingDomain> {
    Ok(SendingDomain {
        id: DomainId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        selector: get(row, "selector")?,
        algorithm: get(row, "algorithm")?,
        status: get::<String>(row, "status")?.parse().map_err(|e: String| corrupt("status", e))?,
        records: json_value(row, "records")?,
        checks: json_value(row, "checks")?,
        warning: get(row, "warning")?,
        created_at: ts(row, "created_at")?,
        checked_at: opt_ts(row, "checked_at")?,
        verified_at: opt_ts(row, "verified_at")?,
    })
}

fn suppression(row: &SqliteRow) -> StoreResult<Suppression> {
    Ok(Suppression {
        email: get(row, "email")?,
        contact_id: get::<Option<Uuid>>(row, "contact_id")?.map(ContactId::from_uuid),
        reason: get(row, "reason")?,
        detail: get(row, "detail")?,
        message_id: get::<Option<Uuid>>(row, "message_id")?.map(MessageId::from_uuid),
        created_at: ts(row, "created_at")?,
    })
}

async fn load_domain(
    conn: &mut sqlx::SqliteConnection,
    workspace: WorkspaceId,
    id: DomainId,
) -> StoreResult<SendingDomain> {
    let row = sqlx::query(concat!("SELECT ", domain_columns!(), " FROM domains WHERE workspace_id = ? AND id = ?"))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(conn)
        .await
        .map_err(db_error)?
        .ok_or(DOMAIN_NOT_FOUND)?;
    domain(&row)
}

#[async_trait]
impl EmailStore for SqliteStore {
    async fn create_domain(
        &self,
        workspace: WorkspaceId,
        new: NewDomain,
        now: Timestamp,
    ) -> StoreResult<SendingDomain> {
        let id = DomainId::from_uuid(new_uuid(now));
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO domains (id, workspace_id, name, selector, algorithm, private_key, status, records, checks, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '[]', ?)",
        )
        .bind(id.as_uuid())
        .bind(workspace.as_uuid())
        .bind(&new.name)
        .bind(&new.selector)
        .bind(&new.algorithm)
        .bind(self.secrets.seal_text(columns::PRIVATE_KEY, &new.private_key))
        .bind(DomainStatus::Pending.as_str())
        .bind(new.records.to_string())
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let created = load_domain(&mut tx, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(created)
    }

    async fn list_domains(&self, workspace: WorkspaceId) -> StoreResult<Vec<SendingDomain>> {
        let rows =
            sqlx::query(concat!("SELECT ", domain_columns!(), " FROM domains WHERE workspace_id = ? ORDER BY name"))
                .bind(workspace.as_uuid())
                .fetch_all(&self.readers)
                .await
                .map_err(db_error)?;
        rows.iter().map(domain).collect()
    }

    async fn get_domain(&self, workspace: WorkspaceId, id: DomainId) -> StoreResult<SendingDomain> {
        let mut conn = self.readers.acquire().await.map_err(db_error)?;
        load_domain(&mut conn, workspace, id).await
    }

    async fn delete_domain(&self, workspace: WorkspaceId, id: DomainId) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM domains WHERE workspace_id = ? AND id = ?")
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(DOMAIN_NOT_FOUND);
        }
        tx.commit().await.map_err(db_error)
    }

    async fn domain_key(&self, workspace: WorkspaceId, name: &str) -> StoreResult<Option<(SendingDomain, String)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            domain_columns!(),
            ", private_key FROM domains WHERE workspace_id = ? AND name = ?"
        ))
        .bind(workspace.as_uuid())
        .bind(name)
        .fetch_optional(&self.readers)
        .await
        .map_err(db_error)?;
        row.map(|row| {
            Ok((domain(&row)?, self.secrets.open_text(columns::PRIVATE_KEY, &get::<String>(&row, "private_key")?)?))
        })
        .transpose()
    }

    async fn record_domain_check(
        &self,
        workspace: WorkspaceId,
        id: DomainId,
        check: &DomainCheck,
        now: Timestamp,
    ) -> StoreResult<(SendingDomain, u64)> {
        let mut tx = self.write().await?;
        let before = load_domain(&mut tx, workspace, id).await?;
        let verified = check.status == DomainStatus::Verified;
        sqlx::query(
            "UPDATE domains SET status = ?, checks = ?, warning = ?, checked_at = ?, \
             verified_at = CASE WHEN ? THEN COALESCE(verified_at, ?) ELSE verified_at END \
             WHERE workspace_id = ? AND id = ?",
        )
        .bind(check.status.as_str())
        .bind(check.checks.to_string())
        .bind(&check.warning)
        .bind(now.unix_millis())
        .bind(verified)
        .bind(now.unix_millis())
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let mut released = 0;
        if verified {
            let held: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE messages SET status = 'queued', status_reason = NULL \
                 WHERE workspace_id = ? AND from_domain = ? AND status = 'held' AND status_reason = ? RETURNING id",
            )
            .bind(workspace.as_uuid())
            .bind(&before.name)
            .bind(DOMAIN_UNVERIFIED)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
            let jobs: Vec<_> = held.into_iter().map(|m| delivery_job(MessageId::from_uuid(m), now)).collect();
            insert_jobs(&mut tx, workspace, &jobs, now).await?;
            released = jobs.len() as u64;
        }
        let after = load_domain(&mut tx, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok((after, released))
    }

    async fn domains_to_check(&self, before: Timestamp, limit: u32) -> StoreResult<Vec<(WorkspaceId, DomainId)>> {
        let rows = sqlx::query(
            "SELECT workspace_id, id FROM domains WHERE checked_at IS NULL OR checked_at < ? \
             ORDER BY checked_at IS NOT NULL, checked_at LIMIT ?",
        )
        .bind(before.unix_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| Ok((WorkspaceId::from_uuid(uuid(row, "workspace_id")?), DomainId::from_uuid(uuid(row, "id")?))))
            .collect()
    }

    async fn add_suppression(
        &self,
        workspace: WorkspaceId,
        new: &Suppression,
        follow_up: &[NewJob],
    ) -> StoreResult<Suppression> {
        let mut tx = self.write().await?;
        let inserted = insert_suppression(&mut tx, workspace, new).await?;
        let row = sqlx::query("SELECT * FROM suppressions WHERE workspace_id = ? AND email = ?")
            .bind(workspace.as_uuid())
            .bind(&new.email)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        if inserted {
            insert_jobs(&mut tx, workspace, follow_up, new.created_at).await?;
        }
        tx.commit().await.map_err(db_error)?;
        suppression(&row)
    }

    async fn remove_suppression(&self, workspace: WorkspaceId, email: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM suppressions WHERE workspace_id = ? AND email = ?")
            .bind(workspace.as_uuid())
            .bind(email)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "suppression" });
        }
        tx.commit().await.map_err(db_error)
    }

    async fn suppression(&self, workspace: WorkspaceId, email: &str) -> StoreResult<Option<Suppression>> {
        let row = sqlx::query("SELECT * FROM suppressions WHERE workspace_id = ? AND email = ?")
            .bind(workspace.as_uuid())
            .bind(email)
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?;
        row.as_ref().map(suppression).transpose()
    }

    async fn list_suppressions(
        &self,
        workspace: WorkspaceId,
        search: Option<&str>,
        page: PageRequest<String>,
    ) -> StoreResult<Page<Suppression>> {
        // `instr`, not `LIKE`: what people type is matched as typed, wildcards included.
        let rows = sqlx::query(
            "SELECT * FROM suppressions WHERE workspace_id = ? AND (? IS NULL OR email > ?) \
             AND (? IS NULL OR instr(lower(email), ?) > 0) ORDER BY email LIMIT ?",
        )
        .bind(workspace.as_uuid())
        .bind(page.after.as_deref())
        .bind(page.after.as_deref())
        .bind(search)
        .bind(search.map(str::to_lowercase))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        let items = rows.iter().map(suppression).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit, |s| s.email.clone()))
    }

    async fn set_transport(&self, workspace: WorkspaceId, transport: Option<&TransportRecord>) -> StoreResult<()> {
        let mut tx = self.write().await?;
        match transport {
            Some(t) => sqlx::query(
                "INSERT INTO transports (workspace_id, settings, password, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (workspace_id) DO UPDATE SET settings = excluded.settings, password = excluded.password, \
                 updated_at = excluded.updated_at",
            )
            .bind(workspace.as_uuid())
            .bind(t.settings.to_string())
            .bind(t.password.as_ref().map(|p| self.secrets.seal_text(columns::TRANSPORT_PASSWORD, p)))
            .bind(t.updated_at.unix_millis()),
            None => sqlx::query("DELETE FROM transports WHERE workspace_id = ?").bind(workspace.as_uuid()),
        }
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn transport(&self, workspace: WorkspaceId) -> StoreResult<Option<TransportRecord>> {
        let row = sqlx::query("SELECT settings, password, updated_at FROM transports WHERE workspace_id = ?")
            .bind(workspace.as_uuid())
            .fetch_optional(&self.readers)
            .await
            .map_err(db_error)?;
        row.map(|row| {
            Ok(TransportRecord {
                settings: json_value(&row, "settings")?,
                password: get::<Option<String>>(&row, "password")?
                    .map(|p| self.secrets.open_text(columns::TRANSPORT_PASSWORD, &p))
                    .transpose()?,
                updated_at: ts(&row, "updated_at")?,
            })
        })
        .transpose()
    }

    async fn email_secret(&self, workspace: WorkspaceId, candidate: &str) -> StoreResult<String> {
        let mut tx = self.write().await?;
        let secret: Option<String> = sqlx::query_scalar(
            "UPDATE workspaces SET email_secret = COALESCE(email_secret, ?) WHERE id = ? RETURNING email_secret",
        )
        .bind(self.secrets.seal_text(columns::EMAIL_SECRET, candidate))
        .bind(workspace.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let secret = secret.ok_or(StoreError::NotFound { entity: "workspace" })?;
        Ok(self.secrets.open_text(columns::EMAIL_SECRET, &secret)?)
    }

    async fn soft_bounces(&self, workspace: WorkspaceId, email: &str, since: Timestamp) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE workspace_id = ? AND bounce = 'soft' AND created_at >= ? \
             AND lower(to_address) = ?",
        )
        .bind(workspace.as_uuid())
        .bind(since.unix_millis())
        .bind(email.to_lowercase())
        .fetch_one(&self.readers)
        .await
        .map_err(db_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn record_delivery(
        &self,
        workspace: WorkspaceId,
        lease: &JobLease,
        message: MessageId,
        delivery: &Delivery,
        outcome: &JobOutcome,
        follow_up: &[NewJob],
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        finish(&mut tx, workspace, lease, outcome, now).await?;
        let updated = sqlx::query(
            "UPDATE messages SET status = ?, status_reason = ?, reply = COALESCE(?, reply), attempts = ?, \
             sent_at = COALESCE(?, sent_at), bounce = COALESCE(?, bounce) WHERE workspace_id = ? AND id = ?",
        )
        .bind(delivery.status.as_str())
        .bind(&delivery.reason)
        .bind(&delivery.reply)
        .bind(i64::from(delivery.attempts))
        .bind(delivery.sent_at.map(Timestamp::unix_millis))
        .bind(delivery.bounce.map(BounceKind::as_str))
        .bind(workspace.as_uuid())
        .bind(message.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "message" });
        }
        if let Some(suppression) = &delivery.suppress {
            insert_suppression(&mut tx, workspace, suppression).await?;
        }
        if let Some(activity) = &delivery.activity
            && let Some(target) = crate::activity::target(&mut tx, workspace, message).await?
        {
            crate::activity::insert_activity(&mut tx, workspace, &target, activity, now).await?;
        }
        insert_jobs(&mut tx, workspace, follow_up, now).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn record_activities(&self, writes: &[ActivityWrite], now: Timestamp) -> StoreResult<Vec<Recorded>> {
        self.write_activities(writes, now).await
    }

    async fn message_by_internet_id(&self, internet_message_id: &str) -> StoreResult<Option<(WorkspaceId, MessageId)>> {
        self.find_internet_id(internet_message_id).await
    }

    async fn activity_counts(
        &self,
        workspace: WorkspaceId,
        scope: &ActivityScope,
        since: Option<Timestamp>,
        grouping: Grouping,
    ) -> StoreResult<Vec<ActivityCount>> {
        crate::activity::activity_counts(&self.readers, workspace, scope, since, grouping).await
    }

    async fn conversions(&self, workspace: WorkspaceId, scope: &ActivityScope) -> StoreResult<u64> {
        crate::activity::conversions(&self.readers, workspace, scope).await
    }

    async fn message_activities(
        &self,
        workspace: WorkspaceId,
        message: MessageId,
        limit: u32,
    ) -> StoreResult<Vec<ActivityRecord>> {
        crate::activity::message_activities(&self.readers, workspace, message, limit).await
    }
}
