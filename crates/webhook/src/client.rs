//! The HTTP client for outbound webhooks: one attempt per call, never a redirect, never a
//! proxy, a deadline over the whole exchange, a capped response body, and the address policy
//! enforced on the address actually connected to.
//!
//! The policy is checked in two places because reqwest resolves names in one and not the
//! other. A host name goes through [`PolicyResolver`], which resolves it and drops every
//! address the policy refuses before reqwest sees the list: the check and the connection use
//! the same answer, so DNS rebinding (public when the endpoint was saved, private now) cannot
//! slip through. An IP literal (`http://10.0.0.1/`, `http://[::ffff:7f00:1]/`, and `0x7f.1`
//! and friends, which the URL parser turns into dotted quads) is never given to a resolver,
//! so [`WebhookClient::send`] checks it before anything is sent.
//!
//! Proxies are disabled: through a proxy, the resolver would check the proxy's address and
//! the proxy would then reach anything. Redirects are not followed: a redirect to
//! `http://169.254.169.254/` would be a way around the policy, and a 3xx is recorded as it is.

use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};
use time::OffsetDateTime;

use crate::policy::{AddressPolicy, Refusal};
use crate::retry::{AttemptOutcome, parse_retry_after};

/// The operator setting that allows address ranges, named in refusal messages.
pub const ALLOW_CIDRS_SETTING: &str = "HERALD_WEBHOOK_ALLOW_CIDRS";
/// The operator setting that allows plain `http://`, named in refusal messages.
pub const ALLOW_HTTP_SETTING: &str = "HERALD_WEBHOOK_ALLOW_HTTP";

/// The timeout of a webhook action unless it sets its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);

/// 64 KiB: the most of a response body kept with an attempt.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 64 * 1024;

/// How a [`WebhookClient`] behaves; fixed when it is built.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub policy: AddressPolicy,
    /// Plain `http://` URLs are refused unless this is set.
    pub allow_http: bool,
    /// The most of a response body read and kept; the rest is not read.
    pub max_response_body: usize,
    pub user_agent: String,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            policy: AddressPolicy::default(),
            allow_http: false,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
            user_agent: format!("Herald/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// One outbound request, fully rendered and signed.
#[derive(Clone)]
pub struct OutboundRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The deadline for the whole exchange: connecting, sending, and reading the response
    /// ([`DEFAULT_TIMEOUT`] unless the action sets one).
    pub timeout: Duration,
    /// User and password.
    pub basic_auth: Option<(String, String)>,
}

impl std::fmt::Debug for OutboundRequest {
    // Header values and the password may be credentials: only names and sizes are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("timeout", &self.timeout)
            .field("basic_auth_user", &self.basic_auth.as_ref().map(|(user, _)| user))
            .finish()
    }
}

/// What one attempt came to, with what is kept of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: AttemptOutcome,
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    /// The response body, at most `max_response_body` bytes of it.
    pub body: Vec<u8>,
    /// Whether the body was longer than what is kept.
    pub truncated: bool,
    /// From the start of the attempt to the end of the response (or of trying).
    pub latency: Duration,
    /// What went wrong, as a sentence for the attempt log: "connection refused",
    /// "timed out after 4 s", "address 10.0.0.1 is private (10.0.0.0/8); allow it with …".
    /// Also set when a response arrived but its body could not be read in full.
    pub error: Option<String>,
}

/// The client could not be built (the TLS backend failed to initialise).
#[derive(Debug, thiserror::Error)]
#[error("could not build the webhook HTTP client")]
pub struct BuildError(#[source] reqwest::Error);

/// Sends webhook requests. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    settings: Arc<ClientSettings>,
}

