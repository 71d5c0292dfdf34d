//! Sending domains, the suppression list, transports and delivery results on PostgreSQL.

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
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use crate::activity::insert_suppression;
use crate::jobs::{finish, insert_jobs};
use crate::rows::{corrupt, get, opt_ts, opt_uuid, ts, uuid};
use crate::{PgStore, db_error, encode};

const DOMAIN_NOT_FOUND: StoreError = StoreError::NotFound { entity: "domain" };

macro_rules! domain_columns {
    () => {
        "id, workspace_id, name, selector, algorithm, status, records, checks, warning, created_at, checked_at, \
         verified_at"
    };
}

fn domain(row: &PgRow) -> StoreResult<SendingDomain> {
    Ok(SendingDomain {
        id: DomainId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        selector: get(row, "selector")?,
        algorithm: get(row, "algorithm")?,
        status: get::<String>(row, "status")?.parse().map_err(|e: String| corrupt("status", e))?,
        records: get::<Json<Value>>(row, "records")?.0,
        checks: get::<Json<Value>>(row, "checks")?.0,
        warning: get(row, "warning")?,
        created_at: ts(row, "created_at")?,
        checked_at: opt_ts(row, "checked_at")?,
        verified_at: opt_ts(row, "verified_at")?,
    })
}

fn suppression(row: &PgRow) -> StoreResult<Suppression> {
    Ok(Suppression {
        email: get(row, "email")?,
        contact_id: opt_uuid(row, "contact_id")?.map(ContactId::from_uuid),
        reason: get(row, "reason")?,
        detail: get(row, "detail")?,
        message_id: opt_uuid(row, "message_id")?.map(MessageId::from_uuid),
        created_at: ts(row, "created_at")?,
    })
}

async fn load_domain(
    conn: &mut sqlx::PgConnection,
    workspace: WorkspaceId,
    id: DomainId,
) -> StoreResult<SendingDomain> {
    let row = sqlx::query(concat!("SELECT ", domain_columns!(), " FROM domains WHERE workspace_id = $1 AND id = $2"))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(conn)
        .await
        .map_err(db_error)?
        .ok_or(DOMAIN_NOT_FOUND)?;
    domain(&row)
}

#[async_trait]
impl EmailStore for PgStore {
    async fn create_domain(
        &self,
        workspace: WorkspaceId,
        new: NewDomain,
        now: Timestamp,
    ) -> StoreResult<SendingDomain> {
        let id = DomainId::from_uuid(new_uuid(now));
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO domains (id, workspace_id, name, selector, algorithm, private_key, status, records, checks, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '[]', $9)",
        )
        .bind(id.as_uuid())
        .bind(workspace.as_uuid())
        .bind(encode::text(&new.name))
        .bind(encode::text(&new.selector))
        .bind(&new.algorithm)
        .bind(self.secrets.seal_text(columns::PRIVATE_KEY, &new.private_key))
        .bind(DomainStatus::Pending.as_str())
        .bind(Json(encode::json(&new.records)))
        .bind(encode::ts(now))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let created = load_domain(&mut tx, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(created)
    }

    async fn list_domains(&self, workspace: WorkspaceId) -> StoreResult<Vec<SendingDomain>> {
        let rows =
            sqlx::query(concat!("SELECT ", domain_columns!(), " FROM domains WHERE workspace_id = $1 ORDER BY name"))
                .bind(workspace.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        rows.iter().map(domain).collect()
    }

    async fn get_domain(&self, workspace: WorkspaceId, id: DomainId) -> StoreResult<SendingDomain> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        load_domain(&mut conn, workspace, id).await
    }

