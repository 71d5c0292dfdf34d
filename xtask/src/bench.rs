//! `cargo xtask bench`: a loopback benchmark of Herald's durable event ingest,
//! measured next to a no-op HTTP handler in the same run.
//!
//! The machines Herald is developed and tested on are shared and noisy, so an
//! absolute requests-per-second figure means little on its own. Every run
//! therefore first measures a no-op axum handler (`cargo xtask noop-server`, a
//! separate process, like Herald) with the very same load generator, and
//! reports Herald's figures next to it and as a ratio of it.
//!
//! What a run does:
//!
//! 1. `cargo xtask bench` is compiled without optimisations (the `xtask`
//!    alias), which would slow the load generator down; it builds
//!    `target/release/xtask` and re-runs itself from there with the same
//!    arguments. That process builds `target/release/herald`
//!    (`cargo build --release -p herald-server`).
//! 2. Scenario "no-op": starts `xtask noop-server` on a free loopback port and
//!    measures it, then stops it. On SQLite runs, scenario "durable no-op"
//!    does the same with `xtask noop-server --durable PATH`, which commits
//!    every body to SQLite (one INSERT, group commit) before answering: the
//!    cost of committing to SQLite alone, which Herald's ingest, doing more,
//!    cannot undercut.
//! 3. For each contact count K of `--contacts` (default 1,000 and 1,000,000):
//!    starts `herald serve` on a fresh SQLite database in a temporary
//!    directory (or on `--postgres URL`), creates a `generic` source, imports
//!    K contacts through `POST /api/v1/contacts/import` in CSV batches of
//!    100,000 rows (timed), checks one event is accepted, then measures
//!    ingest with every event naming one of the K contacts (and a share of
//!    never-seen ones, `--new-contacts`), then stops Herald and deletes the
//!    directory.
//! 4. Measures the no-op server again: if its throughput moved by more than
//!    15% the machine's load changed during the run, and the report says so.
//!    Ratios are to the mean of both no-op runs.
//! 5. Prints a Markdown report to stdout (progress goes to stderr): machine,
//!    load average, date, commit, the exact command, a table with requests/s,
//!    p50, p99, max, errors and the ratio to the no-op baseline, and the
//!    targets from BENCHMARKS.md checked against the figures.
//!
//! The load generator runs in this process on a tokio runtime with 2 worker
//! threads: `--connections` (default 64) HTTP/1.1 keep-alive connections,
//! each sending requests back to back, a 2 s warm-up that is not counted,
//! then `--duration` (default 10 s) measured. Every latency (request sent to
//! response body read) goes into an HDR histogram; non-2xx answers and
//! transport errors are counted, reported, and make the run exit non-zero.
//! On a 2-core machine the generator shares the cores with the server, as
//! `wrk -t2` did for the baselines in the project notes: figures are for
//! comparing with each other, not an estimate of a dedicated server.
//!
//! `--target-url URL` skips building and starting anything and just measures
//! that URL (e.g. a Herald you started yourself, or `cargo xtask
//! noop-server`), which is also how the generator is checked on its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{SignalWatch, cargo, step, workspace_root};

/// Connections when `--connections` is not given; the targets are defined at 64.
const DEFAULT_CONNECTIONS: u32 = 64;
/// Contact counts when `--contacts` is not given.
const DEFAULT_CONTACTS: [u64; 2] = [1_000, 1_000_000];
/// Contact counts with `--quick`.
const QUICK_CONTACTS: [u64; 2] = [1_000, 100_000];
/// Measured time per scenario when `--duration` is not given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Measured time per scenario with `--quick`.
const QUICK_DURATION: Duration = Duration::from_secs(3);
/// Rows per `POST /api/v1/contacts/import` call.
const IMPORT_BATCH: u64 = 100_000;
/// The no-op handler's answer, which is also Herald's `status` field.
const NOOP_RESPONSE: &str = r#"{"status":"accepted"}"#;
/// The throughput target: durable ingest at least this share of the no-op's.
const TARGET_RATIO: f64 = 0.5;
/// The latency target: p99 at most this, in microseconds.
const TARGET_P99_US: u64 = 25_000;
/// The scaling target: throughput at the largest contact count at least this
/// share of that at the smallest.
const TARGET_SCALING: f64 = 0.8;
/// How much the two no-op runs may differ before the report warns.
const BASELINE_DRIFT: f64 = 0.15;
/// The connection count the targets are defined at.
const TARGET_CONNECTIONS: u32 = 64;
/// A single benchmark request taking longer than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Limit for setup calls (creating the source, the preflight event).
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for one import batch.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a server may take to print its URL (Herald migrates first).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Options of `cargo xtask bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Measured time per scenario, after the warm-up: `10`, `10s`, `1500ms`,
    /// `1m`. [default: 10s; 3s with --quick]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Unmeasured warm-up per scenario (connections open, caches fill).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
    warmup: Duration,
    /// Concurrent HTTP/1.1 keep-alive connections, each sending requests back
    /// to back.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Contact counts to measure Herald ingest at, comma-separated; `k` and
    /// `m` suffixes allowed (`1k,1m`). Each count gets a fresh server (and SQLite
    /// database), that many imported contacts, and events naming them. [default: 1000,1000000;
    /// 1000,100000 with --quick]
    #[arg(long, value_name = "N,N,...", value_delimiter = ',', value_parser = parse_count)]
    contacts: Vec<u64>,
    /// A fast check: --duration 3s and --contacts 1000,100000 unless given.
    /// Not for publishing figures.
    #[arg(long)]
    quick: bool,
    /// Percentage of ingest requests naming a never-seen email, so that the
    /// contact upsert creates a contact; the rest name one of the imported
    /// contacts, drawn uniformly.
    #[arg(long, value_name = "PERCENT", default_value_t = 10,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    new_contacts: u8,
    /// Run Herald on this PostgreSQL database instead of a fresh SQLite file
    /// per scenario. The bench adds contacts and events to it (each scenario
    /// uses its own emails) and leaves them there.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Only measure this URL with the load generator (POSTing ingest-like JSON
    /// bodies): builds and starts nothing, no baseline. For checking a server
    /// you started yourself, or the generator against `cargo xtask
    /// noop-server`.
    #[arg(long, value_name = "URL", conflicts_with_all = ["postgres", "baseline_only", "herald"])]
    target_url: Option<String>,
    /// Only measure the no-op baseline (no Herald build or run).
    #[arg(long, conflicts_with_all = ["postgres", "herald"])]
    baseline_only: bool,
    /// Measure this herald executable instead of building
    /// `target/release/herald` (e.g. an older build, for comparison).
    #[arg(long, value_name = "PATH")]
    herald: Option<PathBuf>,
    /// Worker threads of the load generator's tokio runtime.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u8).range(1..=64))]
    generator_threads: u8,
}

