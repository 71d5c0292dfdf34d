//! The SMTP client: a bounded pool of lettre connections to one relay, each send under one
//! deadline, and every failure classified as transient (retry later) or permanent (give up).
//!
//! Why not lettre's `AsyncSmtpTransport` and its pool: on tokio its timeout covers only the TCP
//! connect, so a relay that stops answering would hang a send forever; cancelling a send from
//! outside (a `tokio::time::timeout` around it) hands the half-used connection back to lettre's
//! pool, where the next message would be written into the previous `DATA` or read the previous
//! reply; and its sockets keep Nagle's algorithm, which stalls every message up to 40 ms (see
//! `plain_socket`). Here lettre still speaks SMTP (`AsyncSmtpConnection`), but the socket is
//! ours and a connection belongs to the send future: a send that times out drops its
//! connection with it, and only a connection that finished its transaction cleanly is reused.

use std::error::Error as _;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::io::{AsyncRead as _, AsyncWrite as _};

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use serde::Deserialize;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::message::{Composed, EmailError};

/// A pooled connection idle longer than this is closed rather than reused: relays drop idle
/// clients after a minute or a few, and a fresh connection is cheaper than a failed send.
const IDLE_MAX: Duration = Duration::from_secs(50);

/// How the connection to the relay is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain text. Only for a relay on the same host or a test server.
    None,
    /// Plain connect, then `STARTTLS`, required (never falls back to plain text). Port 587.
    StartTls,
    /// TLS from the first byte ("implicit TLS", RFC 8314). Port 465.
    Tls,
}

/// Where and how to relay mail. Deserialises from configuration with defaults for anything
/// missing; `timeout` is a number of seconds there. There is no `Serialize`: the password is a
/// secret, and `Debug` redacts it.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The most connections open at once, and so the most sends in flight; more wait.
    pub pool_size: u32,
    /// The deadline of one send: connect, TLS, login and the whole mail transaction.
    #[serde(with = "seconds")]
    pub timeout: Duration,
    /// The name sent in `EHLO`; this machine's host name when `None`.
    pub hello_name: Option<String>,
    /// Accept any certificate (self-signed, expired, another host's). For tests only.
    pub accept_invalid_certs: bool,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "localhost".to_owned(),
            port: 587,
            security: Security::StartTls,
            username: None,
            password: None,
            pool_size: 8,
            timeout: Duration::from_secs(30),
            hello_name: None,
            accept_invalid_certs: false,
        }
    }
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("hello_name", &self.hello_name)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish()
    }
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

/// The relay's final reply to a message it accepted, e.g. code 250 and
/// `2.0.0 Ok: queued as 4BX2Lk`. `Display` writes the reply as the relay sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpReply {
    pub code: u16,
    /// The reply text without the code, lines joined with spaces.
    pub message: String,
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

/// Whether sending the same message again later can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// A 4xx reply, a refused, reset or timed-out connection, a TLS failure, a garbled reply.
    Transient,
    /// A 5xx reply (a rejected recipient, a failed login), or something the relay can never
    /// accept from these settings (no STARTTLS offered, no common AUTH mechanism, an address
    /// needing SMTPUTF8 the relay lacks).
    Permanent,
}

/// A send that did not end in acceptance. `Display` writes `permanent: 550 5.1.1 No such user`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SmtpFailure {
    pub kind: FailureKind,
    /// The relay's reply code, when the failure is a reply.
    pub code: Option<u16>,
    /// The reply text without the code, or what went wrong on the way.
    pub message: String,
}

impl fmt::Display for SmtpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FailureKind::Transient => "transient",
            FailureKind::Permanent => "permanent",
        };
        match self.code {
            Some(code) => write!(f, "{kind}: {code} {}", self.message),
            None => write!(f, "{kind}: {}", self.message),
        }
    }
}

impl SmtpFailure {
    pub fn is_permanent(&self) -> bool {
        self.kind == FailureKind::Permanent
    }

