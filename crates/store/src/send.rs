//! Transactional sends: one message to one address outside any campaign, stored with its
//! delivery job under the caller's idempotency key.

use async_trait::async_trait;
use herald_domain::{Message, MessageId, NewJob, Timestamp, WorkspaceId};

use crate::StoreResult;

/// A send to commit.
#[derive(Debug, Clone, Copy)]
pub struct TransactionalSend<'a> {
    /// The caller's `Idempotency-Key` and what identifies the request under it (a hash of
    /// its body): the same key with another request is refused.
    pub key: Option<(&'a str, &'a str)>,
    pub message: &'a Message,
    /// The delivery job; `None` when the message needs none (sent through the outbox).
    pub job: Option<&'a NewJob>,
}

/// What became of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Stored now, with its job.
    Accepted(MessageId),
    /// The key was used before for the same request: its message, and nothing stored now.
    Replayed(MessageId),
    /// The key was used before for another request: nothing stored.
    KeyReused,
}

#[async_trait]
pub trait SendStore {
    /// Stores the message and its job in one transaction, unless its key was used before.
    /// Keys are kept per workspace; concurrent sends with one key store one message.
    async fn send_transactional(
        &self,
        workspace: WorkspaceId,
        send: TransactionalSend<'_>,
        now: Timestamp,
    ) -> StoreResult<SendOutcome>;

    /// Forgets the keys of sends made before `before`: their key then makes a new message.
    /// Returns how many went.
    async fn purge_send_keys(&self, before: Timestamp) -> StoreResult<u64>;
}
