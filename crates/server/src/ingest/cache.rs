//! A short-lived cache of sources by token hash, so the hot path does not read the database
//! for every request. Only sources found by their current token (no rotation grace period
//! running) are cached, and only for `TTL`; any change to a source through this node's API
//! clears the cache at once. Another node sharing the database sees a rotation, disabling or
//! deletion made here within `TTL` (documented in docs/design/ingest.md). Unknown tokens are never
//! cached, so random tokens cannot fill memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use herald_domain::{Source, Timestamp, TokenHash};
use herald_store::{SharedStore, StoreResult};

/// How long a cached source is trusted.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most; past it the cache is cleared (cheap, and rare).
const CAPACITY: usize = 10_000;

/// A source and when it was read.
type Entry = (Arc<Source>, Timestamp);

#[derive(Debug, Default)]
pub struct SourceCache {
    entries: RwLock<HashMap<[u8; 32], Entry>>,
}

impl SourceCache {
    /// The enabled source for this token hash, from the cache or the store.
    pub async fn lookup(
        &self,
        store: &SharedStore,
        hash: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<Arc<Source>>> {
        let key = *hash.as_bytes();
        if let Some((source, fetched)) =
            self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key)
            && now < *fetched + TTL
            && now >= *fetched
        {
            return Ok(Some(source.clone()));
        }
        let found = store.source_by_token(hash, now).await?.map(Arc::new);
        if let Some(source) = found.as_ref().filter(|s| s.previous_token_expires_at.is_none()) {
            let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(key, (source.clone(), now));
        }
        Ok(found)
    }

    /// Forgets everything: called after any change to a source.
    pub fn clear(&self) {
        self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}
