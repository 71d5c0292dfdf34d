//! The mail listener (`HERALD_BOUNCE_SMTP_BIND`): a receive-only SMTP server for the return
//! paths of Herald's own messages. It accepts a recipient only when it is `bounces+<token>@…`
//! with a token that verifies, so it never relays and takes no other mail; it limits what one
//! client can hold: connections at once, recipients per message, the message's size (announced
//! with `SIZE` and enforced while reading), the wait for each command or chunk of data, and a
//! whole session's length. Commands are parsed by `smtp-proto` (sans I/O; ADR 0013); the
//! socket, the timeouts and the replies are here.
//!
//! Replies to a message: a report that is recorded (or recognised as a repeat, or about a
//! message the store no longer has, or a `delayed` notice) is accepted with 250, so the sender
//! does not try again; one that is not a report is refused with 550 5.6.0. Either way nothing
//! but the report's effect is stored, and the log says which it was.

use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver, RequestReceiver};
use smtp_proto::{EXT_8BIT_MIME, EXT_ENHANCED_STATUS_CODES, EXT_SIZE, EhloResponse, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Directory, Intake, Recipient};
use crate::delivery::email::Email;
use crate::delivery::email::activity::Recorded;

/// What one listener lets its clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections served at once; more are told to come back later (421).
    pub max_connections: usize,
    /// The largest message, in bytes.
    pub max_message: usize,
    /// Recipients of one message.
    pub max_recipients: usize,
    /// How long the listener waits for a command or the next piece of a message.
    pub idle: Duration,
    /// How long one connection may last, however busy.
    pub session: Duration,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_message: 1024 * 1024,
            max_recipients: 10,
            idle: Duration::from_secs(60),
            session: Duration::from_secs(600),
        }
    }
}

/// Commands that fail before the listener hangs up.
const MAX_ERRORS: u32 = 10;
/// The name the listener gives itself.
const HOSTNAME: &str = "herald";

/// Serves SMTP on `listener` until `shutdown`.
pub async fn serve(email: Arc<Email>, listener: TcpListener, limits: ListenerLimits, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let directory = Arc::new(Directory::default());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let (mut stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "bounce listener: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "bounce listener: at its connection cap");
            tokio::spawn(async move {
                let _ = stream.write_all(b"421 4.3.2 Too many connections, try again later\r\n").await;
            });
            continue;
        };
        let session = Session { email: email.clone(), directory: directory.clone(), limits };
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            tokio::select! {
                result = session.run(&mut stream) => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "bounce listener: connection ended");
                    }
                }
                () = shutdown.cancelled() => {
                    let _ = stream.write_all(b"421 4.3.2 Shutting down\r\n").await;
                }
            }
            drop(slot);
        });
    }
}

struct Session {
    email: Arc<Email>,
    directory: Arc<Directory>,
    limits: ListenerLimits,
}

/// Where a session is.
enum Phase {
    Commands,
    /// Reading a message for these recipients.
    Data(DataReceiver, Vec<u8>),
    /// Reading, and dropping, a message past the size limit (until its end, unless `true`:
    /// already read).
    Oversized(DummyDataReceiver, bool),
}

/// What a command leaves the session to do.
enum Next {
    Continue,
    Data,
    Quit,
}

#[derive(Default)]
struct Transaction {
    mail: bool,
    recipients: Vec<Recipient>,
}

impl Session {
    async fn run(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        let deadline = Instant::now() + self.limits.session;
        stream.write_all(format!("220 {HOSTNAME} ESMTP Herald bounce intake\r\n").as_bytes()).await?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut requests = RequestReceiver::default();
        let mut phase = Phase::Commands;
        let mut transaction = Transaction::default();
        let mut errors = 0;
        loop {
            let wait = self.limits.idle.min(deadline.saturating_duration_since(Instant::now()));
            let read = match tokio::time::timeout(wait, stream.read(&mut buf)).await {
                Ok(read) => read?,
                Err(_) => {
                    stream.write_all(b"421 4.4.2 Timeout, closing connection\r\n").await?;
                    return Ok(());
                }
            };
            if read == 0 {
                return Ok(());
            }
            let mut bytes = buf[..read].iter();
            loop {
                match &mut phase {
                    Phase::Commands => {
                        let reply = match requests.ingest(&mut bytes) {
                            Ok(request) => match self.command(request, &mut transaction).await {
                                (reply, Next::Continue) => reply,
                                (reply, Next::Data) => {
                                    phase = Phase::Data(DataReceiver::new(), Vec::new());
                                    reply
                                }
                                (reply, Next::Quit) => {
                                    stream.write_all(reply.as_bytes()).await?;
                                    return Ok(());
                                }
                            },
                            Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                            Err(error) => {
                                errors += 1;
                                refusal(&error)
                            }
                        };
                        if reply.starts_with('5') {
                            errors += 1;
                        }
                        stream.write_all(reply.as_bytes()).await?;
                        if errors >= MAX_ERRORS {
                            stream.write_all(b"421 4.7.0 Too many errors, closing connection\r\n").await?;
                            return Ok(());
                        }
                    }
                    Phase::Data(receiver, body) => {
                        let done = receiver.ingest(&mut bytes, body);
                        let oversized = body.len() > self.limits.max_message;
                        if done && !oversized {
                            let body = std::mem::take(body);
                            let recipients = std::mem::take(&mut transaction).recipients;
                            phase = Phase::Commands;
                            let reply = self.message(&recipients, &body).await;
                            stream.write_all(reply.as_bytes()).await?;
                        } else if oversized {
                            // The rest is read and dropped; what was kept goes.
                            phase = Phase::Oversized(DummyDataReceiver::new_data(receiver), done);
                        } else {
                            break;
                        }
                    }
                    Phase::Oversized(receiver, done) => {
                        if !*done && !receiver.ingest(&mut bytes) {
                            break;
                        }
                        tracing::info!(max = self.limits.max_message, "bounce listener: refused an oversized message");
                        transaction = Transaction::default();
                        phase = Phase::Commands;
                        stream.write_all(b"552 5.3.4 Message too big\r\n").await?;
                    }
                }
            }
        }
    }

