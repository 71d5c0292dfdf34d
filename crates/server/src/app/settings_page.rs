//! Settings: API keys (created and shown once, revoked), the webhook signing key (rotated,
//! the new secret shown once), and the SMTP transport with a test send.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use herald_domain::{ApiKeyId, PageRequest};
use serde::Deserialize;

use crate::delivery::email::transport::{SecurityName, SmtpConfig};
use crate::delivery::email::{self, EmailState};
use crate::delivery::webhooks::{self, WebhooksState};
use crate::web::{
    Empty, FieldErrors, Form, Layout, NoticeQuery, Session, UiResult, WebState, api_keys, non_blank, parse_id, render,
    see_other, when,
};

/// What the settings page reaches: the web layer (API keys), email (the transport) and
/// outbound webhooks (the signing key).
#[derive(Clone, Debug)]
pub struct SettingsState {
    pub web: WebState,
    pub email: EmailState,
    pub webhooks: WebhooksState,
}

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub hint: String,
    pub created: String,
    pub revoked: Option<String>,
    pub current: bool,
}

pub struct SigningRow {
    pub id: String,
    pub created: String,
    pub retires: Option<String>,
}

/// The transport form's fields, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct TransportForm {
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    security: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct TestForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    from: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
}

/// A secret shown once.
pub struct Shown {
    pub title: &'static str,
    pub text: &'static str,
    pub value: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    l: Layout,
    shown: Option<Shown>,
    keys: Vec<KeyRow>,
    keys_next: Option<String>,
    key_form: KeyForm,
    key_errors: FieldErrors,
    signing: Vec<SigningRow>,
    transport_kind: &'static str,
    transport_source: &'static str,
    password_set: bool,
    transport: TransportForm,
    transport_errors: FieldErrors,
    test: TestForm,
    test_errors: FieldErrors,
    test_result: Option<(bool, String)>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SettingsQuery {
    keys_cursor: Option<String>,
    notice: Option<String>,
}

impl SettingsPage {
    async fn load(
        state: &SettingsState,
        session: &Session,
        keys_cursor: Option<&str>,
    ) -> Result<Self, crate::web::UiError> {
        let ws = session.workspace_id;
        let after = keys_cursor.and_then(|c| herald_domain::Cursor::decode::<ApiKeyId>(c).ok());
        let page = state.web.store.list_api_keys(ws, PageRequest { after, limit: 50 }).await?;
        let keys = page
            .items
            .iter()
            .map(|k| KeyRow {
                id: k.id.to_string(),
                name: k.name.as_str().to_owned(),
                hint: k.hint.clone(),
                created: when(k.created_at),
                revoked: k.revoked_at.map(when),
                current: session.api_key_id() == Some(k.id),
            })
            .collect();
        let signing = state
            .web
            .store
            .signing_keys(ws, state.web.clock.now())
            .await?
            .into_iter()
            .map(|k| SigningRow { id: k.id, created: when(k.created_at), retires: k.retires_at.map(when) })
            .collect();
        let described = email::service::transport(&state.email, ws).await?;
        let form = match &described.smtp {
            Some(smtp) if described.source == "workspace" => TransportForm {
                host: smtp.host.clone(),
                port: smtp.port.to_string(),
                security: serde_json::to_value(smtp.security)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                username: smtp.username.clone().unwrap_or_default(),
                password: String::new(),
            },
            _ => TransportForm { port: "587".into(), security: "starttls".into(), ..TransportForm::default() },
        };
        Ok(Self {
            l: Layout::new(session, "/settings", "Settings"),
            shown: None,
            keys,
            keys_next: page.next_cursor.map(|c| c.as_str().to_owned()),
            key_form: KeyForm::default(),
            key_errors: FieldErrors::default(),
            signing,
            transport_kind: described.kind,
            transport_source: described.source,
            password_set: described.password_set,
            transport: form,
            transport_errors: FieldErrors::default(),
            test: TestForm::default(),
            test_errors: FieldErrors::default(),
            test_result: None,
        })
    }
}

fn respond(page: &SettingsPage, failed: bool) -> UiResult {
    let status = if failed { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok((status, render(page)).into_response())
}

pub async fn show(State(state): State<SettingsState>, session: Session, Query(q): Query<SettingsQuery>) -> UiResult {
    let mut page = SettingsPage::load(&state, &session, non_blank(&q.keys_cursor)).await?;
    page.l.notice = NoticeQuery { notice: q.notice }.message();
    respond(&page, false)
}

pub async fn create_key(State(state): State<SettingsState>, Form(session, form): Form<KeyForm>) -> UiResult {
    let result = api_keys::create(&state.web, session.workspace_id, &form.name).await;
    let mut page = SettingsPage::load(&state, &session, None).await?;
    match result {
        Ok((_, token)) => {
            page.shown = Some(Shown {
                title: "New API key",
                text: "Copy it now: it is shown only this once (Herald keeps only a hash).",
                value: token.expose().to_owned(),
            });
            respond(&page, false)
        }
        Err(error) => {
            page.key_errors = FieldErrors::from_api(error, &["name"]);
            page.key_form = form;
            respond(&page, true)
        }
    }
}

pub async fn revoke_key(
    State(web): State<WebState>,
    Path(id): Path<String>,
    Form(session, Empty {}): Form<Empty>,
) -> UiResult {
    let id: ApiKeyId = parse_id(&id)?;
    api_keys::revoke(&web, session.workspace_id, id).await?;
    if session.api_key_id() == Some(id) {
        // This session's own key: the session has ended with it.
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(see_other("/settings", "revoked"))
}

pub async fn rotate_signing_key(State(state): State<SettingsState>, Form(session, Empty {}): Form<Empty>) -> UiResult {
    let key = webhooks::service::rotate_key(&state.webhooks, session.workspace_id, None).await?;
    let mut page = SettingsPage::load(&state, &session, None).await?;
    page.shown = Some(Shown {
        title: "New webhook signing secret",
        text: "Give it to the systems that verify Herald's webhook signatures. The previous key keeps signing for a while so they can switch; this secret is shown only now.",
        value: key.secret,
    });
    page.l.notice =
        Some(format!("Signing key {} made; the previous one retires {}.", key.id, when(key.previous_retires_at)));
    respond(&page, false)
}

pub async fn set_transport(State(state): State<SettingsState>, Form(session, form): Form<TransportForm>) -> UiResult {
    let fields = ["host", "port", "security", "username", "password"];
    let parsed = (|| {
        let port = if form.port.trim().is_empty() {
            587
        } else {
            form.port
                .trim()
                .parse::<u16>()
                .map_err(|_| crate::web::error::ApiError::invalid("port", "must be a number from 1 to 65535"))?
        };
        let security = serde_json::from_value::<SecurityName>(serde_json::Value::String(form.security.clone()))
            .map_err(|e| crate::web::error::ApiError::invalid("security", e))?;
        let mut smtp: SmtpConfig = serde_json::from_value(serde_json::json!({"host": form.host.trim()}))
            .map_err(|e| crate::web::error::ApiError::invalid("host", e))?;
        smtp.port = port;
        smtp.security = security;
        smtp.username = Some(form.username.trim().to_owned()).filter(|u| !u.is_empty());
        Ok::<_, crate::web::error::ApiError>(smtp)
    })();
    let result = match parsed {
        Ok(smtp) => {
            // A blank password keeps the stored one.
            let password = (!form.password.is_empty()).then(|| Some(form.password.clone()));
            email::service::set_transport(&state.email, session.workspace_id, smtp, password).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other("/settings", "transport")),
        Err(error) => {
            let mut page = SettingsPage::load(&state, &session, None).await?;
            page.transport_errors = FieldErrors::from_api(error, &fields);
            page.transport = TransportForm { password: String::new(), ..form };
            respond(&page, true)
        }
    }
}

pub async fn test_transport(State(state): State<SettingsState>, Form(session, form): Form<TestForm>) -> UiResult {
    let result = email::service::test_send(&state.email, session.workspace_id, form.to.trim(), form.from.trim()).await;
    let mut page = SettingsPage::load(&state, &session, None).await?;
    let failed = match result {
        Ok(r) => {
            let words = if r.accepted {
                format!("The relay accepted the message{}: {}", if r.signed { " (DKIM-signed)" } else { "" }, r.reply)
            } else {
                format!("The relay refused the message ({}): {}", r.failure.unwrap_or("failed"), r.reply)
            };
            page.test_result = Some((r.accepted, words));
            false
        }
        Err(error) => {
            page.test_errors = FieldErrors::from_api(error, &["to", "from"]);
            true
        }
    };
    page.test = form;
    respond(&page, failed)
}
