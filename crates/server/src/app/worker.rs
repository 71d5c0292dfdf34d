//! The job workers: claim due jobs under a lease, run them, record the outcome.
//!
//! One loop per process claims as many jobs as it has free slots (`worker_concurrency`) and
//! runs each in its own task, so a slow job never holds up the others; the journey steps of a
//! claim run together in one task (one read, one commit; a step that makes a webhook call
//! commits when the call is over, and each gives back its own slot). When nothing is due it
//! sleeps until the next job's due time, a local wake-up, the poll interval (work enqueued by
//! other nodes), or shutdown, whichever comes first: waiting work costs no queries beyond one
//! probe per interval. The local wake-up is the store's [`QueueSignal`]: every commit of this
//! process that makes a job due before the worker's sleep ends (a request's, or a job's
//! follow-up: a journey's first step, a message's delivery) wakes it, so a chain of jobs runs
//! hop after hop without waiting for the poll.
//!
//! A job's effect commits in the same transaction as its completion, fenced by the lease
//! (`StoreError::LeaseLost` when another worker took the job over), so a crash at any point
//! repeats no visible effect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_domain::job::{JOB_RETRY, JobOutcome, LeasedJob};
use herald_domain::{JobKind, Timestamp};
use herald_store::{ClaimRequest, QueueSignal, SharedStore, StoreError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::config::WorkerSettings;
use crate::audiences::segments::Segments;
use crate::campaigns::{CampaignJobError, Campaigns, RACE_RETRY};
use crate::clock::SharedClock;
use crate::delivery::email::EmailState;

/// How long to wait before asking the database again after it failed to answer.
const STORE_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Runs jobs for this process.
#[derive(Debug)]
pub struct Worker {
    store: SharedStore,
    clock: SharedClock,
    settings: WorkerSettings,
    /// The store's: wakes the loop for jobs this process's commits make due.
    signal: Arc<QueueSignal>,
    campaigns: Arc<Campaigns>,
    segments: Arc<Segments>,
    email: Arc<crate::delivery::email::Email>,
    webhooks: Arc<crate::delivery::webhooks::Webhooks>,
    /// Written into claimed job rows so operators can tell which process holds a job.
    name: String,
}

impl Worker {
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        settings: WorkerSettings,
        campaigns: Arc<Campaigns>,
        segments: Arc<Segments>,
        email: Arc<crate::delivery::email::Email>,
        webhooks: Arc<crate::delivery::webhooks::Webhooks>,
    ) -> Self {
        let name = format!("pid{}-{:04x}", std::process::id(), rand::random::<u16>());
        let signal = store.queue_signal().clone();
        Self { store, clock, settings, signal, campaigns, segments, email, webhooks, name }
    }

    /// Runs until `shutdown`, then waits for in-flight jobs (the caller bounds that wait by
    /// dropping this future, which aborts them; their leases expire and they run again).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        tracing::info!(worker = %self.name, concurrency = self.settings.concurrency, "job worker started");
        let slots = Arc::new(Semaphore::new(self.settings.concurrency as usize));
        let mut running = JoinSet::new();
        loop {
            while let Some(finished) = running.try_join_next() {
                if let Err(e) = finished {
                    tracing::error!(error = %e, "job task panicked");
                }
            }
            let first_slot = tokio::select! {
                slot = slots.clone().acquire_owned() => match slot { Ok(s) => s, Err(_) => break },
                () = shutdown.cancelled() => break,
            };
            if shutdown.is_cancelled() {
                break;
            }
            // Jobs finish in groups (their effects share a commit): let the rest of the group
            // give back their slots, so one claim takes them all instead of one each.
            tokio::task::yield_now().await;
            let free = 1 + slots.available_permits();
            self.signal.looking();
            let claimed = match self.claim(free).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim jobs; will retry");
                    drop(first_slot);
                    if self.sleep_or_shutdown(STORE_ERROR_PAUSE, &shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            if claimed.is_empty() {
                drop(first_slot);
                let wait = self.idle_wait().await;
                if self.sleep_or_shutdown(wait, &shutdown).await {
                    break;
                }
                continue;
            }
            // One slot per claimed job: the claim asked for no more than were free.
            let mut held = first_slot;
            if let Some(more) = claimed.len().checked_sub(1).filter(|n| *n > 0) {
                match slots.clone().acquire_many_owned(u32::try_from(more).unwrap_or(u32::MAX)).await {
                    Ok(more) => held.merge(more),
                    Err(_) => break,
                }
            }
            let (steps, others) = split_steps(claimed);
            if !steps.is_empty() {
                // A slot each: a step waiting for its call holds only its own.
                let (me, slots) = (self.clone(), steps.iter().map(|_| held.split(1)).collect());
                running.spawn(async move { me.run_steps(steps, slots).await });
            }
            for job in others {
                let (me, slot) = (self.clone(), held.split(1));
                running.spawn(async move {
                    me.run_one(job).await;
                    drop(slot);
                });
            }
        }
        tracing::info!(in_flight = running.len(), "job worker stopping; finishing in-flight jobs");
        while running.join_next().await.is_some() {}
        tracing::info!("job worker stopped");
    }

    /// Runs every job due at the clock's current time, including jobs that running them makes
    /// due, until none is due. Returns how many runs it made. This is how tests with a manual
    /// clock drive the queue instead of sleeping.
    pub async fn run_until_idle(&self) -> Result<usize, StoreError> {
        let mut runs = 0;
        loop {
            match self.run_once().await? {
                0 => return Ok(runs),
                ran => runs += ran,
            }
        }
    }

    /// Runs the jobs one claim takes (those due now, up to the concurrency) and returns how
    /// many: one hop of a chain of jobs, for tests that look at the state between hops.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let claimed = self.claim(self.settings.concurrency as usize).await?;
        let runs = claimed.len();
        let (steps, others) = split_steps(claimed);
        futures::future::join(
            self.run_steps(steps, Vec::new()),
            futures::future::join_all(others.into_iter().map(|job| self.run_one(job))),
        )
        .await;
        Ok(runs)
    }

    async fn claim(&self, limit: usize) -> Result<Vec<LeasedJob>, StoreError> {
        let request = ClaimRequest {
            worker: self.name.clone(),
            now: self.clock.now(),
            lease: self.settings.lease,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        };
        self.store.claim_jobs(&request).await
    }

    /// How long to sleep when nothing is due: until the next due job, at most the poll interval.
    async fn idle_wait(&self) -> Duration {
        match self.store.next_job_due().await {
            Ok(Some(due)) => due.saturating_duration_since(self.clock.now()).min(self.settings.poll),
            Ok(None) | Err(_) => self.settings.poll,
        }
    }

    /// Sleeps for `wait` unless a commit makes a job due before then or shutdown is asked
    /// first; returns whether shutdown was asked.
    async fn sleep_or_shutdown(&self, wait: Duration, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            () = tokio::time::sleep(wait) => false,
            () = self.signal.woken_before(self.clock.now() + wait) => false,
            () = shutdown.cancelled() => true,
        }
    }

    async fn run_one(&self, leased: LeasedJob) {
        let started = Instant::now();
        let outcome = self.execute(&leased).await;
        record(&leased, outcome, started);
    }

    /// Runs journey steps claimed together as one batch ([`Campaigns::run_journeys`]); each
    /// job gives back its slot (when it has one) as soon as its own result is recorded.
    async fn run_steps(&self, jobs: Vec<LeasedJob>, mut slots: Vec<Option<OwnedSemaphorePermit>>) {
        if jobs.is_empty() {
            return;
        }
        let started = Instant::now();
        slots.resize_with(jobs.len(), || None);
        let results = self.campaigns.run_journeys(&jobs).await;
        let settled = jobs.iter().zip(results).zip(slots).map(|((leased, result), slot)| async move {
            let result = result.await;
            let outcome = self.settle_campaign_job(leased, result, self.clock.now()).await;
            record(leased, outcome, started);
            drop(slot);
        });
        futures::future::join_all(settled).await;
    }

    /// Runs one job and records its outcome; returns the outcome's metric label.
    async fn execute(&self, leased: &LeasedJob) -> Result<&'static str, StoreError> {
        let job = &leased.job;
        let now = self.clock.now();
        if job.attempts > job.max_attempts {
            // Claimed again and again without ever finishing: its worker keeps dying on it.
            let error = format!("claimed {} times without finishing; giving up", job.attempts);
            self.store.finish_job(leased.job.workspace_id, &leased.lease, &JobOutcome::Dead { error }, now).await?;
            return Ok("dead");
        }
        match job.kind.parse::<JobKind>() {
            Ok(JobKind::Ping) => {
                self.store.complete_ping(job.workspace_id, &leased.lease, &self.name, now).await?;
                Ok("done")
            }
            Ok(JobKind::DeliverMessage) => match self.email.deliver(leased).await {
                Err(e) if e.is_transient() => self.retry_later(leased, e.to_string(), now).await,
                other => other,
            },
            Ok(JobKind::DeliverWebhook) => match self.webhooks.deliver(leased).await {
                Err(e) if e.is_transient() => self.retry_later(leased, e.to_string(), now).await,
                other => other,
            },
            Ok(JobKind::RecordHits) => match self.email.record_hits(leased).await {
                Err(e) if e.is_transient() => self.retry_later(leased, e.to_string(), now).await,
                other => other,
            },
            Ok(JobKind::ActionResult) => match self.webhooks.apply_action_result(leased).await {
                Err(e) if e.is_transient() => self.retry_later(leased, e.to_string(), now).await,
                other => other,
            },
            Ok(JobKind::ArchiveExits) => {
                match crate::delivery::webhooks::campaign_events::archive_exits(&self.store, leased, now).await {
                    Ok(()) => Ok("done"),
                    Err(StoreError::LeaseLost) => Err(StoreError::LeaseLost),
                    Err(e) => self.retry_later(leased, e.to_string(), now).await,
                }
            }
            Ok(JobKind::FanOutBroadcast) => {
                let state =
                    EmailState { store: self.store.clone(), clock: self.clock.clone(), email: self.email.clone() };
                match crate::delivery::broadcasts::fan_out(&state, leased).await {
                    Err(e) if e.is_transient() => self.retry_later(leased, e.to_string(), now).await,
                    other => other,
                }
            }
            Ok(kind @ (JobKind::RefreshSegments | JobKind::BuildSegment)) => {
                // The effect commits first and the completion after: a run repeated after a
                // crash between the two finds nothing left to change.
                match self.segments.run(kind, leased).await {
                    Ok(()) => {
                        self.store.finish_job(job.workspace_id, &leased.lease, &JobOutcome::Done, now).await?;
                        Ok("done")
                    }
                    Err(e) => self.settle_campaign_job(leased, Err(CampaignJobError::Store(e)), now).await,
                }
            }
            Ok(kind) => {
                let result = self.campaigns.run(kind, leased).await;
                self.settle_campaign_job(leased, result, now).await
            }
            Err(unknown) => {
                // A newer node may know this kind (rolling upgrade): leave it for later.
                self.retry_later(leased, format!("{unknown}; a newer herald may run it"), now).await
            }
        }
    }

    /// Records how a campaign job's run ended, unless its effects already completed it.
    /// Returns the outcome's metric label.
    async fn settle_campaign_job(
        &self,
        leased: &LeasedJob,
        result: Result<(), CampaignJobError>,
        now: Timestamp,
    ) -> Result<&'static str, StoreError> {
        match result {
            Ok(()) => Ok("done"),
            Err(CampaignJobError::Store(StoreError::LeaseLost)) => Err(StoreError::LeaseLost),
            Err(CampaignJobError::Store(StoreError::Conflict { constraint })) => {
                // Another node changed the same journey or enrolled the same contact first:
                // run again shortly and decide on what is committed now.
                let error = format!("lost a race ({constraint}); running again");
                let outcome = JobOutcome::Retry { at: now + RACE_RETRY, error };
                self.store.finish_job(leased.job.workspace_id, &leased.lease, &outcome, now).await?;
                Ok("retry")
            }
            Err(CampaignJobError::Store(e)) => self.retry_later(leased, e.to_string(), now).await,
            Err(CampaignJobError::Invalid(error)) => {
                tracing::error!(job = %leased.job.id, kind = %leased.job.kind, error, "campaign job cannot run");
                self.store.finish_job(leased.job.workspace_id, &leased.lease, &JobOutcome::Dead { error }, now).await?;
                Ok("dead")
            }
        }
    }

    /// Records a failed run: again after the retry policy's backoff, or dead when the attempts
    /// are spent. Returns the outcome's metric label.
    async fn retry_later(&self, leased: &LeasedJob, error: String, now: Timestamp) -> Result<&'static str, StoreError> {
        tracing::warn!(job = %leased.job.id, kind = %leased.job.kind, error, "job failed; it runs again later");
        let outcome = JobOutcome::after_failure(&JOB_RETRY, leased.job.attempts, error, now, rand::random());
        let label = if matches!(outcome, JobOutcome::Dead { .. }) { "dead" } else { "retry" };
        self.store.finish_job(leased.job.workspace_id, &leased.lease, &outcome, now).await?;
        Ok(label)
    }
}

