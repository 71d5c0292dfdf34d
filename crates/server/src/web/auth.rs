//! Bearer authentication for `/api/v1/*`: a middleware on the whole API router (so no route
//! can forget it) resolves the key to its workspace and hands handlers a `Principal`.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_domain::ApiToken;
use herald_store::Principal;

use super::WebState;
use super::error::ApiError;

/// Rejects requests without a valid, unrevoked API key; stores the principal for handlers.
pub async fn require_api_key(State(state): State<WebState>, mut request: Request, next: Next) -> Response {
    let Some(header) = request.headers().get(AUTHORIZATION) else {
        return ApiError::unauthorized("missing `Authorization: Bearer <API key>` header").into_response();
    };
    let presented = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .and_then(|token| ApiToken::parse_presented(token).ok());
    let Some(token) = presented else {
        return ApiError::unauthorized("the Authorization header must be `Bearer <API key>`").into_response();
    };
    match state.store.authenticate(&token.hash()).await {
        Ok(Some(principal)) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Ok(None) => ApiError::unauthorized("invalid or revoked API key").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The authenticated caller, available to every handler behind `require_api_key`.
#[derive(Debug, Clone, Copy)]
pub struct Auth(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .copied()
            .map(Auth)
            .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <API key>` header"))
    }
}
