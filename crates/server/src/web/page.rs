//! The web UI, served by the same binary at `/`: server-rendered HTML (askama templates in
//! `templates/`, compiled in), one CSS file and a little JavaScript (copy buttons,
//! confirmations, event-log polling), all embedded. Every page needs a session (see
//! [`session`]) and is scoped to its workspace; every form carries a CSRF token. Screens call
//! the same store methods and shared helpers as the admin API's handlers, never their own
//! copies of the rules.

use askama::Template;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};

use herald_domain::Timestamp;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::WebState;
use super::error::ApiError;
use super::session::Session;

/// The Content-Security-Policy of every page.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The policy of a page showing an email in `<iframe sandbox srcdoc>`: a srcdoc frame inherits
/// its parent's policy, and emails style themselves inline, so inline styles are allowed here
/// and nowhere else. Scripts stay our own (and the sandbox runs none in the frame); remote
/// images stay blocked, so opening a message fetches nothing a sender could count.
pub const EMAIL_PREVIEW_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Pages are never cached (some show secrets once), never framed, and run only our own
/// scripts and styles. A handler may set a stricter or page-specific policy itself.
pub async fn security_headers(request: Request, next: middleware::Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A failure shown as a page.
#[derive(Debug)]
pub struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<herald_store::StoreError> for UiError {
    fn from(e: herald_store::StoreError) -> Self {
        Self(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.0.status;
        let title = status.canonical_reason().unwrap_or("Error");
        let message = if status == StatusCode::NOT_FOUND {
            "There is nothing here: it may have been deleted, or belong to another workspace.".to_owned()
        } else {
            self.0.message
        };
        (status, render(&ErrorPage { status: status.as_u16(), title, message })).into_response()
    }
}

pub type UiResult = Result<Response, UiError>;

/// A template as an HTML response.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error; the server log has details").into_response()
        }
    }
}

/// What every page's frame needs: the navigation, the logout form's token, a notice.
#[derive(Debug)]
pub struct Layout {
    pub title: String,
    pub csrf: String,
    /// Who is logged in: an email, or `API key <name>`.
    pub who: String,
    pub nav: Vec<NavItem>,
    pub notice: Option<String>,
}

#[derive(Debug)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

const NAV: [(&str, &str); 13] = [
    ("/events", "Event log"),
    ("/sources", "Sources"),
    ("/contacts", "Contacts"),
    ("/segments", "Segments"),
    ("/topics", "Topics"),
    ("/campaigns", "Campaigns"),
    ("/broadcasts", "Broadcasts"),
    ("/templates", "Templates"),
    ("/messages", "Messages"),
    ("/deliveries", "Deliveries"),
    ("/domains", "Domains"),
    ("/deliverability", "Deliverability"),
    ("/settings", "Settings"),
];

impl Layout {
    pub fn new(session: &Session, section: &str, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            csrf: session.csrf.clone(),
            who: session.who.clone(),
            nav: NAV.iter().map(|&(href, label)| NavItem { href, label, current: href == section }).collect(),
            notice: None,
        }
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice;
        self
    }
}

/// `?notice=` after a redirect: a fixed message per code (nothing from the URL is shown).
#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

