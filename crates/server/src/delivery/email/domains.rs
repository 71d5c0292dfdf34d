//! Sending domains: a new domain gets a DKIM key and the DNS records to publish; a check asks
//! DNS for them and records what it found per record. Verified domains are checked again
//! periodically, and a record that disappears leaves a warning (the domain stays verified, so
//! a DNS hiccup does not stop mail; the warning says what to fix).

use std::sync::Arc;

use herald_domain::{DomainId, DomainStatus, SendingDomain, WorkspaceId};
use herald_email::dkim::{DkimAlgorithm, DkimKey};
use herald_email::dns::{self, CheckStatus, DnsRecord, RecordCheck, RecordsSpec};
use herald_store::email::{DomainCheck, NewDomain};
use herald_store::{StoreError, StoreResult};
use tokio_util::sync::CancellationToken;

use super::Email;

/// Domains checked per round of the periodic re-check.
const RECHECK_BATCH: u32 = 100;

/// A domain to add, as the API received it.
#[derive(Debug, Clone)]
pub struct DomainRequest {
    pub name: String,
    pub algorithm: DkimAlgorithm,
    pub selector: Option<String>,
    /// Where `bounces.<domain>` should point, when the operator runs a bounce host.
    pub return_path_target: Option<String>,
}

/// Why a domain cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum AddDomainError {
    /// The field and what is wrong with it.
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Email {
    /// Adds a domain with a fresh DKIM key; it is `pending` until a check finds its records.
    pub async fn add_domain(
        &self,
        workspace: WorkspaceId,
        request: DomainRequest,
    ) -> Result<SendingDomain, AddDomainError> {
        let name = dns::normalize_domain(&request.name).map_err(|e| AddDomainError::Invalid("name", e.to_string()))?;
        let now = self.clock.now();
        let selector = match request.selector {
            Some(selector) => {
                dns::check_selector(&selector).map_err(|e| AddDomainError::Invalid("selector", e.to_string()))?;
                selector.to_ascii_lowercase()
            }
            // Dated, so a later key can be published beside this one before switching.
            None => format!("herald{}", now.to_offset_date_time().format(&DATE).unwrap_or_default()),
        };
        let target = match request.return_path_target {
            Some(target) => Some(
                dns::normalize_domain(&target)
                    .map_err(|e| AddDomainError::Invalid("return_path_target", e.to_string()))?,
            ),
            None => None,
        };
        let algorithm = request.algorithm;
        // RSA key generation takes a while: off the async threads.
        let key = tokio::task::spawn_blocking(move || DkimKey::generate(algorithm))
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        let dkim_txt = key.dns_txt_value();
        let records = dns::records(&RecordsSpec {
            domain: &name,
            selector: &selector,
            dkim_txt: &dkim_txt,
            spf: self.settings.spf.as_deref(),
            return_path: target.as_deref().map(|t| ("bounces", t)),
            dmarc_rua: None,
        });
        let new = NewDomain {
            name,
            selector,
            algorithm: algorithm.as_str().to_owned(),
            private_key: key.private_key().to_owned(),
            records: serde_json::to_value(&records).map_err(|e| StoreError::Other(Box::new(e)))?,
        };
        Ok(self.store.create_domain(workspace, new, now).await?)
    }

    /// Checks a domain's records by DNS and records the result; a domain that becomes verified
    /// releases its held messages. Returns the domain and how many messages were released.
    pub async fn verify_domain(&self, workspace: WorkspaceId, id: DomainId) -> StoreResult<(SendingDomain, u64)> {
        let domain = self.store.get_domain(workspace, id).await?;
        let records: Vec<DnsRecord> = serde_json::from_value(domain.records.clone())
            .map_err(|e| StoreError::Corrupt(format!("domains.records: {e}")))?;
        let checks = self.dns.check(&records).await;
        let check = judge(&domain, &checks);
        if let Some(warning) = &check.warning {
            tracing::warn!(domain = %domain.name, workspace = %workspace, warning, "sending domain check");
        }
        let (domain, released) = self.store.record_domain_check(workspace, id, &check, self.clock.now()).await?;
        if released > 0 {
            tracing::info!(domain = %domain.name, released, "sending domain verified; held messages released");
        }
        Ok((domain, released))
    }

    /// Checks every domain again once per `recheck` interval until shutdown.
    pub async fn run_rechecks(self: Arc<Self>, shutdown: CancellationToken) {
        let every = self.settings.recheck;
        loop {
            let before = self.clock.now() - every;
            match self.store.domains_to_check(before, RECHECK_BATCH).await {
                Ok(due) => {
                    for (workspace, id) in due {
                        if let Err(e) = self.verify_domain(workspace, id).await {
                            tracing::warn!(domain = %id, error = %e, "cannot re-check a sending domain");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list sending domains to re-check"),
            }
            tokio::select! {
                () = tokio::time::sleep(every.min(std::time::Duration::from_secs(60))) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}

const DATE: &[time::format_description::FormatItem<'static>] = time::macros::format_description!("[year][month]");

/// The domain's status after `checks`. A required record that DNS could not be asked about
/// (a timeout) changes nothing; a verified domain whose record no longer matches stays
/// verified with a warning.
fn judge(domain: &SendingDomain, checks: &[RecordCheck]) -> DomainCheck {
    let value = serde_json::to_value(checks).unwrap_or_default();
    let required: Vec<&RecordCheck> = checks.iter().filter(|c| c.required).collect();
    let unanswered = required.iter().any(|c| c.status == CheckStatus::Error);
    let wrong: Vec<String> = required
        .iter()
        .filter(|c| matches!(c.status, CheckStatus::Missing | CheckStatus::Mismatch))
        .map(|c| format!("{} {} record at {}: {}", label(c.purpose), label(c.record_type), c.name, c.detail))
        .collect();
    let (status, warning) = if dns::verified(checks) {
        (DomainStatus::Verified, None)
    } else if domain.status == DomainStatus::Verified {
        let what = if wrong.is_empty() { "DNS did not answer".to_owned() } else { wrong.join("; ") };
        (DomainStatus::Verified, Some(format!("a record that had matched no longer does: {what}")))
    } else if unanswered && wrong.is_empty() {
        (domain.status, Some("DNS did not answer for a required record; try again".to_owned()))
    } else {
        (DomainStatus::Failed, None)
    };
    DomainCheck { status, checks: value, warning }
}

/// An enum's JSON name (`dkim`, `TXT`).
fn label(value: impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