    fn transient(message: String) -> Self {
        Self { kind: FailureKind::Transient, code: None, message }
    }

    fn permanent(message: String) -> Self {
        Self { kind: FailureKind::Permanent, code: None, message }
    }
}

/// The classification. lettre marks 4xx replies `is_transient` and 5xx `is_permanent`, both
/// with `status()` and the reply text as the error's source. `is_client` is lettre refusing
/// to go on with what the relay offers (no STARTTLS, no common AUTH mechanism, SMTPUTF8 or
/// 8BITMIME missing): retrying cannot change that, so permanent. Everything else is the network
/// or the relay misbehaving (connect, I/O, TLS, an unparsable reply): transient.
fn classify(err: &lettre::transport::smtp::Error) -> SmtpFailure {
    if let Some(code) = err.status() {
        return SmtpFailure {
            kind: if err.is_permanent() { FailureKind::Permanent } else { FailureKind::Transient },
            code: Some(u16::from(code)),
            message: err.source().map(ToString::to_string).unwrap_or_default(),
        };
    }
    if err.is_client() {
        return SmtpFailure::permanent(err.to_string());
    }
    SmtpFailure::transient(err.to_string())
}

/// A client for one relay. Clones share the pool. `new` needs no runtime; `send` runs on tokio.
#[derive(Clone)]
pub struct SmtpClient {
    inner: Arc<Inner>,
}

struct Inner {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    hello_name: ClientId,
    timeout: Duration,
    /// One permit per connection that may be open: bounds connections and sends in flight.
    permits: Semaphore,
    /// Connections that completed a transaction cleanly, most recent last.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpClient")
            .field("host", &self.inner.host)
            .field("port", &self.inner.port)
            .field("security", &self.inner.security)
            .field("authenticated", &self.inner.credentials.is_some())
            .finish_non_exhaustive()
    }
}

