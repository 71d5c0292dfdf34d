//! Contacts: the people events are about. `api` is `/api/v1/contacts` (list, create, change,
//! import, erase), `pages` the contact list and the contact page with its timeline. Both read
//! and write through the store's contact use cases; what the contact page's buttons ask of
//! delivery (unsubscribe, run an action) goes through [`ContactDelivery`].

pub mod api;
pub(crate) mod pages;

use std::sync::Arc;

use herald_domain::{ContactId, EmailAddress, WorkspaceId};
use herald_store::SharedStore;

use crate::clock::SharedClock;
use crate::web::error::ApiError;

/// What the contacts' API and pages use.
#[derive(Clone, Debug)]
pub struct ContactsState {
    pub store: SharedStore,
    pub clock: SharedClock,
    /// The later stages, as far as the contact page's buttons reach them.
    pub delivery: Arc<dyn ContactDelivery>,
}

/// What the contact page asks of delivery, named here so that contacts import no later stage.
#[async_trait::async_trait]
pub trait ContactDelivery: Send + Sync + std::fmt::Debug + 'static {
    /// Suppresses an address by hand, as `POST /api/v1/suppressions` does.
    async fn suppress(
        &self,
        workspace: WorkspaceId,
        email: &EmailAddress,
        reason: String,
        detail: Option<String>,
    ) -> Result<(), ApiError>;

    /// Runs saved action `action` for one contact, as `POST /api/v1/actions/{id}/run` does;
    /// returns the call's idempotency key.
    async fn run_action(&self, workspace: WorkspaceId, action: &str, contact: ContactId) -> Result<String, ApiError>;
}