impl WebhookClient {
    pub fn new(settings: ClientSettings) -> Result<WebhookClient, BuildError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // One call, one request: the retry schedule decides about retries, durably.
            .retry(reqwest::retry::never())
            .dns_resolver(PolicyResolver { policy: Arc::new(settings.policy.clone()) })
            .user_agent(settings.user_agent.clone())
            .build()
            .map_err(BuildError)?;
        Ok(WebhookClient { http, settings: Arc::new(settings) })
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Makes one attempt. Never fails: everything that can go wrong is in the [`Attempt`].
    pub async fn send(&self, req: &OutboundRequest) -> Attempt {
        let started = Instant::now();
        let mut attempt = match self.prepare(req) {
            Ok(request) => self.exchange(request, req.timeout).await,
            Err(failure) => failure,
        };
        attempt.latency = started.elapsed();
        attempt
    }

    /// Checks the URL (scheme, IP literal) and builds the request; nothing is sent yet.
    fn prepare(&self, req: &OutboundRequest) -> Result<reqwest::Request, Attempt> {
        let url = Url::parse(&req.url).map_err(|e| failed(AttemptOutcome::Invalid, format!("invalid URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(failed(
                AttemptOutcome::Invalid,
                format!("unsupported URL scheme {}: (only https:// and http://)", url.scheme()),
            ));
        }
        let host = url.host_str().ok_or_else(|| failed(AttemptOutcome::Invalid, "the URL has no host".to_owned()))?;
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            self.settings.policy.check(ip).map_err(|refusal| failed(AttemptOutcome::Refused, refused(&refusal)))?;
        }
        if url.scheme() == "http" && !self.settings.allow_http {
            return Err(failed(
                AttemptOutcome::Refused,
                format!("plain http:// is not allowed, use https:// (or allow it with {ALLOW_HTTP_SETTING})"),
            ));
        }

        let mut headers = HeaderMap::with_capacity(req.headers.len());
        for (name, value) in &req.headers {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| failed(AttemptOutcome::Invalid, format!("invalid header name {name:?}")))?;
            let header_value = HeaderValue::from_str(value)
                .map_err(|_| failed(AttemptOutcome::Invalid, format!("invalid value for header {name}")))?;
            headers.append(header_name, header_value);
        }
        let mut builder = self.http.request(req.method.clone(), url).headers(headers);
        if let Some((user, password)) = &req.basic_auth {
            builder = builder.basic_auth(user, Some(password));
        }
        if !req.body.is_empty() {
            builder = builder.body(req.body.clone());
        }
        builder.build().map_err(|e| failed(AttemptOutcome::Invalid, format!("invalid request: {}", innermost(&e))))
    }

    async fn exchange(&self, request: reqwest::Request, timeout: Duration) -> Attempt {
        let deadline = tokio::time::Instant::now() + timeout;
        let response = match tokio::time::timeout_at(deadline, self.http.execute(request)).await {
            Err(_elapsed) => return failed(AttemptOutcome::Timeout, format!("timed out after {}", human(timeout))),
            Ok(Err(e)) => return send_error(&e),
            Ok(Ok(response)) => response,
        };

        let code = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, OffsetDateTime::now_utc()));
        let response_headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let (body, truncated, error) = read_capped(response, self.settings.max_response_body, deadline, timeout).await;
        Attempt {
            outcome: AttemptOutcome::Status { code, retry_after },
            status: Some(code),
            response_headers,
            body,
            truncated,
            latency: Duration::ZERO,
            error,
        }
    }
}

/// Reads at most `cap` bytes of the body, stopping early rather than reading the rest. The
/// status has arrived, so a body that fails or runs past the deadline does not change the
/// outcome; it is noted in the attempt's error.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> (Vec<u8>, bool, Option<String>) {
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_elapsed) => {
                return (body, false, Some(format!("response body timed out after {}", human(timeout))));
            }
            Ok(Err(e)) => return (body, false, Some(format!("response body failed: {}", innermost(&e)))),
            Ok(Ok(None)) => return (body, false, None),
            Ok(Ok(Some(chunk))) => {
                let room = cap.saturating_sub(body.len());
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return (body, true, None);
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
}