/// Separates the journey steps that run as one batch from the jobs that run alone (including
/// steps claimed too often, which `execute` gives up on).
fn split_steps(claimed: Vec<LeasedJob>) -> (Vec<LeasedJob>, Vec<LeasedJob>) {
    claimed.into_iter().partition(|leased| {
        leased.job.attempts <= leased.job.max_attempts && leased.job.kind.parse() == Ok(JobKind::JourneyStep)
    })
}

/// Counts a finished run in the metrics, and logs what the worker could not record.
fn record(leased: &LeasedJob, outcome: Result<&'static str, StoreError>, started: Instant) {
    let kind = leased.job.kind.clone();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(StoreError::LeaseLost) => {
            tracing::warn!(job = %leased.job.id, kind, "lease lost; another worker took the job over");
            "lease_lost"
        }
        Err(e) => {
            // The job stays leased; when the lease expires it is claimed again.
            tracing::error!(job = %leased.job.id, kind, error = %e, "cannot record the job's outcome");
            "store_error"
        }
    };
    let labels = [("kind", kind), ("outcome", outcome.to_owned())];
    metrics::counter!("herald_jobs_total", &labels).increment(1);
    metrics::histogram!("herald_job_duration_seconds", &labels[..1]).record(started.elapsed().as_secs_f64());
}
