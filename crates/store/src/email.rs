//! Email storage: sending domains with their DKIM keys and checks, the suppression list, the
//! workspace's transport settings, and each delivery attempt's result.

use async_trait::async_trait;
use herald_domain::job::{JobLease, JobOutcome};
use herald_domain::{
    Activity, ActivityKind, BounceKind, CampaignId, ContactAction, ContactId, DomainId, DomainStatus, Event, EventId,
    EventOutcome, MessageId, MessageStatus, NewJob, Page, PageRequest, SendingDomain, Suppression, Timestamp,
    WorkspaceId,
};
use serde_json::Value;

use crate::StoreResult;

/// A sending domain to add, with its freshly generated DKIM key.
#[derive(Clone)]
pub struct NewDomain {
    pub name: String,
    pub selector: String,
    pub algorithm: String,
    /// A secret: stored, used to sign, never returned by the API.
    pub private_key: String,
    pub records: Value,
}

impl std::fmt::Debug for NewDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDomain")
            .field("name", &self.name)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("private_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The result of checking a domain's DNS records.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainCheck {
    pub status: DomainStatus,
    pub checks: Value,
    pub warning: Option<String>,
}

/// A workspace's transport: its settings (JSON, without the password) and the password.
#[derive(Clone, PartialEq)]
pub struct TransportRecord {
    pub settings: Value,
    /// A secret: write-only through the API.
    pub password: Option<String>,
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for TransportRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportRecord")
            .field("settings", &self.settings)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// What one delivery attempt did to a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub status: MessageStatus,
    pub reason: Option<String>,
    pub reply: Option<String>,
    pub attempts: u32,
    pub sent_at: Option<Timestamp>,
    /// How the message bounced, if it did.
    pub bounce: Option<BounceKind>,
    /// An address to put on the suppression list with the result (a hard bounce, the third
    /// soft one); an address already there keeps its first record.
    pub suppress: Option<Suppression>,
    /// What the attempt did, as an activity of the message (sent, bounced), recorded with it.
    pub activity: Option<Activity>,
}

/// One activity to record (a notification, an open, a click), with what it causes.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityWrite {
    pub workspace: WorkspaceId,
    pub activity: Activity,
    /// The address to put on the suppression list (a hard bounce, a complaint, the third
    /// soft bounce); an address already there keeps its first record.
    pub suppress: Option<Suppression>,
    /// The campaign event webhooks it fires.
    pub follow_up: Vec<NewJob>,
}

/// What became of one [`ActivityWrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Applied,
    /// An activity with the same key was recorded before: nothing changed.
    Duplicate,
    /// No such message in the workspace (deleted with its contact or campaign): nothing changed.
    UnknownMessage,
}

/// The message an activity is about, as read in the activity's transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityTarget {
    /// `None` (and `campaign` empty) for a transactional message.
    pub campaign_id: Option<CampaignId>,
    pub campaign: String,
    pub step: String,
    pub subject: String,
    pub contact_id: ContactId,
    pub status: MessageStatus,
}

/// The contact event an activity becomes (`email_opened`, …), received `now`.
pub fn activity_event(workspace: WorkspaceId, target: &ActivityTarget, activity: &Activity, now: Timestamp) -> Event {
    let properties = activity.event_properties(target.campaign_id, &target.campaign, &target.step, &target.subject);
    Event {
        id: EventId::from_uuid(crate::new_uuid(now)),
        workspace_id: workspace,
        source_id: None,
        contact_id: Some(target.contact_id),
        name: Some(activity.kind.event_name().to_owned()),
        properties,
        occurred_at: activity.occurred_at,
        received_at: now,
        idempotency_key: None,
        request: None,
        outcome: EventOutcome {
            contact: ContactAction::Unchanged,
            conflicts: Vec::new(),
            notes: vec![format!("Recorded by Herald from {}: {}.", activity.source, activity.summary())],
            campaigns: Vec::new(),
        },
    }
}

/// The reason held messages carry while their sending domain is not verified.
pub const DOMAIN_UNVERIFIED: &str = "domain_unverified";

#[async_trait]
pub trait EmailStore {
    /// `Conflict` named `domains_name` when the workspace has it already.
    async fn create_domain(
        &self,
        workspace: WorkspaceId,
        domain: NewDomain,
        now: Timestamp,
    ) -> StoreResult<SendingDomain>;

    async fn list_domains(&self, workspace: WorkspaceId) -> StoreResult<Vec<SendingDomain>>;

    async fn get_domain(&self, workspace: WorkspaceId, id: DomainId) -> StoreResult<SendingDomain>;