/// Options of the hidden `cargo xtask noop-server`.
#[derive(Debug, Args)]
pub struct NoopArgs {
    /// Address to listen on; port 0 picks a free one. The URL is printed as
    /// the first line of stdout.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0")]
    bind: String,
    /// Store every body durably in this SQLite database before answering:
    /// one INSERT per request, group commit (WAL, `synchronous=FULL`), the
    /// answer after the commit. The floor under any ingest that commits to
    /// SQLite on this machine.
    #[arg(long, value_name = "PATH")]
    durable: Option<PathBuf>,
}

/// `cargo xtask noop-server`: an axum server on a multi-thread tokio runtime
/// whose only handler reads the request body and answers 200
/// `{"status":"accepted"}` (with `--durable`, after committing the body).
/// Runs until killed.
pub fn noop_server(args: &NoopArgs) -> Result<()> {
    let app = match &args.durable {
        None => axum::Router::new().fallback(noop_handler),
        Some(path) => {
            let (queue, received) = mpsc::channel();
            let db = open_durable(path)?;
            thread::Builder::new()
                .name("durable-writer".to_owned())
                .spawn(move || durable_writer(&db, &received))
                .context("cannot start the writer thread")?;
            axum::Router::new().fallback(durable_handler).with_state(queue)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.bind)
            .await
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let local = listener.local_addr().context("cannot read the bound address")?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "noop server listening on http://{local}")?;
        stdout.flush()?;
        drop(stdout);
        axum::serve(listener, app).await.context("the no-op server failed")
    })
}

async fn noop_handler(body: Bytes) -> impl axum::response::IntoResponse {
    // The `Bytes` extractor has read the whole body; that is all we do.
    drop(body);
    ([(CONTENT_TYPE, "application/json")], NOOP_RESPONSE)
}

/// Most bodies the durable no-op commits in one transaction, as Herald's group commit.
const DURABLE_BATCH: usize = 512;

/// A body waiting for its commit, and who to tell.
type Durable = (Bytes, tokio::sync::oneshot::Sender<()>);

fn open_durable(path: &Path) -> Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
    )
    .with_context(|| format!("cannot set up {}", path.display()))?;
    Ok(db)
}

/// Group commit at its simplest: everything queued goes into one transaction,
/// and each sender hears after the commit.
fn durable_writer(db: &rusqlite::Connection, received: &mpsc::Receiver<Durable>) {
    while let Ok(first) = received.recv() {
        let batch: Vec<Durable> = std::iter::once(first).chain(received.try_iter().take(DURABLE_BATCH - 1)).collect();
        let committed = (|| -> rusqlite::Result<()> {
            let tx = db.unchecked_transaction()?;
            let mut insert = tx.prepare_cached("INSERT INTO bodies (body) VALUES (?1)")?;
            for (body, _) in &batch {
                insert.execute([&body[..]])?;
            }
            drop(insert);
            tx.commit()
        })();
        if let Err(e) = committed {
            eprintln!("durable no-op: commit failed: {e}");
            // Dropping the replies answers 500.
            continue;
        }
        for (_, reply) in batch {
            let _ = reply.send(());
        }
    }
}

async fn durable_handler(
    axum::extract::State(queue): axum::extract::State<mpsc::Sender<Durable>>,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let (reply, committed) = tokio::sync::oneshot::channel();
    if queue.send((body, reply)).is_err() || committed.await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(CONTENT_TYPE, "application/json")], NOOP_RESPONSE).into_response()
}

/// `cargo xtask bench`.
pub fn bench(signals: &SignalWatch, args: &BenchArgs) -> Result<()> {
    if cfg!(debug_assertions) {
        // The `cargo xtask` alias builds without optimisations: a load
        // generator built like that would measure itself. Re-run optimised.
        step("cargo build --release -p xtask (an optimised load generator)");
        if !signals.run(cargo().args(["build", "--release", "-p", "xtask"]))? {
            bail!("could not build the release xtask");
        }
        signals.bail_if_caught()?;
        let exe = target_dir().join("release").join("xtask");
        let mut cmd = Command::new(&exe);
        cmd.args(std::env::args_os().skip(1));
        if !signals.run(&mut cmd)? {
            signals.bail_if_caught()?;
            bail!("{} failed (see above)", exe.display());
        }
        return Ok(());
    }
    run(signals, args)
}

/// Settings resolved from the arguments.
#[derive(Debug)]
struct Settings {
    duration: Duration,
    warmup: Duration,
    connections: u32,
    contacts: Vec<u64>,
    new_percent: u8,
    generator_threads: u8,
    /// Distinguishes this run's never-seen emails from earlier runs' (which
    /// matters on a reused PostgreSQL database).
    run_id: u64,
}

impl Settings {
    fn new(args: &BenchArgs) -> Self {
        let contacts = match (args.contacts.is_empty(), args.quick) {
            (false, _) => args.contacts.clone(),
            (true, true) => QUICK_CONTACTS.to_vec(),
            (true, false) => DEFAULT_CONTACTS.to_vec(),
        };
        let default_duration = if args.quick { QUICK_DURATION } else { DEFAULT_DURATION };
        Self {
            duration: args.duration.unwrap_or(default_duration),
            warmup: args.warmup,
            connections: args.connections,
            contacts,
            new_percent: args.new_contacts,
            generator_threads: args.generator_threads,
            run_id: seed() % 1_000_000,
        }
    }

    /// The pool size where no contacts are imported (baseline, `--target-url`).
    fn first_pool(&self) -> u64 {
        self.contacts.first().copied().unwrap_or(DEFAULT_CONTACTS[0])
    }
}

/// What one scenario measured.
#[derive(Debug)]
struct Scenario {
    kind: ScenarioKind,
    stats: LoadStats,
    /// How long importing the contacts took.
    import: Option<Duration>,
}

impl Scenario {
    /// The scenario's name in the report.
    fn label(&self) -> String {
        let mut name = self.kind.name();
        if let Some(import) = self.import {
            let _ = write!(name, " (import: {:.1} s)", import.as_secs_f64());
        }
        name
    }
}

