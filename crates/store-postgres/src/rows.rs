//! Reading rows back into domain types. PostgreSQL keeps ids as `uuid`, instants as
//! `timestamptz` (decoded through `time::OffsetDateTime`) and job payloads as `jsonb`.

use herald_domain::job::JobState;
use herald_domain::{ApiKey, ApiKeyName, Job, Timestamp, Workspace, WorkspaceName};
use herald_store::{StoreError, StoreResult};
use sqlx::Row;
use sqlx::postgres::PgRow;
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

pub(crate) fn job(row: &PgRow) -> StoreResult<Job> {
    let state: String = get(row, "state")?;
    Ok(Job {
        id: herald_domain::JobId::from_uuid(uuid(row, "id")?),
        workspace_id: herald_domain::WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        kind: get(row, "kind")?,
        payload: get(row, "payload")?,
        state: state
            .parse::<JobState>()
            .map_err(|e| corrupt("jobs.state", e))?,
        run_at: ts(row, "run_at")?,
        attempts: count(row, "attempts")?,
        max_attempts: count(row, "max_attempts")?,
        last_error: get(row, "last_error")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}