    async fn delete_domain(&self, workspace: WorkspaceId, id: DomainId) -> StoreResult<()>;

    /// The domain named `name` (lower-case) with its DKIM private key.
    async fn domain_key(&self, workspace: WorkspaceId, name: &str) -> StoreResult<Option<(SendingDomain, String)>>;

    /// Records a check of the domain's DNS records. When the domain is verified by it, the
    /// messages held for it (`domain_unverified`) are queued again with a delivery job each, in
    /// the same transaction; returns the domain and how many were released.
    async fn record_domain_check(
        &self,
        workspace: WorkspaceId,
        id: DomainId,
        check: &DomainCheck,
        now: Timestamp,
    ) -> StoreResult<(SendingDomain, u64)>;

    /// Domains last checked before `before` (or never), least recently checked first.
    async fn domains_to_check(&self, before: Timestamp, limit: u32) -> StoreResult<Vec<(WorkspaceId, DomainId)>>;

    /// Puts `email` (lower-case) on the suppression list and, when it was not there yet,
    /// enqueues `follow_up` (the campaign event webhooks it fires), in one transaction. An
    /// address already there keeps its first record, which is returned.
    async fn add_suppression(
        &self,
        workspace: WorkspaceId,
        suppression: &Suppression,
        follow_up: &[NewJob],
    ) -> StoreResult<Suppression>;

    /// Takes `email` off the list (`NotFound` when it is not on it).
    async fn remove_suppression(&self, workspace: WorkspaceId, email: &str) -> StoreResult<()>;

    async fn suppression(&self, workspace: WorkspaceId, email: &str) -> StoreResult<Option<Suppression>>;

    /// The list in address order; with `search`, only the addresses containing it (in any
    /// case; `%` and `_` are plain characters).
    async fn list_suppressions(
        &self,
        workspace: WorkspaceId,
        search: Option<&str>,
        page: PageRequest<String>,
    ) -> StoreResult<Page<Suppression>>;

    /// Replaces the workspace's transport (`None`: back to the embedded outbox).
    async fn set_transport(&self, workspace: WorkspaceId, transport: Option<&TransportRecord>) -> StoreResult<()>;

    async fn transport(&self, workspace: WorkspaceId) -> StoreResult<Option<TransportRecord>>;

    /// The workspace's secret for signing unsubscribe links: `candidate` becomes it the first
    /// time, and the stored one is returned ever after.
    async fn email_secret(&self, workspace: WorkspaceId, candidate: &str) -> StoreResult<String>;

    /// How many of the workspace's messages to `email` (compared in lower case) created at or
    /// after `since` ended in a soft bounce.
    async fn soft_bounces(&self, workspace: WorkspaceId, email: &str, since: Timestamp) -> StoreResult<u64>;

    /// Records one delivery attempt (and the suppression it causes), finishes its job with `outcome` and enqueues `follow_up`
    /// (the campaign event webhooks the result fires), in one transaction fenced by the lease
    /// (`LeaseLost` when the job was claimed again meanwhile).
    #[allow(clippy::too_many_arguments)]
    async fn record_delivery(
        &self,
        workspace: WorkspaceId,
        lease: &JobLease,
        message: MessageId,
        delivery: &Delivery,
        outcome: &JobOutcome,
        follow_up: &[NewJob],
        now: Timestamp,
    ) -> StoreResult<()>;

    /// Records activities of messages, each with its status change, suppression, contact
    /// event (and the jobs evaluating it when the workspace has live campaigns) and
    /// `follow_up`, all in one transaction; one answer per write, in order.
    async fn record_activities(&self, writes: &[ActivityWrite], now: Timestamp) -> StoreResult<Vec<Recorded>>;

    /// The message whose `Message-ID` header is `internet_message_id`, in any workspace.
    async fn message_by_internet_id(&self, internet_message_id: &str) -> StoreResult<Option<(WorkspaceId, MessageId)>>;

    /// The activities of the workspace's messages in `scope` that occurred at or after `since`,
    /// counted per kind (and per day or step, as grouped).
    async fn activity_counts(
        &self,
        workspace: WorkspaceId,
        scope: &ActivityScope,
        since: Option<Timestamp>,
        grouping: Grouping,
    ) -> StoreResult<Vec<ActivityCount>>;

    /// How many journeys converted with the conversion credited to the scope (its campaign, its
    /// step, or its message's step in its journey).
    async fn conversions(&self, workspace: WorkspaceId, scope: &ActivityScope) -> StoreResult<u64>;

