//! Email providers' HTTP APIs as transports, on both backends: a local HTTP server speaks each
//! provider's documented request and answer (Amazon SES v2 `SendEmail` signed with SigV4,
//! Postmark `POST /email`, Resend `POST /emails`), and Herald's judgement of its answers is
//! checked: 2xx sent with the provider's id kept, 5xx retried, other 4xx failed. Then each
//! provider's delivery, bounce and complaint notifications, shaped as documented and signed by
//! its scheme (Postmark's Basic auth, Resend's Standard Webhooks signature, SNS's certificate
//! signature with a certificate made here), move messages and suppress addresses; forged,
//! unsigned, replayed and oversized ones change nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Backend, TestApp, json, spawn_app_with};
use herald_email::testing::dns::DnsServer;
use herald_server::delivery::email::EmailSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[path = "providers/notifications.rs"]
mod notifications;

on_both_backends!(
    ses_postmark_and_resend_receive_their_documented_requests,
    provider_answers_are_judged_by_status,
    postmark_notifications_need_basic_auth,
    resend_notifications_need_a_standard_webhooks_signature,
    ses_notifications_need_a_signature_by_an_sns_certificate,
);

use notifications::{
    postmark_notifications_need_basic_auth, resend_notifications_need_a_standard_webhooks_signature,
    ses_notifications_need_a_signature_by_an_sns_certificate,
};

const DOMAIN: &str = "mail.acme.test";

/// One request the fake provider received.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// A provider's API on loopback: records each request and answers with `status` (and, for a
/// 2xx, the provider's documented success body).
#[derive(Clone, Default)]
struct FakeProvider {
    requests: Arc<Mutex<Vec<Request>>>,
    status: Arc<Mutex<Option<u16>>>,
}

