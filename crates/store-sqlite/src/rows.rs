//! Reading rows back into domain types. SQLite keeps ids as 16-byte BLOBs and instants as
//! integer milliseconds.

use herald_domain::job::JobState;
use herald_domain::{ApiKey, ApiKeyName, Job, Timestamp, Workspace, WorkspaceName};
use herald_store::secrets::{Document, SecretKeys};
use herald_store::{StoreError, StoreResult};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

pub(crate) fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

pub(crate) fn get<'r, T>(row: &'r SqliteRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(|e| corrupt(column, e))
}

pub(crate) fn uuid(row: &SqliteRow, column: &str) -> StoreResult<Uuid> {
    get(row, column)
}

pub(crate) fn ts(row: &SqliteRow, column: &str) -> StoreResult<Timestamp> {
    get::<i64>(row, column).map(Timestamp::from_unix_millis)
}

pub(crate) fn opt_ts(row: &SqliteRow, column: &str) -> StoreResult<Option<Timestamp>> {
    get::<Option<i64>>(row, column).map(|v| v.map(Timestamp::from_unix_millis))
}

/// A JSON document stored as text in `column` of the row, with its secrets (a `kind`
/// document, sealed for the column named `sealed_for`) opened.
pub(crate) fn document(
    row: &SqliteRow,
    column: &str,
    keys: &SecretKeys,
    kind: Document,
    sealed_for: &'static str,
) -> StoreResult<serde_json::Value> {
    let mut doc = serde_json::from_str(&get::<String>(row, column)?).map_err(|e| corrupt(sealed_for, e))?;
    keys.open_document(kind, sealed_for, &mut doc)?;
    Ok(doc)
}

pub(crate) fn workspace(row: &SqliteRow) -> StoreResult<Workspace> {
    let name: String = get(row, "name")?;
    Ok(Workspace {
        id: herald_domain::WorkspaceId::from_uuid(uuid(row, "id")?),
        name: WorkspaceName::parse(&name).map_err(|e| corrupt("workspaces.name", e))?,
        timezone: get(row, "timezone")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn api_key(row: &SqliteRow) -> StoreResult<ApiKey> {
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

pub(crate) fn job(row: &SqliteRow, keys: &SecretKeys) -> StoreResult<Job> {
    let state: String = get(row, "state")?;
    let kind: String = get(row, "kind")?;
    let mut payload = serde_json::from_str(&get::<String>(row, "payload")?).map_err(|e| corrupt("jobs.payload", e))?;
    keys.open_job(&kind, &mut payload)?;
    Ok(Job {
        id: herald_domain::JobId::from_uuid(uuid(row, "id")?),
        workspace_id: herald_domain::WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        kind,
        payload,
        state: state.parse::<JobState>().map_err(|e| corrupt("jobs.state", e))?,
        run_at: ts(row, "run_at")?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?).map_err(|e| corrupt("jobs.attempts", e))?,
        max_attempts: u32::try_from(get::<i64>(row, "max_attempts")?).map_err(|e| corrupt("jobs.max_attempts", e))?,
        last_error: get(row, "last_error")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn json_object(row: &SqliteRow, column: &str) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(column, e))
}

pub(crate) fn contact(row: &SqliteRow) -> StoreResult<herald_domain::Contact> {
    contact_at(row, "")
}

/// A contact from columns named `{prefix}id`, `{prefix}email`, ... (joined queries).
pub(crate) fn contact_at(row: &SqliteRow, prefix: &str) -> StoreResult<herald_domain::Contact> {
    use herald_domain::{EmailAddress, Phone, UserId};
    let c = |name: &str| format!("{prefix}{name}");
    Ok(herald_domain::Contact {
        id: herald_domain::ContactId::from_uuid(uuid(row, &c("id"))?),
        workspace_id: herald_domain::WorkspaceId::from_uuid(uuid(row, &c("workspace_id"))?),
        email: get::<Option<String>>(row, &c("email"))?.map(EmailAddress::from_stored),
        user_id: get::<Option<String>>(row, &c("user_id"))?.map(UserId::from_stored),
        phone: get::<Option<String>>(row, &c("phone"))?.map(Phone::from_stored),
        name: get(row, &c("name"))?,
        first_name: get(row, &c("first_name"))?,
        last_name: get(row, &c("last_name"))?,
        attributes: json_object(row, &c("attributes"))?,
        created_at: ts(row, &c("created_at"))?,
        updated_at: ts(row, &c("updated_at"))?,
    })
}

pub(crate) fn source(row: &SqliteRow) -> StoreResult<herald_domain::Source> {
    let kind: String = get(row, "kind")?;
    let mapping: Option<String> = get(row, "mapping")?;
    let rate: Option<i64> = get(row, "rate_limit_per_second")?;
    Ok(herald_domain::Source {
        id: herald_domain::SourceId::from_uuid(uuid(row, "id")?),
        workspace_id: herald_domain::WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        kind: kind.parse().map_err(|e: String| corrupt("sources.kind", e))?,
        enabled: get(row, "enabled")?,
        token_hint: get(row, "token_hint")?,
        previous_token_expires_at: opt_ts(row, "previous_token_expires_at")?,
        rate_limit_per_second: rate
            .map(u32::try_from)
            .transpose()
            .map_err(|e| corrupt("sources.rate_limit_per_second", e))?,
        mapping: mapping.map(|m| serde_json::from_str(&m)).transpose().map_err(|e| corrupt("sources.mapping", e))?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// An event row; the request body is read only when `with_request`.
pub(crate) fn event(row: &SqliteRow, with_request: bool) -> StoreResult<herald_domain::Event> {
    let outcome: String = get(row, "outcome")?;
    let request = if with_request {
        let method: Option<String> = get(row, "method")?;
        match method {
            Some(method) => Some(herald_domain::RequestRecord {
                method,
                content_type: get(row, "content_type")?,
                body: get::<Option<Vec<u8>>>(row, "body")?.unwrap_or_default(),
            }),
            None => None,
        }
    } else {
        None
    };
    Ok(herald_domain::Event { request, ..event_at(row, "", &outcome)? })
}

/// An event without its request, from columns named `{prefix}id`, ... (joined queries).
pub(crate) fn event_at(row: &SqliteRow, prefix: &str, outcome: &str) -> StoreResult<herald_domain::Event> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(herald_domain::Event {
        id: herald_domain::EventId::from_uuid(uuid(row, &c("id"))?),
        workspace_id: herald_domain::WorkspaceId::from_uuid(uuid(row, &c("workspace_id"))?),
        source_id: get::<Option<uuid::Uuid>>(row, &c("source_id"))?.map(herald_domain::SourceId::from_uuid),
        contact_id: get::<Option<uuid::Uuid>>(row, &c("contact_id"))?.map(herald_domain::ContactId::from_uuid),
        name: get(row, &c("name"))?,
        properties: json_object(row, &c("properties"))?,
        occurred_at: ts(row, &c("occurred_at"))?,
        received_at: ts(row, &c("received_at"))?,
        idempotency_key: get(row, &c("idempotency_key"))?,
        request: None,
        outcome: serde_json::from_str(outcome).map_err(|e| corrupt("events.outcome", e))?,
    })
}
