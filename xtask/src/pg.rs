//! A throwaway PostgreSQL cluster for the test suite.
//!
//! [`Cluster::start`] finds (or installs, on Debian) the server binaries,
//! runs `initdb` into a fresh temporary directory and starts the server on a
//! free loopback port with durability turned off (fsync, synchronous commit
//! and full-page writes: the data is thrown away anyway). Dropping the
//! [`Cluster`] stops the server (`pg_ctl stop -m immediate`, falling back to
//! SIGKILL of the pid in `postmaster.pid`) and deletes the directory.
//!
//! PostgreSQL refuses to run as root. When xtask runs as root (CI, containers)
//! the directory is handed to the `postgres` OS user (created by Debian's
//! package) and `initdb`/`pg_ctl` run as that user through `runuser`;
//! otherwise everything runs as the current user.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User, geteuid};
use tempfile::TempDir;

/// The superuser that `initdb` creates; tests connect as this role.
const SUPERUSER: &str = "herald";
/// The OS account that owns and runs the cluster when we are root.
const OS_USER: &str = "postgres";
/// How often `pg_ctl start` is retried when the chosen port got taken between
/// picking it and the server binding it.
const START_ATTEMPTS: u32 = 5;

/// A running throwaway cluster; stopped and deleted on drop.
#[derive(Debug)]
pub struct Cluster {
    /// Directory holding `initdb` and `pg_ctl`.
    bin_dir: PathBuf,
    /// Whether server commands run as [`OS_USER`] via `runuser` (we are root).
    as_os_user: bool,
    data_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    /// Holds the data directory, the server log and the Unix socket. Declared
    /// last so that it is deleted only after `Drop::drop` stopped the server.
    dir: TempDir,
}

impl Cluster {
    /// Creates and starts a cluster; prints progress to stderr.
    pub fn start() -> Result<Self> {
        let bin_dir = server_bin_dir()?;
        let as_os_user = geteuid().is_root();

        let dir = if as_os_user {
            let user = User::from_name(OS_USER)
                .with_context(|| format!("could not look up the `{OS_USER}` OS user"))?
                .with_context(|| {
                    format!(
                        "running as root, but there is no `{OS_USER}` OS user to run PostgreSQL \
                         as (PostgreSQL refuses to run as root); install Debian's `postgresql` \
                         package, which creates it"
                    )
                })?;
            if find_on_path("runuser").is_none() {
                bail!("running as root, but `runuser` (util-linux) is not installed");
            }
            // Not $TMPDIR: it may lie under a directory the postgres user
            // cannot enter (e.g. /root). /tmp is world-traversable.
            let dir = tempfile::Builder::new()
                .prefix("herald-pg-")
                .tempdir_in("/tmp")
                .context("could not create a temporary directory in /tmp")?;
            std::os::unix::fs::chown(dir.path(), Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .with_context(|| format!("could not hand {} to `{OS_USER}`", dir.path().display()))?;
            dir
        } else {
            tempfile::Builder::new().prefix("herald-pg-").tempdir().context("could not create a temporary directory")?
        };

        let mut cluster = Self {
            bin_dir,
            as_os_user,
            data_dir: dir.path().join("data"),
            log_file: dir.path().join("log"),
            port: 0,
            dir,
        };
        cluster.init()?;
        cluster.start_server()?;
        eprintln!("xtask: PostgreSQL ({}) listening on 127.0.0.1:{}", cluster.bin_dir.display(), cluster.port);
        Ok(cluster)
    }

    /// The URL tests connect with: superuser `herald`, no password (trust).
    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    /// The temporary directory holding data, log and socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Prints the last `lines` lines of the server log to stderr.
    pub fn print_log_tail(&self, lines: usize) {
        let log = fs::read_to_string(&self.log_file).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        eprintln!("xtask: --- last {} lines of the PostgreSQL server log ---", tail.len());
        for line in tail {
            eprintln!("{line}");
        }
        eprintln!("xtask: --- end of server log ---");
    }

    /// A command running PostgreSQL's `program` as the right OS user, from
    /// inside the cluster directory (the postgres user may not be able to
    /// enter our working directory, and initdb complains if it can't).
    fn pg_command(&self, program: &str) -> Command {
        let program = self.bin_dir.join(program);
        let mut cmd = if self.as_os_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", OS_USER, "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }

    /// Runs `initdb`: trust authentication, superuser `herald`, UTF-8.
    fn init(&self) -> Result<()> {
        // An explicit locale: the inherited one (LANG) may be unset or not
        // generated on the machine, which makes initdb fail.
        let locale = if cfg!(target_os = "linux") { "C.UTF-8" } else { "C" };
        let mut cmd = self.pg_command("initdb");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["--auth=trust", "-U", SUPERUSER, "--encoding=UTF8", "--no-sync"])
            .arg(format!("--locale={locale}"));
        let output = cmd.output().with_context(|| format!("could not run {cmd:?}"))?;
        if !output.status.success() {
            bail!("initdb failed ({}):\n{}", output.status, output_text(&output));
        }
        Ok(())
    }

