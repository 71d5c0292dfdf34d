//! The webhook client against real HTTP receivers on loopback (axum, in process): what it
//! sends, how it reads answers, and what the address policy stops before any connection.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use herald_webhook::client::{
    ALLOW_CIDRS_SETTING, Attempt, ClientSettings, DEFAULT_TIMEOUT, OutboundRequest, WebhookClient,
};
use herald_webhook::policy::AddressPolicy;
use herald_webhook::retry::AttemptOutcome;

/// A request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(
    State(receiver): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    receiver.seen.lock().unwrap().push(Seen { method, path: path.clone(), headers, body });
    match path.as_str() {
        "/ok" => ([(header::CONTENT_TYPE, "application/json")], r#"{"ok":true,"id":42}"#).into_response(),
        "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "database on fire").into_response(),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
        "/redirect" => (StatusCode::FOUND, [(header::LOCATION, "/ok")]).into_response(),
        "/gone" => StatusCode::GONE.into_response(),
        "/big" => vec![b'x'; 200 * 1024].into_response(),
        "/exact" => vec![b'y'; 64 * 1024].into_response(),
        "/busy" => (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "7")]).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn spawn_receiver() -> (SocketAddr, Receiver) {
    let receiver = Receiver::default();
    let app = Router::new().fallback(any(handle)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, receiver)
}

/// Settings for tests: loopback allowed (both families, so `localhost` works), http allowed.
fn loopback_settings() -> ClientSettings {
    ClientSettings {
        policy: AddressPolicy::from_allow_list("127.0.0.0/8, ::1").unwrap(),
        allow_http: true,
        ..ClientSettings::default()
    }
}

fn loopback_client() -> WebhookClient {
    WebhookClient::new(loopback_settings()).unwrap()
}

fn default_policy_client(allow_http: bool) -> WebhookClient {
    WebhookClient::new(ClientSettings { allow_http, ..ClientSettings::default() }).unwrap()
}

fn post(url: impl Into<String>) -> OutboundRequest {
    OutboundRequest {
        method: Method::POST,
        url: url.into(),
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: br#"{"event":"signed_up"}"#.to_vec(),
        timeout: DEFAULT_TIMEOUT,
        basic_auth: None,
    }
}

fn status(attempt: &Attempt) -> Option<(u16, Option<Duration>)> {
    match attempt.outcome {
        AttemptOutcome::Status { code, retry_after } => Some((code, retry_after)),
        _ => None,
    }
}

#[tokio::test]
async fn success_captures_status_headers_and_body() {
    let (addr, receiver) = spawn_receiver().await;
    let mut req = post(format!("http://{addr}/ok"));
    req.headers.push(("webhook-id".to_owned(), "msg_1".to_owned()));
    req.headers.push(("X-Custom".to_owned(), "one".to_owned()));
    req.headers.push(("X-Custom".to_owned(), "two".to_owned()));
    req.basic_auth = Some(("ada".to_owned(), "s3cret".to_owned()));

    let attempt = loopback_client().send(&req).await;

    assert_eq!(status(&attempt), Some((200, None)), "{attempt:?}");
    assert_eq!(attempt.status, Some(200));
    assert_eq!(attempt.body, br#"{"ok":true,"id":42}"#);
    assert!(!attempt.truncated);
    assert_eq!(attempt.error, None);
    assert!(attempt.response_headers.contains(&("content-type".to_owned(), "application/json".to_owned())));
    assert!(attempt.latency > Duration::ZERO && attempt.latency < Duration::from_secs(4));

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.body.as_ref(), br#"{"event":"signed_up"}"#);
    assert_eq!(seen.headers["webhook-id"], "msg_1");
    assert_eq!(seen.headers.get_all("x-custom").iter().collect::<Vec<_>>(), ["one", "two"]);
    // "ada:s3cret" in base64.
    assert_eq!(seen.headers[header::AUTHORIZATION], "Basic YWRhOnMzY3JldA==");
    assert!(seen.headers[header::USER_AGENT].to_str().unwrap().starts_with("Herald/"));

    // The password never shows in Debug.
    assert!(!format!("{req:?}").contains("s3cret"));
}

#[tokio::test]
async fn every_method_reaches_the_receiver() {
    let (addr, receiver) = spawn_receiver().await;
    let client = loopback_client();
    for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let mut req = post(format!("http://{addr}/ok?x=1"));
        req.method = method.clone();
        if method == Method::GET {
            req.body.clear();
        }
        let attempt = client.send(&req).await;
        assert_eq!(attempt.status, Some(200), "{method}");
    }
    let methods: Vec<Method> = receiver.seen().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE]);
    assert!(receiver.seen()[0].body.is_empty());
}

