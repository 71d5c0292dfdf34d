//! Campaigns: the list with state and statistics, activate / pause / resume / archive, one
//! campaign's per-step statistics, messages, pending drafts (`drafts.rs`) and event webhooks
//! (`campaign_webhooks.rs`).

use askama::Template;
use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::routing::{get, post};
use herald_domain::{CampaignId, CampaignState, Cursor, DraftId, PageRequest};
use herald_store::campaign::{CampaignStats, MessageFilter};
use herald_store::email::ActivityScope;
use serde::Deserialize;

use super::CampaignsState;
use super::drafts::pages::{self as drafts, DraftRow};
use super::hooks::form::{self as campaign_webhooks, HookForm, HookRow};
use super::{editor, service};
use crate::web::error::ApiError;
use crate::web::numbers::{CHART_DAYS, DayChart, Figure, figures};
use crate::web::{
    FieldErrors, Form, Layout, NoticeQuery, Session, UiError, UiResult, WebState, non_blank, parse_id, render,
    see_other, when,
};

/// The campaign pages: the list, a campaign's page with its drafts, the editor (its webhooks' routes
/// are `hooks::pages::router`).
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    CampaignsState: FromRef<S>,
    WebState: FromRef<S>,
{
    Router::new()
        .route("/campaigns", get(list))
        .route("/campaigns/new", get(editor::new).post(editor::submit_new))
        .route("/campaigns/{id}", get(show))
        .route("/campaigns/{id}/edit", get(editor::edit).post(editor::submit_edit))
        .route("/campaigns/{id}/state", post(change_state))
        .route("/campaigns/{id}/drafts", post(drafts::settle))
        .route("/campaigns/{id}/steps/{step}", get(show_step))
}

pub struct CampaignRow {
    pub id: String,
    pub name: String,
    pub state: String,
    pub badge: &'static str,
    pub version: u32,
    pub stats: CampaignStats,
    pub actions: Vec<(&'static str, &'static str, bool)>,
}

fn badge(state: CampaignState) -> &'static str {
    match state {
        CampaignState::Active => "ok",
        CampaignState::Paused => "warn",
        _ => "",
    }
}

/// The state changes a campaign in `state` offers: (form value, button label, primary).
fn actions(state: CampaignState) -> Vec<(&'static str, &'static str, bool)> {
    match state {
        CampaignState::Draft => vec![("activate", "Activate", true)],
        CampaignState::Active => vec![("pause", "Pause", false)],
        CampaignState::Paused => vec![("resume", "Resume", true), ("archive", "Archive", false)],
        _ => Vec::new(),
    }
}

#[derive(Template)]
#[template(path = "campaigns.html")]
struct CampaignsPage {
    l: Layout,
    rows: Vec<CampaignRow>,
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    notice: Option<String>,
}

/// Campaigns per page: each row reads its statistics.
const PAGE: u32 = 20;

pub async fn list(State(state): State<CampaignsState>, session: Session, Query(q): Query<ListQuery>) -> UiResult {
    let ws = session.workspace_id;
    let after = non_blank(&q.cursor)
        .map(Cursor::decode::<CampaignId>)
        .transpose()
        .map_err(|_| UiError(ApiError::invalid("cursor", "is not a cursor")))?;
    let page = state.store.list_campaigns(ws, PageRequest { after, limit: PAGE }).await?;
    let mut rows = Vec::with_capacity(page.items.len());
    for c in &page.items {
        rows.push(CampaignRow {
            id: c.id.to_string(),
            name: c.name.clone(),
            state: c.state.to_string(),
            badge: badge(c.state),
            version: c.version,
            stats: state.store.campaign_stats(ws, c.id).await?,
            actions: actions(c.state),
        });
    }
    let mut l = Layout::new(&session, "/campaigns", "Campaigns");
    l.notice = NoticeQuery { notice: q.notice }.message();
    Ok(render(&CampaignsPage { l, rows, next: page.next_cursor.map(|c| c.as_str().to_owned()) }))
}

pub struct StepLine {
    pub step: String,
    pub outcomes: String,
}

/// An email step's numbers, as a row of the campaign's table.
pub struct StepNumbersRow {
    pub step: String,
    pub figures: Vec<Figure>,
}

pub struct MessageLine {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub status: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "campaign.html")]
pub(super) struct CampaignPage {
    pub(super) l: Layout,
    c: CampaignRow,
    steps: Vec<StepLine>,
    /// The campaign's email numbers, all time.
    email: Vec<Figure>,
    /// Each email step's numbers.
    email_steps: Vec<StepNumbersRow>,
    /// The last days' email, per day.
    chart: DayChart,
    messages: Vec<MessageLine>,
    document: String,
    drafts: Vec<DraftRow>,
    drafts_next: Option<String>,
    hooks: Vec<HookRow>,
    /// The new-webhook form, as typed when it came back with errors.
    pub(super) hook_form: HookForm,
    pub(super) hook_errors: FieldErrors,
}

#[derive(Debug, Default, Deserialize)]
pub struct CampaignQuery {
    notice: Option<String>,
    drafts_cursor: Option<String>,
}

