//! The journey runner: one job per due step. It runs the step and every step after it that
//! is due now (`herald_campaign::engine::advance`), and commits their effects, the journey's
//! new place and the next step's job together with its own completion. A job whose journey
//! has moved on (or ended) does nothing, so a job delivered twice repeats nothing. Jobs
//! claimed together run together: one read of their journeys, one commit of their effects.

use futures::future::BoxFuture;
use herald_campaign::document::Scope as Target;
use herald_campaign::engine::{
    Advance, Effect, JourneyState, Next, RenderedEmail, StepRun, Surroundings, TopicUrls, Unsent, WebhookOutcome,
    WebhookResult, advance, after_webhook,
};
use herald_domain::campaign_webhook::message_data;
use herald_domain::job::LeasedJob;
use herald_domain::{
    CampaignEvent, CampaignEventKind, CampaignState, Journey, JourneyId, JourneyStatus, Message, MessageId,
    MessageStatus, NewJob, Timestamp, TopicId, WebhookDeliveryId,
};
use herald_store::StoreError;
use herald_store::campaign::{AttributeChange, CampaignWork, JourneyContext, JourneyUpdate, StepRecord};
use herald_store::email::delivery_job;
use serde_json::{Value, json};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use herald_domain::WorkspaceId;

use super::jobs::{StepPayload, step_job};
use super::{CallMade, CampaignJobError, Campaigns, JourneyEmail, JourneyWebhooks, PendingWork, payload, shared};
use herald_campaign::CampaignInfo;

