//! What a campaign's email did: sent, delivered, bounced, opened, clicked, complained,
//! unsubscribed and converted, with rates, for the campaign, each email step, and per day;
//! `GET /api/v1/campaigns/{id}/email-stats` (`?step=` for one step).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRef, Path, State};
use herald_domain::{CampaignId, Timestamp, WorkspaceId};
use herald_store::email::{ActivityScope, DayNumbers, EmailNumbers};
use herald_store::{SharedStore, StoreResult};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::CampaignsState;
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiQuery, ErrorBody};

/// Days the per-day numbers go back by default, and at most.
const DEFAULT_DAYS: u32 = 30;
const MAX_DAYS: u32 = 366;

/// A campaign's email numbers.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignNumbers {
    /// All of the campaign's messages, ever.
    #[schema(value_type = Object)]
    pub totals: EmailNumbers,
    /// Per email step (by step id), ever.
    #[schema(value_type = Object)]
    pub steps: BTreeMap<String, EmailNumbers>,
    /// Per day (UTC) over the last `days` days, days without activity left out.
    #[schema(value_type = Vec<Object>)]
    pub daily: Vec<DayNumbers>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NumbersQuery {
    /// How many days the per-day numbers go back (1–366, default 30).
    days: Option<u32>,
    /// Only this email step's messages (its id).
    step: Option<String>,
}

impl NumbersQuery {
    fn since(&self, now: Timestamp) -> Result<Timestamp, ApiError> {
        let days = self.days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ApiError::invalid("days", format!("must be between 1 and {MAX_DAYS}")));
        }
        Ok(now - Duration::from_secs(u64::from(days) * 86_400))
    }
}

/// The campaign's numbers (or only those of its step `step`): totals, per step, per day from
/// `daily_since`.
pub async fn campaign_numbers(
    store: &SharedStore,
    workspace: WorkspaceId,
    campaign: CampaignId,
    step: Option<&str>,
    daily_since: Timestamp,
) -> StoreResult<CampaignNumbers> {
    let scope =
        ActivityScope { campaign: Some(campaign), step: step.map(str::to_owned), broadcast: None, message: None };
    let report = store.email_report(workspace, &scope, daily_since).await?;
    let steps = store
        .step_numbers(workspace, campaign)
        .await?
        .into_iter()
        .filter(|s| step.is_none_or(|only| only == s.step))
        .map(|s| (s.step, s.numbers))
        .collect();
    Ok(CampaignNumbers { totals: report.totals, steps, daily: report.daily })
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    CampaignsState: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(campaign_email_stats))
}

/// The campaign's email numbers (or one email step's, with `step`): totals, per email step,
/// and per day. Unique counts are of messages, totals of activities; machine opens (mail
/// privacy proxies) are counted apart.
#[utoipa::path(get, path = "/campaigns/{id}/email-stats", tag = "campaigns",
    params(("id" = String, Path), NumbersQuery),
    responses((status = 200, body = CampaignNumbers), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
async fn campaign_email_stats(
    State(state): State<CampaignsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<NumbersQuery>,
) -> Result<Json<CampaignNumbers>, ApiError> {
    let campaign = campaign_id(&state, p.workspace_id, &id).await?;
    let since = q.since(state.clock.now())?;
    Ok(Json(campaign_numbers(&state.store, p.workspace_id, campaign, q.step.as_deref(), since).await?))
}

/// The id of a campaign of the workspace (404 when there is none).
async fn campaign_id(state: &CampaignsState, workspace: WorkspaceId, raw: &str) -> Result<CampaignId, ApiError> {
    Ok(state.store.get_campaign(workspace, super::api::parse_id(raw)?).await?.id)
}
