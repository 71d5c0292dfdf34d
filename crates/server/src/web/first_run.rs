//! The first run: a one-time link, printed by `herald serve` on a database nobody can log in
//! to yet, that opens the web UI signed in and offers to create the first user.
//!
//! The link carries 256 random bits; the database keeps only their SHA-256. Using the link
//! marks it used and makes the API key its session acts as, in one transaction, so it works
//! once even when opened twice at the same moment; a used, expired or unknown link gets a
//! page that says which and what to do. Creating the first user revokes that key (nobody
//! holds its token) and signs in as the user.

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_domain::{ApiKeyName, ApiToken, EmailAddress, Password, TokenHash, WorkspaceId};
use herald_store::user::LoginLinkUse;
use herald_store::{NewApiKey, SharedStore, StoreError};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::WebState;
use super::session::{self, COOKIE, LIFETIME};
use super::users;
use super::{FieldErrors, Form, Layout, Session, UiError, UiResult, render};
use crate::clock::SharedClock;

/// How long a printed link works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The name of the key a link's session acts as, as Settings → API keys lists it.
const KEY_NAME: &str = "first-run link";

fn token_hash(token: &str) -> TokenHash {
    TokenHash::from_bytes(Sha256::digest(token.as_bytes()).into())
}

/// Records a first-run link for `workspace` and returns its URL, unless someone can log in
/// already (an unrevoked API key or a user, in any workspace).
pub async fn link(
    store: &SharedStore,
    clock: &SharedClock,
    workspace: WorkspaceId,
    public_url: &str,
) -> Result<Option<String>, StoreError> {
    let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let now = clock.now();
    let recorded = store.create_first_run_link(workspace, &token_hash(&token), now + LINK_LIFETIME, now).await?;
    Ok(recorded.then(|| format!("{}/login/link/{token}", public_url.trim_end_matches('/'))))
}

#[derive(Template)]
#[template(path = "link_refused.html")]
struct RefusedPage {
    title: &'static str,
    message: &'static str,
}

/// Opening the link: signed in as a fresh key, on to the welcome page; or a page saying why not.
pub async fn redeem(State(state): State<WebState>, Path(token): Path<String>) -> Response {
    let key_token = ApiToken::generate(rand::random());
    let name = ApiKeyName::parse(KEY_NAME).expect("a valid key name");
    let key = NewApiKey { name, hash: key_token.hash(), hint: KEY_NAME.to_owned() };
    let (status, title, message) = match state
        .store
        .redeem_login_link(&token_hash(&token), key, state.clock.now())
        .await
    {
        Ok(LoginLinkUse::Redeemed(key)) => {
            tracing::info!(workspace = %key.workspace_id, key = %key.id, "first-run link used");
            return match session::issue_for_key(&state, key.workspace_id, key.id).await {
                Ok(value) => (
                    AppendHeaders([(header::SET_COOKIE, session::set_cookie(&state, COOKIE, &value, LIFETIME))]),
                    Redirect::to("/welcome"),
                )
                    .into_response(),
                Err(e) => UiError::from(e).into_response(),
            };
        }
        Ok(LoginLinkUse::Used) => (
            StatusCode::GONE,
            "This link has been used",
            "A first-run link works once, and this one already has. Log in with the user or API key made with it, or restart herald serve for a new link while nobody can log in.",
        ),
        Ok(LoginLinkUse::Expired) => (
            StatusCode::GONE,
            "This link has expired",
            "A first-run link works for 15 minutes after herald serve prints it. Restart herald serve for a new one, or make a user with herald user create.",
        ),
        Ok(LoginLinkUse::Unknown) => (
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "Check that the whole link was copied. Restart herald serve for a new one while nobody can log in, or make a user with herald user create.",
        ),
        Err(e) => return UiError::from(e).into_response(),
    };
    (status, render(&RefusedPage { title, message })).into_response()
}

#[derive(Template)]
#[template(path = "welcome.html")]
struct WelcomePage {
    l: Layout,
    email: String,
    errors: FieldErrors,
}

#[derive(Debug, Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
}

/// Whether the session's workspace still has no user: the offer stands only until then.
async fn nobody_yet(state: &WebState, session: &Session) -> Result<bool, StoreError> {
    Ok(state.store.list_users(session.workspace_id).await?.is_empty())
}

pub async fn show(State(state): State<WebState>, session: Session) -> UiResult {
    if !nobody_yet(&state, &session).await? {
        return Ok(Redirect::to("/events").into_response());
    }
    let l = Layout::new(&session, "", "Welcome");
    Ok(render(&WelcomePage { l, email: String::new(), errors: FieldErrors::default() }))
}

/// Creates the first user, revokes the link's key, and signs in as the user.
pub async fn create(State(state): State<WebState>, Form(session, form): Form<UserForm>) -> UiResult {
    if !nobody_yet(&state, &session).await? {
        return Ok(Redirect::to("/events").into_response());
    }
    let refuse = |field: &str, message: String| {
        let l = Layout::new(&session, "", "Welcome");
        let errors = FieldErrors::per_field([(field.to_owned(), message)]);
        (StatusCode::UNPROCESSABLE_ENTITY, render(&WelcomePage { l, email: form.email.trim().to_owned(), errors }))
            .into_response()
    };
    let email = match EmailAddress::parse(&form.email) {
        Ok(email) => email,
        Err(e) => return Ok(refuse("email", format!("the email {e}"))),
    };
    let password = match Password::parse_new(&form.password) {
        Ok(password) => password,
        Err(e) => return Ok(refuse("password", format!("the password {e}"))),
    };
    if form.password != form.repeat {
        return Ok(refuse("repeat", "the two passwords differ".to_owned()));
    }
    let hash = users::hash(password).await;
    let now = state.clock.now();
    let user = match state.store.create_user(session.workspace_id, &email, &hash, now).await {
        Ok(user) => user,
        Err(StoreError::Conflict { .. }) => return Ok(refuse("email", "a user with this email exists".to_owned())),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(workspace = %user.workspace_id, user = %user.id, "first user created in the web UI");
    if let Some(key) = session.api_key_id() {
        let key = state.store.get_api_key(session.workspace_id, key).await?;
        if key.name.as_str() == KEY_NAME {
            state.store.revoke_api_key(session.workspace_id, key.id, now).await?;
        }
    }
    let value = session::issue_for_user(&state, &user).await?;
    Ok((
        AppendHeaders([(header::SET_COOKIE, session::set_cookie(&state, COOKIE, &value, LIFETIME))]),
        Redirect::to("/settings?notice=welcome"),
    )
        .into_response())
}
