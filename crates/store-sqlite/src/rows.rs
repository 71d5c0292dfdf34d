//! Reading rows back into domain types. SQLite keeps ids as 16-byte BLOBs and instants as
//! integer milliseconds.

use herald_domain::job::JobState;
use herald_domain::{ApiKey, ApiKeyName, Job, Timestamp, Workspace, WorkspaceName};
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

pub(crate) fn workspace(row: &SqliteRow) -> StoreResult<Workspace> {
    let name: String = get(row, "name")?;
    Ok(Workspace {
        id: herald_domain::WorkspaceId::from_uuid(uuid(row, "id")?),
        name: WorkspaceName::parse(&name).map_err(|e| corrupt("workspaces.name", e))?,
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

pub(crate) fn job(row: &SqliteRow) -> StoreResult<Job> {
    let state: String = get(row, "state")?;
    let payload: String = get(row, "payload")?;
    Ok(Job {
        id: herald_domain::JobId::from_uuid(uuid(row, "id")?),
        workspace_id: herald_domain::WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        kind: get(row, "kind")?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt("jobs.payload", e))?,
        state: state
            .parse::<JobState>()
            .map_err(|e| corrupt("jobs.state", e))?,
        run_at: ts(row, "run_at")?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?)
            .map_err(|e| corrupt("jobs.attempts", e))?,
        max_attempts: u32::try_from(get::<i64>(row, "max_attempts")?)
            .map_err(|e| corrupt("jobs.max_attempts", e))?,
        last_error: get(row, "last_error")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}
