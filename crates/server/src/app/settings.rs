//! The table of settings: the one place where each setting is named (file key, environment
//! variable, flag), given its default and documented. `herald config example` and the help of
//! `herald serve` are generated from it, so neither can leave a setting out or drift from the
//! other; `config.rs` reads the values and names a bad one the way this table does.

use std::fmt::Write as _;

/// Which commands read a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every command (a global flag).
    Global,
    /// `serve` and `config check`.
    Serve,
}

/// What happens when a setting is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// This value, written as TOML.
    Value(&'static str),
    /// No value: `means` says what Herald does then; `example` (TOML) shows a value.
    Unset { means: &'static str, example: &'static str },
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The key in the settings file; the flag is the same with `-` for `_`.
    pub key: &'static str,
    pub env: &'static str,
    pub scope: Scope,
    pub default: DefaultValue,
    /// What it does, in lines of prose: the first is the flag's short help.
    pub doc: &'static str,
}

impl Setting {
    pub fn flag(&self) -> String {
        format!("--{}", self.key.replace('_', "-"))
    }

    /// The default as `--help` shows it.
    pub fn default_text(&self) -> String {
        match self.default {
            DefaultValue::Value(toml) => toml.trim_matches('"').to_owned(),
            DefaultValue::Unset { means, .. } => means.to_owned(),
        }
    }

    /// The help text of the flag: the doc, then the default.
    pub fn help(&self) -> String {
        let doc = self.doc.split_whitespace().collect::<Vec<_>>().join(" ");
        format!("{doc} [default: {}]", self.default_text())
    }
}

use DefaultValue::{Unset, Value};
use Scope::{Global, Serve};

