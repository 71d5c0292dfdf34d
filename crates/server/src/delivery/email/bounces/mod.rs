//! Bounces and complaints that arrive after a message was handed over, received by Herald
//! itself: every message leaves with a per-message return path (`token`), the mail listener
//! (`listener`) accepts mail for those addresses only, and here a received report becomes the
//! message's activity (`bounced` / `complained`, through [`Email::record_activity`]).
//!
//! Which message a report is about: the one its envelope recipient's token names (the token
//! was checked when the recipient was accepted). Should the store not know that message (it
//! was deleted with its contact), the identifiers the report quotes of the original are tried
//! in turn: Herald's own header and the original envelope sender (both signed tokens, checked
//! the same way), then the original `Message-ID`; each only within the workspace the
//! recipient's token proved, so that a report can never reach another workspace's message.
//! ADR 0013.

pub mod listener;
pub mod token;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_domain::{Activity, ActivityKind, BounceKind, MessageId, SendingDomain, WorkspaceId};
use herald_email::report::{self, Class, Report, ReportError, ReportKind};
use herald_store::StoreError;
use sha2::{Digest, Sha256};

use super::Email;
use super::activity::Recorded;
use token::{Claim, WorkspaceTail};

/// A recipient the listener accepted: the message its token names, proven by the MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub workspace: WorkspaceId,
    pub message: MessageId,
    /// The token, shortened for logs ([`token::redacted`]).
    pub shown: String,
}

/// What became of a received report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// Recorded on a message (or recognised as a repeat, or about no message the store knows).
    Recorded { recorded: Recorded, message: MessageId, kind: ActivityKind },
    /// A status that is not a final failure (`delayed`, `delivered`, …): nothing to record.
    Notice { action: String },
    /// Not a report Herald can read: nothing changes.
    Unreadable(ReportError),
}

/// Whether `domain`'s messages leave with their return path as envelope sender: when the
/// domain was given a bounce host (its `bounces.<domain>` record). Without one the return
/// path's domain would not resolve, and many receivers refuse mail from such a sender.
pub fn receives_bounces(domain: &SendingDomain) -> bool {
    domain.records.as_array().is_some_and(|records| records.iter().any(|r| r["purpose"] == "return_path"))
}

/// How often the list of workspaces is read again when a token names a workspace not in it
/// (a new workspace; or a forged token, which must not make every attempt a query).
const DIRECTORY_REFRESH: Duration = Duration::from_secs(5);

/// Workspaces by the part of their id a token carries.
type ByTail = HashMap<WorkspaceTail, Vec<WorkspaceId>>;

/// The node's workspaces by the part of their id a token carries, and when they were read.
#[derive(Debug, Default)]
pub struct Directory {
    known: Mutex<Option<(Instant, ByTail)>>,
}

impl Directory {
    /// The workspaces whose ids end in `tail` (one, unless ids collide in 64 random bits).
    async fn candidates(&self, email: &Email, tail: &WorkspaceTail) -> Result<Vec<WorkspaceId>, StoreError> {
        let stale = {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            match &*known {
                Some((_, map)) if map.contains_key(tail) => return Ok(map[tail].clone()),
                Some((read_at, _)) => read_at.elapsed() >= DIRECTORY_REFRESH,
                None => true,
            }
        };
        if !stale {
            return Ok(Vec::new());
        }
        let mut map = ByTail::new();
        for workspace in email.store.list_workspaces().await? {
            map.entry(token::tail(workspace.id)).or_default().push(workspace.id);
        }
        let found = map.get(tail).cloned().unwrap_or_default();
        *self.known.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), map));
        Ok(found)
    }
}

impl Email {
    /// The token of `message`'s return path and [`report::HERALD_HEADER`].
    pub async fn return_token(&self, workspace: WorkspaceId, message: MessageId) -> Result<String, StoreError> {
        Ok(token::token(&self.secret(workspace).await?, workspace, message))
    }

