//! The router: the authenticated admin API under `/api/v1`, its OpenAPI document, the source
//! URLs, the operations endpoints and the web UI's pages. Each slice exposes its own routes;
//! this module assembles them and adds the shared layers (auth, body limit, metrics, tracing,
//! panics).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::response::Redirect;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::AppState;
use super::{api_keys, settings_page as settings, workspace};
use super::{openapi, ops};
use crate::audiences::segments;
use crate::delivery::email::api::{deliverability, domains, messages, suppressions, transport};
use crate::delivery::email::tracking::endpoints as tracking;
use crate::delivery::email::unsubscribe_page as unsubscribe;
use crate::delivery::webhooks::api::{actions, deliveries as webhooks, endpoints};
use crate::delivery::{email, webhooks as outbound};
use crate::web::error::{self, ApiError};
use crate::web::{assets, first_run, login};
use crate::{audiences, campaigns, contacts, events, ingest};

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
        (name = "topics", description = "Subscription topics and each contact's choice per topic"),
        (name = "campaigns", description = "Campaigns: triggers, steps, versions, enrolment and statistics"),
        (name = "campaign-webhooks", description = "Campaign event webhooks: a campaign's events sent to other systems"),
        (name = "messages", description = "Emails produced by campaign steps"),
        (name = "domains", description = "Sending domains: DKIM keys, DNS records and verification"),
        (name = "suppressions", description = "Addresses campaign email never goes to"),
        (name = "transport", description = "The SMTP relay the workspace sends with"),
        (name = "broadcasts", description = "One-off emails to a segment, a topic's subscribers or everyone subscribed"),
        (name = "webhooks", description = "Outbound webhook calls, their attempts, and the signing keys"),
        (name = "actions", description = "Saved webhook actions: reused by campaign steps, run for one contact"),
        (name = "templates", description = "Shared email templates and layouts, with every version kept"),
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

/// The OpenAPI document of everything `router` serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    build().2
}

/// The API routes, the operations routes, and the OpenAPI document describing both.
fn build() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (v1, v1_doc) = OpenApiRouter::new()
        .merge(workspace::router())
        .merge(api_keys::router())
        .merge(ingest::api::router())
        .merge(contacts::api::router())
        .merge(events::api::router())
        .merge(audiences::topics::api::router())
        .merge(segments::api::router())
        .merge(campaigns::api::router())
        .merge(campaigns::numbers::router())
        .merge(campaigns::hooks::api::router())
        .merge(messages::router())
        .merge(deliverability::router())
        .merge(domains::router())
        .merge(suppressions::router())
        .merge(transport::router())
        .merge(crate::delivery::broadcasts::api::router())
        .merge(webhooks::router())
        .merge(actions::router())
        .merge(campaigns::drafts::api::router())
        .merge(endpoints::router())
        .merge(crate::templates::api::router())
        .merge(email::send::router())
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

/// The UI's routes, merged into the application's router.
fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/events") }))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/login/link/{token}", get(first_run::redeem))
        .route("/welcome", get(first_run::show).post(first_run::create))
        .route("/assets/{file}", get(assets::serve))
        .route("/settings", get(settings::show))
        .route("/settings/api-keys", post(settings::create_key))
        .route("/settings/api-keys/{id}/revoke", post(settings::revoke_key))
        .route("/settings/signing-key", post(settings::rotate_signing_key))
        .route("/settings/transport", post(settings::set_transport))
        .route("/settings/transport/test", post(settings::test_transport))
        .merge(ingest::pages::router())
        .merge(contacts::pages::router())
        .merge(events::pages::router())
        .merge(audiences::topics::pages::router())
        .merge(segments::pages::router())
        .merge(crate::delivery::broadcasts::pages::router())
        .merge(campaigns::pages::router())
        .merge(campaigns::hooks::pages::router())
        .merge(email::pages::router())
        .merge(outbound::pages::router())
        .merge(crate::templates::pages::router())
        .layer(middleware::from_fn(crate::web::security_headers))
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
        .layer(middleware::from_fn_with_state(state.web.clone(), crate::web::auth::require_api_key))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT));
    // Inbound webhooks: authenticated by the secret in the path, with their own body limit.
    let inbound = Router::new()
        .merge(ingest::receive::router())
        // Unsubscribe links: authenticated by the signed token in the path.
        .route("/unsubscribe/{token}", get(unsubscribe::show).post(unsubscribe::unsubscribe))
        // Email providers' notifications: the token in the path, then the provider's signature.
        .merge(email::providers::events::router())
        // Tracked opens and clicks: authenticated by the signed token in the path.
        .route("/t/o/{token}", get(tracking::open))
        .route("/t/c/{token}", get(tracking::click))
        .method_not_allowed_fallback(error::method_not_allowed);
    Router::new()
        .nest("/api/v1", v1)
        .merge(inbound)
        .merge(ops)
        .merge(pages())
        .fallback(error::not_found)
        .layer(middleware::from_fn(crate::app::telemetry::track_http))
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
