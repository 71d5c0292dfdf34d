//! Saved actions run for one contact outside any campaign (seed 002's shortcuts): the call is
//! rendered over the contact alone, then signed, retried and logged like every other call;
//! when it succeeds, an `action_result` job applies the action's `set_attributes` over the
//! response to the contact. When every retry fails, the contact is left unchanged.

use herald_campaign::compile_action;
use herald_campaign::context::Scope;
use herald_campaign::document::action_from_value;
use herald_campaign::engine::{render_request, response_attributes};
use herald_domain::job::{JobOutcome, LeasedJob};
use herald_domain::{
    ActionId, Contact, ContactId, JobKind, NewJob, SavedAction, Timestamp, WebhookDeliveryId, WorkspaceId,
};
use herald_store::StoreError;
use herald_store::campaign::{AttributeChange, CampaignWork};
use herald_store::webhook::webhook_job;
use herald_template::Limits;
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use sha2::{Digest, Sha256};

use super::{CallOrigin, CallPayload, Webhooks, endpoint};

/// An `action_result` job: the run whose response updates the contact.
#[derive(Debug, Serialize, Deserialize)]
struct ActionResult {
    delivery: WebhookDeliveryId,
    action: ActionId,
    contact: ContactId,
}

pub(super) fn result_job(delivery: WebhookDeliveryId, action: ActionId, contact: ContactId, now: Timestamp) -> NewJob {
    NewJob::new(JobKind::ActionResult, json!(ActionResult { delivery, action, contact }), now)
}

/// Why a run could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The action's request does not render for this contact (`field: reason`).
    #[error("{field}: {reason}")]
    Render { field: String, reason: String },
}

/// The key of a run: the same for the same action, contact and caller's key (a retried API
/// call makes no second call); a fresh one for every run without a key.
fn run_key(action: ActionId, contact: ContactId, key: Option<&str>) -> String {
    let unique = key.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let digest = Sha256::digest(format!("{action}:{contact}:{unique}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("whr_{hex}")
}

impl Webhooks {
    /// Renders `action` for `contact` and queues its call; returns the call's idempotency key.
    pub async fn run_action(
        &self,
        workspace: WorkspaceId,
        action: &SavedAction,
        contact: &Contact,
        unsubscribe_url: &str,
        key: Option<&str>,
    ) -> Result<String, RunError> {
        let invalid = |field: &str, reason: String| RunError::Render { field: field.to_owned(), reason };
        let step = action_from_value(action.definition.clone()).map_err(|e| invalid(&e.path, e.message))?;
        let template = compile_action(&step).map_err(|errors| {
            let first = errors.into_iter().next().unwrap_or_default();
            invalid(&first.path, first.message)
        })?;
        let no_variables = Map::new();
        let scope = Scope {
            contact,
            event: None,
            custom_variables: &no_variables,
            campaign: None,
            unsubscribe_url,
            emails: &[],
        };
        let request =
            render_request(&template, &scope.variables(), &Limits::default(), self.clock.now()).map_err(|e| match e
                .split_once(": ")
            {
                Some((field, reason)) => invalid(field, reason.to_owned()),
                None => invalid("", e),
            })?;
        let idempotency_key = run_key(action.id, contact.id, key);
        let basic_auth = request.basic_auth.as_ref().map(|(user, password)| format!("{user}:{password}"));
        let payload = CallPayload {
            endpoint: endpoint(&request.url),
            origin: CallOrigin::Action {
                action: action.id,
                contact: contact.id,
                idempotency_key: idempotency_key.clone(),
            },
            request,
            basic_auth,
            secret: None,
        };
        let now = self.clock.now();
        self.store.enqueue_jobs(workspace, &[webhook_job(json!(payload), now)], now).await?;
        Ok(idempotency_key)
    }

    /// Applies a successful run's `set_attributes` to its contact, with the job's completion.
    pub async fn apply_action_result(&self, leased: &LeasedJob) -> Result<&'static str, StoreError> {
        let workspace = leased.job.workspace_id;
        let now = self.clock.now();
        let Ok(run) = serde_json::from_value::<ActionResult>(leased.job.payload.clone()) else {
            let error = "the job's payload is not an action result".to_owned();
            self.store.finish_job(workspace, &leased.lease, &JobOutcome::Dead { error }, now).await?;
            return Ok("dead");
        };
        let mut work = CampaignWork::default();
        let found = (
            self.store.get_delivery(workspace, run.delivery).await,
            self.store.actions_by_ids(workspace, &[run.action]).await?.pop(),
            self.store.get_contact(workspace, run.contact).await,
        );
        // A deleted contact or action has nothing left to update.
        if let (Ok((delivery, _)), Some(action), Ok(contact)) = found
            && let Ok(step) = action_from_value(action.definition)
            && let Ok(template) = compile_action(&step)
        {
            let no_variables = Map::new();
            let unsubscribe_url = String::new();
            let scope = Scope {
                contact: &contact,
                event: None,
                custom_variables: &no_variables,
                campaign: None,
                unsubscribe_url: &unsubscribe_url,
                emails: &[],
            };
            for rendered in
                response_attributes(&template, scope.variables(), &delivery.response, &Limits::default(), now)
            {
                match rendered {
                    Ok((attribute, value)) => {
                        work.attributes.push(AttributeChange { contact_id: contact.id, attribute, value: Some(value) })
                    }
                    Err(reason) => {
                        tracing::warn!(action = %run.action, delivery = %run.delivery, reason, "action attribute not set")
                    }
                }
            }
        }
        self.store.commit_campaign_work(workspace, Some(&leased.lease), &work, now).await?;
        Ok("done")
    }
}
