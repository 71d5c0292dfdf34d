//! The named interfaces through which an earlier stage asks a later one, implemented here
//! where every stage is known, so that no slice imports a later one.

use herald_domain::{ContactId, EmailAddress, WorkspaceId};
use herald_store::StoreResult;

use crate::contacts::ContactDelivery;
use crate::delivery::email::{self, Email, EmailState};
use crate::delivery::webhooks::{self, UnsubscribeLinks, WebhooksState};
use crate::web::error::ApiError;

/// Delivery, as the contact page's buttons reach it.
#[derive(Debug)]
pub struct DeliveryForContacts {
    pub email: EmailState,
    pub webhooks: WebhooksState,
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
        email::service::suppress(&self.email, workspace, email, reason, detail).await?;
        Ok(())
    }

    async fn run_action(&self, workspace: WorkspaceId, action: &str, contact: ContactId) -> Result<String, ApiError> {
        webhooks::service::run_action(&self.webhooks, workspace, action, contact, None).await
    }
}

#[async_trait::async_trait]
impl UnsubscribeLinks for Email {
    async fn unsubscribe_url(&self, workspace: WorkspaceId, contact: ContactId) -> StoreResult<String> {
        Email::unsubscribe_url(self, workspace, contact).await
    }
}
