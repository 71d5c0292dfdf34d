//! Web UI sessions: a signed cookie, so any node can check it without shared memory.
//!
//! The cookie is `v1.<workspace id>.<principal>.<expiry, unix seconds>.<MAC>`, where the
//! principal is the typed id of who logged in: an API key (`key_…`) or a user (`usr_…`). The
//! MAC is HMAC-SHA256 over everything before it under a key derived from the workspace's
//! secret (the one stored in the database for unsubscribe links, through `WorkspaceSecrets`, with
//! its own derivation label so the two uses never share a key). Every request also reads the
//! principal (one indexed read), so a change there ends its sessions on every node at once:
//! - an API key must still exist unrevoked in that workspace;
//! - a user must still exist, and a user's MAC also covers their current password hash (never
//!   shown in the cookie): setting a new password makes a new hash with a new salt, so every
//!   session made before no longer verifies.
//!
//! Logging out removes the cookie from the browser.
//!
//! CSRF: every form carries a token that is an HMAC of the session cookie (a synchronizer
//! token derived from the session, nothing stored); the login form, which has no session
//! yet, uses a random double-submit cookie.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_domain::{ApiKeyId, PasswordHash, Timestamp, UserAccount, UserAccountId, WorkspaceId};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use axum::extract::FromRef;

use super::WebState;

/// The session cookie's name.
pub const COOKIE: &str = "herald_session";
/// The login form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "herald_login";
/// How long a login lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

type HmacSha256 = Hmac<Sha256>;

/// Who a session acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    ApiKey(ApiKeyId),
    User(UserAccountId),
}

impl Principal {
    /// Reads the cookie's principal field by its id prefix.
    fn parse(field: &str) -> Option<Self> {
        if field.starts_with(UserAccountId::PREFIX) {
            field.parse().ok().map(Principal::User)
        } else {
            field.parse().ok().map(Principal::ApiKey)
        }
    }

    fn as_field(self) -> String {
        match self {
            Principal::ApiKey(id) => id.to_string(),
            Principal::User(id) => id.to_string(),
        }
    }
}

/// A logged-in person: the workspace every page is scoped to, and who logged in.
#[derive(Debug, Clone)]
pub struct Session {
    pub workspace_id: WorkspaceId,
    pub principal: Principal,
    /// Who is logged in, as the page header shows it: the user's email, or the key's name.
    pub who: String,
    /// The token every form of this session carries.
    pub csrf: String,
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

async fn session_key(state: &WebState, workspace: WorkspaceId) -> Result<[u8; 32], herald_store::StoreError> {
    let secret = state.secrets.get(workspace).await?;
    Ok(mac(&secret, &[b"herald-ui-session-v1"]))
}

fn csrf_for(key: &[u8; 32], cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(&mac(key, &[b"csrf.", cookie.as_bytes()])[..24])
}

/// What the MAC covers besides the cookie's text: nothing for an API key, the current
/// password hash for a user.
fn mac_input<'a>(payload: &'a str, password_hash: Option<&'a PasswordHash>) -> [&'a [u8]; 3] {
    match password_hash {
        Some(hash) => [payload.as_bytes(), b"\0password:", hash.as_str().as_bytes()],
        None => [payload.as_bytes(), b"", b""],
    }
}

