//! `cargo xtask` — Herald's developer and CI task runner.
//!
//! `cargo xtask test` is *the* one command that runs Herald's whole test
//! suite, on a developer's machine and in CI (`.ci/run` calls nothing else).
//! It needs nothing but a Rust toolchain and, on Debian, access to the
//! package archive:
//!
//! 1. `cargo fmt --all -- --check` and
//!    `cargo clippy --workspace --all-targets -- -D warnings` (fail fast);
//! 2. makes sure the PostgreSQL server binaries (`initdb`, `pg_ctl`) exist,
//!    installing Debian's `postgresql` package when they don't, and that a
//!    python3 with `aiosmtpd` (a real SMTP server), `dkimpy` (an independent
//!    DKIM verifier) and `standardwebhooks` (an independent webhook signature
//!    verifier) exists: Debian's packages plus a virtual environment under
//!    `target/` (see [`python`]); it reaches the tests as `HERALD_TEST_PYTHON`;
//!    and that Debian's `chromium` and `chromium-driver` are installed (see
//!    [`chromium`]): the driver reaches the web UI tests as
//!    `HERALD_TEST_CHROMEDRIVER`;
//! 3. starts a throwaway PostgreSQL cluster in a temporary directory, listening
//!    on a free loopback port only (see [`pg`]);
//! 4. runs the tests with `HERALD_TEST_POSTGRES_URL` pointing at that cluster
//!    (tests create their own fresh databases under it), using
//!    `cargo nextest` when installed (plus `cargo test --doc`, because nextest
//!    does not run doctests) and `cargo test` otherwise;
//! 5. always stops the cluster and deletes its directory afterwards, also when
//!    tests fail or the run is interrupted with Ctrl-C / SIGTERM;
//! 6. fuzzes the body parser and the mapping engine for `HERALD_FUZZ_SECONDS`
//!    seconds per target (default 30, 0 skips; see [`fuzz`]).
//!
//! `cargo xtask pg` starts the same kind of cluster, prints the
//! `HERALD_TEST_POSTGRES_URL=…` line and keeps it running until Ctrl-C, for
//! developers who want to run `cargo test` by hand.
//!
//! `cargo xtask bench` measures Herald's durable event ingest over loopback
//! next to a no-op HTTP handler (see [`bench`] and BENCHMARKS.md).

mod bench;
mod chromium;
mod fuzz;
mod pg;
mod python;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The environment variable through which tests find the PostgreSQL server.
const URL_VAR: &str = "HERALD_TEST_POSTGRES_URL";

/// Herald's task runner. Run as `cargo xtask <COMMAND>`.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the whole test suite, exactly as CI does.
    ///
    /// Checks formatting (`cargo fmt --check`) and lints (`cargo clippy -D
    /// warnings`), installs PostgreSQL if missing (Debian: apt-get), starts a
    /// throwaway cluster on a free loopback port, runs all tests with
    /// HERALD_TEST_POSTGRES_URL set (`cargo nextest run` if installed, plus
    /// doctests; `cargo test` otherwise) and stops the cluster again.
    Test(TestArgs),
    /// Start a throwaway PostgreSQL cluster and keep it running until Ctrl-C.
    ///
    /// Prints a `HERALD_TEST_POSTGRES_URL=...` line to stdout; export it in
    /// another shell to run `cargo test` by hand. The cluster and its data are
    /// deleted on exit.
    Pg,
    /// Benchmark Herald's durable event ingest against a no-op handler.
    ///
    /// Builds herald and an optimised xtask in release mode, measures a no-op
    /// HTTP server and then Herald's ingest at each contact count over
    /// loopback, and prints a Markdown report (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// The no-op HTTP server `bench` measures as its baseline.
    #[command(hide = true)]
    NoopServer(bench::NoopArgs),
    /// Fuzz the inbound body parser and the mapping engine (cargo-fuzz).
    ///
    /// Installs cargo-fuzz if missing, builds the targets in fuzz/ (with
    /// RUSTC_BOOTSTRAP=1 on a stable toolchain) and runs each one for a
    /// bounded time from the seeds in fuzz/seeds/. Fails on any crash.
    Fuzz(fuzz::FuzzArgs),
}

#[derive(Debug, Args)]
struct TestArgs {
    /// Extra arguments for the test runner (`cargo nextest run` or `cargo
    /// test`), e.g. a test-name filter: `cargo xtask test outbox`.
    ///
    /// Options go first, test-binary arguments after a `--`, as with the
    /// runner itself: `cargo xtask test -p herald-store outbox -- --nocapture`.
    /// Doctests are only run when no extra arguments are given.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "RUNNER_ARGS")]
    args: Vec<OsString>,
}

