//! Contacts on PostgreSQL, and the reads and writes ingest and import share.
//!
//! Ingest and import follow one pattern: lock the stored contacts matching the batch's
//! identifiers (`FOR UPDATE`, in id order), let the shared planner decide, write its result
//! with a few `UNNEST` statements. The row locks make concurrent batches that touch the same
//! contact take turns, so neither loses the other's attribute merge; a contact that does not
//! exist yet cannot be locked, so two batches may both decide to create it. The second
//! insert waits for the first transaction, then skips the row (`ON CONFLICT DO NOTHING`,
//! which the statement's row count reveals); an identifier claimed for an existing contact
//! fails on the unique index instead. Either way that batch is repeated from the start
//! ([`retry`]; an import repeats only the chunk) and its lookup finds what the other one
//! committed.

use std::borrow::Cow;
use std::future::Future;

use async_trait::async_trait;
use herald_domain::contact::{check_attribute_merge, merge_attributes};
use herald_domain::{Contact, ContactId, Page, PageRequest, Timestamp, WorkspaceId};
use herald_store::ingest::{BatchKeys, import_keys, plan_import};
use herald_store::{
    ContactFilter, ContactPatch, ContactStore, ImportOutcome, NewContact, StoreError, StoreResult, new_uuid,
};
use serde_json::Map;
use sqlx::types::Json;
use sqlx::{Acquire, PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::encode;
use crate::rows::{self, contact_columns};
use crate::{PgStore, db_error};

const NOT_FOUND: StoreError = StoreError::NotFound { entity: "contact" };

/// How many times a batch is tried before its error is returned.
pub(crate) const ATTEMPTS: u32 = 5;

/// Import rows planned and written per round trip.
const IMPORT_CHUNK: usize = 1000;

/// Whether a failed transaction lost a race that running it again resolves: another
/// transaction created one of its contacts or took one of its identifiers first (unique
/// violation), or PostgreSQL broke a lock cycle (deadlock) or a serialization conflict.
pub(crate) fn lost_race(err: &StoreError) -> bool {
    match err {
        StoreError::Conflict { constraint } => lost_race_for(constraint),
        StoreError::Busy(cause) => cause
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlx::Error::as_database_error)
            .and_then(|db| db.code())
            .is_some_and(|code| code == "40P01" || code == "40001"),
        _ => false,
    }
}

/// Whether a unique violation on `constraint` means another writer created or claimed a
/// contact identifier first.
fn lost_race_for(constraint: &str) -> bool {
    matches!(constraint, "contacts_email" | "contacts_user_id" | "contacts_phone")
}

/// Runs `attempt` (one whole transaction) until it succeeds, fails for a reason other than a
/// lost race, or has been tried [`ATTEMPTS`] times. `attempt` returns `Ok(None)` when it
/// detected a lost race itself (and rolled back).
pub(crate) async fn retry<T, F, Fut>(what: &'static str, mut attempt: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<Option<T>>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        let error = match attempt().await {
            Ok(Some(done)) => return Ok(done),
            Ok(None) => None,
            Err(err) if lost_race(&err) => Some(err),
            Err(err) => return Err(err),
        };
        if tries >= ATTEMPTS {
            return Err(error.unwrap_or_else(|| {
                StoreError::Busy(format!("{what}: lost a race with concurrent writers {ATTEMPTS} times").into())
            }));
        }
        tracing::debug!(what, tries, ?error, "retrying after a lost race");
    }
}

/// Locks and reads the workspace's contacts holding any of the keys' emails, user ids or
/// phones, in id order (one order for every transaction, so lockers queue instead of
/// deadlocking). Under READ COMMITTED, a row another transaction changed while we waited is
/// read as committed. A contact that took one of the keys after the statement began is not
/// found; writing the plan then skips or fails on a unique index, and the batch runs again.
///
/// The ids are found by one unique-index probe per key (the `LATERAL ... LIMIT 1` keeps the
/// planner from turning them into a scan), then locked through the primary key. The
/// straightforward `email = ANY($2) OR ...` let PostgreSQL pick a plan that scans the whole
/// workspace when its statistics are stale, which they always are during a large import
/// (the rows are not committed yet): a 100,000-row import then took minutes instead of
/// seconds.
pub(crate) async fn lock_matching(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    keys: &BatchKeys,
) -> StoreResult<Vec<Contact>> {
    if keys.emails.is_empty() && keys.user_ids.is_empty() && keys.phones.is_empty() {
        return Ok(Vec::new());
    }
    // A key with a NUL cannot match a stored value (see `encode`); leave it out.
    let clean = |values: &[String]| -> Vec<String> { values.iter().filter(|v| !v.contains('\0')).cloned().collect() };
    let rows = sqlx::query(concat!(
        "SELECT ",
        contact_columns!(),
        " FROM contacts WHERE id = ANY(ARRAY(",
        "SELECT m.id FROM UNNEST($2::text[]) AS k (v), LATERAL ",
        "(SELECT id FROM contacts WHERE workspace_id = $1 AND email = k.v LIMIT 1) m ",
        "UNION ALL SELECT m.id FROM UNNEST($3::text[]) AS k (v), LATERAL ",
        "(SELECT id FROM contacts WHERE workspace_id = $1 AND user_id = k.v LIMIT 1) m ",
        "UNION ALL SELECT m.id FROM UNNEST($4::text[]) AS k (v), LATERAL ",
        "(SELECT id FROM contacts WHERE workspace_id = $1 AND phone = k.v LIMIT 1) m",
        ")) ORDER BY id FOR UPDATE"
    ))
    .bind(workspace.as_uuid())
    .bind(clean(&keys.emails))
    .bind(clean(&keys.user_ids))
    .bind(clean(&keys.phones))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    rows.iter().map(rows::contact).collect()
}