    async fn delete_domain(&self, workspace: WorkspaceId, id: DomainId) -> StoreResult<()> {
        let deleted = sqlx::query("DELETE FROM domains WHERE workspace_id = $1 AND id = $2")
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(DOMAIN_NOT_FOUND);
        }
        Ok(())
    }

    async fn domain_key(&self, workspace: WorkspaceId, name: &str) -> StoreResult<Option<(SendingDomain, String)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            domain_columns!(),
            ", private_key FROM domains WHERE workspace_id = $1 AND name = $2"
        ))
        .bind(workspace.as_uuid())
        .bind(encode::text(name))
        .fetch_optional(&self.pool)
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
        let mut tx = self.begin().await?;
        // The row lock orders concurrent checks of one domain.
        sqlx::query("SELECT 1 FROM domains WHERE workspace_id = $1 AND id = $2 FOR UPDATE")
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let before = load_domain(&mut tx, workspace, id).await?;
        let verified = check.status == DomainStatus::Verified;
        sqlx::query(
            "UPDATE domains SET status = $1, checks = $2, warning = $3, checked_at = $4, \
             verified_at = CASE WHEN $5 THEN COALESCE(verified_at, $4) ELSE verified_at END \
             WHERE workspace_id = $6 AND id = $7",
        )
        .bind(check.status.as_str())
        .bind(Json(encode::json(&check.checks)))
        .bind(encode::opt_text(check.warning.as_deref()))
        .bind(encode::ts(now))
        .bind(verified)
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let mut released = 0;
        if verified {
            let held: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE messages SET status = 'queued', status_reason = NULL \
                 WHERE workspace_id = $1 AND from_domain = $2 AND status = 'held' AND status_reason = $3 RETURNING id",
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
            "SELECT workspace_id, id FROM domains WHERE checked_at IS NULL OR checked_at < $1 \
             ORDER BY checked_at NULLS FIRST LIMIT $2",
        )
        .bind(encode::ts(before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let mut tx = self.begin().await?;
        let inserted = insert_suppression(&mut tx, workspace, new).await?;
        let row = sqlx::query("SELECT * FROM suppressions WHERE workspace_id = $1 AND email = $2")
            .bind(workspace.as_uuid())
            .bind(encode::text(&new.email))
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
        let deleted = sqlx::query("DELETE FROM suppressions WHERE workspace_id = $1 AND email = $2")
            .bind(workspace.as_uuid())
            .bind(encode::text(email))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound { entity: "suppression" });
        }
        Ok(())
    }

    async fn suppression(&self, workspace: WorkspaceId, email: &str) -> StoreResult<Option<Suppression>> {
        let row = sqlx::query("SELECT * FROM suppressions WHERE workspace_id = $1 AND email = $2")
            .bind(workspace.as_uuid())
            .bind(encode::text(email))
            .fetch_optional(&self.pool)
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
        // `strpos`, not `LIKE`: what people type is matched as typed, wildcards included.
        let rows = sqlx::query(
            "SELECT * FROM suppressions WHERE workspace_id = $1 AND ($2::text IS NULL OR email COLLATE \"C\" > $2) \
             AND ($3::text IS NULL OR strpos(lower(email), lower($3)) > 0) ORDER BY email COLLATE \"C\" LIMIT $4",
        )
        .bind(workspace.as_uuid())
        .bind(page.after.as_deref().map(encode::text))
        .bind(search.map(encode::text))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let items = rows.iter().map(suppression).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit, |s| s.email.clone()))
    }

    async fn set_transport(&self, workspace: WorkspaceId, transport: Option<&TransportRecord>) -> StoreResult<()> {
        match transport {
            Some(t) => sqlx::query(
                "INSERT INTO transports (workspace_id, settings, password, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (workspace_id) DO UPDATE SET settings = excluded.settings, password = excluded.password, \
                 updated_at = excluded.updated_at",
            )
            .bind(workspace.as_uuid())
            .bind(Json(encode::json(&t.settings)))
            .bind(t.password.as_ref().map(|p| self.secrets.seal_text(columns::TRANSPORT_PASSWORD, p)))
            .bind(encode::ts(t.updated_at)),
            None => sqlx::query("DELETE FROM transports WHERE workspace_id = $1").bind(workspace.as_uuid()),
        }
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn transport(&self, workspace: WorkspaceId) -> StoreResult<Option<TransportRecord>> {
        let row = sqlx::query("SELECT settings, password, updated_at FROM transports WHERE workspace_id = $1")
            .bind(workspace.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.map(|row| {
            Ok(TransportRecord {
                settings: get::<Json<Value>>(&row, "settings")?.0,
                password: get::<Option<String>>(&row, "password")?
                    .map(|p| self.secrets.open_text(columns::TRANSPORT_PASSWORD, &p))
                    .transpose()?,
                updated_at: ts(&row, "updated_at")?,
            })
        })
        .transpose()
    }

    async fn email_secret(&self, workspace: WorkspaceId, candidate: &str) -> StoreResult<String> {
        let secret: Option<String> = sqlx::query_scalar(
            "UPDATE workspaces SET email_secret = COALESCE(email_secret, $1) WHERE id = $2 RETURNING email_secret",
        )
        .bind(self.secrets.seal_text(columns::EMAIL_SECRET, candidate))
        .bind(workspace.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let secret = secret.ok_or(StoreError::NotFound { entity: "workspace" })?;
        Ok(self.secrets.open_text(columns::EMAIL_SECRET, &secret)?)
    }

    async fn soft_bounces(&self, workspace: WorkspaceId, email: &str, since: Timestamp) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE workspace_id = $1 AND bounce = 'soft' AND created_at >= $2 \
             AND lower(to_address) = $3",
        )
        .bind(workspace.as_uuid())
        .bind(encode::ts(since))
        .bind(email.to_lowercase())
        .fetch_one(&self.pool)
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
        let mut tx = self.begin().await?;
        finish(&mut tx, workspace, lease, outcome, now).await?;
        let updated = sqlx::query(
            "UPDATE messages SET status = $1, status_reason = $2, reply = COALESCE($3, reply), attempts = $4, \
             sent_at = COALESCE($5, sent_at), bounce = COALESCE($8, bounce) WHERE workspace_id = $6 AND id = $7",
        )
        .bind(delivery.status.as_str())
        .bind(encode::opt_text(delivery.reason.as_deref()))
        .bind(encode::opt_text(delivery.reply.as_deref()))
        .bind(i32::try_from(delivery.attempts).unwrap_or(i32::MAX))
        .bind(delivery.sent_at.map(encode::ts))
        .bind(workspace.as_uuid())
        .bind(message.as_uuid())
        .bind(delivery.bounce.map(BounceKind::as_str))
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
        crate::activity::activity_counts(&self.pool, workspace, scope, since, grouping).await
    }

    async fn conversions(&self, workspace: WorkspaceId, scope: &ActivityScope) -> StoreResult<u64> {
        crate::activity::conversions(&self.pool, workspace, scope).await
    }

    async fn message_activities(
        &self,
        workspace: WorkspaceId,
        message: MessageId,
        limit: u32,
    ) -> StoreResult<Vec<ActivityRecord>> {
        crate::activity::message_activities(&self.pool, workspace, message, limit).await
    }
}
