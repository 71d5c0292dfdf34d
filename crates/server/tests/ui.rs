//! The web UI. A real Chromium (Debian's `chromium`, driven through `chromedriver` by
//! fantoccini) walks the main flow on both backends; plain HTTP checks that every form
//! refuses a missing or wrong CSRF token and that pages need a session.
//!
//! `cargo xtask test` installs the browser and sets `HERALD_TEST_CHROMEDRIVER`. With
//! `HERALD_SCREENSHOTS=1` the SQLite run saves screenshots of the main pages to
//! `docs/screenshots/`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::browser::{browser, click, fill, path, screenshot, select, start_driver, text};
use common::{ADMIN_TOKEN, Backend, TestApp, json, spawn_app};
use fantoccini::{Client, Locator};
use herald_domain::{EmailAddress, PageRequest, Password, UserAccount, WorkspaceName};
use herald_server::clock::{Clock, SharedClock};
use herald_server::web::first_run;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

// ---------------------------------------------------------------- the flow

async fn browser_walks_the_main_flow(backend: Backend) {
    let shots = backend == Backend::Sqlite && std::env::var("HERALD_SCREENSHOTS").is_ok_and(|v| v == "1");
    let app = spawn_app(backend).await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let result = tokio::time::timeout(Duration::from_secs(120), walk(&app, &client, shots)).await;
    client.close().await.expect("close the browser");
    result.expect("the flow took over 2 minutes");
    app.stop().await;
}

/// A user made as `herald user create` makes one.
async fn create_user(app: &TestApp, email: &str, password: &str) -> UserAccount {
    let workspace = app
        .store
        .workspace_by_name(&WorkspaceName::parse("default").expect("name"))
        .await
        .expect("read")
        .expect("default workspace");
    let hash = herald_server::web::users::hash(Password::parse_new(password).expect("password")).await;
    let email = EmailAddress::parse(email).expect("email");
    app.store.create_user(workspace.id, &email, &hash, app.clock.now()).await.expect("create user")
}

async fn browser_logs_in_with_email_and_password(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(&app, "ada@example.com", "correct horse battery").await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let result = tokio::time::timeout(Duration::from_secs(60), async {
        client.goto(&app.url("/events")).await.expect("goto");
        assert_eq!(path(&client).await, "/login");
        fill(&client, "#email", "ada@example.com").await;
        fill(&client, "#password", "wrong horse battery").await;
        click(&client, "#with-password button[type=submit]").await;
        assert_eq!(text(&client, "#password-error").await, "Email or password is wrong.");
        // Enter in the password field submits the form, as people do.
        fill(&client, "#password", "correct horse battery\u{E007}").await;
        text(&client, "#events").await;
        assert_eq!(path(&client).await, "/events");
        assert_eq!(text(&client, "#who").await, "ada@example.com");
        click(&client, "form.logout button").await;
        text(&client, "#email").await;
        client.goto(&app.url("/events")).await.expect("goto");
        assert_eq!(path(&client).await, "/login");
    })
    .await;
    client.close().await.expect("close the browser");
    result.expect("logging in took over a minute");
    app.stop().await;
}

