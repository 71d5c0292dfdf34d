//! The HTTP surface: the authenticated admin API under `/api/v1`, its OpenAPI document, and
//! the operations endpoints. Each resource module exposes its own `router()`; this module
//! assembles them and adds the shared layers (auth, body limit, metrics, tracing, panics).

pub(crate) mod actions;
pub(crate) mod api_keys;
mod auth;
pub(crate) mod campaign_webhooks;
pub(crate) mod campaigns;
mod contacts;
pub(crate) mod domains;
pub(crate) mod drafts;
mod endpoints;
pub mod error;
pub(crate) mod events;
mod list;
pub(crate) mod messages;
mod openapi;
mod ops;
pub(crate) mod sources;
pub(crate) mod suppressions;
pub(crate) mod transport;
mod unsubscribe;
pub(crate) mod webhooks;
mod workspace;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use herald_store::SharedStore;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock::SharedClock;
use error::ApiError;

/// Largest request body the admin API reads.
const API_BODY_LIMIT: usize = 256 * 1024;
/// A request taking longer than this is answered 408 and its work dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bulk imports (100,000 rows) get longer.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(600);

/// Answers 408 when a request runs past its time limit.
async fn time_limit(request: Request, next: middleware::Next) -> axum::response::Response {
    let bulk = request.extensions().get::<MatchedPath>().is_some_and(|p| p.as_str() == "/api/v1/contacts/import");
    let limit = if bulk { IMPORT_TIMEOUT } else { REQUEST_TIMEOUT };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", format!("the request took longer than {limit:?}"))
                .into_response()
        }
    }
}

/// What every handler can reach. Cloned for every request (axum hands each handler its own
/// state), so it is one shared pointer rather than a struct of them.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct Services {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub metrics: PrometheusHandle,
    /// Base URL for URLs handed out to others, without a trailing slash.
    pub public_url: Arc<str>,
    /// Commits inbound events in shared transactions.
    pub committer: crate::ingest::Committer,
    /// Per-source rejection log and samples, written off the request path.
    pub source_log: crate::ingest::log::SourceLog,
    pub limiter: Arc<crate::ingest::limiter::Limiter>,
    /// Sources by token hash, briefly cached for the hot path.
    pub sources: Arc<crate::ingest::sources::SourceCache>,
    /// Largest inbound webhook body, in bytes.
    pub ingest_body_limit: usize,
    /// Campaign engine: enrolment through the API.
    pub campaigns: Arc<crate::campaigns::Campaigns>,
    /// Sending domains, transports and unsubscribe links.
    pub email: Arc<crate::email::Email>,
    /// Outbound webhook calls and signing keys.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Wrong web UI passwords per account, to slow guessing.
    pub login_throttle: Arc<crate::ui::throttle::LoginThrottle>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("store", &self.store)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald admin API",
        description = "Manage a Herald workspace. Every `/api/v1` endpoint needs `Authorization: Bearer <API key>`; \
            lists return `{\"data\": [...], \"next_cursor\": ...}`; errors return \
            `{\"error\": {\"code\", \"message\", \"field\"}}`. JSON numbers are kept exactly (integers from \
            -2^63 to 2^64-1, others as 64-bit floats); an integer beyond 64 bits or a number beyond a float's \
            range is refused with `validation_failed` naming its field: send such values as strings."
    ),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody)),
    tags(
        (name = "workspace", description = "The workspace of the calling key"),
        (name = "api-keys", description = "Admin API keys"),
        (name = "sources", description = "Inbound webhook endpoints"),
        (name = "contacts", description = "People"),
        (name = "events", description = "The event log"),
        (name = "campaigns", description = "Campaigns: triggers, steps, versions, enrolment and statistics"),
        (name = "campaign-webhooks", description = "Campaign event webhooks: a campaign's events sent to other systems"),
        (name = "messages", description = "Emails produced by campaign steps"),
        (name = "domains", description = "Sending domains: DKIM keys, DNS records and verification"),
        (name = "suppressions", description = "Addresses campaign email never goes to"),
        (name = "transport", description = "The SMTP relay the workspace sends with"),
        (name = "webhooks", description = "Outbound webhook calls, their attempts, and the signing keys"),
        (name = "actions", description = "Saved webhook actions: reused by campaign steps, run for one contact"),
        (name = "operations", description = "Health, readiness and metrics; no authentication")
    )
)]
struct ApiDoc;

/// Declares bearer authentication and requires it everywhere (operations endpoints opt out).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        openapi.security =
            Some(vec![utoipa::openapi::security::SecurityRequirement::new("api_key", Vec::<String>::new())]);
    }
}

/// For optional fields of PATCH bodies: tells "absent" (outer `None`, with `#[serde(default)]`)
/// from "null" (`Some(None)`).
fn present<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// The OpenAPI document of everything `router` serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    build().2
}

/// The API routes, the operations routes, and the OpenAPI document describing both.
fn build() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (v1, v1_doc) = OpenApiRouter::new()
        .merge(workspace::router())
        .merge(api_keys::router())
        .merge(sources::router())
        .merge(contacts::router())
        .merge(events::router())
        .merge(campaigns::router())
        .merge(campaign_webhooks::router())
        .merge(messages::router())
        .merge(domains::router())
        .merge(suppressions::router())
        .merge(transport::router())
        .merge(webhooks::router())
        .merge(actions::router())
        .merge(drafts::router())
        .merge(endpoints::router())
        .split_for_parts();
    let (ops, ops_doc) = OpenApiRouter::new()
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .split_for_parts();
    let mut doc = ApiDoc::openapi().merge_from(ops_doc).nest("/api/v1", v1_doc);
    openapi::complete(&mut doc);
    (v1, ops, doc)
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (v1, ops, doc) = build();
    let spec: Arc<str> = doc.to_json().unwrap_or_else(|_| "{}".to_owned()).into();
    let v1 = v1
        .route(
            "/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], spec.to_string()) }
            }),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_api_key))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT));
    // Inbound webhooks: authenticated by the secret in the path, with their own body limit.
    let inbound = Router::new()
        .route(
            "/webhooks/inbound/{token}",
            get(crate::ingest::receive::receive)
                .post(crate::ingest::receive::receive)
                .put(crate::ingest::receive::receive),
        )
        .route("/webhooks/inbound/{token}/batch", axum::routing::post(crate::ingest::receive::receive_batch))
        // Unsubscribe links: authenticated by the signed token in the path.
        .route("/unsubscribe/{token}", get(unsubscribe::show).post(unsubscribe::unsubscribe))
        .method_not_allowed_fallback(error::method_not_allowed);
    Router::new()
        .nest("/api/v1", v1)
        .merge(inbound)
        .merge(ops)
        .merge(crate::ui::router())
        .fallback(error::not_found)
        .layer(middleware::from_fn(crate::telemetry::track_http))
        .layer(middleware::from_fn(time_limit))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            // The route template, never the path: inbound webhook paths carry secret tokens.
            let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!("http", method = %request.method(), route)
        }))
        .layer(CatchPanicLayer::custom(|_panic| {
            tracing::error!("request handler panicked");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; the server log has details")
                .into_response()
        }))
        .with_state(state)
}
