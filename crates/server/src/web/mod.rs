//! The thin web layer every slice shares: the one JSON error shape ([`error`]), bearer
//! authentication of the admin API ([`auth`]) and its keys ([`api_keys`]), list paging ([`list`]), the UI's sessions,
//! CSRF and login ([`session`], [`login`]), the page frame and form helpers ([`page`]) and the
//! embedded assets. It knows no pipeline stage: slices build on it, never the other way round.

pub mod api_keys;
pub(crate) mod assets;
pub mod auth;
pub mod error;
pub mod first_run;
pub mod list;
pub(crate) mod login;
pub mod numbers;
pub mod page;
pub mod secret;
pub mod session;
pub mod throttle;
pub mod users;

use std::sync::Arc;

use herald_store::SharedStore;

use crate::clock::SharedClock;
pub use page::*;
pub use session::Session;

/// What the web layer itself uses: sessions and logins read the store, the clock and the
/// workspace secrets; cookies are `Secure` when the public URL is https.
#[derive(Clone, Debug)]
pub struct WebState {
    pub store: SharedStore,
    pub clock: SharedClock,
    /// Base URL for URLs handed out to others, without a trailing slash.
    pub public_url: Arc<str>,
    /// Each workspace's secret, from which session keys are derived.
    pub secrets: Arc<secret::WorkspaceSecrets>,
    /// Wrong web UI passwords per account, to slow guessing.
    pub login_throttle: Arc<throttle::LoginThrottle>,
}

/// For optional fields of PATCH bodies: tells "absent" (outer `None`, with `#[serde(default)]`)
/// from "null" (`Some(None)`).
pub fn present<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Writing CSV into memory fails only if the writer is broken: an internal error, logged here.
pub fn csv_failed(e: impl std::fmt::Display) -> error::ApiError {
    tracing::error!(error = %e, "writing CSV");
    error::ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; the server log has details",
    )
}

/// A CSV file the browser downloads as `name`.
pub fn csv_file(name: &str, csv: Vec<u8>) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let content_type = HeaderValue::from_static("text/csv; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type), (header::CONTENT_DISPOSITION, disposition)], csv).into_response()
}