impl ScenarioKind {
    fn name(self) -> String {
        match self {
            Self::Baseline { again: false } => "no-op axum handler (baseline)".to_owned(),
            Self::Baseline { again: true } => "no-op axum handler, again after Herald".to_owned(),
            Self::DurableNoop => "durable no-op: one SQLite INSERT per request, group commit".to_owned(),
            Self::Target => "`--target-url`".to_owned(),
            Self::Ingest { contacts } => format!("Herald ingest, {} contacts", thousands(contacts)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScenarioKind {
    /// The no-op handler; measured first and, when Herald ran, again last.
    Baseline {
        again: bool,
    },
    /// The no-op handler storing each body in SQLite before answering: what
    /// durability alone costs on this disk, measured after the first baseline.
    DurableNoop,
    Ingest {
        contacts: u64,
    },
    Target,
}

fn run(signals: &SignalWatch, args: &BenchArgs) -> Result<()> {
    let settings = Settings::new(args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(settings.generator_threads))
        .thread_name("load-generator")
        .enable_all()
        .build()
        .context("could not start the load generator's tokio runtime")?;
    let work_dir = target_dir();
    let load_before = load_average();
    let mut scenarios = Vec::new();

    if let Some(url) = &args.target_url {
        step(&format!("measuring {url}"));
        let target = Target::parse(url)?;
        let pool = EmailPool::new(&settings, settings.first_pool(), "");
        let (status, body) = runtime.block_on(preflight(&target, &pool))?;
        eprintln!("xtask: one request answered {status}: {}", snippet(&body));
        let stats = runtime.block_on(generate_load(signals, &settings, &target, &pool))?;
        signals.bail_if_caught()?;
        eprintln!("xtask: {}", stats.summary());
        scenarios.push(Scenario { kind: ScenarioKind::Target, stats, import: None });
    } else {
        let herald = if args.baseline_only {
            None
        } else if let Some(path) = &args.herald {
            Some(path.canonicalize().with_context(|| format!("cannot find {}", path.display()))?)
        } else {
            step("cargo build --release -p herald-server");
            if !signals.run(cargo().args(["build", "--release", "-p", "herald-server"]))? {
                bail!("could not build herald in release mode");
            }
            signals.bail_if_caught()?;
            Some(target_dir().join("release").join("herald"))
        };

        eprintln!("xtask: load average before the run: {load_before}");
        scenarios.push(baseline_scenario(signals, &runtime, &settings, ScenarioKind::Baseline { again: false })?);
        if herald.is_some() && args.postgres.is_none() {
            scenarios.push(baseline_scenario(signals, &runtime, &settings, ScenarioKind::DurableNoop)?);
        }

        if let Some(herald) = herald {
            for &contacts in &settings.contacts {
                step(&format!("scenario: Herald ingest, {} contacts", thousands(contacts)));
                let scenario = herald_scenario(
                    signals,
                    &runtime,
                    &settings,
                    &herald,
                    &work_dir,
                    args.postgres.as_deref(),
                    contacts,
                )?;
                scenarios.push(scenario);
            }
            // The machine is shared: measuring the no-op handler before and
            // after the Herald scenarios shows whether its load changed.
            scenarios.push(baseline_scenario(signals, &runtime, &settings, ScenarioKind::Baseline { again: true })?);
        }
    }

    let report = Report {
        settings: &settings,
        scenarios: &scenarios,
        herald: (args.target_url.is_none() && !args.baseline_only).then(|| {
            let binary =
                args.herald.as_ref().map_or_else(|| "release build".to_owned(), |path| format!("`{}`", path.display()));
            let database = if args.postgres.is_some() {
                "PostgreSQL (one database for all scenarios)".to_owned()
            } else {
                format!("SQLite on {} (a fresh database per scenario)", filesystem_of(&work_dir))
            };
            format!("{binary}, {database}, a fresh server per scenario")
        }),
        quick: args.quick,
        load_before,
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report.render().as_bytes())?;
    stdout.flush()?;
    drop(stdout);

    let errors: u64 = scenarios.iter().map(|s| s.stats.errors).sum();
    if errors > 0 {
        bail!("{} requests failed (see the report): the figures are not valid", thousands(errors));
    }
    Ok(())
}

/// The no-op server (a `Baseline` or the `DurableNoop`) in a process of its
/// own, measured, then stopped.
fn baseline_scenario(
    signals: &SignalWatch,
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    kind: ScenarioKind,
) -> Result<Scenario> {
    step(&format!("scenario: {}", kind.name()));
    let exe = std::env::current_exe().context("cannot find the xtask executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("noop-server").arg("--bind").arg("127.0.0.1:0");
    // Like Herald's, in the target directory: /tmp may be a tmpfs.
    let dir = if kind == ScenarioKind::DurableNoop {
        let dir = tempfile::Builder::new()
            .prefix("noop-bench-")
            .tempdir_in(target_dir())
            .context("cannot create a temporary directory")?;
        cmd.arg("--durable").arg(dir.path().join("noop.db"));
        Some(dir)
    } else {
        None
    };
    let noop = ServerProcess::start(signals, "noop server", cmd, None)?;
    let target = Target::parse(&format!("{}/ingest", noop.base_url))?;
    let pool = EmailPool::new(settings, settings.first_pool(), "");
    runtime.block_on(preflight(&target, &pool))?;
    let stats = runtime.block_on(generate_load(signals, settings, &target, &pool))?;
    drop(noop);
    drop(dir);
    signals.bail_if_caught()?;
    eprintln!("xtask: {}", stats.summary());
    Ok(Scenario { kind, stats, import: None })
}

/// One Herald scenario: fresh server and database, K imported contacts, load.
fn herald_scenario(
    signals: &SignalWatch,
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    herald: &Path,
    work_dir: &Path,
    postgres: Option<&str>,
    contacts: u64,
) -> Result<Scenario> {
    fs::create_dir_all(work_dir).with_context(|| format!("cannot create {}", work_dir.display()))?;
    // In the target directory rather than /tmp, which may be a tmpfs where
    // fsync costs nothing.
    let dir = tempfile::Builder::new()
        .prefix("herald-bench-")
        .tempdir_in(work_dir)
        .with_context(|| format!("cannot create a temporary directory in {}", work_dir.display()))?;
    let database_url = match postgres {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let token = format!("bench-{:016x}{:016x}", seed(), seed().rotate_left(17));
    let log = dir.path().join("herald.log");

    let mut cmd = Command::new(herald);
    cmd.arg("serve").current_dir(dir.path());
    // Nothing from the developer's environment (a config file, a bind
    // address, a database) may leak into the benchmark.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HERALD_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("HERALD_DATABASE_URL", &database_url)
        .env("HERALD_ADMIN_TOKEN", &token)
        // PostgreSQL needs a key for the secrets Herald stores (none are stored here).
        .env("HERALD_SECRET_KEY", "YmVuY2gtc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJjZGU=")
        .env("HERALD_BIND", "127.0.0.1:0")
        .env("HERALD_LOG", "warn")
        // Its log goes to a file: no terminal colour codes.
        .env("NO_COLOR", "1");
    let server = ServerProcess::start(signals, "herald", cmd, Some(log.clone()))?;
    let result = (|| -> Result<Scenario> {
        let base = &server.base_url;
        let (status, body) = runtime.block_on(call(
            Method::POST,
            &format!("{base}/api/v1/sources"),
            Some(&token),
            "application/json",
            // Unique, for a PostgreSQL database that already has sources.
            Bytes::from(format!(r#"{{"name": "bench-k{contacts}-{}", "kind": "generic"}}"#, settings.run_id)),
            SETUP_TIMEOUT,
        ))?;
        if status != StatusCode::CREATED {
            bail!("POST /api/v1/sources answered {status}, expected 201: {}", snippet(&body));
        }
        let source: serde_json::Value = serde_json::from_slice(&body)
            .with_context(|| format!("POST /api/v1/sources answered no JSON: {}", snippet(&body)))?;
        let url = find_url(&source)
            .with_context(|| format!("POST /api/v1/sources answered no \"url\": {}", snippet(&body)))?;
        eprintln!("xtask: source created; inbound URL {url}");
        let target = Target::parse(&url)?;
        let suffix = format!(".k{contacts}");

        let import = import_contacts(signals, runtime, base, &token, contacts, &suffix)?;

        let pool = EmailPool::new(settings, contacts, &suffix);
        let (status, body) = runtime.block_on(preflight(&target, &pool))?;
        if !status.is_success() || !body.windows(8).any(|w| w == b"accepted") {
            bail!("an ingest request answered {status} without \"accepted\": {}", snippet(&body));
        }
        eprintln!("xtask: one event answered {status}: {}", snippet(&body));
        let stats = runtime.block_on(generate_load(signals, settings, &target, &pool))?;
        signals.bail_if_caught()?;
        eprintln!("xtask: {}", stats.summary());
        Ok(Scenario { kind: ScenarioKind::Ingest { contacts }, stats, import: Some(import) })
    })();
    let result = result.inspect_err(|_| server.print_log_tail(30));
    if result.is_ok() {
        // Warnings logged during the run say something about the figures.
        let lines = log_tail(&log, 10);
        if !lines.is_empty() {
            eprintln!("xtask: herald logged on stderr (last lines):");
            for line in lines {
                eprintln!("  {line}");
            }
        }
    }
    drop(server);
    drop(dir);
    result
}

/// Imports `count` contacts in CSV batches of [`IMPORT_BATCH`] rows and
/// returns how long it took.
fn import_contacts(
    signals: &SignalWatch,
    runtime: &tokio::runtime::Runtime,
    base: &str,
    token: &str,
    count: u64,
    suffix: &str,
) -> Result<Duration> {
    let url = format!("{base}/api/v1/contacts/import");
    let started = Instant::now();
    let mut done = 0;
    let mut last_body = Bytes::new();
    while done < count {
        let end = count.min(done + IMPORT_BATCH);
        let mut csv = String::with_capacity(usize::try_from((end - done) * 48).unwrap_or(0));
        csv.push_str("email,first_name,plan\n");
        for i in done..end {
            let plan = if i % 3 == 0 { "pro" } else { "free" };
            // Writing to a String cannot fail.
            let _ = writeln!(csv, "user{i}{suffix}@example.com,User{i},{plan}");
        }
        let (status, body) =
            runtime.block_on(call(Method::POST, &url, Some(token), "text/csv", Bytes::from(csv), IMPORT_TIMEOUT))?;
        if !status.is_success() {
            bail!("importing contacts {done}..{end} answered {status}: {}", snippet(&body));
        }
        // The summary's shape is Herald's business; a `failed` count, when
        // there is one, must be 0, or the pool names contacts that don't exist.
        let failed =
            serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|summary| summary.get("failed")?.as_u64());
        if failed.is_some_and(|failed| failed > 0) {
            bail!("importing contacts {done}..{end}: rows failed: {}", snippet(&body));
        }
        done = end;
        last_body = body;
        eprintln!(
            "xtask: imported {} / {} contacts ({:.1} s)",
            thousands(done),
            thousands(count),
            started.elapsed().as_secs_f64()
        );
        signals.bail_if_caught()?;
    }
    let took = started.elapsed();
    eprintln!(
        "xtask: import of {} contacts took {:.1} s ({} rows/s); last answer: {}",
        thousands(count),
        took.as_secs_f64(),
        thousands(rate(count, took)),
        snippet(&last_body)
    );
    Ok(took)
}

/// Finds the first string field named `url` in a JSON document.
fn find_url(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(url)) = map.get("url") {
                return Some(url.clone());
            }
            map.values().find_map(find_url)
        }
        serde_json::Value::Array(items) => items.iter().find_map(find_url),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/// A server running as a child process; stopped (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
struct ServerProcess {
    name: &'static str,
    child: Child,
    /// `http://127.0.0.1:PORT`, as printed by the server.
    base_url: String,
    /// Where its stderr goes, if not inherited.
    log: Option<PathBuf>,
}

impl ServerProcess {
    /// Starts `cmd` and waits for it to print a line with its `http://` URL.
    fn start(signals: &SignalWatch, name: &'static str, mut cmd: Command, log: Option<PathBuf>) -> Result<Self> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        if let Some(log) = &log {
            let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
            cmd.stderr(file);
        }
        let mut child = cmd.spawn().with_context(|| format!("could not start {name}: {cmd:?}"))?;
        let stdout = child.stdout.take();
        let mut server = Self { name, child, base_url: String::new(), log };
        let stdout = stdout.context("the child's stdout was not captured")?;
        let (tx, rx) = mpsc::channel();
        // Reads the URL line, then keeps draining stdout so that the server
        // never blocks on a full pipe.
        thread::Builder::new()
            .name(format!("{name} stdout"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(start) = line.find("http://") {
                        let url = line[start..]
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .trim_end_matches('/')
                            .to_owned();
                        // Nobody listens any more after the first URL.
                        let _ = tx.send(url);
                    }
                }
            })
            .context("could not start a thread")?;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(url) => {
                    server.base_url = url;
                    break;
                }
                Err(RecvTimeoutError::Timeout) => {
                    signals.bail_if_caught()?;
                    if let Some(status) = server.child.try_wait()? {
                        server.print_log_tail(30);
                        bail!("{name} exited ({status}) before printing its URL");
                    }
                    if Instant::now() > deadline {
                        server.print_log_tail(30);
                        bail!("{name} printed no URL within {} s", STARTUP_TIMEOUT.as_secs());
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait()?;
                    server.print_log_tail(30);
                    bail!("{name} closed stdout ({status}) without printing its URL");
                }
            }
        }
        eprintln!("xtask: {name} (pid {}) listening on {}", server.child.id(), server.base_url);
        Ok(server)
    }

    fn print_log_tail(&self, lines: usize) {
        if let Some(log) = &self.log {
            let tail = log_tail(log, lines);
            if !tail.is_empty() {
                eprintln!("xtask: last lines of {}'s log:", self.name);
                for line in tail {
                    eprintln!("  {line}");
                }
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // It may just have exited: nothing to do then.
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => thread::sleep(Duration::from_millis(50)),
            }
        }
        eprintln!("xtask: {} did not exit within {} s of SIGTERM; killing it", self.name, STOP_TIMEOUT.as_secs());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `lines` non-empty lines of a file (nothing if unreadable).
fn log_tail(path: &Path, lines: usize) -> Vec<String> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].iter().map(|l| (*l).to_owned()).collect()
}

/// Cargo's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| if dir.is_absolute() { dir } else { workspace_root().join(dir) })
        .unwrap_or_else(|| workspace_root().join("target"))
}

// ---------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------

/// Where requests go: a resolved address plus the Host header and path.
#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("not a URL: {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs can be measured, not {url:?}");
        }
        let authority = uri.authority().with_context(|| format!("no host in {url:?}"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = (authority.host(), port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {}", authority.host()))?
            .next()
            .with_context(|| format!("{} resolves to no address", authority.host()))?;
        let path = uri.path_and_query().map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Self { addr, host: authority.as_str().to_owned(), path })
    }
}

/// Opens an HTTP/1.1 connection; its driver runs as a task of its own.
async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP handshake failed")?;
    tokio::spawn(async move {
        // An error here surfaces as an error of the pending request.
        let _ = connection.await;
    });
    Ok(sender)
}