    /// A message's activities, oldest first, at most `limit`.
    async fn message_activities(
        &self,
        workspace: WorkspaceId,
        message: MessageId,
        limit: u32,
    ) -> StoreResult<Vec<ActivityRecord>>;

    /// The numbers of the scope over all of its history, conversions included.
    async fn email_numbers(&self, workspace: WorkspaceId, scope: &ActivityScope) -> StoreResult<EmailNumbers> {
        let totals = self.activity_counts(workspace, scope, None, Grouping::Total).await?;
        let converted = self.conversions(workspace, scope).await?;
        Ok(EmailNumbers::new(EmailCounts::of(&totals), Some(converted)))
    }

    /// The numbers of each email step of a campaign that sent anything, conversions included,
    /// in step order by name.
    async fn step_numbers(&self, workspace: WorkspaceId, campaign: CampaignId) -> StoreResult<Vec<StepNumbers>> {
        let scope = ActivityScope { campaign: Some(campaign), ..ActivityScope::default() };
        let rows = self.activity_counts(workspace, &scope, None, Grouping::Step).await?;
        let mut steps: std::collections::BTreeMap<String, EmailCounts> = std::collections::BTreeMap::new();
        for row in &rows {
            if let Some(step) = &row.step {
                steps.entry(step.clone()).or_default().add(row);
            }
        }
        let mut numbers = Vec::with_capacity(steps.len());
        for (step, counts) in steps {
            let scope = ActivityScope { step: Some(step.clone()), ..scope.clone() };
            let converted = self.conversions(workspace, &scope).await?;
            numbers.push(StepNumbers { step, numbers: EmailNumbers::new(counts, Some(converted)) });
        }
        Ok(numbers)
    }

    /// The numbers of the scope: all of its history, and per day from `daily_since` on.
    async fn email_report(
        &self,
        workspace: WorkspaceId,
        scope: &ActivityScope,
        daily_since: Timestamp,
    ) -> StoreResult<EmailReport> {
        let totals = self.email_numbers(workspace, scope).await?;
        let daily = self.activity_counts(workspace, scope, Some(daily_since), Grouping::Day).await?;
        Ok(EmailReport {
            totals,
            daily: EmailCounts::by_day(&daily)
                .into_iter()
                .map(|(day, counts)| DayNumbers { date: day_date(day), numbers: EmailNumbers::new(counts, None) })
                .collect(),
        })
    }
}

/// The numbers of a scope, as its API and page show them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EmailReport {
    pub totals: EmailNumbers,
    /// Days with activity, oldest first.
    pub daily: Vec<DayNumbers>,
}

/// One email step's numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepNumbers {
    pub step: String,
    #[serde(flatten)]
    pub numbers: EmailNumbers,
}

/// One day's numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DayNumbers {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    #[serde(flatten)]
    pub numbers: EmailNumbers,
}

/// The calendar date (UTC, `YYYY-MM-DD`) of a day counted from 1970-01-01.
pub fn day_date(day: i64) -> String {
    let date = Timestamp::from_unix_millis(day.saturating_mul(86_400_000)).to_offset_date_time().date();
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// Counts with their rates. Rates are fractions of the messages sent (0 when none were),
/// except `click_to_open`, of those opened by a person.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EmailNumbers {
    #[serde(flatten)]
    pub counts: EmailCounts,
    /// Journeys converted with the conversion credited here (absent per day).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converted: Option<u64>,
    pub rates: EmailRates,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct EmailRates {
    pub delivered: f64,
    pub bounced: f64,
    pub opened: f64,
    pub clicked: f64,
    pub click_to_open: f64,
    pub complained: f64,
    pub unsubscribed: f64,
    pub converted: f64,
}

impl EmailNumbers {
    pub fn new(counts: EmailCounts, converted: Option<u64>) -> Self {
        let of = |part: u64, whole: u64| if whole == 0 { 0.0 } else { part as f64 / whole as f64 };
        let sent = counts.sent;
        let rates = EmailRates {
            delivered: of(counts.delivered, sent),
            bounced: of(counts.bounced_hard + counts.bounced_soft, sent),
            opened: of(counts.opened, sent),
            clicked: of(counts.clicked, sent),
            click_to_open: of(counts.clicked, counts.opened),
            complained: of(counts.complained, sent),
            unsubscribed: of(counts.unsubscribed, sent),
            converted: of(converted.unwrap_or(0), sent),
        };
        Self { counts, converted, rates }
    }
}

/// Claims a delivery job may take: its message's own attempts (SMTP retries) are bounded
/// separately, and a send-rate deferral also counts as a claim, so this only stops a job
/// that keeps dying with its process.
pub const DELIVERY_MAX_CLAIMS: u32 = 1_000;

/// The job that delivers one message.
pub fn delivery_job(message: MessageId, now: Timestamp) -> herald_domain::NewJob {
    let mut job = herald_domain::NewJob::new(
        herald_domain::JobKind::DeliverMessage,
        serde_json::json!({ "message": message }),
        now,
    );
    job.max_attempts = DELIVERY_MAX_CLAIMS;
    job
}

/// The domain of a stored From address (`Name <user@example.com>` or `user@example.com`),
/// lower-case: the messages held for a domain are found by it.
pub fn from_domain(from: &str) -> String {
    let address = match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => &from[open + 1..close],
        _ => from,
    };
    address.rsplit_once('@').map(|(_, domain)| domain.trim().to_ascii_lowercase()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::from_domain;

    #[test]
    fn from_domain_reads_both_forms() {
        assert_eq!(from_domain("Ada <ada@Mail.Example.com>"), "mail.example.com");
        assert_eq!(from_domain("ada@example.com"), "example.com");
        assert_eq!(from_domain("\"a@b\" <ada@example.org>"), "example.org");
        assert_eq!(from_domain("nobody"), "");
    }
}

/// Which messages statistics count: a workspace's, one campaign's, one step's of a campaign,
/// one broadcast's, or one message's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityScope {
    pub campaign: Option<CampaignId>,
    /// Only with `campaign`.
    pub step: Option<String>,
    pub broadcast: Option<herald_domain::BroadcastId>,
    pub message: Option<MessageId>,
}

