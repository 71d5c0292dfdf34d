//! DNS verification against a real DNS server on loopback: what users publish, what they get
//! wrong, and a server that fails or never answers.
#![cfg(feature = "test-support")]
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use herald_email::dns::{
    CheckStatus, DnsRecord, DnsVerifier, RecordCheck, RecordPurpose, RecordsSpec, records, verified,
};
use herald_email::testing::dns::DnsServer;

const DOMAIN: &str = "example.com";
const DKIM_NAME: &str = "herald1._domainkey.example.com";
const SPF: &str = "include:_spf.herald.test";

/// A DKIM record as long as an RSA-2048 one (about 400 characters), so DNS splits it.
fn dkim_txt(seed: char) -> String {
    let key: String = std::iter::repeat_n(seed, 360).collect();
    format!("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA{key}IDAQAB")
}

fn spec(dkim: &str) -> Vec<DnsRecord> {
    records(&RecordsSpec {
        domain: DOMAIN,
        selector: "herald1",
        dkim_txt: dkim,
        spf: Some(SPF),
        return_path: Some(("bounces", "rp.herald.test")),
        dmarc_rua: None,
    })
}

/// A server holding every record as Herald asks.
async fn correct_server(dkim: &str) -> DnsServer {
    let server = DnsServer::start().await.unwrap();
    server.set_txt(DKIM_NAME, &[dkim]);
    server.set_txt(DOMAIN, &["google-site-verification=abc", &format!("v=spf1 mx {SPF} ~all")]);
    server.set_txt("_dmarc.example.com", &["v=DMARC1; p=quarantine"]);
    server.set_cname("bounces.example.com", "rp.herald.test");
    server
}

fn verifier(server: &DnsServer) -> DnsVerifier {
    DnsVerifier::new(Some(server.addr()), Duration::from_secs(2)).unwrap()
}

fn by(checks: &[RecordCheck], purpose: RecordPurpose) -> &RecordCheck {
    checks.iter().find(|check| check.purpose == purpose).unwrap()
}

#[tokio::test]
async fn a_domain_with_every_record_right_is_verified() {
    let dkim = dkim_txt('A');
    let server = correct_server(&dkim).await;
    let checks = verifier(&server).check(&spec(&dkim)).await;

    let statuses: Vec<_> = checks.iter().map(|check| (check.purpose, check.status)).collect();
    assert_eq!(
        statuses,
        [
            (RecordPurpose::Dkim, CheckStatus::Matching),
            (RecordPurpose::Spf, CheckStatus::Matching),
            (RecordPurpose::Dmarc, CheckStatus::Matching),
            (RecordPurpose::ReturnPath, CheckStatus::Matching),
        ]
    );
    assert!(verified(&checks));
    // The key was served as two character-strings and read back whole.
    assert!(dkim.len() > 255);
    assert_eq!(by(&checks, RecordPurpose::Dkim).found, [dkim]);
    assert_eq!(by(&checks, RecordPurpose::Spf).found, [format!("v=spf1 mx {SPF} ~all")]);
    assert_eq!(by(&checks, RecordPurpose::ReturnPath).found, ["rp.herald.test"]);
}

#[tokio::test]
async fn a_wrong_dkim_key_is_a_mismatch_naming_what_was_found() {
    let server = correct_server(&dkim_txt('A')).await;
    let wrong = dkim_txt('B');
    server.set_txt(DKIM_NAME, &[&wrong]);

    let checks = verifier(&server).check(&spec(&dkim_txt('A'))).await;
    let dkim = by(&checks, RecordPurpose::Dkim);
    assert_eq!(dkim.status, CheckStatus::Mismatch);
    assert_eq!(dkim.found, [wrong]);
    assert_eq!(dkim.detail, "TXT record found, but its p= key differs from this domain's key.");
    assert!(!verified(&checks));
}

