//! Subscription topics and contacts' choices per topic on SQLite.

use async_trait::async_trait;
use herald_domain::{ContactId, Page, PageRequest, Timestamp, Topic, TopicConsent, TopicId, WorkspaceId};
use herald_store::topic::{ConsentChange, TopicStore, consent_event};
use herald_store::{StoreError, StoreResult, new_uuid};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::activity::{enqueue_evaluation, insert_event};
use crate::rows::{corrupt, get, opt_ts, ts, uuid};
use crate::{SqliteStore, db_error};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "topic" };

macro_rules! topic_columns {
    () => {
        "id, workspace_id, name, description, created_at, updated_at, deleted_at"
    };
}

fn topic(row: &SqliteRow) -> StoreResult<Topic> {
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

fn consent(row: &SqliteRow) -> StoreResult<TopicConsent> {
    Ok(TopicConsent {
        contact_id: ContactId::from_uuid(uuid(row, "contact_id")?),
        topic_id: TopicId::from_uuid(uuid(row, "topic_id")?),
        subscribed: get(row, "subscribed")?,
        source: get::<String>(row, "source")?.parse().map_err(|e| corrupt("source", e))?,
        updated_at: ts(row, "updated_at")?,
    })
}

#[async_trait]
impl TopicStore for SqliteStore {
    async fn create_topic(
        &self,
        workspace: WorkspaceId,
        name: &str,
        description: &str,
        now: Timestamp,
    ) -> StoreResult<Topic> {
        let mut tx = self.write().await?;
        let row = sqlx::query(concat!(
            "INSERT INTO topics (id, workspace_id, name, description, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING ",
            topic_columns!()
        ))
        .bind(new_uuid(now))
        .bind(workspace.as_uuid())
        .bind(name)
        .bind(description)
        .bind(now.unix_millis())
        .bind(now.unix_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let created = topic(&row)?;
        tx.commit().await.map_err(db_error)?;
        Ok(created)
    }

    async fn list_topics(&self, workspace: WorkspaceId) -> StoreResult<Vec<Topic>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            topic_columns!(),
            " FROM topics WHERE workspace_id = ? AND deleted_at IS NULL ORDER BY lower(name)"
        ))
        .bind(workspace.as_uuid())
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter().map(topic).collect()
    }

    async fn topics_by_ids(&self, workspace: WorkspaceId, ids: &[TopicId]) -> StoreResult<Vec<Topic>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query =
            QueryBuilder::<Sqlite>::new(concat!("SELECT ", topic_columns!(), " FROM topics WHERE workspace_id = "));
        query.push_bind(workspace.as_uuid()).push(" AND id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.as_uuid());
        }
        query.push(")");
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
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
        let mut tx = self.write().await?;
        let row = sqlx::query(concat!(
            "UPDATE topics SET name = ?, description = ?, updated_at = ? \
             WHERE workspace_id = ? AND id = ? AND deleted_at IS NULL RETURNING ",
            topic_columns!()
        ))
        .bind(name)
        .bind(description)
        .bind(now.unix_millis())
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let updated = topic(&row.ok_or(NOT_FOUND)?)?;
        tx.commit().await.map_err(db_error)?;
        Ok(updated)
    }

    async fn delete_topic(&self, workspace: WorkspaceId, id: TopicId, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let deleted =
            sqlx::query("UPDATE topics SET deleted_at = ? WHERE workspace_id = ? AND id = ? AND deleted_at IS NULL")
                .bind(now.unix_millis())
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(NOT_FOUND);
        }
        tx.commit().await.map_err(db_error)
    }

    async fn set_topic_consents(
        &self,
        workspace: WorkspaceId,
        changes: &[ConsentChange],
        now: Timestamp,
    ) -> StoreResult<Vec<bool>> {
        let mut tx = self.write().await?;
        let mut changed = Vec::with_capacity(changes.len());
        let mut events = Vec::new();
        for change in changes {
            let name: Option<String> =
                sqlx::query_scalar("SELECT name FROM topics WHERE workspace_id = ? AND id = ? AND deleted_at IS NULL")
                    .bind(workspace.as_uuid())
                    .bind(change.topic.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
            let Some(name) = name else { return Err(NOT_FOUND) };
            let contact: Option<i64> = sqlx::query_scalar("SELECT 1 FROM contacts WHERE workspace_id = ? AND id = ?")
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
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6 \
                 WHERE ?4 != COALESCE((SELECT subscribed FROM topic_consents \
                   WHERE workspace_id = ?1 AND contact_id = ?2 AND topic_id = ?3), 1) \
                 ON CONFLICT (workspace_id, contact_id, topic_id) DO UPDATE SET \
                   subscribed = excluded.subscribed, source = excluded.source, updated_at = excluded.updated_at",
            )
            .bind(workspace.as_uuid())
            .bind(change.contact.as_uuid())
            .bind(change.topic.as_uuid())
            .bind(change.subscribed)
            .bind(change.source.as_str())
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            let applied = written.rows_affected() > 0;
            if applied {
                let event = consent_event(workspace, change, &name, now);
                insert_event(&mut tx, &event).await?;
                events.push(event);
            }
            changed.push(applied);
        }
        enqueue_evaluation(&mut tx, workspace, &events, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(changed)
    }

    async fn contact_topics(&self, workspace: WorkspaceId, contact: ContactId) -> StoreResult<Vec<TopicConsent>> {
        let rows = sqlx::query(
            "SELECT contact_id, topic_id, subscribed, source, updated_at FROM topic_consents \
             WHERE workspace_id = ? AND contact_id = ? ORDER BY topic_id",
        )
        .bind(workspace.as_uuid())
        .bind(contact.as_uuid())
        .fetch_all(&self.readers)
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
        let rows: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT c.id FROM contacts c WHERE c.workspace_id = ?1 AND c.email IS NOT NULL AND c.id > ?2 \
             AND NOT EXISTS (SELECT 1 FROM topic_consents t WHERE t.workspace_id = ?1 AND t.topic_id = ?3 \
               AND t.contact_id = c.id AND t.subscribed = 0) \
             ORDER BY c.id LIMIT ?4",
        )
        .bind(workspace.as_uuid())
        .bind(page.after.map_or(uuid::Uuid::nil(), |c| c.as_uuid()))
        .bind(topic.as_uuid())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        let ids = rows.into_iter().map(ContactId::from_uuid).collect();
        Ok(Page::from_overfetch(ids, page.limit, |id: &ContactId| *id))
    }
}