async fn walk(app: &TestApp, client: &Client, shots: bool) {
    // Pages need a login; the login page brings you back.
    client.goto(&app.url("/sources")).await.expect("goto");
    assert_eq!(path(client).await, "/login");
    screenshot(client, shots, "login").await;
    fill(client, "#key", "hk_not-a-real-key-000000000000").await;
    click(client, "form button[type=submit]").await;
    assert!(text(client, ".field-error").await.contains("not valid"));
    fill(client, "#key", ADMIN_TOKEN).await;
    click(client, "form button[type=submit]").await;
    text(client, "#new-source").await;
    assert_eq!(path(client).await, "/sources");
    assert!(text(client, "main").await.contains("No sources yet"));

    // A field error shows next to its field.
    fill(client, "#source-name", "   ").await;
    click(client, "#new-source button[type=submit]").await;
    assert!(!text(client, "#new-source .field-error").await.is_empty());

    // Create a source: its URL and snippets are shown once.
    fill(client, "#source-name", "Website signups").await;
    click(client, "#new-source button[type=submit]").await;
    let url = text(client, "#source-url").await;
    assert!(url.starts_with(&app.url("/webhooks/inbound/")), "{url}");
    assert!(text(client, "#snippet-curl").await.contains(&url));
    assert!(text(client, "#snippet-python").await.contains(&url));
    screenshot(client, shots, "source-created").await;

    // A campaign built in the editor: a wait and an email, with a preview and a field error.
    client.goto(&app.url("/campaigns")).await.expect("goto");
    click(client, "#new-campaign").await;
    fill(client, "[name='name']", "Onboarding").await;
    click(client, "button[value='add:steps']").await;
    fill(client, "[name='steps[0].duration']", "1h").await;
    select(client, "[name='kind:steps']", "email").await;
    click(client, "button[value='add:steps']").await;
    fill(client, "[name='steps[1].from']", "Acme <hello@acme.test>").await;
    fill(client, "[name='steps[1].subject']", "Welcome, {{ first_name }}").await;
    fill(client, "[name='steps[1].html']", "<p>Hi {{ first_name }}, you are on {{ customer.plan }}.</p>").await;
    assert_eq!(
        client
            .find(Locator::Css("[name='steps[0].duration']"))
            .await
            .expect("kept")
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some("1h"),
        "typed values survive each round trip"
    );
    click(client, "button[value='preview:steps[1]']").await;
    assert_eq!(text(client, "#preview-subject").await, "Welcome, Jane", "the example contact");
    client.find(Locator::Css("#preview iframe")).await.expect("the rendered HTML in a sandboxed frame");
    if shots {
        client.execute("document.getElementById('preview').scrollIntoView()", vec![]).await.expect("scroll");
        screenshot(client, shots, "campaign-editor-steps").await;
    }
    click(client, "#save").await;
    let error = text(client, "#trigger .field-error").await;
    assert!(error.contains("Must not be empty"), "the blank event name is named next to its field: {error}");
    fill(client, "[name='trigger.event']", "user_signed_up").await;
    screenshot(client, shots, "campaign-editor").await;
    click(client, "#save").await;
    assert!(text(client, ".notice").await.contains("Campaign saved"));
    let campaign = path(client).await.trim_start_matches("/campaigns/").to_owned();
    assert!(campaign.starts_with("cmp_"), "{campaign}");
    click(client, "#edit-campaign").await;
    let subject = client.find(Locator::Css("[name='steps[1].subject']")).await.expect("subject");
    assert_eq!(subject.prop("value").await.expect("value").as_deref(), Some("Welcome, {{ first_name }}"));

    // Activated in the list.
    client.goto(&app.url("/campaigns")).await.expect("goto");
    assert!(text(client, "#campaigns").await.contains("draft"));
    click(client, "#campaigns button[value=activate]").await;
    assert!(text(client, ".notice").await.contains("Campaign active"));
    assert!(text(client, "#campaigns").await.contains("active"));

    // An event sent to the URL (reqwest standing in for curl) shows in the event log.
    let sent = app
        .client
        .post(&url)
        .json(&json!({"email": "ada@example.com", "event": "user_signed_up", "data": {"first_name": "Ada", "plan": "pro"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(sent.status(), StatusCode::OK);
    app.run_jobs().await;
    client.goto(&app.url("/events")).await.expect("goto");
    assert!(text(client, "#events").await.contains("user_signed_up"));
    screenshot(client, shots, "events").await;
    click(client, "#events tbody a[href^='/events/']").await;
    let raw = text(client, "#raw-payload").await;
    assert!(raw.contains("\"email\": \"ada@example.com\""), "pretty-printed: {raw}");
    let outcome = text(client, "#outcome").await;
    assert!(outcome.contains("Contact created."), "{outcome}");
    assert!(outcome.contains("Campaign 'Onboarding' started"), "{outcome}");
    screenshot(client, shots, "event").await;

    // Filters: by name (nothing for another name), by contact email.
    client.goto(&app.url("/events?name=order_placed")).await.expect("goto");
    assert!(text(client, "#events").await.contains("No events match"));
    client.goto(&app.url("/events?contact=ada%40example.com")).await.expect("goto");
    assert!(text(client, "#events").await.contains("user_signed_up"));

    // The contact, found by search.
    client.goto(&app.url("/contacts")).await.expect("goto");
    fill(client, "#q", "plan=pro").await;
    click(client, "form.filters button[type=submit]").await;
    assert!(text(client, "#contacts").await.contains("ada@example.com"));
    click(client, "#contacts tbody a").await;
    assert!(text(client, "#attributes").await.contains("\"plan\": \"pro\""));
    assert!(text(client, "main").await.contains("user_signed_up"));
    let timeline = text(client, "#timeline").await;
    assert!(timeline.contains("Entered Onboarding") && timeline.contains("active"), "the journey: {timeline}");
    screenshot(client, shots, "contact").await;

    // An hour later the email step has run: the message is on the campaign's page.
    app.clock.advance(Duration::from_secs(3601));
    app.run_jobs().await;
    client.goto(&app.url(&format!("/campaigns/{campaign}"))).await.expect("goto");
    assert!(text(client, "#messages").await.contains("Welcome, Ada"));
    screenshot(client, shots, "campaign").await;
    click(client, "#messages a").await;
    assert!(text(client, "#message-text").await.contains("Hi Ada, you are on pro."));
    client.goto(&app.url("/campaigns")).await.expect("goto");
    screenshot(client, shots, "campaigns").await;

    // A domain and the records to publish.
    client.goto(&app.url("/domains")).await.expect("goto");
    assert!(text(client, "main").await.contains("No sending domains yet"));
    fill(client, "#domain-name", "mail.acme.test").await;
    click(client, "#new-domain button[type=submit]").await;
    let records = text(client, "#dns-records").await;
    assert!(records.contains("._domainkey.mail.acme.test"), "{records}");
    assert_eq!(text(client, "#domain-status").await, "pending");
    screenshot(client, shots, "domain").await;

    // An API key, shown once.
    client.goto(&app.url("/settings")).await.expect("goto");
    fill(client, "#key-name", "zapier").await;
    click(client, "#api-keys button[type=submit]").await;
    let token = text(client, "#secret-value").await;
    assert!(token.starts_with("hk_"), "{token}");
    screenshot(client, shots, "settings").await;
    let works = app.client.get(app.url("/api/v1/workspace")).bearer_auth(&token).send().await.expect("get");
    assert_eq!(works.status(), StatusCode::OK);
    client.goto(&app.url("/settings")).await.expect("goto");
    assert!(text(client, "#keys").await.contains("zapier"));
    assert!(!text(client, "main").await.contains(&token), "the token is shown only once");

    // Narrow screens: the event log at 390 px.
    if shots {
        client.set_window_size(390, 844).await.expect("resize");
        client.goto(&app.url("/events")).await.expect("goto");
        text(client, "#events").await;
        screenshot(client, shots, "events-390").await;
        client.set_window_size(1280, 900).await.expect("resize");
    }

    // Logging out ends the session.
    client.goto(&app.url("/events")).await.expect("goto");
    click(client, "form.logout button").await;
    text(client, "#key").await;
    client.goto(&app.url("/events")).await.expect("goto");
    assert_eq!(path(client).await, "/login");
}

// ---------------------------------------------------------------- plain HTTP

/// A urlencoded form body, as a browser posts it.
trait FormBody {
    fn form_body(self, fields: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, fields: &[(&str, &str)]) -> Self {
        self.header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).expect("form"))
    }
}

/// The `name="csrf" value="..."` of a page.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().expect("value").to_owned()
}

fn set_cookie<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// Logs in over plain HTTP; returns the session cookie (`herald_session=...`).
async fn log_in(app: &TestApp, key: &str) -> reqwest::Response {
    let page = app.client.get(app.url("/login")).send().await.expect("login page");
    let login_cookie =
        set_cookie(&page, "herald_login").expect("login cookie").split(';').next().expect("pair").to_owned();
    let token = csrf_of(&page.text().await.expect("html"));
    app.client
        .post(app.url("/login"))
        .header(COOKIE, login_cookie)
        .form_body(&[("csrf", token.as_str()), ("key", key), ("next", "/sources")])
        .send()
        .await
        .expect("login")
}

const FORMS: [&str; 14] = [
    "/logout",
    "/campaigns/new",
    "/campaigns/cmp_x/edit",
    "/sources",
    "/sources/src_x/rotate",
    "/sources/src_x/mapping",
    "/domains",
    "/domains/dom_x/verify",
    "/settings/api-keys",
    "/settings/api-keys/key_x/revoke",
    "/settings/signing-key",
    "/settings/transport",
    "/settings/transport/test",
    "/campaigns/cmp_x/state",
];

const PAGES: [&str; 13] = [
    "/events",
    "/campaigns/new",
    "/campaigns/cmp_x/edit",
    "/events/evt_x",
    "/sources",
    "/sources/src_x",
    "/contacts",
    "/campaigns",
    "/domains",
    "/topics",
    "/settings",
    "/messages/msg_x",
    "/sources/src_x/rotate",
];

async fn pages_and_forms_need_a_session_and_a_csrf_token(backend: Backend) {
    let app = spawn_app(backend).await;

    // Without a session: pages and forms go to the login page.
    for page in PAGES {
        let response = app.client.get(app.url(page)).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        let location = response.headers()[LOCATION].to_str().expect("location");
        assert!(location.starts_with("/login?next="), "{page}: {location}");
    }
    for form in FORMS {
        let response = app.client.post(app.url(form)).form_body(&[("csrf", "x")]).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{form}");
        assert!(response.headers()[LOCATION].to_str().expect("location").starts_with("/login"), "{form}");
    }

    // The login form itself: without its double-submit cookie, or with another token, 403.
    let refused = app
        .client
        .post(app.url("/login"))
        .form_body(&[("csrf", "x"), ("key", ADMIN_TOKEN)])
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = app
        .client
        .post(app.url("/login"))
        .header(COOKIE, "herald_login=abc")
        .form_body(&[("csrf", "abd"), ("key", ADMIN_TOKEN)])
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let wrong = log_in(&app, "hk_wrong-key-000000000000000").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "herald_session").is_none());

    // Logging in sets an HttpOnly, SameSite=Lax cookie (not Secure: this is plain http).
    let response = log_in(&app, ADMIN_TOKEN).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/sources");
    let header = set_cookie(&response, "herald_session").expect("session cookie").to_owned();
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax") && !header.contains("Secure"), "{header}");
    let session = header.split(';').next().expect("pair").to_owned();

    let page = app.client.get(app.url("/sources")).header(COOKIE, &session).send().await.expect("get");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-security-policy"].to_str().expect("csp").contains("script-src 'self'"));
    assert_eq!(page.headers()["cache-control"], "no-store");
    let token = csrf_of(&page.text().await.expect("html"));

    // Every form refuses a missing or wrong token, before doing anything.
    for form in FORMS {
        for fields in [vec![("name", "x")], vec![("csrf", "wrong"), ("name", "x")], vec![("csrf", ""), ("name", "x")]] {
            let response =
                app.client.post(app.url(form)).header(COOKIE, &session).form_body(&fields).send().await.expect("post");
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{form} with {fields:?}");
        }
    }
    let (_, sources) = json(app.get("/api/v1/sources").await).await;
    assert_eq!(sources["data"], json!([]), "no refused form created anything");

    // With the token, the form works.
    let created = app
        .client
        .post(app.url("/sources"))
        .header(COOKIE, &session)
        .form_body(&[("csrf", token.as_str()), ("name", "Shop"), ("kind", "posthog")])
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), StatusCode::OK);
    assert!(created.text().await.expect("html").contains("/webhooks/inbound/whk_"));

    // A tampered cookie is no session.
    let tampered = format!("{}x", session);
    let response = app.client.get(app.url("/events")).header(COOKIE, tampered).send().await.expect("get");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // A session made with a key ends when the key is revoked.
    let (_, key) = json(app.post("/api/v1/api-keys", &json!({"name": "temp"})).await).await;
    let temp = log_in(&app, key["token"].as_str().expect("token")).await;
    let temp = set_cookie(&temp, "herald_session").expect("cookie").split(';').next().expect("pair").to_owned();
    let ok = app.client.get(app.url("/events")).header(COOKIE, &temp).send().await.expect("get");
    assert_eq!(ok.status(), StatusCode::OK);
    app.delete(&format!("/api/v1/api-keys/{}", key["id"].as_str().expect("id"))).await;
    let ended = app.client.get(app.url("/events")).header(COOKIE, &temp).send().await.expect("get");
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);

    // Sessions expire after 12 hours.
    app.clock.advance(Duration::from_secs(12 * 3600 + 1));
    let expired = app.client.get(app.url("/events")).header(COOKIE, &session).send().await.expect("get");
    assert_eq!(expired.status(), StatusCode::SEE_OTHER);

    app.stop().await;
}

/// A logged-in session over plain HTTP: (cookie, CSRF token).
async fn session(app: &TestApp) -> (String, String) {
    let response = log_in(app, ADMIN_TOKEN).await;
    let cookie = set_cookie(&response, "herald_session").expect("session").split(';').next().expect("pair").to_owned();
    let page = app.client.get(app.url("/campaigns/new")).header(COOKIE, &cookie).send().await.expect("get");
    let token = csrf_of(&page.text().await.expect("html"));
    (cookie, token)
}

