//! Deliveries: the log of outbound webhook calls, newest first, filtered by status, campaign
//! (and step), saved action and contact; one call with every attempt (request line, headers
//! with secrets masked, status, latency, response body when kept, error) and a Resend button
//! that does what `POST /api/v1/webhook-deliveries/{id}/resend` does.

use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::routing::{get, post};
use herald_domain::{ActionId, WebhookDeliveryId, WebhookStatus};
use serde::Deserialize;
use serde_json::Value;

use crate::delivery::webhooks::WebhooksState;
use crate::delivery::webhooks::service::{self, DeliveryParams};
use crate::web::{
    Empty, FieldErrors, Form, Layout, NoticeQuery, SelectOption, Session, UiResult, WebState, cursor, list_url,
    non_blank, parse_id, pretty, render, see_other, status_badge, when,
};

/// The deliveries pages.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    WebhooksState: FromRef<S>,
    WebState: FromRef<S>,
{
    Router::new()
        .route("/deliveries", get(list))
        .route("/deliveries/{id}", get(show))
        .route("/deliveries/{id}/resend", post(resend))
}

pub struct DeliveryRow {
    pub id: String,
    pub created: String,
    pub endpoint: String,
    pub origin: String,
    pub contact_id: Option<String>,
    pub status: String,
    pub badge: &'static str,
    pub attempts: u32,
    pub last: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeliveryQuery {
    status: Option<String>,
    campaign: Option<String>,
    step: Option<String>,
    action: Option<String>,
    contact: Option<String>,
    /// A campaign event webhook's calls (`cwh_…`), linked from its edit page.
    campaign_webhook: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    l: Layout,
    rows: Vec<DeliveryRow>,
    statuses: Vec<SelectOption>,
    campaigns: Vec<SelectOption>,
    actions: Vec<SelectOption>,
    step: String,
    contact: String,
    errors: FieldErrors,
    filtered: bool,
    next: Option<String>,
}

/// Where a call came from, in words.
fn origin(d: &herald_domain::WebhookDelivery) -> String {
    match (&d.step, d.campaign_webhook_id, d.campaign_id) {
        (Some(step), _, _) => format!("step {step}"),
        (None, Some(_), _) => "campaign event webhook".to_owned(),
        (None, None, None) => "saved action run".to_owned(),
        (None, None, Some(_)) => "campaign".to_owned(),
    }
}

const FILTER_FIELDS: [&str; 5] = ["status", "campaign", "step", "action", "contact"];

pub async fn list(State(state): State<WebhooksState>, session: Session, Query(q): Query<DeliveryQuery>) -> UiResult {
    let ws = session.workspace_id;
    let mut errors = FieldErrors::default();
    // The contact box takes an email too: look it up, then filter by its id.
    let contact = match non_blank(&q.contact) {
        Some(raw) => match crate::web::contact_filter(&state.store, session.workspace_id, raw).await {
            Ok(id) => id.map(|c| c.to_string()),
            Err(e) => {
                errors = FieldErrors::from_api(crate::web::error::ApiError::invalid("contact", e), &FILTER_FIELDS);
                None
            }
        },
        None => None,
    };
    let params = DeliveryParams {
        status: non_blank(&q.status).map(str::to_owned),
        campaign: non_blank(&q.campaign).map(str::to_owned),
        step: non_blank(&q.step).map(str::to_owned),
        action: non_blank(&q.action).map(str::to_owned),
        contact,
        campaign_webhook: non_blank(&q.campaign_webhook).map(str::to_owned),
        ..DeliveryParams::default()
    };
    let filter = if errors.is_empty() {
        match service::delivery_filter(&state, ws, params).await {
            Ok(filter) => Some(filter),
            Err(e) => {
                errors = FieldErrors::from_api(e, &FILTER_FIELDS);
                None
            }
        }
    } else {
        None
    };
    let (rows, next) = match &filter {
        Some(filter) => {
            let after = cursor::<WebhookDeliveryId>(&q.cursor)?;
            let page = state.store.list_deliveries(ws, filter, herald_domain::PageRequest { after, limit: 50 }).await?;
            let rows = page
                .items
                .iter()
                .map(|d| DeliveryRow {
                    id: d.id.to_string(),
                    created: when(d.created_at),
                    endpoint: d.request["url"].as_str().unwrap_or(&d.endpoint).to_owned(),
                    origin: origin(d),
                    contact_id: d.contact_id.map(|c| c.to_string()),
                    status: d.status.to_string(),
                    badge: status_badge(d.status.as_str()),
                    attempts: d.attempts,
                    last: match (d.last_status, &d.last_error) {
                        (Some(code), _) => code.to_string(),
                        (None, Some(error)) => error.clone(),
                        (None, None) => String::new(),
                    },
                })
                .collect();
            let filters = [
                ("status", q.status.as_deref()),
                ("campaign", q.campaign.as_deref()),
                ("step", q.step.as_deref()),
                ("action", q.action.as_deref()),
                ("contact", q.contact.as_deref()),
                ("campaign_webhook", q.campaign_webhook.as_deref()),
            ];
            (rows, page.next_cursor.map(|c| list_url("/deliveries", &filters, Some(c.as_str()))))
        }
        None => (Vec::new(), None),
    };
    let selected_status = non_blank(&q.status);
    let selected_action = non_blank(&q.action).and_then(|a| a.parse::<ActionId>().ok());
    let actions = state
        .store
        .list_actions(ws)
        .await?
        .into_iter()
        .map(|a| SelectOption { value: a.id.to_string(), label: a.name, selected: Some(a.id) == selected_action })
        .collect();
    let page = DeliveriesPage {
        l: Layout::new(&session, "/deliveries", "Deliveries"),
        rows,
        statuses: SelectOption::statuses(
            &WebhookStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            selected_status,
        ),
        campaigns: SelectOption::campaigns(&state.store, ws, non_blank(&q.campaign).and_then(|c| c.parse().ok()))
            .await?,
        actions,
        step: non_blank(&q.step).unwrap_or_default().to_owned(),
        contact: non_blank(&q.contact).unwrap_or_default().to_owned(),
        filtered: [&q.status, &q.campaign, &q.step, &q.action, &q.contact, &q.campaign_webhook]
            .iter()
            .any(|v| non_blank(v).is_some()),
        errors,
        next,
    };
    Ok(render(&page))
}

pub struct AttemptView {
    pub number: u32,
    pub at: String,
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub status: Option<u16>,
    pub badge: &'static str,
    pub latency_ms: u64,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "delivery.html")]