    async fn command(
        &self,
        request: Request<std::borrow::Cow<'_, str>>,
        transaction: &mut Transaction,
    ) -> (String, Next) {
        let reply = |text: &str| (format!("{text}\r\n"), Next::Continue);
        match request {
            Request::Ehlo { .. } => {
                let mut ehlo = EhloResponse::new(HOSTNAME);
                ehlo.capabilities = EXT_SIZE | EXT_8BIT_MIME | EXT_ENHANCED_STATUS_CODES;
                ehlo.size = self.limits.max_message;
                let mut out = Vec::new();
                let _ = ehlo.write(&mut out);
                *transaction = Transaction::default();
                (String::from_utf8_lossy(&out).into_owned(), Next::Continue)
            }
            Request::Helo { .. } | Request::Lhlo { .. } => {
                *transaction = Transaction::default();
                reply(&format!("250 {HOSTNAME}"))
            }
            Request::Mail { from } => {
                if transaction.mail {
                    reply("503 5.5.1 Sender already given")
                } else if from.size > self.limits.max_message {
                    reply("552 5.3.4 Message too big")
                } else {
                    transaction.mail = true;
                    reply("250 2.1.0 OK")
                }
            }
            Request::Rcpt { to } => {
                if !transaction.mail {
                    return reply("503 5.5.1 MAIL first");
                }
                if transaction.recipients.len() >= self.limits.max_recipients {
                    return reply("452 4.5.3 Too many recipients");
                }
                match self.email.bounce_recipient(&self.directory, &to.address).await {
                    Ok(Some(recipient)) => {
                        transaction.recipients.push(recipient);
                        reply("250 2.1.5 OK")
                    }
                    Ok(None) => {
                        tracing::info!(recipient = %shown_address(&to.address), "bounce listener: refused a recipient");
                        reply("550 5.1.1 No such recipient here (this host relays nothing)")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "bounce listener: cannot check a recipient");
                        reply("451 4.3.0 Temporary failure, try again later")
                    }
                }
            }
            Request::Data => {
                if transaction.recipients.is_empty() {
                    reply("554 5.5.1 No valid recipients")
                } else {
                    ("354 End data with <CR><LF>.<CR><LF>\r\n".to_owned(), Next::Data)
                }
            }
            Request::Rset => {
                *transaction = Transaction::default();
                reply("250 2.0.0 OK")
            }
            Request::Noop { .. } => reply("250 2.0.0 OK"),
            Request::Quit => ("221 2.0.0 Bye\r\n".to_owned(), Next::Quit),
            Request::Vrfy { .. } => reply("252 2.5.0 Cannot verify"),
            Request::StartTls
            | Request::Auth { .. }
            | Request::Bdat { .. }
            | Request::Expn { .. }
            | Request::Help { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => reply("502 5.5.1 Command not implemented"),
        }
    }

    /// Takes a received message for its recipients; the reply to `DATA`.
    async fn message(&self, recipients: &[Recipient], body: &[u8]) -> String {
        let mut accepted = 0;
        for recipient in recipients {
            match self.email.take_report(&self.directory, recipient, body).await {
                Ok(Intake::Recorded { recorded, message, kind }) => {
                    accepted += 1;
                    match recorded {
                        Recorded::UnknownMessage => {
                            tracing::info!(token = %recipient.shown, "bounce listener: a report about no known message")
                        }
                        _ => tracing::info!(
                            workspace = %recipient.workspace, %message, ?kind, ?recorded,
                            "bounce listener: report recorded"
                        ),
                    }
                }
                Ok(Intake::Notice { action }) => {
                    accepted += 1;
                    tracing::info!(message = %recipient.message, action, "bounce listener: a delivery notice, nothing to record");
                }
                Ok(Intake::Unreadable(error)) => {
                    tracing::info!(token = %recipient.shown, %error, "bounce listener: refused a message that is not a report");
                    return "550 5.6.0 Not a delivery status notification or feedback report\r\n".to_owned();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bounce listener: cannot record a report");
                    return "451 4.3.0 Temporary failure, try again later\r\n".to_owned();
                }
            }
        }
        format!("250 2.0.0 Report taken for {accepted} recipient(s)\r\n")
    }
}

/// The reply to a command the parser refused.
fn refusal(error: &smtp_proto::Error) -> String {
    match error {
        smtp_proto::Error::ResponseTooLong => "500 5.5.2 Line too long\r\n".to_owned(),
        smtp_proto::Error::UnknownCommand => "500 5.5.1 Unknown command\r\n".to_owned(),
        smtp_proto::Error::InvalidSenderAddress | smtp_proto::Error::InvalidRecipientAddress => {
            "501 5.1.3 Bad address syntax\r\n".to_owned()
        }
        _ => "501 5.5.4 Syntax error\r\n".to_owned(),
    }
}

/// An address for the log: a return path's token shortened, any other address as given.
fn shown_address(address: &str) -> String {
    match super::token::token_of(address) {
        Some(token) => address.replace(token, &super::token::redacted(token)),
        None => address.chars().take(120).collect(),
    }
}
