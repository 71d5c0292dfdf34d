//! Campaign event webhooks at work (seed 001): turning a campaign event into one delivery job
//! per webhook listening to it. The jobs join the transaction that records the event (the
//! journey commit, the message's delivery result, the webhook attempt, the suppression), so an
//! event recorded is an event delivered, once: the idempotency key comes from the webhook, the
//! event kind and the occurrence (journey, message, delivery…), so a repeated job or replayed
//! event reopens the same delivery instead of calling twice. From there on a call is an
//! ordinary delivery: the same job, retries, log, resend, address policy and fast recovery as
//! a journey's webhook step, except that no journey waits for it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_campaign::engine::WebhookRequest;
use herald_domain::LeasedJob;
use herald_domain::campaign_webhook::form_encode;
use herald_domain::job::JobKind;
use herald_domain::{
    CampaignEvent, CampaignEventKind, CampaignId, CampaignWebhook, CampaignWebhookId, ContactId, HookMethod, JourneyId,
    NewJob, PayloadEncoding, Suppression, Timestamp, WorkspaceId,
};
use herald_store::campaign::{ARCHIVED, CampaignWork};
use herald_store::webhook::webhook_job;
use herald_store::{SharedStore, StoreError, StoreResult};
use herald_webhook::client::DEFAULT_TIMEOUT;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{CallOrigin, CallPayload, endpoint};

/// How long a campaign's webhooks read by the journey runner are trusted: a change made
/// through another node is seen within it, one made through this node at once.
const CACHE_TTL: Duration = Duration::from_secs(1);

/// Each campaign's webhooks, briefly cached for the journey runner's hot path.
#[derive(Debug)]
pub struct Hooks {
    store: SharedStore,
    known: Mutex<HashMap<(WorkspaceId, CampaignId), Known>>,
}

/// A campaign's webhooks and when they were read.
type Known = (Arc<Vec<CampaignWebhook>>, Instant);

impl Hooks {
    pub fn new(store: SharedStore) -> Self {
        Self { store, known: Mutex::default() }
    }

    /// The campaign's webhooks (active or not).
    pub async fn of(&self, workspace: WorkspaceId, campaign: CampaignId) -> StoreResult<Arc<Vec<CampaignWebhook>>> {
        let key = (workspace, campaign);
        if let Some((hooks, since)) = self.known.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && since.elapsed() < CACHE_TTL
        {
            return Ok(hooks.clone());
        }
        let hooks = Arc::new(self.store.list_campaign_webhooks(workspace, Some(campaign)).await?);
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= 4096 {
            known.clear();
        }
        known.insert(key, (hooks.clone(), Instant::now()));
        Ok(hooks)
    }

    /// Forgets a campaign's webhooks (one changed through this node).
    pub fn forget(&self, workspace: WorkspaceId, campaign: CampaignId) {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).remove(&(workspace, campaign));
    }
}

/// The delivery jobs of `event`: one per webhook of `hooks` listening to it.
pub fn jobs(hooks: &[CampaignWebhook], event: &CampaignEvent<'_>, now: Timestamp) -> Vec<NewJob> {
    hooks.iter().filter(|hook| hook.listens_to(event.kind)).map(|hook| call_job(hook, event, now)).collect()
}

/// What an event is about, for [`jobs_for`].
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub kind: CampaignEventKind,
    pub campaign: CampaignId,
    pub contact: ContactId,
    pub journey: Option<JourneyId>,
    pub data: Value,
    /// See [`CampaignEvent::occurrence`].
    pub occurrence: String,
}