impl SmtpClient {
    /// Checks the settings; connects only when the first message is sent.
    pub fn new(settings: &SmtpSettings) -> Result<Self, EmailError> {
        let invalid = |field, reason: &str| EmailError::InvalidSettings { field, reason: reason.to_owned() };
        let host = settings.host.trim().to_owned();
        if host.is_empty() {
            return Err(invalid("host", "must not be empty"));
        }
        if settings.port == 0 {
            return Err(invalid("port", "must be between 1 and 65535"));
        }
        if settings.pool_size == 0 {
            return Err(invalid("pool_size", "must be at least 1"));
        }
        if settings.timeout.is_zero() {
            return Err(invalid("timeout", "must be more than zero"));
        }
        let credentials = match (&settings.username, &settings.password) {
            (Some(user), password) => Some(Credentials::new(user.clone(), password.clone().unwrap_or_default())),
            (None, Some(_)) => return Err(invalid("username", "is required when a password is set")),
            (None, None) => None,
        };
        let tls = match settings.security {
            Security::None => None,
            Security::StartTls | Security::Tls => Some(
                TlsParameters::builder(host.clone())
                    .dangerous_accept_invalid_certs(settings.accept_invalid_certs)
                    .build_rustls()
                    .map_err(|e| invalid("host", &format!("TLS set-up failed: {e}")))?,
            ),
        };
        let hello_name = match settings.hello_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => ClientId::Domain(name.to_owned()),
            _ => ClientId::default(),
        };
        let pool_size = usize::try_from(settings.pool_size).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        Ok(Self {
            inner: Arc::new(Inner {
                host,
                port: settings.port,
                security: settings.security,
                tls,
                credentials,
                hello_name,
                timeout: settings.timeout,
                permits: Semaphore::new(pool_size),
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Sends `composed` to its recipients and returns the relay's final reply. The deadline
    /// (`timeout`) starts once a pool slot is free. A message the relay accepted but whose
    /// reply was lost (a timeout after the final dot) reports a transient failure: sending again
    /// may deliver it twice, which the stable `Message-ID` lets receivers recognise.
    pub async fn send(&self, composed: &Composed) -> Result<SmtpReply, SmtpFailure> {
        let envelope = envelope(composed)?;
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| SmtpFailure::transient("the client is closed".to_owned()))?;
        let exchange = async {
            let mut conn = self.checkout().await?;
            // lettre ends the data with CRLF "." CRLF, whose first CRLF would add an empty
            // line to a message that already ends with one.
            let data = composed.bytes.strip_suffix(b"\r\n").unwrap_or(&composed.bytes);
            let response = conn.send(&envelope, data).await.map_err(|e| classify(&e))?;
            self.checkin(conn);
            Ok(reply(&response))
        };
        tokio::time::timeout(self.inner.timeout, exchange).await.unwrap_or_else(|_| {
            Err(SmtpFailure::transient(format!(
                "no answer from {}:{} within {:?}",
                self.inner.host, self.inner.port, self.inner.timeout
            )))
        })
    }

    /// Connects (TLS and login included) and checks the relay answers `NOOP`, without sending
    /// anything. The connection stays in the pool.
    pub async fn test_connection(&self) -> Result<(), SmtpFailure> {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| SmtpFailure::transient("the client is closed".to_owned()))?;
        let check = async {
            let conn = self.checkout().await?;
            self.checkin(conn);
            Ok(())
        };
        tokio::time::timeout(self.inner.timeout, check)
            .await
            .unwrap_or_else(|_| Err(SmtpFailure::transient(format!("no answer within {:?}", self.inner.timeout))))
    }

    /// Says `QUIT` on the idle connections, for a graceful shutdown. Sends still running keep
    /// theirs; the client stays usable.
    pub async fn close_idle(&self) {
        let idle = std::mem::take(&mut *self.lock_idle());
        for (mut conn, _) in idle {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.quit()).await;
        }
    }

    /// A reused connection that still answers, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        loop {
            let next = self.lock_idle().pop();
            let Some((mut conn, since)) = next else { break };
            if since.elapsed() < IDLE_MAX && conn.test_connected().await {
                return Ok(conn);
            }
            conn.abort().await;
        }
        self.connect().await
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            self.lock_idle().push((conn, Instant::now()));
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        // The list holds no invariant a panicking holder could break.
        self.inner.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        let inner = &*self.inner;
        let smtp = |e: lettre::transport::smtp::Error| classify(&e);
        let socket = self.plain_socket().await?;
        let mut conn = match (inner.security, &inner.tls) {
            (Security::Tls, Some(tls)) => {
                let stream = ImplicitTls::handshake(socket, tls.clone()).await.map_err(smtp)?;
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &inner.hello_name).await.map_err(smtp)?
            }
            _ => {
                AsyncSmtpConnection::connect_with_transport(Box::new(socket), &inner.hello_name).await.map_err(smtp)?
            }
        };
        if let (Security::StartTls, Some(tls)) = (inner.security, &inner.tls) {
            conn.starttls(tls.clone(), &inner.hello_name).await.map_err(smtp)?;
        }
        if let Some(credentials) = &inner.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await.map_err(smtp)?;
        }
        Ok(conn)
    }

    /// A TCP connection with `TCP_NODELAY`. lettre writes a message and then its final
    /// `CRLF . CRLF` in a second small write; with Nagle's algorithm that write waits for the
    /// relay to acknowledge the first, which a delayed ACK holds back up to 40 ms: a stall on
    /// every message, whatever the network.
    async fn plain_socket(&self) -> Result<TcpStream, SmtpFailure> {
        let (host, port) = (self.inner.host.as_str(), self.inner.port);
        let failed = |e: std::io::Error| SmtpFailure::transient(format!("could not connect to {host}:{port}: {e}"));
        let socket = TcpStream::connect((host, port)).await.map_err(failed)?;
        socket.set_nodelay(true).map_err(failed)?;
        Ok(socket)
    }
}

