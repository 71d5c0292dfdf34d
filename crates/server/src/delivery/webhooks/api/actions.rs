//! `/api/v1/actions`: saved webhook actions. A campaign's webhook step uses one with
//! `{"type": "webhook", "action": "act_…"}`; its secrets (the Basic password, secret-looking
//! header values) are write-only.

use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use herald_campaign::compile_action;
use herald_campaign::document::{WebhookStep, action_from_value};
use herald_domain::webhook::{MASK, secret_header};
use herald_domain::{ActionId, SavedAction, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::delivery::webhooks::WebhooksState;
use crate::delivery::webhooks::service::{self, saved_action};
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ErrorBody};

/// Longest action name, in characters.
const MAX_NAME: usize = 200;

/// A saved action: its name and its request, as a webhook step describes it (`method`, `url`,
/// `headers`, `basic_auth`, `content_type`, `body`, `timeout`, `log_response_body`,
/// `set_attributes`). The Basic password is never returned (`password_set: true` instead) and
/// secret-looking header values show as `***`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "act_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b", "name": "Create CRM lead", "method": "POST",
    "url": "https://crm.example.com/api/leads", "headers": {"X-Api-Key": "***"},
    "body": "{\"email\": {{ customer.email | json }}, \"plan\": {{ customer.plan | json }}}",
    "set_attributes": {"lead_id": "{{ response.id }}"},
    "created_at": "2026-11-23T08:00:00Z", "updated_at": "2026-11-23T08:00:00Z"
}))]
pub struct ActionDto {
    #[schema(value_type = String)]
    id: ActionId,
    name: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    request: Map<String, Value>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl From<SavedAction> for ActionDto {
    fn from(action: SavedAction) -> Self {
        let mut request = match action.definition {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        if let Some(Value::Object(auth)) = request.get_mut("basic_auth") {
            let set = auth.remove("password").is_some_and(|p| p.as_str().is_some_and(|p| !p.is_empty()));
            auth.insert("password_set".into(), Value::Bool(set));
        }
        if let Some(Value::Object(headers)) = request.get_mut("headers") {
            for (name, value) in headers.iter_mut() {
                if secret_header(name) {
                    *value = Value::String(MASK.into());
                }
            }
        }
        Self { id: action.id, name: action.name, request, created_at: action.created_at, updated_at: action.updated_at }
    }
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    WebhooksState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_actions, create_action))
        .routes(routes!(get_action, update_action, delete_action))
        .routes(routes!(run_action))
}

fn parse_id(raw: &str) -> Result<ActionId, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

fn invalid(field: &str, message: String) -> ApiError {
    let mut error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_action", message);
    error.field = Some(field.to_owned()).filter(|f| !f.is_empty());
    error
}

/// Reads and validates a body: `name` and the request fields. On update, `current` supplies
/// the secrets the body leaves masked or blank.
fn parse(body: Value, current: Option<&SavedAction>) -> Result<(String, Value), ApiError> {
    let Value::Object(mut fields) = body else {
        return Err(ApiError::invalid("body", "must be a JSON object with a name and the request"));
    };
    let name = match fields.remove("name") {
        Some(Value::String(name)) if !name.trim().is_empty() && name.trim().chars().count() <= MAX_NAME => {
            name.trim().to_owned()
        }
        Some(Value::String(_)) | None => {
            return Err(ApiError::invalid("name", format!("is required (1 to {MAX_NAME} characters)")));
        }
        Some(_) => return Err(ApiError::invalid("name", "must be a string")),
    };
    let mut step = action_from_value(Value::Object(fields)).map_err(|e| invalid(&e.path, e.to_string()))?;
    if let Some(current) = current.and_then(|c| serde_json::from_value::<WebhookStep>(c.definition.clone()).ok()) {
        keep_secrets(&mut step, &current);
    }
    if let Some((name, _)) = step.headers.iter().find(|(_, value)| value.as_str() == MASK) {
        return Err(invalid(
            &format!("headers.{name}"),
            format!("headers.{name}: {MASK:?} is the masked value; give the real one"),
        ));
    }
    compile_action(&step).map_err(|errors| {
        let field = errors.first().map(|e| e.path.clone()).unwrap_or_default();
        invalid(&field, crate::campaigns::join(&errors))
    })?;
    let definition = serde_json::to_value(&step)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok((name, definition))
}

/// Write-only secrets: a blank Basic password and masked header values keep what is stored.
fn keep_secrets(step: &mut WebhookStep, current: &WebhookStep) {
    if let (Some(auth), Some(stored)) = (step.basic_auth.as_mut(), current.basic_auth.as_ref())
        && auth.password.is_empty()
    {
        auth.password.clone_from(&stored.password);
    }
    for (name, value) in &mut step.headers {
        if value.as_str() == MASK
            && let Some(stored) = current.headers.get(name)
        {
            value.clone_from(stored);
        }
    }
}

