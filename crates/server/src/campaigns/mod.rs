//! Campaigns: the stage between events and delivery. At work, the jobs that evaluate triggers
//! for committed events (`evaluate`), run journeys (`journey`), and close drop-off and
//! inactivity windows; every decision is made by `herald-campaign`'s pure code, and this
//! module reads what those decisions need and commits their effects in one transaction with
//! the job's completion. Managed through `service` (saving documents, state changes,
//! previews), which the API (`api`), the campaign pages (`pages`) and the editor (`editor`)
//! call; `drafts` holds the calls kept for someone to send or skip, `hooks` a campaign's
//! event webhooks, `secrets` the masking of secrets in documents. What journeys ask of the
//! delivery stage goes through the interfaces in `delivery` ([`JourneyEmail`],
//! [`JourneyWebhooks`]).

pub mod api;
pub mod delivery;
pub mod drafts;
pub(crate) mod editor;
mod evaluate;
pub mod hooks;
pub mod jobs;
mod journey;
pub mod numbers;
pub(crate) mod pages;
pub mod secrets;
pub mod service;

pub use delivery::{CallMade, JourneyEmail, JourneyWebhooks};
pub use jobs::{resume_job, skip_job};
pub use journey::StepResult;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_campaign::compile::topic_references;
use herald_campaign::document::WebhookStep;
use herald_campaign::{
    CompiledCampaign, DocumentError, Library, action_references, compile_with, document_from_value, template_references,
};
use herald_domain::job::{JobLease, LeasedJob};
use herald_domain::{ActionId, CampaignId, JobKind, TemplateId, Timestamp, TopicId, WebhookDraft, WorkspaceId};
use herald_store::campaign::{CampaignWork, WorkCommit};
use herald_store::{SharedStore, StoreError, StoreResult};
use herald_template::Limits;
use serde::de::DeserializeOwned;

use crate::audiences::segments::Segments;
use crate::clock::SharedClock;
use crate::group_commit::{CommitError, GroupCommit};
use herald_domain::CampaignEvent;

/// What the campaigns' API, pages and editor use.
#[derive(Clone, Debug)]
pub struct CampaignsState {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub campaigns: Arc<Campaigns>,
    /// The outbound webhook client's rules, which campaign webhooks' URLs are checked against.
    pub outbound: Arc<herald_webhook::client::ClientSettings>,
}

/// Compiled programs kept in memory. Versions never change; programs that use saved actions
/// are compiled again after [`ACTION_REFRESH`], so an edited action reaches every node.
const PROGRAM_CACHE: usize = 1024;
const ACTION_REFRESH: Duration = Duration::from_secs(10);

/// A compiled version with the template versions it was compiled with, and when it must be
/// compiled again (it uses saved actions).
#[derive(Debug)]
struct CachedProgram {
    program: Arc<CompiledCampaign>,
    templates: Vec<(TemplateId, u32)>,
    expires: Option<Instant>,
}

impl CachedProgram {
    fn fresh(&self) -> bool {
        self.expires.is_none_or(|at| at > Instant::now())
    }
}

/// Why a campaign job could not finish.
#[derive(Debug, thiserror::Error)]
pub enum CampaignJobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The job's payload or a stored document is unusable; retrying will not help.
    #[error("{0}")]
    Invalid(String),
}

/// One job's effects, waiting for a shared commit.
#[derive(Debug)]
pub struct PendingWork {
    workspace: WorkspaceId,
    lease: Option<JobLease>,
    work: CampaignWork,
}

/// The campaign side of a node.
#[derive(Debug)]
pub struct Campaigns {
    store: SharedStore,
    clock: SharedClock,
    /// By campaign version: one program per set of template versions its journeys send.
    programs: Mutex<HashMap<(CampaignId, u32), Vec<CachedProgram>>>,
    limits: Limits,
    /// Commits the effects of many jobs in one transaction.
    committer: GroupCommit<PendingWork, StoreResult<()>>,
    /// Unsubscribe links and the choice of transport for email steps.
    email: Arc<dyn JourneyEmail>,
    /// Makes the calls journeys reach, and those of the campaigns' event webhooks.
    webhooks: Arc<dyn JourneyWebhooks>,
    /// Re-decides the memberships of events' contacts before their triggers run.
    segments: Arc<Segments>,
}

