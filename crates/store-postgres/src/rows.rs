//! Reading rows back into domain types. PostgreSQL keeps ids as `uuid`, instants as
//! `timestamptz` (decoded through `time::OffsetDateTime`) and JSON (job payloads, attributes,
//! properties, outcomes, mappings) as `jsonb`.

use herald_domain::job::JobState;
use herald_domain::{
    ApiKey, ApiKeyName, Contact, ContactId, EmailAddress, Event, EventId, EventOutcome, Job, Phone, RequestRecord,
    Source, SourceId, SourceKind, Timestamp, UserId, Workspace, WorkspaceId, WorkspaceName,
};
use herald_store::secrets::{Document, SecretKeys};
use herald_store::{StoreError, StoreResult};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

pub(crate) fn get<'r, T>(row: &'r PgRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(|e| corrupt(column, e))
}

pub(crate) fn uuid(row: &PgRow, column: &str) -> StoreResult<Uuid> {
    get(row, column)
}

pub(crate) fn ts(row: &PgRow, column: &str) -> StoreResult<Timestamp> {
    get::<OffsetDateTime>(row, column).map(Timestamp::from_offset_date_time)
}

pub(crate) fn opt_ts(row: &PgRow, column: &str) -> StoreResult<Option<Timestamp>> {
    get::<Option<OffsetDateTime>>(row, column).map(|v| v.map(Timestamp::from_offset_date_time))
}

/// A count or counter column (`bigint`) as the unsigned number the domain uses.
pub(crate) fn count<T: TryFrom<i64>>(row: &PgRow, column: &str) -> StoreResult<T>
where
    T::Error: std::fmt::Display,
{
    T::try_from(get::<i64>(row, column)?).map_err(|e| corrupt(column, e))
}

