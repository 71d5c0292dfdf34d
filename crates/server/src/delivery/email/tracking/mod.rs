//! Open and click tracking: when a message whose [`Tracking`] asks for it is composed for a
//! relay, its HTML links go through a signed redirect and an open pixel is added
//! ([`rewrite`]); the public endpoints behind them ([`endpoints`]) record each open and click
//! as an email activity before they answer, telling machines' fetches from people's
//! ([`machine`]). The tokens ([`token`]) are signed with the workspace's secret, so a link can
//! be neither forged nor pointed elsewhere. Messages handed to the embedded outbox are never
//! composed, so they are never rewritten. docs/adr/0015-open-and-click-tracking.md has the
//! choices.

pub(crate) mod endpoints;
pub(crate) mod hits;
pub mod machine;
pub mod rewrite;
pub mod token;

use std::sync::Arc;

use herald_domain::{Message, Tracking};
use herald_store::StoreResult;

use super::Email;
use rewrite::Links;

/// What a message's tracked HTML is made with, taken into the blocking task that composes it.
pub struct Tracker {
    public_url: Arc<str>,
    secret: Arc<[u8]>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").field("public_url", &self.public_url).finish_non_exhaustive()
    }
}

impl Tracker {
    /// The HTML `message` is sent with: tracked as it asks, or as it is when the rewriter
    /// cannot read it (tracking is not worth failing a message for).
    pub fn html(&self, message: &Message, unsubscribe_url: &str) -> String {
        let links = Links {
            public_url: &self.public_url,
            secret: &self.secret,
            workspace: message.workspace_id,
            message: message.id,
            unsubscribe_url,
        };
        rewrite::rewrite(&message.html, message.tracking, &links).unwrap_or_else(|e| {
            tracing::warn!(message = %message.id, error = %e, "the HTML could not be rewritten for tracking; sent untracked");
            message.html.clone()
        })
    }
}

impl Email {
    /// The tracker of a message that tracks anything; `None` for one that tracks nothing.
    pub async fn tracker(&self, message: &Message) -> StoreResult<Option<Tracker>> {
        if message.tracking == Tracking::default() {
            return Ok(None);
        }
        let secret = self.secret(message.workspace_id).await?;
        Ok(Some(Tracker { public_url: self.public_url.clone(), secret }))
    }
}