/// The delivery jobs of one event, reading the campaign and the contact only when a webhook
/// listens. For the paths that run once per message or call (delivery results, suppressions),
/// which read the webhooks afresh rather than through [`Hooks`].
pub async fn jobs_for(
    store: &SharedStore,
    workspace: WorkspaceId,
    occurrence: Occurrence,
    now: Timestamp,
) -> StoreResult<Vec<NewJob>> {
    let hooks = store.list_campaign_webhooks(workspace, Some(occurrence.campaign)).await?;
    if !hooks.iter().any(|hook| hook.listens_to(occurrence.kind)) {
        return Ok(Vec::new());
    }
    let parts = async {
        Ok::<_, StoreError>((
            store.get_campaign(workspace, occurrence.campaign).await?,
            store.get_contact(workspace, occurrence.contact).await?,
        ))
    };
    let (campaign, contact) = match parts.await {
        Ok(parts) => parts,
        // Deleted meanwhile: there is no one left to tell about.
        Err(StoreError::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let event = CampaignEvent {
        kind: occurrence.kind,
        at: now,
        campaign_id: campaign.id,
        campaign_name: &campaign.name,
        journey_id: occurrence.journey,
        contact: &contact,
        data: occurrence.data,
        occurrence: occurrence.occurrence,
    };
    Ok(jobs(&hooks, &event, now))
}

/// Journeys whose `contact_exited` calls one `archive_exits` job queues.
const ARCHIVE_PAGE: u32 = 500;

/// Runs an `archive_exits` job (queued when archiving a campaign ended journeys): the
/// `contact_exited` calls of one page of those journeys, committed with the job's completion
/// and, when more remain, the job for the next page. A job run again after a crash queues the
/// same calls again, which reopen the same deliveries (no second call).
pub async fn archive_exits(store: &SharedStore, leased: &LeasedJob, now: Timestamp) -> StoreResult<()> {
    let workspace = leased.job.workspace_id;
    let page: ArchivePage = serde_json::from_value(leased.job.payload.clone())
        .map_err(|e| StoreError::Other(format!("archive_exits payload: {e}").into()))?;
    let mut work = CampaignWork::default();
    let hooks = store.list_campaign_webhooks(workspace, Some(page.campaign)).await?;
    let campaign = match store.get_campaign(workspace, page.campaign).await {
        Ok(campaign) if hooks.iter().any(|hook| hook.listens_to(CampaignEventKind::ContactExited)) => Some(campaign),
        Ok(_) | Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    if let Some(campaign) = campaign {
        let journeys = store.archived_journeys(workspace, page.campaign, page.after, ARCHIVE_PAGE).await?;
        for (journey, contact) in &journeys {
            let contact = match store.get_contact(workspace, *contact).await {
                Ok(contact) => contact,
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let event = CampaignEvent {
                kind: CampaignEventKind::ContactExited,
                at: now,
                campaign_id: campaign.id,
                campaign_name: &campaign.name,
                journey_id: Some(*journey),
                contact: &contact,
                data: json!({ "reason": ARCHIVED }),
                occurrence: journey.to_string(),
            };
            work.jobs.extend(jobs(&hooks, &event, now));
        }
        if journeys.len() == ARCHIVE_PAGE as usize {
            let next = ArchivePage { campaign: page.campaign, after: journeys.last().map(|(j, _)| *j) };
            work.jobs.push(NewJob::new(JobKind::ArchiveExits, json!(next), now));
        }
    }
    store.commit_campaign_work(workspace, Some(&leased.lease), &work, now).await
}

/// An `archive_exits` job's payload.
#[derive(Debug, Serialize, Deserialize)]
struct ArchivePage {
    campaign: CampaignId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<JourneyId>,
}

/// The calls an unsubscription fires: one per listening webhook of each campaign the contact
/// has a journey in (the link names the contact, not the campaign), to commit with the
/// suppression.
pub async fn unsubscribe_jobs(
    store: &SharedStore,
    workspace: WorkspaceId,
    suppression: &Suppression,
    now: Timestamp,
) -> StoreResult<Vec<NewJob>> {
    let Some(contact) = suppression.contact_id else { return Ok(Vec::new()) };
    let hooks = store.list_campaign_webhooks(workspace, None).await?;
    let campaigns: BTreeSet<CampaignId> = hooks
        .iter()
        .filter(|hook| hook.listens_to(CampaignEventKind::ContactUnsubscribed))
        .map(|hook| hook.campaign_id)
        .collect();
    let mut jobs = Vec::new();
    for campaign in campaigns {
        let Some(journey) = store.contact_journeys(workspace, contact, Some(campaign), 1).await?.pop() else {
            continue;
        };
        let occurrence = Occurrence {
            kind: CampaignEventKind::ContactUnsubscribed,
            campaign,
            contact,
            journey: Some(journey.id),
            data: json!({"email": suppression.email, "reason": suppression.reason, "detail": suppression.detail}),
            // A contact who is unsubscribed, taken off the list and unsubscribed again is
            // two events.
            occurrence: format!("{contact}:{}", suppression.created_at.unix_millis()),
        };
        jobs.extend(jobs_for(store, workspace, occurrence, now).await?);
    }
    Ok(jobs)
}

/// The key that makes a call's `Idempotency-Key` and `webhook-id`: one per webhook, event
/// kind and occurrence.
fn idempotency_key(hook: CampaignWebhookId, kind: CampaignEventKind, occurrence: &str) -> String {
    let digest = Sha256::digest(format!("campaign-event:{hook}:{kind}:{occurrence}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("whk_{hex}")
}

fn call_job(hook: &CampaignWebhook, event: &CampaignEvent<'_>, now: Timestamp) -> NewJob {
    let payload = event.payload_for(hook);
    let (url, body, content_type) = match (hook.method, hook.content_type) {
        // Query parameters are form-encoded whatever the content type; there is no body.
        (HookMethod::Get, encoding) => (with_query(&hook.url, &form_encode(&payload)), String::new(), encoding),
        (HookMethod::Post, PayloadEncoding::Json) => (hook.url.clone(), payload.to_string(), PayloadEncoding::Json),
        (HookMethod::Post, PayloadEncoding::Form) => (hook.url.clone(), form_encode(&payload), PayloadEncoding::Form),
    };
    let request = WebhookRequest {
        method: hook.method.as_str().to_owned(),
        url,
        headers: Vec::new(),
        basic_auth: None,
        content_type: mime(content_type).to_owned(),
        body,
        timeout: DEFAULT_TIMEOUT,
        log_response_body: hook.log_response_body,
    };
    let call = CallPayload {
        origin: CallOrigin::CampaignEvent {
            campaign_webhook: hook.id,
            campaign: event.campaign_id,
            contact: event.contact.id,
            journey: event.journey_id,
            event: event.kind,
            idempotency_key: idempotency_key(hook.id, event.kind, &event.occurrence),
        },
        endpoint: endpoint(&request.url),
        request,
        basic_auth: hook.basic_auth.as_ref().map(|(user, password)| format!("{user}:{password}")),
        secret: hook.secret.clone(),
    };
    webhook_job(json!(call), now)
}

fn mime(encoding: PayloadEncoding) -> &'static str {
    match encoding {
        PayloadEncoding::Json => "application/json",
        PayloadEncoding::Form => "application/x-www-form-urlencoded",
    }
}

fn with_query(url: &str, query: &str) -> String {
    match (query.is_empty(), url.contains('?')) {
        (true, _) => url.to_owned(),
        (false, true) => format!("{url}&{query}"),
        (false, false) => format!("{url}?{query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_webhook_kind_and_occurrence_and_nothing_else() {
        let a = CampaignWebhookId::from_uuid(uuid::Uuid::from_u128(1));
        let b = CampaignWebhookId::from_uuid(uuid::Uuid::from_u128(2));
        let key = idempotency_key(a, CampaignEventKind::EmailSent, "msg_1");
        assert_eq!(key, idempotency_key(a, CampaignEventKind::EmailSent, "msg_1"));
        assert_ne!(key, idempotency_key(b, CampaignEventKind::EmailSent, "msg_1"));
        assert_ne!(key, idempotency_key(a, CampaignEventKind::EmailFailed, "msg_1"));
        assert_ne!(key, idempotency_key(a, CampaignEventKind::EmailSent, "msg_2"));
    }

    #[test]
    fn queries_append_to_the_url() {
        assert_eq!(with_query("https://x.test/h", "a=1"), "https://x.test/h?a=1");
        assert_eq!(with_query("https://x.test/h?k=v", "a=1"), "https://x.test/h?k=v&a=1");
        assert_eq!(with_query("https://x.test/h", ""), "https://x.test/h");
    }
}