    /// Starts the server on a free loopback port and waits until it accepts
    /// connections (`pg_ctl -w`).
    fn start_server(&mut self) -> Result<()> {
        let socket_dir = self.dir.path().to_str().context("temporary directory path is not UTF-8")?;
        if socket_dir.contains('\'') {
            // pg_ctl passes -o through /bin/sh; we single-quote the path.
            bail!("temporary directory path {socket_dir:?} contains a single quote");
        }
        for attempt in 1..=START_ATTEMPTS {
            self.port = free_port()?;
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k '{socket_dir}' \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c max_connections=300 -c shared_buffers=128MB",
                port = self.port
            );
            let mut cmd = self.pg_command("pg_ctl");
            cmd.arg("-D")
                .arg(&self.data_dir)
                .arg("-l")
                .arg(&self.log_file)
                .args(["-w", "-t", "120", "-o", &options, "start"]);
            let output = cmd.output().with_context(|| format!("could not run {cmd:?}"))?;
            if output.status.success() {
                return Ok(());
            }
            let log = fs::read_to_string(&self.log_file).unwrap_or_default();
            if attempt < START_ATTEMPTS && log.contains("Address already in use") {
                eprintln!("xtask: port {} was taken in the meantime; trying another", self.port);
                // So that a later failure's log shows only that attempt.
                let _ = fs::remove_file(&self.log_file);
                continue;
            }
            bail!(
                "pg_ctl start failed ({}):\n{}\n--- server log {} ---\n{log}--- end of server log ---",
                output.status,
                output_text(&output),
                self.log_file.display()
            );
        }
        bail!("could not find a free port for PostgreSQL in {START_ATTEMPTS} attempts")
    }

    /// Stops the server if it is (still) running. Best effort: never fails,
    /// warns on stderr.
    fn stop(&self) {
        let Ok(pid_file) = fs::read_to_string(self.data_dir.join("postmaster.pid")) else {
            return; // Never started, or already stopped.
        };
        let pid = pid_file.lines().next().and_then(|line| line.trim().parse().ok()).map(Pid::from_raw);

        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D").arg(&self.data_dir).args(["-m", "immediate", "-w", "-t", "30", "stop"]);
        match cmd.output() {
            Ok(output) if output.status.success() => {
                eprintln!("xtask: PostgreSQL stopped");
                return;
            }
            Ok(output) => eprintln!("xtask: warning: pg_ctl stop failed:\n{}", output_text(&output)),
            Err(err) => eprintln!("xtask: warning: could not run pg_ctl stop: {err}"),
        }
        // pg_ctl failed (e.g. interrupted): kill the postmaster by its pid
        // file; its backends exit as soon as they notice it is gone.
        let Some(pid) = pid else { return };
        if kill(pid, None).is_err() {
            return; // Already gone.
        }
        eprintln!("xtask: killing postmaster {pid}");
        let _ = kill(pid, Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while kill(pid, None).is_ok() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        // `self.dir` (a TempDir) is dropped next and deletes everything.
    }
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago. Another process
/// may grab it before the server binds it; `start_server` retries then.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("could not bind a loopback port")?;
    Ok(listener.local_addr().context("could not read the bound port")?.port())
}

/// stdout and stderr of a finished command, for error messages.
fn output_text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The directory holding `initdb` and `pg_ctl`, installing Debian's
/// `postgresql` package first if there is none.
fn server_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = find_bin_dir() {
        return Ok(dir);
    }
    eprintln!("xtask: PostgreSQL server binaries (initdb, pg_ctl) not found; installing them");
    install_postgresql()?;
    find_bin_dir().context(
        "installed the `postgresql` package, but still found no initdb and pg_ctl under \
         /usr/lib/postgresql/*/bin or on PATH",
    )
}

/// Looks for `initdb` + `pg_ctl` in Debian's `/usr/lib/postgresql/<version>/bin`
/// (highest version first; Debian doesn't put them on PATH), then on PATH.
fn find_bin_dir() -> Option<PathBuf> {
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            // "15", "16" or old-style "9.6".
            let version: Option<Vec<u32>> = name.to_str()?.split('.').map(|part| part.parse().ok()).collect();
            Some((version?, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_server_binaries(bin))
        .collect();
    versioned.sort();
    if let Some((_, bin)) = versioned.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|dir| has_server_binaries(dir))
}

fn has_server_binaries(dir: &Path) -> bool {
    is_executable(&dir.join("initdb")) && is_executable(&dir.join("pg_ctl"))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The first executable called `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|path| is_executable(path))
}

/// `apt-get install postgresql`, through `sudo` when we are not root.
fn install_postgresql() -> Result<()> {
    apt_install(&["postgresql"], "PostgreSQL server binaries (initdb, pg_ctl) not found")
}

/// `apt-get update && apt-get install -y --no-install-recommends PACKAGES`, through `sudo`
/// when we are not root; `why` says what was missing, for the error when this cannot run.
pub fn apt_install(packages: &[&str], why: &str) -> Result<()> {
    if find_on_path("apt-get").is_none() {
        bail!("{why}, and apt-get is not available: install {} with your package manager", packages.join(" "));
    }
    let sudo = if geteuid().is_root() {
        None
    } else {
        Some(find_on_path("sudo").with_context(|| {
            format!(
                "{why}; not root and no sudo to install them with: run `apt-get install {}` as root",
                packages.join(" ")
            )
        })?)
    };
    let apt_get = |args: &[&str]| -> Result<()> {
        let mut cmd = match &sudo {
            // sudo resets the environment; pass the variable on its command line.
            Some(sudo) => {
                let mut cmd = Command::new(sudo);
                cmd.args(["DEBIAN_FRONTEND=noninteractive", "apt-get"]);
                cmd
            }
            None => {
                let mut cmd = Command::new("apt-get");
                cmd.env("DEBIAN_FRONTEND", "noninteractive");
                cmd
            }
        };
        cmd.args(args);
        eprintln!("xtask: running {cmd:?}");
        let status = cmd.status().with_context(|| format!("could not run {cmd:?}"))?;
        if !status.success() {
            bail!("{cmd:?} failed ({status})");
        }
        Ok(())
    };
    apt_get(&["update"])?;
    apt_get(&[&["install", "-y", "--no-install-recommends"][..], packages].concat())
}