#[tokio::test]
async fn a_missing_dkim_record_is_missing_and_not_verified() {
    let dkim = dkim_txt('A');
    let server = correct_server(&dkim).await;
    server.remove(DKIM_NAME);

    let checks = verifier(&server).check(&spec(&dkim)).await;
    let check = by(&checks, RecordPurpose::Dkim);
    assert_eq!(check.status, CheckStatus::Missing);
    assert!(check.found.is_empty());
    assert!(check.detail.contains("does not exist"), "{}", check.detail);
    assert!(!verified(&checks));

    // The name exists (it has another type of record) but holds no TXT record.
    server.set_cname(DKIM_NAME, "nowhere.herald.test");
    let checks = verifier(&server).check(&spec(&dkim)).await;
    assert_eq!(by(&checks, RecordPurpose::Dkim).status, CheckStatus::Missing);
}

#[tokio::test]
async fn a_dkim_key_delegated_by_cname_is_followed() {
    let dkim = dkim_txt('A');
    let server = correct_server(&dkim).await;
    server.set_cname(DKIM_NAME, "herald1.dkim.provider.test");
    server.set_txt("herald1.dkim.provider.test", &[&dkim]);

    let checks = verifier(&server).check(&spec(&dkim)).await;
    assert_eq!(by(&checks, RecordPurpose::Dkim).status, CheckStatus::Matching);
}

#[tokio::test]
async fn two_spf_records_are_a_mismatch() {
    let dkim = dkim_txt('A');
    let server = correct_server(&dkim).await;
    server.set_txt(DOMAIN, &[format!("v=spf1 {SPF} ~all"), "v=spf1 include:other.test -all".to_owned()]);

    let checks = verifier(&server).check(&spec(&dkim)).await;
    let spf = by(&checks, RecordPurpose::Spf);
    assert_eq!(spf.status, CheckStatus::Mismatch);
    assert_eq!(spf.found.len(), 2);
    assert!(spf.detail.contains("permerror"), "{}", spf.detail);
    assert!(!verified(&checks));
}

#[tokio::test]
async fn spf_without_the_configured_mechanism_is_a_mismatch() {
    let dkim = dkim_txt('A');
    let server = correct_server(&dkim).await;
    server.set_txt(DOMAIN, &["v=spf1 mx -all"]);

    let checks = verifier(&server).check(&spec(&dkim)).await;
    let spf = by(&checks, RecordPurpose::Spf);
    assert_eq!(spf.status, CheckStatus::Mismatch);
    assert_eq!(spf.found, ["v=spf1 mx -all"]);
    assert!(spf.detail.contains(SPF), "{}", spf.detail);
    assert!(!verified(&checks));
}

#[tokio::test]
async fn missing_dmarc_is_reported_but_not_required() {
    let dkim = dkim_txt('A');
    let server = correct_server(&dkim).await;
    server.remove("_dmarc.example.com");

    let checks = verifier(&server).check(&spec(&dkim)).await;
    assert_eq!(by(&checks, RecordPurpose::Dmarc).status, CheckStatus::Missing);
    assert!(verified(&checks));
}

#[tokio::test]
async fn return_path_cname_right_and_wrong() {
    let dkim = dkim_txt('A');
    let server = correct_server(&dkim).await;
    server.set_cname("bounces.example.com", "RP.Herald.Test.");
    let checks = verifier(&server).check(&spec(&dkim)).await;
    assert_eq!(by(&checks, RecordPurpose::ReturnPath).status, CheckStatus::Matching);

    server.set_cname("bounces.example.com", "bounces.elsewhere.test");
    let checks = verifier(&server).check(&spec(&dkim)).await;
    let cname = by(&checks, RecordPurpose::ReturnPath);
    assert_eq!(cname.status, CheckStatus::Mismatch);
    assert_eq!(cname.found, ["bounces.elsewhere.test"]);
    assert_eq!(cname.detail, "CNAME record points to bounces.elsewhere.test instead of rp.herald.test.");
    assert!(verified(&checks), "the return path is not required");
}