    /// The recipient a return-path `address` proves, or `None` when it is not one or its
    /// token does not verify. Nothing about any message is read.
    pub async fn bounce_recipient(
        &self,
        directory: &Directory,
        address: &str,
    ) -> Result<Option<Recipient>, StoreError> {
        let Some(text) = token::token_of(address) else { return Ok(None) };
        self.verify_token(directory, text).await
    }

    async fn verify_token(&self, directory: &Directory, text: &str) -> Result<Option<Recipient>, StoreError> {
        let Some(claim) = Claim::parse(text) else { return Ok(None) };
        for workspace in directory.candidates(self, &claim.workspace_tail).await? {
            if claim.verify(&self.secret(workspace).await?, workspace) {
                return Ok(Some(Recipient { workspace, message: claim.message, shown: token::redacted(text) }));
            }
        }
        Ok(None)
    }

    /// Reads `raw` and records what it reports about `recipient`'s message (or, when the
    /// store does not know that one, the message the report quotes, in the same workspace).
    pub async fn take_report(
        &self,
        directory: &Directory,
        recipient: &Recipient,
        raw: &[u8],
    ) -> Result<Intake, StoreError> {
        let report = match report::parse(raw) {
            Ok(report) => report,
            Err(error) => return Ok(Intake::Unreadable(error)),
        };
        let (kind, bounce, reason, source) = match &report.kind {
            ReportKind::Notice { action } => return Ok(Intake::Notice { action: action.clone() }),
            ReportKind::Bounce { class, diagnostic, .. } => {
                let bounce = match class {
                    Class::Permanent => BounceKind::Hard,
                    Class::Transient => BounceKind::Soft,
                };
                (ActivityKind::Bounced, Some(bounce), diagnostic.clone(), "dsn")
            }
            ReportKind::Complaint { feedback_type } => (ActivityKind::Complained, None, feedback_type.clone(), "arf"),
        };
        let report_key = report_key(&report, raw);
        let mut last = None;
        for message in self.candidates(directory, recipient, &report).await? {
            let activity = Activity {
                message_id: message,
                kind,
                bounce,
                reason: Some(reason.clone()),
                url: None,
                machine: false,
                source: source.to_owned(),
                key: Some(format!("{source}:{message}:{report_key}")),
                occurred_at: self.clock.now(),
            };
            let recorded = self.record_activity(recipient.workspace, activity).await?;
            last = Some(Intake::Recorded { recorded, message, kind });
            if recorded != Recorded::UnknownMessage {
                break;
            }
        }
        Ok(last.unwrap_or(Intake::Recorded { recorded: Recorded::UnknownMessage, message: recipient.message, kind }))
    }

    /// The messages a report may be about, in order: the recipient's, then those the report
    /// quotes that belong to the recipient's workspace.
    async fn candidates(
        &self,
        directory: &Directory,
        recipient: &Recipient,
        report: &Report,
    ) -> Result<Vec<MessageId>, StoreError> {
        let mut found = vec![recipient.message];
        let quoted_tokens =
            [report.original.herald.as_deref(), report.original.return_path.as_deref().and_then(token::token_of)];
        for text in quoted_tokens.into_iter().flatten() {
            if let Some(quoted) = self.verify_token(directory, text).await?
                && quoted.workspace == recipient.workspace
                && !found.contains(&quoted.message)
            {
                found.push(quoted.message);
            }
        }
        if let Some(id) = &report.original.message_id
            && let Some((workspace, message)) = self.message_by_internet_id(id).await?
            && workspace == recipient.workspace
            && !found.contains(&message)
        {
            found.push(message);
        }
        Ok(found)
    }
}

/// What makes a report the same report when it comes again: its `Message-ID`, else a hash of
/// its bytes.
fn report_key(report: &Report, raw: &[u8]) -> String {
    match &report.id {
        Some(id) => id.chars().take(200).collect(),
        None => {
            let digest = Sha256::digest(raw);
            digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
        }
    }
}
