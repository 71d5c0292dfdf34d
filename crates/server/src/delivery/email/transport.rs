//! The transport a workspace sends with: its own SMTP relay or email provider (set through the
//! API), else the node's relay (settings), else the embedded outbox. SMTP clients keep pooled
//! connections, so they are built once per settings version and shared.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_domain::{Timestamp, WorkspaceId};
use herald_email::smtp::{Security, SmtpClient, SmtpSettings};
use herald_store::email::TransportRecord;
use herald_store::{SharedStore, StoreError, StoreResult};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::providers::{Provider, ProviderConfig, ProviderSecrets};

/// How long a workspace's transport is used before its settings are read again (a change
/// made through another node is seen within this).
const TRANSPORT_TTL: Duration = Duration::from_secs(5);

/// An SMTP relay's settings as stored and shown (the password is kept apart, write-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's host name or IP address.
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// `starttls` (port 587), `tls` (implicit TLS, port 465) or `none` (a relay on this host).
    #[serde(default = "default_security")]
    #[schema(value_type = String, example = "starttls")]
    pub security: SecurityName,
    #[serde(default)]
    pub username: Option<String>,
    /// Connections kept open to the relay (and so sends in flight).
    #[serde(default = "default_pool")]
    pub pool_size: u32,
    /// The deadline of one send, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// The name sent in `EHLO`; the machine's host name when absent.
    #[serde(default)]
    pub hello_name: Option<String>,
    /// Accept any TLS certificate (self-signed relays in tests only).
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// The most messages per second to this relay; no limit when absent.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// The most messages per second from one sending domain; no limit when absent.
    #[serde(default)]
    pub domain_rate_per_second: Option<u32>,
}

/// [`Security`] by name, for JSON and settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityName {
    None,
    Starttls,
    Tls,
}

impl<'de> Deserialize<'de> for SecurityName {
    // By hand, so that the error names the field even inside flattened bodies.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        match name.as_str() {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::Starttls),
            "tls" => Ok(Self::Tls),
            other => Err(serde::de::Error::custom(format!("security must be starttls, tls or none, not {other:?}"))),
        }
    }
}

fn default_port() -> u16 {
    587
}
fn default_security() -> SecurityName {
    SecurityName::Starttls
}
fn default_pool() -> u32 {
    8
}
fn default_timeout() -> u64 {
    30
}

impl SmtpConfig {
    /// Checks the values a relay cannot work with; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.host.trim().is_empty() || self.host.contains(char::is_whitespace) {
            return Err(("host", "must be a host name or IP address".into()));
        }
        if self.port == 0 {
            return Err(("port", "must be between 1 and 65535".into()));
        }
        if !(1..=100).contains(&self.pool_size) {
            return Err(("pool_size", "must be between 1 and 100".into()));
        }
        if !(1..=600).contains(&self.timeout_secs) {
            return Err(("timeout_secs", "must be between 1 and 600 seconds".into()));
        }
        if self.rate_per_second == Some(0) {
            return Err(("rate_per_second", "must be at least 1 (leave it out for no limit)".into()));
        }
        if self.domain_rate_per_second == Some(0) {
            return Err(("domain_rate_per_second", "must be at least 1 (leave it out for no limit)".into()));
        }
        Ok(())
    }

    /// The client settings, with the password kept apart.
    pub fn client_settings(&self, password: Option<&str>) -> SmtpSettings {
        SmtpSettings {
            host: self.host.clone(),
            port: self.port,
            security: match self.security {
                SecurityName::None => Security::None,
                SecurityName::Starttls => Security::StartTls,
                SecurityName::Tls => Security::Tls,
            },
            username: self.username.clone(),
            password: password.map(str::to_owned),
            pool_size: self.pool_size,
            timeout: Duration::from_secs(self.timeout_secs),
            hello_name: self.hello_name.clone(),
            accept_invalid_certs: self.accept_invalid_certs,
        }
    }
}

