//! Campaigns' use cases, shared by the campaigns API, the campaign pages and the editor:
//! validating and saving a document (secrets kept), moving a campaign between states, and
//! previewing templates against a real or sample contact.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use herald_campaign::CompiledCampaign;
use herald_campaign::document::Trigger;
use herald_domain::{Campaign, CampaignId, CampaignState, ContactId, EmailAddress, Timestamp, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::CampaignsState;
use crate::campaigns::{CompileFailure, compile_document, secrets};
use crate::web::error::ApiError;

/// Validates a document; the normalised document (step ids filled in) is what gets stored.
pub async fn validate(
    state: &CampaignsState,
    workspace: WorkspaceId,
    body: Value,
) -> Result<CompiledCampaign, ApiError> {
    let compiled = compile_document(&state.store, workspace, body, false).await.map_err(compile_error)?;
    if let Trigger::Source { source_id } = &compiled.document.trigger {
        state.store.get_source(workspace, *source_id).await.map_err(|_| {
            let mut error = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_campaign",
                format!("trigger.source_id: no source {source_id} in this workspace"),
            );
            error.field = Some("trigger.source_id".into());
            error
        })?;
    }
    if let Trigger::Segment { segment_id, .. } = &compiled.document.trigger {
        state.store.get_segment(workspace, *segment_id).await.map_err(|_| {
            let mut error = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_campaign",
                format!("trigger.segment_id: no segment {segment_id} in this workspace"),
            );
            error.field = Some("trigger.segment_id".into());
            error
        })?;
    }
    Ok(compiled)
}

pub fn compile_error(failure: CompileFailure) -> ApiError {
    match failure {
        CompileFailure::Store(e) => e.into(),
        CompileFailure::Invalid(errors) => {
            let mut error =
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_campaign", crate::campaigns::join(&errors));
            error.field = errors.first().map(|e| e.path.clone()).filter(|p| !p.is_empty());
            error
        }
    }
}

pub fn stored(compiled: &CompiledCampaign) -> Result<Value, ApiError> {
    serde_json::to_value(&compiled.document)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

/// Validates a document and stores it: as a new campaign, or as `id`'s next version.
pub async fn save_campaign(
    state: &CampaignsState,
    workspace: WorkspaceId,
    id: Option<CampaignId>,
    mut body: Value,
) -> Result<Campaign, ApiError> {
    let current = match id {
        Some(id) => Some(state.store.get_campaign(workspace, id).await?.document),
        None => None,
    };
    secrets::restore(&mut body, current.as_ref()).map_err(|path| {
        let mut error = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_campaign",
            format!("{path}: {}", secrets::NOTHING_TO_KEEP),
        );
        error.field = Some(path);
        error
    })?;
    let compiled = validate(state, workspace, body).await?;
    let document = stored(&compiled)?;
    let name = compiled.document.name.trim();
    let now = state.clock.now();
    Ok(match id {
        None => state.store.create_campaign(workspace, name, &document, now).await?,
        Some(id) => state.store.update_campaign(workspace, id, name, &document, now).await?,
    })
}

/// Moves a campaign between states (the API's and the web UI's one way to).
pub async fn set_state(
    state: &CampaignsState,
    workspace: WorkspaceId,
    id: CampaignId,
    from: &[CampaignState],
    to: CampaignState,
) -> Result<Campaign, ApiError> {
    let campaign =
        state.store.set_campaign_state(workspace, id, from, to, state.clock.now()).await.map_err(|e| match e {
            herald_store::StoreError::Conflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_state",
                format!(
                    "the campaign must be {} to become {to}",
                    from.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ")
                ),
            ),
            other => other.into(),
        })?;
    Ok(campaign)
}

/// An existing contact by id, or one described inline (not stored).
pub async fn some_contact(
    state: &CampaignsState,
    workspace: WorkspaceId,
    id: Option<String>,
    inline: Option<InlineContact>,
    now: Timestamp,
) -> Result<herald_domain::Contact, ApiError> {
    match (id, inline) {
        (Some(raw), None) => {
            let id: ContactId = raw.parse().map_err(|e| ApiError::invalid("contact_id", e))?;
            Ok(state.store.get_contact(workspace, id).await?)
        }
        (None, inline) => inline_contact(inline.unwrap_or_default(), workspace, now),
        (Some(_), Some(_)) => Err(ApiError::invalid("contact", "give contact_id or contact, not both")),
    }
}

