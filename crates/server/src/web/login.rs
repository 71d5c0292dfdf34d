//! Logging in, with an email and a password or with an admin API key, and out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use herald_domain::{ApiToken, Password, WorkspaceName};
use serde::Deserialize;

use super::WebState;
use super::session::{self, COOKIE, LIFETIME, LOGIN_COOKIE};
use super::users;
use super::{Form, UiError, render};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    /// Whether to ask for the workspace: only when there is more than one (their names are
    /// not listed to people who have not logged in). Otherwise the field is hidden.
    ask_workspace: bool,
    workspace: String,
    email: String,
    password_error: Option<&'static str>,
    key_error: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: Option<String>,
    #[serde(default)]
    workspace: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
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

/// The one answer to a wrong email or password, whichever it was.
const WRONG_PASSWORD: &str = "Email or password is wrong.";

/// The answer once an account's tries are used up (see `throttle`).
const TOO_MANY_FAILURES: &str =
    "Too many wrong passwords for this email. Wait up to 15 minutes, then try again (or log in with an API key).";

/// Which way in a submitted form takes: the fields filled decide, not the button, since
/// pressing Enter in any field submits with the form's first button.
#[derive(Debug, PartialEq, Eq)]
enum Method {
    Password,
    Key,
    Neither,
}

fn method(form: &LoginForm) -> Method {
    if !form.email.trim().is_empty() || !form.password.is_empty() {
        Method::Password
    } else if !form.key.trim().is_empty() {
        Method::Key
    } else {
        Method::Neither
    }
}

/// The login page, with the workspace field shown only when there is a choice to make.
async fn page(
    state: &WebState,
    csrf: String,
    next: String,
    workspace: Option<&str>,
    email: String,
) -> Result<LoginPage, herald_store::StoreError> {
    let workspaces = state.store.list_workspaces().await?;
    let workspace = match workspace.map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => w.to_owned(),
        None => match workspaces.as_slice() {
            [only] => only.name.as_str().to_owned(),
            _ => WorkspaceName::DEFAULT.to_owned(),
        },
    };
    let ask_workspace = workspaces.len() > 1;
    Ok(LoginPage { csrf, next, ask_workspace, workspace, email, password_error: None, key_error: None })
}

pub async fn show(State(state): State<WebState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref()).to_owned();
    if let Some(value) = session::cookie(&headers, COOKIE)
        && let Ok(Some(_)) = session::verify(&state, value).await
    {
        return Redirect::to(&next).into_response();
    }
    let token = session::login_token();
    let cookie = session::set_cookie(&state, LOGIN_COOKIE, &token, LOGIN_COOKIE_AGE);
    match page(&state, token, next, None, String::new()).await {
        Ok(page) => (AppendHeaders([(header::SET_COOKIE, cookie)]), render(&page)).into_response(),
        Err(e) => UiError::from(e).into_response(),
    }
}

pub async fn submit(State(state): State<WebState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else { return super::csrf_failure() };
    if !session::login_token_matches(&headers, form.csrf.as_deref()) {
        return super::csrf_failure();
    }
    let next = safe_next(form.next.as_deref()).to_owned();
    let csrf = form.csrf.clone().unwrap_or_default();
    let refuse = async |password_error: Option<&'static str>, key_error: Option<&'static str>, email: &str| match page(
        &state,
        csrf.clone(),
        next.clone(),
        Some(&form.workspace),
        email.trim().to_owned(),
    )
    .await
    {
        Ok(page) => {
            (StatusCode::UNAUTHORIZED, render(&LoginPage { password_error, key_error, ..page })).into_response()
        }
        Err(e) => UiError::from(e).into_response(),
    };
    let issued = match method(&form) {
        Method::Neither => {
            return refuse(Some("Enter your email and password, or an admin API key below."), None, "").await;
        }
        Method::Password => {
            if form.email.trim().is_empty() || form.password.is_empty() {
                return refuse(Some("Enter both your email and your password."), None, &form.email).await;
            }
            let password = Password::presented(&form.password);
            let workspace = Some(form.workspace.trim()).filter(|w| !w.is_empty()).unwrap_or(WorkspaceName::DEFAULT);
            let now = state.clock.now();
            if let Err(wait) = state.login_throttle.check(workspace, &form.email, now) {
                let mut response = refuse(Some(TOO_MANY_FAILURES), None, &form.email).await;
                if response.status() == StatusCode::UNAUTHORIZED {
                    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                    response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
                }
                return response;
            }
            match users::authenticate(&state.store, workspace, &form.email, password).await {
                Ok(Some(user)) => {
                    tracing::info!(workspace = %user.workspace_id, user = %user.id, "web UI login");
                    state.login_throttle.succeeded(workspace, &form.email);
                    session::issue_for_user(&state, &user).await
                }
                Ok(None) => {
                    state.login_throttle.failed(workspace, &form.email, now);
                    return refuse(Some(WRONG_PASSWORD), None, &form.email).await;
                }
                Err(e) => return UiError::from(e).into_response(),
            }
        }
        Method::Key => {
            let Ok(token) = ApiToken::parse_presented(form.key.trim()) else {
                return refuse(
                    None,
                    Some("This is not an API key: keys start with hk_ (or are the server's HERALD_ADMIN_TOKEN)."),
                    "",
                )
                .await;
            };
            match state.store.authenticate(&token.hash()).await {
                Ok(Some(principal)) => {
                    tracing::info!(workspace = %principal.workspace_id, key = %principal.api_key_id, "web UI login");
                    session::issue_for_key(&state, principal.workspace_id, principal.api_key_id).await
                }
                Ok(None) => return refuse(None, Some("This API key is not valid, or has been revoked."), "").await,
                Err(e) => return UiError::from(e).into_response(),
            }
        }
    };
    let value = match issued {
        Ok(value) => value,
        Err(e) => return UiError::from(e).into_response(),
    };
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

pub async fn logout(State(state): State<WebState>, Form(_session, Empty {}): Form<Empty>) -> Response {
    (
        AppendHeaders([(header::SET_COOKIE, session::set_cookie(&state, COOKIE, "", std::time::Duration::ZERO))]),
        Redirect::to("/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{LoginForm, Method, method, safe_next};

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/sources?x=1")), "/sources?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/events");
        assert_eq!(safe_next(Some("/\\evil.example")), "/events");
        assert_eq!(safe_next(Some("https://evil.example")), "/events");
        assert_eq!(safe_next(None), "/events");
    }

    #[test]
    fn the_filled_fields_pick_the_way_in() {
        let form = |email: &str, password: &str, key: &str| LoginForm {
            csrf: None,
            workspace: "default".into(),
            email: email.into(),
            password: password.into(),
            key: key.into(),
            next: None,
        };
        assert_eq!(method(&form("ada@example.com", "pw", "")), Method::Password);
        assert_eq!(method(&form("", "pw", "hk_x")), Method::Password, "a password typed is never ignored");
        assert_eq!(method(&form("  ", "", "hk_x")), Method::Key);
        assert_eq!(method(&form("", "", " ")), Method::Neither);
    }
}
