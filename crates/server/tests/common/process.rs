//! Running the real `herald` binary as a child process: for what only a process shows
//! (start-up, settings, signals, several nodes on one database).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const HERALD: &str = env!("CARGO_BIN_EXE_herald");

/// The secret key every `herald` process of the tests runs with (PostgreSQL requires one;
/// `tests/secrets.rs` covers SQLite's key file).
pub const SECRET_KEY: &str = "dGVzdC1zZWNyZXQta2V5LTAxMjM0NTY3ODlhYmNkZWY=";

/// [`SECRET_KEY`] as a key ring, for a test's own store on the database the processes use.
pub fn secret_keys() -> herald_store::secrets::SecretKeys {
    let key = herald_server::app::config::SecretKey::parse(SECRET_KEY).expect("the test key");
    herald_store::secrets::SecretKeys::new(&key.0, &[])
}

/// Makes `mail.acme.test` a verified sending domain of `workspace`, with an Ed25519 DKIM key
/// (sealed by `store` with the key the processes run with).
pub async fn verified_domain(store: &herald_store::SharedStore, workspace: herald_domain::WorkspaceId) {
    use herald_store::email::{DomainCheck, NewDomain};
    let now = herald_domain::Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc());
    let key = herald_email::dkim::DkimKey::generate(herald_email::dkim::DkimAlgorithm::Ed25519).expect("key");
    let new = NewDomain {
        name: "mail.acme.test".into(),
        selector: "s1".into(),
        algorithm: "ed25519".into(),
        private_key: key.private_key().to_owned(),
        records: serde_json::json!([]),
    };
    let domain = store.create_domain(workspace, new, now).await.expect("domain");
    let verified =
        DomainCheck { status: herald_domain::DomainStatus::Verified, checks: serde_json::json!([]), warning: None };
    store.record_domain_check(workspace, domain.id, &verified, now).await.expect("verified");
}

/// A `herald` command with a clean environment: no HERALD_* variable leaks in from the
/// developer's shell; the secret key is [`SECRET_KEY`].
pub fn herald(dir: &Path) -> Command {
    let mut command = Command::new(HERALD);
    command.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("HERALD_") {
            command.env_remove(key);
        }
    }
    command.env("HERALD_SECRET_KEY", SECRET_KEY);
    command
}

/// A running `herald serve`.
pub struct Server {
    child: Child,
    pub address: String,
    pub stderr_path: PathBuf,
    /// The lines of stdout after the address.
    pub stdout: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `command` (a `serve` invocation) with stderr going to `stderr_path`, and waits
    /// for the line announcing its address.
    pub fn start(mut command: Command, stderr_path: PathBuf) -> Server {
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut child = command.stdout(Stdio::piped()).stderr(stderr).spawn().expect("spawn herald");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            panic!(
                "herald did not announce its address; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            )
        });
        let address = line
            .strip_prefix("Herald is listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        Server { child, address, stderr_path, stdout: rx }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).expect("pid"))
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signal herald");
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "herald did not exit within {limit:?}; stderr:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
