//! Email at work: the delivery job that hands queued messages to SMTP (or holds, suppresses
//! or fails them), sending domains (DKIM keys, DNS records, verification and periodic
//! re-verification), signed unsubscribe links, open and click tracking, and the transport each
//! workspace sends with.

pub mod activity;
pub mod api;
pub mod bounces;
mod deliver;
pub mod domains;
pub mod numbers;
pub(crate) mod pages;
pub mod providers;
mod refusals;
pub mod send;
pub mod service;
pub mod tracking;
pub mod transport;
pub(crate) mod unsubscribe_page;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_domain::signed::unsubscribe;
use herald_domain::{ContactId, TopicId, WorkspaceId};
use herald_email::dkim::{DkimAlgorithm, DkimKey, DkimSigner};
use herald_email::dns::DnsVerifier;
use herald_store::{SharedStore, StoreResult};

use crate::clock::SharedClock;
use crate::ingest::limiter::Limiter;
use crate::web::secret::WorkspaceSecrets;
use transport::{Transport, TransportCache};

/// What email's API and pages use.
#[derive(Clone, Debug)]
pub struct EmailState {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub email: Arc<Email>,
}

/// The `mailto:` target of `List-Unsubscribe`: a message to the sender asking to be removed
/// (Herald receives no mail; the URL target is the one that acts at once).
pub fn unsubscribe_mailto(from_address: &str) -> String {
    format!("mailto:{from_address}?subject=unsubscribe")
}

/// The headers an email carries besides the usual ones, as shown on the message record.
pub fn list_headers(unsubscribe_url: &str, from_address: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut headers = serde_json::Map::new();
    let value = format!("<{unsubscribe_url}>, <{}>", unsubscribe_mailto(from_address));
    headers.insert("List-Unsubscribe".into(), value.into());
    headers.insert("List-Unsubscribe-Post".into(), "List-Unsubscribe=One-Click".into());
    headers
}

/// The DKIM signer of a sending domain, from its stored key.
pub fn signer(domain: &herald_domain::SendingDomain, key: &str) -> Result<DkimSigner, String> {
    let algorithm = match domain.algorithm.as_str() {
        "ed25519" => DkimAlgorithm::Ed25519,
        _ => DkimAlgorithm::Rsa2048,
    };
    let unusable = |e: herald_email::message::EmailError| format!("the DKIM key of {} is unusable: {e}", domain.name);
    let key = DkimKey::from_parts(algorithm, key).map_err(unusable)?;
    DkimSigner::new(&domain.name, &domain.selector, key).map_err(unusable)
}

/// The email settings of a node (`[email]` in the settings file, or flags).
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// The transport of workspaces without one of their own; `None`: the embedded outbox.
    pub smtp: Option<transport::NodeSmtp>,
    /// The DNS server domain checks ask; `None`: the system's resolver.
    pub dns_resolver: Option<SocketAddr>,
    /// The SPF mechanism that covers this node's sending IPs (`include:…` or `ip4:…`).
    pub spf: Option<String>,
    /// How often verified and pending domains are checked again.
    pub recheck: Duration,
    /// The most messages per second this node sends, over all workspaces; `None`: no limit.
    pub rate_per_second: Option<u32>,
    /// URL prefixes besides `https://sns.<region>.amazonaws.com/` from which SNS signing
    /// certificates may be fetched and subscriptions confirmed (tests, private deployments).
    pub sns_cert_prefixes: Vec<String>,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            smtp: None,
            dns_resolver: None,
            spf: None,
            recheck: Duration::from_secs(6 * 3600),
            rate_per_second: None,
            sns_cert_prefixes: Vec::new(),
        }
    }
}

