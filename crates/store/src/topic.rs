//! Subscription topics and each contact's choice per topic. A contact with no recorded choice
//! is subscribed (see `herald_domain::topic`); a change of choice becomes the contact's
//! `topic_subscribed` or `topic_unsubscribed` event, written with it.

use async_trait::async_trait;
use herald_domain::{
    ConsentSource, ContactAction, ContactId, Event, EventId, EventOutcome, Page, PageRequest, Timestamp, Topic,
    TopicConsent, TopicId, WorkspaceId,
};
use serde_json::{Map, Value};

use crate::StoreResult;

/// One contact's choice about one topic, to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentChange {
    pub contact: ContactId,
    pub topic: TopicId,
    pub subscribed: bool,
    pub source: ConsentSource,
}

#[async_trait]
pub trait TopicStore {
    /// Names are unique among a workspace's topics that are not deleted, in any case
    /// (`Conflict` named `topics_name`).
    async fn create_topic(
        &self,
        workspace: WorkspaceId,
        name: &str,
        description: &str,
        now: Timestamp,
    ) -> StoreResult<Topic>;

    /// The workspace's topics that are not deleted, by name.
    async fn list_topics(&self, workspace: WorkspaceId) -> StoreResult<Vec<Topic>>;

    /// Topics by id, deleted ones included (campaign versions saved before the deletion still
    /// name them); ids not in the workspace are left out.
    async fn topics_by_ids(&self, workspace: WorkspaceId, ids: &[TopicId]) -> StoreResult<Vec<Topic>>;

    /// Replaces a topic's name and description (`NotFound` once deleted).
    async fn update_topic(
        &self,
        workspace: WorkspaceId,
        id: TopicId,
        name: &str,
        description: &str,
        now: Timestamp,
    ) -> StoreResult<Topic>;

    /// Marks a topic deleted (`NotFound` if it is not there or already deleted); the choices
    /// recorded about it are kept.
    async fn delete_topic(&self, workspace: WorkspaceId, id: TopicId, now: Timestamp) -> StoreResult<()>;

    /// Records contacts' choices in one transaction. A change that repeats the contact's
    /// current choice changes nothing; every other one is stored with its source and `now`
    /// and becomes the contact's event (with the job evaluating it when the workspace has live
    /// campaigns, so a campaign can start when someone leaves a topic). `NotFound` (and nothing written) when a contact or a
    /// topic that is not deleted is not in the workspace. Returns, per change, whether it
    /// changed anything.
    async fn set_topic_consents(
        &self,
        workspace: WorkspaceId,
        changes: &[ConsentChange],
        now: Timestamp,
    ) -> StoreResult<Vec<bool>>;

    /// The choices recorded for a contact, by topic id (deleted topics included).
    async fn contact_topics(&self, workspace: WorkspaceId, contact: ContactId) -> StoreResult<Vec<TopicConsent>>;

    /// Every topic of the workspace that is not deleted, by name, with the contact's recorded
    /// choice about it (`None`: never chose, so subscribed).
    async fn topic_standings(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
    ) -> StoreResult<Vec<(Topic, Option<TopicConsent>)>> {
        let topics = self.list_topics(workspace).await?;
        let mut choices = self.contact_topics(workspace, contact).await?;
        Ok(topics
            .into_iter()
            .map(|topic| {
                let choice = choices.iter().position(|c| c.topic_id == topic.id).map(|i| choices.swap_remove(i));
                (topic, choice)
            })
            .collect())
    }

    /// Whether `contact` receives mail about `topic`: `false` only when they left it.
    async fn is_subscribed(&self, workspace: WorkspaceId, contact: ContactId, topic: TopicId) -> StoreResult<bool> {
        let left =
            self.contact_topics(workspace, contact).await?.into_iter().any(|c| c.topic_id == topic && !c.subscribed);
        Ok(!left)
    }

    /// The contacts with an email address who have not left `topic`, in id order.
    /// Suppressed addresses are included: sending skips them.
    async fn topic_subscribers(
        &self,
        workspace: WorkspaceId,
        topic: TopicId,
        page: PageRequest<ContactId>,
    ) -> StoreResult<Page<ContactId>>;
}

/// The contact event a recorded change becomes, received `now`.
pub fn consent_event(workspace: WorkspaceId, change: &ConsentChange, topic_name: &str, now: Timestamp) -> Event {
    let mut properties = Map::new();
    properties.insert("topic_id".into(), Value::String(change.topic.to_string()));
    properties.insert("topic".into(), Value::String(topic_name.to_owned()));
    properties.insert("source".into(), Value::String(change.source.as_str().to_owned()));
    let verb = if change.subscribed { "joined" } else { "left" };
    Event {
        id: EventId::from_uuid(crate::new_uuid(now)),
        workspace_id: workspace,
        source_id: None,
        contact_id: Some(change.contact),
        name: Some(herald_domain::topic::consent_event_name(change.subscribed).to_owned()),
        properties,
        occurred_at: now,
        received_at: now,
        idempotency_key: None,
        request: None,
        outcome: EventOutcome {
            contact: ContactAction::Unchanged,
            conflicts: Vec::new(),
            notes: vec![format!("Recorded by Herald: the contact {verb} topic {topic_name:?} ({}).", change.source)],
            campaigns: Vec::new(),
        },
    }
}