#[tokio::test]
async fn server_error_and_gone_are_statuses() {
    let (addr, _receiver) = spawn_receiver().await;
    let client = loopback_client();

    let attempt = client.send(&post(format!("http://{addr}/fail"))).await;
    assert_eq!(status(&attempt), Some((500, None)));
    assert_eq!(attempt.body, b"database on fire");
    assert_eq!(attempt.error, None);

    let attempt = client.send(&post(format!("http://{addr}/gone"))).await;
    assert_eq!(status(&attempt), Some((410, None)));
}

#[tokio::test]
async fn a_hanging_receiver_times_out_on_time() {
    let (addr, receiver) = spawn_receiver().await;
    let mut req = post(format!("http://{addr}/hang"));
    req.timeout = Duration::from_millis(300);

    let attempt = loopback_client().send(&req).await;

    assert_eq!(attempt.outcome, AttemptOutcome::Timeout, "{attempt:?}");
    assert_eq!(attempt.status, None);
    assert_eq!(attempt.error.as_deref(), Some("timed out after 300 ms"));
    assert!(attempt.latency >= Duration::from_millis(300), "{:?}", attempt.latency);
    assert!(attempt.latency < Duration::from_secs(3), "{:?}", attempt.latency);
    assert_eq!(receiver.seen().len(), 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (addr, receiver) = spawn_receiver().await;

    let attempt = loopback_client().send(&post(format!("http://{addr}/redirect"))).await;

    assert_eq!(status(&attempt), Some((302, None)));
    assert!(attempt.response_headers.contains(&("location".to_owned(), "/ok".to_owned())));
    let paths: Vec<String> = receiver.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/redirect"]);
}

#[tokio::test]
async fn response_bodies_are_capped() {
    let (addr, _receiver) = spawn_receiver().await;
    let client = loopback_client();

    let attempt = client.send(&post(format!("http://{addr}/big"))).await;
    assert_eq!(attempt.status, Some(200));
    assert_eq!(attempt.body.len(), 64 * 1024);
    assert!(attempt.truncated);
    assert_eq!(attempt.error, None);

    let attempt = client.send(&post(format!("http://{addr}/exact"))).await;
    assert_eq!(attempt.body.len(), 64 * 1024);
    assert!(!attempt.truncated);

    let small = WebhookClient::new(ClientSettings { max_response_body: 10, ..loopback_settings() }).unwrap();
    let attempt = small.send(&post(format!("http://{addr}/ok"))).await;
    assert_eq!(attempt.body, br#"{"ok":true"#);
    assert!(attempt.truncated);
}

#[tokio::test]
async fn retry_after_is_parsed() {
    let (addr, _receiver) = spawn_receiver().await;
    let attempt = loopback_client().send(&post(format!("http://{addr}/busy"))).await;
    assert_eq!(status(&attempt), Some((503, Some(Duration::from_secs(7)))));
}

#[tokio::test]
async fn the_default_policy_refuses_loopback_before_connecting() {
    let (addr, receiver) = spawn_receiver().await;
    let client = default_policy_client(true);

    let attempt = client.send(&post(format!("http://{addr}/ok"))).await;
    assert_eq!(attempt.outcome, AttemptOutcome::Refused, "{attempt:?}");
    assert_eq!(attempt.status, None);
    assert_eq!(
        attempt.error.as_deref(),
        Some(format!("address 127.0.0.1 is loopback (127.0.0.0/8); allow it with {ALLOW_CIDRS_SETTING}").as_str())
    );

    // IPv4-mapped, and an integer spelling the URL parser turns into 127.0.0.1.
    for url in
        [format!("http://[::ffff:127.0.0.1]:{}/ok", addr.port()), format!("http://2130706433:{}/ok", addr.port())]
    {
        let attempt = client.send(&post(url.clone())).await;
        assert_eq!(attempt.outcome, AttemptOutcome::Refused, "{url}: {attempt:?}");
    }
    assert!(receiver.seen().is_empty());
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_by_the_resolver() {
    let (addr, receiver) = spawn_receiver().await;

    let attempt = default_policy_client(true).send(&post(format!("http://localhost:{}/ok", addr.port()))).await;

    assert_eq!(attempt.outcome, AttemptOutcome::Refused, "{attempt:?}");
    let error = attempt.error.unwrap();
    assert!(error.starts_with("localhost resolves to address "), "{error}");
    assert!(error.contains("loopback") && error.contains(ALLOW_CIDRS_SETTING), "{error}");
    assert!(receiver.seen().is_empty());

    // Allowed, the same name goes through the same resolver and connects.
    let attempt = loopback_client().send(&post(format!("http://localhost:{}/ok", addr.port()))).await;
    assert_eq!(attempt.status, Some(200), "{attempt:?}");
    assert_eq!(receiver.seen().len(), 1);
}

#[tokio::test]
async fn metadata_and_private_addresses_are_refused_without_connecting() {
    let client = default_policy_client(true);
    let cases = [
        ("http://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is a cloud metadata service"),
        ("http://10.0.0.1/", "address 10.0.0.1 is private (10.0.0.0/8)"),
        ("https://10.0.0.1:8443/hook", "address 10.0.0.1 is private (10.0.0.0/8)"),
        ("http://[fd00:ec2::254]/", "address fd00:ec2::254 is a cloud metadata service"),
        ("http://[::1]:9/", "address ::1 is loopback"),
        ("http://0.0.0.0:9/", "address 0.0.0.0 is unspecified"),
    ];
    for (url, error) in cases {
        // A connection attempt to an unroutable address would take the whole timeout.
        let mut req = post(url);
        req.timeout = Duration::from_secs(30);
        let attempt = client.send(&req).await;
        assert_eq!(attempt.outcome, AttemptOutcome::Refused, "{url}");
        assert!(attempt.error.as_deref().unwrap().starts_with(error), "{url}: {:?}", attempt.error);
        assert!(attempt.latency < Duration::from_secs(1), "{url}: {:?}", attempt.latency);
    }
}

#[tokio::test]
async fn plain_http_is_refused_unless_allowed() {
    let (addr, receiver) = spawn_receiver().await;
    let client = WebhookClient::new(ClientSettings {
        policy: AddressPolicy::from_allow_list("127.0.0.0/8").unwrap(),
        allow_http: false,
        ..ClientSettings::default()
    })
    .unwrap();

    let attempt = client.send(&post(format!("http://{addr}/ok"))).await;

    assert_eq!(attempt.outcome, AttemptOutcome::Refused);
    assert!(attempt.error.unwrap().starts_with("plain http:// is not allowed"));
    assert!(receiver.seen().is_empty());
}

#[tokio::test]
async fn connection_refused_is_a_connect_failure() {
    // A port that was just free: nothing listens there now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let attempt = loopback_client().send(&post(format!("http://{addr}/ok"))).await;

    assert_eq!(attempt.outcome, AttemptOutcome::Connect, "{attempt:?}");
    assert_eq!(attempt.error.as_deref(), Some("connection refused"));
}

#[tokio::test]
async fn malformed_requests_are_invalid() {
    let client = loopback_client();
    let cases = [
        ("not a url", vec![], "invalid URL"),
        ("ftp://example.com/", vec![], "unsupported URL scheme ftp:"),
        ("http://127.0.0.1:9/", vec![("bad name".to_owned(), "v".to_owned())], "invalid header name"),
        ("http://127.0.0.1:9/", vec![("x-ok".to_owned(), "line\nbreak".to_owned())], "invalid value for header x-ok"),
    ];
    for (url, headers, error) in cases {
        let mut req = post(url);
        req.headers = headers;
        let attempt = client.send(&req).await;
        assert_eq!(attempt.outcome, AttemptOutcome::Invalid, "{url}");
        assert!(attempt.error.as_deref().unwrap().starts_with(error), "{url}: {:?}", attempt.error);
    }
}