impl Campaigns {
    /// Runs journey-step jobs claimed together: one read for all their journeys and one
    /// commit (shared with other work) for all their effects, each effect still fenced by its
    /// own job's lease. Returns one result per job, in order: ready, except for a journey that
    /// reached a webhook step, whose call is made at once ([`Self::call_and_go_on`]) and
    /// whose result comes when the call and its own commit are done, so a slow endpoint
    /// holds up only its own journeys.
    pub async fn run_journeys<'a>(&'a self, jobs: &'a [LeasedJob]) -> Vec<StepResult<'a>> {
        let now = self.clock.now();
        let mut results: Vec<Option<StepResult<'a>>> = jobs.iter().map(|_| None).collect();
        let mut steps = Vec::with_capacity(jobs.len());
        for (index, leased) in jobs.iter().enumerate() {
            match payload::<StepPayload>(leased) {
                Ok(step) => steps.push((index, step)),
                Err(e) => results[index] = Some(ready(Err(e))),
            }
        }
        let mut wanted: BTreeMap<WorkspaceId, Vec<JourneyId>> = BTreeMap::new();
        for (index, step) in &steps {
            wanted.entry(jobs[*index].job.workspace_id).or_default().push(step.journey);
        }
        let mut contexts = HashMap::with_capacity(steps.len());
        let mut unread = HashMap::new();
        for (workspace, ids) in wanted {
            match self.store.journey_contexts(workspace, &ids).await {
                Ok(found) => contexts.extend(found.into_iter().map(|c| (c.journey.id, c))),
                Err(e) => {
                    unread.insert(workspace, Arc::new(e));
                }
            }
        }
        // The journeys still where their jobs expect them (absent: deleted with their contact
        // or campaign), and the results of the calls they waited for, read concurrently.
        let mut runnable = Vec::with_capacity(steps.len());
        let mut pending = Vec::with_capacity(steps.len());
        for (index, step) in steps {
            let leased = &jobs[index];
            let workspace = leased.job.workspace_id;
            if let Some(e) = unread.get(&workspace) {
                results[index] = Some(ready(Err(shared(e.clone()).into())));
                continue;
            }
            match contexts.get(&step.journey).filter(|c| {
                c.journey.status == JourneyStatus::Active
                    && c.journey.step == step.step
                    && c.journey.run_at == step.run_at
            }) {
                Some(context) => runnable.push((index, step, context)),
                None => pending
                    .push((index, PendingWork { workspace, lease: Some(leased.lease), work: CampaignWork::default() })),
            }
        }
        let calls =
            futures::future::join_all(runnable.iter().map(|(_, step, context)| self.called(context, step))).await;
        let mut calling = Vec::new();
        for ((index, _, context), called) in runnable.into_iter().zip(calls) {
            let mut work = CampaignWork::default();
            let ran = match called {
                Ok(called) => self.step(context.clone(), called.as_ref(), &mut work, now).await,
                Err(e) => Err(e),
            };
            let lease = Some(jobs[index].lease);
            let workspace = context.journey.workspace_id;
            match ran {
                // A first run calls at once; a run again (after a crash or a lost race) leaves
                // the call to its delivery job, which finds it if it was made.
                Ok(Some(waiting)) if jobs[index].job.attempts <= 1 => calling.push((index, context, work, waiting)),
                Ok(Some(waiting)) => {
                    work.jobs.push(waiting.job(self.webhooks.as_ref(), now));
                    pending.push((index, PendingWork { workspace, lease, work }));
                }
                Ok(None) => pending.push((index, PendingWork { workspace, lease, work })),
                Err(e) => results[index] = Some(ready(Err(e))),
            }
        }
        let (indexes, pending): (Vec<usize>, Vec<PendingWork>) = pending.into_iter().unzip();
        for (index, result) in indexes.into_iter().zip(self.commit_all(pending).await) {
            results[index] = Some(ready(result));
        }
        for (index, context, work, waiting) in calling {
            results[index] = Some(Box::pin(self.call_and_go_on(&jobs[index], context.clone(), work, waiting)));
        }
        // Every job got its result above; a gap would be a bug, reported as the job's failure.
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| ready(Err(StoreError::Corrupt("the batch gave this job no result".into()).into())))
            })
            .collect()
    }

    /// Makes the call a journey reached, and when it is over at once (most are), runs the
    /// journey on from the webhook step with its result; commits all of it with the step's
    /// effects and the job's completion. A call to retry leaves the journey waiting for its
    /// delivery job, as a call made by that job does.
    async fn call_and_go_on(
        &self,
        leased: &LeasedJob,
        context: JourneyContext,
        mut work: CampaignWork,
        waiting: Waiting,
    ) -> Result<(), CampaignJobError> {
        let workspace = context.journey.workspace_id;
        let Waiting { journey, contact, index, step, request } = waiting;
        let CallMade { record, jobs, result, recorded } =
            self.webhooks.call_now(&journey, index, &step, *request).await?;
        work.calls.push(record.clone());
        work.jobs.extend(jobs.iter().cloned());
        if let Some(result) = &result {
            let now = self.clock.now();
            let resumed = JourneyContext { journey, contact, ..context };
            // A second webhook step right after is called by its delivery job.
            if let Some(next) = self.step(resumed, Some(result), &mut work, now).await? {
                work.jobs.push(next.job(self.webhooks.as_ref(), now));
            }
            // One move of the journey: from where the job found it to where it is now.
            if let Some(last) = work.updates.pop()
                && let Some(first) = work.updates.last_mut()
            {
                let conversion_step = last.conversion_step.or_else(|| first.conversion_step.take());
                *first = JourneyUpdate { expect: first.expect, conversion_step, ..last };
            }
        }
        match self.commit(workspace, Some(&leased.lease), work).await {
            // The journey moved while its call was made (its contact deleted, its campaign
            // archived, another node first): the call is recorded all the same, with its
            // retry, as its delivery job would have recorded it.
            Err(CampaignJobError::Store(StoreError::Conflict { .. })) => {
                let logged = CampaignWork { calls: vec![record], jobs, ..Default::default() };
                self.commit(workspace, Some(&leased.lease), logged).await?;
            }
            committed => committed?,
        }
        if let Err(e) = recorded.await {
            tracing::warn!(error = %e, "the call is recorded, but what follows it (fast recovery) failed");
        }
        Ok(())
    }

    /// The result of the call or draft the journey waited for at its step, if any.
    async fn called(
        &self,
        context: &JourneyContext,
        payload: &StepPayload,
    ) -> Result<Option<WebhookResult>, CampaignJobError> {
        Ok(match (payload.webhook, payload.skipped) {
            (Some(delivery), _) => Some(self.webhook_result(context.journey.workspace_id, delivery).await?),
            (None, true) => {
                Some(WebhookResult { outcome: WebhookOutcome::Skipped, status: None, response: Value::Null })
            }
            (None, false) => None,
        })
    }

    /// How a finished call ended, for the journey that waited for it.
    async fn webhook_result(
        &self,
        workspace: herald_domain::WorkspaceId,
        delivery: WebhookDeliveryId,
    ) -> Result<WebhookResult, CampaignJobError> {
        let (delivery, _) = self.store.get_delivery(workspace, delivery).await?;
        let Some(outcome) = self.webhooks.outcome(delivery.status) else {
            return Err(CampaignJobError::Invalid(format!("webhook delivery {} is not finished", delivery.id)));
        };
        Ok(WebhookResult { outcome, status: delivery.last_status, response: delivery.response })
    }

    /// Runs a journey's due steps into `work`; returns the call it reached and now waits for
    /// (not a draft's), which the caller makes or leaves to a delivery job.
    async fn step(
        &self,
        context: JourneyContext,
        called: Option<&WebhookResult>,
        work: &mut CampaignWork,
        now: Timestamp,
    ) -> Result<Option<Waiting>, CampaignJobError> {
        let JourneyContext {
            journey,
            campaign_name,
            campaign_state,
            contact,
            event,
            workspace_timezone,
            suppressed,
            workspace_smtp,
        } = context;
        let expect = Some((journey.step, journey.run_at));
        if campaign_state == CampaignState::Paused {
            // Held where it is; resuming gives it its job back.
            work.updates.push(JourneyUpdate {
                id: journey.id,
                expect,
                status: JourneyStatus::Active,
                step: journey.step,
                run_at: journey.run_at,
                held: true,
                custom_variables: None,
                exit_reason: None,
                converted: false,
                conversion_step: None,
            });
            return Ok(None);
        }
        let Some(from) = journey.step else { return Ok(None) };
        let compiled =
            self.program(journey.workspace_id, journey.campaign_id, journey.version, None, journey.entered_at).await?;
        let info = CampaignInfo { id: journey.campaign_id, name: campaign_name, version: journey.version };
        let unsubscribe_url = self.email.unsubscribe_url(journey.workspace_id, contact.id, None).await?;
        let topics = compiled.topics();
        let mut topic_unsubscribe_urls = TopicUrls::new();
        for &topic in &topics {
            let url = self.email.unsubscribe_url(journey.workspace_id, contact.id, Some(topic)).await?;
            topic_unsubscribe_urls.insert(topic, url);
        }
        // The topics the contact left, of those this campaign's emails name.
        let left_topics: Vec<TopicId> = match topics.is_empty() {
            true => Vec::new(),
            false => (self.store.contact_topics(journey.workspace_id, contact.id).await?.into_iter())
                .filter(|choice| !choice.subscribed && topics.contains(&choice.topic_id))
                .map(|choice| choice.topic_id)
                .collect(),
        };
        let emails = match compiled.reads_emails {
            true => self.store.journey_emails(journey.workspace_id, journey.id).await?,
            false => Vec::new(),
        };
        let surroundings = Surroundings {
            campaign: &compiled,
            info: &info,
            event: event.as_ref(),
            unsubscribe_url: &unsubscribe_url,
            topic_unsubscribe_urls: &topic_unsubscribe_urls,
            limits: &self.limits,
            workspace_timezone: workspace_timezone.as_deref(),
            emails: &emails,
        };
        let mut state = JourneyState { contact, custom_variables: journey.custom_variables.clone() };
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        let Advance { runs, next } = match called {
            Some(result) => after_webhook(&surroundings, &mut state, from, result, now),
            None => advance(&surroundings, &mut state, from, now),
        };
        // A conversion is credited to the last email handed to a transport, or the last
        // successful webhook marked `conversion`, before the goal event.
        let conversion_step = runs
            .iter()
            .rev()
            .find(|run| match &run.effect {
                Effect::Email { message } => !suppressed && !message.topic.is_some_and(|t| left_topics.contains(&t)),
                Effect::WebhookDone { outcome: WebhookOutcome::Succeeded, .. } => compiled.counts_conversion(&run.step),
                _ => false,
            })
            .map(|run| run.step.clone());
        let mut call = None;
        let first_message = work.messages.len();
        let first_call = work.calls.len();
        let delivery = Delivery {
            suppressed,
            left_topics: &left_topics,
            smtp: self.email.sends_smtp(workspace_smtp),
            email: self.email.as_ref(),
        };
        for run in runs {
            if let Effect::Webhook { request } = &run.effect {
                call = Some((run.step.clone(), request.clone()));
            }
            record(&journey, run, &delivery, self.webhooks.as_ref(), work, now);
        }
        let (status, step, run_at, exit_reason) = match next {
            Next::At { at, step } => (JourneyStatus::Active, u32::try_from(step).ok(), Some(at), None),
            Next::AwaitWebhook { step } => (JourneyStatus::Active, u32::try_from(step).ok(), None, None),
            Next::Completed => (JourneyStatus::Completed, None, None, None),
            Next::Exited => (JourneyStatus::Exited, None, None, Some("exit step".to_owned())),
        };
        let mut waiting = None;
        match (call, step) {
            // Waiting for the call: it is made at once or by its delivery job, and the journey
            // goes on when it is over. A draft waits for someone to send or skip it.
            (Some((step_id, request)), Some(index)) if run_at.is_none() && compiled.is_draft(&step_id) => {
                work.drafts.push(self.webhooks.draft(&journey, index, &step_id, *request, now));
            }
            (Some((step, request)), Some(index)) if run_at.is_none() => {
                let journey = Journey {
                    step: Some(index),
                    run_at: None,
                    custom_variables: state.custom_variables.clone(),
                    ..journey.clone()
                };
                waiting = Some(Waiting { journey, contact: state.contact.clone(), index, step, request });
            }
            _ if status == JourneyStatus::Active => work.jobs.push(step_job(journey.id, step, run_at, now)),
            _ => {}
        }
        // Campaign event webhooks: the messages this run recorded as sent, suppressed or failed
        // (queued ones fire when delivered), the calls it recorded failed (requests that could
        // not be rendered), and the journey's end.
        let mut events: Vec<(CampaignEventKind, serde_json::Value, String)> = work.messages[first_message..]
            .iter()
            .filter_map(|m| {
                let kind = match m.status {
                    MessageStatus::Sent => CampaignEventKind::EmailSent,
                    MessageStatus::Suppressed => CampaignEventKind::EmailSuppressed,
                    MessageStatus::Failed => CampaignEventKind::EmailFailed,
                    _ => return None,
                };
                let data =
                    message_data(m.id, &m.step, &m.to, &m.subject, m.status.as_str(), m.status_reason.as_deref());
                Some((kind, data, m.id.to_string()))
            })
            .collect();
        events.extend(work.calls[first_call..].iter().map(|call| {
            let step = call.delivery.step.as_deref().unwrap_or_default();
            let url = call.delivery.request["url"].as_str();
            let data = self.webhooks.failed_call_data(call.id, step, url, call.progress.status, &call.attempt);
            (CampaignEventKind::WebhookFailed, data, call.id.to_string())
        }));
        let ended = match status {
            JourneyStatus::Completed => Some("completed"),
            JourneyStatus::Exited => Some("exit_step"),
            JourneyStatus::Active => None,
        };
        if let Some(reason) = ended {
            events.push((CampaignEventKind::ContactExited, json!({ "reason": reason }), journey.id.to_string()));
        }
        for (kind, data, occurrence) in events {
            let event = CampaignEvent {
                kind,
                at: now,
                campaign_id: journey.campaign_id,
                campaign_name: &info.name,
                journey_id: Some(journey.id),
                contact: &state.contact,
                data,
                occurrence,
            };
            self.emit(work, event).await?;
        }
        work.updates.push(JourneyUpdate {
            id: journey.id,
            expect,
            status,
            step,
            run_at,
            held: false,
            custom_variables: Some(state.custom_variables),
            exit_reason,
            converted: false,
            conversion_step,
        });
        Ok(waiting)
    }
}