/// The allocator `herald` runs with, so the bench's no-op baseline server (this process) is
/// measured on the same footing.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::NoopServer(args) = &cli.command {
        // Runs until killed: no signal handling of ours (SIGTERM must end it).
        return match bench::noop_server(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("xtask: error: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let signals = match SignalWatch::install() {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Cmd::Test(args) => test(&signals, &args.args),
        Cmd::Pg => pg_forever(&signals),
        Cmd::Bench(args) => bench::bench(&signals, &args),
        Cmd::Fuzz(args) => fuzz::fuzz(&signals, &args),
        Cmd::NoopServer(_) => unreachable!("handled above"),
    };
    // Every cluster has been dropped (stopped and deleted) by now.
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            if signals.caught().is_some() { ExitCode::from(130) } else { ExitCode::FAILURE }
        }
    }
}

/// `cargo xtask test`.
fn test(signals: &SignalWatch, extra: &[OsString]) -> Result<()> {
    step("cargo fmt --all -- --check");
    if !signals.run(cargo().args(["fmt", "--all", "--", "--check"]))? {
        bail!("formatting check failed: run `cargo fmt --all` and commit the result");
    }
    signals.bail_if_caught()?;

    step("cargo clippy --workspace --all-targets -- -D warnings");
    if !signals.run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))? {
        bail!("clippy reported problems (see above); fix them before running the tests");
    }
    signals.bail_if_caught()?;

    step("Python test tools: aiosmtpd, dkimpy, standardwebhooks");
    let python = python::ensure(&bench::target_dir())
        .context("could not provide the Python packages the email and webhook tests need")?;
    eprintln!("xtask: {}={}", python::PYTHON_VAR, python.display());
    signals.bail_if_caught()?;

    step("Chromium and chromedriver for the web UI tests");
    let chromedriver = chromium::ensure().context("could not provide the browser the web UI tests drive")?;
    eprintln!("xtask: {}={}", chromium::DRIVER_VAR, chromedriver.display());
    signals.bail_if_caught()?;

    step("PostgreSQL: starting a throwaway cluster");
    let cluster = pg::Cluster::start().context("could not start a throwaway PostgreSQL cluster")?;
    let url = cluster.url();
    eprintln!("xtask: {URL_VAR}={url}");
    signals.bail_if_caught()?;

    let nextest = cargo()
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());

    let mut failed = Vec::new();
    if nextest {
        step("cargo nextest run --workspace --no-fail-fast");
        let mut cmd = cargo();
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]).args(extra);
        if !signals
            .run(cmd.env(URL_VAR, &url).env(python::PYTHON_VAR, &python).env(chromium::DRIVER_VAR, &chromedriver))?
        {
            failed.push("cargo nextest run");
        }
        signals.bail_if_caught()?;
        if extra.is_empty() {
            step("cargo test --workspace --doc");
            if !signals.run(
                cargo()
                    .args(["test", "--workspace", "--doc"])
                    .env(URL_VAR, &url)
                    .env(python::PYTHON_VAR, &python)
                    .env(chromium::DRIVER_VAR, &chromedriver),
            )? {
                failed.push("cargo test --doc");
            }
            signals.bail_if_caught()?;
        } else {
            eprintln!("xtask: extra runner arguments given: skipping doctests");
        }
    } else {
        step("cargo test --workspace --no-fail-fast (cargo-nextest not installed)");
        let mut cmd = cargo();
        cmd.args(["test", "--workspace", "--no-fail-fast"]).args(extra);
        if !signals
            .run(cmd.env(URL_VAR, &url).env(python::PYTHON_VAR, &python).env(chromium::DRIVER_VAR, &chromedriver))?
        {
            failed.push("cargo test");
        }
        signals.bail_if_caught()?;
    }

    if !failed.is_empty() {
        // The cluster's log goes away with the cluster: show its end, it
        // explains failures such as "too many clients" or crashed backends.
        cluster.print_log_tail(40);
        bail!("tests failed: {}", failed.join(", "));
    }
    drop(cluster);
    fuzz::fuzz_for_test(signals)?;
    eprintln!("xtask: all checks and tests passed");
    Ok(())
}

