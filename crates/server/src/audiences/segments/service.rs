//! The segments' use cases that the API and the pages share: checking a definition against
//! the workspace (the segments and topics it names, cycles), saving, and the members as CSV.

use axum::http::StatusCode;
use herald_campaign::segment::{Segment, graph};
use herald_domain::{ContactId, PageRequest, SegmentId, TopicId, WorkspaceId};
use herald_store::segment::{SegmentDraft, SegmentRecord};
use herald_store::{SharedStore, StoreError};
use serde_json::Value;

use super::SegmentsState;
use crate::web::csv_failed;
use crate::web::error::ApiError;

/// The longest segment name.
const MAX_NAME: usize = 200;

/// Parses a definition, naming the field at fault under `definition`.
fn definition(value: &Value) -> Result<Segment, ApiError> {
    Segment::from_json(value).map_err(|e| {
        let field = if e.path.is_empty() { "definition".to_owned() } else { format!("definition.{}", e.path) };
        ApiError::invalid(&field, e.message)
    })
}

/// Parses a definition to save as `id` (a new segment when `None`) or to preview: the topics
/// and segments it names must be in the workspace, and the segments must not lead back to it.
pub async fn checked_definition(
    state: &SegmentsState,
    workspace: WorkspaceId,
    id: Option<SegmentId>,
    value: &Value,
) -> Result<Segment, ApiError> {
    let compiled = definition(value)?;
    let topics: Vec<TopicId> = compiled.topics().into_iter().collect();
    if !topics.is_empty() {
        let known = state.store.topics_by_ids(workspace, &topics).await?;
        if let Some(missing) = topics.iter().find(|t| !known.iter().any(|k| k.id == **t && k.deleted_at.is_none())) {
            return Err(ApiError::invalid(
                "definition",
                format!("subscribed_to: no topic {missing} in this workspace"),
            ));
        }
    }
    let references = compiled.references();
    if references.is_empty() {
        return Ok(compiled);
    }
    let mut others = graph::References::new();
    for other in state.store.list_segments(workspace).await?.iter().filter(|o| Some(o.id) != id) {
        let refs = Segment::from_json(&other.definition).map(|s| s.references()).unwrap_or_default();
        others.insert(other.id, refs);
    }
    if let Some(missing) = references.iter().find(|r| Some(**r) != id && !others.contains_key(r)) {
        return Err(ApiError::invalid("definition", format!("member_of: no segment {missing} in this workspace")));
    }
    if let Some(id) = id
        && let Some(cycle) = graph::cycle(id, &references, &others)
    {
        return Err(ApiError::invalid(
            "definition",
            format!("member_of: the segment would refer to itself ({})", graph::describe(&cycle)),
        ));
    }
    Ok(compiled)
}

/// Saves a segment as `id` (a new one when `None`) after checking its name and definition;
/// its members are then built in the background.
pub async fn save(
    state: &SegmentsState,
    workspace: WorkspaceId,
    id: Option<SegmentId>,
    name: &str,
    definition: Value,
) -> Result<SegmentRecord, ApiError> {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::invalid("name", format!("must be 1 to {MAX_NAME} characters")));
    }
    let compiled = checked_definition(state, workspace, id, &definition).await?;
    let draft = SegmentDraft { name, definition, references: compiled.references().into_iter().collect() };
    let now = state.clock.now();
    let saved = match id {
        Some(id) => state.store.update_segment(workspace, id, &draft, now).await,
        None => state.store.create_segment(workspace, &draft, now).await,
    };
    saved.map_err(name_conflict)
}

/// A taken name, named by its field.
fn name_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict { constraint } if constraint == "segments_name" => {
            let mut error = ApiError::new(StatusCode::CONFLICT, "conflict", "name: another segment has this name");
            error.field = Some("name".into());
            error
        }
        other => other.into(),
    }
}

/// Every member of a segment as CSV: `id,email,user_id,phone,name,member_since`.
pub async fn members_csv(store: &SharedStore, workspace: WorkspaceId, id: SegmentId) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["id", "email", "user_id", "phone", "name", "member_since"]).map_err(csv_failed)?;
    let mut page = PageRequest::first(PageRequest::<ContactId>::MAX_LIMIT);
    loop {
        let listed = store.list_members(workspace, id, page).await?;
        for member in &listed.items {
            let c = &member.contact;
            out.write_record([
                c.id.to_string().as_str(),
                c.email.as_ref().map_or("", |e| e.as_str()),
                c.user_id.as_ref().map_or("", |u| u.as_str()),
                c.phone.as_ref().map_or("", |p| p.as_str()),
                c.name.as_deref().unwrap_or_default(),
                member.since.to_string().as_str(),
            ])
            .map_err(csv_failed)?;
        }
        match listed.items.last() {
            Some(last) if listed.next_cursor.is_some() => page.after = Some(last.contact.id),
            _ => break,
        }
    }
    out.into_inner().map_err(|e| csv_failed(e.into_error()))
}
