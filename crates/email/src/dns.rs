//! The DNS records a sending domain publishes (DKIM, SPF, DMARC, a return-path CNAME) and their
//! verification against a live resolver.
//!
//! [`records`] says what to publish; [`DnsVerifier::check`] looks every record up at once and
//! compares what is there with what is expected (the comparison, `evaluate`, is pure, so the
//! matching rules are tested as a table below); [`verified`] is the domain's status. The resolver
//! keeps no cache: a user who has just fixed a record and asks again must see the fix, not an
//! answer remembered from the previous check.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as ResponseError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType as QueryType};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

/// What a record is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordPurpose {
    Dkim,
    Spf,
    Dmarc,
    ReturnPath,
}

/// The DNS record types Herald asks users to publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    Txt,
    Cname,
}

impl RecordType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Txt => "TXT",
            Self::Cname => "CNAME",
        }
    }
}

/// One record the user publishes: `name` is a fully qualified name without the final dot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub purpose: RecordPurpose,
    pub name: String,
    pub record_type: RecordType,
    pub value: String,
    /// Whether the domain counts as verified only when this record matches.
    pub required: bool,
}

/// What [`records`] needs to know about a sending domain.
#[derive(Clone, Copy, Debug)]
pub struct RecordsSpec<'a> {
    /// Normalized by [`normalize_domain`].
    pub domain: &'a str,
    /// Checked by [`check_selector`].
    pub selector: &'a str,
    /// The DKIM key record, such as `v=DKIM1; k=rsa; p=MIIBIj…`.
    pub dkim_txt: &'a str,
    /// The SPF mechanism the operator configured for Herald's sending servers, such as
    /// `include:_spf.mail.example.net` or `ip4:203.0.113.7`; `None` when Herald does not know them.
    pub spf: Option<&'a str>,
    /// The return-path label and the CNAME target it points to, such as `("bounces", "rp.example.net")`.
    pub return_path: Option<(&'a str, &'a str)>,
    /// Where DMARC aggregate reports go: an address, or a `mailto:` URI.
    pub dmarc_rua: Option<&'a str>,
}

/// The records a sending domain publishes, DKIM first.
///
/// - DKIM: a TXT record at `<selector>._domainkey.<domain>`, required: without it nothing Herald
///   signs verifies.
/// - SPF: a TXT record at the domain, `v=spf1 <mechanism> ~all`. Required only when the operator
///   configured a mechanism: otherwise Herald cannot know which servers send its mail, so it
///   suggests `v=spf1 mx ~all` and only reports whether an SPF record is there.
/// - DMARC: `v=DMARC1; p=none;` at `_dmarc.<domain>`, a suggestion (not required), since a domain's
///   DMARC policy is its owner's decision and covers all of its mail, not only Herald's.
/// - Return path: a CNAME from `<label>.<domain>` to the configured target, not required, when
///   configured.
pub fn records(spec: &RecordsSpec<'_>) -> Vec<DnsRecord> {
    let domain = spec.domain;
    let dmarc = match spec.dmarc_rua {
        Some(rua) if rua.starts_with("mailto:") => format!("v=DMARC1; p=none; rua={rua}"),
        Some(rua) => format!("v=DMARC1; p=none; rua=mailto:{rua}"),
        None => "v=DMARC1; p=none;".to_owned(),
    };
    let mut records = vec![
        DnsRecord {
            purpose: RecordPurpose::Dkim,
            name: format!("{}._domainkey.{domain}", spec.selector),
            record_type: RecordType::Txt,
            value: spec.dkim_txt.to_owned(),
            required: true,
        },
        DnsRecord {
            purpose: RecordPurpose::Spf,
            name: domain.to_owned(),
            record_type: RecordType::Txt,
            value: format!("v=spf1 {} ~all", spec.spf.unwrap_or("mx")),
            required: spec.spf.is_some(),
        },
        DnsRecord {
            purpose: RecordPurpose::Dmarc,
            name: format!("_dmarc.{domain}"),
            record_type: RecordType::Txt,
            value: dmarc,
            required: false,
        },
    ];
    if let Some((label, target)) = spec.return_path {
        records.push(DnsRecord {
            purpose: RecordPurpose::ReturnPath,
            name: format!("{label}.{domain}"),
            record_type: RecordType::Cname,
            value: target.trim_end_matches('.').to_ascii_lowercase(),
            required: false,
        });
    }
    records
}