/// Renders templates by name (`html` HTML-escaped, the others as text) over a scope; a
/// template that does not compile or render is refused naming `templates.<name>`.
pub fn render_preview(
    scope: &herald_campaign::context::Scope<'_>,
    templates: BTreeMap<String, String>,
    now: Timestamp,
) -> Result<BTreeMap<String, PreviewPart>, ApiError> {
    use herald_template::{Escape, Limits, Template};
    let variables = scope.variables();
    let mut parts = BTreeMap::new();
    for (name, source) in templates {
        let field = format!("templates.{name}");
        let template = Template::compile(&source).map_err(|e| {
            let mut error =
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_template", format!("{field}: {e}"));
            error.field = Some(field.clone());
            error
        })?;
        let escape = if name == "html" { Escape::Html } else { Escape::Text };
        let rendered = template
            .render_at(&variables, escape, &Limits::default(), now.to_offset_date_time())
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "render_failed", format!("{field}: {e}")))?;
        let warnings = rendered.warnings.iter().map(ToString::to_string).collect();
        parts.insert(name, PreviewPart { output: rendered.output, warnings });
    }
    Ok(parts)
}

/// An event that is not stored: what a simulation or preview shows as `event.*`.
pub fn preview_event(
    workspace: WorkspaceId,
    contact: ContactId,
    data: &herald_domain::InboundEvent,
    at: Timestamp,
) -> herald_domain::Event {
    herald_domain::Event {
        id: herald_domain::EventId::from_uuid(herald_store::new_uuid(at)),
        workspace_id: workspace,
        source_id: None,
        contact_id: Some(contact),
        name: data.name.as_ref().map(|n| n.as_str().to_owned()),
        properties: data.properties.clone(),
        occurred_at: data.occurred_at.unwrap_or(at),
        received_at: at,
        idempotency_key: None,
        request: None,
        outcome: herald_domain::EventOutcome {
            contact: herald_domain::ContactAction::Unchanged,
            conflicts: Vec::new(),
            notes: Vec::new(),
            campaigns: Vec::new(),
        },
    }
}

/// Parses a generic-source payload that belongs to `contact`, so it need not name it.
pub fn contact_event(
    mut raw: Map<String, Value>,
    contact: &herald_domain::Contact,
    field: &str,
) -> Result<herald_domain::InboundEvent, ApiError> {
    if !["email", "userId", "user_id", "phone"].iter().any(|k| raw.contains_key(*k)) {
        let email = contact.email.as_ref().map_or("contact@example.com", |e| e.as_str());
        raw.insert("email".into(), Value::String(email.to_owned()));
    }
    herald_domain::inbound::parse_generic(&Value::Object(raw))
        .map_err(|e| ApiError::invalid(&format!("{field}.{}", e.field), &e.reason))
}
/// One rendered template.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewPart {
    pub output: String,
    /// Missing variables and the like, with line and column.
    pub warnings: Vec<String>,
}
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineContact {
    email: Option<String>,
    user_id: Option<String>,
    phone: Option<String>,
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    #[serde(default)]
    attributes: Map<String, Value>,
}

pub fn inline_contact(
    inline: InlineContact,
    workspace: WorkspaceId,
    now: Timestamp,
) -> Result<herald_domain::Contact, ApiError> {
    use herald_domain::{Phone, UserId};
    Ok(herald_domain::Contact {
        id: ContactId::from_uuid(herald_store::new_uuid(now)),
        workspace_id: workspace,
        email: inline
            .email
            .map(|e| EmailAddress::parse(&e))
            .transpose()
            .map_err(|e| ApiError::invalid("contact.email", e))?,
        user_id: inline
            .user_id
            .map(|u| UserId::parse(&u))
            .transpose()
            .map_err(|e| ApiError::invalid("contact.user_id", e))?,
        phone: inline.phone.map(|p| Phone::parse(&p)).transpose().map_err(|e| ApiError::invalid("contact.phone", e))?,
        name: inline.name,
        first_name: inline.first_name,
        last_name: inline.last_name,
        attributes: inline.attributes,
        created_at: now,
        updated_at: now,
    })
}
