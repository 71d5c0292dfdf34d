//! Contacts on SQLite, and the reads and writes the ingest and import planners share.

use std::collections::HashSet;

use async_trait::async_trait;
use herald_domain::contact::merge_attributes;
use herald_domain::{Contact, ContactId, Page, PageRequest, Timestamp, WorkspaceId};
use herald_store::ingest::{BatchKeys, BatchWrites, import_keys, plan_import};
use herald_store::{
    ContactFilter, ContactPatch, ContactStore, ImportOutcome, NewContact, StoreError, StoreResult, new_uuid,
};
use serde_json::Map;
use sqlx::{QueryBuilder, Sqlite, Transaction};
use uuid::Uuid;

use crate::rows;
use crate::{SqliteStore, db_error};

macro_rules! contact_columns {
    () => {
        "id, workspace_id, email, user_id, phone, name, first_name, last_name, attributes, created_at, updated_at"
    };
}

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "contact" };
/// Keys per `IN (...)` list, under SQLite's parameter limit.
const LOOKUP_CHUNK: usize = 500;

/// Every contact of `workspace` whose email, user id or phone is among `keys`.
pub(crate) async fn read_contacts(
    tx: &mut Transaction<'static, Sqlite>,
    workspace: WorkspaceId,
    keys: &BatchKeys,
) -> StoreResult<Vec<Contact>> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for (column, values) in [("email", &keys.emails), ("user_id", &keys.user_ids), ("phone", &keys.phones)] {
        for chunk in values.chunks(LOOKUP_CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(concat!(
                "SELECT ",
                contact_columns!(),
                " FROM contacts WHERE workspace_id = "
            ));
            query.push_bind(workspace.as_uuid()).push(format_args!(" AND {column} IN ("));
            let mut list = query.separated(", ");
            for value in chunk {
                list.push_bind(value.as_str());
            }
            query.push(")");
            for row in query.build().fetch_all(&mut **tx).await.map_err(db_error)? {
                let contact = rows::contact(&row)?;
                if seen.insert(contact.id) {
                    found.push(contact);
                }
            }
        }
    }
    Ok(found)
}