/// Why a domain name or a selector was refused, worded for the user who typed it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("looks like {what}; give the bare domain name, such as example.com")]
    NotBare { what: &'static str },
    #[error("is {length} characters long; at most {max} are allowed")]
    TooLong { length: usize, max: usize },
    #[error("has an empty label (two dots in a row, or a dot at the start)")]
    EmptyLabel,
    #[error("has a label longer than 63 characters (\"{label}\")")]
    LabelTooLong { label: String },
    #[error("contains {character:?}; only letters, digits, hyphens and dots are allowed")]
    InvalidCharacter { character: char },
    #[error("has a label that starts or ends with a hyphen (\"{label}\")")]
    HyphenAtEdge { label: String },
    #[error("needs at least two labels, such as example.com")]
    SingleLabel,
    #[error("ends in a number, so it is an IP address or no domain at all")]
    NumericTopLevel,
    #[error("is not a valid internationalized domain name")]
    InvalidUnicode,
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The message is shown to API users as the field's error.
    #[error("the domain name {0}")]
    InvalidDomain(NameError),
    #[error("the DKIM selector {0}")]
    InvalidSelector(NameError),
    #[error("cannot set up the DNS resolver")]
    Resolver(#[source] NetError),
}

/// A sending domain as Herald stores it: ASCII (Unicode converted to punycode), lower case, no
/// final dot, at least two labels of letters, digits and inner hyphens, within DNS's limits.
pub fn normalize_domain(input: &str) -> Result<String, DnsError> {
    let input = input.trim();
    let input = input.strip_suffix('.').unwrap_or(input);
    if input.contains("://") {
        return Err(DnsError::InvalidDomain(NameError::NotBare { what: "a URL" }));
    }
    if input.contains('@') {
        return Err(DnsError::InvalidDomain(NameError::NotBare { what: "an email address" }));
    }
    let ascii = if input.is_ascii() {
        input.to_ascii_lowercase()
    } else {
        // UTS 46 (what browsers do): maps case and look-alike dots, then punycodes each label.
        idna::domain_to_ascii_cow(input.as_bytes(), idna::AsciiDenyList::EMPTY)
            .map_err(|_| DnsError::InvalidDomain(NameError::InvalidUnicode))?
            .into_owned()
    };
    check_labels(&ascii, 253).map_err(DnsError::InvalidDomain)?;
    if !ascii.contains('.') {
        return Err(DnsError::InvalidDomain(NameError::SingleLabel));
    }
    if ascii.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err(DnsError::InvalidDomain(NameError::NumericTopLevel));
    }
    Ok(ascii)
}

/// A DKIM selector is one or more DNS labels (RFC 6376 §3.1) placed before `._domainkey.`; kept
/// to 63 characters so the record's name stays within DNS's limit for any reasonable domain.
pub fn check_selector(selector: &str) -> Result<(), DnsError> {
    check_labels(selector, 63).map_err(DnsError::InvalidSelector)
}

/// Letters, digits and hyphens (not at either end of a label), labels of 1 to 63 characters.
fn check_labels(name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some(character) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.')) {
        return Err(NameError::InvalidCharacter { character });
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(NameError::LabelTooLong { label: label.to_owned() });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::HyphenAtEdge { label: label.to_owned() });
        }
    }
    if name.len() > max {
        return Err(NameError::TooLong { length: name.len(), max });
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The record is there and says what it should.
    Matching,
    /// A record is there, but it says something else.
    Mismatch,
    /// No such record.
    Missing,
    /// The lookup failed (a timeout, SERVFAIL): probably transient, so check again later.
    Error,
}

/// The outcome of looking one record up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCheck {
    pub purpose: RecordPurpose,
    pub name: String,
    pub record_type: RecordType,
    pub required: bool,
    pub status: CheckStatus,
    pub expected: String,
    /// What DNS holds at the name (TXT strings joined, CNAME targets without the final dot); for
    /// SPF only the `v=spf1` records, since the domain's other TXT records serve other purposes.
    pub found: Vec<String>,
    /// One sentence for the user.
    pub detail: String,
}

/// A domain is verified when every required record matches.
pub fn verified(checks: &[RecordCheck]) -> bool {
    checks.iter().filter(|check| check.required).all(|check| check.status == CheckStatus::Matching)
}

/// Looks records up through one resolver, without caching.
#[derive(Clone, Debug)]
pub struct DnsVerifier {
    resolver: TokioResolver,
    timeout: Duration,
}