/// Every setting, in the order the example file lists them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "database_url",
        env: "HERALD_DATABASE_URL",
        scope: Global,
        default: Value("\"sqlite://herald.db\""),
        doc: "Database. `sqlite://PATH` keeps everything in one local file (created if missing, WAL mode).
              `postgres://USER:PASSWORD@HOST:PORT/DATABASE` lets several Herald processes share the work.",
    },
    Setting {
        key: "log_format",
        env: "HERALD_LOG_FORMAT",
        scope: Global,
        default: Value("\"text\""),
        doc: "Log line format: \"text\" for people, \"json\" (one object per line) for log collectors.",
    },
    Setting {
        key: "log",
        env: "HERALD_LOG",
        scope: Global,
        default: Value("\"info\""),
        doc: "Log filter, in tracing's syntax: a level, or per-module levels like \"info,herald=debug\".",
    },
    Setting {
        key: "secret_key",
        env: "HERALD_SECRET_KEY",
        scope: Global,
        default: Unset {
            means: "with SQLite, a key file beside the database, created on first start; required with PostgreSQL",
            example: "\"…32 bytes in base64…\"",
        },
        doc: "The key that encrypts the secrets Herald stores (SMTP and webhook passwords, signing
              secrets, DKIM keys, saved actions): 32 bytes in base64, e.g. `openssl rand -base64 32`.
              Unset with SQLite, Herald creates a key file beside the database on first start (e.g.
              herald.db.key, mode 0600): back it up with the database. Required with PostgreSQL, the
              same on every node. Prefer the environment variable over writing a secret into a file.",
    },
    Setting {
        key: "secret_key_previous",
        env: "HERALD_SECRET_KEY_PREVIOUS",
        scope: Global,
        default: Unset { means: "none", example: "\"…an older key…,…\"" },
        doc: "Earlier secret keys, comma-separated: what they sealed is read and sealed again with the
              current key on start (key rotation).",
    },
    Setting {
        key: "bind",
        env: "HERALD_BIND",
        scope: Serve,
        default: Value("\"127.0.0.1:8080\""),
        doc: "Address the HTTP server listens on. Use 0.0.0.0:8080 to accept connections from other hosts.",
    },
    Setting {
        key: "public_url",
        env: "HERALD_PUBLIC_URL",
        scope: Serve,
        default: Unset { means: "http://<the address bound>", example: "\"https://herald.example.com\"" },
        doc: "Base URL under which others reach this server, used in every URL Herald hands out
              (inbound webhook URLs, unsubscribe links, the first-run login link).",
    },
    Setting {
        key: "admin_token",
        env: "HERALD_ADMIN_TOKEN",
        scope: Serve,
        default: Unset { means: "none", example: "\"change-me-to-a-long-random-string\"" },
        doc: "An admin API key for the `default` workspace, installed at start-up so scripts can drive a
              fresh server. At least 16 visible ASCII characters. Changing it revokes the previous value.
              Prefer the environment variable over writing a secret into a file.",
    },
    Setting {
        key: "worker",
        env: "HERALD_WORKER",
        scope: Serve,
        default: Value("true"),
        doc: "Run job workers (journey steps, deliveries) in this process. Set to false for API-only nodes.",
    },
    Setting {
        key: "worker_concurrency",
        env: "HERALD_WORKER_CONCURRENCY",
        scope: Serve,
        default: Value("128"),
        doc: "How many jobs this process runs at once (1 to 1024).",
    },
    Setting {
        key: "job_lease_secs",
        env: "HERALD_JOB_LEASE_SECS",
        scope: Serve,
        default: Value("30"),
        doc: "Seconds a claimed job stays reserved for the worker that claimed it. If the process dies
              holding jobs, they run elsewhere after at most this long.",
    },
    Setting {
        key: "queue_poll_ms",
        env: "HERALD_QUEUE_POLL_MS",
        scope: Serve,
        default: Value("1000"),
        doc: "Longest pause in milliseconds between looks at the queue when nothing is due. Work enqueued
              by this process wakes its workers at once; this bounds the delay for work from other nodes.",
    },
    Setting {
        key: "shutdown_timeout_secs",
        env: "HERALD_SHUTDOWN_TIMEOUT_SECS",
        scope: Serve,
        default: Value("10"),
        doc: "Seconds to let in-flight requests and jobs finish after SIGTERM before exiting anyway.
              Jobs cut off by the deadline are not lost: their leases expire and they run again.",
    },
    Setting {
        key: "ingest_body_limit",
        env: "HERALD_INGEST_BODY_LIMIT",
        scope: Serve,
        default: Value("262144"),
        doc: "Largest inbound webhook body in bytes; larger requests are answered 413 and logged as
              rejections of their source. A batch request (`.../batch`) may be 16 times this.",
    },
    Setting {
        key: "header_timeout_secs",
        env: "HERALD_HEADER_TIMEOUT_SECS",
        scope: Serve,
        default: Value("30"),
        doc: "Seconds a connection has to send a request's headers, counted from when it opens or its
              previous response was sent; a connection that sends nothing, or stops inside the headers,
              is closed then. (A whole request, its body included, gets 30 seconds.)",
    },
    Setting {
        key: "max_connections",
        env: "HERALD_MAX_CONNECTIONS",
        scope: Serve,
        default: Unset {
            means: "the open-file limit less room for the database, SMTP and outbound webhooks",
            example: "4096",
        },
        doc: "Most HTTP connections open at once. Beyond it, new connections wait in the listen backlog
              until one closes, and the log says so; it is held below the process's open-file limit,
              whose soft value Herald raises to the hard one at start.",
    },
    Setting {
        key: "smtp_url",
        env: "HERALD_SMTP_URL",
        scope: Serve,
        default: Unset {
            means: "none: email goes to the outbox",
            example: "\"smtp://user:password@smtp.example.com:587?pool=8\"",
        },
        doc: "The SMTP relay for workspaces that have not set their own (PUT /api/v1/transport). Without
              one, campaign email goes to the embedded outbox (GET /api/v1/messages). `smtp://` uses
              STARTTLS (port 587), `smtps://` implicit TLS (465), `?security=none` plain text for a relay
              on this host. Query parameters: pool (connections), timeout (seconds), rate and domain_rate
              (messages per second). User and password are percent-encoded.",
    },
    Setting {
        key: "dns_resolver",
        env: "HERALD_DNS_RESOLVER",
        scope: Serve,
        default: Unset { means: "the system's resolver", example: "\"1.1.1.1:53\"" },
        doc: "The DNS server (IP:PORT) that sending-domain checks ask.",
    },
    Setting {
        key: "spf",
        env: "HERALD_SPF",
        scope: Serve,
        default: Unset {
            means: "none: SPF is reported but not required",
            example: "\"include:_spf.mail.example.net\"",
        },
        doc: "The SPF mechanism that covers the IPs this node sends from (`include:…` or `ip4:…`).
              Domains are told to publish it, and verification requires it.",
    },
    Setting {
        key: "domain_recheck_secs",
        env: "HERALD_DOMAIN_RECHECK_SECS",
        scope: Serve,
        default: Value("21600"),
        doc: "Seconds between checks of each sending domain's DNS records; a record that disappears from
              a verified domain is reported as a warning on the domain.",
    },
    Setting {
        key: "send_rate",
        env: "HERALD_SEND_RATE",
        scope: Serve,
        default: Unset { means: "no limit", example: "100" },
        doc: "The most messages per second this node hands to SMTP, over all workspaces.",
    },
    Setting {
        key: "bounce_smtp_bind",
        env: "HERALD_BOUNCE_SMTP_BIND",
        scope: Serve,
        default: Unset { means: "off: Herald receives no mail", example: "\"0.0.0.0:25\"" },
        doc: "Where (IP:PORT) Herald listens for the bounces and complaints that come back to its messages'
              return paths (`bounces+…@bounces.<domain>`, when a domain was given a bounce host). It takes mail
              for those addresses only, never relays, and limits message size (1 MiB), connections and time.",
    },
    Setting {
        key: "sns_cert_url_prefixes",
        env: "HERALD_SNS_CERT_URL_PREFIXES",
        scope: Serve,
        default: Unset { means: "none", example: "\"https://sns.internal.example/\"" },
        doc: "URL prefixes, besides https://sns.<region>.amazonaws.com/, from which SNS signing certificates
              are fetched and subscriptions confirmed, comma separated, each ending in `/` (tests and private
              deployments only: a certificate from such a URL is trusted to sign SES notifications).",
    },
    Setting {
        key: "webhook_allow_cidrs",
        env: "HERALD_WEBHOOK_ALLOW_CIDRS",
        scope: Serve,
        default: Unset { means: "none", example: "\"10.1.0.0/16\"" },
        doc: "Address ranges outbound webhooks may reach although they are private, loopback, link-local
              or otherwise special (checked on the address actually connected to), comma separated.",
    },
    Setting {
        key: "webhook_allow_http",
        env: "HERALD_WEBHOOK_ALLOW_HTTP",
        scope: Serve,
        default: Value("false"),
        doc: "Let webhooks use plain http:// URLs (local tests only; the default is https only).",
    },
    Setting {
        key: "webhook_disable_after_secs",
        env: "HERALD_WEBHOOK_DISABLE_AFTER_SECS",
        scope: Serve,
        default: Value("432000"),
        doc: "Seconds an endpoint may fail every attempt (5 days by default, at least 3600) before its
              calls are turned off; the reason is recorded and the endpoint can be enabled again.",
    },
];