async fn post_form(app: &TestApp, cookie: &str, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    app.client.post(app.url(path)).header(COOKIE, cookie).form_body(fields).send().await.expect("post")
}

async fn the_campaign_editor_saves_what_the_form_describes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (cookie, token) = session(&app).await;
    let mut fields = vec![
        ("csrf", token.as_str()),
        ("name", "Cart recovery"),
        ("trigger.type", "event"),
        ("trigger.event", "checkout_started"),
        ("trigger.filter.match", "all"),
        ("trigger.filter.rules[0].field", "event.data.cart_value"),
        ("trigger.filter.rules[0].op", "gt"),
        ("trigger.filter.rules[0].value", "50"),
        ("entry", "once_at_a_time"),
        ("goal.event", "checkout_completed"),
        ("goal.within", "3d"),
        ("goal.exit", "on"),
        ("steps[0].type", "wait"),
        ("steps[0].duration", "2d"),
        ("steps[1].type", "branch"),
        ("steps[1].condition.match", "any"),
        ("steps[1].condition.rules[0].field", "contact.plan"),
        ("steps[1].condition.rules[0].op", "in"),
        ("steps[1].condition.rules[0].value", "free, trial"),
        ("steps[1].then[0].type", "webhook"),
        ("steps[1].then[0].method", "POST"),
        ("steps[1].then[0].url", "https://crm.example.com/leads"),
        ("steps[1].then[0].basic_auth.username", "herald"),
        ("steps[1].then[0].basic_auth.password", "s3cret-password"),
        ("steps[1].then[0].content_type", "application/json"),
        ("steps[1].then[0].body", "{{ customer | json }}"),
        ("steps[1].then[0].set_attributes", "lead_id = {{ response.id }}"),
        ("steps[1].else[0].type", "exit"),
    ];

    // Adding a step shows the form again with everything typed kept and the new step last.
    let mut adding = fields.clone();
    adding.extend([("kind:steps", "email"), ("op", "add:steps")]);
    let page = post_form(&app, &cookie, "/campaigns/new", &adding).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("name=\"steps[2].subject\""), "the new email step");
    assert!(html.contains("value=\"checkout_started\""), "typed values kept");
    assert!(!html.contains("s3cret-password"), "passwords are never shown");

    // A bad duration is refused next to its field, and nothing is stored.
    let mut bad = fields.clone();
    bad[13] = ("steps[0].duration", "2x");
    bad.push(("op", "save"));
    let refused = post_form(&app, &cookie, "/campaigns/new", &bad).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("html");
    let at = html.find("name=\"steps[0].duration\"").expect("the field");
    assert!(html[at..].split("</div>").next().expect("field").contains("field-error"), "error next to the field");
    let (_, list) = json(app.get("/api/v1/campaigns").await).await;
    assert_eq!(list["data"], json!([]));

    // Saved: the document is what the form described.
    fields.push(("op", "save"));
    let saved = post_form(&app, &cookie, "/campaigns/new", &fields).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let location = saved.headers()[LOCATION].to_str().expect("location").to_owned();
    let id = location.trim_start_matches("/campaigns/").split('?').next().expect("id").to_owned();
    let (_, campaign) = json(app.get(&format!("/api/v1/campaigns/{id}")).await).await;
    let doc = &campaign["document"];
    assert_eq!(doc["trigger"]["filter"], json!({"all": [{"field": "event.data.cart_value", "op": "gt", "value": 50}]}));
    assert_eq!(doc["entry"], "once_at_a_time");
    assert_eq!(doc["goal"], json!({"event": "checkout_completed", "within": "3d", "exit": true}));
    assert_eq!(doc["steps"][0]["duration"], "2d");
    assert_eq!(
        doc["steps"][1]["condition"],
        json!({"any": [{"field": "contact.plan", "op": "in", "value": ["free", "trial"]}]})
    );
    let hook = &doc["steps"][1]["then"][0];
    assert_eq!(hook["set_attributes"], json!({"lead_id": "{{ response.id }}"}));
    assert_eq!(doc["steps"][1]["else"][0]["type"], "exit");

    // Edited: the form shows the stored document; a blank password keeps the stored one.
    let edit =
        app.client.get(app.url(&format!("/campaigns/{id}/edit"))).header(COOKIE, &cookie).send().await.expect("get");
    let html = edit.text().await.expect("html");
    assert!(html.contains("value=\"free, trial\""));
    assert!(!html.contains("s3cret-password"), "the stored password is not in the page");
    let ids: Vec<String> = [&doc["steps"][0], &doc["steps"][1], hook, &doc["steps"][1]["else"][0]]
        .iter()
        .map(|s| s["id"].as_str().expect("step id").to_owned())
        .collect();
    let mut again = fields.clone();
    again[1] = ("name", "Cart recovery v2");
    again[23] = ("steps[1].then[0].basic_auth.password", "");
    again.extend([
        ("steps[0].id", ids[0].as_str()),
        ("steps[1].id", ids[1].as_str()),
        ("steps[1].then[0].id", ids[2].as_str()),
        ("steps[1].else[0].id", ids[3].as_str()),
    ]);
    let saved = post_form(&app, &cookie, &format!("/campaigns/{id}/edit"), &again).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, campaign) = json(app.get(&format!("/api/v1/campaigns/{id}")).await).await;
    assert_eq!(campaign["name"], "Cart recovery v2");
    assert_eq!(campaign["version"], 2);
    assert_eq!(campaign["document"]["steps"][1]["then"][0]["basic_auth"]["password"], "***", "never returned");
    let workspace = app.store.ensure_default_workspace(app.clock.now()).await.expect("workspace").id;
    let stored = app.store.get_campaign(workspace, id.parse().expect("id")).await.expect("campaign");
    assert_eq!(stored.document["steps"][1]["then"][0]["basic_auth"]["password"], "s3cret-password", "kept");
    app.stop().await;
}

/// Logs in with an email and a password over plain HTTP.
async fn log_in_with_password(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    log_in_to(app, "default", email, password).await
}

/// Logs in to a workspace with an email and a password over plain HTTP.
async fn log_in_to(app: &TestApp, workspace: &str, email: &str, password: &str) -> reqwest::Response {
    let page = app.client.get(app.url("/login")).send().await.expect("login page");
    let login_cookie =
        set_cookie(&page, "herald_login").expect("login cookie").split(';').next().expect("pair").to_owned();
    let token = csrf_of(&page.text().await.expect("html"));
    app.client
        .post(app.url("/login"))
        .header(COOKIE, login_cookie)
        .form_body(&[
            ("csrf", token.as_str()),
            ("workspace", workspace),
            ("email", email),
            ("password", password),
            ("key", ""),
            ("next", "/sources"),
        ])
        .send()
        .await
        .expect("login")
}

/// The session cookie (`herald_session=...`) a login set.
fn session_of(response: &reqwest::Response) -> String {
    set_cookie(response, "herald_session").expect("a session cookie").split(';').next().expect("pair").to_owned()
}

/// The status of `/events` with this cookie: 200 with a live session, 303 to the login page
/// without.
async fn events_status(app: &TestApp, session: &str) -> StatusCode {
    app.client.get(app.url("/events")).header(COOKIE, session).send().await.expect("get").status()
}

/// The error paragraph of the password part of the login page.
fn password_error(html: &str) -> &str {
    let start = html.find("id=\"password-error\">").expect("a password error") + "id=\"password-error\">".len();
    html[start..].split('<').next().expect("text")
}

async fn password_guessing_is_throttled_per_account(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(&app, "ada@example.com", "correct horse battery").await;
    create_user(&app, "bob@example.com", "another long password").await;
    for _ in 0..5 {
        let refused = log_in_with_password(&app, "ada@example.com", "wrong horse battery").await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    // The sixth try is refused before the password is checked, even the right one.
    let throttled = log_in_with_password(&app, "ADA@example.com", "correct horse battery").await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "900");
    assert!(set_cookie(&throttled, "herald_session").is_none());
    assert!(password_error(&throttled.text().await.expect("html")).starts_with("Too many wrong passwords"));
    // An unknown email is counted the same way, so the answer tells nothing about accounts.
    for _ in 0..5 {
        log_in_with_password(&app, "eve@example.com", "guess guess guess").await;
    }
    assert_eq!(log_in_with_password(&app, "eve@example.com", "x").await.status(), StatusCode::TOO_MANY_REQUESTS);
    // Other accounts are not held up.
    assert_eq!(
        log_in_with_password(&app, "bob@example.com", "another long password").await.status(),
        StatusCode::SEE_OTHER
    );

    // Fifteen minutes after the first failure, Ada may try again; a success clears her count.
    app.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(
        log_in_with_password(&app, "ada@example.com", "correct horse battery").await.status(),
        StatusCode::SEE_OTHER
    );
    for _ in 0..4 {
        log_in_with_password(&app, "ada@example.com", "wrong horse battery").await;
    }
    let fifth = log_in_with_password(&app, "ada@example.com", "wrong horse battery").await;
    assert_eq!(fifth.status(), StatusCode::UNAUTHORIZED, "the count started again after the success");
    app.stop().await;
}