impl DnsVerifier {
    /// `nameserver`: `None` uses the system's resolvers (`/etc/resolv.conf`); `Some` asks that server
    /// only, over UDP with TCP when an answer is truncated. `timeout` bounds each record's lookup,
    /// retry included, so a server that never answers yields [`CheckStatus::Error`] in that time.
    pub fn new(nameserver: Option<SocketAddr>, timeout: Duration) -> Result<Self, DnsError> {
        let provider = TokioRuntimeProvider::new();
        let mut builder = match nameserver {
            None => TokioResolver::builder(provider).map_err(DnsError::Resolver)?,
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                TokioResolver::builder_with_config(ResolverConfig::from_name_servers(vec![server]), provider)
            }
        };
        let options = builder.options_mut();
        // Two tries (one retry, for a lost UDP datagram) fit in the budget.
        options.timeout = timeout / 2;
        options.attempts = 1;
        // No cache: a zero-sized one, and every answer expires the moment it arrives.
        options.cache_size = 0;
        options.positive_max_ttl = Some(Duration::ZERO);
        options.negative_max_ttl = Some(Duration::ZERO);
        options.use_hosts_file = ResolveHosts::Never;
        let resolver = builder.build().map_err(DnsError::Resolver)?;
        Ok(Self { resolver, timeout })
    }

    /// Looks every record up concurrently; the checks come back in the records' order.
    pub async fn check(&self, records: &[DnsRecord]) -> Vec<RecordCheck> {
        let mut lookups = JoinSet::new();
        for (index, record) in records.iter().enumerate() {
            let lookup = lookup(self.resolver.clone(), self.timeout, record.name.clone(), record.record_type);
            lookups.spawn(async move { (index, lookup.await) });
        }
        let mut answers: Vec<Option<Answer>> = vec![None; records.len()];
        while let Some(joined) = lookups.join_next().await {
            match joined {
                Ok((index, answer)) => answers[index] = Some(answer),
                Err(error) => tracing::error!(%error, "a DNS lookup task failed"),
            }
        }
        records
            .iter()
            .zip(answers)
            .map(|(record, answer)| {
                evaluate(record, answer.unwrap_or_else(|| Answer::Failed("the lookup was interrupted".to_owned())))
            })
            .collect()
    }
}

/// What a lookup returned, before it is compared with what is expected.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    /// TXT: each record's character-strings joined; CNAME: the target without the final dot.
    Found(Vec<String>),
    /// NXDOMAIN.
    NoName,
    /// The name exists without a record of this type.
    NoData,
    /// Why the lookup failed.
    Failed(String),
}

