//! Subscription topics and contacts' choices per topic on PostgreSQL.

use async_trait::async_trait;
use herald_domain::{ContactId, Page, PageRequest, Timestamp, Topic, TopicConsent, TopicId, WorkspaceId};
use herald_store::topic::{ConsentChange, TopicStore, consent_event};
use herald_store::{StoreError, StoreResult, new_uuid};
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::events::{enqueue_evaluation, insert_events};
use crate::rows::{corrupt, get, opt_ts, ts, uuid};
use crate::{PgStore, db_error, encode};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "topic" };

macro_rules! topic_columns {
    () => {
        "id, workspace_id, name, description, created_at, updated_at, deleted_at"
    };
}

fn topic(row: &PgRow) -> StoreResult<Topic> {
    Ok(Topic {
        id: TopicId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        description: get(row, "description")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        deleted_at: opt_ts(row, "deleted_at")?,
    })
}

fn consent(row: &PgRow) -> StoreResult<TopicConsent> {
    Ok(TopicConsent {
        contact_id: ContactId::from_uuid(uuid(row, "contact_id")?),
        topic_id: TopicId::from_uuid(uuid(row, "topic_id")?),
        subscribed: get(row, "subscribed")?,
        source: get::<String>(row, "source")?.parse().map_err(|e| corrupt("source", e))?,
        updated_at: ts(row, "updated_at")?,
    })
}

#[async_trait]
impl TopicStore for PgStore {
    async fn create_topic(
        &self,
        workspace: WorkspaceId,
        name: &str,
        description: &str,
        now: Timestamp,
    ) -> StoreResult<Topic> {
        let row = sqlx::query(concat!(
            "INSERT INTO topics (id, workspace_id, name, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING ",
            topic_columns!()
        ))
        .bind(new_uuid(now))
        .bind(workspace.as_uuid())
        .bind(encode::text(name))
        .bind(encode::text(description))
        .bind(encode::ts(now))
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        topic(&row)
    }

    async fn list_topics(&self, workspace: WorkspaceId) -> StoreResult<Vec<Topic>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            topic_columns!(),
            " FROM topics WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY lower(name)"
        ))
        .bind(workspace.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(topic).collect()
    }

    async fn topics_by_ids(&self, workspace: WorkspaceId, ids: &[TopicId]) -> StoreResult<Vec<Topic>> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let rows =
            sqlx::query(concat!("SELECT ", topic_columns!(), " FROM topics WHERE workspace_id = $1 AND id = ANY($2)"))
                .bind(workspace.as_uuid())
                .bind(&ids)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        rows.iter().map(topic).collect()
    }

    async fn update_topic(
        &self,
        workspace: WorkspaceId,
        id: TopicId,
        name: &str,
        description: &str,
        now: Timestamp,
    ) -> StoreResult<Topic> {
        let row = sqlx::query(concat!(
            "UPDATE topics SET name = $1, description = $2, updated_at = $3 \
             WHERE workspace_id = $4 AND id = $5 AND deleted_at IS NULL RETURNING ",
            topic_columns!()
        ))
        .bind(encode::text(name))
        .bind(encode::text(description))
        .bind(encode::ts(now))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        topic(&row.ok_or(NOT_FOUND)?)
    }

    async fn delete_topic(&self, workspace: WorkspaceId, id: TopicId, now: Timestamp) -> StoreResult<()> {
        let deleted =
            sqlx::query("UPDATE topics SET deleted_at = $1 WHERE workspace_id = $2 AND id = $3 AND deleted_at IS NULL")
                .bind(encode::ts(now))
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(NOT_FOUND);
        }
        Ok(())
    }

    async fn set_topic_consents(
        &self,
        workspace: WorkspaceId,
        changes: &[ConsentChange],
        now: Timestamp,
    ) -> StoreResult<Vec<bool>> {
        let mut tx = self.begin().await?;
        let mut changed = Vec::with_capacity(changes.len());
        let mut events = Vec::new();
        for change in changes {
            let name: Option<String> = sqlx::query_scalar(
                "SELECT name FROM topics WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL FOR SHARE",
            )
            .bind(workspace.as_uuid())
            .bind(change.topic.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            let Some(name) = name else { return Err(NOT_FOUND) };
            // Locks the contact's row: two changes of one contact's choices take turns, so
            // each compares with the other's result.
            let contact: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM contacts WHERE workspace_id = $1 AND id = $2 FOR UPDATE")
                    .bind(workspace.as_uuid())
                    .bind(change.contact.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
            if contact.is_none() {
                return Err(StoreError::NotFound { entity: "contact" });
            }
            // No row means subscribed: a change to the state the contact is in writes nothing.
            let written = sqlx::query(
                "INSERT INTO topic_consents (workspace_id, contact_id, topic_id, subscribed, source, updated_at) \
                 SELECT $1, $2, $3, $4, $5, $6 \
                 WHERE $4 <> COALESCE((SELECT subscribed FROM topic_consents \
                   WHERE workspace_id = $1 AND contact_id = $2 AND topic_id = $3), true) \
                 ON CONFLICT (workspace_id, contact_id, topic_id) DO UPDATE SET \
                   subscribed = excluded.subscribed, source = excluded.source, updated_at = excluded.updated_at",
            )
            .bind(workspace.as_uuid())
            .bind(change.contact.as_uuid())
            .bind(change.topic.as_uuid())
            .bind(change.subscribed)
            .bind(change.source.as_str())
            .bind(encode::ts(now))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            let applied = written.rows_affected() > 0;
            if applied {
                events.push(consent_event(workspace, change, &name, now));
            }
            changed.push(applied);
        }
        insert_events(&mut tx, &events).await?;
        enqueue_evaluation(&mut tx, &events, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(changed)
    }

    async fn contact_topics(&self, workspace: WorkspaceId, contact: ContactId) -> StoreResult<Vec<TopicConsent>> {
        let rows = sqlx::query(
            "SELECT contact_id, topic_id, subscribed, source, updated_at FROM topic_consents \
             WHERE workspace_id = $1 AND contact_id = $2 ORDER BY topic_id",
        )
        .bind(workspace.as_uuid())
        .bind(contact.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(consent).collect()
    }

    async fn topic_subscribers(
        &self,
        workspace: WorkspaceId,
        topic: TopicId,
        page: PageRequest<ContactId>,
    ) -> StoreResult<Page<ContactId>> {
        let rows: Vec<Uuid> = sqlx::query_scalar(
            "SELECT c.id FROM contacts c WHERE c.workspace_id = $1 AND c.email IS NOT NULL AND c.id > $2 \
             AND NOT EXISTS (SELECT 1 FROM topic_consents t WHERE t.workspace_id = $1 AND t.topic_id = $3 \
               AND t.contact_id = c.id AND NOT t.subscribed) \
             ORDER BY c.id LIMIT $4",
        )
        .bind(workspace.as_uuid())
        .bind(page.after.map_or(Uuid::nil(), |c| c.as_uuid()))
        .bind(topic.as_uuid())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let ids = rows.into_iter().map(ContactId::from_uuid).collect();
        Ok(Page::from_overfetch(ids, page.limit, |id: &ContactId| *id))
    }
}
