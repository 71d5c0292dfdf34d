//! Outbound webhooks at work: the delivery job that makes one attempt of a call, signs it with
//! the workspace's keys (or a campaign event webhook's own secret), records it, and when the
//! call is over (success, a final refusal, or retries exhausted) does what follows: a journey's
//! call resumes the journey, all in one commit per attempt. `campaign_events` makes the calls
//! of campaign event webhooks; `service` holds the use cases the API and pages share.

pub mod api;
pub mod campaign_events;
pub(crate) mod pages;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_campaign::engine::{WebhookRequest, WebhookResult};
use herald_domain::job::{JobOutcome, LeasedJob};
use herald_domain::{
    CampaignEventKind, Journey, NewJob, Timestamp, WebhookAttempt, WebhookDelivery, WebhookDeliveryId, WebhookStatus,
    WorkspaceId,
};
use herald_store::webhook::{AttemptRecord, CallRecord, DeliveryProgress, NewDelivery, SigningKeyRecord, webhook_job};
use herald_store::{SharedStore, StoreError, StoreResult};
use herald_webhook::client::{OutboundRequest, WebhookClient};
use herald_webhook::retry::{self, AttemptOutcome, Class, GiveUp, RetrySchedule, Verdict};
use herald_webhook::sign::{SigningKey, sign};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::clock::SharedClock;
use crate::group_commit::{CommitError, GroupCommit};

pub mod actions;
mod calls;
pub mod health;
pub mod service;

pub use calls::*;

/// What outbound webhooks' API and pages use.
#[derive(Clone, Debug)]
pub struct WebhooksState {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub webhooks: Arc<Webhooks>,
    /// Unsubscribe links, which a saved action's request may use.
    pub links: Arc<dyn UnsubscribeLinks>,
    /// The campaign engine, whose compiled programs must see an edited saved action.
    pub campaigns: Arc<crate::campaigns::Campaigns>,
}

/// What a saved action's run asks of email, named here so that webhooks import no email code.
#[async_trait::async_trait]
pub trait UnsubscribeLinks: Send + Sync + std::fmt::Debug + 'static {
    /// The link that unsubscribes `contact` (`{{ unsubscribe_url }}` in templates).
    async fn unsubscribe_url(&self, workspace: WorkspaceId, contact: herald_domain::ContactId) -> StoreResult<String>;
}

/// Requests in flight to one endpoint at most, so a slow or dead endpoint cannot hold up
/// deliveries to others.
pub const ENDPOINT_CONCURRENCY: usize = 16;
/// Waiting retries released at once when a failing endpoint answers again; each released call
/// that succeeds releases the next ones, so the backlog drains at the endpoint's own pace.
pub const RELEASE_BATCH: u32 = 50;
/// How long a rotated signing key keeps signing beside its successor.
pub const KEY_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// How long a node signs with the keys it read before it reads them again. A rotation made on
/// this node applies at once; one made on another node, within this time.
const KEYS_REFRESH: Duration = Duration::from_secs(1);

/// How a node makes outbound calls.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub client: herald_webhook::client::ClientSettings,
    /// How long an endpoint may fail every attempt before it is disabled.
    pub disable_after: Duration,
}

impl From<herald_webhook::client::ClientSettings> for WebhookSettings {
    fn from(client: herald_webhook::client::ClientSettings) -> Self {
        Self { client, disable_after: health::DISABLE_AFTER }
    }
}

/// The webhook side of a node.
#[derive(Debug)]
pub struct Webhooks {
    store: SharedStore,
    clock: SharedClock,
    client: WebhookClient,
    schedule: RetrySchedule,
    endpoints: Mutex<HashMap<String, Endpoint>>,
    /// Failure streaks and disabled endpoints.
    pub health: health::Health,
    /// Each workspace's signing keys as last read, so a call does not read them from the
    /// database.
    keys: Mutex<KeyCache>,
    /// Opens deliveries in shared transactions.
    opens: GroupCommit<(WorkspaceId, NewDelivery), StoreResult<WebhookDelivery>>,
    /// Records attempts in shared transactions.
    attempts: GroupCommit<AttemptRecord, StoreResult<()>>,
}

