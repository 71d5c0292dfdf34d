//! The topics' use cases, for the API, the topics screen, the contact page and the preference
//! page alike.

use axum::http::StatusCode;
use herald_domain::topic::{parse_topic_description, parse_topic_name};
use herald_domain::{ConsentSource, ContactId, Timestamp, Topic, TopicId, WorkspaceId};
use herald_store::topic::ConsentChange;
use herald_store::{SharedStore, StoreError};

use crate::web::error::ApiError;

/// A topic's name and description as given, checked.
pub fn checked_fields(name: &str, description: &str) -> Result<(String, String), ApiError> {
    let name = parse_topic_name(name).map_err(|e| ApiError::invalid("name", e))?;
    let description = parse_topic_description(description).map_err(|e| ApiError::invalid("description", e))?;
    Ok((name, description))
}

/// A name another topic has, as a field error.
fn name_taken(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict { .. } => {
            let mut error =
                ApiError::new(StatusCode::CONFLICT, "conflict", "name: another topic already has this name");
            error.field = Some("name".into());
            error
        }
        other => other.into(),
    }
}

pub async fn create(
    store: &SharedStore,
    workspace: WorkspaceId,
    name: &str,
    description: &str,
    now: Timestamp,
) -> Result<Topic, ApiError> {
    let (name, description) = checked_fields(name, description)?;
    store.create_topic(workspace, &name, &description, now).await.map_err(name_taken)
}

pub async fn update(
    store: &SharedStore,
    workspace: WorkspaceId,
    id: TopicId,
    name: &str,
    description: &str,
    now: Timestamp,
) -> Result<Topic, ApiError> {
    let (name, description) = checked_fields(name, description)?;
    store.update_topic(workspace, id, &name, &description, now).await.map_err(name_taken)
}

/// A topic that is not deleted (`NotFound` otherwise).
pub async fn get(store: &SharedStore, workspace: WorkspaceId, id: TopicId) -> Result<Topic, ApiError> {
    let found = store.topics_by_ids(workspace, &[id]).await?.pop().filter(|t| t.deleted_at.is_none());
    found.ok_or_else(|| ApiError::not_found("topic"))
}

/// One topic as a contact stands in it.
#[derive(Debug, Clone)]
pub struct Standing {
    pub topic: Topic,
    pub subscribed: bool,
    /// Who recorded the choice, and when; `None` while the contact never chose (subscribed).
    pub chosen: Option<(ConsentSource, Timestamp)>,
}

/// Every topic of the workspace with the contact's standing in it, by name.
pub async fn standings(
    store: &SharedStore,
    workspace: WorkspaceId,
    contact: ContactId,
) -> Result<Vec<Standing>, StoreError> {
    Ok(store
        .topic_standings(workspace, contact)
        .await?
        .into_iter()
        .map(|(topic, choice)| Standing {
            subscribed: choice.as_ref().is_none_or(|c| c.subscribed),
            chosen: choice.map(|c| (c.source, c.updated_at)),
            topic,
        })
        .collect())
}

/// Records a contact's choices (topic, subscribed) from `source`; an unknown or deleted topic
/// is refused as the field `{field}[i].topic_id`, and nothing is recorded then.
pub async fn choose(
    store: &SharedStore,
    workspace: WorkspaceId,
    contact: ContactId,
    choices: &[(TopicId, bool)],
    source: ConsentSource,
    field: &str,
    now: Timestamp,
) -> Result<(), ApiError> {
    let ids: Vec<TopicId> = choices.iter().map(|(id, _)| *id).collect();
    let known = store.topics_by_ids(workspace, &ids).await?;
    let is_known = |id: &TopicId| known.iter().any(|t| t.id == *id && t.deleted_at.is_none());
    if let Some((i, (id, _))) = choices.iter().enumerate().find(|(_, (id, _))| !is_known(id)) {
        return Err(ApiError::invalid(&format!("{field}[{i}].topic_id"), format!("no topic {id} in this workspace")));
    }
    let changes: Vec<ConsentChange> =
        choices.iter().map(|&(topic, subscribed)| ConsentChange { contact, topic, subscribed, source }).collect();
    store.set_topic_consents(workspace, &changes, now).await?;
    Ok(())
}