/// One request on a fresh connection (setup calls, not measured).
async fn call(
    method: Method,
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: Bytes,
    limit: Duration,
) -> Result<(StatusCode, Bytes)> {
    let target = Target::parse(url)?;
    let what = format!("{method} {url}");
    let exchange = async {
        let mut sender = connect(target.addr).await?;
        let mut request = Request::builder()
            .method(method)
            .uri(target.path.as_str())
            .header(HOST, target.host.as_str())
            .header(CONTENT_TYPE, content_type);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = sender.send_request(request.body(Full::new(body))?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    tokio::time::timeout(limit, exchange)
        .await
        .with_context(|| format!("{what}: no answer within {} s", limit.as_secs()))?
        .with_context(|| format!("{what} failed"))
}

/// A single ingest-like request before the run, to fail early and clearly.
async fn preflight(target: &Target, pool: &EmailPool) -> Result<(StatusCode, Bytes)> {
    let mut rng = Rng::new(seed());
    let url = format!("http://{}{}", target.host, target.path);
    let (status, body) = call(
        Method::POST,
        &url,
        None,
        "application/json",
        // A connection number no load connection has: its new email is unique.
        pool.body(&mut rng, u32::MAX, 0),
        SETUP_TIMEOUT,
    )
    .await?;
    if !status.is_success() {
        bail!("POST {url} answered {status}: {}", snippet(&body));
    }
    Ok((status, body))
}

/// The first 300 characters of a body, on one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim().replace('\n', " ");
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

// ---------------------------------------------------------------------------
// Load generator
// ---------------------------------------------------------------------------

/// The emails events name: `user{i}{suffix}@example.com` for i < size (the
/// imported contacts), and a never-seen one for `new_percent`% of requests.
#[derive(Debug, Clone)]
struct EmailPool {
    size: u64,
    suffix: String,
    new_percent: u8,
    run_id: u64,
}

impl EmailPool {
    fn new(settings: &Settings, size: u64, suffix: &str) -> Self {
        Self { size, suffix: suffix.to_owned(), new_percent: settings.new_percent, run_id: settings.run_id }
    }

    /// A request body (≈ 90–110 bytes) for connection `conn`'s `seq`-th request.
    fn body(&self, rng: &mut Rng, conn: u32, seq: u64) -> Bytes {
        let draw = rng.next();
        let n = seq % 1000;
        let body = if draw % 100 < u64::from(self.new_percent) {
            format!(
                r#"{{"email":"new{conn}x{seq}r{}{}@example.com","event":"page_viewed","data":{{"plan":"pro","n":{n}}}}}"#,
                self.run_id, self.suffix
            )
        } else {
            let user = (draw >> 8) % self.size;
            format!(
                r#"{{"email":"user{user}{}@example.com","event":"page_viewed","data":{{"plan":"pro","n":{n}}}}}"#,
                self.suffix
            )
        };
        Bytes::from(body)
    }
}

/// splitmix64: a tiny, fast, good-enough generator for picking emails.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A seed from the clock and the pid; not secret, just different per call.
fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(0));
    Rng::new(nanos ^ u64::from(std::process::id()).rotate_left(32)).next()
}