/// A job's result: ready, or coming once the call its journey reached is made and committed.
pub type StepResult<'a> = BoxFuture<'a, Result<(), CampaignJobError>>;

fn ready<'a>(result: Result<(), CampaignJobError>) -> StepResult<'a> {
    Box::pin(std::future::ready(result))
}

/// A journey that reached a webhook step and waits there for its call.
struct Waiting {
    /// The journey as it waits (at the step, with the variables set on the way).
    journey: Journey,
    /// The contact as the steps on the way left it.
    contact: herald_domain::Contact,
    index: u32,
    step: String,
    request: Box<herald_campaign::engine::WebhookRequest>,
}

impl Waiting {
    /// The delivery job that makes the call.
    fn job(self, webhooks: &dyn JourneyWebhooks, now: Timestamp) -> NewJob {
        webhooks.call_job(&self.journey, self.index, &self.step, *self.request, now)
    }
}

/// What decides how an email step's message leaves.
struct Delivery<'a> {
    /// The contact's address is on the suppression list: nothing is sent.
    suppressed: bool,
    /// The topics the contact left: mail under them is not sent.
    left_topics: &'a [TopicId],
    /// Messages go to an SMTP relay (queued for the delivery job) rather than the outbox.
    smtp: bool,
    /// The headers messages carry.
    email: &'a dyn JourneyEmail,
}