impl FakeProvider {
    async fn start() -> (FakeProvider, String) {
        let fake = FakeProvider::default();
        let app = Router::new()
            .route("/v2/email/outbound-emails", post(answer))
            .route("/email", post(answer))
            .route("/emails", post(answer))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, url)
    }

    fn answer_with(&self, status: u16) {
        *self.status.lock().unwrap() = Some(status);
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn answer(State(fake): State<FakeProvider>, uri: Uri, headers: HeaderMap, body: String) -> (AxumStatus, String) {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    fake.requests.lock().unwrap().push(Request { path: uri.path().to_owned(), headers, body });
    let status = fake.status.lock().unwrap().unwrap_or(200);
    let reply = match (status, uri.path()) {
        (200, "/v2/email/outbound-emails") => json!({"MessageId": "0100018c-ses-id"}),
        (200, "/email") => json!({"To": "ada@example.com", "SubmittedAt": "2026-12-07T14:00:00Z",
                                  "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "ErrorCode": 0, "Message": "OK"}),
        (200, _) => json!({"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}),
        (422, "/email") => {
            json!({"ErrorCode": 406, "Message": "You tried to send to a recipient that has been marked as inactive."})
        }
        (_, _) => json!({"message": "error", "name": "application_error"}),
    };
    (AxumStatus::from_u16(status).unwrap(), reply.to_string())
}

struct World {
    app: TestApp,
    _dns: DnsServer,
    fake: FakeProvider,
    source: String,
}

/// A running Herald with a verified sending domain, a campaign that mails on `signed_up`, and
/// `provider` (with its endpoint on the fake) as the workspace's transport.
async fn start(backend: Backend, provider: Value) -> (World, Value) {
    start_with(backend, provider, Vec::new()).await
}

/// [`start`], with these URL prefixes allowed to serve SNS signing certificates.
async fn start_with(backend: Backend, provider: Value, sns_cert_prefixes: Vec<String>) -> (World, Value) {
    let dns = DnsServer::start().await.expect("dns server");
    let settings = EmailSettings { dns_resolver: Some(dns.addr()), sns_cert_prefixes, ..EmailSettings::default() };
    let app = spawn_app_with(backend, settings).await;
    let (fake, url) = FakeProvider::start().await;
    let mut provider = provider;
    provider["endpoint"] = url.into();
    let (status, transport) =
        json(app.request(Method::PUT, "/api/v1/transport/provider").json(&provider).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{transport}");
    let (status, body) = json(app.post("/api/v1/domains", &json!({"name": DOMAIN})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for r in body["records"].as_array().unwrap() {
        dns.set_txt(r["name"].as_str().unwrap(), &[r["value"].as_str().unwrap()]);
    }
    let id = body["id"].as_str().unwrap();
    let (_, body) = json(app.post(&format!("/api/v1/domains/{id}/verify"), &json!({})).await).await;
    assert_eq!(body["status"], "verified", "{body}");
    let campaign = json!({
        "name": "Welcome",
        "trigger": {"type": "event", "event": "signed_up"},
        "steps": [{"id": "welcome", "type": "email", "from": "Acme <news@mail.acme.test>", "reply_to": "help@acme.test",
                   "subject": "Hello {{ first_name }}", "html": "<p>Hi {{ first_name }}</p>"}]
    });
    let (status, body) = json(app.post("/api/v1/campaigns", &campaign).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    let (status, _) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    let source = body["url"].as_str().unwrap().to_owned();
    (World { app, _dns: dns, fake, source }, transport)
}

impl World {
    async fn sign_up(&self, email: &str) {
        let body = json!({"email": email, "event": "signed_up", "data": {"first_name": "Ada"}});
        assert_eq!(self.app.client.post(&self.source).json(&body).send().await.unwrap().status(), StatusCode::OK);
        self.app.run_jobs().await;
    }

    async fn message(&self, email: &str) -> Value {
        let (_, body) = json(self.app.get("/api/v1/messages").await).await;
        body["data"].as_array().unwrap().iter().find(|m| m["to"] == email).unwrap().clone()
    }
}

fn header<'a>(request: &'a Request, name: &str) -> &'a str {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

async fn ses_postmark_and_resend_receive_their_documented_requests(backend: Backend) {
    // Amazon SES v2: the raw message, SigV4-signed.
    let ses = json!({"kind": "ses", "region": "eu-west-1", "access_key_id": "AKIDTEST", "api_key": "ses-secret-key"});
    let (world, transport) = start(backend, ses).await;
    assert_eq!((transport["kind"].as_str(), transport["api_key_set"].as_bool()), (Some("ses"), Some(true)));
    assert!(!transport.to_string().contains("ses-secret-key"), "the key is never returned: {transport}");
    assert!(transport["events_url"].as_str().unwrap().contains("/email-events/ses/"), "{transport}");
    world.sign_up("ada@example.com").await;
    let requests = world.fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/v2/email/outbound-emails");
    let authorization = header(request, "authorization");
    let prefix = "AWS4-HMAC-SHA256 Credential=AKIDTEST/";
    assert!(authorization.starts_with(prefix), "{authorization}");
    assert!(
        authorization.contains("/eu-west-1/ses/aws4_request, SignedHeaders=accept;content-type;host;x-amz-content-sha256;x-amz-date, Signature="),
        "{authorization}"
    );
    assert_eq!(authorization.rsplit('=').next().unwrap().len(), 64, "{authorization}");
    assert!(!header(request, "x-amz-date").is_empty());
    assert_eq!(request.body["FromEmailAddress"], "news@mail.acme.test");
    assert_eq!(request.body["Destination"]["ToAddresses"], json!(["ada@example.com"]));
    let raw = STANDARD.decode(request.body["Content"]["Raw"]["Data"].as_str().unwrap()).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let message = world.message("ada@example.com").await;
    assert!(raw.contains(&format!("Message-ID: <{}>", message["internet_message_id"].as_str().unwrap())), "{raw}");
    assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{raw}");
    assert!(raw.contains("DKIM-Signature:"), "{raw}");
    assert_eq!(request.body["EmailTags"], json!([{"Name": "herald_message", "Value": message["id"]}]));
    assert_eq!(
        (message["status"].as_str(), message["reply"].as_str()),
        (Some("sent"), Some("ses 200 0100018c-ses-id"))
    );
    world.app.stop().await;

    // Postmark: JSON fields, the server token header, our headers and id along.
    let postmark = json!({"kind": "postmark", "message_stream": "outbound", "api_key": "pm-server-token"});
    let (world, transport) = start(backend, postmark).await;
    assert_eq!(transport["provider"]["message_stream"], "outbound");
    world.sign_up("ada@example.com").await;
    let request = world.fake.requests().remove(0);
    let message = world.message("ada@example.com").await;
    assert_eq!(request.path, "/email");
    assert_eq!(header(&request, "x-postmark-server-token"), "pm-server-token");
    assert_eq!(header(&request, "accept"), "application/json");
    assert_eq!(request.body["From"], "Acme <news@mail.acme.test>");
    assert_eq!(
        (request.body["To"].as_str(), request.body["ReplyTo"].as_str()),
        (Some("ada@example.com"), Some("help@acme.test"))
    );
    assert_eq!(request.body["Subject"], "Hello Ada");
    let html = request.body["HtmlBody"].as_str().unwrap();
    assert!(html.contains("Hi Ada") && html.contains("/t/o/"), "the HTML as sent, with its open pixel: {html}");
    assert_eq!(request.body["MessageStream"], "outbound");
    assert_eq!(request.body["Metadata"]["herald_message"], message["id"]);
    let names: Vec<&str> =
        request.body["Headers"].as_array().unwrap().iter().map(|h| h["Name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"]);
    assert_eq!(message["reply"], "postmark 200 b7bc2f4a-e38e-4336-af7d-e6c392c2f817");
    world.app.stop().await;

    // Resend: bearer key, tags, headers, and the Herald id as the idempotency key.
    let resend =
        json!({"kind": "resend", "api_key": "re_test_key", "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
    let (world, transport) = start(backend, resend).await;
    assert_eq!(transport["webhook_secret_set"], true);
    assert!(!transport.to_string().contains("whsec_"), "{transport}");
    world.sign_up("ada@example.com").await;
    let request = world.fake.requests().remove(0);
    let message = world.message("ada@example.com").await;
    assert_eq!(request.path, "/emails");
    assert_eq!(header(&request, "authorization"), "Bearer re_test_key");
    assert_eq!(header(&request, "idempotency-key"), message["id"].as_str().unwrap());
    assert_eq!(request.body["to"], json!(["ada@example.com"]));
    assert_eq!(request.body["tags"], json!([{"name": "herald_message", "value": message["id"]}]));
    assert_eq!(
        request.body["headers"]["Message-ID"],
        format!("<{}>", message["internet_message_id"].as_str().unwrap())
    );
    assert!(request.body["headers"]["List-Unsubscribe"].as_str().unwrap().contains("/unsubscribe/"));
    assert_eq!(message["reply"], "resend 200 49a3999c-0ce1-4ea6-ab68-afcd6dc2e794");
    world.app.stop().await;
}

async fn provider_answers_are_judged_by_status(backend: Backend) {
    let (world, _) = start(backend, json!({"kind": "postmark", "api_key": "pm-token"})).await;
    world.fake.answer_with(503);
    world.sign_up("ada@example.com").await;
    let message = world.message("ada@example.com").await;
    assert_eq!((message["status"].as_str(), message["attempts"].as_u64()), (Some("queued"), Some(1)), "{message}");
    assert!(message["reply"].as_str().unwrap().starts_with("postmark 503"), "{message}");

    world.fake.answer_with(422);
    world.sign_up("bob@example.com").await;
    let message = world.message("bob@example.com").await;
    assert_eq!(message["status"], "failed", "{message}");
    assert!(message["reply"].as_str().unwrap().contains("406"), "{message}");

    // The credentials can be kept across an update, and a provider without a key is refused.
    let (status, body) = json(
        world
            .app
            .request(Method::PUT, "/api/v1/transport/provider")
            .json(&json!({"kind": "postmark"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["api_key_set"].as_bool()), (StatusCode::OK, Some(true)), "{body}");
    let (status, body) = json(
        world
            .app
            .request(Method::PUT, "/api/v1/transport/provider")
            .json(&json!({"kind": "resend"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("api_key")), "{body}");
    world.app.stop().await;
}