async fn lookup(resolver: TokioResolver, timeout: Duration, name: String, record_type: RecordType) -> Answer {
    let Ok(mut fqdn) = Name::from_ascii(&name) else {
        return Answer::Failed(format!("{name} is not a valid DNS name"));
    };
    // Absolute, so that no search domain from resolv.conf is tried.
    fqdn.set_fqdn(true);
    let query_type = match record_type {
        RecordType::Txt => QueryType::TXT,
        RecordType::Cname => QueryType::CNAME,
    };
    let lookup = match tokio::time::timeout(timeout, resolver.lookup(fqdn, query_type)).await {
        Ok(Ok(lookup)) => lookup,
        Ok(Err(error)) => return failure(&error, timeout),
        Err(_) => return Answer::Failed(format!("the DNS server did not answer within {timeout:?}")),
    };
    // A TXT lookup follows CNAMEs (a DKIM key delegated to a provider), so keep only the answers
    // of the type asked for.
    let values: Vec<String> = lookup
        .answers()
        .iter()
        .filter_map(|answer| match (&answer.data, record_type) {
            (RData::TXT(txt), RecordType::Txt) => {
                // Strings longer than 255 bytes are published as several character-strings of one
                // record; the value is their concatenation (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
                let bytes: Vec<u8> = txt.txt_data.iter().flat_map(|part| part.iter().copied()).collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            (RData::CNAME(target), RecordType::Cname) => Some(target.0.to_ascii().trim_end_matches('.').to_owned()),
            _ => None,
        })
        .collect();
    if values.is_empty() { Answer::NoData } else { Answer::Found(values) }
}

/// NXDOMAIN and "no records" are answers; everything else (a timeout, SERVFAIL, REFUSED, a network
/// error) says nothing about the record and may pass.
fn failure(error: &NetError, timeout: Duration) -> Answer {
    let code = match error {
        NetError::Dns(ResponseError::NoRecordsFound(no_records)) => match no_records.response_code {
            ResponseCode::NXDomain => return Answer::NoName,
            ResponseCode::NoError => return Answer::NoData,
            code => code,
        },
        NetError::Dns(ResponseError::ResponseCode(code)) => *code,
        NetError::Timeout => return Answer::Failed(format!("the DNS server did not answer within {timeout:?}")),
        other => return Answer::Failed(other.to_string()),
    };
    Answer::Failed(match code {
        ResponseCode::ServFail => "the DNS server answered SERVFAIL (it could not get an answer)".to_owned(),
        ResponseCode::Refused => "the DNS server refused the query".to_owned(),
        code => format!("the DNS server answered {code}"),
    })
}

/// Compares what a lookup found with what the record should say.
fn evaluate(record: &DnsRecord, answer: Answer) -> RecordCheck {
    let kind = record.record_type.as_str();
    let (status, found, detail) = match answer {
        Answer::Failed(reason) => (
            CheckStatus::Error,
            Vec::new(),
            format!("The DNS lookup failed: {reason}. This is usually temporary; check again in a few minutes."),
        ),
        Answer::NoName => {
            (CheckStatus::Missing, Vec::new(), format!("No {kind} record: {} does not exist in DNS.", record.name))
        }
        Answer::NoData => (CheckStatus::Missing, Vec::new(), format!("No {kind} record at {}.", record.name)),
        Answer::Found(found) => match (record.record_type, record.purpose) {
            (RecordType::Cname, _) => cname(&record.value, found),
            (RecordType::Txt, RecordPurpose::Dkim) => dkim(&record.value, found),
            (RecordType::Txt, RecordPurpose::Spf) => spf(record, found),
            (RecordType::Txt, RecordPurpose::Dmarc) => dmarc(&record.name, found),
            (RecordType::Txt, RecordPurpose::ReturnPath) => exact(&record.value, found),
        },
    };
    RecordCheck {
        purpose: record.purpose,
        name: record.name.clone(),
        record_type: record.record_type,
        required: record.required,
        status,
        expected: record.value.clone(),
        found,
        detail,
    }
}

type Verdict = (CheckStatus, Vec<String>, String);

/// A DKIM key record's key type and public key (RFC 6376 §3.6.1), or `None` when the text is not
/// a key record: not a `tag=value; …` list, a `v=` other than `DKIM1`, or no `p=` tag.
fn dkim_key(text: &str) -> Option<(String, String)> {
    let mut tags = Vec::new();
    for tag in text.split(';').map(str::trim).filter(|tag| !tag.is_empty()) {
        let (name, value) = tag.split_once('=')?;
        tags.push((name.trim(), value.trim()));
    }
    let tag = |name: &str| tags.iter().find(|(tag, _)| *tag == name).map(|(_, value)| *value);
    if tag("v").is_some_and(|version| version != "DKIM1") {
        return None;
    }
    let key: String = tag("p")?.chars().filter(|c| !c.is_whitespace()).collect();
    Some((tag("k").unwrap_or("rsa").to_ascii_lowercase(), key))
}

/// Matching when some record has the expected `p=` (whitespace ignored) and `k=` (default `rsa`).
fn dkim(expected: &str, found: Vec<String>) -> Verdict {
    let Some((want_type, want_key)) = dkim_key(expected) else {
        return exact(expected, found);
    };
    let keys: Vec<(String, String)> = found.iter().filter_map(|text| dkim_key(text)).collect();
    if keys.iter().any(|(key_type, key)| *key_type == want_type && *key == want_key) {
        return (CheckStatus::Matching, found, "TXT record found with this domain's DKIM key.".to_owned());
    }
    // Of several records, the one closest to right explains best what to fix.
    let reason = if let Some((key_type, _)) = keys.iter().find(|(_, key)| *key == want_key) {
        format!("TXT record found with this domain's key, but its k= is \"{key_type}\" instead of \"{want_type}\".")
    } else if keys.iter().any(|(_, key)| key.is_empty()) {
        "TXT record found, but its p= is empty, which marks the key as revoked.".to_owned()
    } else if !keys.is_empty() {
        "TXT record found, but its p= key differs from this domain's key.".to_owned()
    } else {
        "TXT record found, but it is not a DKIM key record (no p= tag).".to_owned()
    };
    let detail = match found.len() {
        1 => reason,
        n => format!("{n} TXT records found, none with this domain's key. The closest: {reason}"),
    };
    (CheckStatus::Mismatch, found, detail)
}

/// Whether a TXT string is an SPF record: it starts with `v=spf1` then a space or its end
/// (RFC 7208 §4.5).
fn is_spf(text: &str) -> bool {
    text.get(..6).is_some_and(|version| version.eq_ignore_ascii_case("v=spf1"))
        && matches!(text.as_bytes().get(6), None | Some(b' '))
}

/// An SPF term compared case-insensitively, `+` being the default qualifier.
fn spf_term(term: &str) -> String {
    term.strip_prefix('+').unwrap_or(term).to_ascii_lowercase()
}

/// Whether an SPF term is the `all` mechanism, with any qualifier.
fn is_all(term: &str) -> bool {
    term.trim_start_matches(['+', '-', '~', '?']).eq_ignore_ascii_case("all")
}

/// Exactly one SPF record must exist. When the record is required, it must contain every term of
/// the expected value except the version and `all` (that is, the configured mechanism); otherwise
/// any SPF record matches, since Herald cannot know which servers are meant to be in it.
fn spf(record: &DnsRecord, found: Vec<String>) -> Verdict {
    let spf: Vec<String> = found.into_iter().filter(|text| is_spf(text)).collect();
    match spf.len() {
        0 => (
            CheckStatus::Missing,
            spf,
            format!("TXT records found at {}, but none is an SPF record (v=spf1).", record.name),
        ),
        1 if !record.required => {
            let detail = "SPF record found. Herald does not know which servers send its mail, so it does not \
                          check what the record allows.";
            (CheckStatus::Matching, spf, detail.to_owned())
        }
        1 => {
            let have: Vec<String> = spf[0].split_ascii_whitespace().map(spf_term).collect();
            let missing: Vec<&str> = (record.value.split_ascii_whitespace().skip(1))
                .filter(|term| !is_all(term) && !have.contains(&spf_term(term)))
                .collect();
            if missing.is_empty() {
                (CheckStatus::Matching, spf, "SPF record found, and it allows Herald's servers.".to_owned())
            } else {
                let detail = format!(
                    "SPF record found, but it does not contain {}; add it before the record's all.",
                    missing.join(" ")
                );
                (CheckStatus::Mismatch, spf, detail)
            }
        }
        n => {
            let detail = format!(
                "{n} SPF records (v=spf1) found: more than one is an SPF permerror, so receivers ignore them all. \
                 Merge them into one."
            );
            (CheckStatus::Mismatch, spf, detail)
        }
    }
}

/// Whether a TXT string is a DMARC record: its first tag is `v=DMARC1` (RFC 7489 §6.4).
fn is_dmarc(text: &str) -> bool {
    let first = text.split(';').next().unwrap_or_default();
    first.split_once('=').is_some_and(|(tag, value)| tag.trim() == "v" && value.trim() == "DMARC1")
}

/// One DMARC record matches, whatever its policy: the policy is the domain owner's choice.
fn dmarc(name: &str, found: Vec<String>) -> Verdict {
    match found.iter().filter(|text| is_dmarc(text)).count() {
        0 => {
            let detail = format!("TXT record found at {name}, but it is not a DMARC record (v=DMARC1).");
            (CheckStatus::Missing, found, detail)
        }
        1 => (CheckStatus::Matching, found, "DMARC record found.".to_owned()),
        n => {
            let detail = format!("{n} DMARC records found: with more than one, receivers apply none. Keep one.");
            (CheckStatus::Mismatch, found, detail)
        }
    }
}

/// Matching when a target equals the expected one, ignoring case and a final dot.
fn cname(expected: &str, found: Vec<String>) -> Verdict {
    let want = expected.trim_end_matches('.');
    if found.iter().any(|target| target.trim_end_matches('.').eq_ignore_ascii_case(want)) {
        return (CheckStatus::Matching, found, format!("CNAME record points to {want}."));
    }
    let detail = format!("CNAME record points to {} instead of {want}.", found.join(", "));
    (CheckStatus::Mismatch, found, detail)
}

/// Matching when some value equals the expected one, whitespace ignored.
fn exact(expected: &str, found: Vec<String>) -> Verdict {
    let squash = |text: &str| text.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    if found.iter().any(|text| squash(text) == squash(expected)) {
        (CheckStatus::Matching, found, "Record found with the expected value.".to_owned())
    } else {
        (CheckStatus::Mismatch, found, "Record found, but its value differs from the expected one.".to_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn domains_are_normalized_or_refused_saying_why() {
        let long_label = format!("{}.com", "a".repeat(64));
        let long_name = format!("{}.com", ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(58)].join("."));
        let cases: &[(&str, Result<&str, NameError>)] = &[
            ("example.com", Ok("example.com")),
            ("Mail.Example.COM", Ok("mail.example.com")),
            ("example.com.", Ok("example.com")),
            ("  example.com ", Ok("example.com")),
            ("xn--bcher-kva.example", Ok("xn--bcher-kva.example")),
            ("bücher.example", Ok("xn--bcher-kva.example")),
            ("BÜCHER.Example.", Ok("xn--bcher-kva.example")),
            ("1password.com", Ok("1password.com")),
            (&long_name[1..], Ok(&long_name[1..])),
            ("", Err(NameError::Empty)),
            (".", Err(NameError::Empty)),
            ("example..com", Err(NameError::EmptyLabel)),
            (".example.com", Err(NameError::EmptyLabel)),
            (&long_label, Err(NameError::LabelTooLong { label: "a".repeat(64) })),
            (&long_name, Err(NameError::TooLong { length: 254, max: 253 })),
            ("exa_mple.com", Err(NameError::InvalidCharacter { character: '_' })),
            ("exa mple.com", Err(NameError::InvalidCharacter { character: ' ' })),
            ("-example.com", Err(NameError::HyphenAtEdge { label: "-example".to_owned() })),
            ("example-.com", Err(NameError::HyphenAtEdge { label: "example-".to_owned() })),
            ("localhost", Err(NameError::SingleLabel)),
            ("192.0.2.1", Err(NameError::NumericTopLevel)),
            ("https://example.com", Err(NameError::NotBare { what: "a URL" })),
            ("me@example.com", Err(NameError::NotBare { what: "an email address" })),
            ("\u{0301}a.example", Err(NameError::InvalidUnicode)),
        ];
        for (input, want) in cases {
            let got = match normalize_domain(input) {
                Ok(domain) => Ok(domain),
                Err(DnsError::InvalidDomain(problem)) => Err(problem),
                Err(other) => panic!("{input:?}: unexpected error {other:?}"),
            };
            assert_eq!(got, want.clone().map(str::to_owned), "{input:?}");
        }
        assert_eq!(
            normalize_domain("-example.com").unwrap_err().to_string(),
            "the domain name has a label that starts or ends with a hyphen (\"-example\")"
        );
        assert_eq!(
            normalize_domain("exa_mple.com").unwrap_err().to_string(),
            "the domain name contains '_'; only letters, digits, hyphens and dots are allowed"
        );
    }

    #[test]
    fn selectors_are_dns_labels() {
        for ok in ["herald", "s1", "2024-01.mail", "Herald1"] {
            assert!(check_selector(ok).is_ok(), "{ok}");
        }
        let cases = [
            ("", NameError::Empty),
            ("a_b", NameError::InvalidCharacter { character: '_' }),
            ("a..b", NameError::EmptyLabel),
            ("-a", NameError::HyphenAtEdge { label: "-a".to_owned() }),
            (&format!("{}.b", "a".repeat(63)), NameError::TooLong { length: 65, max: 63 }),
        ];
        for (input, want) in cases {
            match check_selector(input) {
                Err(DnsError::InvalidSelector(problem)) => assert_eq!(problem, want, "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
        assert_eq!(
            check_selector("a b").unwrap_err().to_string(),
            "the DKIM selector contains ' '; only letters, digits, hyphens and dots are allowed"
        );
    }

    #[test]
    fn records_to_publish() {
        let spec = RecordsSpec {
            domain: "example.com",
            selector: "herald1",
            dkim_txt: "v=DKIM1; k=rsa; p=KEY",
            spf: Some("include:_spf.herald.test"),
            return_path: Some(("bounces", "rp.herald.test.")),
            dmarc_rua: Some("dmarc@example.com"),
        };
        let record = |purpose, name: &str, record_type, value: &str, required| DnsRecord {
            purpose,
            name: name.to_owned(),
            record_type,
            value: value.to_owned(),
            required,
        };
        use RecordPurpose::*;
        use RecordType::*;
        assert_eq!(
            records(&spec),
            [
                record(Dkim, "herald1._domainkey.example.com", Txt, "v=DKIM1; k=rsa; p=KEY", true),
                record(Spf, "example.com", Txt, "v=spf1 include:_spf.herald.test ~all", true),
                record(Dmarc, "_dmarc.example.com", Txt, "v=DMARC1; p=none; rua=mailto:dmarc@example.com", false),
                record(ReturnPath, "bounces.example.com", Cname, "rp.herald.test", false),
            ]
        );

        let bare = RecordsSpec { spf: None, return_path: None, dmarc_rua: None, ..spec };
        assert_eq!(
            records(&bare)[1..],
            [
                record(Spf, "example.com", Txt, "v=spf1 mx ~all", false),
                record(Dmarc, "_dmarc.example.com", Txt, "v=DMARC1; p=none;", false),
            ]
        );
        let mailto = RecordsSpec { dmarc_rua: Some("mailto:d@example.com"), ..spec };
        assert_eq!(records(&mailto)[2].value, "v=DMARC1; p=none; rua=mailto:d@example.com");

        let json = serde_json::to_value(&records(&spec)[3]).unwrap();
        assert_eq!(json["purpose"], "return_path");
        assert_eq!(json["record_type"], "CNAME");
    }

    fn txt(purpose: RecordPurpose, value: &str, required: bool) -> DnsRecord {
        DnsRecord {
            purpose,
            name: "x.example.com".to_owned(),
            record_type: RecordType::Txt,
            value: value.to_owned(),
            required,
        }
    }

    fn found(values: &[&str]) -> Answer {
        Answer::Found(values.iter().map(|value| (*value).to_owned()).collect())
    }

    /// Each case: the record, what DNS held, the status, and a piece of the detail.
    fn assert_cases(cases: &[(DnsRecord, Answer, CheckStatus, &str)]) {
        for (record, answer, status, detail) in cases {
            let check = evaluate(record, answer.clone());
            assert_eq!(check.status, *status, "{} {answer:?}: {}", record.value, check.detail);
            assert!(check.detail.contains(detail), "{answer:?}: {:?} lacks {detail:?}", check.detail);
            assert_eq!(check.expected, record.value);
        }
    }

    #[test]
    fn dkim_matches_on_key_and_type() {
        let dkim = txt(RecordPurpose::Dkim, "v=DKIM1; k=rsa; p=ABCD", true);
        use CheckStatus::*;
        assert_cases(&[
            (dkim.clone(), found(&["v=DKIM1; k=rsa; p=ABCD"]), Matching, "this domain's DKIM key"),
            (dkim.clone(), found(&["v=DKIM1;p=AB CD"]), Matching, ""),
            (dkim.clone(), found(&["p = ABCD ; k=RSA;"]), Matching, ""),
            (dkim.clone(), found(&["v=DKIM1; p=WXYZ", "v=DKIM1; p=ABCD"]), Matching, ""),
            (dkim.clone(), found(&["v=DKIM1; k=ed25519; p=ABCD"]), Mismatch, "k= is \"ed25519\" instead of \"rsa\""),
            (dkim.clone(), found(&["v=DKIM1; k=rsa; p=WXYZ"]), Mismatch, "p= key differs"),
            (dkim.clone(), found(&["v=DKIM1; p="]), Mismatch, "revoked"),
            (dkim.clone(), found(&["hello world"]), Mismatch, "not a DKIM key record"),
            (dkim.clone(), found(&["v=DKIM2; p=ABCD"]), Mismatch, "not a DKIM key record"),
            (dkim.clone(), found(&["v=DKIM1; p=WXYZ", "junk"]), Mismatch, "2 TXT records found"),
            (dkim.clone(), Answer::NoName, Missing, "does not exist"),
            (dkim.clone(), Answer::NoData, Missing, "No TXT record at x.example.com"),
            (dkim, Answer::Failed("the DNS server answered SERVFAIL".to_owned()), Error, "usually temporary"),
        ]);
        let check = evaluate(&txt(RecordPurpose::Dkim, "p=A", true), found(&["p=B", "x"]));
        assert_eq!(check.found, ["p=B", "x"]);
    }

    #[test]
    fn spf_needs_exactly_one_record_with_the_mechanism() {
        let spf = txt(RecordPurpose::Spf, "v=spf1 include:_spf.herald.test ~all", true);
        let any = txt(RecordPurpose::Spf, "v=spf1 mx ~all", false);
        use CheckStatus::*;
        assert_cases(&[
            (spf.clone(), found(&["v=spf1 include:_spf.herald.test ~all"]), Matching, "allows Herald"),
            (spf.clone(), found(&["v=spf1 mx INCLUDE:_SPF.Herald.test -all"]), Matching, ""),
            (spf.clone(), found(&["V=SPF1 +include:_spf.herald.test -all"]), Matching, ""),
            (spf.clone(), found(&["google-site-verification=x", "v=spf1 include:_spf.herald.test -all"]), Matching, ""),
            (spf.clone(), found(&["v=spf1 mx ~all"]), Mismatch, "does not contain include:_spf.herald.test"),
            (spf.clone(), found(&["v=spf1 ~include:_spf.herald.test -all"]), Mismatch, ""),
            (spf.clone(), found(&["v=spf1 mx -all", "v=spf1 include:_spf.herald.test ~all"]), Mismatch, "permerror"),
            (spf.clone(), found(&["google-site-verification=x"]), Missing, "none is an SPF record"),
            (spf.clone(), found(&["v=spf10 include:_spf.herald.test"]), Missing, ""),
            (spf, Answer::NoData, Missing, ""),
            (any.clone(), found(&["v=spf1 ip4:192.0.2.1 -all"]), Matching, "does not know"),
            (any.clone(), found(&["v=spf1"]), Matching, ""),
            (any.clone(), found(&["v=spf1 a -all", "v=spf1 mx -all"]), Mismatch, "2 SPF records"),
            (any, found(&["verification=x"]), Missing, ""),
        ]);
        let spf = txt(RecordPurpose::Spf, "v=spf1 mx ~all", false);
        let check = evaluate(&spf, found(&["verification=x", "v=spf1 mx -all"]));
        assert_eq!(check.found, ["v=spf1 mx -all"], "other TXT records at the apex are not reported");
    }

    #[test]
    fn dmarc_needs_one_record() {
        let dmarc = txt(RecordPurpose::Dmarc, "v=DMARC1; p=none;", false);
        use CheckStatus::*;
        assert_cases(&[
            (dmarc.clone(), found(&["v=DMARC1; p=reject; rua=mailto:d@example.com"]), Matching, "DMARC record found"),
            (dmarc.clone(), found(&["v=DMARC1"]), Matching, ""),
            (dmarc.clone(), found(&["v = DMARC1 ;p=none"]), Matching, ""),
            (dmarc.clone(), found(&["p=none; v=DMARC1"]), Missing, "not a DMARC record"),
            (dmarc.clone(), found(&["v=spf1 -all"]), Missing, ""),
            (dmarc.clone(), found(&["v=DMARC1; p=none", "v=DMARC1; p=reject"]), Mismatch, "2 DMARC records"),
            (dmarc, Answer::NoName, Missing, ""),
        ]);
    }

    #[test]
    fn cname_matches_its_target() {
        let cname = DnsRecord {
            purpose: RecordPurpose::ReturnPath,
            name: "bounces.example.com".to_owned(),
            record_type: RecordType::Cname,
            value: "rp.herald.test".to_owned(),
            required: false,
        };
        use CheckStatus::*;
        assert_cases(&[
            (cname.clone(), found(&["RP.Herald.Test"]), Matching, "points to rp.herald.test"),
            (cname.clone(), found(&["rp.herald.test."]), Matching, ""),
            (
                cname.clone(),
                found(&["other.example.net"]),
                Mismatch,
                "points to other.example.net instead of rp.herald.test",
            ),
            (cname, Answer::NoData, Missing, "No CNAME record at bounces.example.com"),
        ]);
    }

    #[test]
    fn verified_when_every_required_record_matches() {
        let check = |required, status| RecordCheck {
            purpose: RecordPurpose::Dkim,
            name: String::new(),
            record_type: RecordType::Txt,
            required,
            status,
            expected: String::new(),
            found: Vec::new(),
            detail: String::new(),
        };
        use CheckStatus::*;
        assert!(verified(&[check(true, Matching), check(false, Missing), check(false, Error)]));
        assert!(!verified(&[check(true, Matching), check(true, Mismatch)]));
        assert!(!verified(&[check(true, Error)]));
        assert!(!verified(&[check(true, Missing), check(false, Matching)]));
    }
}