/// Signing keys as read: when, and each key with its retirement. `rotations` counts this
/// node's rotations, so a read that a rotation overtook is not kept.
#[derive(Debug, Default)]
struct KeyCache {
    rotations: u64,
    workspaces: HashMap<WorkspaceId, (Instant, Vec<RetiringKey>)>,
}

/// A signing key and when it stops signing.
type RetiringKey = (SigningKey, Option<Timestamp>);

/// What a node knows of one endpoint.
#[derive(Debug, Clone)]
struct Endpoint {
    slots: Arc<Semaphore>,
    /// Its last attempt failed in a way worth retrying.
    failing: bool,
}

impl Webhooks {
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        client: WebhookClient,
        disable_after: Duration,
        committers: usize,
    ) -> Self {
        let health = health::Health::new(store.clone(), clock.clone(), disable_after);
        let batch_store = store.clone();
        let opens = GroupCommit::start(
            "webhook_open",
            clock.clone(),
            committers,
            Arc::new(move |calls: Vec<(WorkspaceId, NewDelivery)>, now| {
                let store = batch_store.clone();
                Box::pin(async move { store.open_deliveries(&calls, now).await })
            }),
        );
        let batch_store = store.clone();
        let attempts = GroupCommit::start(
            "webhook_attempt",
            clock.clone(),
            committers,
            Arc::new(move |records: Vec<AttemptRecord>, now| {
                let store = batch_store.clone();
                Box::pin(async move { store.record_attempts(&records, now).await })
            }),
        );
        Self {
            store,
            clock,
            client,
            schedule: retry::SCHEDULE,
            endpoints: Mutex::default(),
            health,
            keys: Mutex::default(),
            opens,
            attempts,
        }
    }

    /// The client's address policy and scheme rules, which endpoints are checked against.
    pub fn client_settings(&self) -> &herald_webhook::client::ClientSettings {
        self.client.settings()
    }

    /// The keys that sign now, making the workspace's first key on first use. They are read
    /// from the database at most once per [`KEYS_REFRESH`]; a key retires on time regardless.
    pub async fn signing_keys(&self, workspace: WorkspaceId) -> StoreResult<Vec<SigningKey>> {
        let now = self.clock.now();
        let live = |keys: &[RetiringKey]| -> Vec<SigningKey> {
            keys.iter().filter(|(_, retires)| retires.is_none_or(|at| at > now)).map(|(k, _)| k.clone()).collect()
        };
        let rotations = {
            let cache = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            let cached = cache.workspaces.get(&workspace).filter(|(read, _)| read.elapsed() < KEYS_REFRESH);
            if let Some(keys) = cached.map(|(_, keys)| live(keys)).filter(|keys| !keys.is_empty()) {
                return Ok(keys);
            }
            cache.rotations
        };
        let mut records = self.store.signing_keys(workspace, now).await?;
        if records.is_empty() {
            self.rotate(workspace, Duration::ZERO).await?;
            records = self.store.signing_keys(workspace, now).await?;
        }
        let keys: Vec<_> =
            records.into_iter().map(|k| (SigningKey::from_secret(k.id, k.secret), k.retires_at)).collect();
        let signing = live(&keys);
        let mut cache = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if cache.rotations == rotations {
            cache.workspaces.insert(workspace, (Instant::now(), keys));
        }
        Ok(signing)
    }

    /// Makes a new signing key; the current ones keep signing for `overlap`. Returns the new
    /// key (its secret is shown to the caller once).
    pub async fn rotate(&self, workspace: WorkspaceId, overlap: Duration) -> StoreResult<SigningKey> {
        let now = self.clock.now();
        let key = SigningKey::generate();
        let record =
            SigningKeyRecord { id: key.id.clone(), secret: key.secret().to_vec(), created_at: now, retires_at: None };
        self.store.rotate_signing_key(workspace, &record, now + overlap).await?;
        let mut cache = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        cache.rotations += 1;
        cache.workspaces.remove(&workspace);
        Ok(key)
    }

    fn endpoint(&self, endpoint: &str) -> Endpoint {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        endpoints
            .entry(endpoint.to_owned())
            .or_insert_with(|| Endpoint { slots: Arc::new(Semaphore::new(ENDPOINT_CONCURRENCY)), failing: false })
            .clone()
    }

    /// Records whether `endpoint` is failing; returns whether it was.
    fn mark(&self, endpoint: &str, failing: bool) -> bool {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        endpoints.get_mut(endpoint).is_some_and(|e| std::mem::replace(&mut e.failing, failing))
    }

    /// Runs one delivery job; returns the outcome's metric label.
    pub async fn deliver(&self, leased: &LeasedJob) -> Result<&'static str, StoreError> {
        let workspace = leased.job.workspace_id;
        let Ok(call) = serde_json::from_value::<CallPayload>(leased.job.payload.clone()) else {
            let error = "the job's payload is not a webhook call".to_owned();
            self.store.finish_job(workspace, &leased.lease, &JobOutcome::Dead { error }, self.clock.now()).await?;
            return Ok("dead");
        };
        let new =
            call.origin.delivery(call.endpoint.clone(), logged_request(&call.request), leased.job.payload.clone());
        let delivery = one(self.opens.submit(vec![(workspace, new)]).await)?;
        if delivery.status != WebhookStatus::Pending {
            let now = self.clock.now();
            let resume: Vec<NewJob> = call.origin.resume(delivery.id, delivery.status, now).into_iter().collect();
            // Already over (a journey resumed twice, a replayed job or event): no second
            // call; a waiting journey is resumed with the result on record, committed with
            // the job's completion so that no crash can come between them.
            self.store.finish_job_and_enqueue(workspace, &leased.lease, &JobOutcome::Done, &resume, now).await?;
            return Ok("done");
        }
        let judged = self.attempt_call(workspace, &call, &delivery.idempotency_key, delivery.attempts).await?;
        let now = self.clock.now();
        let mut follow_up: Vec<NewJob> = Vec::new();
        if judged.progress.status != WebhookStatus::Pending {
            follow_up.extend(call.origin.resume(delivery.id, judged.progress.status, now));
        }
        follow_up.extend(self.failure_events(workspace, &call, delivery.id, &judged, now).await?);
        let result = if matches!(judged.job, JobOutcome::Retry { .. }) { "retry" } else { "done" };
        let record = AttemptRecord {
            workspace,
            lease: leased.lease,
            delivery: delivery.id,
            attempt: judged.attempt,
            progress: judged.progress,
            outcome: judged.job,
            follow_up,
        };
        one(self.attempts.submit(vec![record]).await)?;
        self.recorded(workspace, &delivery.endpoint, &judged.verdict, delivery.attempts, judged.label).await?;
        Ok(result)
    }

    /// Makes a journey's call at once, as its step runs: its first attempt, and what the step
    /// commits with it (the delivery and attempt; the retry's job, or the `webhook_failed`
    /// events), and when the call is over, its result for the journey to go on with. Once the
    /// step's commit holds it, [`FirstCall::recorded`] does what follows a recorded attempt.
    pub async fn call_now(
        &self,
        journey: &Journey,
        index: u32,
        step: &str,
        request: WebhookRequest,
    ) -> StoreResult<FirstCall> {
        let workspace = journey.workspace_id;
        let call = journey_call(journey, index, step, request);
        let payload = json!(call);
        let id = WebhookDeliveryId::from_uuid(herald_store::new_uuid(self.clock.now()));
        let delivery = call.origin.delivery(call.endpoint.clone(), logged_request(&call.request), payload.clone());
        let judged = self.attempt_call(workspace, &call, &delivery.idempotency_key, 0).await?;
        let now = self.clock.now();
        let mut jobs = self.failure_events(workspace, &call, id, &judged, now).await?;
        if let JobOutcome::Retry { at, .. } = judged.job {
            jobs.push(webhook_job(payload, at));
        }
        let result = outcome(judged.progress.status).map(|outcome| WebhookResult {
            outcome,
            status: judged.attempt.status,
            response: judged.progress.response.clone(),
        });
        let after = Recorded { workspace, endpoint: call.endpoint, verdict: judged.verdict, label: judged.label };
        let record = CallRecord { id, delivery, attempt: judged.attempt, progress: judged.progress };
        Ok(FirstCall { record, jobs, result, after })
    }

    /// Makes an attempt of `call` (its `attempts` made before) unless its endpoint is
    /// disabled, and judges it: what the delivery and the job become.
    async fn attempt_call(
        &self,
        workspace: WorkspaceId,
        call: &CallPayload,
        key: &str,
        attempts: u32,
    ) -> StoreResult<Judged> {
        let (attempt, outcome) = if self.health.is_disabled(workspace, &call.endpoint).await? {
            disabled_attempt(&call.request, &call.endpoint, attempts, self.clock.now())
        } else {
            let keys = match &call.secret {
                Some(secret) => vec![SigningKey::from_webhook_secret(secret)],
                None => self.signing_keys(workspace).await?,
            };
            let made = self.attempt(&call.request, key, attempts, &call.endpoint, call.basic_auth.clone(), &keys).await;
            self.health.observe(workspace, &call.endpoint, made.1.class() == Class::Success).await?;
            made
        };
        let now = self.clock.now();
        let reason = attempt.error.clone().unwrap_or_else(|| format!("HTTP {}", attempt.status.unwrap_or(0)));
        let verdict = self.schedule.judge(attempts, outcome.judged(reason), now, rand::random());
        let response = response_value(&attempt.response_body, attempt.status);
        let (status, job, label) = match &verdict {
            Verdict::Delivered => (WebhookStatus::Succeeded, JobOutcome::Done, "succeeded"),
            Verdict::Retry { not_before, reason } => {
                (WebhookStatus::Pending, JobOutcome::Retry { at: *not_before, error: reason.clone() }, "retry")
            }
            Verdict::GiveUp { why: GiveUp::Permanent, .. } => (WebhookStatus::Failed, JobOutcome::Done, "failed"),
            Verdict::GiveUp { why: GiveUp::Exhausted, .. } => (WebhookStatus::Exhausted, JobOutcome::Done, "exhausted"),
        };
        let progress = DeliveryProgress {
            status,
            last_status: attempt.status,
            last_error: attempt.error.clone(),
            response: if status == WebhookStatus::Succeeded { response } else { Value::Null },
        };
        let attempt =
            if call.request.log_response_body { attempt } else { WebhookAttempt { response_body: None, ..attempt } };
        Ok(Judged { attempt, verdict, job, label, progress })
    }

    /// The `webhook_failed` campaign events of a journey's call that just failed for good.
    async fn failure_events(
        &self,
        workspace: WorkspaceId,
        call: &CallPayload,
        delivery: WebhookDeliveryId,
        judged: &Judged,
        now: Timestamp,
    ) -> StoreResult<Vec<NewJob>> {
        let status = judged.progress.status;
        let CallOrigin::Journey { journey, campaign, contact, step, .. } = &call.origin else { return Ok(Vec::new()) };
        if !matches!(status, WebhookStatus::Failed | WebhookStatus::Exhausted) {
            return Ok(Vec::new());
        }
        let data = failed_call_data(delivery, step, Some(&call.request.url), status, &judged.attempt);
        let occurrence = campaign_events::Occurrence {
            kind: CampaignEventKind::WebhookFailed,
            campaign: *campaign,
            contact: *contact,
            journey: Some(*journey),
            data,
            occurrence: delivery.to_string(),
        };
        campaign_events::jobs_for(&self.store, workspace, occurrence, now).await
    }

    /// What follows a recorded attempt: the endpoint's state noted, and when a failing
    /// endpoint answers again, its waiting retries released.
    async fn recorded(
        &self,
        workspace: WorkspaceId,
        endpoint: &str,
        verdict: &Verdict,
        retries_done: u32,
        label: &'static str,
    ) -> StoreResult<()> {
        let was_failing = self.mark(endpoint, verdict.is_transient_failure());
        if *verdict == Verdict::Delivered && (was_failing || retries_done > 0) {
            // The endpoint answers again: its waiting retries need not wait out their backoff.
            let now = self.clock.now();
            let released = self.store.release_endpoint_retries(workspace, endpoint, now, RELEASE_BATCH).await?;
            if released > 0 {
                tracing::info!(endpoint, released, "endpoint recovered; retries released");
            }
        }
        metrics::counter!("herald_webhook_attempts_total", "outcome" => label).increment(1);
        Ok(())
    }

    /// Makes one signed attempt and describes it for the log.
    async fn attempt(
        &self,
        request: &WebhookRequest,
        key: &str,
        attempts: u32,
        endpoint: &str,
        basic_auth: Option<String>,
        keys: &[SigningKey],
    ) -> (WebhookAttempt, AttemptOutcome) {
        let at = self.clock.now();
        let body = request.body.as_bytes().to_vec();
        let timestamp = at.unix_millis() / 1000;
        let mut headers = request.headers.clone();
        if !body.is_empty() || request.method != "GET" {
            headers.push(("Content-Type".into(), request.content_type.clone()));
        }
        headers.extend(sign(keys, key, timestamp, &body).into_pairs());
        let outbound = OutboundRequest {
            method: request.method.parse().unwrap_or(reqwest::Method::POST),
            url: request.url.clone(),
            headers: headers.clone(),
            body,
            timeout: request.timeout,
            basic_auth: basic_auth.and_then(|auth| auth.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned()))),
        };
        let slots = self.endpoint(endpoint).slots;
        let result = match slots.acquire().await {
            Ok(_permit) => self.client.send(&outbound).await,
            // The semaphore is never closed.
            Err(_) => self.client.send(&outbound).await,
        };
        let masked = mask_headers(&headers);
        let attempt = WebhookAttempt {
            number: attempts + 1,
            at,
            request_line: format!("{} {}", request.method, request.url),
            request_headers: masked,
            status: result.status,
            latency_ms: u64::try_from(result.latency.as_millis()).unwrap_or(u64::MAX),
            response_body: Some(String::from_utf8_lossy(&result.body).into_owned()),
            error: result.error.clone(),
        };
        (attempt, result.outcome)
    }
}

