//! The editor's routes: the form for a new campaign or a stored one, and every post of it,
//! which saves, previews an email step, or edits the document and shows the form again.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use herald_domain::CampaignId;
use serde_json::{Value, json};

use super::form::{Fields, read_document};
use super::ops::edit_document;
use super::page::{Editing, choices, editor_page};
use super::preview::preview;
use crate::campaigns::{CampaignsState, CompileFailure, compile_document, secrets, service};
use crate::web::{Form, Session, UiResult, parse_id, render, see_other};

fn starter() -> Value {
    json!({"name": "", "trigger": {"type": "event", "event": ""}, "entry": "once", "steps": []})
}

pub async fn new(State(state): State<CampaignsState>, session: Session) -> UiResult {
    let doc = starter();
    let editing = Editing {
        session: &session,
        id: None,
        doc: &doc,
        errors: BTreeMap::new(),
        previews: BTreeMap::new(),
        preview_contact: String::new(),
    };
    Ok(render(&editor_page(editing, choices(&state, session.workspace_id).await?)))
}

pub async fn edit(State(state): State<CampaignsState>, session: Session, Path(id): Path<String>) -> UiResult {
    let id: CampaignId = parse_id(&id)?;
    let campaign = state.store.get_campaign(session.workspace_id, id).await?;
    let editing = Editing {
        session: &session,
        id: Some((id, campaign.state)),
        doc: &secrets::masked(&campaign.document),
        errors: BTreeMap::new(),
        previews: BTreeMap::new(),
        preview_contact: String::new(),
    };
    Ok(render(&editor_page(editing, choices(&state, session.workspace_id).await?)))
}

pub async fn submit_new(
    State(state): State<CampaignsState>,
    Form(session, fields): Form<Vec<(String, String)>>,
) -> UiResult {
    submit(state, session, None, Fields(fields)).await
}

pub async fn submit_edit(
    State(state): State<CampaignsState>,
    Path(id): Path<String>,
    Form(session, fields): Form<Vec<(String, String)>>,
) -> UiResult {
    let id: CampaignId = parse_id(&id)?;
    submit(state, session, Some(id), Fields(fields)).await
}

async fn submit(state: CampaignsState, session: Session, id: Option<CampaignId>, f: Fields) -> UiResult {
    let ws = session.workspace_id;
    let stored = match id {
        Some(id) => Some(state.store.get_campaign(ws, id).await?),
        None => None,
    };
    let mut doc = read_document(&f);
    let op = f.get("op").unwrap_or("refresh").to_owned();
    let preview_contact = f.raw("preview_contact").trim().to_owned();
    let mut errors = BTreeMap::new();
    let mut previews = BTreeMap::new();
    if op == "save" {
        // Secrets show as `***` (or, for a password, not at all): the stored ones stay.
        if let Err(path) = secrets::restore(&mut doc, stored.as_ref().map(|c| &c.document)) {
            errors.insert(path, secrets::NOTHING_TO_KEEP.to_owned());
        } else {
            match compile_document(&state.store, ws, doc.clone(), false).await {
                Err(CompileFailure::Store(e)) => return Err(e.into()),
                Err(CompileFailure::Invalid(found)) => {
                    for error in found {
                        errors.entry(error.path).or_insert(error.message);
                    }
                }
                Ok(_) => match service::save_campaign(&state, ws, id, doc.clone()).await {
                    Ok(campaign) => return Ok(see_other(&format!("/campaigns/{}", campaign.id), "saved")),
                    Err(e) => {
                        let prefix = e.field.as_ref().map(|f| format!("{f}: "));
                        let message = prefix
                            .and_then(|p| e.message.strip_prefix(&p).map(str::to_owned))
                            .unwrap_or(e.message.clone());
                        errors.insert(e.field.unwrap_or_default(), message);
                    }
                },
            }
        }
    } else if let Some(step) = op.strip_prefix("preview:") {
        previews.insert(step.to_owned(), preview(&state, ws, &doc, step, &preview_contact).await?);
    } else {
        edit_document(&mut doc, &op, &f);
    }
    let editing = Editing {
        session: &session,
        id: stored.as_ref().map(|c| (c.id, c.state)),
        doc: &secrets::masked(&doc),
        errors,
        previews,
        preview_contact,
    };
    let page = render(&editor_page(editing, choices(&state, ws).await?));
    Ok(if op == "save" { (axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response() } else { page })
}
