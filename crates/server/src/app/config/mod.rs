//! Settings: typed, validated once at start-up, with no side effects while loading.
//!
//! Each setting is looked up in order: flag, environment variable (both via clap), the TOML
//! file, the default. A bad value becomes a `SettingError` naming the setting the way the
//! operator wrote it and saying what is wrong, printed as one line before exiting.
//!
//! Here are the settings as the commands receive them; `loader` reads and checks them in
//! that order, and `values` parses the values that are more than a number or a word (the
//! database URL, secret keys, the SMTP relay, the public URL). Which settings exist, with
//! their flags, variables and defaults, is the table in `app::settings`.

mod loader;
mod values;

pub use loader::Loader;
pub use values::{DatabaseUrl, SecretKey};

use std::net::SocketAddr;
use std::time::Duration;

use herald_domain::ApiToken;

use crate::delivery::email::EmailSettings;
use crate::delivery::webhooks::WebhookSettings;

/// A setting that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct SettingError {
    /// How the operator can set it, e.g. `HERALD_BIND (--bind)` or `bind in herald.toml`.
    pub setting: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings every command needs.
#[derive(Debug, Clone)]
pub struct CommonSettings {
    pub database: DatabaseUrl,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// `HERALD_SECRET_KEY`; `None`: the SQLite key file (`crate::app::db`).
    pub secret_key: Option<SecretKey>,
    /// `HERALD_SECRET_KEY_PREVIOUS`.
    pub previous_secret_keys: Vec<SecretKey>,
}

/// Settings of `herald serve`.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub bind: SocketAddr,
    /// Without a trailing slash. `None`: derived from the bound address once listening.
    pub public_url: Option<String>,
    pub admin_token: Option<ApiToken>,
    pub worker: WorkerSettings,
    pub shutdown_timeout: Duration,
    /// Largest inbound webhook body in bytes (a batch may be 16 times this).
    pub ingest_body_limit: usize,
    /// How long a connection may take to send a request's headers.
    pub header_timeout: Duration,
    /// The operator's connection cap; `None`: derived from the open-file limit at start.
    pub max_connections: Option<usize>,
    pub email: EmailSettings,
    /// Where the bounce listener takes mail; `None`: off.
    pub bounce_smtp_bind: Option<SocketAddr>,
    pub webhooks: WebhookSettings,
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub enabled: bool,
    pub concurrency: u32,
    pub lease: Duration,
    pub poll: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self { enabled: true, concurrency: 128, lease: Duration::from_secs(30), poll: Duration::from_secs(1) }
    }
}
