//! The public endpoints behind tracked links, authenticated by their signed token alone.
//! `GET /t/o/{token}` records an open and answers a 1×1 transparent GIF that no cache keeps;
//! `GET /t/c/{token}` records a click and redirects (302) to the URL the token signs. Each
//! hit is committed (group-committed with others arriving at once) before the answer; what it
//! causes is written by a job afterwards ([`super::hits`]).
//!
//! A token that is too long, malformed, or not signed by its workspace's secret gets a small
//! 404 page: a browser is what usually follows these. `HEAD` answers the same as `GET` and
//! records nothing: it fetches no image and follows no link, and link checkers send it. If the
//! store cannot record a click the browser is still sent on (the person matters more than the
//! count; the failure is logged); an open that cannot be recorded answers the error, and mail
//! proxies fetch the image again later.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_domain::ActivityKind;
use herald_store::StoreError;
use herald_store::hits::Hit;

use super::machine::is_machine;
use super::token::Claim;
use crate::delivery::email::EmailState;
use crate::web::error::ApiError;

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x01, 0x44, 0x00, 0x3b,
];

/// Neither a browser nor a proxy may keep the answer: every open and click must reach us.
const NO_CACHE: &str = "no-store, no-cache, must-revalidate, max-age=0";

fn not_found() -> Response {
    crate::delivery::email::unsubscribe_page::page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<p>This link is not valid. If you copied it, check that it is complete.</p>",
    )
}

/// The claim of a token, when its workspace's secret verifies it.
async fn verified(state: &EmailState, claim: Option<Claim>) -> Result<Option<Claim>, StoreError> {
    let Some(claim) = claim else { return Ok(None) };
    let secret = match state.email.secret(claim.workspace).await {
        Ok(secret) => secret,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(claim.verify(&secret).then_some(claim))
}

/// Stores an open or a click of the message `claim` names. Only opens are told apart by who
/// made them: link scanners that follow every link are rarer than image proxies, and a click
/// from an unknown agent is still most likely a person's. A hit of a message deleted since
/// (with its contact or campaign) is stored all the same and counts nothing later.
async fn record(state: &EmailState, claim: &Claim, kind: ActivityKind, headers: &HeaderMap) -> Result<(), StoreError> {
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let hit = Hit {
        workspace: claim.workspace,
        message: claim.message,
        kind,
        url: claim.url.clone(),
        machine: kind == ActivityKind::Opened && is_machine(agent),
        occurred_at: state.clock.now(),
    };
    state.email.track(hit).await
}

/// `GET /t/o/{token}`: the open pixel.
pub async fn open(
    State(state): State<EmailState>,
    method: Method,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let Some(claim) = verified(&state, Claim::open(&token)).await? else { return Ok(not_found()) };
    if method != Method::HEAD {
        record(&state, &claim, ActivityKind::Opened, &headers).await?;
    }
    let headers = [
        (header::CONTENT_TYPE, "image/gif"),
        (header::CACHE_CONTROL, NO_CACHE),
        (header::PRAGMA, "no-cache"),
        (header::EXPIRES, "0"),
    ];
    Ok((headers, PIXEL).into_response())
}

/// `GET /t/c/{token}`: the click redirect.
pub async fn click(
    State(state): State<EmailState>,
    method: Method,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let Some(claim) = verified(&state, Claim::click(&token)).await? else { return Ok(not_found()) };
    // Signed by us, so it was in the message; checked again so that no token, however made,
    // sends a browser to anything but a web page.
    let location = claim
        .url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .and_then(|u| HeaderValue::from_str(u.as_str()).ok());
    let Some(location) = location else { return Ok(not_found()) };
    if method != Method::HEAD
        && let Err(e) = record(&state, &claim, ActivityKind::Clicked, &headers).await
    {
        tracing::error!(message = %claim.message, error = %crate::web::error::error_chain(&e), "a click could not be recorded; redirected anyway");
    }
    let headers = [(header::LOCATION, location), (header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE))];
    Ok((StatusCode::FOUND, headers).into_response())
}
