//! Endpoint health: an endpoint whose every attempt has failed for the disable period (5 days
//! by default) is disabled, with the reason recorded and an `endpoint_disabled` event in the
//! event log; its calls then fail at once, without a request, until someone enables it.
//!
//! The failure streak lives in the database (`webhook_endpoints.failing_since`), so it is
//! shared by every node; each node writes only the streak's start, a success at most once a
//! minute per endpoint, and the disabling itself, never a row per attempt.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_domain::{EventId, Timestamp, WorkspaceId, endpoint_disabled_event};
use herald_store::{SharedStore, StoreResult};

use crate::clock::SharedClock;

/// How long every attempt must have failed before an endpoint is disabled, by default.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);
/// How often a node re-reads which endpoints are disabled (other nodes may disable or enable).
const DISABLED_REFRESH: Duration = Duration::from_secs(10);
/// How often a node records that an endpoint answers, when it was not failing.
const SUCCESS_EVERY: Duration = Duration::from_secs(60);

type Key = (WorkspaceId, String);

/// What one node knows of one endpoint's streak.
#[derive(Debug, Clone, Copy, Default)]
struct Streak {
    /// The stored start of the failure streak, once this node has seen it.
    failing_since: Option<Timestamp>,
    /// When this node last recorded a success.
    success_recorded: Option<Timestamp>,
}

#[derive(Debug)]
pub struct Health {
    store: SharedStore,
    clock: SharedClock,
    disable_after: Duration,
    streaks: Mutex<HashMap<Key, Streak>>,
    disabled: Mutex<(HashSet<Key>, Option<Instant>)>,
}

impl Health {
    pub fn new(store: SharedStore, clock: SharedClock, disable_after: Duration) -> Self {
        Self { store, clock, disable_after, streaks: Mutex::default(), disabled: Mutex::new((HashSet::new(), None)) }
    }

    /// Whether calls to `endpoint` are off.
    pub async fn is_disabled(&self, workspace: WorkspaceId, endpoint: &str) -> StoreResult<bool> {
        let key = (workspace, endpoint.to_owned());
        {
            let disabled = self.disabled.lock().unwrap_or_else(|e| e.into_inner());
            if disabled.1.is_some_and(|at| at.elapsed() < DISABLED_REFRESH) {
                return Ok(disabled.0.contains(&key));
            }
        }
        let fresh: HashSet<Key> = self.store.disabled_endpoints().await?.into_iter().collect();
        let answer = fresh.contains(&key);
        *self.disabled.lock().unwrap_or_else(|e| e.into_inner()) = (fresh, Some(Instant::now()));
        Ok(answer)
    }

    /// Re-reads the disabled endpoints on the next call (an endpoint was enabled here).
    pub fn forget(&self) {
        self.disabled.lock().unwrap_or_else(|e| e.into_inner()).1 = None;
        self.streaks.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Records an attempt's result; disables the endpoint when its streak is long enough.
    pub async fn observe(&self, workspace: WorkspaceId, endpoint: &str, succeeded: bool) -> StoreResult<()> {
        let now = self.clock.now();
        let key = (workspace, endpoint.to_owned());
        let streak = self.streaks.lock().unwrap_or_else(|e| e.into_inner()).get(&key).copied().unwrap_or_default();
        if succeeded {
            let due = streak.failing_since.is_some()
                || streak.success_recorded.is_none_or(|at| now.saturating_duration_since(at) >= SUCCESS_EVERY);
            if due {
                self.store.endpoint_succeeded(workspace, endpoint, now).await?;
                self.remember(&key, Streak { failing_since: None, success_recorded: Some(now) });
            }
            return Ok(());
        }
        let since = match streak.failing_since {
            Some(since) if now.saturating_duration_since(since) < self.disable_after => return Ok(()),
            _ => self.store.endpoint_failed(workspace, endpoint, now).await?,
        };
        let Some(failing_since) = since.failing_since else { return Ok(()) };
        self.remember(&key, Streak { failing_since: Some(failing_since), ..streak });
        if now.saturating_duration_since(failing_since) < self.disable_after || since.disabled_at.is_some() {
            return Ok(());
        }
        let reason = format!(
            "every attempt failed for {} hours (since {failing_since})",
            now.saturating_duration_since(failing_since).as_secs() / 3600
        );
        let event = endpoint_disabled_event(
            EventId::from_uuid(herald_store::new_uuid(now)),
            &since,
            failing_since,
            &reason,
            now,
        );
        if self.store.disable_endpoint(workspace, endpoint, failing_since, &reason, &event).await? {
            tracing::warn!(%workspace, endpoint, %reason, "webhook endpoint disabled");
            metrics::counter!("herald_webhook_endpoints_disabled_total").increment(1);
            self.disabled.lock().unwrap_or_else(|e| e.into_inner()).0.insert(key);
        }
        Ok(())
    }

    fn remember(&self, key: &Key, streak: Streak) {
        self.streaks.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone(), streak);
    }
}