/// List the workspace's saved actions by name.
#[utoipa::path(get, path = "/actions", tag = "actions",
    responses((status = 200, body = Vec<ActionDto>), (status = 401, body = ErrorBody)))]
async fn list_actions(State(state): State<WebhooksState>, Auth(p): Auth) -> Result<Json<Vec<ActionDto>>, ApiError> {
    let actions = state.store.list_actions(p.workspace_id).await?;
    Ok(Json(actions.into_iter().map(ActionDto::from).collect()))
}

/// Save a webhook request under a name. The body is `name` plus the fields of a webhook
/// step's request; templates are checked now.
#[utoipa::path(post, path = "/actions", tag = "actions",
    request_body(content = Object, example = json!({
        "name": "Create CRM lead", "method": "POST", "url": "https://crm.example.com/api/leads",
        "headers": {"X-Api-Key": "sk_live_…"},
        "body": "{\"email\": {{ customer.email | json }}}",
        "set_attributes": {"lead_id": "{{ response.id }}"}
    })),
    responses((status = 201, body = ActionDto), (status = 409, body = ErrorBody, description = "The name is taken"),
        (status = 422, body = ErrorBody, description = "A field is invalid; `field` names it")))]
async fn create_action(
    State(state): State<WebhooksState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<ActionDto>), ApiError> {
    let (name, definition) = parse(body, None)?;
    let action = state.store.create_action(p.workspace_id, &name, &definition, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(action.into())))
}

/// One saved action.
#[utoipa::path(get, path = "/actions/{id}", tag = "actions", params(("id" = String, Path)),
    responses((status = 200, body = ActionDto), (status = 404, body = ErrorBody)))]
async fn get_action(
    State(state): State<WebhooksState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ActionDto>, ApiError> {
    Ok(Json(saved_action(&state, p.workspace_id, &id).await?.into()))
}

/// Replace an action's name and request. A blank Basic password and `***` header values keep
/// the stored secrets. Campaign steps that use the action send the new request from the next
/// journey that reaches them (within 10 seconds on other nodes).
#[utoipa::path(put, path = "/actions/{id}", tag = "actions", params(("id" = String, Path)), request_body = Object,
    responses((status = 200, body = ActionDto), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The name is taken"), (status = 422, body = ErrorBody)))]
async fn update_action(
    State(state): State<WebhooksState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<ActionDto>, ApiError> {
    let current = saved_action(&state, p.workspace_id, &id).await?;
    let (name, definition) = parse(body, Some(&current))?;
    let action = state.store.update_action(p.workspace_id, current.id, &name, &definition, state.clock.now()).await?;
    state.campaigns.forget_programs();
    Ok(Json(action.into()))
}

/// Delete an action. Journeys already running on campaign versions that use it still send
/// it; new campaign versions cannot use it.
#[utoipa::path(delete, path = "/actions/{id}", tag = "actions", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_action(
    State(state): State<WebhooksState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_action(p.workspace_id, parse_id(&id)?, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunAction {
    /// The contact to run the action for (`ct_…`).
    #[schema(example = "ct_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    contact_id: String,
}

/// A queued run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunQueued {
    #[schema(example = "queued")]
    status: &'static str,
    /// The call's `Idempotency-Key` and `webhook-id`; find the call and its attempts in
    /// `GET /api/v1/webhook-deliveries?contact=…`.
    idempotency_key: String,
}

/// Run a saved action for one contact, outside any campaign (a shortcut): the request is
/// rendered over the contact now and sent with the same signing, retries and log as campaign
/// calls; on success its `set_attributes` update the contact. An `Idempotency-Key` header makes
/// a retried API call send nothing twice.
#[utoipa::path(post, path = "/actions/{id}/run", tag = "actions", params(("id" = String, Path)),
    request_body = RunAction,
    responses((status = 202, body = RunQueued), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "The request does not render for this contact")))]
async fn run_action(
    State(state): State<WebhooksState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<RunAction>,
) -> Result<(StatusCode, Json<RunQueued>), ApiError> {
    let contact_id: herald_domain::ContactId =
        body.contact_id.parse().map_err(|e| ApiError::invalid("contact_id", e))?;
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let queued = service::run_action(&state, p.workspace_id, &id, contact_id, key).await?;
    Ok((StatusCode::ACCEPTED, Json(RunQueued { status: "queued", idempotency_key: queued })))
}