/// Writes planned contact changes in multi-row statements: changed contacts first (an email
/// may move off a contact before a new contact takes it) as an upsert on the id, then new ones.
pub(crate) async fn write_contacts(tx: &mut Transaction<'static, Sqlite>, writes: &BatchWrites) -> StoreResult<()> {
    // 11 parameters a row.
    for chunk in writes.changed_contacts.chunks(2000) {
        let mut upsert = QueryBuilder::<Sqlite>::new(concat!("INSERT INTO contacts (", contact_columns!(), ") "));
        push_contacts(&mut upsert, chunk);
        upsert.push(
            " ON CONFLICT (id) DO UPDATE SET email = excluded.email, user_id = excluded.user_id, phone = excluded.phone, \
             name = excluded.name, first_name = excluded.first_name, last_name = excluded.last_name, \
             attributes = excluded.attributes, updated_at = excluded.updated_at",
        );
        upsert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    for chunk in writes.new_contacts.chunks(2000) {
        let mut insert = QueryBuilder::<Sqlite>::new(concat!("INSERT INTO contacts (", contact_columns!(), ") "));
        push_contacts(&mut insert, chunk);
        insert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(())
}

/// Writes contacts whose email, user id and phone are as stored (the common case: an event
/// only merged attributes). Only the changed columns are set, so SQLite leaves the three
/// identity indexes alone; a full upsert would rewrite an index entry (a random page in the
/// WAL) per contact even when the value is the same.
pub(crate) async fn update_contact_data(
    tx: &mut Transaction<'static, Sqlite>,
    contacts: &[Contact],
) -> StoreResult<()> {
    // 6 parameters a row.
    for chunk in contacts.chunks(5000) {
        let mut update =
            QueryBuilder::<Sqlite>::new("WITH v (id, name, first_name, last_name, attributes, updated_at) AS (");
        update.push_values(chunk, |mut row, c| {
            row.push_bind(c.id.as_uuid())
                .push_bind(c.name.clone())
                .push_bind(c.first_name.clone())
                .push_bind(c.last_name.clone())
                .push_bind(serde_json::Value::Object(c.attributes.clone()).to_string())
                .push_bind(c.updated_at.unix_millis());
        });
        update.push(
            ") UPDATE contacts SET name = v.name, first_name = v.first_name, last_name = v.last_name, \
             attributes = v.attributes, updated_at = v.updated_at FROM v WHERE contacts.id = v.id",
        );
        update.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    Ok(())
}

fn push_contacts(query: &mut QueryBuilder<Sqlite>, contacts: &[Contact]) {
    query.push_values(contacts, |mut row, c| {
        row.push_bind(c.id.as_uuid())
            .push_bind(c.workspace_id.as_uuid())
            .push_bind(c.email.as_ref().map(|e| e.as_str().to_owned()))
            .push_bind(c.user_id.as_ref().map(|u| u.as_str().to_owned()))
            .push_bind(c.phone.as_ref().map(|p| p.as_str().to_owned()))
            .push_bind(c.name.clone())
            .push_bind(c.first_name.clone())
            .push_bind(c.last_name.clone())
            .push_bind(serde_json::Value::Object(c.attributes.clone()).to_string())
            .push_bind(c.created_at.unix_millis())
            .push_bind(c.updated_at.unix_millis());
    });
}

#[async_trait]
impl ContactStore for SqliteStore {
    async fn list_contacts(
        &self,
        workspace: WorkspaceId,
        filter: &ContactFilter,
        page: PageRequest<ContactId>,
    ) -> StoreResult<Page<Contact>> {
        let after = page.after.map_or(Uuid::nil(), |id| id.as_uuid());
        let window_end: Option<Uuid> = if filter.scans() {
            sqlx::query_scalar("SELECT id FROM contacts WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT 1 OFFSET ?")
                .bind(workspace.as_uuid())
                .bind(after)
                .bind(i64::from(ContactFilter::SCAN_WINDOW) - 1)
                .fetch_optional(&self.readers)
                .await
                .map_err(db_error)?
        } else {
            None
        };
        let mut query =
            QueryBuilder::<Sqlite>::new(concat!("SELECT ", contact_columns!(), " FROM contacts WHERE workspace_id = "));
        query.push_bind(workspace.as_uuid());
        query.push(" AND id > ").push_bind(after);
        if let Some(end) = window_end {
            query.push(" AND id <= ").push_bind(end);
        }
        if let Some(email) = &filter.email {
            query.push(" AND email = ").push_bind(email.as_str().to_owned());
        }
        if let Some(user_id) = &filter.user_id {
            query.push(" AND user_id = ").push_bind(user_id.as_str().to_owned());
        }
        if let Some((key, value)) = &filter.attribute {
            // `->` returns the value as minified JSON text, which `json(?)` also produces.
            let path = format!("$.\"{}\"", key.replace('"', ""));
            query.push(" AND attributes -> ").push_bind(path).push(" = json(").push_bind(value.to_string()).push(")");
        }
        query.push(" ORDER BY id LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.readers).await.map_err(db_error)?;
        let contacts = rows.iter().map(rows::contact).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_window(contacts, page.limit, |c| c.id, window_end.map(ContactId::from_uuid)))
    }

    async fn get_contact(&self, workspace: WorkspaceId, id: ContactId) -> StoreResult<Contact> {
        let row =
            sqlx::query(concat!("SELECT ", contact_columns!(), " FROM contacts WHERE workspace_id = ? AND id = ?"))
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.readers)
                .await
                .map_err(db_error)?
                .ok_or(NOT_FOUND)?;
        rows::contact(&row)
    }

    async fn create_contact(
        &self,
        workspace: WorkspaceId,
        contact: NewContact,
        now: Timestamp,
    ) -> StoreResult<Contact> {
        let mut attributes = Map::new();
        merge_attributes(&mut attributes, &contact.attributes);
        let created = Contact {
            id: ContactId::from_uuid(new_uuid(now)),
            workspace_id: workspace,
            email: contact.identity.email,
            user_id: contact.identity.user_id,
            phone: contact.identity.phone,
            name: contact.name,
            first_name: contact.first_name,
            last_name: contact.last_name,
            attributes,
            created_at: now,
            updated_at: now,
        };
        let writes = BatchWrites { new_contacts: vec![created.clone()], ..BatchWrites::default() };
        let mut tx = self.write().await?;
        write_contacts(&mut tx, &writes).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(created)
    }

    async fn update_contact(
        &self,
        workspace: WorkspaceId,
        id: ContactId,
        patch: ContactPatch,
        now: Timestamp,
    ) -> StoreResult<Contact> {
        let mut tx = self.write().await?;
        let row =
            sqlx::query(concat!("SELECT ", contact_columns!(), " FROM contacts WHERE workspace_id = ? AND id = ?"))
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?
                .ok_or(NOT_FOUND)?;
        let mut contact = rows::contact(&row)?;
        patch.apply(&mut contact, now);
        write_contacts(&mut tx, &BatchWrites { changed_contacts: vec![contact.clone()], ..BatchWrites::default() })
            .await?;
        tx.commit().await.map_err(db_error)?;
        Ok(contact)
    }

    async fn delete_contact(&self, workspace: WorkspaceId, id: ContactId) -> StoreResult<()> {
        let mut tx = self.write().await?;
        // Events go with the contact (ON DELETE CASCADE): erasure means erasure.
        let deleted = sqlx::query("DELETE FROM contacts WHERE workspace_id = ? AND id = ?")
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

    async fn import_contacts(
        &self,
        workspace: WorkspaceId,
        rows: &[NewContact],
        now: Timestamp,
    ) -> StoreResult<Vec<Result<ImportOutcome, String>>> {
        let mut tx = self.write().await?;
        let mut results = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(1000) {
            let existing = read_contacts(&mut tx, workspace, &import_keys(chunk)).await?;
            let (writes, chunk_results) = plan_import(workspace, chunk, existing, now);
            write_contacts(&mut tx, &writes).await?;
            results.extend(chunk_results);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(results)
    }
}