fn failed(outcome: AttemptOutcome, error: String) -> Attempt {
    Attempt {
        outcome,
        status: None,
        response_headers: Vec::new(),
        body: Vec::new(),
        truncated: false,
        latency: Duration::ZERO,
        error: Some(error),
    }
}

fn refused(refusal: &Refusal) -> String {
    format!("{refusal}; allow it with {ALLOW_CIDRS_SETTING}")
}

/// Classes an error from sending: the policy refusing what a name resolved to, a request
/// that cannot be built, or (everything else) a failure to connect or to get an answer,
/// which is worth retrying.
fn send_error(e: &reqwest::Error) -> Attempt {
    if let Some(resolve) = find_in_chain::<ResolveError>(e) {
        return match resolve {
            ResolveError::Refused { host, refusal } => {
                failed(AttemptOutcome::Refused, format!("{host} resolves to {}", refused(refusal)))
            }
            ResolveError::Lookup { host, source } => {
                failed(AttemptOutcome::Connect, format!("could not resolve host {host}: {source}"))
            }
            ResolveError::NoAddresses { host } => {
                failed(AttemptOutcome::Connect, format!("host {host} has no addresses"))
            }
        };
    }
    if e.is_builder() {
        return failed(AttemptOutcome::Invalid, format!("invalid request: {}", innermost(e)));
    }
    if e.is_timeout() {
        return failed(AttemptOutcome::Timeout, "timed out".to_owned());
    }
    let sentence = match find_in_chain::<io::Error>(e).map(io::Error::kind) {
        Some(io::ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
        Some(io::ErrorKind::ConnectionReset) => "connection reset".to_owned(),
        Some(io::ErrorKind::ConnectionAborted) => "connection aborted".to_owned(),
        Some(io::ErrorKind::TimedOut) => "connection timed out".to_owned(),
        Some(io::ErrorKind::HostUnreachable) => "host unreachable".to_owned(),
        Some(io::ErrorKind::NetworkUnreachable) => "network unreachable".to_owned(),
        _ if e.is_connect() => format!("could not connect: {}", innermost(e)),
        _ => format!("no response: {}", innermost(e)),
    };
    failed(AttemptOutcome::Connect, sentence)
}

fn find_in_chain<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// The most specific message in an error chain ("invalid peer certificate: UnknownIssuer"
/// says more than "error sending request").
fn innermost(e: &(dyn StdError + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// "4 s", "300 ms", "1.5 s".
fn human(d: Duration) -> String {
    let millis = d.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{} s", millis / 1000)
    } else if millis < 1000 {
        format!("{millis} ms")
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Resolves host names with the system resolver and keeps only the addresses the policy
/// allows; none left is an error naming the first refusal.
#[derive(Debug)]
struct PolicyResolver {
    policy: Arc<AddressPolicy>,
}

#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("could not resolve {host}")]
    Lookup {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("{host} has no addresses")]
    NoAddresses { host: String },
    #[error("{host} resolves to a refused address")]
    Refused {
        host: String,
        #[source]
        refusal: Refusal,
    },
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let lookup =
                tokio::net::lookup_host((host.as_str(), 0)).await.map(|addrs| addrs.collect::<Vec<SocketAddr>>());
            let resolved = match lookup {
                Ok(addrs) => addrs,
                Err(source) => return Err(ResolveError::Lookup { host, source }.into()),
            };
            let mut first_refusal = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.check(addr.ip()) {
                    Ok(()) => true,
                    Err(refusal) => {
                        first_refusal.get_or_insert(refusal);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(match first_refusal {
                    Some(refusal) => ResolveError::Refused { host, refusal },
                    None => ResolveError::NoAddresses { host },
                }
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(4)), "4 s");
        assert_eq!(human(Duration::from_millis(300)), "300 ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human(Duration::ZERO), "0 s");
    }
}