impl Campaigns {
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        committers: usize,
        email: Arc<dyn JourneyEmail>,
        webhooks: Arc<dyn JourneyWebhooks>,
        segments: Arc<Segments>,
    ) -> Self {
        let batch_store = store.clone();
        let committer = GroupCommit::start(
            "campaign",
            clock.clone(),
            committers,
            Arc::new(move |pending: Vec<PendingWork>, now| {
                let store = batch_store.clone();
                Box::pin(async move {
                    let items: Vec<WorkCommit<'_>> = pending
                        .iter()
                        .map(|p| WorkCommit { workspace: p.workspace, lease: p.lease.as_ref(), work: &p.work })
                        .collect();
                    store.commit_campaign_batch(&items, now).await
                })
            }),
        );
        Self {
            store,
            clock,
            programs: Mutex::default(),
            limits: Limits::default(),
            committer,
            email,
            webhooks,
            segments,
        }
    }

    /// Forgets a campaign's event webhooks (one changed through this node's API).
    pub fn forget_hooks(&self, workspace: WorkspaceId, campaign: CampaignId) {
        self.webhooks.forget_hooks(workspace, campaign);
    }

    /// The webhook node index a draft's call resumes its journey at when skipped.
    pub fn draft_step_index(&self, draft: &WebhookDraft) -> Option<u32> {
        self.webhooks.draft_step_index(draft)
    }

    /// Adds the delivery jobs of a campaign event to `work`, which records the event.
    async fn emit(&self, work: &mut CampaignWork, event: CampaignEvent<'_>) -> Result<(), CampaignJobError> {
        work.jobs.extend(self.webhooks.event_jobs(&event, self.clock.now()).await?);
        Ok(())
    }

    /// Commits one job's effects (with the job's completion when `lease` is given), sharing
    /// the transaction with other jobs' effects.
    async fn commit(
        &self,
        workspace: WorkspaceId,
        lease: Option<&JobLease>,
        work: CampaignWork,
    ) -> Result<(), CampaignJobError> {
        let pending = PendingWork { workspace, lease: lease.copied(), work };
        self.commit_all(vec![pending])
            .await
            .pop()
            .unwrap_or_else(|| Err(StoreError::Corrupt("the commit gave no result".into()).into()))
    }

    /// Commits several jobs' effects in one shared transaction; one result per item, in order.
    async fn commit_all(&self, pending: Vec<PendingWork>) -> Vec<Result<(), CampaignJobError>> {
        let count = pending.len();
        if count == 0 {
            return Vec::new();
        }
        match self.committer.submit(pending).await {
            Ok(results) => results.into_iter().map(|r| r.map_err(CampaignJobError::from)).collect(),
            Err(CommitError::Store(e)) => (0..count).map(|_| Err(shared(e.clone()).into())).collect(),
            Err(CommitError::Closed) => {
                (0..count).map(|_| Err(StoreError::Other("the server is shutting down".into()).into())).collect()
            }
        }
    }

    /// Runs a campaign job; `Ok` means its effects and its completion are committed.
    pub async fn run(&self, kind: JobKind, leased: &LeasedJob) -> Result<(), CampaignJobError> {
        match kind {
            JobKind::EvaluateEvents => self.evaluate_events(leased).await,
            JobKind::JourneyStep => match self.run_journeys(std::slice::from_ref(leased)).await.pop() {
                Some(result) => result.await,
                None => Ok(()),
            },
            JobKind::WindowCheck => self.close_window(leased).await,
            JobKind::Ping
            | JobKind::DeliverMessage
            | JobKind::DeliverWebhook
            | JobKind::ActionResult
            | JobKind::ArchiveExits
            | JobKind::RecordHits => Err(CampaignJobError::Invalid(format!("{kind} is not a campaign job"))),
            JobKind::RefreshSegments | JobKind::BuildSegment | JobKind::FanOutBroadcast => {
                Err(CampaignJobError::Invalid(format!("{kind} is not a campaign job")))
            }
        }
    }

    /// The program of one version of a campaign for a journey that entered at `entered`: its
    /// shared templates as they were then. Compiled once per process and template versions.
    async fn program(
        &self,
        workspace: WorkspaceId,
        campaign: CampaignId,
        version: u32,
        current: Option<&serde_json::Value>,
        entered: Timestamp,
    ) -> Result<Arc<CompiledCampaign>, CampaignJobError> {
        let key = (campaign, version);
        let cached = |templates: Option<&[(TemplateId, u32)]>| {
            let programs = self.programs.lock().unwrap_or_else(|e| e.into_inner());
            programs.get(&key).and_then(|list| {
                list.iter().find(|c| c.fresh() && templates.is_none_or(|t| c.templates == t)).map(|c| c.program.clone())
            })
        };
        // A program without templates is the one for every journey; one with templates is
        // looked up again with the versions this journey sends.
        let any = cached(None);
        let references = any.as_ref().map(|p| template_references(&p.document));
        match (any, references) {
            (Some(program), Some(references)) if references.is_empty() => return Ok(program),
            (Some(_), Some(references)) => {
                let resolved =
                    crate::templates::resolve(&self.store, workspace, &references, Some(entered), true).await?;
                if let Some(program) = cached(Some(&resolved.versions)) {
                    return Ok(program);
                }
            }
            _ => {}
        }
        let document = match current {
            Some(document) => document.clone(),
            None => self.store.campaign_version(workspace, campaign, version).await?,
        };
        let (compiled, templates) =
            compile_resolved(&self.store, workspace, document, true, Some(entered)).await.map_err(|e| match e {
                CompileFailure::Store(e) => CampaignJobError::Store(e),
                CompileFailure::Invalid(errors) => CampaignJobError::Invalid(format!(
                    "campaign {campaign} version {version} no longer compiles: {}",
                    join(&errors)
                )),
            })?;
        let compiled = Arc::new(compiled);
        // Versions never change, but the saved actions a program uses may.
        let expires = (!action_references(&compiled.document).is_empty()).then(|| Instant::now() + ACTION_REFRESH);
        let mut programs = self.programs.lock().unwrap_or_else(|e| e.into_inner());
        if programs.values().map(Vec::len).sum::<usize>() >= PROGRAM_CACHE {
            programs.clear();
        }
        let list = programs.entry(key).or_default();
        list.retain(|c| c.fresh() && c.templates != templates);
        list.push(CachedProgram { program: compiled.clone(), templates, expires });
        Ok(compiled)
    }

    /// Forgets compiled programs, so this node sees an edited saved action at once.
    pub fn forget_programs(&self) {
        self.programs.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Why a document did not compile.
#[derive(Debug)]
pub enum CompileFailure {
    Store(StoreError),
    Invalid(Vec<DocumentError>),
}

/// Compiles a document with the saved actions its webhook steps use and the shared templates
/// its email steps use, as they are now. Deleted actions and templates count only with
/// `deleted_ok` (journeys on versions saved before the deletion still run them; new versions
/// may not use them).
pub async fn compile_document(
    store: &SharedStore,
    workspace: WorkspaceId,
    document: serde_json::Value,
    deleted_ok: bool,
) -> Result<CompiledCampaign, CompileFailure> {
    Ok(compile_resolved(store, workspace, document, deleted_ok, None).await?.0)
}

/// [`compile_document`] with the templates as they were at `at` (now when `None`); returns
/// the template versions it compiled with too.
async fn compile_resolved(
    store: &SharedStore,
    workspace: WorkspaceId,
    document: serde_json::Value,
    deleted_ok: bool,
    at: Option<Timestamp>,
) -> Result<(CompiledCampaign, Vec<(TemplateId, u32)>), CompileFailure> {
    let document = document_from_value(document).map_err(|e| CompileFailure::Invalid(vec![e]))?;
    let ids: Vec<ActionId> = action_references(&document).iter().filter_map(|id| id.parse().ok()).collect();
    let mut library = Library::default();
    for saved in store.actions_by_ids(workspace, &ids).await.map_err(CompileFailure::Store)? {
        if saved.deleted_at.is_some() && !deleted_ok {
            continue;
        }
        // Saved actions are validated when saved; one that no longer reads is left out and
        // the step using it is reported.
        if let Ok(step) = serde_json::from_value::<WebhookStep>(saved.definition) {
            library.actions.insert(saved.id.to_string(), step);
        }
    }
    let references = template_references(&document);
    let resolved = crate::templates::resolve(store, workspace, &references, at, deleted_ok)
        .await
        .map_err(CompileFailure::Store)?;
    library.templates = resolved.templates;
    let unknown = unknown_topics(store, workspace, &document, deleted_ok).await.map_err(CompileFailure::Store)?;
    match compile_with(document, &library) {
        Ok(compiled) if unknown.is_empty() => Ok((compiled, resolved.versions)),
        Ok(_) => Err(CompileFailure::Invalid(unknown)),
        Err(mut errors) => {
            errors.extend(unknown);
            Err(CompileFailure::Invalid(errors))
        }
    }
}

/// The email steps naming a topic the workspace does not have (or, unless `deleted_ok`, has
/// deleted), by path. Topics that are not ids at all are the compiler's to report.
async fn unknown_topics(
    store: &SharedStore,
    workspace: WorkspaceId,
    document: &herald_campaign::CampaignDocument,
    deleted_ok: bool,
) -> Result<Vec<DocumentError>, StoreError> {
    let named: Vec<(String, TopicId)> = topic_references(document)
        .into_iter()
        .filter_map(|(path, raw)| raw.parse().ok().map(|id| (path, id)))
        .collect();
    if named.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<TopicId> = named.iter().map(|(_, id)| *id).collect();
    let found = store.topics_by_ids(workspace, &ids).await?;
    let known = |id: &TopicId| found.iter().any(|t| t.id == *id && (deleted_ok || t.deleted_at.is_none()));
    Ok(named
        .into_iter()
        .filter(|(_, id)| !known(id))
        .map(|(path, id)| DocumentError { path, message: format!("no topic {id} in this workspace") })
        .collect())
}

pub fn join(errors: &[DocumentError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// A store error shared by several jobs, as each one's own.
fn shared(e: Arc<StoreError>) -> StoreError {
    StoreError::Other(Box::new(e))
}

fn payload<T: DeserializeOwned>(leased: &LeasedJob) -> Result<T, CampaignJobError> {
    serde_json::from_value(leased.job.payload.clone())
        .map_err(|e| CampaignJobError::Invalid(format!("unreadable {} payload: {e}", leased.job.kind)))
}

/// How long a job that lost a race (a conflicting write by another node) waits to run again.
pub const RACE_RETRY: Duration = Duration::from_millis(200);
