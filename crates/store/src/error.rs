//! The store's one error type: what callers can act on, with the cause kept.

use std::error::Error as StdError;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist in this workspace (which includes: it exists in another).
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// A unique constraint refused the write; `constraint` names it so the API can point at a
    /// field.
    #[error("conflicts with an existing record ({constraint})")]
    Conflict { constraint: String },
    /// The change would take a contact past an attribute limit; nothing was written.
    #[error(transparent)]
    OverLimit(#[from] herald_domain::contact::AttributeError),
    /// The job's lease expired and the job was claimed again; this run's result is discarded.
    #[error("the lease on this job was lost")]
    LeaseLost,
    /// The database is overloaded or locked; the call may succeed if repeated later.
    #[error("the database is busy")]
    Busy(#[source] Box<dyn StdError + Send + Sync>),
    /// A stored value could not be read back into its domain type.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Anything else (connection lost, I/O error, bug).
    #[error("database error")]
    Other(#[source] Box<dyn StdError + Send + Sync>),
}

impl StoreError {
    /// Whether repeating the call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Busy(_) | StoreError::Other(_))
    }
}