/// The email side of a node.
#[derive(Debug)]
pub struct Email {
    store: SharedStore,
    clock: SharedClock,
    settings: EmailSettings,
    public_url: Arc<str>,
    dns: DnsVerifier,
    /// The secrets that sign unsubscribe and tracking links, by workspace.
    secrets: Arc<WorkspaceSecrets>,
    transports: TransportCache,
    /// Provider API calls, SNS certificates and subscription confirmations go through the
    /// outbound webhook client, under its address policy.
    http: herald_webhook::client::WebhookClient,
    /// Send rates: the node's (key `""`) and each sending domain's.
    limits: Limiter<String>,
    /// Relays and recipient domains that asked to slow down.
    throttles: refusals::Throttles,
    /// Parsed DKIM keys by workspace and domain, with the stored key they came from.
    signers: Mutex<HashMap<(WorkspaceId, String), (String, DkimSigner)>>,
    /// Commits reported activities (bounces, complaints, opens, clicks) in groups.
    activities: activity::Committer,
    /// Commits tracked opens and clicks in groups.
    hits: tracking::hits::Committer,
    /// SNS signing certificates, by URL.
    sns_certificates: providers::sns::Certificates,
}

impl Email {
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        settings: EmailSettings,
        public_url: &str,
        secrets: Arc<WorkspaceSecrets>,
        committers: usize,
        http: herald_webhook::client::WebhookClient,
    ) -> anyhow::Result<Self> {
        let dns = DnsVerifier::new(settings.dns_resolver, Duration::from_secs(5))?;
        let transports = TransportCache::new(settings.smtp.clone())?;
        Ok(Self {
            activities: activity::committer(store.clone(), clock.clone(), committers),
            hits: tracking::hits::committer(store.clone(), clock.clone(), committers),
            store,
            clock,
            settings,
            public_url: public_url.trim_end_matches('/').into(),
            dns,
            secrets,
            transports,
            http,
            limits: Limiter::default(),
            throttles: refusals::Throttles::default(),
            signers: Mutex::default(),
            sns_certificates: providers::sns::Certificates::default(),
        })
    }

    pub fn settings(&self) -> &EmailSettings {
        &self.settings
    }

    /// The workspace's secret for unsubscribe and tracking links, made on first use.
    pub async fn secret(&self, workspace: WorkspaceId) -> StoreResult<Arc<[u8]>> {
        self.secrets.get(workspace).await
    }

    /// The link to `contact`'s preference page in mail about `topic` (`{{ unsubscribe_url }}`
    /// and `List-Unsubscribe`, whose one-click POST leaves that topic, or everything when
    /// there is none).
    pub async fn unsubscribe_url(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
        topic: Option<TopicId>,
    ) -> StoreResult<String> {
        let secret = self.secret(workspace).await?;
        Ok(format!("{}/unsubscribe/{}", self.public_url, unsubscribe::token(&secret, workspace, contact, topic)))
    }

    /// Whether messages of a workspace (with or without an SMTP transport of its own) go to
    /// SMTP rather than the outbox.
    pub fn sends_smtp(&self, workspace_smtp: bool) -> bool {
        workspace_smtp || self.transports.node_smtp()
    }

    /// The transport `workspace` sends with now.
    pub async fn transport(&self, workspace: WorkspaceId) -> StoreResult<Transport> {
        self.transports.get(&self.store, workspace).await
    }

    /// The signer of a verified domain, parsed once per stored key.
    pub fn signer(&self, domain: &herald_domain::SendingDomain, key: &str) -> Result<DkimSigner, String> {
        let cache_key = (domain.workspace_id, domain.name.clone());
        if let Some((stored, signer)) = self.signers.lock().unwrap_or_else(|e| e.into_inner()).get(&cache_key)
            && stored == key
        {
            return Ok(signer.clone());
        }
        let signer = signer(domain, key)?;
        self.signers.lock().unwrap_or_else(|e| e.into_inner()).insert(cache_key, (key.to_owned(), signer.clone()));
        Ok(signer)
    }

    /// The secret URL on which `workspace` receives `provider`'s notifications.
    pub async fn events_url(&self, workspace: WorkspaceId, provider: providers::ProviderKind) -> StoreResult<String> {
        let secret = self.secret(workspace).await?;
        let token = providers::token::token(&secret, workspace, provider);
        Ok(format!("{}/email-events/{}/{token}", self.public_url, provider.as_str()))
    }

    /// Forgets the cached transport of `workspace` (its settings changed here).
    pub fn forget_transport(&self, workspace: WorkspaceId) {
        self.transports.forget(workspace);
    }
}