/// What a load run measured.
#[derive(Debug)]
struct LoadStats {
    /// 2xx responses to requests started in the measured window.
    ok: u64,
    /// Non-2xx responses, transport errors and timeouts in the window.
    errors: u64,
    /// Errors by kind ("HTTP 503", "timeout", …).
    error_kinds: BTreeMap<String, u64>,
    /// The first non-2xx response, for diagnosis.
    first_error: Option<String>,
    /// Latencies of the 2xx responses, in microseconds.
    latencies: Histogram<u64>,
    /// From the start of the window to the last counted response.
    elapsed: Duration,
}

impl LoadStats {
    fn new() -> Result<Self> {
        Ok(Self {
            ok: 0,
            errors: 0,
            error_kinds: BTreeMap::new(),
            first_error: None,
            // 1 µs to 1 h, 3 significant digits.
            latencies: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .map_err(|e| anyhow!("cannot create a histogram: {e:?}"))?,
            elapsed: Duration::ZERO,
        })
    }

    fn error(&mut self, kind: String) {
        self.errors += 1;
        *self.error_kinds.entry(kind).or_default() += 1;
    }

    fn merge(&mut self, other: Self) -> Result<()> {
        self.ok += other.ok;
        self.errors += other.errors;
        for (kind, n) in other.error_kinds {
            *self.error_kinds.entry(kind).or_default() += n;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.add(&other.latencies).map_err(|e| anyhow!("cannot merge histograms: {e:?}"))?;
        self.elapsed = self.elapsed.max(other.elapsed);
        Ok(())
    }

    fn requests_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }

    fn p(&self, quantile: f64) -> u64 {
        self.latencies.value_at_quantile(quantile)
    }

    fn summary(&self) -> String {
        let mut text = format!(
            "{} requests/s, p50 {}, p99 {}, max {}, {} ok, {} errors",
            thousands(self.requests_per_sec().round() as u64),
            ms(self.p(0.5)),
            ms(self.p(0.99)),
            ms(self.latencies.max()),
            thousands(self.ok),
            thousands(self.errors)
        );
        for (kind, n) in &self.error_kinds {
            let _ = write!(text, "; {kind}: {n}");
        }
        if let Some(first) = &self.first_error {
            let _ = write!(text, "; first error: {first}");
        }
        text
    }
}

/// The time window shared by all connections of a run.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// Runs the load: `settings.connections` connections, warm-up, measured window.
async fn generate_load(
    signals: &SignalWatch,
    settings: &Settings,
    target: &Target,
    pool: &EmailPool,
) -> Result<LoadStats> {
    eprintln!(
        "xtask: {} connections, {:.1} s warm-up + {:.1} s measured, POST http://{}{}",
        settings.connections,
        settings.warmup.as_secs_f64(),
        settings.duration.as_secs_f64(),
        target.host,
        target.path
    );
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = Arc::clone(&stop);
        let signals = signals.clone();
        tokio::spawn(async move {
            loop {
                if signals.caught().is_some() {
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let start = Instant::now() + settings.warmup;
    let window = Window { start, end: start + settings.duration };
    let target = Arc::new(target.clone());
    let pool = Arc::new(pool.clone());
    let base_seed = seed();
    let tasks: Vec<_> = (0..settings.connections)
        .map(|conn| {
            let target = Arc::clone(&target);
            let pool = Arc::clone(&pool);
            let stop = Arc::clone(&stop);
            let rng = Rng::new(base_seed ^ u64::from(conn).wrapping_mul(0x2545_F491_4F6C_DD1D));
            tokio::spawn(connection_loop(conn, target, pool, rng, window, stop))
        })
        .collect();
    let mut stats = LoadStats::new()?;
    for task in tasks {
        stats.merge(task.await.context("a connection task panicked")??)?;
    }
    watcher.abort();
    stats.elapsed = stats.elapsed.max(settings.duration);
    Ok(stats)
}

/// One connection: requests back to back until the window ends.
async fn connection_loop(
    conn: u32,
    target: Arc<Target>,
    pool: Arc<EmailPool>,
    mut rng: Rng,
    window: Window,
    stop: Arc<AtomicBool>,
) -> Result<LoadStats> {
    let mut stats = LoadStats::new()?;
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut seq = 0_u64;
    let mut last_done = window.start;
    loop {
        let now = Instant::now();
        if now >= window.end || stop.load(Ordering::Relaxed) {
            break;
        }
        let measured = now >= window.start;
        let mut current = match sender.take() {
            Some(sender) => sender,
            None => match connect(target.addr).await {
                Ok(sender) => sender,
                Err(err) => {
                    if measured {
                        stats.error(format!("connect: {}", err.root_cause()));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let body = pool.body(&mut rng, conn, seq);
        seq += 1;
        let request = Request::post(target.path.as_str())
            .header(HOST, target.host.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .context("cannot build a request")?;
        let started = Instant::now();
        let exchange = async {
            current.ready().await?;
            let response = current.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await;
        let done = Instant::now();
        let latency = done.duration_since(started);
        let measured = started >= window.start;
        match outcome {
            Ok(Ok((status, body))) => {
                sender = Some(current);
                if !measured {
                    continue;
                }
                last_done = done;
                if status.is_success() {
                    stats.ok += 1;
                    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                    stats.latencies.saturating_record(micros.max(1));
                } else {
                    stats.error(format!("HTTP {}", status.as_u16()));
                    if stats.first_error.is_none() {
                        stats.first_error = Some(format!("{status}: {}", snippet(&body)));
                    }
                }
            }
            Ok(Err(err)) => {
                // The connection is unusable: open a new one.
                if measured {
                    last_done = done;
                    stats.error(format!("transport: {err}"));
                }
            }
            Err(_) => {
                if measured {
                    last_done = done;
                    stats.error(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()));
                }
            }
        }
    }
    stats.elapsed = last_done.saturating_duration_since(window.start);
    Ok(stats)
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Report<'a> {
    settings: &'a Settings,
    scenarios: &'a [Scenario],
    /// Which Herald ran on which database, if Herald ran.
    herald: Option<String>,
    /// /proc/loadavg's 1, 5 and 15 minute figures when the run started.
    load_before: String,
    quick: bool,
}

impl Report<'_> {
    fn render(&self) -> String {
        let s = self.settings;
        let mut out = String::new();
        let baselines: Vec<f64> = self
            .scenarios
            .iter()
            .filter(|sc| matches!(sc.kind, ScenarioKind::Baseline { .. }))
            .map(|sc| sc.stats.requests_per_sec())
            .collect();
        // Ratios are to the mean of the no-op runs, before and after Herald.
        let baseline = (!baselines.is_empty()).then(|| baselines.iter().sum::<f64>() / baselines.len() as f64);
        let _ = writeln!(out, "\n### {} — commit {}\n", date(), git_commit());
        if self.quick {
            let _ = writeln!(out, "**Quick run (`--quick`): a smoke check, not figures to publish.**\n");
        }
        let _ = writeln!(out, "- Command: `{}`", command_line());
        let _ = writeln!(out, "- Machine: {}; load average before the run {}", machine(), self.load_before);
        let _ = writeln!(
            out,
            "- Load: {} HTTP/1.1 keep-alive connections from a Rust generator (hyper, \
             tokio with {} worker threads) in the xtask process, sharing the cores with \
             the server; {} s warm-up, then {} s measured per scenario",
            s.connections,
            s.generator_threads,
            trim_float(s.warmup.as_secs_f64()),
            trim_float(s.duration.as_secs_f64()),
        );
        if let Some(herald) = &self.herald {
            let _ = writeln!(
                out,
                "- Herald: {herald}; events POSTed to a `generic` source, {}% naming a \
                 never-seen email, the rest one of the imported contacts",
                s.new_percent
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "| scenario | requests/s | p50 | p99 | max | errors | vs no-op |");
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for scenario in self.scenarios {
            let st = &scenario.stats;
            let name = scenario.label();
            let errors = if st.errors > 0 { format!("**{}** ⚠", thousands(st.errors)) } else { "0".to_owned() };
            let ratio = baseline.map_or_else(|| "—".to_owned(), |b| percent(st.requests_per_sec(), b));
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {errors} | {ratio} |",
                thousands(st.requests_per_sec().round() as u64),
                ms(st.p(0.5)),
                ms(st.p(0.99)),
                ms(st.latencies.max()),
            );
        }
        if let [first, .., last] = baselines[..] {
            let change = (last - first) / first.max(f64::MIN_POSITIVE);
            if change.abs() > BASELINE_DRIFT {
                let _ = writeln!(
                    out,
                    "\n⚠ The no-op handler's throughput changed by {:+.0}% between the start \
                     and the end of the run: the machine's load changed, so the figures are \
                     uncertain. Run again when it is quieter.",
                    change * 100.0
                );
            }
        }
        let flagged: Vec<_> = self.scenarios.iter().filter(|sc| sc.stats.errors > 0).collect();
        if !flagged.is_empty() {
            let _ = writeln!(out, "\n⚠ **This run had errors; its figures are not valid.**");
            for sc in flagged {
                let _ = writeln!(out, "- {}: {}", sc.label(), sc.stats.summary());
            }
        }
        self.render_targets(&mut out, baseline);
        out
    }

    /// The targets from BENCHMARKS.md, checked against the figures.
    fn render_targets(&self, out: &mut String, baseline: Option<f64>) {
        let ingest: Vec<(u64, &LoadStats)> = self
            .scenarios
            .iter()
            .filter_map(|sc| match sc.kind {
                ScenarioKind::Ingest { contacts } => Some((contacts, &sc.stats)),
                _ => None,
            })
            .collect();
        let Some(baseline) = baseline.filter(|_| !ingest.is_empty()) else {
            return;
        };
        let verdict = |ok: bool| if ok { "pass" } else { "**FAIL**" };
        let _ = writeln!(out, "\nTargets:");
        if self.settings.connections != TARGET_CONNECTIONS {
            let _ = writeln!(
                out,
                "(defined at {TARGET_CONNECTIONS} connections; this run used {})",
                self.settings.connections
            );
        }
        for (contacts, st) in &ingest {
            let rps = st.requests_per_sec();
            let p99 = st.p(0.99);
            let _ = writeln!(
                out,
                "- {} contacts: throughput {} of the no-op (≥ {:.0}%: {}), p99 {} (≤ {}: {})",
                thousands(*contacts),
                percent(rps, baseline),
                TARGET_RATIO * 100.0,
                verdict(rps >= TARGET_RATIO * baseline),
                ms(p99),
                ms(TARGET_P99_US),
                verdict(p99 <= TARGET_P99_US),
            );
        }
        if let Some(durable) = self.scenarios.iter().find(|sc| sc.kind == ScenarioKind::DurableNoop) {
            let floor = durable.stats.requests_per_sec();
            let _ = writeln!(
                out,
                "- for reference, not a target: the durable no-op reached {} of the no-op, and Herald's ingest {} of the durable no-op",
                percent(floor, baseline),
                ingest
                    .iter()
                    .map(|(contacts, st)| format!(
                        "{} (at {} contacts)",
                        percent(st.requests_per_sec(), floor),
                        thousands(*contacts)
                    ))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        let smallest = ingest.iter().min_by_key(|(contacts, _)| *contacts);
        let largest = ingest.iter().max_by_key(|(contacts, _)| *contacts);
        if let (Some((small_n, small)), Some((large_n, large))) = (smallest, largest)
            && small_n != large_n
        {
            let ratio = large.requests_per_sec() / small.requests_per_sec().max(f64::MIN_POSITIVE);
            let _ = writeln!(
                out,
                "- scaling: throughput at {} contacts is {} of that at {} (≥ {:.0}%: {})",
                thousands(*large_n),
                percent(large.requests_per_sec(), small.requests_per_sec()),
                thousands(*small_n),
                TARGET_SCALING * 100.0,
                verdict(ratio >= TARGET_SCALING),
            );
            if *large_n < 1_000_000 {
                let _ = writeln!(out, "  (the target is defined at 1,000,000 contacts vs 1,000)");
            }
        }
    }
}

/// `2024-05-01 12:34 UTC`, from `date`.
fn date() -> String {
    command_output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .unwrap_or_else(|| "unknown date".to_owned())
}

/// `abc1234`, or `abc1234 + uncommitted changes`.
fn git_commit() -> String {
    let root = workspace_root();
    let Some(commit) = command_output(Command::new("git").args(["rev-parse", "--short", "HEAD"]).current_dir(&root))
    else {
        return "unknown".to_owned();
    };
    let dirty =
        command_output(Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]).current_dir(&root))
            .is_some_and(|status| !status.is_empty());
    if dirty { format!("{commit} + uncommitted changes") } else { commit }
}

/// The command's trimmed stdout, if it ran and succeeded.
fn command_output(cmd: &mut Command) -> Option<String> {
    let output = cmd.stderr(Stdio::null()).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `cargo xtask bench …` as run, shell-quoted, passwords in URLs hidden.
fn command_line() -> String {
    let mut line = "cargo xtask".to_owned();
    for arg in std::env::args_os().skip(1) {
        let arg = redact_password(&arg.to_string_lossy());
        let plain = arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | ',' | '=' | '@' | '+'));
        line.push(' ');
        if plain && !arg.is_empty() {
            line.push_str(&arg);
        } else {
            let _ = write!(line, "'{}'", arg.replace('\'', r"'\''"));
        }
    }
    line
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_password(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return text.to_owned();
    };
    let Some(colon) = rest[..at].find(':') else {
        return text.to_owned();
    };
    format!("{}{}:***{}", &text[..scheme_end + 3], &rest[..colon], &rest[at..])
}

/// `0.12 0.30 0.25`: the load averages over 1, 5 and 15 minutes.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `AMD EPYC, nproc 2, 23.4 GiB RAM, Linux 6.1.0`.
fn machine() -> String {
    let cores = thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|line| {
            let kb: u64 = line.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse().ok()?;
            Some(format!("{:.1} GiB RAM", kb as f64 / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown memory".to_owned());
    let kernel =
        fs::read_to_string("/proc/sys/kernel/osrelease").map(|k| format!(", Linux {}", k.trim())).unwrap_or_default();
    format!("{model}, nproc {cores}, {memory}{kernel}")
}

/// The type of the filesystem `path` is on (from /proc/mounts), e.g. `ext4`.
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let mount_point = fields.next()?.replace("\\040", " ");
            let fs_type = fields.next()?;
            path.starts_with(&mount_point).then(|| (mount_point.len(), fs_type.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "an unknown filesystem".to_owned(), |(_, fs_type)| fs_type)
}

/// Microseconds as milliseconds: `0.84 ms`, `12.3 ms`, `250 ms`.
fn ms(micros: u64) -> String {
    let millis = micros as f64 / 1000.0;
    if millis < 10.0 {
        format!("{millis:.2} ms")
    } else if millis < 100.0 {
        format!("{millis:.1} ms")
    } else {
        format!("{millis:.0} ms")
    }
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(value: f64, of: f64) -> String {
    if of > 0.0 { format!("{:.0}%", value / of * 100.0) } else { "—".to_owned() }
}

/// `10` rather than `10.0`, `1.5` stays.
fn trim_float(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}

/// Items per second.
fn rate(count: u64, took: Duration) -> u64 {
    let secs = took.as_secs_f64();
    if secs > 0.0 { (count as f64 / secs).round() as u64 } else { 0 }
}

/// `10`, `10s`, `1500ms`, `1m`, `2.5s`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 =
        number.trim().parse().map_err(|_| format!("not a duration: {text:?} (e.g. 10, 10s, 1500ms, 1m)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))
}

/// `1000`, `1_000`, `100k`, `1m` (at least 1).
fn parse_count(text: &str) -> Result<u64, String> {
    let cleaned = text.trim().replace('_', "").to_ascii_lowercase();
    let (number, factor) = if let Some(n) = cleaned.strip_suffix('k') {
        (n, 1_000)
    } else if let Some(n) = cleaned.strip_suffix('m') {
        (n, 1_000_000)
    } else {
        (cleaned.as_str(), 1)
    };
    let value: u64 = number.parse().map_err(|_| format!("not a count: {text:?} (e.g. 1000, 100k, 1m)"))?;
    let value = value.checked_mul(factor).ok_or_else(|| format!("{text:?} is too large"))?;
    if value == 0 {
        return Err("the count must be at least 1".to_owned());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_durable_noop_commits_every_body_before_answering() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("noop.db");
        let (queue, received) = mpsc::channel::<Durable>();
        let db = open_durable(&path).expect("open");
        let writer = thread::spawn(move || durable_writer(&db, &received));
        let answers: Vec<_> = (0..300)
            .map(|i| {
                let (reply, answer) = tokio::sync::oneshot::channel();
                queue.send((Bytes::from(format!("body {i}")), reply)).expect("queue");
                answer
            })
            .collect();
        for answer in answers {
            answer.blocking_recv().expect("answered after its commit");
        }
        // Read from another connection while the writer still runs: every answered body is
        // committed.
        let check = rusqlite::Connection::open(&path).expect("reopen");
        let (count, last): (i64, Vec<u8>) = check
            .query_row("SELECT COUNT(*), (SELECT body FROM bodies ORDER BY id DESC LIMIT 1) FROM bodies", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .expect("count");
        assert_eq!(count, 300);
        assert_eq!(last, b"body 299");
        let mode: String = check.query_row("PRAGMA journal_mode", [], |row| row.get(0)).expect("journal mode");
        assert_eq!(mode, "wal");
        drop(queue);
        writer.join().expect("the writer stops when the server's queue is gone");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn counts_parse() {
        assert_eq!(parse_count("1000"), Ok(1000));
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_count("100k"), Ok(100_000));
        assert_eq!(parse_count("1M"), Ok(1_000_000));
        assert!(parse_count("0").is_err());
        assert!(parse_count("many").is_err());
    }

    #[test]
    fn numbers_format() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(ms(840), "0.84 ms");
        assert_eq!(ms(12_345), "12.3 ms");
        assert_eq!(ms(250_000), "250 ms");
        assert_eq!(trim_float(10.0), "10");
        assert_eq!(trim_float(2.5), "2.5");
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact_password("postgres://herald:s3cret@db:5432/herald"), "postgres://herald:***@db:5432/herald");
        assert_eq!(redact_password("postgres://herald@db/herald"), "postgres://herald@db/herald");
        assert_eq!(redact_password("http://x/a@b:c"), "http://x/a@b:c");
        assert_eq!(redact_password("--quick"), "--quick");
    }

    #[test]
    fn source_url_is_found() {
        let value = serde_json::json!({"source": {"id": 1, "url": "http://h/in/abc"}});
        assert_eq!(find_url(&value).as_deref(), Some("http://h/in/abc"));
        assert_eq!(find_url(&serde_json::json!({"id": 1})), None);
    }

    #[test]
    fn bodies_name_pool_or_new_emails() {
        let settings = Settings {
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            connections: 1,
            contacts: vec![10],
            new_percent: 0,
            generator_threads: 2,
            run_id: 7,
        };
        let pool = EmailPool::new(&settings, 10, ".k10");
        let mut rng = Rng::new(1);
        for seq in 0..100 {
            let body = pool.body(&mut rng, 3, seq);
            let value: serde_json::Value = serde_json::from_slice(&body).expect("bodies are JSON");
            let email = value["email"].as_str().expect("an email");
            let user: u64 = email
                .strip_prefix("user")
                .and_then(|e| e.strip_suffix(".k10@example.com"))
                .and_then(|n| n.parse().ok())
                .expect("a pool email");
            assert!(user < 10);
            assert!(body.len() < 130);
        }
        let all_new = EmailPool { new_percent: 100, ..pool };
        let body = all_new.body(&mut rng, 3, 5);
        let value: serde_json::Value = serde_json::from_slice(&body).expect("bodies are JSON");
        assert_eq!(value["email"], "new3x5r7.k10@example.com");
    }

    #[test]
    fn targets_parse() {
        let target = Target::parse("http://127.0.0.1:8080/in/abc?x=1").expect("a URL");
        assert_eq!(target.addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(target.host, "127.0.0.1:8080");
        assert_eq!(target.path, "/in/abc?x=1");
        assert!(Target::parse("https://127.0.0.1/").is_err());
    }
}