/// The contact as it will be stored (see `encode`): what create and update return.
fn stored_form(mut contact: Contact) -> Contact {
    for field in [&mut contact.name, &mut contact.first_name, &mut contact.last_name] {
        if let Some(value) = field.as_deref().map(encode::text)
            && let Cow::Owned(clean) = value
        {
            *field = Some(clean);
        }
    }
    if let Cow::Owned(clean) = encode::json_map(&contact.attributes) {
        contact.attributes = clean;
    }
    contact
}

/// The per-contact arrays both writes bind.
struct ContactArrays<'a> {
    ids: Vec<Uuid>,
    emails: Vec<Option<&'a str>>,
    user_ids: Vec<Option<&'a str>>,
    phones: Vec<Option<&'a str>>,
    names: Vec<Option<Cow<'a, str>>>,
    first_names: Vec<Option<Cow<'a, str>>>,
    last_names: Vec<Option<Cow<'a, str>>>,
    attributes: Vec<Cow<'a, Map<String, serde_json::Value>>>,
    updated_at: Vec<OffsetDateTime>,
}

impl<'a> ContactArrays<'a> {
    fn new(contacts: &[&'a Contact]) -> Self {
        Self {
            ids: contacts.iter().map(|c| c.id.as_uuid()).collect(),
            emails: contacts.iter().map(|c| c.email.as_ref().map(|e| e.as_str())).collect(),
            user_ids: contacts.iter().map(|c| c.user_id.as_ref().map(|u| u.as_str())).collect(),
            phones: contacts.iter().map(|c| c.phone.as_ref().map(|p| p.as_str())).collect(),
            names: contacts.iter().map(|c| encode::opt_text(c.name.as_deref())).collect(),
            first_names: contacts.iter().map(|c| encode::opt_text(c.first_name.as_deref())).collect(),
            last_names: contacts.iter().map(|c| encode::opt_text(c.last_name.as_deref())).collect(),
            attributes: contacts.iter().map(|c| encode::json_map(&c.attributes)).collect(),
            updated_at: contacts.iter().map(|c| encode::ts(c.updated_at)).collect(),
        }
    }

    fn attributes(&self) -> Vec<Json<&Map<String, serde_json::Value>>> {
        self.attributes.iter().map(|a| Json(a.as_ref())).collect()
    }
}

/// What [`insert_contacts`] does when another writer holds a new contact's identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Fail with `Conflict` naming the index (creating one contact through the API).
    Fail,
    /// Insert the others and report that not all went in (ingest and import, which then
    /// plan again). Cheaper than an error, and keeps these expected races out of the
    /// server log.
    Skip,
}

/// The insert [`insert_contacts`] runs, with or without `ON CONFLICT DO NOTHING`.
macro_rules! insert_contacts_sql {
    ($($suffix:literal)?) => {
        concat!(
            "INSERT INTO contacts (id, workspace_id, email, user_id, phone, name, first_name, last_name, ",
            "attributes, created_at, updated_at) ",
            "SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], ",
            "$7::text[], $8::text[], $9::jsonb[], $10::timestamptz[], $11::timestamptz[])"
            $(, $suffix)?
        )
    };
}

