//! The command line: subcommands and their flags. Flags that are settings also read an
//! environment variable (clap gives the flag precedence); `config.rs` then fills what neither
//! gave from the optional TOML file, then from defaults.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use super::settings::{SETTINGS, Scope, Setting};

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

/// Settings every subcommand understands. Like [`ServeArgs`], documented by [`SETTINGS`].
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML settings file; its values apply where no flag or environment variable is given.
    #[arg(long, global = true, env = "HERALD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, global = true, value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,
    #[arg(long, global = true, value_name = "BASE64", hide_env_values = true)]
    pub secret_key: Option<String>,
    #[arg(long, global = true, value_name = "BASE64,…", hide_env_values = true)]
    pub secret_key_previous: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: the HTTP API, inbound webhooks and the job workers.
    ///
    /// Applies pending migrations, makes sure the `default` workspace exists, installs
    /// HERALD_ADMIN_TOKEN as that workspace's admin key when set, then listens and prints the
    /// URL. SIGTERM or Ctrl-C stops accepting, lets in-flight requests and jobs finish
    /// (bounded by --shutdown-timeout-secs) and exits 0. On a database where nobody can log in
    /// yet (no API key, no user), prints a one-time link that opens the web UI.
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

/// The settings of `serve` (and `config check`). Their help, environment variable and default
/// come from [`SETTINGS`], applied by [`command`].
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long, value_name = "HOST:PORT")]
    pub bind: Option<String>,
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    #[arg(long, value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    #[arg(long, value_name = "BOOL")]
    pub worker: Option<bool>,
    #[arg(long, value_name = "N")]
    pub worker_concurrency: Option<u32>,
    #[arg(long, value_name = "SECS")]
    pub job_lease_secs: Option<u64>,
    #[arg(long, value_name = "MS")]
    pub queue_poll_ms: Option<u64>,
    #[arg(long, value_name = "SECS")]
    pub shutdown_timeout_secs: Option<u64>,
    #[arg(long, value_name = "BYTES")]
    pub ingest_body_limit: Option<usize>,
    #[arg(long, value_name = "SECS")]
    pub header_timeout_secs: Option<u64>,
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    #[arg(long, value_name = "IP:PORT")]
    pub dns_resolver: Option<String>,
    #[arg(long, value_name = "MECHANISM")]
    pub spf: Option<String>,
    #[arg(long, value_name = "SECS")]
    pub domain_recheck_secs: Option<u64>,
    #[arg(long, value_name = "N")]
    pub send_rate: Option<u32>,
    #[arg(long, value_name = "IP:PORT")]
    pub bounce_smtp_bind: Option<String>,
    #[arg(long, value_name = "URLS")]
    pub sns_cert_url_prefixes: Option<String>,
    #[arg(long, value_name = "CIDRS")]
    pub webhook_allow_cidrs: Option<String>,
    #[arg(long, value_name = "BOOL")]
    pub webhook_allow_http: Option<bool>,
    #[arg(long, value_name = "SECS")]
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

/// Gives a derived argument its environment variable and help from the table.
fn documented(arg: clap::Arg, setting: &Setting) -> clap::Arg {
    arg.env(setting.env).help(setting.help())
}

/// The command line, each setting's flag documented from [`SETTINGS`]. Panics (in every test
/// that builds it) if the table names a flag the command does not have.
pub fn command() -> clap::Command {
    let mut root = Cli::command();
    for setting in SETTINGS {
        match setting.scope {
            Scope::Global => root = root.mut_arg(setting.key, |arg| documented(arg, setting)),
            Scope::Serve => {
                root = root
                    .mut_subcommand("serve", |serve| serve.mut_arg(setting.key, |arg| documented(arg, setting)))
                    .mut_subcommand("config", |config| {
                        config
                            .mut_subcommand("check", |check| check.mut_arg(setting.key, |arg| documented(arg, setting)))
                    });
            }
        }
    }
    root
}

/// Parses the process's arguments (and the settings' environment variables); exits with
/// clap's message on an error or after `--help`.
pub fn parse() -> Cli {
    Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arguments that are not settings of the table.
    const NOT_SETTINGS: [&str; 3] = ["help", "version", "config"];

    #[test]
    fn every_flag_of_serve_is_a_setting_of_the_table_and_back() {
        let command = command();
        let serve = command.find_subcommand("serve").expect("serve");
        let ids: Vec<&str> = command
            .get_arguments()
            .chain(serve.get_arguments())
            .map(|a| a.get_id().as_str())
            .filter(|id| !NOT_SETTINGS.contains(id))
            .collect();
        for id in &ids {
            assert!(SETTINGS.iter().any(|s| s.key == *id), "--{id} has no entry in SETTINGS");
        }
        for setting in SETTINGS {
            assert!(ids.contains(&setting.key), "{} is not a flag", setting.key);
        }
    }

    #[test]
    fn serve_help_shows_every_setting_with_its_variable_and_default() {
        let mut command = command();
        // Built, the global settings are part of `serve` too, as at run time.
        command.build();
        let help = command.find_subcommand_mut("serve").expect("serve").render_long_help().to_string();
        // Wrapped lines: compare with whitespace collapsed.
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for setting in SETTINGS {
            assert!(help.contains(&setting.flag()), "{} in serve --help", setting.flag());
            assert!(help.contains(&format!("[env: {}", setting.env)), "{} in serve --help", setting.env);
            let default = format!("[default: {}]", setting.default_text());
            assert!(help.contains(&default), "{default} in serve --help");
        }
    }
}