/// Implicit TLS over our own socket (so it has `TCP_NODELAY` too). lettre can wrap a socket
/// it did not open in TLS only through its `AsyncNetworkStream` (public but deprecated, "not
/// meant to be public"), whose I/O traits are the `futures` ones; this adapter hands it back to
/// lettre as the tokio stream `connect_with_transport` takes, after the handshake and before
/// the greeting, as RFC 8314 wants.
#[allow(deprecated)]
#[derive(Debug)]
struct ImplicitTls(AsyncNetworkStream);

#[allow(deprecated)]
impl ImplicitTls {
    async fn handshake(socket: TcpStream, tls: TlsParameters) -> Result<Self, lettre::transport::smtp::Error> {
        let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(socket));
        stream.upgrade_tls(tls).await?;
        Ok(Self(stream))
    }
}

impl tokio::io::AsyncRead for ImplicitTls {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match Pin::new(&mut self.0).poll_read(cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncWrite for ImplicitTls {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

fn envelope(composed: &Composed) -> Result<Envelope, SmtpFailure> {
    let parse = |address: &str| {
        address
            .parse::<Address>()
            .map_err(|e| SmtpFailure::permanent(format!("invalid envelope address {address:?}: {e}")))
    };
    let recipients = composed.recipients.iter().map(|r| parse(r)).collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(parse(&composed.envelope_from)?), recipients)
        .map_err(|e| SmtpFailure::permanent(format!("invalid envelope: {e}")))
}

fn reply(response: &Response) -> SmtpReply {
    SmtpReply { code: u16::from(response.code()), message: response.message().collect::<Vec<_>>().join(" ") }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn settings_from_config_with_defaults() {
        let settings: SmtpSettings = serde_json::from_value(serde_json::json!({
            "host": "smtp.example.com",
            "security": "tls",
            "port": 465,
            "username": "herald",
            "password": "hunter2",
            "timeout": 10,
        }))
        .unwrap();
        assert_eq!(settings.security, Security::Tls);
        assert_eq!(settings.timeout, Duration::from_secs(10));
        assert_eq!(settings.pool_size, 8);
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2") && shown.contains("[redacted]"), "{shown}");

        for security in ["none", "starttls", "tls"] {
            let json = serde_json::json!({ "security": security });
            assert!(serde_json::from_value::<SmtpSettings>(json).is_ok(), "{security}");
        }
        assert!(serde_json::from_value::<SmtpSettings>(serde_json::json!({ "hots": "x" })).is_err());
        assert!(serde_json::from_value::<SmtpSettings>(serde_json::json!({ "security": "ssl" })).is_err());
    }

    #[test]
    fn defaults() {
        let settings = SmtpSettings::default();
        assert_eq!((settings.port, settings.security, settings.pool_size), (587, Security::StartTls, 8));
        assert_eq!(settings.timeout, Duration::from_secs(30));
    }

    #[tokio::test]
    async fn bad_settings_are_named() {
        type Breakage = fn(&mut SmtpSettings);
        let cases: [(&str, Breakage); 4] = [
            ("host", |s| s.host = " ".to_owned()),
            ("pool_size", |s| s.pool_size = 0),
            ("timeout", |s| s.timeout = Duration::ZERO),
            ("username", |s| s.password = Some("x".to_owned())),
        ];
        for (field, break_it) in cases {
            let mut settings = SmtpSettings::default();
            break_it(&mut settings);
            match SmtpClient::new(&settings) {
                Err(EmailError::InvalidSettings { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn failures_display_like_replies() {
        let failure =
            SmtpFailure { kind: FailureKind::Permanent, code: Some(550), message: "5.1.1 No such user".to_owned() };
        assert_eq!(failure.to_string(), "permanent: 550 5.1.1 No such user");
        let reply = SmtpReply { code: 250, message: "2.0.0 Ok: queued".to_owned() };
        assert_eq!(reply.to_string(), "250 2.0.0 Ok: queued");
    }
}