/// Turns one step's result into the writes that record it.
fn record(
    journey: &Journey,
    run: StepRun,
    delivery: &Delivery<'_>,
    webhooks: &dyn JourneyWebhooks,
    work: &mut CampaignWork,
    now: Timestamp,
) {
    let StepRun { step, at, effect } = run;
    let mut message_id = None;
    let (outcome, detail) = match effect {
        Effect::Email { message } => {
            // The embedded outbox is the transport until one is configured: handing the
            // message to it is sending it.
            let left_topic = message.topic.filter(|t| delivery.left_topics.contains(t));
            let (status, reason, outcome) = if delivery.suppressed {
                (MessageStatus::Suppressed, Some("the address is suppressed".to_owned()), "suppressed")
            } else if let Some(topic) = left_topic {
                (MessageStatus::Suppressed, Some(herald_domain::topic::left_topic_reason(topic)), "suppressed")
            } else if delivery.smtp {
                (MessageStatus::Queued, None, "queued")
            } else {
                (MessageStatus::Sent, None, "sent")
            };
            let id = push_message(journey, &step, *message, (status, reason), delivery, work, now);
            if status == MessageStatus::Queued {
                work.jobs.push(delivery_job(id, now));
            }
            message_id = Some(id);
            (outcome, json!({}))
        }
        // Recorded like any message or call, so the message and delivery logs and the
        // contact's timeline say why nothing was sent; the step's `failed` outcome is what the
        // statistics count.
        Effect::Failed { reason, unsent: Some(Unsent::Email(message)) } => {
            let failed = (MessageStatus::Failed, Some(reason.clone()));
            message_id = Some(push_message(journey, &step, *message, failed, delivery, work, now));
            ("failed", json!({ "reason": reason }))
        }
        Effect::Failed { reason, unsent: Some(Unsent::Webhook { method, url }) } => {
            work.calls.push(webhooks.unrendered_call(journey, &step, &method, url.as_deref(), &reason, now));
            ("failed", json!({ "reason": reason }))
        }
        Effect::Failed { reason, unsent: None } => ("failed", json!({ "reason": reason })),
        Effect::SetAttribute { attribute, value, scope } => {
            if scope == Target::Contact {
                work.attributes.push(AttributeChange {
                    contact_id: journey.contact_id,
                    attribute: attribute.clone(),
                    value: Some(value.clone()),
                });
            }
            ("set", json!({ "attribute": attribute, "value": value, "scope": scope }))
        }
        Effect::UnsetAttribute { attribute, scope } => {
            if scope == Target::Contact {
                work.attributes.push(AttributeChange {
                    contact_id: journey.contact_id,
                    attribute: attribute.clone(),
                    value: None,
                });
            }
            ("unset", json!({ "attribute": attribute, "scope": scope }))
        }
        Effect::Branch { took, reason } => (
            match took {
                herald_campaign::engine::Arm::Then => "then",
                herald_campaign::engine::Arm::Else => "else",
            },
            json!({ "reason": reason }),
        ),
        Effect::Wait { until } => ("waited", json!({ "until": until })),
        Effect::Webhook { request } => ("called", json!({ "method": request.method, "url": request.url })),
        Effect::WebhookDone { outcome, status } => (
            match outcome {
                WebhookOutcome::Succeeded => "succeeded",
                WebhookOutcome::Failed => "failed",
                WebhookOutcome::Exhausted => "exhausted",
                WebhookOutcome::Skipped => "skipped",
            },
            json!({ "status": status }),
        ),
        Effect::Exit => ("exited", json!({})),
    };
    work.steps.push(StepRecord {
        journey_id: journey.id,
        campaign_id: journey.campaign_id,
        step,
        outcome: outcome.into(),
        detail,
        message_id,
        at,
    });
}