/// The attempt a call to a disabled endpoint gets: no request, a final failure saying why.
fn disabled_attempt(
    request: &WebhookRequest,
    endpoint: &str,
    attempts: u32,
    at: Timestamp,
) -> (WebhookAttempt, AttemptOutcome) {
    let error = format!(
        "{endpoint} is disabled after failing for days; enable it with POST /api/v1/webhook-endpoints/{{id}}/enable"
    );
    let attempt = WebhookAttempt {
        number: attempts + 1,
        at,
        request_line: format!("{} {}", request.method, request.url),
        request_headers: mask_headers(&request.headers),
        status: None,
        latency_ms: 0,
        response_body: None,
        error: Some(error),
    };
    (attempt, AttemptOutcome::Refused)
}

/// An attempt made and judged: what it records and what becomes of its job.
struct Judged {
    /// As logged (the response body only when the call logs it).
    attempt: WebhookAttempt,
    verdict: Verdict,
    job: JobOutcome,
    label: &'static str,
    progress: DeliveryProgress,
}

/// A journey's call made as its step ran ([`Webhooks::call_now`]).
#[derive(Debug)]
pub struct FirstCall {
    /// The delivery and its first attempt, for the step's commit.
    pub record: CallRecord,
    /// Jobs the step's commit enqueues: the retry, or the `webhook_failed` events.
    pub jobs: Vec<NewJob>,
    /// How the call ended; `None` while it waits for a retry.
    pub result: Option<WebhookResult>,
    after: Recorded,
}