/// Inserts new contacts in one statement, in (workspace, email) order: two transactions
/// creating the same contacts then meet on the first shared email rather than each holding
/// one the other needs (a deadlock PostgreSQL takes a second to detect). Returns whether
/// every contact was inserted (always, or an error, with [`Taken::Fail`]).
pub(crate) async fn insert_contacts(conn: &mut PgConnection, contacts: &[Contact], taken: Taken) -> StoreResult<bool> {
    if contacts.is_empty() {
        return Ok(true);
    }
    let mut sorted: Vec<&Contact> = contacts.iter().collect();
    sorted.sort_by(|a, b| (a.workspace_id, &a.email).cmp(&(b.workspace_id, &b.email)));
    let arrays = ContactArrays::new(&sorted);
    let workspaces: Vec<Uuid> = sorted.iter().map(|c| c.workspace_id.as_uuid()).collect();
    let created: Vec<OffsetDateTime> = sorted.iter().map(|c| encode::ts(c.created_at)).collect();
    let sql = match taken {
        Taken::Fail => insert_contacts_sql!(),
        // Without a conflict target: any unique index (email, user id, phone) skips the row.
        Taken::Skip => insert_contacts_sql!(" ON CONFLICT DO NOTHING"),
    };
    let inserted = sqlx::query(sql)
        .bind(&arrays.ids)
        .bind(workspaces)
        .bind(&arrays.emails)
        .bind(&arrays.user_ids)
        .bind(&arrays.phones)
        .bind(&arrays.names)
        .bind(&arrays.first_names)
        .bind(&arrays.last_names)
        .bind(arrays.attributes())
        .bind(created)
        .bind(&arrays.updated_at)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(inserted.rows_affected() == sorted.len() as u64)
}

