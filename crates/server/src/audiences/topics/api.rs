//! `/api/v1/topics` (list, create, read, change, delete) and `/api/v1/contacts/{id}/topics`
//! (a contact's standing in every topic, and recording their choices).

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use herald_domain::{ConsentSource, ContactId, Timestamp, Topic, TopicId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{TopicsState, service};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ErrorBody};
use crate::web::list::List;

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicDto {
    #[schema(value_type = String, example = "top_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: TopicId,
    #[schema(example = "Newsletter")]
    name: String,
    /// Shown to contacts on the preference page.
    description: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl From<Topic> for TopicDto {
    fn from(t: Topic) -> Self {
        Self { id: t.id, name: t.name, description: t.description, created_at: t.created_at, updated_at: t.updated_at }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicInput {
    /// Unique in the workspace in any case; at most 100 characters.
    name: String,
    /// At most 1000 characters.
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicPatch {
    name: Option<String>,
    description: Option<String>,
}

/// A contact's standing in one topic.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactTopicDto {
    #[schema(value_type = String)]
    topic_id: TopicId,
    name: String,
    /// `false` once the contact left the topic; a contact who never chose is subscribed.
    subscribed: bool,
    /// Who recorded the choice: `api`, `import`, `preference_page` or `one_click`; `null`
    /// while the contact never chose.
    #[schema(value_type = Option<String>)]
    source: Option<ConsentSource>,
    /// When the choice was recorded.
    #[schema(value_type = Option<String>, format = DateTime)]
    updated_at: Option<Timestamp>,
}

impl From<service::Standing> for ContactTopicDto {
    fn from(s: service::Standing) -> Self {
        Self {
            topic_id: s.topic.id,
            name: s.topic.name,
            subscribed: s.subscribed,
            source: s.chosen.map(|(source, _)| source),
            updated_at: s.chosen.map(|(_, at)| at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactTopicsInput {
    /// The choices to record; topics not named keep the contact's standing.
    topics: Vec<TopicChoice>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicChoice {
    #[schema(example = "top_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    topic_id: String,
    subscribed: bool,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    TopicsState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_topics, create_topic))
        .routes(routes!(get_topic, update_topic, delete_topic))
        .routes(routes!(get_contact_topics, set_contact_topics))
}

fn parse_id<T: std::str::FromStr<Err: std::fmt::Display>>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

/// The workspace's topics, by name (one page holds them all).
#[utoipa::path(get, path = "/topics", tag = "topics", responses((status = 200, body = List<TopicDto>)))]
async fn list_topics(State(state): State<TopicsState>, Auth(p): Auth) -> Result<Json<List<TopicDto>>, ApiError> {
    let topics = state.store.list_topics(p.workspace_id).await?;
    Ok(Json(List { data: topics.into_iter().map(TopicDto::from).collect(), next_cursor: None }))
}

/// Create a topic.
#[utoipa::path(post, path = "/topics", tag = "topics", request_body = TopicInput,
    responses((status = 201, body = TopicDto), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_topic(
    State(state): State<TopicsState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<TopicInput>,
) -> Result<(StatusCode, Json<TopicDto>), ApiError> {
    let topic = service::create(&state.store, p.workspace_id, &body.name, &body.description, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(topic.into())))
}

/// A topic.
#[utoipa::path(get, path = "/topics/{id}", tag = "topics", params(("id" = String, Path)),
    responses((status = 200, body = TopicDto), (status = 404, body = ErrorBody)))]
async fn get_topic(
    State(state): State<TopicsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<TopicDto>, ApiError> {
    Ok(Json(service::get(&state.store, p.workspace_id, parse_id(&id)?).await?.into()))
}

/// Rename a topic or change its description; absent fields stay.
#[utoipa::path(patch, path = "/topics/{id}", tag = "topics", params(("id" = String, Path)), request_body = TopicPatch,
    responses((status = 200, body = TopicDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn update_topic(
    State(state): State<TopicsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TopicPatch>,
) -> Result<Json<TopicDto>, ApiError> {
    let current = service::get(&state.store, p.workspace_id, parse_id(&id)?).await?;
    let name = body.name.unwrap_or(current.name);
    let description = body.description.unwrap_or(current.description);
    let topic =
        service::update(&state.store, p.workspace_id, current.id, &name, &description, state.clock.now()).await?;
    Ok(Json(topic.into()))
}

/// Delete a topic. Campaign versions that name it still send under it, and the choices
/// contacts made about it still hold; new versions may not name it.
#[utoipa::path(delete, path = "/topics/{id}", tag = "topics", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_topic(
    State(state): State<TopicsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_topic(p.workspace_id, parse_id(&id)?, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn contact_topics(
    state: &TopicsState,
    p: herald_store::Principal,
    id: ContactId,
) -> Result<List<ContactTopicDto>, ApiError> {
    // Answers 404 for a contact of another workspace, not an empty standing.
    state.store.get_contact(p.workspace_id, id).await?;
    let standings = service::standings(&state.store, p.workspace_id, id).await?;
    Ok(List { data: standings.into_iter().map(ContactTopicDto::from).collect(), next_cursor: None })
}

/// A contact's standing in every topic, by topic name.
#[utoipa::path(get, path = "/contacts/{id}/topics", tag = "topics", params(("id" = String, Path)),
    responses((status = 200, body = List<ContactTopicDto>), (status = 404, body = ErrorBody)))]
async fn get_contact_topics(
    State(state): State<TopicsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<List<ContactTopicDto>>, ApiError> {
    Ok(Json(contact_topics(&state, p, parse_id(&id)?).await?))
}

/// Record a contact's choices (source `api`, now); answers their standing in every topic.
/// A choice that repeats the contact's standing changes nothing; every other one becomes the
/// contact's `topic_subscribed` or `topic_unsubscribed` event.
#[utoipa::path(put, path = "/contacts/{id}/topics", tag = "topics", params(("id" = String, Path)),
    request_body = ContactTopicsInput,
    responses((status = 200, body = List<ContactTopicDto>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_contact_topics(
    State(state): State<TopicsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ContactTopicsInput>,
) -> Result<Json<List<ContactTopicDto>>, ApiError> {
    let id: ContactId = parse_id(&id)?;
    state.store.get_contact(p.workspace_id, id).await?;
    let mut choices = Vec::with_capacity(body.topics.len());
    for (i, choice) in body.topics.iter().enumerate() {
        let field = format!("topics[{i}].topic_id");
        let topic: TopicId = choice.topic_id.parse().map_err(|e| ApiError::invalid(&field, e))?;
        if choices.iter().any(|(t, _)| *t == topic) {
            return Err(ApiError::invalid(&field, "names a topic already named in this request"));
        }
        choices.push((topic, choice.subscribed));
    }
    let now = state.clock.now();
    service::choose(&state.store, p.workspace_id, id, &choices, ConsentSource::Api, "topics", now).await?;
    Ok(Json(contact_topics(&state, p, id).await?))
}