impl NoticeQuery {
    pub fn message(&self) -> Option<String> {
        let text = match self.notice.as_deref()? {
            "revoked" => "API key revoked. It no longer works, and sessions made with it have ended.",
            "verified" => "Checked the DNS records: see each record's status below.",
            "released" => "Verified: messages held for this domain are queued for delivery.",
            "transport" => "SMTP transport saved. Queued messages go through it from now on.",
            "active" => "Campaign active: its trigger now enrols contacts.",
            "paused" => "Campaign paused: nobody enters, and journeys hold at their next step.",
            "archived" => "Campaign archived: running journeys have exited.",
            "saved" => "Campaign saved. Journeys already running finish on the version they started on.",
            "mapping" => "Mapping saved: requests to this source are read with it from now on.",
            "message_resent" => "A copy of the message is queued: this is the copy; the original is unchanged.",
            "resent" => "Queued to be sent again: the new attempts appear below as they happen.",
            "unsubscribed" => "Unsubscribed: campaign email no longer reaches this address.",
            "contact_deleted" => "Contact deleted, with their events.",
            "action_queued" => "Action queued: its call runs in a moment, with retries like every call.",
            "drafts_sent" => "Sent: the calls are queued and their journeys go on when they finish.",
            "drafts_skipped" => "Skipped: the journeys go on without the calls.",
            "no_drafts" => "Those drafts were already sent or skipped.",
            "webhook_saved" => "Webhook saved.",
            "segment_saved" => "Segment saved: its members are being computed, then kept current.",
            "template_saved" => "Saved as a new version. Journeys already running send the version they entered with.",
            "suppression_removed" => "Removed from the suppression list: campaign email reaches the address again.",
            "webhook_deleted" => "Webhook deleted; its past calls stay in the delivery log.",
            "topic_created" => {
                "Topic added: campaign email steps can name it, and contacts see it on their preference page."
            }
            "topic_deleted" => "Topic deleted: it is no longer listed, and new campaign versions cannot name it.",
            "broadcast_saved" => "Broadcast saved as a draft: nothing is sent until you send it.",
            "broadcast_started" => "Broadcast started: its progress below follows as it goes out.",
            "broadcast_paused" => "Broadcast paused: nothing more goes out until you resume it.",
            "broadcast_resumed" => "Broadcast resumed where it stopped, within its rate.",
            "broadcast_cancelled" => "Broadcast cancelled: messages not yet sent are withdrawn.",
            "welcome" => "Your user is created and you are logged in with it; the first-run link's key is revoked.",
            _ => return None,
        };
        Some(text.to_owned())
    }
}

/// A redirect after a successful form, with a notice code.
pub fn see_other(path: &str, notice: &str) -> Response {
    Redirect::to(&format!("{path}?notice={notice}")).into_response()
}

#[derive(Debug, Default, Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

/// A form with nothing but its CSRF token (a button).
#[derive(Debug, Deserialize)]
pub struct Empty {}

/// A form posted by a logged-in person with this session's CSRF token; anything else is
/// refused before the handler runs (no session: to the login page; bad token: 403).
#[derive(Debug)]
pub struct Form<T>(pub Session, pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Form<T>
where
    WebState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let token: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        if !session.csrf_matches(token.csrf.as_deref()) {
            return Err(csrf_failure());
        }
        let value = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            UiError(ApiError::new(StatusCode::BAD_REQUEST, "bad_form", format!("the form could not be read: {e}")))
                .into_response()
        })?;
        Ok(Form(session, value))
    }
}

/// The answer to a form without a valid CSRF token.
pub fn csrf_failure() -> Response {
    UiError(ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "This form has expired or did not come from this site. Go back, reload the page and try again.",
    ))
    .into_response()
}

/// Field errors of a form, shown next to their fields.
#[derive(Debug, Default)]
pub struct FieldErrors {
    errors: Vec<(String, String)>,
    /// An error no field owns, shown above the form.
    pub general: Option<String>,
}

impl FieldErrors {
    /// Files an API error under its field (when it names one the form has) or as general.
    pub fn from_api(error: ApiError, fields: &[&str]) -> Self {
        let message = match &error.field {
            Some(field) => error.message.strip_prefix(&format!("{field}: ")).unwrap_or(&error.message).to_owned(),
            None => error.message.clone(),
        };
        let message = capitalize(&message);
        match error.field.as_deref().filter(|f| fields.contains(f)) {
            Some(field) => Self { errors: vec![(field.to_owned(), message)], general: None },
            None => Self { errors: Vec::new(), general: Some(message) },
        }
    }

    /// Several fields' errors at once (a form checked as a whole), each under its field.
    pub fn per_field(errors: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { errors: errors.into_iter().map(|(f, m)| (f, capitalize(&m))).collect(), general: None }
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty() && self.general.is_none()
    }
}

pub fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A time as people read it: `2026-01-31 12:00:00 UTC`.
pub fn when(t: Timestamp) -> String {
    let t = t.to_offset_date_time();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A count as people read it: `10,000`.
pub fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A message's subject as a link's text: a message whose subject failed to render has none.
pub fn subject_label(subject: &str) -> String {
    if subject.is_empty() { "(no subject)".to_owned() } else { subject.to_owned() }
}

/// JSON, indented.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The badge class of a message's or a call's status: done well, waiting, or failed.
pub fn status_badge(status: &str) -> &'static str {
    match status {
        "sent" | "succeeded" => "ok",
        "queued" | "pending" | "held" => "warn",
        "failed" | "exhausted" => "bad",
        _ => "",
    }
}