async fn users_log_in_with_a_password_until_deleted_or_changed(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = create_user(&app, "ada@example.com", "correct horse battery").await;

    // The login page offers both ways in.
    let page = app.client.get(app.url("/login")).send().await.expect("get").text().await.expect("html");
    assert!(page.contains("id=\"email\"") && page.contains("id=\"password\"") && page.contains("id=\"key\""));

    // A wrong password, an unknown email or a malformed one: the same error, no session.
    let mut errors = Vec::new();
    for (email, password) in [
        ("ada@example.com", "wrong horse battery"),
        ("eve@example.com", "correct horse battery"),
        ("not an email", "correct horse battery"),
        ("ada@example.com", "short"),
    ] {
        let refused = log_in_with_password(&app, email, password).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{email}");
        assert!(set_cookie(&refused, "herald_session").is_none(), "{email}");
        let html = refused.text().await.expect("html");
        assert!(!html.contains("correct horse") && !html.contains("wrong horse"), "the password is not echoed");
        errors.push(password_error(&html).to_owned());
    }
    assert!(errors.iter().all(|e| e == "Email or password is wrong."), "{errors:?}");
    let missing = log_in_with_password(&app, "ada@example.com", "").await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(password_error(&missing.text().await.expect("html")).contains("both"));

    // The right password, with the email typed in another case: a session for Ada.
    let response = log_in_with_password(&app, " ADA@Example.com ", "correct horse battery").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/sources");
    let header = set_cookie(&response, "herald_session").expect("cookie").to_owned();
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Lax"), "{header}");
    let first = session_of(&response);
    assert!(first.contains(&ada.id.to_string()), "the cookie names the user: {first}");
    let page = app.client.get(app.url("/sources")).header(COOKIE, &first).send().await.expect("get");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("<span class=\"who\" id=\"who\">ada@example.com</span>"), "who is logged in");

    // Forms work with the session's token, and only with it.
    let token = csrf_of(&html);
    let form = |csrf: &str| {
        app.client.post(app.url("/sources")).header(COOKIE, &first).form_body(&[
            ("csrf", csrf),
            ("name", "Shop"),
            ("kind", "generic"),
        ])
    };
    assert_eq!(form("wrong").send().await.expect("post").status(), StatusCode::FORBIDDEN);
    assert_eq!(form(&token).send().await.expect("post").status(), StatusCode::OK);

    // The settings page lists keys without marking one as this session's.
    let settings = app.client.get(app.url("/settings")).header(COOKIE, &first).send().await.expect("get");
    assert_eq!(settings.status(), StatusCode::OK);
    let html = settings.text().await.expect("html");
    assert!(html.contains("/settings/api-keys/key_"), "keys listed");
    assert!(!html.contains("this session"), "no key is this session's");

    // A key's session says so in the header.
    let with_key = session_of(&log_in(&app, ADMIN_TOKEN).await);
    let html = app.client.get(app.url("/events")).header(COOKIE, &with_key).send().await.expect("get");
    assert!(html.text().await.expect("html").contains("id=\"who\">API key "));

    // A new password (as `herald user set-password` sets it) ends every session made before.
    let second = session_of(&log_in_with_password(&app, "ada@example.com", "correct horse battery").await);
    assert_eq!(events_status(&app, &second).await, StatusCode::OK);
    let new_hash = herald_server::web::users::hash(Password::parse_new("battery staple horse").expect("pw")).await;
    app.store.set_user_password(ada.workspace_id, ada.id, &new_hash, app.clock.now()).await.expect("set password");
    assert_eq!(events_status(&app, &first).await, StatusCode::SEE_OTHER);
    assert_eq!(events_status(&app, &second).await, StatusCode::SEE_OTHER);
    let old = log_in_with_password(&app, "ada@example.com", "correct horse battery").await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let third = session_of(&log_in_with_password(&app, "ada@example.com", "battery staple horse").await);
    assert_eq!(events_status(&app, &third).await, StatusCode::OK);

    // A forged cookie naming the user with another MAC is no session.
    let (payload, _) = third.rsplit_once('.').expect("signed");
    assert_eq!(events_status(&app, &format!("{payload}.AAAA")).await, StatusCode::SEE_OTHER);

    // Deleting the user ends their session, and they cannot log in again.
    app.store.delete_user(ada.workspace_id, ada.id).await.expect("delete");
    assert_eq!(events_status(&app, &third).await, StatusCode::SEE_OTHER);
    let gone = log_in_with_password(&app, "ada@example.com", "battery staple horse").await;
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(events_status(&app, &with_key).await, StatusCode::OK, "the key's session is unaffected");

    // A user's session expires after 12 hours like a key's.
    create_user(&app, "bob@example.com", "another long password").await;
    let bob = session_of(&log_in_with_password(&app, "bob@example.com", "another long password").await);
    app.clock.advance(Duration::from_secs(12 * 3600 + 1));
    assert_eq!(events_status(&app, &bob).await, StatusCode::SEE_OTHER);

    // With a second workspace the login page asks which (without listing them); the same
    // email is another person there.
    let page = app.client.get(app.url("/login")).send().await.expect("get").text().await.expect("html");
    assert!(!page.contains("id=\"workspace\""), "one workspace: nothing to ask");
    let acme = app.store.create_workspace(&WorkspaceName::parse("acme").expect("name"), app.clock.now()).await;
    let acme = acme.expect("workspace");
    let hash = herald_server::web::users::hash(Password::parse_new("acme's own password").expect("pw")).await;
    let email = EmailAddress::parse("bob@example.com").expect("email");
    app.store.create_user(acme.id, &email, &hash, app.clock.now()).await.expect("user in acme");
    let page = app.client.get(app.url("/login")).send().await.expect("get").text().await.expect("html");
    assert!(page.contains("id=\"workspace\"") && !page.contains("acme"), "asked, not listed");
    let wrong = log_in_to(&app, "default", "bob@example.com", "acme's own password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let nowhere = log_in_to(&app, "nowhere", "bob@example.com", "acme's own password").await;
    assert_eq!(nowhere.status(), StatusCode::UNAUTHORIZED);
    let in_acme = session_of(&log_in_to(&app, "acme", "bob@example.com", "acme's own password").await);
    assert_eq!(events_status(&app, &in_acme).await, StatusCode::OK);

    app.stop().await;
}

