//! The web UI. A real Chromium (Debian's `chromium`, driven through `chromedriver` by
//! fantoccini) walks the main flow on both backends; plain HTTP checks that every form
//! refuses a missing or wrong CSRF token and that pages need a session.
//!
//! `cargo xtask test` installs the browser and sets `HERALD_TEST_CHROMEDRIVER`. With
//! `HERALD_SCREENSHOTS=1` the SQLite run saves screenshots of the main pages to
//! `docs/screenshots/`.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{ADMIN_TOKEN, Backend, TestApp, json, spawn_app};
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

// ---------------------------------------------------------------- the browser

/// A chromedriver on a free loopback port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

async fn start_driver() -> Driver {
    let path = std::env::var("HERALD_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
    let port = free_port();
    let child = Command::new(&path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {path} ({e}): run `cargo xtask test`, which installs chromium and chromium-driver")
        });
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{}/status", driver.url)).send().await.is_ok_and(|r| r.status().is_success()) {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on port {port}");
}

async fn browser(driver: &Driver) -> Client {
    let mut options = json!({"args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1280,900", "--hide-scrollbars", "--force-device-scale-factor=1"
    ]});
    if std::path::Path::new("/usr/bin/chromium").exists() {
        options["binary"] = json!("/usr/bin/chromium");
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

async fn text(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn fill(client: &Client, css: &str, value: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(value).await.expect("type");
}

async fn click(client: &Client, css: &str) {
    client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}")).click().await.expect("click");
}

async fn select(client: &Client, css: &str, value: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"));
    field.select_by_value(value).await.expect("select");
}

async fn path(client: &Client) -> String {
    let url = client.current_url().await.expect("url");
    url.path().to_owned()
}

/// Saves a screenshot to docs/screenshots/NAME.png when HERALD_SCREENSHOTS=1.
async fn screenshot(client: &Client, enabled: bool, name: &str) {
    if !enabled {
        return;
    }
    let png = client.screenshot().await.expect("screenshot");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

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

const FORMS: [&str; 13] = [
    "/logout",
    "/campaigns/new",
    "/campaigns/cmp_x/edit",
    "/sources",
    "/sources/src_x/rotate",
    "/domains",
    "/domains/dom_x/verify",
    "/settings/api-keys",
    "/settings/api-keys/key_x/revoke",
    "/settings/signing-key",
    "/settings/transport",
    "/settings/transport/test",
    "/campaigns/cmp_x/state",
];

const PAGES: [&str; 12] = [
    "/events",
    "/campaigns/new",
    "/campaigns/cmp_x/edit",
    "/events/evt_x",
    "/sources",
    "/sources/src_x",
    "/contacts",
    "/campaigns",
    "/domains",
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
    assert_eq!(campaign["document"]["steps"][1]["then"][0]["basic_auth"]["password"], "s3cret-password");
    app.stop().await;
}

on_both_backends!(
    browser_walks_the_main_flow,
    pages_and_forms_need_a_session_and_a_csrf_token,
    the_campaign_editor_saves_what_the_form_describes
);