/// `cargo xtask pg`: start a cluster and keep it until a signal arrives.
fn pg_forever(signals: &SignalWatch) -> Result<()> {
    let cluster = pg::Cluster::start().context("could not start a throwaway PostgreSQL cluster")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{URL_VAR}={}", cluster.url())?;
    stdout.flush()?;
    drop(stdout);
    eprintln!("xtask: PostgreSQL is running (data in {}).", cluster.dir().display());
    eprintln!("xtask: in another shell: export {URL_VAR}={} && cargo test", cluster.url());
    eprintln!("xtask: press Ctrl-C to stop the cluster and delete its data.");
    let signal = signals.wait();
    eprintln!("xtask: caught {}; stopping PostgreSQL", signal_name(signal));
    drop(cluster);
    Ok(())
}

/// Prints a step header so CI logs show where time goes and what failed.
fn step(what: &str) {
    eprintln!("\nxtask: ==> {what}");
}

/// A `cargo` command run from the workspace root, using the same cargo binary
/// that runs this xtask (`$CARGO`), so toolchain overrides are respected.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Catches SIGINT, SIGTERM and SIGHUP for the whole run, so that xtask is not
/// killed before it has stopped its PostgreSQL cluster.
///
/// A terminal's Ctrl-C reaches every process of the foreground group, so the
/// running child (cargo, the test binaries) gets SIGINT by itself and we only
/// record it. SIGTERM/SIGHUP are usually sent to xtask alone (a CI timeout, a
/// closed session), so we pass them on to the running child as SIGTERM.
/// Either way the child exits, xtask sees the recorded signal, stops the
/// cluster (via its `Drop`) and exits with status 130.
#[derive(Debug, Clone)]
struct SignalWatch {
    state: Arc<SignalState>,
}

#[derive(Debug, Default)]
struct SignalState {
    /// The first signal caught, if any.
    caught: Mutex<Option<i32>>,
    /// Notified when a signal is caught.
    caught_cond: Condvar,
    /// Pid of the child we're currently waiting for.
    child: Mutex<Option<Pid>>,
}

/// Locks a mutex, ignoring poisoning (the data are plain values, always valid).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SignalWatch {
    fn install() -> Result<Self> {
        let state = Arc::new(SignalState::default());
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).context("could not install signal handlers")?;
        let thread_state = Arc::clone(&state);
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    lock(&thread_state.caught).get_or_insert(signal);
                    thread_state.caught_cond.notify_all();
                    if signal != SIGINT
                        && let Some(pid) = *lock(&thread_state.child)
                    {
                        // The child may just have exited: nothing to do then.
                        let _ = kill(pid, Signal::SIGTERM);
                    }
                }
            })
            .context("could not start the signal thread")?;
        Ok(Self { state })
    }

    /// The first signal caught so far.
    fn caught(&self) -> Option<i32> {
        *lock(&self.state.caught)
    }

    fn bail_if_caught(&self) -> Result<()> {
        match self.caught() {
            Some(signal) => bail!("interrupted by {}", signal_name(signal)),
            None => Ok(()),
        }
    }

    /// Blocks until a signal is caught and returns it.
    fn wait(&self) -> i32 {
        let mut caught = lock(&self.state.caught);
        loop {
            if let Some(signal) = *caught {
                return signal;
            }
            caught = self.state.caught_cond.wait(caught).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Runs `cmd` with inherited stdio and returns whether it succeeded.
    fn run(&self, cmd: &mut Command) -> Result<bool> {
        let mut child = cmd.spawn().with_context(|| format!("could not run {cmd:?}"))?;
        let pid = i32::try_from(child.id()).ok().map(Pid::from_raw);
        *lock(&self.state.child) = pid;
        let status = child.wait();
        *lock(&self.state.child) = None;
        let status = status.with_context(|| format!("could not wait for {cmd:?}"))?;
        Ok(status.success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner_args(argv: &[&str]) -> Vec<String> {
        let cli = Cli::try_parse_from(argv).expect("arguments should parse");
        match cli.command {
            Cmd::Test(args) => args.args.iter().map(|a| a.to_string_lossy().into_owned()).collect(),
            _ => panic!("expected the test subcommand"),
        }
    }

    #[test]
    fn runner_args_pass_through() {
        assert!(runner_args(&["xtask", "test"]).is_empty());
        assert_eq!(runner_args(&["xtask", "test", "outbox"]), ["outbox"]);
        assert_eq!(runner_args(&["xtask", "test", "--", "outbox"]), ["outbox"]);
        assert_eq!(runner_args(&["xtask", "test", "outbox", "--", "--nocapture"]), ["outbox", "--", "--nocapture"]);
        assert_eq!(
            runner_args(&["xtask", "test", "-p", "herald-domain", "--", "--nocapture"]),
            ["-p", "herald-domain", "--", "--nocapture"]
        );
    }

    #[test]
    fn cli_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
