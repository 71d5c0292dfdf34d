//! Logging in with an admin API key, and out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use herald_domain::ApiToken;
use serde::Deserialize;

use super::session::{self, COOKIE, LIFETIME, LOGIN_COOKIE};
use super::{Form, UiError, render};
use crate::http::AppState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    error: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: Option<String>,
    #[serde(default)]
    key: String,
    next: Option<String>,
}

/// Only paths on this site, never `//host` or a full URL.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n,
        _ => "/events",
    }
}

const LOGIN_COOKIE_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

pub async fn show(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref()).to_owned();
    if let Some(value) = session::cookie(&headers, COOKIE)
        && let Ok(Some(_)) = session::verify(&state, value).await
    {
        return Redirect::to(&next).into_response();
    }
    let token = session::login_token();
    let cookie = session::set_cookie(&state, LOGIN_COOKIE, &token, LOGIN_COOKIE_AGE);
    (AppendHeaders([(header::SET_COOKIE, cookie)]), render(&LoginPage { csrf: token, next, error: None }))
        .into_response()
}

pub async fn submit(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else { return super::csrf_failure() };
    if !session::login_token_matches(&headers, form.csrf.as_deref()) {
        return super::csrf_failure();
    }
    let next = safe_next(form.next.as_deref()).to_owned();
    let csrf = form.csrf.clone().unwrap_or_default();
    let refuse = |error| {
        (StatusCode::UNAUTHORIZED, render(&LoginPage { csrf: csrf.clone(), next: next.clone(), error: Some(error) }))
            .into_response()
    };
    let key = form.key.trim();
    if key.is_empty() {
        return refuse("Enter an admin API key.");
    }
    let Ok(token) = ApiToken::parse_presented(key) else {
        return refuse("This is not an API key: keys start with hk_ (or are the server's HERALD_ADMIN_TOKEN).");
    };
    let principal = match state.store.authenticate(&token.hash()).await {
        Ok(Some(principal)) => principal,
        Ok(None) => return refuse("This API key is not valid, or has been revoked."),
        Err(e) => return UiError::from(e).into_response(),
    };
    let value = match session::issue(&state, principal.workspace_id, principal.api_key_id).await {
        Ok(value) => value,
        Err(e) => return UiError::from(e).into_response(),
    };
    tracing::info!(workspace = %principal.workspace_id, key = %principal.api_key_id, "web UI login");
    (
        AppendHeaders([
            (header::SET_COOKIE, session::set_cookie(&state, COOKIE, &value, LIFETIME)),
            (header::SET_COOKIE, session::set_cookie(&state, LOGIN_COOKIE, "", std::time::Duration::ZERO)),
        ]),
        Redirect::to(&next),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

pub async fn logout(State(state): State<AppState>, Form(_session, Empty {}): Form<Empty>) -> Response {
    (
        AppendHeaders([(header::SET_COOKIE, session::set_cookie(&state, COOKIE, "", std::time::Duration::ZERO))]),
        Redirect::to("/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/sources?x=1")), "/sources?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/events");
        assert_eq!(safe_next(Some("/\\evil.example")), "/events");
        assert_eq!(safe_next(Some("https://evil.example")), "/events");
        assert_eq!(safe_next(None), "/events");
    }
}
