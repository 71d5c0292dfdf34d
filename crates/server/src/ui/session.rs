//! Web UI sessions: a signed cookie, so any node can check it without shared memory.
//!
//! The cookie is `v1.<workspace id>.<API key id>.<expiry, unix seconds>.<MAC>`, the MAC being
//! HMAC-SHA256 over everything before it under a key derived from the workspace's secret
//! (the one stored in the database for unsubscribe links, through `Email::secret`, with its
//! own derivation label so the two uses never share a key). Every request also checks that
//! the API key it was made with still exists unrevoked in that workspace: revoking the key
//! ends its sessions on every node at once. Logging out removes the cookie from the browser.
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
use herald_domain::{ApiKeyId, Timestamp, WorkspaceId};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::http::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "herald_session";
/// The login form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "herald_login";
/// How long a login lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

type HmacSha256 = Hmac<Sha256>;

/// A logged-in person: the workspace every page is scoped to, and the key they logged in with.
#[derive(Debug, Clone)]
pub struct Session {
    pub workspace_id: WorkspaceId,
    pub api_key_id: ApiKeyId,
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

async fn session_key(state: &AppState, workspace: WorkspaceId) -> Result<[u8; 32], herald_store::StoreError> {
    let secret = state.email.secret(workspace).await?;
    Ok(mac(&secret, &[b"herald-ui-session-v1"]))
}

fn csrf_for(key: &[u8; 32], cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(&mac(key, &[b"csrf.", cookie.as_bytes()])[..24])
}

/// Makes a session cookie value for this principal, valid for [`LIFETIME`] from now.
pub async fn issue(
    state: &AppState,
    workspace: WorkspaceId,
    key: ApiKeyId,
) -> Result<String, herald_store::StoreError> {
    let expires = state.clock.now().unix_millis() / 1000 + LIFETIME.as_secs() as i64;
    let payload = format!("v1.{workspace}.{key}.{expires}");
    let signature = mac(&session_key(state, workspace).await?, &[payload.as_bytes()]);
    Ok(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The session a cookie value stands for, if it is genuine, unexpired and its key unrevoked.
pub async fn verify(state: &AppState, cookie: &str) -> Result<Option<Session>, herald_store::StoreError> {
    let Some((payload, signature)) = cookie.rsplit_once('.') else { return Ok(None) };
    let fields: Vec<&str> = payload.split('.').collect();
    let [version, workspace, key, expires] = fields.as_slice() else { return Ok(None) };
    if *version != "v1" {
        return Ok(None);
    }
    let (Ok(workspace), Ok(key), Ok(expires)) =
        (workspace.parse::<WorkspaceId>(), key.parse::<ApiKeyId>(), expires.parse::<i64>())
    else {
        return Ok(None);
    };
    if Timestamp::from_unix_millis(expires.saturating_mul(1000)) <= state.clock.now() {
        return Ok(None);
    }
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else { return Ok(None) };
    // The key is looked up before the workspace's secret is read: a forged workspace id finds
    // no key and never makes a secret.
    match state.store.get_api_key(workspace, key).await {
        Ok(k) if k.revoked_at.is_none() => {}
        Ok(_) | Err(herald_store::StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    }
    let session_key = session_key(state, workspace).await?;
    let expected = mac(&session_key, &[payload.as_bytes()]);
    if !bool::from(expected.as_slice().ct_eq(&signature)) {
        return Ok(None);
    }
    Ok(Some(Session { workspace_id: workspace, api_key_id: key, csrf: csrf_for(&session_key, cookie) }))
}

impl Session {
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
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Duration) -> String {
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

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(session) = parts.extensions.get::<Session>() {
            return Ok(session.clone());
        }
        let Some(value) = cookie(&parts.headers, COOKIE) else { return Err(to_login(parts)) };
        match verify(state, value).await {
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
    fn login_tokens_must_match_a_non_empty_cookie() {
        let mut headers = HeaderMap::new();
        assert!(!login_token_matches(&headers, Some("x")));
        headers.insert(header::COOKIE, HeaderValue::from_static("herald_login=abc"));
        assert!(login_token_matches(&headers, Some("abc")));
        assert!(!login_token_matches(&headers, Some("abd")));
        assert!(!login_token_matches(&headers, None));
    }
}