/// How activity counts are grouped besides by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Total,
    /// Per day (UTC).
    Day,
    /// Per campaign step.
    Step,
}

/// One row of activity counts: of a kind (with its bounce kind and machine flag), on a day
/// (days since 1970-01-01, UTC) or of a step, when so grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityCount {
    pub day: Option<i64>,
    pub step: Option<String>,
    pub kind: ActivityKind,
    pub bounce: Option<BounceKind>,
    pub machine: bool,
    /// Distinct messages with such an activity.
    pub messages: u64,
    /// Activities in all (an open counted each time).
    pub total: u64,
}

/// What happened to a set of messages, as people read it: unique counts are of messages,
/// totals of activities; machine opens (privacy proxies, prefetch) are counted apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EmailCounts {
    pub sent: u64,
    pub delivered: u64,
    pub bounced_hard: u64,
    pub bounced_soft: u64,
    pub opened: u64,
    pub opens: u64,
    pub machine_opened: u64,
    pub machine_opens: u64,
    pub clicked: u64,
    pub clicks: u64,
    pub complained: u64,
    pub unsubscribed: u64,
}

impl EmailCounts {
    /// Adds one row of counts.
    pub fn add(&mut self, row: &ActivityCount) {
        let (messages, total) = (row.messages, row.total);
        match (row.kind, row.bounce, row.machine) {
            (ActivityKind::Sent, ..) => self.sent += messages,
            (ActivityKind::Delivered, ..) => self.delivered += messages,
            (ActivityKind::Bounced, Some(BounceKind::Soft), _) => self.bounced_soft += messages,
            (ActivityKind::Bounced, ..) => self.bounced_hard += messages,
            (ActivityKind::Opened, _, true) => {
                self.machine_opened += messages;
                self.machine_opens += total;
            }
            (ActivityKind::Opened, _, false) => {
                self.opened += messages;
                self.opens += total;
            }
            (ActivityKind::Clicked, ..) => {
                self.clicked += messages;
                self.clicks += total;
            }
            (ActivityKind::Complained, ..) => self.complained += messages,
            (ActivityKind::Unsubscribed, ..) => self.unsubscribed += messages,
        }
    }

    /// The counts of `rows` (of one day, or of the whole range).
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a ActivityCount>) -> Self {
        let mut counts = Self::default();
        for row in rows {
            counts.add(row);
        }
        counts
    }

    /// The counts per day, days in order.
    pub fn by_day(rows: &[ActivityCount]) -> Vec<(i64, Self)> {
        let mut days: std::collections::BTreeMap<i64, Self> = std::collections::BTreeMap::new();
        for row in rows {
            if let Some(day) = row.day {
                days.entry(day).or_default().add(row);
            }
        }
        days.into_iter().collect()
    }
}

/// One recorded activity of a message, as its page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    pub activity: Activity,
    pub recorded_at: Timestamp,
}
