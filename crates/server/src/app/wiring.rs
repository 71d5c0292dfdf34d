//! The named interfaces through which an earlier stage asks a later one, implemented here
//! where every stage is known, so that no slice imports a later one.

use std::sync::Arc;

use herald_domain::{ContactId, EmailAddress, WorkspaceId};
use herald_store::SharedStore;

use crate::clock::SharedClock;
use crate::contacts::ContactDelivery;
use crate::delivery::email::Email;
use crate::delivery::webhooks::Webhooks;
use crate::web::error::ApiError;

/// Delivery, as the contact page's buttons reach it.
#[derive(Debug)]
pub struct DeliveryForContacts {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub email: Arc<Email>,
    pub webhooks: Arc<Webhooks>,
}

#[async_trait::async_trait]
impl ContactDelivery for DeliveryForContacts {
    async fn suppress(
        &self,
        workspace: WorkspaceId,
        email: &EmailAddress,
        reason: String,
        detail: Option<String>,
    ) -> Result<(), ApiError> {
        crate::delivery::email::api::suppressions::suppress(&self.store, &self.clock, workspace, email, reason, detail)
            .await?;
        Ok(())
    }

    async fn run_action(&self, workspace: WorkspaceId, action: &str, contact: ContactId) -> Result<String, ApiError> {
        crate::delivery::webhooks::api::actions::run(
            &self.store,
            &self.email,
            &self.webhooks,
            workspace,
            action,
            contact,
            None,
        )
        .await
    }
}
