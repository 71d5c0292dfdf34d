//! The command line: subcommands and their flags. Flags that are settings also read an
//! environment variable (clap gives the flag precedence); `config.rs` then fills what neither
//! gave from the optional TOML file, then from defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Herald: a self-hosted, webhook-first lifecycle messaging engine.
///
/// Systems send Herald events over HTTP; Herald keeps contacts and their history, runs the
/// campaigns those events trigger, sends email and calls other systems through signed,
/// retried webhooks. One binary: embedded SQLite with zero configuration, or several
/// stateless nodes sharing PostgreSQL.
///
/// Settings come from flags, then environment variables, then the TOML file given by
/// --config, then built-in defaults (`herald config example` prints a commented file).
#[derive(Debug, Parser)]
#[command(name = "herald", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every subcommand understands.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML settings file; its values apply where no flag or environment variable is given.
    #[arg(long, global = true, env = "HERALD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database: `sqlite://PATH` (created if missing) or `postgres://USER:PASS@HOST/DB`.
    /// [default: sqlite://herald.db]
    #[arg(long, global = true, env = "HERALD_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Log line format: `text` for people, `json` for machines. [default: text]
    #[arg(long, global = true, env = "HERALD_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log filter in tracing's syntax, e.g. `info` or `herald=debug,sqlx=warn`. [default: info]
    #[arg(long, global = true, env = "HERALD_LOG", value_name = "FILTER")]
    pub log: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: the HTTP API, inbound webhooks and the job workers.
    ///
    /// Applies pending migrations, makes sure the `default` workspace exists, installs
    /// HERALD_ADMIN_TOKEN as that workspace's admin key when set, then listens and prints the
    /// URL. SIGTERM or Ctrl-C stops accepting, lets in-flight requests and jobs finish
    /// (bounded by --shutdown-timeout-secs) and exits 0.
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    ///
    /// `serve` migrates on start too; run this explicitly before rolling out a new version to
    /// several nodes. Safe to run from several processes at once.
    Migrate,
    /// Manage admin API keys.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Manage workspaces (tenants).
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Manage the people who log in to the web UI with an email and a password.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect and exercise the durable job queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. [default: 127.0.0.1:8080]
    #[arg(long, env = "HERALD_BIND", value_name = "HOST:PORT")]
    pub bind: Option<String>,
    /// Base URL under which others reach this server; used in URLs Herald hands out (inbound
    /// webhook URLs, unsubscribe links). [default: http://<bind address>]
    #[arg(long, env = "HERALD_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// An admin API key for the `default` workspace, so scripts can drive a fresh server.
    /// At least 16 visible ASCII characters. Starting with a different value revokes the
    /// previous one.
    #[arg(long, env = "HERALD_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Run job workers in this process (`false` makes an API-only node). [default: true]
    #[arg(long, env = "HERALD_WORKER", value_name = "BOOL")]
    pub worker: Option<bool>,
    /// Jobs one process runs at the same time. [default: 16]
    #[arg(long, env = "HERALD_WORKER_CONCURRENCY", value_name = "N")]
    pub worker_concurrency: Option<u32>,
    /// Seconds a claimed job stays reserved for its worker; a worker that dies holding jobs
    /// delays them by at most this long. [default: 30]
    #[arg(long, env = "HERALD_JOB_LEASE_SECS", value_name = "SECS")]
    pub job_lease_secs: Option<u64>,
    /// Longest pause, in milliseconds, between looks at the queue when no job is due
    /// (other nodes may enqueue work this process is not told about). [default: 1000]
    #[arg(long, env = "HERALD_QUEUE_POLL_MS", value_name = "MS")]
    pub queue_poll_ms: Option<u64>,
    /// Seconds to wait for in-flight requests and jobs on shutdown. [default: 10]
    #[arg(long, env = "HERALD_SHUTDOWN_TIMEOUT_SECS", value_name = "SECS")]
    pub shutdown_timeout_secs: Option<u64>,
    /// Largest inbound webhook body in bytes; larger requests get 413. A batch may be 16
    /// times this. [default: 262144]
    #[arg(long, env = "HERALD_INGEST_BODY_LIMIT", value_name = "BYTES")]
    pub ingest_body_limit: Option<usize>,
    /// The SMTP relay of workspaces without their own, e.g.
    /// `smtp://user:password@smtp.example.com:587` (STARTTLS), `smtps://…:465` (implicit TLS)
    /// or `smtp://127.0.0.1:25?security=none`. [default: none: email goes to the outbox]
    #[arg(long, env = "HERALD_SMTP_URL", value_name = "URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The DNS server that sending-domain checks ask. [default: the system's resolver]
    #[arg(long, env = "HERALD_DNS_RESOLVER", value_name = "IP:PORT")]
    pub dns_resolver: Option<String>,
    /// The SPF mechanism covering this node's sending IPs (`include:_spf.example.net` or
    /// `ip4:203.0.113.7`), shown in every domain's SPF record and required by verification.
    #[arg(long, env = "HERALD_SPF", value_name = "MECHANISM")]
    pub spf: Option<String>,
    /// Seconds between checks of each sending domain's DNS records. [default: 21600]
    #[arg(long, env = "HERALD_DOMAIN_RECHECK_SECS", value_name = "SECS")]
    pub domain_recheck_secs: Option<u64>,
    /// The most messages per second this node hands to SMTP. [default: no limit]
    #[arg(long, env = "HERALD_SEND_RATE", value_name = "N")]
    pub send_rate: Option<u32>,
    /// Address ranges outbound webhooks may reach although they are private, loopback or
    /// otherwise special, comma separated (e.g. `10.1.0.0/16,127.0.0.1/32`). [default: none]
    #[arg(long, env = "HERALD_WEBHOOK_ALLOW_CIDRS", value_name = "CIDRS")]
    pub webhook_allow_cidrs: Option<String>,
    /// Let webhooks use plain `http://` URLs (local tests). [default: false: https only]
    #[arg(long, env = "HERALD_WEBHOOK_ALLOW_HTTP", value_name = "BOOL")]
    pub webhook_allow_http: Option<bool>,
    /// Seconds an endpoint may fail every attempt before its calls are turned off.
    /// [default: 432000, 5 days]
    #[arg(long, env = "HERALD_WEBHOOK_DISABLE_AFTER_SECS", value_name = "SECS")]
    pub webhook_disable_after_secs: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an admin API key and print it. The key is shown this once; Herald keeps only
    /// its hash.
    Create {
        /// Workspace the key acts for.
        #[arg(long, default_value = "default", value_name = "NAME")]
        workspace: String,
        /// A label to tell keys apart.
        #[arg(long, default_value = "cli", value_name = "LABEL")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace.
    Create {
        /// Lowercase letters, digits, `-` and `_`.
        name: String,
    },
    /// List workspaces.
    List,
}