/// A page's HTML with askama's escapes undone, for reading JSON shown in it.
fn unescaped(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The `value` of the input with this id.
fn input_value(html: &str, id: &str) -> String {
    let start = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let rest = &html[start..];
    let value = rest.find("value=\"").expect("a value") + "value=\"".len();
    rest[value..].split('"').next().expect("value").to_owned()
}

async fn mapped_sources_are_previewed_and_saved_in_the_ui(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = session_of(&log_in(&app, ADMIN_TOKEN).await);
    let get = async |path: &str| {
        let response = app.client.get(app.url(path)).header(COOKIE, &session).send().await.expect("get");
        (response.status(), response.text().await.expect("html"))
    };
    let (status, created) = json(app.post("/api/v1/sources", &json!({"name": "Shop", "kind": "mapped"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let url = created["url"].as_str().expect("url").to_owned();
    let (status, html) = get(&format!("/sources/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No requests captured yet"), "{html}");

    // Two requests: kept as samples, newest first, pretty-printed.
    for body in [
        json!({"type": "order.paid", "customer": {"email": "Ada@Shop.test", "plan": "pro"}, "total": 49}),
        json!({"type": "order.refunded", "customer": {"email": "bob@shop.test"}, "total": 12}),
    ] {
        let sent = app.client.post(&url).json(&body).send().await.expect("send");
        assert_eq!(sent.status(), StatusCode::OK);
        app.clock.advance(Duration::from_secs(1));
    }
    for _ in 0..200 {
        let (_, samples) = json(app.get(&format!("/api/v1/sources/{id}/samples")).await).await;
        if samples["data"].as_array().is_some_and(|d| d.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, html) = get(&format!("/sources/{id}")).await;
    let text = unescaped(&html);
    let newest = text.find("id=\"sample-0\">").expect("sample 0");
    assert!(text[newest..].starts_with("id=\"sample-0\">{\n  \""), "pretty-printed: {text}");
    assert!(text[newest..].contains("\"email\": \"bob@shop.test\""), "the newest is first: {text}");
    assert!(text.find("order.refunded").expect("newer") < text.find("order.paid").expect("older"), "newest first");

    // The form starts from the suggestion for the newest sample.
    assert_eq!(input_value(&html, "map-email"), "customer.email");
    assert_eq!(input_value(&html, "map-event_path"), "type");
    let csrf = csrf_of(&html);
    let post = async |fields: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let response = app
            .client
            .post(app.url(&format!("/sources/{id}/mapping")))
            .header(COOKIE, &session)
            .form_body(&all)
            .send()
            .await
            .expect("post");
        let status = response.status();
        let location = response.headers().get(LOCATION).map(|l| l.to_str().expect("location").to_owned());
        (status, location, response.text().await.expect("html"))
    };
    let mapping = [
        ("email", "customer.email"),
        ("event_path", "type"),
        ("data_key", "plan"),
        ("data_path", "customer.plan"),
        ("data_key", ""),
        ("data_path", ""),
    ];

    // Preview on the older sample: the mapped result, nothing saved.
    let (status, _, html) = post(&[&mapping[..], &[("sample", "1"), ("action", "preview")]].concat()).await;
    assert_eq!(status, StatusCode::OK);
    let text = unescaped(&html);
    let preview = text[text.find("id=\"mapping-preview\"").expect("a preview")..].split("</pre>").next().expect("pre");
    assert!(preview.contains("\"email\": \"ada@shop.test\""), "{preview}");
    assert!(preview.contains("\"name\": \"order.paid\""), "{preview}");
    assert!(preview.contains("\"plan\": \"pro\""), "{preview}");
    assert!(!preview.contains("\"total\""), "only mapped data: {preview}");
    assert_eq!(input_value(&html, "map-email"), "customer.email", "the form keeps what was typed");

    // A path that cannot be parsed, a name and a path at once, a line without a name: each
    // error next to its field, nothing saved.
    let (status, _, html) = post(&[
        ("email", "customer..email"),
        ("event_path", "type"),
        ("event_constant", "order_paid"),
        ("data_key", ""),
        ("data_path", "customer.plan"),
        ("sample", "0"),
        ("action", "save"),
    ])
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"error-email\""), "{html}");
    assert!(html.contains("id=\"error-event_path\">Give a path or a fixed name, not both"), "{html}");
    let (status, _, html) =
        post(&[("email", "customer.email"), ("data_key", ""), ("data_path", "customer.plan"), ("action", "save")])
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("The name must not be empty"), "the line's own error: {html}");
    let (_, source) = json(app.get(&format!("/api/v1/sources/{id}")).await).await;
    assert!(source["mapping"].is_null(), "nothing saved: {source}");

    // A mapping that reads the sample wrongly: the preview names the field.
    let (status, _, html) = post(&[("email", "type"), ("sample", "0"), ("action", "preview")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"error-email\""), "{html}");
    assert!(!html.contains("id=\"mapping-preview\""));

    // Save: stored as the API would store it, used for the next request at once.
    let (status, location, _) = post(&[&mapping[..], &[("action", "save")]].concat()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some(format!("/sources/{id}?notice=mapping").as_str()));
    let (_, source) = json(app.get(&format!("/api/v1/sources/{id}")).await).await;
    assert_eq!(source["mapping"]["email"], "customer.email");
    assert_eq!(source["mapping"]["event_name"], json!({"path": "type"}));
    assert_eq!(source["mapping"]["properties"], json!({"plan": "customer.plan"}));
    let (_, html) = get(&format!("/sources/{id}?notice=mapping")).await;
    assert!(html.contains("Mapping saved"));
    assert!(html.contains("This is the saved mapping."));
    assert_eq!(input_value(&html, "map-email"), "customer.email");
    let sent = app
        .client
        .post(&url)
        .json(&json!({"type": "order.paid", "customer": {"email": "cy@shop.test", "plan": "team"}}))
        .send()
        .await
        .expect("send");
    let (_, accepted) = json(sent).await;
    assert!(accepted["contact_id"].as_str().is_some_and(|c| c.starts_with("ct_")), "{accepted}");

    // Asking for the suggestion again replaces the form, not the saved mapping.
    let (_, html) = get(&format!("/sources/{id}?sample=1&suggest=1")).await;
    assert!(html.contains("Started from a suggestion for sample #1"), "{html}");
    assert_eq!(input_value(&html, "map-email"), "customer.email");

    app.stop().await;
}

// ---------------------------------------------------------------- messages, deliveries, actions

/// A logged-in session: its cookie and its CSRF token.
struct Ui {
    cookie: String,
    csrf: String,
}

impl Ui {
    async fn log_in(app: &TestApp) -> Self {
        let response = log_in(app, ADMIN_TOKEN).await;
        let cookie =
            set_cookie(&response, "herald_session").expect("cookie").split(';').next().expect("pair").to_owned();
        let page = app.client.get(app.url("/events")).header(COOKIE, &cookie).send().await.expect("get");
        let csrf = csrf_of(&page.text().await.expect("html"));
        Self { cookie, csrf }
    }

    async fn get(&self, app: &TestApp, path: &str) -> (StatusCode, String) {
        let response = app.client.get(app.url(path)).header(COOKIE, &self.cookie).send().await.expect("get");
        (response.status(), response.text().await.expect("html"))
    }

    /// Posts a form with this session's token; returns the status and where it redirects.
    async fn post(&self, app: &TestApp, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let response =
            app.client.post(app.url(path)).header(COOKIE, &self.cookie).form_body(&all).send().await.expect("post");
        let status = response.status();
        let location = response.headers().get(LOCATION).map(|l| l.to_str().expect("location").to_owned());
        (status, location.unwrap_or_default(), response.text().await.expect("body"))
    }
}

/// A loopback receiver answering every path with 200 `{"ok": true}`, except `/down` (500).
async fn receiver() -> String {
    let app = axum::Router::new().route(
        "/{path}",
        axum::routing::any(|axum::extract::Path(path): axum::extract::Path<String>| async move {
            let status = if path == "down" { 500 } else { 200 };
            (axum::http::StatusCode::from_u16(status).expect("status"), "{\"ok\": true}")
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// An active campaign (an email, then a call to `base/hook` through a saved action, then a
/// draft call), a source, and Ada's event that runs it. Returns (campaign id, action id,
/// Ada's contact id).
async fn campaign_with_calls(app: &TestApp, base: &str) -> (String, String, String) {
    let (status, action) = json(
        app.post("/api/v1/actions", &json!({"name": "Tell CRM", "url": format!("{base}/hook"), "timeout": "1s"})).await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{action}");
    let action = action["id"].as_str().expect("id").to_owned();
    let document = json!({
        "name": "Onboarding", "trigger": {"type": "event", "event": "signed_up"},
        "steps": [
            {"id": "welcome", "type": "email", "from": "Acme <hello@acme.test>", "subject": "Welcome, {{ first_name }}",
             "html": "<p style=\"color: red\">Hi {{ first_name }}</p>"},
            {"id": "crm", "type": "webhook", "action": action},
            {"id": "review", "type": "webhook", "url": format!("{base}/review"), "timeout": "1s", "draft": true}
        ]
    });
    let (status, campaign) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let campaign = campaign["id"].as_str().expect("id").to_owned();
    let (status, _) = json(app.post(&format!("/api/v1/campaigns/{campaign}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);
    let (_, source) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    let url = source["url"].as_str().expect("url").to_owned();
    let body = json!({"email": "ada@example.com", "event": "signed_up", "data": {"first_name": "Ada"}});
    let (status, sent) = json(app.client.post(&url).json(&body).send().await.expect("send")).await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    app.run_jobs().await;
    (campaign, action, sent["contact_id"].as_str().expect("contact").to_owned())
}

/// The first `href` in `html` that starts with `prefix`.
fn link(html: &str, prefix: &str) -> String {
    let start = html.find(&format!("href=\"{prefix}")).unwrap_or_else(|| panic!("no link to {prefix}")) + 6;
    html[start..].split('"').next().expect("href").to_owned()
}

const NEW_PAGES: [&str; 11] = [
    "/broadcasts",
    "/templates",
    "/templates/new",
    "/templates/tpl_x",
    "/messages",
    "/deliveries",
    "/deliveries/whd_x",
    "/contacts/ct_x/delete",
    "/campaigns/cmp_x/webhooks/cwh_x",
    "/events?outcome=nothing",
    "/messages/msg_x",
];

const NEW_FORMS: [&str; 15] = [
    "/broadcasts",
    "/broadcasts/brd_x/pause",
    "/templates/new",
    "/templates/tpl_x",
    "/deliveries/whd_x/resend",
    "/topics",
    "/topics/top_x/delete",
    "/messages/msg_x/resend",
    "/contacts/ct_x/unsubscribe",
    "/contacts/ct_x/delete",
    "/contacts/ct_x/run-action",
    "/campaigns/cmp_x/drafts",
    "/campaigns/cmp_x/webhooks",
    "/campaigns/cmp_x/webhooks/cwh_x",
    "/campaigns/cmp_x/webhooks/cwh_x/delete",
];

async fn new_screens_need_a_session_and_a_csrf_token(backend: Backend) {
    let app = spawn_app(backend).await;
    for page in NEW_PAGES {
        let response = app.client.get(app.url(page)).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert!(response.headers()[LOCATION].to_str().expect("location").starts_with("/login?next="), "{page}");
    }
    let ui = Ui::log_in(&app).await;
    for form in NEW_FORMS {
        let response = app.client.post(app.url(form)).form_body(&[("csrf", "x")]).send().await.expect("post");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{form} without a session");
        for fields in [vec![("decision", "send")], vec![("csrf", "wrong"), ("decision", "send")]] {
            let response = app
                .client
                .post(app.url(form))
                .header(COOKIE, &ui.cookie)
                .form_body(&fields)
                .send()
                .await
                .expect("post");
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{form} with {fields:?}");
        }
    }
    // Empty states say what to do next.
    for (page, words) in [
        ("/messages", "Messages appear when"),
        ("/deliveries", "No webhook calls yet"),
        ("/events?outcome=contact_created", "No events match"),
    ] {
        let (status, html) = ui.get(&app, page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(html.contains(words), "{page}: {html}");
    }
    app.stop().await;
}

async fn messages_and_deliveries_show_what_was_sent(backend: Backend) {
    let app = spawn_app(backend).await;
    let base = receiver().await;
    let (campaign, action, ada) = campaign_with_calls(&app, &base).await;
    let ui = Ui::log_in(&app).await;

    // Messages: listed, filtered, and one shown in a sandboxed frame with its own policy.
    let (status, html) = ui.get(&app, "/messages").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Welcome, Ada"), "{html}");
    for (query, listed) in [
        ("status=sent", true),
        ("status=failed", false),
        (&*format!("campaign={campaign}"), true),
        ("contact=ada%40example.com", true),
        ("contact=bob%40example.com", false),
    ] {
        let (status, html) = ui.get(&app, &format!("/messages?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(html.contains("Welcome, Ada"), listed, "{query}");
    }
    let (_, html) = ui.get(&app, "/messages?contact=bob%40example.com").await;
    assert!(html.contains("No contact has the email"), "the filter's error is next to it");
    let message = link(&ui.get(&app, "/messages").await.1, "/messages/msg_");
    let response = app.client.get(app.url(&message)).header(COOKIE, &ui.cookie).send().await.expect("get");
    let csp = response.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("style-src 'self' 'unsafe-inline'") && csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = response.text().await.expect("html");
    assert!(html.contains(" sandbox srcdoc=\"&#60;p "), "the email is framed, escaped, with no permission: {html}");
    assert!(html.contains("&#60;p style=&#34;color: red&#34;&#62;Hi Ada&#60;/p&#62;"), "{html}");
    assert!(!html.contains("<p style=\"color: red\">"), "the email's HTML never reaches the page itself");
    assert!(html.contains("id=\"message-text\""), "the text part too");
    let other = app.client.get(app.url("/events")).header(COOKIE, &ui.cookie).send().await.expect("get");
    let csp = other.headers()["content-security-policy"].to_str().expect("csp");
    assert!(!csp.contains("unsafe-inline"), "inline styles only where an email is shown: {csp}");

    // Deliveries: the saved action's call, filtered by action, campaign and step, status.
    let (status, html) = ui.get(&app, "/deliveries").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("{base}/hook")), "{html}");
    for (query, listed) in [
        (format!("action={action}"), true),
        (format!("campaign={campaign}&step=crm"), true),
        (format!("campaign={campaign}&step=other"), false),
        ("status=failed".to_owned(), false),
        (format!("contact={ada}"), true),
    ] {
        let (status, html) = ui.get(&app, &format!("/deliveries?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(html.contains(&format!("{base}/hook")), listed, "{query}: {html}");
    }
    let (_, html) = ui.get(&app, "/deliveries?step=crm").await;
    assert!(html.contains("Needs campaign"), "a step needs its campaign, said next to the field: {html}");

    // One call: its attempt, and Resend (same code as the API) adds another.
    let delivery = link(&ui.get(&app, "/deliveries").await.1, "/deliveries/whd_");
    let (_, html) = ui.get(&app, &delivery).await;
    assert!(html.contains("Attempt 1") && html.contains(&format!("POST {base}/hook")), "{html}");
    assert!(html.contains("webhook-signature") && html.contains("***"), "headers shown, secrets masked: {html}");
    let (status, location, _) = ui.post(&app, &format!("{delivery}/resend"), &[]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, &*format!("{delivery}?notice=resent")));
    app.run_jobs().await;
    let (_, html) = ui.get(&app, &format!("{delivery}?notice=resent")).await;
    assert!(html.contains("Attempt 2") && html.contains("Queued to be sent again"), "{html}");
    let (_, resent) =
        json(app.get(&format!("/api/v1/webhook-deliveries/{}", &delivery["/deliveries/".len()..])).await).await;
    assert_eq!(resent["attempts"].as_array().map(Vec::len), Some(2), "{resent}");
    app.stop().await;
}

async fn contact_page_runs_unsubscribes_and_deletes(backend: Backend) {
    let app = spawn_app(backend).await;
    let base = receiver().await;
    let (_, action, ada) = campaign_with_calls(&app, &base).await;
    let ui = Ui::log_in(&app).await;
    let page = format!("/contacts/{ada}");

    // The timeline interleaves the event, the email and the call.
    let (_, html) = ui.get(&app, &page).await;
    for what in ["signed_up", "Welcome, Ada", &format!("{base}/hook")] {
        assert!(html.contains(what), "{what}: {html}");
    }
    assert!(html.contains("Tell CRM"), "saved actions to pick from");

    // Run a saved action: queued, with a link to its calls.
    let (status, location, _) = ui.post(&app, &format!("{page}/run-action"), &[("action", action.as_str())]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("{page}?notice=action_queued&ran={action}"));
    app.run_jobs().await;
    let (_, html) = ui.get(&app, &location).await;
    assert!(html.contains(&format!("/deliveries?action={action}&amp;contact={ada}")), "{html}");
    let (_, calls) = json(app.get(&format!("/api/v1/webhook-deliveries?action={action}&contact={ada}")).await).await;
    assert_eq!(calls["data"].as_array().map(Vec::len), Some(2), "the step's call and the run: {calls}");
    // A missing action is an error next to the picker.
    let (status, _, html) =
        ui.post(&app, &format!("{page}/run-action"), &[("action", "act_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("class=\"field-error\">The action cannot run for this contact"), "{html}");

    // Unsubscribe: suppressed, as the API's suppression list says.
    let (status, location, _) = ui.post(&app, &format!("{page}/unsubscribe"), &[]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, &*format!("{page}?notice=unsubscribed")));
    let (_, suppressions) = json(app.get("/api/v1/suppressions").await).await;
    assert_eq!(suppressions["data"][0]["email"], "ada@example.com", "{suppressions}");
    let (_, html) = ui.get(&app, &page).await;
    assert!(html.contains("suppressed") && !html.contains("id=\"unsubscribe\""), "{html}");

    // Delete: a confirmation page first, then the contact and their events are gone.
    let (status, html) = ui.get(&app, &format!("{page}/delete")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Delete for good") && html.contains("ada@example.com"), "{html}");
    let (status, location, _) = ui.post(&app, &format!("{page}/delete"), &[]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/contacts?notice=contact_deleted"));
    assert_eq!(app.get(&format!("/api/v1/contacts/{ada}")).await.status(), StatusCode::NOT_FOUND);
    let (_, events) = json(app.get("/api/v1/events").await).await;
    assert_eq!(events["data"], json!([]), "their events went with them");
    assert_eq!(ui.get(&app, &page).await.0, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn event_log_filters_by_outcome(backend: Backend) {
    let app = spawn_app(backend).await;
    let base = receiver().await;
    campaign_with_calls(&app, &base).await;
    let (_, source) = json(app.post("/api/v1/sources", &json!({"name": "more", "kind": "generic"})).await).await;
    let url = source["url"].as_str().expect("url").to_owned();
    for body in [
        json!({"email": "ada@example.com", "event": "clicked"}),
        json!({"email": "ada@example.com", "event": "paid", "data": {"plan": "pro"}}),
    ] {
        assert_eq!(app.client.post(&url).json(&body).send().await.expect("send").status(), StatusCode::OK);
    }
    app.run_jobs().await;
    let ui = Ui::log_in(&app).await;
    for (outcome, shown, hidden) in [
        ("contact_created", "signed_up", "paid"),
        ("started_campaign", "signed_up", "clicked"),
        ("contact_updated", "paid", "signed_up"),
        ("nothing", "clicked", "paid"),
    ] {
        let (status, html) = ui.get(&app, &format!("/events?outcome={outcome}")).await;
        assert_eq!(status, StatusCode::OK);
        let rows = &html[html.find("<tbody").expect("rows")..];
        assert!(rows.contains(&format!(">{shown}<")) && !rows.contains(&format!(">{hidden}<")), "{outcome}: {rows}");
        assert!(html.contains(&format!("<option value=\"{outcome}\" selected>")), "the filter keeps its choice");
    }
    let (_, api) = json(app.get("/api/v1/events?outcome=nothing").await).await;
    assert_eq!(api["data"][0]["name"], "clicked", "{api}");
    let (status, _) = json(app.get("/api/v1/events?outcome=maybe").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

async fn attribute_search_goes_on_window_by_window(backend: Backend) {
    let app = spawn_app(backend).await;
    // More contacts than one search window, all on the free plan, then one on a rare plan,
    // created last so that it sorts after the first window.
    let mut csv = String::from("email,plan\n");
    for i in 0..10_050 {
        csv.push_str(&format!("p{i}@example.com,free\n"));
    }
    let response = app
        .request(reqwest::Method::POST, "/api/v1/contacts/import")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("import");
    assert_eq!(response.status(), StatusCode::OK);
    let (status, rare) =
        json(app.post("/api/v1/contacts", &json!({"email": "rare@example.com", "attributes": {"plan": "rare"}})).await)
            .await;
    assert_eq!(status, StatusCode::CREATED, "{rare}");

    let ui = Ui::log_in(&app).await;
    let (status, html) = ui.get(&app, "/contacts?q=plan%3Drare").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No match in these 10,000 contacts."), "{html}");
    let further = unescaped(&link(&html, "/contacts?q=plan%3Drare&#38;cursor="));
    let (_, html) = ui.get(&app, &further).await;
    assert!(html.contains("rare@example.com") && !html.contains("id=\"search-further\""), "{html}");

    // The API pages the same way: an empty page with a cursor, then the match.
    let (_, first) = json(app.get("/api/v1/contacts?attribute=plan&value=rare").await).await;
    assert_eq!(first["data"], json!([]), "{first}");
    let cursor = first["next_cursor"].as_str().expect("a cursor after the window");
    let (_, second) = json(app.get(&format!("/api/v1/contacts?attribute=plan&value=rare&cursor={cursor}")).await).await;
    assert_eq!(second["data"][0]["id"], rare["id"], "{second}");
    assert!(second["next_cursor"].is_null(), "{second}");
    app.stop().await;
}

async fn campaign_page_settles_drafts_and_manages_webhooks(backend: Backend) {
    let app = spawn_app(backend).await;
    let base = receiver().await;
    let (campaign, _, _) = campaign_with_calls(&app, &base).await;
    let ui = Ui::log_in(&app).await;
    let page = format!("/campaigns/{campaign}");

    // The draft call is waiting; Send sends it (the same code as the API).
    let (_, html) = ui.get(&app, &page).await;
    assert!(html.contains(&format!("POST {base}/review")), "{html}");
    let draft =
        html.split("name=\"draft\" value=\"").nth(1).expect("a draft").split('"').next().expect("id").to_owned();
    let (status, location, _) =
        ui.post(&app, &format!("{page}/drafts"), &[("draft", draft.as_str()), ("decision", "send")]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, &*format!("{page}?notice=drafts_sent")));
    app.run_jobs().await;
    let (_, calls) = json(app.get(&format!("/api/v1/webhook-deliveries?campaign={campaign}&step=review")).await).await;
    assert_eq!(calls["data"][0]["status"], "succeeded", "{calls}");
    let (_, html) = ui.get(&app, &page).await;
    assert!(html.contains("No drafts waiting"), "{html}");
    let (_, location, _) = ui.post(&app, &format!("{page}/drafts"), &[("decision", "skip")]).await;
    assert_eq!(location, format!("{page}?notice=no_drafts"), "nothing left to skip");

    // Event webhooks: a field error next to its field, then created, edited, deleted.
    let create = format!("{page}/webhooks");
    let (status, _, html) =
        ui.post(&app, &create, &[("url", "ftp://x.example"), ("events", "contact_entered"), ("active", "1")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"hook-url\" name=\"url\" value=\"ftp://x.example\""), "kept as typed: {html}");
    assert!(html.contains("<p class=\"field-error\">Unsupported scheme"), "{html}");
    let (status, _, html) = ui.post(&app, &create, &[("url", &format!("{base}/events")), ("active", "1")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("<p class=\"field-error\">Subscribe to at least one event"), "{html}");
    let fields = [
        ("url", format!("{base}/events")),
        ("method", "POST".to_owned()),
        ("content_type", "form".to_owned()),
        ("auth", "basic".to_owned()),
        ("username", "herald".to_owned()),
        ("password", "pw-secret-1".to_owned()),
        ("secret", "a-long-random-shared-secret-123".to_owned()),
        ("events", "contact_entered".to_owned()),
        ("events", "email_sent".to_owned()),
        ("active", "1".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, location, _) = ui.post(&app, &create, &fields).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, &*format!("{page}?notice=webhook_saved")));
    let (_, hooks) = json(app.get(&format!("/api/v1/campaigns/{campaign}/webhooks")).await).await;
    let hook = &hooks["data"][0];
    assert_eq!(
        (
            hook["content_type"].as_str(),
            hook["auth"].as_str(),
            hook["password_set"].as_bool(),
            hook["secret_set"].as_bool()
        ),
        (Some("form"), Some("basic"), Some(true), Some(true)),
        "{hooks}"
    );
    assert_eq!(hook["events"], json!(["contact_entered", "email_sent"]));
    let edit = format!("{page}/webhooks/{}", hook["id"].as_str().expect("id"));
    let (_, html) = ui.get(&app, &edit).await;
    assert!(html.contains("stored; blank keeps it"), "{html}");
    assert!(!html.contains("pw-secret-1") && !html.contains("a-long-random-shared-secret-123"), "secrets never shown");
    let (_, html) = ui.get(&app, &page).await;
    assert!(!html.contains("pw-secret-1") && !html.contains("a-long-random-shared-secret-123"), "secrets never shown");
    // Blank password and secret keep the stored ones; unticked boxes turn things off.
    let edited = [
        ("url", format!("{base}/events2")),
        ("auth", "basic".to_owned()),
        ("username", "herald".to_owned()),
        ("method", "POST".to_owned()),
        ("content_type", "json".to_owned()),
        ("events", "contact_exited".to_owned()),
    ];
    let edited: Vec<(&str, &str)> = edited.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, location, _) = ui.post(&app, &edit, &edited).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, &*format!("{page}?notice=webhook_saved")));
    let (_, hook) = json(app.get(&format!("/api/v1{}", &edit)).await).await;
    assert_eq!(
        (hook["active"].as_bool(), hook["password_set"].as_bool(), hook["secret_set"].as_bool(), hook["url"].as_str()),
        (Some(false), Some(true), Some(true), Some(&*format!("{base}/events2"))),
        "{hook}"
    );
    assert_eq!(hook["events"], json!(["contact_exited"]));
    let (status, location, _) = ui.post(&app, &format!("{edit}/delete"), &[]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, &*format!("{page}?notice=webhook_deleted")));
    let (_, hooks) = json(app.get(&format!("/api/v1/campaigns/{campaign}/webhooks")).await).await;
    assert_eq!(hooks["data"], json!([]));
    app.stop().await;
}

async fn browser_opens_the_delivery_log(backend: Backend) {
    let shots = backend == Backend::Sqlite && std::env::var("HERALD_SCREENSHOTS").is_ok_and(|v| v == "1");
    let app = spawn_app(backend).await;
    let base = receiver().await;
    campaign_with_calls(&app, &base).await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let flow = async {
        client.goto(&app.url("/deliveries")).await.expect("goto");
        fill(&client, "#key", ADMIN_TOKEN).await;
        click(&client, "form button[type=submit]").await;
        assert!(text(&client, "#deliveries").await.contains(&format!("{base}/hook")));
        assert_eq!(path(&client).await, "/deliveries");
        screenshot(&client, shots, "deliveries").await;
        click(&client, "#deliveries tbody a[href^='/deliveries/']").await;
        assert_eq!(text(&client, "#delivery-status").await, "succeeded");
        assert!(text(&client, "#attempts").await.contains("Attempt 1"));
        screenshot(&client, shots, "delivery").await;
        click(&client, "#resend button").await;
        client.accept_alert().await.expect("confirm the resend");
        assert!(text(&client, ".notice").await.contains("Queued to be sent again"));
        client.goto(&app.url("/messages")).await.expect("goto");
        click(&client, "#messages tbody a[href^='/messages/']").await;
        assert!(text(&client, "#message-text").await.contains("Hi Ada"));
        screenshot(&client, shots, "message").await;

        // Resend: a copy is queued, then sent; the original stays as it was.
        let original = path(&client).await;
        click(&client, "#resend button").await;
        client.accept_alert().await.expect("confirm the resend");
        assert!(text(&client, ".notice").await.contains("A copy of the message is queued"));
        let copy = path(&client).await;
        assert_ne!(copy, original, "the copy has its own page");
        app.run_jobs().await;
        client.refresh().await.expect("reload");
        assert_eq!(text(&client, "#message-status").await, "sent");
        assert!(text(&client, "#message-text").await.contains("Hi Ada"));
        let (_, listed) = json(app.get("/api/v1/messages").await).await;
        assert_eq!(listed["data"].as_array().map(Vec::len), Some(2), "the original and its copy: {listed}");
        let id = copy.trim_start_matches("/messages/");
        let (status, _) = json(app.post(&format!("/api/v1/messages/{id}/resend"), &json!({})).await).await;
        assert_eq!(status, StatusCode::CREATED, "a sent message can be sent again through the API too");
        let (_, listed) = json(app.get("/api/v1/messages").await).await;
        let queued = listed["data"].as_array().and_then(|d| d.iter().find(|m| m["status"] == "queued")).cloned();
        let queued = queued.expect("the API's copy is queued");
        let (status, body) = json(
            app.post(&format!("/api/v1/messages/{}/resend", queued["id"].as_str().unwrap_or_default()), &json!({}))
                .await,
        )
        .await;
        assert_eq!((status, &body["error"]["code"]), (StatusCode::CONFLICT, &json!("message_pending")), "{body}");
        let (status, body) = json(app.post("/api/v1/messages/not-a-message/resend", &json!({})).await).await;
        assert_eq!((status, &body["error"]["field"]), (StatusCode::BAD_REQUEST, &json!("id")), "{body}");
        let unknown = "msg_00000000000000000000000000000000";
        let (status, _) = json(app.post(&format!("/api/v1/messages/{unknown}/resend"), &json!({})).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    };
    let result = tokio::time::timeout(Duration::from_secs(60), flow).await;
    client.close().await.expect("close the browser");
    result.expect("the flow took over a minute");
    app.stop().await;
}

// ---------------------------------------------------------------- the first run

/// Makes the test app a server nobody can log in to: its only key (the admin token's)
/// revoked, and no user.
async fn nobody_can_log_in(app: &TestApp) {
    let workspace = default_workspace(app).await;
    let keys = app.store.list_api_keys(workspace.id, PageRequest { after: None, limit: 100 }).await.expect("keys");
    for key in keys.items {
        app.store.revoke_api_key(workspace.id, key.id, app.clock.now()).await.expect("revoke");
    }
}

async fn default_workspace(app: &TestApp) -> herald_domain::Workspace {
    let name = WorkspaceName::parse("default").expect("name");
    app.store.workspace_by_name(&name).await.expect("read").expect("default workspace")
}

/// The first-run link `herald serve` would print now, if any.
async fn first_run_link(app: &TestApp) -> Option<String> {
    let workspace = default_workspace(app).await;
    let clock: SharedClock = Arc::new(app.clock.clone());
    first_run::link(&app.store, &clock, workspace.id, &app.address).await.expect("first-run link")
}

async fn the_first_run_link_signs_in_once_and_offers_the_first_user(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(first_run_link(&app).await, None, "not while the admin token's key is live");
    nobody_can_log_in(&app).await;
    let link = first_run_link(&app).await.expect("a link for a server nobody can log in to");
    assert!(link.starts_with(&app.url("/login/link/")), "{link}");

    let opened = app.client.get(&link).send().await.expect("open the link");
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    assert_eq!(opened.headers()[LOCATION], "/welcome");
    let link_session = session_of(&opened);
    let again = app.client.get(&link).send().await.expect("open it again");
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.expect("html").contains("This link has been used"));

    let page = app.client.get(app.url("/welcome")).header(COOKIE, &link_session).send().await.expect("welcome");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("Create the first user") && html.contains("API key first-run link"), "{html}");
    let csrf = csrf_of(&html);
    let form = |password: &'static str, repeat: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("email", "ada@example.com".into()),
            ("password", password.into()),
            ("repeat", repeat.into()),
        ]
    };
    let post = async |fields: Vec<(&str, String)>| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_form(&app, &link_session, "/welcome", &fields).await
    };
    let mut forged = form("correct horse battery", "correct horse battery");
    forged[0].1 = "forged".into();
    assert_eq!(post(forged).await.status(), StatusCode::FORBIDDEN);
    let short = post(form("short", "short")).await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.text().await.expect("html").contains("at least 12 characters"));
    let differ = post(form("correct horse battery", "correct horse battry")).await;
    assert_eq!(differ.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(differ.text().await.expect("html").contains("The two passwords differ"));

    let created = post(form("correct horse battery", "correct horse battery")).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(created.headers()[LOCATION], "/settings?notice=welcome");
    let user_session = session_of(&created);
    assert_eq!(events_status(&app, &link_session).await, StatusCode::SEE_OTHER, "the link's key is revoked");
    assert_eq!(events_status(&app, &user_session).await, StatusCode::OK);
    let settings = app.client.get(app.url("/settings?notice=welcome")).header(COOKIE, &user_session).send().await;
    let settings = settings.expect("settings").text().await.expect("html");
    assert!(settings.contains("Your user is created") && settings.contains("ada@example.com"), "{settings}");
    assert_eq!(
        log_in_with_password(&app, "ada@example.com", "correct horse battery").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(first_run_link(&app).await, None, "not once a user exists");
    app.stop().await;
}

async fn first_run_links_expire_after_15_minutes(backend: Backend) {
    let app = spawn_app(backend).await;
    nobody_can_log_in(&app).await;
    let expired = first_run_link(&app).await.expect("a link");
    app.clock.advance(Duration::from_secs(15 * 60));
    let refused = app.client.get(&expired).send().await.expect("open");
    assert_eq!(refused.status(), StatusCode::GONE);
    assert!(refused.text().await.expect("html").contains("This link has expired"));

    let unknown = app.client.get(app.url("/login/link/not-a-link")).send().await.expect("open");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.text().await.expect("html").contains("This link is not valid"));

    // A fresh link works until its last second.
    let link = first_run_link(&app).await.expect("another link");
    app.clock.advance(Duration::from_secs(15 * 60 - 1));
    let opened = app.client.get(&link).send().await.expect("open");
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

async fn browser_opens_the_first_run_link_and_creates_the_first_user(backend: Backend) {
    let shots = backend == Backend::Sqlite && std::env::var("HERALD_SCREENSHOTS").is_ok_and(|v| v == "1");
    let app = spawn_app(backend).await;
    nobody_can_log_in(&app).await;
    let link = first_run_link(&app).await.expect("a link");
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let flow = async {
        client.goto(&link).await.expect("goto");
        text(&client, "#first-user").await;
        assert_eq!(path(&client).await, "/welcome");
        assert_eq!(text(&client, "#who").await, "API key first-run link");
        fill(&client, "#email", "ada@example.com").await;
        fill(&client, "#password", "correct horse battery").await;
        fill(&client, "#repeat", "correct horse battery").await;
        screenshot(&client, shots, "first-run").await;
        click(&client, "#first-user button[type=submit]").await;
        text(&client, "#api-keys").await;
        assert_eq!(path(&client).await, "/settings");
        assert_eq!(text(&client, "#who").await, "ada@example.com");
        client.goto(&link).await.expect("goto again");
        assert_eq!(text(&client, "#link-refused h1").await, "This link has been used");
    };
    let result = tokio::time::timeout(Duration::from_secs(60), flow).await;
    client.close().await.expect("close the browser");
    result.expect("the first run took over a minute");
    app.stop().await;
}

on_both_backends!(
    browser_walks_the_main_flow,
    pages_and_forms_need_a_session_and_a_csrf_token,
    the_campaign_editor_saves_what_the_form_describes,
    users_log_in_with_a_password_until_deleted_or_changed,
    password_guessing_is_throttled_per_account,
    browser_logs_in_with_email_and_password,
    mapped_sources_are_previewed_and_saved_in_the_ui,
    new_screens_need_a_session_and_a_csrf_token,
    messages_and_deliveries_show_what_was_sent,
    contact_page_runs_unsubscribes_and_deletes,
    event_log_filters_by_outcome,
    attribute_search_goes_on_window_by_window,
    campaign_page_settles_drafts_and_manages_webhooks,
    browser_opens_the_delivery_log,
    the_first_run_link_signs_in_once_and_offers_the_first_user,
    first_run_links_expire_after_15_minutes,
    browser_opens_the_first_run_link_and_creates_the_first_user,
);