impl CampaignPage {
    pub(super) async fn load(
        state: &CampaignsState,
        session: &Session,
        id: CampaignId,
        drafts_cursor: Option<DraftId>,
    ) -> Result<Self, UiError> {
        let ws = session.workspace_id;
        let campaign = state.store.get_campaign(ws, id).await?;
        let stats = state.store.campaign_stats(ws, id).await?;
        let steps = stats
            .steps
            .iter()
            .map(|(step, outcomes)| StepLine {
                step: step.clone(),
                outcomes: outcomes.iter().map(|(o, n)| format!("{o}: {n}")).collect::<Vec<_>>().join(", "),
            })
            .collect();
        let now = state.clock.now();
        let scope = ActivityScope { campaign: Some(id), ..ActivityScope::default() };
        let report = state.store.email_report(ws, &scope, DayChart::since(now, CHART_DAYS)).await?;
        let email_steps = state.store.step_numbers(ws, id).await?;
        let filter = MessageFilter { campaign: Some(id), ..MessageFilter::default() };
        let messages = state.store.list_messages(ws, &filter, PageRequest { after: None, limit: 50 }).await?;
        let (drafts, drafts_next) = drafts::section(state, ws, id, drafts_cursor).await?;
        Ok(Self {
            l: Layout::new(session, "/campaigns", campaign.name.clone()),
            c: CampaignRow {
                id: campaign.id.to_string(),
                name: campaign.name.clone(),
                state: campaign.state.to_string(),
                badge: badge(campaign.state),
                version: campaign.version,
                stats,
                actions: actions(campaign.state),
            },
            steps,
            email: figures(&report.totals),
            email_steps: email_steps
                .iter()
                .map(|s| StepNumbersRow { step: s.step.clone(), figures: figures(&s.numbers) })
                .collect(),
            chart: DayChart::new(&report.daily, now, CHART_DAYS),
            messages: messages
                .items
                .iter()
                .map(|m| MessageLine {
                    id: m.id.to_string(),
                    to: m.to.clone(),
                    subject: m.subject.clone(),
                    status: m.status.to_string(),
                    created: when(m.created_at),
                })
                .collect(),
            document: crate::web::pretty(&crate::campaigns::secrets::masked(&campaign.document)),
            drafts,
            drafts_next,
            hooks: campaign_webhooks::rows(state, ws, id).await?,
            hook_form: HookForm::default(),
            hook_errors: FieldErrors::default(),
        })
    }
}

pub async fn show(
    State(state): State<CampaignsState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<CampaignQuery>,
) -> UiResult {
    let id: CampaignId = parse_id(&id)?;
    let mut page = CampaignPage::load(&state, &session, id, crate::web::cursor::<DraftId>(&q.drafts_cursor)?).await?;
    page.l.notice = NoticeQuery { notice: q.notice }.message();
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "campaign_step.html")]
struct StepPage {
    l: Layout,
    campaign_id: String,
    campaign: String,
    step: String,
    email: Vec<Figure>,
    chart: DayChart,
}

/// One email step of a campaign: its numbers and its last days.
pub async fn show_step(
    State(state): State<CampaignsState>,
    session: Session,
    Path((id, step)): Path<(String, String)>,
) -> UiResult {
    let id: CampaignId = parse_id(&id)?;
    let ws = session.workspace_id;
    let campaign = state.store.get_campaign(ws, id).await?;
    let now = state.clock.now();
    let scope = ActivityScope { campaign: Some(id), step: Some(step.clone()), broadcast: None, message: None };
    let report = state.store.email_report(ws, &scope, DayChart::since(now, CHART_DAYS)).await?;
    Ok(render(&StepPage {
        l: Layout::new(&session, "/campaigns", format!("{} · {step}", campaign.name)),
        campaign_id: campaign.id.to_string(),
        campaign: campaign.name,
        step,
        email: figures(&report.totals),
        chart: DayChart::new(&report.daily, now, CHART_DAYS),
    }))
}

#[derive(Debug, Deserialize)]
pub struct StateForm {
    #[serde(default)]
    action: String,
    /// Where to go back to: the list or the campaign's page.
    back: Option<String>,
}

pub async fn change_state(
    State(state): State<CampaignsState>,
    Path(id): Path<String>,
    Form(session, form): Form<StateForm>,
) -> UiResult {
    let id: CampaignId = parse_id(&id)?;
    let (from, to, notice): (&[CampaignState], _, _) = match form.action.as_str() {
        "activate" => (&[CampaignState::Draft], CampaignState::Active, "active"),
        "pause" => (&[CampaignState::Active], CampaignState::Paused, "paused"),
        "resume" => (&[CampaignState::Paused], CampaignState::Active, "active"),
        "archive" => {
            (&[CampaignState::Draft, CampaignState::Active, CampaignState::Paused], CampaignState::Archived, "archived")
        }
        _ => return Err(UiError(ApiError::invalid("action", "must be activate, pause, resume or archive"))),
    };
    service::set_state(&state, session.workspace_id, id, from, to).await?;
    let back = if form.back.as_deref() == Some("list") { "/campaigns".to_owned() } else { format!("/campaigns/{id}") };
    Ok(see_other(&back, notice))
}