/// Where a new password comes from.
#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from standard input (one trailing newline is dropped) instead of
    /// asking for it on the terminal.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user who logs in to the web UI with this email and a password of at least 12
    /// characters, asked for on the terminal without echo (or read with --password-stdin).
    Create {
        /// Their email address, which is how they log in (kept lower-cased).
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// Workspace the user works in.
        #[arg(long, default_value = "default", value_name = "NAME")]
        workspace: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List a workspace's users: id, email, created, password last set.
    List {
        #[arg(long, default_value = "default", value_name = "NAME")]
        workspace: String,
    },
    /// Delete a user. Their web UI sessions end at once.
    Delete {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[arg(long, default_value = "default", value_name = "NAME")]
        workspace: String,
    },
    /// Give a user a new password. Every session made with the old one ends.
    SetPassword {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[arg(long, default_value = "default", value_name = "NAME")]
        workspace: String,
        #[command(flatten)]
        password: PasswordSource,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Show how many jobs are due, scheduled, running and dead.
    Stats,
    /// Enqueue ping jobs, whose only effect is a row in the ping log: shows whether workers
    /// drain the queue.
    Ping {
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[arg(long, default_value = "default", value_name = "NAME")]
        workspace: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a settings file with every setting, its default and what it does.
    Example,
    /// Print the settings in effect (secrets redacted) and exit; fails like `serve` would on
    /// a bad setting.
    Check(Box<ServeArgs>),
}