/// One choice of a filter's `<select>`.
#[derive(Debug)]
pub struct SelectOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl SelectOption {
    /// The options of a status filter.
    pub fn statuses(all: &[&'static str], selected: Option<&str>) -> Vec<Self> {
        all.iter()
            .map(|s| Self { value: (*s).to_owned(), label: (*s).to_owned(), selected: selected == Some(*s) })
            .collect()
    }

    /// The campaigns a list may be filtered by: the first 100.
    pub async fn campaigns(
        store: &herald_store::SharedStore,
        workspace: herald_domain::WorkspaceId,
        selected: Option<herald_domain::CampaignId>,
    ) -> Result<Vec<Self>, UiError> {
        let page = store.list_campaigns(workspace, herald_domain::PageRequest { after: None, limit: 100 }).await?;
        Ok(page
            .items
            .iter()
            .map(|c| Self { value: c.id.to_string(), label: c.name.clone(), selected: Some(c.id) == selected })
            .collect())
    }
}

/// A list's URL with its filters (blank ones left out) and, for the next page, a cursor.
pub fn list_url(path: &str, filters: &[(&str, Option<&str>)], cursor: Option<&str>) -> String {
    let mut pairs: Vec<(&str, &str)> =
        filters.iter().filter_map(|(k, v)| v.filter(|v| !v.trim().is_empty()).map(|v| (*k, v))).collect();
    if let Some(c) = cursor {
        pairs.push(("cursor", c));
    }
    if pairs.is_empty() {
        return path.to_owned();
    }
    format!("{path}?{}", serde_urlencoded::to_string(&pairs).unwrap_or_default())
}

/// A cursor from a query, or a 400 page.
pub fn cursor<T: std::str::FromStr>(raw: &Option<String>) -> Result<Option<T>, UiError> {
    non_blank(raw)
        .map(herald_domain::Cursor::decode::<T>)
        .transpose()
        .map_err(|_| UiError(ApiError::invalid("cursor", "is not a cursor")))
}

/// An id from a path, or a 404 page.
pub fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, UiError> {
    raw.parse().map_err(|_| UiError(ApiError::not_found("page")))
}

/// An optional form or query field: blank means absent.
pub fn non_blank(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The contact a filter box names: an id, or an email address looked up.
pub async fn contact_filter(
    store: &herald_store::SharedStore,
    workspace: herald_domain::WorkspaceId,
    raw: &str,
) -> Result<Option<herald_domain::ContactId>, String> {
    if let Ok(id) = raw.parse::<herald_domain::ContactId>() {
        return Ok(Some(id));
    }
    let email = herald_domain::EmailAddress::parse(raw)
        .map_err(|_| "Enter a contact id (ctc_…) or an email address.".to_owned())?;
    let filter = herald_store::ContactFilter { email: Some(email), ..herald_store::ContactFilter::default() };
    let page = store
        .list_contacts(workspace, &filter, herald_domain::PageRequest { after: None, limit: 1 })
        .await
        .map_err(|e| ApiError::from(e).message)?;
    match page.items.first() {
        Some(contact) => Ok(Some(contact.id)),
        None => Err(format!("No contact has the email {raw}.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_go_to_their_field_or_above_the_form() {
        let errors = FieldErrors::from_api(ApiError::invalid("name", "must not be empty"), &["name"]);
        assert_eq!(errors.get("name"), Some("Must not be empty"));
        assert!(errors.general.is_none());
        let errors = FieldErrors::from_api(ApiError::invalid("other", "bad"), &["name"]);
        assert_eq!(errors.get("name"), None);
        assert_eq!(errors.general.as_deref(), Some("Bad"));
    }

    #[test]
    fn list_urls_keep_their_filters_and_drop_blank_ones() {
        assert_eq!(list_url("/messages", &[("status", None), ("contact", Some(" "))], None), "/messages");
        assert_eq!(
            list_url("/messages", &[("status", Some("sent")), ("contact", Some("a@b.c"))], Some("abc")),
            "/messages?status=sent&contact=a%40b.c&cursor=abc"
        );
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        let grouped: Vec<String> = [0, 999, 1_000, 10_000, 1_234_567, u32::MAX].into_iter().map(thousands).collect();
        assert_eq!(grouped, ["0", "999", "1,000", "10,000", "1,234,567", "4,294,967,295"]);
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(when(Timestamp::from_unix_millis(1_767_225_600_000)), "2026-01-01 00:00:00 UTC");
    }
}
