//! Trigger evaluation: what committed events start, convert or schedule, and why campaigns
//! with the same event name did not fire; and the closing of drop-off and inactivity windows.

use std::collections::HashSet;

use herald_campaign::CompiledCampaign;
use herald_campaign::context::CampaignInfo;
use herald_campaign::document::EntryRule;
use herald_campaign::trigger::{self, Decision, Entry, History};
use herald_domain::job::LeasedJob;
use herald_domain::{
    Campaign, CampaignEvent, CampaignEventKind, CampaignId, CampaignReaction, CampaignState, Contact, ContactId, Event,
    EventId, JobKind, JourneyId, JourneyStatus, NewJob, ReactionKind, Timestamp, WorkspaceId,
};
use herald_store::campaign::{CampaignWork, JourneyUpdate, NewJourney, StepRecord};
use herald_store::{StoreError, new_uuid};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{CampaignJobError, Campaigns, payload};

/// How many of a contact's journeys in one campaign are read to apply entry rules and goals.
const HISTORY: u32 = 50;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EvaluatePayload {
    pub events: Vec<EventId>,
}

/// A drop-off or inactivity window, closed by a timer.
#[derive(Debug, Serialize, Deserialize)]
struct WindowPayload {
    campaign: CampaignId,
    contact: ContactId,
    /// The event that opened the window.
    event: EventId,
}

/// A contact to enrol, and with what.
#[derive(Debug)]
struct Enrollment<'a> {
    campaign: &'a Campaign,
    compiled: &'a CompiledCampaign,
    contact: &'a Contact,
    event: Option<&'a Event>,
    custom_variables: Map<String, Value>,
}

/// The writes of one evaluation, and the (campaign, contact) pairs it enrolled, so two events
/// of one batch cannot both pass a `once` rule.
#[derive(Debug, Default)]
struct Evaluation {
    work: CampaignWork,
    enrolled: HashSet<(CampaignId, ContactId)>,
}