pub(crate) fn workspace(row: &PgRow) -> StoreResult<Workspace> {
    let name: String = get(row, "name")?;
    Ok(Workspace {
        id: herald_domain::WorkspaceId::from_uuid(uuid(row, "id")?),
        name: WorkspaceName::parse(&name).map_err(|e| corrupt("workspaces.name", e))?,
        timezone: get(row, "timezone")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn api_key(row: &PgRow) -> StoreResult<ApiKey> {
    let name: String = get(row, "name")?;
    Ok(ApiKey {
        id: herald_domain::ApiKeyId::from_uuid(uuid(row, "id")?),
        workspace_id: herald_domain::WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: ApiKeyName::parse(&name).map_err(|e| corrupt("api_keys.name", e))?,
        hint: get(row, "hint")?,
        created_at: ts(row, "created_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
    })
}

pub(crate) fn job(row: &PgRow, keys: &SecretKeys) -> StoreResult<Job> {
    let state: String = get(row, "state")?;
    let kind: String = get(row, "kind")?;
    let mut payload = get(row, "payload")?;
    keys.open_job(&kind, &mut payload)?;
    Ok(Job {
        id: herald_domain::JobId::from_uuid(uuid(row, "id")?),
        workspace_id: herald_domain::WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        kind,
        payload,
        state: state.parse::<JobState>().map_err(|e| corrupt("jobs.state", e))?,
        run_at: ts(row, "run_at")?,
        attempts: count(row, "attempts")?,
        max_attempts: count(row, "max_attempts")?,
        last_error: get(row, "last_error")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// A `jsonb` document column with its secrets (a `kind` document, sealed for the column
/// named `sealed_for`) opened.
pub(crate) fn document(
    row: &PgRow,
    column: &str,
    keys: &SecretKeys,
    kind: Document,
    sealed_for: &'static str,
) -> StoreResult<Value> {
    let mut doc = get::<Json<Value>>(row, column)?.0;
    keys.open_document(kind, sealed_for, &mut doc)?;
    Ok(doc)
}

pub(crate) fn opt_uuid(row: &PgRow, column: &str) -> StoreResult<Option<Uuid>> {
    get(row, column)
}

/// A `jsonb` object column.
pub(crate) fn object(row: &PgRow, column: &str) -> StoreResult<Map<String, Value>> {
    get::<Json<Map<String, Value>>>(row, column).map(|json| json.0)
}

/// The columns [`source`] reads.
macro_rules! source_columns {
    () => {
        "id, workspace_id, name, kind, enabled, token_hint, previous_token_expires_at, \
         rate_limit_per_second, mapping, created_at, updated_at"
    };
}
pub(crate) use source_columns;

pub(crate) fn source(row: &PgRow) -> StoreResult<Source> {
    let kind: String = get(row, "kind")?;
    let rate: Option<i64> = get(row, "rate_limit_per_second")?;
    Ok(Source {
        id: SourceId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        kind: kind.parse::<SourceKind>().map_err(|e| corrupt("sources.kind", e))?,
        enabled: get(row, "enabled")?,
        token_hint: get(row, "token_hint")?,
        previous_token_expires_at: opt_ts(row, "previous_token_expires_at")?,
        rate_limit_per_second: rate
            .map(u32::try_from)
            .transpose()
            .map_err(|e| corrupt("sources.rate_limit_per_second", e))?,
        mapping: get(row, "mapping")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// The columns [`contact`] reads.
macro_rules! contact_columns {
    () => {
        "id, workspace_id, email, user_id, phone, name, first_name, last_name, attributes, \
         created_at, updated_at"
    };
}
pub(crate) use contact_columns;

/// A contact. Identifiers were parsed on the way in and are not checked again: ingest reads
/// many contacts per batch.
pub(crate) fn contact(row: &PgRow) -> StoreResult<Contact> {
    contact_at(row, "")
}

/// A contact from columns named `{prefix}id`, `{prefix}email`, ... (joined queries).
pub(crate) fn contact_at(row: &PgRow, prefix: &str) -> StoreResult<Contact> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(Contact {
        id: ContactId::from_uuid(uuid(row, &c("id"))?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, &c("workspace_id"))?),
        email: get::<Option<String>>(row, &c("email"))?.map(EmailAddress::from_stored),
        user_id: get::<Option<String>>(row, &c("user_id"))?.map(UserId::from_stored),
        phone: get::<Option<String>>(row, &c("phone"))?.map(Phone::from_stored),
        name: get(row, &c("name"))?,
        first_name: get(row, &c("first_name"))?,
        last_name: get(row, &c("last_name"))?,
        attributes: object(row, &c("attributes"))?,
        created_at: ts(row, &c("created_at"))?,
        updated_at: ts(row, &c("updated_at"))?,
    })
}

/// The columns [`event`] reads; lists leave the request out.
macro_rules! event_columns {
    () => {
        "id, workspace_id, source_id, contact_id, name, properties, occurred_at, received_at, \
         idempotency_key, outcome"
    };
}
pub(crate) use event_columns;

/// An event; with `with_request`, the row also has `method`, `content_type` and `body`.
pub(crate) fn event(row: &PgRow, with_request: bool) -> StoreResult<Event> {
    let request = if with_request {
        get::<Option<String>>(row, "method")?
            .map(|method| -> StoreResult<RequestRecord> {
                Ok(RequestRecord {
                    method,
                    content_type: get(row, "content_type")?,
                    body: get::<Option<Vec<u8>>>(row, "body")?.unwrap_or_default(),
                })
            })
            .transpose()?
    } else {
        None
    };
    Ok(Event { request, ..event_at(row, "")? })
}

/// An event without its request, from columns named `{prefix}id`, ... (joined queries).
pub(crate) fn event_at(row: &PgRow, prefix: &str) -> StoreResult<Event> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(Event {
        id: EventId::from_uuid(uuid(row, &c("id"))?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, &c("workspace_id"))?),
        source_id: opt_uuid(row, &c("source_id"))?.map(SourceId::from_uuid),
        contact_id: opt_uuid(row, &c("contact_id"))?.map(ContactId::from_uuid),
        name: get(row, &c("name"))?,
        properties: object(row, &c("properties"))?,
        occurred_at: ts(row, &c("occurred_at"))?,
        received_at: ts(row, &c("received_at"))?,
        idempotency_key: get(row, &c("idempotency_key"))?,
        request: None,
        outcome: get::<Json<EventOutcome>>(row, &c("outcome"))?.0,
    })
}