/// The setting with this file key. Every key `config.rs` reads is in the table (a test
/// checks), so a miss is a programming error.
pub fn setting(key: &str) -> &'static Setting {
    SETTINGS.iter().find(|s| s.key == key).unwrap_or_else(|| panic!("setting {key:?} is missing from SETTINGS"))
}

const EXAMPLE_HEADER: &str = "\
# Herald settings file. Every setting is optional; shown here with its default.
#
# Precedence, highest first: command-line flag, environment variable, this file, default.
# Pass the file with `herald --config herald.toml serve` (or HERALD_CONFIG=herald.toml).
# A bad value stops start-up with one line naming the setting and what is wrong; an unknown
# key does too, so a typo cannot silently fall back to a default.
";

/// The commented example file, which doubles as the operator's manual of settings: settings
/// with a default are written out with it; the others are commented out with an example.
pub fn example_file() -> String {
    let mut out = EXAMPLE_HEADER.to_owned();
    for setting in SETTINGS {
        out.push('\n');
        for line in setting.doc.lines() {
            let _ = writeln!(out, "# {}", line.trim());
        }
        let _ = writeln!(out, "# Env: {}   Flag: {}", setting.env, setting.flag());
        match setting.default {
            Value(toml) => {
                let _ = writeln!(out, "{} = {toml}", setting.key);
            }
            Unset { means, example } => {
                let _ = writeln!(out, "# Default: {means}.");
                let _ = writeln!(out, "# {} = {example}", setting.key);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_one_rule() {
        for s in SETTINGS {
            assert_eq!(s.env, format!("HERALD_{}", s.key.to_uppercase()), "{}", s.key);
            assert!(!s.doc.trim().is_empty(), "{} is documented", s.key);
        }
        let mut keys: Vec<_> = SETTINGS.iter().map(|s| s.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), SETTINGS.len(), "keys are unique");
    }

    #[test]
    fn the_example_file_names_every_setting_with_its_variable_and_flag() {
        let example = example_file();
        for s in SETTINGS {
            assert!(example.contains(&format!("# Env: {}   Flag: {}\n", s.env, s.flag())), "{}", s.key);
            let assignment = match s.default {
                Value(toml) => format!("\n{} = {toml}\n", s.key),
                Unset { example, .. } => format!("\n# {} = {example}\n", s.key),
            };
            assert!(example.contains(&assignment), "{}: {assignment}", s.key);
        }
    }

    #[test]
    fn the_readme_settings_table_lists_every_variable() {
        let readme = include_str!("../../../../README.md");
        let table = readme
            .split("## Settings")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("README has a Settings section");
        for s in SETTINGS {
            assert!(table.contains(&format!("`{}`", s.env)), "README's settings table lacks {}", s.env);
        }
    }
}