async fn issue(
    state: &WebState,
    workspace: WorkspaceId,
    principal: Principal,
    password_hash: Option<&PasswordHash>,
) -> Result<String, herald_store::StoreError> {
    let expires = state.clock.now().unix_millis() / 1000 + LIFETIME.as_secs() as i64;
    let payload = format!("v1.{workspace}.{}.{expires}", principal.as_field());
    let signature = mac(&session_key(state, workspace).await?, &mac_input(&payload, password_hash));
    Ok(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// A session cookie value for an API key, valid for [`LIFETIME`] from now.
pub async fn issue_for_key(
    state: &WebState,
    workspace: WorkspaceId,
    key: ApiKeyId,
) -> Result<String, herald_store::StoreError> {
    issue(state, workspace, Principal::ApiKey(key), None).await
}

/// A session cookie value for a user, valid for [`LIFETIME`] from now or until their password
/// changes.
pub async fn issue_for_user(state: &WebState, user: &UserAccount) -> Result<String, herald_store::StoreError> {
    issue(state, user.workspace_id, Principal::User(user.id), Some(&user.password_hash)).await
}

/// The session a cookie value stands for, if it is genuine, unexpired and its principal still
/// valid (key unrevoked; user present, password unchanged).
pub async fn verify(state: &WebState, cookie: &str) -> Result<Option<Session>, herald_store::StoreError> {
    use herald_store::StoreError::NotFound;
    let Some((payload, signature)) = cookie.rsplit_once('.') else { return Ok(None) };
    let fields: Vec<&str> = payload.split('.').collect();
    let [version, workspace, principal, expires] = fields.as_slice() else { return Ok(None) };
    if *version != "v1" {
        return Ok(None);
    }
    let (Ok(workspace), Some(principal), Ok(expires)) =
        (workspace.parse::<WorkspaceId>(), Principal::parse(principal), expires.parse::<i64>())
    else {
        return Ok(None);
    };
    if Timestamp::from_unix_millis(expires.saturating_mul(1000)) <= state.clock.now() {
        return Ok(None);
    }
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else { return Ok(None) };
    // The principal is looked up before the workspace's secret is read: a forged workspace id
    // finds no key or user and never makes a secret.
    let (who, password_hash) = match principal {
        Principal::ApiKey(id) => match state.store.get_api_key(workspace, id).await {
            Ok(key) if key.revoked_at.is_none() => (format!("API key {}", key.name.as_str()), None),
            Ok(_) | Err(NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        },
        Principal::User(id) => match state.store.get_user(workspace, id).await {
            Ok(user) => (user.email.to_string(), Some(user.password_hash)),
            Err(NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        },
    };
    let session_key = session_key(state, workspace).await?;
    let expected = mac(&session_key, &mac_input(payload, password_hash.as_ref()));
    if !bool::from(expected.as_slice().ct_eq(&signature)) {
        return Ok(None);
    }
    Ok(Some(Session { workspace_id: workspace, principal, who, csrf: csrf_for(&session_key, cookie) }))
}

impl Session {
    /// The API key this session was made with, if it was made with one.
    pub fn api_key_id(&self) -> Option<ApiKeyId> {
        match self.principal {
            Principal::ApiKey(id) => Some(id),
            Principal::User(_) => None,
        }
    }

    /// Whether a form's token is this session's.
    pub fn csrf_matches(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.csrf.as_bytes())))
    }
}

/// The value of cookie `name` in the request's headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, and Secure when the public URL is https.
pub fn set_cookie(state: &WebState, name: &str, value: &str, max_age: Duration) -> String {
    let secure = if state.public_url.starts_with("https://") { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}", max_age.as_secs())
}

/// Where a request without a session goes: the login page, then back.
fn to_login(parts: &Parts) -> Response {
    let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    // Only GET pages are worth coming back to; a form post goes back to its page's list.
    let next = if parts.method == axum::http::Method::GET { next } else { "/" };
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    Redirect::to(&format!("/login?{query}")).into_response()
}

impl<S: Send + Sync> FromRequestParts<S> for Session
where
    WebState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = WebState::from_ref(state);
        if let Some(session) = parts.extensions.get::<Session>() {
            return Ok(session.clone());
        }
        let Some(value) = cookie(&parts.headers, COOKIE) else { return Err(to_login(parts)) };
        match verify(&state, value).await {
            Ok(Some(session)) => {
                parts.extensions.insert(session.clone());
                Ok(session)
            }
            Ok(None) => Err(to_login(parts)),
            Err(e) => Err(super::UiError::from(e).into_response()),
        }
    }
}

/// A random token for the login form's double-submit cookie.
pub fn login_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}

/// Whether the login form's token matches its cookie.
pub fn login_token_matches(headers: &HeaderMap, presented: Option<&str>) -> bool {
    match (cookie(headers, LOGIN_COOKIE), presented) {
        (Some(cookie), Some(presented)) if !cookie.is_empty() => {
            bool::from(cookie.as_bytes().ct_eq(presented.as_bytes()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; herald_session_x=2; herald_session=3"));
        assert_eq!(cookie(&headers, COOKIE), Some("3"));
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn principals_are_told_apart_by_their_id_prefix() {
        let key: ApiKeyId = "key_01930000000070008000000000000001".parse().expect("key id");
        let user: UserAccountId = "usr_01930000000070008000000000000001".parse().expect("user id");
        assert_eq!(Principal::parse(&key.to_string()), Some(Principal::ApiKey(key)));
        assert_eq!(Principal::parse(&user.to_string()), Some(Principal::User(user)));
        assert_eq!(Principal::parse("ws_01930000000070008000000000000001"), None);
        assert_eq!(Principal::parse(&Principal::User(user).as_field()), Some(Principal::User(user)));
    }

    #[test]
    fn a_user_mac_covers_the_password_hash() {
        let key = [7; 32];
        let one = PasswordHash::from_phc("$argon2id$one".to_owned());
        let two = PasswordHash::from_phc("$argon2id$two".to_owned());
        let payload = "v1.ws.usr.1";
        assert_ne!(mac(&key, &mac_input(payload, Some(&one))), mac(&key, &mac_input(payload, Some(&two))));
        assert_ne!(mac(&key, &mac_input(payload, Some(&one))), mac(&key, &mac_input(payload, None)));
    }

    #[test]
    fn login_tokens_must_match_a_non_empty_cookie() {
        let mut headers = HeaderMap::new();
        assert!(!login_token_matches(&headers, Some("x")));
        headers.insert(header::COOKIE, HeaderValue::from_static("herald_login=abc"));
        assert!(login_token_matches(&headers, Some("abc")));
        assert!(!login_token_matches(&headers, Some("abd")));
        assert!(!login_token_matches(&headers, None));
    }
}