/// Records an email step's message in `status` (with its reason); returns its id. Suppressed
/// and failed messages are handed to no transport at all.
fn push_message(
    journey: &Journey,
    step: &str,
    message: RenderedEmail,
    (status, status_reason): (MessageStatus, Option<String>),
    delivery: &Delivery<'_>,
    work: &mut CampaignWork,
    now: Timestamp,
) -> MessageId {
    let id = MessageId::from_uuid(herald_store::new_uuid(now));
    let domain = message.from.address.as_str().rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
    let transport = match status {
        MessageStatus::Suppressed | MessageStatus::Failed => Message::NO_TRANSPORT,
        _ if delivery.smtp => "smtp",
        _ => "outbox",
    };
    work.messages.push(Message {
        id,
        workspace_id: journey.workspace_id,
        campaign_id: Some(journey.campaign_id),
        journey_id: Some(journey.id),
        step: step.to_owned(),
        contact_id: journey.contact_id,
        status,
        status_reason,
        to: message.to.as_str().to_owned(),
        from: message.from.to_string(),
        reply_to: message.reply_to.as_ref().map(ToString::to_string),
        subject: message.subject,
        html: message.html,
        text: message.text,
        headers: delivery.email.list_headers(&message.unsubscribe_url, message.from.address.as_str()),
        warnings: message.warnings,
        transport: transport.into(),
        internet_message_id: format!("{id}@{domain}"),
        attempts: 0,
        reply: None,
        bounce: None,
        tracking: message.tracking,
        topic: message.topic,
        created_at: now,
        sent_at: (status == MessageStatus::Sent).then_some(now),
    });
    id
}
