//! An app that sends real mail: a verified `mail.acme.test` (its DNS records served by a real
//! DNS server in process) and a real SMTP sink (Python's aiosmtpd) as the workspace's relay.

use herald_email::testing::dns::DnsServer;
use herald_email::testing::smtp::{SinkOptions, SmtpSink};
use herald_server::delivery::email::EmailSettings;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Backend, TestApp, json, spawn_app_with};

/// The app with what it sends through; the DNS server lives as long as the app.
pub struct World {
    pub app: TestApp,
    _dns: DnsServer,
    pub sink: SmtpSink,
}

/// An app sending through a real SMTP sink from a verified `mail.acme.test`.
pub async fn world(backend: Backend) -> World {
    let dns = DnsServer::start().await.expect("dns server");
    let sink = SmtpSink::start_with(SinkOptions::default()).expect("smtp sink");
    let settings = EmailSettings { dns_resolver: Some(dns.addr()), ..EmailSettings::default() };
    let app = spawn_app_with(backend, settings).await;
    let transport = json!({"host": "127.0.0.1", "port": sink.port(), "security": "none"});
    let (status, body) =
        json(app.request(Method::PUT, "/api/v1/transport").json(&transport).send().await.expect("put")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, domain) = json(app.post("/api/v1/domains", &json!({"name": "mail.acme.test"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{domain}");
    for r in domain["records"].as_array().expect("records") {
        dns.set_txt(r["name"].as_str().expect("name"), &[r["value"].as_str().expect("value")]);
    }
    let id = domain["id"].as_str().expect("id");
    let (_, verified) = json(app.post(&format!("/api/v1/domains/{id}/verify"), &json!({})).await).await;
    assert_eq!(verified["status"], "verified", "{verified}");
    World { app, _dns: dns, sink }
}