/// Writes changed contacts (already locked by [`lock_matching`] or a `FOR UPDATE` read) in
/// one statement.
pub(crate) async fn update_contacts(conn: &mut PgConnection, contacts: &[Contact]) -> StoreResult<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    let refs: Vec<&Contact> = contacts.iter().collect();
    let arrays = ContactArrays::new(&refs);
    sqlx::query(
        "UPDATE contacts c SET email = t.email, user_id = t.user_id, phone = t.phone, name = t.name, \
             first_name = t.first_name, last_name = t.last_name, attributes = t.attributes, \
             updated_at = t.updated_at \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::jsonb[], $9::timestamptz[]) \
              AS t (id, email, user_id, phone, name, first_name, last_name, attributes, updated_at) \
         WHERE c.id = t.id",
    )
    .bind(&arrays.ids)
    .bind(&arrays.emails)
    .bind(&arrays.user_ids)
    .bind(&arrays.phones)
    .bind(&arrays.names)
    .bind(&arrays.first_names)
    .bind(&arrays.last_names)
    .bind(arrays.attributes())
    .bind(&arrays.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

impl PgStore {
    /// One attempt at an import: every chunk in one transaction, each chunk in a savepoint.
    ///
    /// A chunk that loses a race for a new contact (another writer created it, or took one
    /// of its identifiers, after our lookup) is rolled back to its savepoint and planned
    /// again, finding the other writer's contact; the chunks before it stay. Rerunning the
    /// whole import instead would let a steady stream of ingest batches creating the same
    /// contacts defeat every attempt of a large import. Deadlocks still fail the attempt: a
    /// savepoint would keep the earlier chunks' locks, which are part of the cycle.
    async fn try_import(
        &self,
        workspace: WorkspaceId,
        rows: &[NewContact],
        now: Timestamp,
    ) -> StoreResult<Option<Vec<Result<ImportOutcome, String>>>> {
        let mut tx = self.begin().await?;
        let mut results = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(IMPORT_CHUNK) {
            let keys = import_keys(chunk);
            let mut tries = 0;
            let outcomes = loop {
                tries += 1;
                let mut savepoint = Acquire::begin(&mut *tx).await.map_err(db_error)?;
                // Later chunks see earlier chunks' writes: same transaction.
                let written = async {
                    let existing = lock_matching(&mut savepoint, workspace, &keys).await?;
                    let (writes, outcomes) = plan_import(workspace, chunk, existing, now);
                    update_contacts(&mut savepoint, &writes.changed_contacts).await?;
                    let complete = insert_contacts(&mut savepoint, &writes.new_contacts, Taken::Skip).await?;
                    Ok::<_, StoreError>(complete.then_some(outcomes))
                }
                .await;
                let lost = match written {
                    Ok(Some(outcomes)) => {
                        savepoint.commit().await.map_err(db_error)?;
                        break outcomes;
                    }
                    Ok(None) => None,
                    Err(StoreError::Conflict { constraint }) if lost_race_for(&constraint) => Some(constraint),
                    Err(err) => return Err(err),
                };
                savepoint.rollback().await.map_err(db_error)?;
                if tries >= ATTEMPTS {
                    // Run the whole import again (see `retry`).
                    return Ok(None);
                }
                tracing::debug!(tries, ?lost, "import chunk lost a race; planning it again");
            };
            results.extend(outcomes);
        }
        let changed = herald_store::segment::imported_contacts(&results);
        enqueue_refresh(&mut tx, workspace, &changed, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(results))
    }
}

#[async_trait]
impl ContactStore for PgStore {
    async fn list_contacts(
        &self,
        workspace: WorkspaceId,
        filter: &ContactFilter,
        page: PageRequest<ContactId>,
    ) -> StoreResult<Page<Contact>> {
        let after = page.after.map_or(Uuid::nil(), |id| id.as_uuid());
        let window_end: Option<Uuid> = if filter.scans() {
            sqlx::query_scalar(
                "SELECT id FROM contacts WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT 1 OFFSET $3",
            )
            .bind(workspace.as_uuid())
            .bind(after)
            .bind(i64::from(ContactFilter::SCAN_WINDOW) - 1)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?
        } else {
            None
        };
        let mut query = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            contact_columns!(),
            " FROM contacts WHERE workspace_id = "
        ));
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
            // Keys and values are compared in the form they were stored in.
            query
                .push(" AND attributes -> ")
                .push_bind(encode::text(key).into_owned())
                .push(" = ")
                .push_bind(encode::json(value).into_owned())
                .push("::jsonb");
        }
        query.push(" ORDER BY id LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = query.build().fetch_all(&self.pool).await.map_err(db_error)?;
        let contacts = rows.iter().map(rows::contact).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_window(contacts, page.limit, |c| c.id, window_end.map(ContactId::from_uuid)))
    }

    async fn get_contact(&self, workspace: WorkspaceId, id: ContactId) -> StoreResult<Contact> {
        let row =
            sqlx::query(concat!("SELECT ", contact_columns!(), " FROM contacts WHERE workspace_id = $1 AND id = $2"))
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
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
        // Merged into nothing, as an import or event would: `null` values are dropped.
        let mut attributes = Map::new();
        check_attribute_merge(&attributes, &contact.attributes, &attributes)?;
        merge_attributes(&mut attributes, &contact.attributes);
        let contact = stored_form(Contact {
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
        });
        let mut tx = self.begin().await?;
        insert_contacts(&mut tx, std::slice::from_ref(&contact), Taken::Fail).await?;
        enqueue_refresh(&mut tx, workspace, &[contact.id], now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(contact)
    }

    async fn update_contact(
        &self,
        workspace: WorkspaceId,
        id: ContactId,
        patch: ContactPatch,
        now: Timestamp,
    ) -> StoreResult<Contact> {
        let mut tx = self.begin().await?;
        // Locked, so a concurrent ingest's attribute merge is not lost (nor ours).
        let row = sqlx::query(concat!(
            "SELECT ",
            contact_columns!(),
            " FROM contacts WHERE workspace_id = $1 AND id = $2 FOR UPDATE"
        ))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or(NOT_FOUND)?;
        let before = rows::contact(&row)?;
        patch.check(&before)?;
        let mut contact = before.clone();
        if let Some(email) = patch.email {
            contact.email = email;
        }
        if let Some(user_id) = patch.user_id {
            contact.user_id = user_id;
        }
        if let Some(phone) = patch.phone {
            contact.phone = phone;
        }
        if let Some(name) = patch.name {
            contact.name = name;
        }
        if let Some(first_name) = patch.first_name {
            contact.first_name = first_name;
        }
        if let Some(last_name) = patch.last_name {
            contact.last_name = last_name;
        }
        merge_attributes(&mut contact.attributes, &patch.attributes);
        let mut contact = stored_form(contact);
        if contact != before {
            contact.updated_at = now;
            update_contacts(&mut tx, std::slice::from_ref(&contact)).await?;
            enqueue_refresh(&mut tx, workspace, &[id], now).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(contact)
    }

    async fn delete_contact(&self, workspace: WorkspaceId, id: ContactId) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        // Their memberships go with them (cascade); the segments' counts must follow.
        sqlx::query(
            "UPDATE segments SET members = members - 1 WHERE id IN \
             (SELECT segment_id FROM segment_memberships WHERE contact_id = $1 AND workspace_id = $2 AND member)",
        )
        .bind(id.as_uuid())
        .bind(workspace.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        // Their events go with them: events.contact_id cascades.
        let deleted = sqlx::query("DELETE FROM contacts WHERE workspace_id = $1 AND id = $2")
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
        retry("import", || self.try_import(workspace, rows, now)).await
    }
}

/// Enqueues the re-decision of contacts whose attributes changed without an event (an API
/// update, an import, a journey's or an action's attribute step), in the caller's
/// transaction, when the workspace has segments.
pub(crate) async fn enqueue_refresh(
    tx: &mut crate::Tx,
    workspace: WorkspaceId,
    contacts: &[ContactId],
    now: Timestamp,
) -> StoreResult<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    let any: Option<i32> = sqlx::query_scalar("SELECT 1 FROM segments WHERE workspace_id = $1 LIMIT 1")
        .bind(workspace.as_uuid())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?;
    if any.is_some() {
        crate::jobs::insert_jobs(tx, workspace, &[herald_store::segment::refresh_job(contacts, now)], now).await?;
    }
    Ok(())
}