/// What [`FirstCall::recorded`] needs.
#[derive(Debug)]
struct Recorded {
    workspace: WorkspaceId,
    endpoint: String,
    verdict: Verdict,
    label: &'static str,
}

impl FirstCall {
    /// Does what follows the attempt once the step's commit holds it.
    pub async fn recorded(&self, webhooks: &Webhooks) -> StoreResult<()> {
        let Recorded { workspace, endpoint, verdict, label } = &self.after;
        webhooks.recorded(*workspace, endpoint, verdict, 0, label).await
    }
}

/// The result of a group-committed submission of one item.
fn one<T>(committed: Result<Vec<StoreResult<T>>, CommitError>) -> StoreResult<T> {
    match committed {
        Ok(mut results) => results.pop().unwrap_or_else(|| Err(StoreError::Corrupt("no result".into()))),
        Err(CommitError::Store(e)) => Err(StoreError::Other(Box::new(e))),
        Err(CommitError::Closed) => Err(StoreError::Other("the server is shutting down".into())),
    }
}

/// `scheme://host:port` of a URL (the unit of concurrency limits).
fn endpoint(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => url.to_owned(),
    }
}

/// A response body as templates see it: parsed JSON, else the text, else null.
fn response_value(body: &Option<String>, status: Option<u16>) -> Value {
    match (body, status) {
        (Some(text), Some(_)) if !text.is_empty() => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_domain::{CampaignId, ContactId, JourneyId};

    fn journey_at(millis: i64) -> JourneyId {
        JourneyId::from_uuid(herald_store::new_uuid(Timestamp::from_unix_millis(millis)))
    }

    #[test]
    fn keys_are_stable_distinct_and_ordered_by_journey() {
        let (early, late) = (journey_at(1_767_225_600_000), journey_at(1_767_225_660_000));
        assert_eq!(idempotency_key(early, "crm"), idempotency_key(early, "crm"));
        assert_ne!(idempotency_key(early, "crm"), idempotency_key(early, "erp"));
        assert_ne!(idempotency_key(early, "crm"), idempotency_key(late, "crm"));
        assert!(idempotency_key(early, "zzz") < idempotency_key(late, "aaa"), "a later journey's keys sort after");
    }

    #[test]
    fn calls_queued_before_ordered_keys_keep_their_key() {
        let journey = journey_at(1_767_225_600_000);
        let request = json!({"method": "POST", "url": "https://crm.example/leads", "headers": [], "content_type": "application/json",
                             "body": "{}", "timeout": 4000, "log_response_body": false});
        let uuid = herald_store::new_uuid(Timestamp::from_unix_millis(1_767_225_600_000));
        let (campaign, contact) = (CampaignId::from_uuid(uuid), ContactId::from_uuid(uuid));
        let old = json!({"journey": journey, "campaign": campaign, "contact": contact, "step_index": 0, "step": "crm",
                         "request": request, "endpoint": "https://crm.example:443"});
        let call: CallPayload = serde_json::from_value(old).expect("a call queued before");
        let delivery = call.origin.delivery(call.endpoint.clone(), Value::Null, Value::Null);
        assert_eq!(delivery.idempotency_key, legacy_idempotency_key(journey, "crm"));

        let mut new = call;
        let CallOrigin::Journey { idempotency_key: key, .. } = &mut new.origin else { panic!("a journey's call") };
        *key = Some(idempotency_key(journey, "crm"));
        let delivery = new.origin.delivery(new.endpoint.clone(), Value::Null, Value::Null);
        assert_eq!(delivery.idempotency_key, idempotency_key(journey, "crm"));
    }
}