#[tokio::test]
async fn a_change_is_seen_by_the_next_check() {
    let dkim = dkim_txt('A');
    let server = correct_server(&dkim).await;
    server.set_txt(DKIM_NAME, &[dkim_txt('B')]);
    server.remove("_dmarc.example.com");
    let verifier = verifier(&server);

    let first = verifier.check(&spec(&dkim)).await;
    assert_eq!(by(&first, RecordPurpose::Dkim).status, CheckStatus::Mismatch);
    assert_eq!(by(&first, RecordPurpose::Dmarc).status, CheckStatus::Missing);

    // The server's answers carry an hour's TTL: only a resolver without a cache sees the fix.
    server.set_txt(DKIM_NAME, &[&dkim]);
    server.set_txt("_dmarc.example.com", &["v=DMARC1; p=none"]);
    let second = verifier.check(&spec(&dkim)).await;
    assert_eq!(by(&second, RecordPurpose::Dkim).status, CheckStatus::Matching);
    assert_eq!(by(&second, RecordPurpose::Dmarc).status, CheckStatus::Matching);
    assert!(verified(&second));

    server.remove(DKIM_NAME);
    let third = verifier.check(&spec(&dkim)).await;
    assert_eq!(by(&third, RecordPurpose::Dkim).status, CheckStatus::Missing);
}

#[tokio::test]
async fn an_answer_too_big_for_udp_comes_over_tcp() {
    let dkim = dkim_txt('A');
    let server = correct_server(&dkim).await;
    // Far beyond the 1232 bytes a UDP answer may carry: the server truncates, the resolver asks
    // again over TCP.
    let mut apex: Vec<String> = ('a'..='f').map(|c| format!("verification={}", c.to_string().repeat(400))).collect();
    apex.push(format!("v=spf1 {SPF} -all"));
    server.set_txt(DOMAIN, &apex);

    let checks = verifier(&server).check(&spec(&dkim)).await;
    let spf = by(&checks, RecordPurpose::Spf);
    assert_eq!(spf.status, CheckStatus::Matching, "{}", spf.detail);
    assert_eq!(spf.found, [format!("v=spf1 {SPF} -all")]);
}

#[tokio::test]
async fn servfail_is_an_error_not_a_missing_record() {
    let dkim = dkim_txt('A');
    let server = correct_server(&dkim).await;
    server.set_servfail(DKIM_NAME);

    let checks = verifier(&server).check(&spec(&dkim)).await;
    let check = by(&checks, RecordPurpose::Dkim);
    assert_eq!(check.status, CheckStatus::Error);
    assert!(check.detail.contains("SERVFAIL"), "{}", check.detail);
    assert!(check.detail.contains("temporary"), "{}", check.detail);
    assert!(!verified(&checks));
}

#[tokio::test]
async fn a_server_that_never_answers_is_an_error_within_the_timeout() {
    // Bound, so datagrams are not refused, but nothing ever reads or answers them.
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let timeout = Duration::from_millis(400);
    let verifier = DnsVerifier::new(Some(silent.local_addr().unwrap()), timeout).unwrap();

    let started = Instant::now();
    let checks = verifier.check(&spec(&dkim_txt('A'))).await;
    let elapsed = started.elapsed();

    assert_eq!(checks.len(), 4);
    for check in &checks {
        assert_eq!(check.status, CheckStatus::Error, "{check:?}");
        assert!(check.detail.contains("temporary"), "{}", check.detail);
    }
    assert!(!verified(&checks));
    // The lookups run concurrently, each bounded by the timeout.
    assert!(elapsed < timeout * 2, "took {elapsed:?}");
}

#[test]
fn the_system_resolver_configuration_is_read() {
    // `None` reads /etc/resolv.conf (hickory-resolver's `system-config` feature); no query is sent.
    assert!(DnsVerifier::new(None, Duration::from_secs(1)).is_ok());
}
