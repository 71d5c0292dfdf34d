//! Each workspace's secret: made on first use, stored in the database, and never changed. It
//! keys unsubscribe links and (under its own derivation label) UI sessions, so any node can
//! check either without shared memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use herald_domain::WorkspaceId;
use herald_store::{SharedStore, StoreResult};

/// The workspaces' secrets, cached once read (they never change once made).
#[derive(Debug)]
pub struct WorkspaceSecrets {
    store: SharedStore,
    secrets: Mutex<HashMap<WorkspaceId, Arc<[u8]>>>,
}

impl WorkspaceSecrets {
    pub fn new(store: SharedStore) -> Self {
        Self { store, secrets: Mutex::default() }
    }

    /// The workspace's secret, made on first use.
    pub async fn get(&self, workspace: WorkspaceId) -> StoreResult<Arc<[u8]>> {
        if let Some(secret) = self.secrets.lock().unwrap_or_else(|e| e.into_inner()).get(&workspace) {
            return Ok(secret.clone());
        }
        let candidate: [u8; 32] = rand::random();
        let hex: String = candidate.iter().map(|b| format!("{b:02x}")).collect();
        let stored = self.store.email_secret(workspace, &hex).await?;
        let secret: Arc<[u8]> = stored.into_bytes().into();
        self.secrets.lock().unwrap_or_else(|e| e.into_inner()).insert(workspace, secret.clone());
        Ok(secret)
    }
}
