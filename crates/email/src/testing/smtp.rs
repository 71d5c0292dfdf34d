//! A real SMTP server for tests (`smtp_sink.py`, Python's `aiosmtpd` on loopback) that keeps
//! every accepted message as a file, and the independent DKIM check (Python's `dkimpy`).
//!
//! Recipients steer the sink's replies by their local part: `tempfail-once…` (451 at RCPT the
//! first time that address is seen, accepted afterwards), `throttle-once…` (the same with
//! `451 4.7.1 Rate limited: too many messages, slow down`), `tempfail…` (always
//! `451 4.3.0 Try again later`), `reject…` (`550 5.1.1 No such user`), `slow<N>…` (the reply
//! to DATA waits N seconds, 5 by default). Any other address is accepted.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

const SINK: &str = include_str!("smtp_sink.py");

/// What the sink should ask of clients.
#[derive(Clone, Debug, Default)]
pub struct SinkOptions {
    /// When set, `AUTH PLAIN`/`LOGIN` is offered (over plain text too) and required before
    /// `MAIL`; other credentials get `535 5.7.8 Authentication credentials invalid`.
    pub auth: Option<(String, String)>,
    /// When set, the sink speaks TLS with a self-signed certificate for `localhost` and
    /// `127.0.0.1` (so clients need `accept_invalid_certs`).
    pub tls: Option<SinkTls>,
}

/// How the sink offers TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkTls {
    /// `STARTTLS` offered and required before `MAIL`.
    StartTls,
    /// TLS from the first byte.
    Implicit,
}

/// One accepted message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The message as the client sent it (CRLF line endings, dot-unstuffed).
    pub data: Vec<u8>,
}

#[derive(Deserialize)]
struct Head {
    mail_from: String,
    rcpt_tos: Vec<String>,
}

/// The running sink; dropping it kills and reaps the process and removes its files.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    /// Held open: the sink exits when it reads end-of-file, even if this process is killed.
    _stdin: Option<ChildStdin>,
    port: u16,
    tls: Option<SinkTls>,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(SinkOptions::default())
    }

    /// Starts the sink and returns once it listens (it prints its port when bound).
    pub fn start_with(options: SinkOptions) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let script = dir.path().join("smtp_sink.py");
        std::fs::write(&script, SINK)?;
        let messages = dir.path().join("messages");
        std::fs::create_dir(&messages)?;
        let stderr = std::fs::File::create(dir.path().join("stderr.log"))?;

        let mut command = Command::new(super::python());
        command.arg(&script).arg(&messages);
        if let Some((user, password)) = &options.auth {
            command.arg("--auth").arg(user).arg(password);
        }
        match options.tls {
            Some(SinkTls::StartTls) => command.args(["--tls", "starttls"]),
            Some(SinkTls::Implicit) => command.args(["--tls", "implicit"]),
            None => &mut command,
        };
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr).spawn()?;
        let stdin = child.stdin.take();

        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let port = line.strip_prefix("READY ").and_then(|p| p.trim().parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
            return Err(std::io::Error::other(format!(
                "the SMTP sink did not start (is aiosmtpd installed for {}?): {line}{log}",
                super::python()
            )));
        };
        Ok(Self { child, _stdin: stdin, port, tls: options.tls, dir })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Settings that reach this sink (its TLS mode, its certificate accepted; no credentials),
    /// as `SmtpClient::new` takes them.
    pub fn settings(&self) -> crate::smtp::SmtpSettings {
        use crate::smtp::Security;
        crate::smtp::SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            security: match self.tls {
                None => Security::None,
                Some(SinkTls::StartTls) => Security::StartTls,
                Some(SinkTls::Implicit) => Security::Tls,
            },
            accept_invalid_certs: self.tls.is_some(),
            hello_name: Some("client.herald.test".to_owned()),
            timeout: Duration::from_secs(10),
            ..crate::smtp::SmtpSettings::default()
        }
    }

    fn messages_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("messages")
    }

    /// How many messages have been accepted so far.
    pub fn count(&self) -> usize {
        finished_files(&self.messages_dir()).len()
    }

    /// Every message accepted so far, in the order their transactions completed.
    pub fn received(&self) -> Vec<Received> {
        finished_files(&self.messages_dir())
            .iter()
            .filter_map(|path| std::fs::read(path).ok())
            .filter_map(|bytes| parse(&bytes))
            .collect()
    }

    /// Waits until at least `n` messages were accepted or `timeout` passed, then returns all of
    /// them (fewer than `n` on timeout: the caller's assertion says what is missing).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        while self.count() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.received()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Completed message files, sorted by their sequence number (zero-padded, so by name).
fn finished_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn parse(bytes: &[u8]) -> Option<Received> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let head: Head = serde_json::from_slice(&bytes[..newline]).ok()?;
    Some(Received { mail_from: head.mail_from, rcpt_tos: head.rcpt_tos, data: bytes[newline + 1..].to_vec() })
}

const VERIFY: &str = r#"
import logging, sys, dkim
txt = sys.argv[1].encode()
message = sys.stdin.buffer.read()
asked = []
def dnsfunc(name, timeout=5):
    asked.append(name)
    return txt if b"._domainkey." in name else None
logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="%(message)s")
verifier = dkim.DKIM(message, logger=logging.getLogger("dkim"))
try:
    ok = verifier.verify(dnsfunc=dnsfunc)
except dkim.DKIMException as e:
    print("dkim error: %s" % e, file=sys.stderr)
    ok = False
if not ok:
    print("asked DNS for %r" % asked, file=sys.stderr)
    sys.exit(1)
"#;

/// Verifies the DKIM signature of `message` with Python's `dkimpy`, never with Herald's code.
/// dkimpy asks DNS for `<s>._domainkey.<d>.` (from the signature's tags); the answer here is
/// `selector_txt` (e.g. `DkimKey::dns_txt_value()`), so the caller checks `d=` and `s=` itself
/// if they matter. `Err` carries dkimpy's explanation and debug log.
pub fn verify_dkim(message: &[u8], selector_txt: &str) -> Result<(), String> {
    let mut child = Command::new(super::python())
        .arg("-c")
        .arg(VERIFY)
        .arg(selector_txt)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run {}: {e}", super::python()))?;
    // The message is written from another thread while `wait_with_output` drains the pipes.
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let message = message.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&message));
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = writer.join();
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "dkimpy did not verify the signature ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
