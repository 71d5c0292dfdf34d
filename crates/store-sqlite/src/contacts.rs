//! Contacts on SQLite, and the reads and writes the ingest and import planners share.

use std::collections::HashSet;

use async_trait::async_trait;
use herald_domain::contact::{check_attribute_merge, merge_attributes};
use herald_domain::{Contact, ContactId, EmailAddress, Page, PageRequest, Phone, Timestamp, UserId, WorkspaceId};
use herald_store::ingest::{BatchKeys, BatchWrites, import_keys, plan_import};
use herald_store::{
    ContactFilter, ContactPatch, ContactStore, ImportOutcome, NewContact, StoreError, StoreResult, new_uuid,
};
use rusqlite::{Connection, params};
use serde_json::Map;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::direct::{self, direct_error};
use crate::rows;
use crate::{SqliteStore, db_error};

macro_rules! contact_columns {
    () => {
        "id, workspace_id, email, user_id, phone, name, first_name, last_name, attributes, created_at, updated_at"
    };
}

/// The columns [`direct::contact`] reads, in its order.
pub(crate) const CONTACT_COLUMNS: &str = contact_columns!();

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "contact" };

/// Every contact of `workspace` whose email, user id or phone is among `keys`: one indexed
/// lookup per value.
pub(crate) fn read_contacts(db: &Connection, workspace: WorkspaceId, keys: &BatchKeys) -> StoreResult<Vec<Contact>> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let workspace = workspace.as_uuid();
    for (column, values) in [("email", &keys.emails), ("user_id", &keys.user_ids), ("phone", &keys.phones)] {
        if values.is_empty() {
            continue;
        }
        let mut select = db
            .prepare_cached(&format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE workspace_id = ?1 AND {column} = ?2"
            ))
            .map_err(direct_error)?;
        for value in values {
            let mut rows = select.query(params![&workspace.as_bytes()[..], value]).map_err(direct_error)?;
            if let Some(row) = rows.next().map_err(direct_error)? {
                let contact = direct::contact(row)?;
                if seen.insert(contact.id) {
                    found.push(contact);
                }
            }
        }
    }
    Ok(found)
}

/// Writes planned contact changes: changed contacts first (an email may move off a contact
/// before a new contact takes it) as an upsert on the id, then new ones.
pub(crate) fn write_contacts(db: &Connection, writes: &BatchWrites) -> StoreResult<()> {
    if !writes.changed_contacts.is_empty() {
        let mut upsert = db
            .prepare_cached(&format!(
                "INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT (id) DO UPDATE SET email = excluded.email, user_id = excluded.user_id, \
                 phone = excluded.phone, name = excluded.name, first_name = excluded.first_name, \
                 last_name = excluded.last_name, attributes = excluded.attributes, updated_at = excluded.updated_at"
            ))
            .map_err(direct_error)?;
        for contact in &writes.changed_contacts {
            write_contact(&mut upsert, contact)?;
        }
    }
    if !writes.new_contacts.is_empty() {
        let mut insert = db
            .prepare_cached(&format!(
                "INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))
            .map_err(direct_error)?;
        for contact in &writes.new_contacts {
            write_contact(&mut insert, contact)?;
        }
    }
    Ok(())
}

fn write_contact(statement: &mut rusqlite::Statement<'_>, c: &Contact) -> StoreResult<()> {
    statement
        .execute(params![
            &c.id.as_uuid().as_bytes()[..],
            &c.workspace_id.as_uuid().as_bytes()[..],
            c.email.as_ref().map(EmailAddress::as_str),
            c.user_id.as_ref().map(UserId::as_str),
            c.phone.as_ref().map(Phone::as_str),
            c.name,
            c.first_name,
            c.last_name,
            direct::object_text(&c.attributes),
            c.created_at.unix_millis(),
            c.updated_at.unix_millis(),
        ])
        .map_err(direct_error)?;
    Ok(())
}

/// Writes contacts whose email, user id and phone are as stored (the common case: an event
/// only merged attributes). Only the changed columns are set, so SQLite leaves the three
/// identity indexes alone; a full upsert would rewrite an index entry (a random page in the
/// WAL) per contact even when the value is the same.
pub(crate) fn update_contact_data(db: &Connection, contacts: &[Contact]) -> StoreResult<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    let mut update = db
        .prepare_cached(
            "UPDATE contacts SET name = ?2, first_name = ?3, last_name = ?4, attributes = ?5, updated_at = ?6 \
             WHERE id = ?1",
        )
        .map_err(direct_error)?;
    for c in contacts {
        update
            .execute(params![
                &c.id.as_uuid().as_bytes()[..],
                c.name,
                c.first_name,
                c.last_name,
                direct::object_text(&c.attributes),
                c.updated_at.unix_millis(),
            ])
            .map_err(direct_error)?;
    }
    Ok(())
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
        check_attribute_merge(&attributes, &contact.attributes, &attributes)?;
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
        let due = self
            .write_direct(|db| {
                write_contacts(db, &writes)?;
                crate::segments::refresh_direct(db, workspace, &[created.id], now)
            })
            .await?;
        self.announce(due);
        Ok(created)
    }

    async fn update_contact(
        &self,
        workspace: WorkspaceId,
        id: ContactId,
        patch: ContactPatch,
        now: Timestamp,
    ) -> StoreResult<Contact> {
        self.write_direct(|db| {
            let mut contact = {
                let mut select = db
                    .prepare_cached(&format!(
                        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE workspace_id = ?1 AND id = ?2"
                    ))
                    .map_err(direct_error)?;
                let mut rows = select
                    .query(params![&workspace.as_uuid().as_bytes()[..], &id.as_uuid().as_bytes()[..]])
                    .map_err(direct_error)?;
                direct::contact(rows.next().map_err(direct_error)?.ok_or(NOT_FOUND)?)?
            };
            patch.change_contact(&mut contact, now)?;
            write_contacts(db, &BatchWrites { changed_contacts: vec![contact.clone()], ..BatchWrites::default() })?;
            let due = crate::segments::refresh_direct(db, workspace, &[id], now)?;
            Ok((contact, due))
        })
        .await
        .map(|(contact, due)| {
            self.announce(due);
            contact
        })
    }

    async fn delete_contact(&self, workspace: WorkspaceId, id: ContactId) -> StoreResult<()> {
        let mut tx = self.write().await?;
        // Its memberships go with it (ON DELETE CASCADE); the segments' counts must follow.
        sqlx::query(
            "UPDATE segments SET members = members - 1 WHERE id IN \
             (SELECT segment_id FROM segment_memberships WHERE contact_id = ? AND workspace_id = ? AND member = 1)",
        )
        .bind(id.as_uuid())
        .bind(workspace.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
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
        let (results, due) = self
            .write_direct(|db| {
                let mut results = Vec::with_capacity(rows.len());
                for chunk in rows.chunks(1000) {
                    let existing = read_contacts(db, workspace, &import_keys(chunk))?;
                    let (writes, chunk_results) = plan_import(workspace, chunk, existing, now);
                    write_contacts(db, &writes)?;
                    results.extend(chunk_results);
                }
                let changed = herald_store::segment::imported_contacts(&results);
                let due = crate::segments::refresh_direct(db, workspace, &changed, now)?;
                Ok((results, due))
            })
            .await?;
        self.announce(due);
        Ok(results)
    }
}