impl Campaigns {
    pub(super) async fn evaluate_events(&self, leased: &LeasedJob) -> Result<(), CampaignJobError> {
        let EvaluatePayload { events } = payload(leased)?;
        let workspace = leased.job.workspace_id;
        let now = self.clock.now();
        let live = self.store.live_campaigns(workspace).await?;
        let mut evaluation = Evaluation::default();
        let mut found = Vec::with_capacity(events.len());
        for id in events {
            let event = match self.store.get_event(workspace, id).await {
                Ok(event) => event,
                // Erased with its contact since: nothing to do.
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(contact_id) = event.contact_id else { continue };
            let contact = match self.store.get_contact(workspace, contact_id).await {
                Ok(contact) => contact,
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            found.push((event, contact));
        }
        // Memberships first: a trigger's filter or a branch may test them, and the changes
        // they record are events of their own (evaluated by the job they enqueue).
        self.segments.before_triggers(workspace, &found).await?;
        for (event, contact) in &found {
            let mut reactions = Vec::new();
            for campaign in &live {
                let compiled = self
                    .program(workspace, campaign.id, campaign.version, Some(&campaign.document), self.clock.now())
                    .await?;
                if let Some(reaction) = self.react(&mut evaluation, campaign, &compiled, contact, event, now).await? {
                    reactions.push(reaction);
                }
                if let Some(reaction) = self.convert(&mut evaluation, campaign, &compiled, contact, event, now).await? {
                    reactions.push(reaction);
                }
            }
            if !reactions.is_empty() {
                evaluation.work.reactions.push((event.id, reactions));
            }
        }
        self.commit(workspace, Some(&leased.lease), evaluation.work).await
    }

    /// What `campaign`'s trigger makes of `event`.
    async fn react(
        &self,
        evaluation: &mut Evaluation,
        campaign: &Campaign,
        compiled: &CompiledCampaign,
        contact: &Contact,
        event: &Event,
        now: Timestamp,
    ) -> Result<Option<CampaignReaction>, CampaignJobError> {
        let reaction = |action, detail: String| {
            Some(CampaignReaction { campaign_id: campaign.id, campaign: campaign.name.clone(), action, detail })
        };
        let active = campaign.state == CampaignState::Active;
        match trigger::decide(&compiled.document, active, &info(campaign), contact, event) {
            Decision::Ignore => Ok(None),
            Decision::Skip(why) => Ok(reaction(ReactionKind::Skipped, why)),
            Decision::OpenWindow { closes, missing } => {
                self.schedule_window(evaluation, campaign, contact, event, closes);
                Ok(reaction(ReactionKind::Scheduled, format!("enrols at {closes} unless {missing:?} arrives first")))
            }
            Decision::RestartTimer { closes } => {
                self.schedule_window(evaluation, campaign, contact, event, closes);
                Ok(None)
            }
            Decision::Enter(Entry { custom_variables, count }) => {
                if let Some(count) = count {
                    let so_far = self
                        .store
                        .count_contact_events(contact.workspace_id, contact.id, &count.name, count.since, event.id)
                        .await?;
                    if let Err(why) = count.check(so_far) {
                        return Ok(reaction(ReactionKind::Skipped, why));
                    }
                }
                self.enrol_reaction(evaluation, campaign, compiled, contact, Some(event), custom_variables, now).await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn enrol_reaction(
        &self,
        evaluation: &mut Evaluation,
        campaign: &Campaign,
        compiled: &CompiledCampaign,
        contact: &Contact,
        event: Option<&Event>,
        custom_variables: Map<String, Value>,
        now: Timestamp,
    ) -> Result<Option<CampaignReaction>, CampaignJobError> {
        let enrollment = Enrollment { campaign, compiled, contact, event, custom_variables };
        let (action, detail) = match self.enrol(evaluation, enrollment, now).await? {
            Ok(journey) => (ReactionKind::Started, format!("journey {journey}")),
            Err(why) => (ReactionKind::Skipped, why),
        };
        Ok(Some(CampaignReaction { campaign_id: campaign.id, campaign: campaign.name.clone(), action, detail }))
    }

    fn schedule_window(
        &self,
        evaluation: &mut Evaluation,
        campaign: &Campaign,
        contact: &Contact,
        event: &Event,
        closes: Timestamp,
    ) {
        let payload = WindowPayload { campaign: campaign.id, contact: contact.id, event: event.id };
        evaluation.work.jobs.push(NewJob::new(JobKind::WindowCheck, json!(payload), closes));
    }

    /// Applies the entry rule and, if it allows, adds the journey and its first step's job.
    async fn enrol(
        &self,
        evaluation: &mut Evaluation,
        enrollment: Enrollment<'_>,
        now: Timestamp,
    ) -> Result<Result<JourneyId, String>, CampaignJobError> {
        let Enrollment { campaign, compiled, contact, event, custom_variables } = enrollment;
        let rule = compiled.document.entry;
        let key = (campaign.id, contact.id);
        let history = if rule == EntryRule::EveryTime {
            History::default()
        } else {
            let journeys =
                self.store.contact_journeys(contact.workspace_id, contact.id, Some(campaign.id), HISTORY).await?;
            let this_batch = evaluation.enrolled.contains(&key);
            History {
                entered_before: this_batch || !journeys.is_empty(),
                active_now: this_batch || journeys.iter().any(|j| j.status == JourneyStatus::Active),
            }
        };
        if let Err(why) = trigger::check_entry(rule, history) {
            return Ok(Err(why));
        }
        let id = JourneyId::from_uuid(new_uuid(now));
        evaluation.enrolled.insert(key);
        evaluation.work.journeys.push(NewJourney {
            id,
            campaign_id: campaign.id,
            version: campaign.version,
            contact_id: contact.id,
            event_id: event.map(|e| e.id),
            exclusive: rule != EntryRule::EveryTime,
            custom_variables,
            goal_until: compiled
                .document
                .goal
                .as_ref()
                .map(|g| g.within.map_or(Timestamp::MAX, |w| now + w.as_duration())),
            step: 0,
            run_at: now,
        });
        evaluation.work.jobs.push(super::jobs::step_job(id, Some(0), Some(now), now));
        let data = json!({ "event_id": event.map(|e| e.id) });
        let entered = hook_event(CampaignEventKind::ContactEntered, campaign, contact, id, data, now);
        self.emit(&mut evaluation.work, entered).await?;
        Ok(Ok(id))
    }

    /// Marks the contact's journeys whose goal this event is as converted (and exits them
    /// when the goal says so).
    async fn convert(
        &self,
        evaluation: &mut Evaluation,
        campaign: &Campaign,
        compiled: &CompiledCampaign,
        contact: &Contact,
        event: &Event,
        now: Timestamp,
    ) -> Result<Option<CampaignReaction>, CampaignJobError> {
        let Some(goal) = compiled.document.goal.as_ref().filter(|g| Some(g.event.as_str()) == event.name.as_deref())
        else {
            return Ok(None);
        };
        let journeys =
            self.store.contact_journeys(contact.workspace_id, contact.id, Some(campaign.id), HISTORY).await?;
        let mut converted = 0;
        for journey in journeys.iter().filter(|j| {
            j.status == JourneyStatus::Active
                && j.converted_at.is_none()
                && j.goal_until.is_some_and(|until| until >= event.received_at)
                && j.id.as_uuid() < event.id.as_uuid()
        }) {
            // The goal may live in this journey's own version; it is the current one's here.
            let (status, step, run_at, exit_reason) = if goal.exit {
                (JourneyStatus::Exited, None, None, Some("converted".to_owned()))
            } else {
                (JourneyStatus::Active, journey.step, journey.run_at, None)
            };
            evaluation.work.updates.push(JourneyUpdate {
                id: journey.id,
                // Staying in, the journey keeps its place: fail rather than undo a step that
                // ran meanwhile (the job runs again and sees the new place).
                expect: (!goal.exit).then_some((journey.step, journey.run_at)),
                status,
                step,
                run_at,
                held: journey.held && !goal.exit,
                custom_variables: None,
                exit_reason,
                converted: true,
                conversion_step: None,
            });
            let credited = journey.conversion_step.iter().map(|step| (step.clone(), json!({"event": event.id})));
            for (step, detail) in
                std::iter::once(("goal".to_owned(), json!({"event": event.id, "exited": goal.exit}))).chain(credited)
            {
                evaluation.work.steps.push(StepRecord {
                    journey_id: journey.id,
                    campaign_id: campaign.id,
                    step,
                    outcome: "converted".into(),
                    detail,
                    message_id: None,
                    at: now,
                });
            }
            let data = json!({ "event_id": event.id, "goal": goal.event, "exited": goal.exit });
            let conversion = hook_event(CampaignEventKind::ContactConverted, campaign, contact, journey.id, data, now);
            self.emit(&mut evaluation.work, conversion).await?;
            if goal.exit {
                let data = json!({ "reason": "converted" });
                let exit = hook_event(CampaignEventKind::ContactExited, campaign, contact, journey.id, data, now);
                self.emit(&mut evaluation.work, exit).await?;
            }
            converted += 1;
        }
        Ok((converted > 0).then(|| CampaignReaction {
            campaign_id: campaign.id,
            campaign: campaign.name.clone(),
            action: if goal.exit { ReactionKind::Exited } else { ReactionKind::Converted },
            detail: format!("goal {:?} reached by {converted} journey(s)", goal.event),
        }))
    }

    /// A drop-off or inactivity window closed: enrol unless the awaited event came.
    pub(super) async fn close_window(&self, leased: &LeasedJob) -> Result<(), CampaignJobError> {
        let WindowPayload { campaign: campaign_id, contact: contact_id, event: event_id } = payload(leased)?;
        let workspace = leased.job.workspace_id;
        let now = self.clock.now();
        let mut evaluation = Evaluation::default();
        if let Some((campaign, contact, event)) =
            self.window_parts(workspace, campaign_id, contact_id, event_id).await?
        {
            let compiled = self
                .program(workspace, campaign.id, campaign.version, Some(&campaign.document), self.clock.now())
                .await?;
            if let Some(awaited) = trigger::awaited(&compiled.document.trigger)
                && campaign.state == CampaignState::Active
                && !self.store.contact_event_after(workspace, contact.id, awaited, event.id).await?
            {
                let enrollment = Enrollment {
                    campaign: &campaign,
                    compiled: &compiled,
                    contact: &contact,
                    event: Some(&event),
                    custom_variables: Map::new(),
                };
                if let Err(why) = self.enrol(&mut evaluation, enrollment, now).await? {
                    tracing::debug!(campaign = %campaign.id, contact = %contact.id, why, "window closed without entry");
                }
            }
        }
        self.commit(workspace, Some(&leased.lease), evaluation.work).await
    }

    async fn window_parts(
        &self,
        workspace: WorkspaceId,
        campaign: CampaignId,
        contact: ContactId,
        event: EventId,
    ) -> Result<Option<(Campaign, Contact, Event)>, CampaignJobError> {
        let found = async {
            let campaign = self.store.get_campaign(workspace, campaign).await?;
            let contact = self.store.get_contact(workspace, contact).await?;
            let event = self.store.get_event(workspace, event).await?;
            Ok::<_, StoreError>((campaign, contact, event))
        };
        match found.await {
            Ok(parts) => Ok(Some(parts)),
            // Deleted since the window opened.
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Enrols one contact now (the API's enroll), whatever the trigger, under the entry rule.
    pub async fn enroll_now(
        &self,
        campaign: &Campaign,
        contact: &Contact,
        custom_variables: Map<String, Value>,
    ) -> Result<Result<JourneyId, String>, CampaignJobError> {
        let now = self.clock.now();
        let compiled = self
            .program(campaign.workspace_id, campaign.id, campaign.version, Some(&campaign.document), self.clock.now())
            .await?;
        let mut evaluation = Evaluation::default();
        let enrollment = Enrollment { campaign, compiled: &compiled, contact, event: None, custom_variables };
        let result = self.enrol(&mut evaluation, enrollment, now).await?;
        if result.is_ok() {
            self.commit(campaign.workspace_id, None, evaluation.work).await?;
        }
        Ok(result)
    }
}

/// A campaign event of one journey, for its webhooks.
fn hook_event<'a>(
    kind: CampaignEventKind,
    campaign: &'a Campaign,
    contact: &'a Contact,
    journey: JourneyId,
    data: Value,
    now: Timestamp,
) -> CampaignEvent<'a> {
    CampaignEvent {
        kind,
        at: now,
        campaign_id: campaign.id,
        campaign_name: &campaign.name,
        journey_id: Some(journey),
        contact,
        data,
        occurrence: journey.to_string(),
    }
}

pub(super) fn info(campaign: &Campaign) -> CampaignInfo {
    CampaignInfo { id: campaign.id, name: campaign.name.clone(), version: campaign.version }
}
