//! Deliverability: the workspace's bounce and complaint rates over the last 7 and 30 days
//! against the mailbox providers' limits, and the suppression list (searched, exported as
//! CSV, an address taken off one at a time).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use herald_domain::{EmailAddress, PageRequest};
use serde::Deserialize;

use crate::delivery::email::service::{self, ComplaintLevel};
use crate::delivery::email::{EmailState, service::suppressions};
use crate::web::error::ApiError;
use crate::web::numbers::percent;
use crate::web::{Form, Layout, NoticeQuery, Session, UiError, UiResult, cursor, list_url, non_blank, render, when};

/// The rates of one window.
pub struct Window {
    pub days: u32,
    pub sent: u64,
    pub bounced: u64,
    pub bounce_rate: String,
    pub complained: u64,
    pub complaint_rate: String,
    /// `ok`, `warn` or `bad`: the complaint rate against the providers' limits.
    pub badge: &'static str,
}

pub struct SuppressionRow {
    pub email: String,
    pub reason: String,
    pub detail: Option<String>,
    pub message_id: Option<String>,
    pub contact_id: Option<String>,
    pub created: String,
}

#[derive(Template)]
#[template(path = "deliverability.html")]
struct DeliverabilityPage {
    l: Layout,
    windows: Vec<Window>,
    /// The worst complaint level of the windows, and the window it is in.
    level: ComplaintLevel,
    level_window: u32,
    level_rate: String,
    rows: Vec<SuppressionRow>,
    search: String,
    export: String,
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeliverabilityQuery {
    search: Option<String>,
    cursor: Option<String>,
    notice: Option<String>,
}

/// The windows the page shows, in days.
const WINDOWS: [u32; 2] = [7, 30];
/// Suppressions per page.
const PAGE: u32 = 50;

pub async fn show(State(state): State<EmailState>, session: Session, Query(q): Query<DeliverabilityQuery>) -> UiResult {
    let ws = session.workspace_id;
    let mut windows = Vec::with_capacity(WINDOWS.len());
    let (mut level, mut level_window, mut level_rate) = (ComplaintLevel::Fine, WINDOWS[0], String::new());
    for days in WINDOWS {
        let n = service::recent_numbers(&state, ws, days).await?;
        let this = ComplaintLevel::of(n.rates.complained);
        if this > level {
            (level, level_window, level_rate) = (this, days, percent(n.rates.complained));
        }
        windows.push(Window {
            days,
            sent: n.counts.sent,
            bounced: n.counts.bounced_hard + n.counts.bounced_soft,
            bounce_rate: percent(n.rates.bounced),
            complained: n.counts.complained,
            complaint_rate: percent(n.rates.complained),
            badge: match this {
                ComplaintLevel::Fine => "ok",
                ComplaintLevel::Warning => "warn",
                ComplaintLevel::Alarm => "bad",
            },
        });
    }
    let search = non_blank(&q.search);
    let after = cursor::<String>(&q.cursor)?;
    let page = suppressions(&state, ws, search, PageRequest { after, limit: PAGE }).await?;
    let filters = [("search", search)];
    let page = DeliverabilityPage {
        l: Layout::new(&session, "/deliverability", "Deliverability")
            .with_notice(NoticeQuery { notice: q.notice }.message()),
        windows,
        level,
        level_window,
        level_rate,
        rows: page
            .items
            .into_iter()
            .map(|s| SuppressionRow {
                email: s.email,
                reason: s.reason,
                detail: s.detail,
                message_id: s.message_id.map(|m| m.to_string()),
                contact_id: s.contact_id.map(|c| c.to_string()),
                created: when(s.created_at),
            })
            .collect(),
        search: search.unwrap_or_default().to_owned(),
        export: list_url("/deliverability/suppressions.csv", &filters, None),
        next: page.next_cursor.map(|c| list_url("/deliverability", &filters, Some(c.as_str()))),
    };
    Ok(render(&page))
}

#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    search: Option<String>,
}

/// The suppression list (or the addresses matching the search) as a CSV download.
pub async fn export(
    State(state): State<EmailState>,
    session: Session,
    Query(q): Query<ExportQuery>,
) -> Result<Response, UiError> {
    let csv = service::suppressions_csv(&state, session.workspace_id, non_blank(&q.search)).await?;
    Ok(crate::web::csv_file("suppressions.csv", csv))
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    email: String,
}

/// Takes one address off the suppression list.
pub async fn remove(State(state): State<EmailState>, Form(session, form): Form<RemoveForm>) -> UiResult {
    let email = EmailAddress::parse(&form.email).map_err(|e| UiError(ApiError::invalid("email", e)))?;
    service::unsuppress(&state, session.workspace_id, &email).await?;
    Ok(crate::web::see_other("/deliverability", "suppression_removed"))
}