struct DeliveryPage {
    l: Layout,
    id: String,
    status: String,
    badge: &'static str,
    origin: String,
    campaign_id: Option<String>,
    step: Option<String>,
    contact_id: Option<String>,
    idempotency_key: String,
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
    response: Option<String>,
    created: String,
    finished: Option<String>,
    attempts: Vec<AttemptView>,
    can_resend: bool,
}

/// Header names and values from a logged request's `headers` object.
fn header_pairs(headers: &Value) -> Vec<(String, String)> {
    match headers {
        Value::Object(map) => map
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
            .collect(),
        _ => Vec::new(),
    }
}

pub async fn show(
    State(state): State<WebhooksState>,
    session: Session,
    Path(id): Path<String>,
    Query(notice): Query<NoticeQuery>,
) -> UiResult {
    let id: WebhookDeliveryId = parse_id(&id)?;
    let (d, attempts) = state.store.get_delivery(session.workspace_id, id).await?;
    let request = &d.request;
    let page = DeliveryPage {
        l: Layout::new(&session, "/deliveries", format!("Call {}", d.id)).with_notice(notice.message()),
        id: d.id.to_string(),
        status: d.status.to_string(),
        badge: status_badge(d.status.as_str()),
        origin: origin(&d),
        campaign_id: d.campaign_id.map(|c| c.to_string()),
        step: d.step.clone(),
        contact_id: d.contact_id.map(|c| c.to_string()),
        idempotency_key: d.idempotency_key.clone(),
        request_line: format!(
            "{} {}",
            request["method"].as_str().unwrap_or("POST"),
            request["url"].as_str().unwrap_or(&d.endpoint)
        ),
        headers: header_pairs(&request["headers"]),
        body: request["body"].as_str().unwrap_or_default().to_owned(),
        response: (!d.response.is_null()).then(|| match &d.response {
            Value::String(text) => text.clone(),
            other => pretty(other),
        }),
        created: when(d.created_at),
        finished: d.finished_at.map(when),
        attempts: attempts
            .into_iter()
            .map(|a| AttemptView {
                number: a.number,
                at: when(a.at),
                request_line: a.request_line,
                headers: header_pairs(&a.request_headers),
                badge: match a.status {
                    Some(200..=299) => "ok",
                    Some(_) | None => "bad",
                },
                status: a.status,
                latency_ms: a.latency_ms,
                response_body: a.response_body,
                error: a.error,
            })
            .collect(),
        can_resend: d.status != WebhookStatus::Pending,
    };
    Ok(render(&page))
}

pub async fn resend(
    State(state): State<WebhooksState>,
    Path(id): Path<String>,
    Form(session, Empty {}): Form<Empty>,
) -> UiResult {
    let id: WebhookDeliveryId = parse_id(&id)?;
    service::resend(&state, session.workspace_id, id).await?;
    Ok(see_other(&format!("/deliveries/{id}"), "resent"))
}
