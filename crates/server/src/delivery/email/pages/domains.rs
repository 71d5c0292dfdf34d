//! Sending domains: add one, the DNS records to publish (with copy buttons), verification
//! and its per-record results.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use herald_domain::{DomainId, DomainStatus, SendingDomain};
use serde::Deserialize;
use serde_json::Value;

use crate::delivery::email::{EmailState, service};
use crate::web::{
    Empty, FieldErrors, Form, Layout, NoticeQuery, Session, UiResult, non_blank, parse_id, render, see_other, when,
};

pub struct DomainRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub badge: &'static str,
    pub algorithm: String,
    pub created: String,
}

fn row(d: &SendingDomain) -> DomainRow {
    DomainRow {
        id: d.id.to_string(),
        name: d.name.clone(),
        status: d.status.to_string(),
        badge: match d.status {
            DomainStatus::Verified => "ok",
            DomainStatus::Pending => "warn",
            _ => "bad",
        },
        algorithm: d.algorithm.clone(),
        created: when(d.created_at),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct NewDomain {
    #[serde(default)]
    name: String,
    algorithm: Option<String>,
}

#[derive(Template)]
#[template(path = "domains.html")]
struct DomainsPage {
    l: Layout,
    rows: Vec<DomainRow>,
    form: NewDomain,
    errors: FieldErrors,
}

async fn list_page(state: &EmailState, session: &Session, form: NewDomain, errors: FieldErrors) -> UiResult {
    // A workspace has a handful of sending domains: the store lists them whole.
    let domains = state.store.list_domains(session.workspace_id).await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let page = DomainsPage {
        l: Layout::new(session, "/domains", "Domains"),
        rows: domains.iter().map(row).collect(),
        form,
        errors,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn list(State(state): State<EmailState>, session: Session) -> UiResult {
    list_page(&state, &session, NewDomain::default(), FieldErrors::default()).await
}

pub async fn create(State(state): State<EmailState>, Form(session, form): Form<NewDomain>) -> UiResult {
    let algorithm = non_blank(&form.algorithm).map(str::to_owned);
    match service::add_domain(
        &state,
        session.workspace_id,
        form.name.trim().to_owned(),
        algorithm.as_deref(),
        None,
        None,
    )
    .await
    {
        Ok(domain) => Ok(axum::response::Redirect::to(&format!("/domains/{}", domain.id)).into_response()),
        Err(error) => {
            let errors = FieldErrors::from_api(error, &["name", "algorithm"]);
            list_page(&state, &session, form, errors).await
        }
    }
}

pub struct RecordRow {
    pub id: String,
    pub purpose: String,
    pub record_type: String,
    pub name: String,
    pub value: String,
    pub required: bool,
    pub check: Option<String>,
    pub check_badge: &'static str,
    pub detail: Option<String>,
}

#[derive(Template)]
#[template(path = "domain.html")]
struct DomainPage {
    l: Layout,
    d: DomainRow,
    selector: String,
    records: Vec<RecordRow>,
    warning: Option<String>,
    checked: Option<String>,
    verified: Option<String>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

pub async fn show(
    State(state): State<EmailState>,
    session: Session,
    Path(id): Path<String>,
    Query(notice): Query<NoticeQuery>,
) -> UiResult {
    let domain = state.store.get_domain(session.workspace_id, parse_id(&id)?).await?;
    let checks = domain.checks.as_array().cloned().unwrap_or_default();
    let records = domain
        .records
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let purpose = text(r, "purpose");
            let check = checks.iter().find(|c| text(c, "purpose") == purpose);
            let status = check.map(|c| text(c, "status"));
            RecordRow {
                id: format!("record-{i}"),
                record_type: text(r, "record_type"),
                name: text(r, "name"),
                value: text(r, "value"),
                required: r.get("required").and_then(Value::as_bool).unwrap_or(false),
                check_badge: match status.as_deref() {
                    Some("matching") => "ok",
                    Some("missing") | Some("mismatch") => "bad",
                    _ => "warn",
                },
                check: status,
                detail: check.map(|c| text(c, "detail")).filter(|d| !d.is_empty()),
                purpose,
            }
        })
        .collect();
    let page = DomainPage {
        l: Layout::new(&session, "/domains", domain.name.clone()).with_notice(notice.message()),
        d: row(&domain),
        selector: domain.selector.clone(),
        records,
        warning: domain.warning.clone(),
        checked: domain.checked_at.map(when),
        verified: domain.verified_at.map(when),
    };
    Ok(render(&page))
}

pub async fn verify(
    State(state): State<EmailState>,
    Path(id): Path<String>,
    Form(session, Empty {}): Form<Empty>,
) -> UiResult {
    let id: DomainId = parse_id(&id)?;
    let (domain, released) = service::verify_domain(&state, session.workspace_id, id).await?;
    Ok(see_other(&format!("/domains/{}", domain.id), if released > 0 { "released" } else { "verified" }))
}
