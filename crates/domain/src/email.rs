//! Sending domains and the suppression list as stored. The DKIM keys, the DNS records and
//! their checks are made by `herald-email`; the store keeps records and checks as JSON.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::campaign::string_enum;
use crate::{ContactId, DomainId, MessageId, Timestamp, WorkspaceId};

string_enum!(
    /// Where a sending domain's verification stands.
    DomainStatus {
        /// Added; its records have not been found yet (or not checked).
        Pending = "pending",
        /// Every required record matched at the last check that passed.
        Verified = "verified",
        /// Checked, and a required record is missing or wrong.
        Failed = "failed",
    }
);

/// A domain campaign email is sent from. Its DKIM private key is kept apart and never part of
/// this record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SendingDomain {
    pub id: DomainId,
    pub workspace_id: WorkspaceId,
    /// Lower-case, ASCII (IDNs in punycode).
    pub name: String,
    pub selector: String,
    /// `rsa` or `ed25519`.
    pub algorithm: String,
    pub status: DomainStatus,
    /// The DNS records to publish.
    pub records: Value,
    /// What the last check found, per record.
    pub checks: Value,
    /// Set when a record that had matched no longer does (the domain stays verified).
    pub warning: Option<String>,
    pub created_at: Timestamp,
    pub checked_at: Option<Timestamp>,
    pub verified_at: Option<Timestamp>,
}

/// An address that campaign email never goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub email: String,
    /// The contact the address belonged to when it was suppressed, if any.
    pub contact_id: Option<ContactId>,
    /// `unsubscribed` (a link or the one-click header), `hard_bounce` (a message to it
    /// bounced), `soft_bounce` (three messages to it in seven days were deferred until they
    /// failed), `manual` (the API) or another word the caller gave.
    pub reason: String,
    pub detail: Option<String>,
    /// The message whose bounce or complaint put the address here, if one did.
    pub message_id: Option<MessageId>,
    pub created_at: Timestamp,
}