/// A node-wide relay from the settings, with its password.
#[derive(Clone)]
pub struct NodeSmtp {
    pub config: SmtpConfig,
    pub password: Option<String>,
}

impl std::fmt::Debug for NodeSmtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSmtp")
            .field("config", &self.config)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Where a workspace's messages go.
#[derive(Debug, Clone)]
pub enum Transport {
    /// The embedded outbox: handing a message to it is sending it.
    Outbox,
    Smtp {
        client: SmtpClient,
        config: SmtpConfig,
    },
    /// An email provider's HTTP API.
    Provider(Arc<Provider>),
}

#[derive(Debug)]
struct Cached {
    read_at: Instant,
    /// The stored settings' version (`None`: the node's relay or the outbox).
    version: Option<Timestamp>,
    transport: Transport,
}

/// Transports by workspace, re-read every few seconds, rebuilt only when changed.
#[derive(Debug)]
pub struct TransportCache {
    node: Transport,
    workspaces: Mutex<HashMap<WorkspaceId, Cached>>,
}

impl TransportCache {
    pub fn new(node: Option<NodeSmtp>) -> anyhow::Result<Self> {
        let node = match node {
            Some(NodeSmtp { config, password }) => {
                let client = SmtpClient::new(&config.client_settings(password.as_deref()))?;
                Transport::Smtp { client, config }
            }
            None => Transport::Outbox,
        };
        Ok(Self { node, workspaces: Mutex::default() })
    }

    /// Whether the node itself has a relay.
    pub fn node_smtp(&self) -> bool {
        matches!(self.node, Transport::Smtp { .. })
    }

    pub async fn get(&self, store: &SharedStore, workspace: WorkspaceId) -> StoreResult<Transport> {
        let known = {
            let cache = self.workspaces.lock().unwrap_or_else(|e| e.into_inner());
            cache.get(&workspace).map(|c| (c.read_at.elapsed() < TRANSPORT_TTL, c.version, c.transport.clone()))
        };
        if let Some((true, _, transport)) = known {
            return Ok(transport);
        }
        let record = store.transport(workspace).await?;
        let version = record.as_ref().map(|r| r.updated_at);
        let transport = match (known, record) {
            // Unchanged: keep the client and its open connections.
            (Some((_, cached, transport)), _) if cached == version => transport,
            (_, Some(record)) => build(&record)?,
            (_, None) => self.node.clone(),
        };
        self.workspaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(workspace, Cached { read_at: Instant::now(), version, transport: transport.clone() });
        Ok(transport)
    }

    pub fn forget(&self, workspace: WorkspaceId) {
        self.workspaces.lock().unwrap_or_else(|e| e.into_inner()).remove(&workspace);
    }
}

/// A client for a stored transport. Settings with a `kind` other than `smtp` name a provider;
/// SMTP settings are stored without one.
pub fn build(record: &TransportRecord) -> StoreResult<Transport> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("transports.settings: {e}"));
    if let Some(config) = provider_config(&record.settings) {
        let config = config.map_err(corrupt)?;
        let secrets = ProviderSecrets::from_stored(record.password.as_deref());
        return Ok(Transport::Provider(Arc::new(Provider { config, secrets })));
    }
    let config: SmtpConfig = serde_json::from_value(record.settings.clone()).map_err(corrupt)?;
    let client = SmtpClient::new(&config.client_settings(record.password.as_deref()))
        .map_err(|e| StoreError::Corrupt(format!("transports.settings: {e}")))?;
    Ok(Transport::Smtp { client, config })
}

/// The provider stored settings name, if they name one (`None`: SMTP settings).
pub fn provider_config(settings: &serde_json::Value) -> Option<Result<ProviderConfig, serde_json::Error>> {
    match settings.get("kind").and_then(|k| k.as_str()) {
        None | Some("smtp") => None,
        Some(_) => Some(serde_json::from_value(settings.clone())),
    }
}
