//! Reading the settings from their sources, in order (flag or environment variable, then
//! the file, then the default), checking each value and naming where a bad one came from.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use herald_domain::ApiToken;
use herald_webhook::client::ClientSettings;
use herald_webhook::policy::AddressPolicy;
use serde::Deserialize;

use super::values::{parse_public_url, parse_smtp_url, parse_url_prefixes};
use super::{CommonSettings, DatabaseUrl, LogFormat, SecretKey, ServeSettings, SettingError, WorkerSettings};
use crate::app::cli::{GlobalArgs, ServeArgs};
use crate::app::settings;
use crate::delivery::email::EmailSettings;
use crate::delivery::webhooks::WebhookSettings;
use crate::delivery::webhooks::health::DISABLE_AFTER;

const DEFAULT_DATABASE_URL: &str = "sqlite://herald.db";

/// The settings file, as written. Unknown keys are an error.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    bind: Option<String>,
    public_url: Option<String>,
    admin_token: Option<String>,
    log_format: Option<String>,
    log: Option<String>,
    secret_key: Option<String>,
    secret_key_previous: Option<String>,
    worker: Option<bool>,
    worker_concurrency: Option<u32>,
    job_lease_secs: Option<u64>,
    queue_poll_ms: Option<u64>,
    shutdown_timeout_secs: Option<u64>,
    ingest_body_limit: Option<usize>,
    header_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    smtp_url: Option<String>,
    dns_resolver: Option<String>,
    spf: Option<String>,
    domain_recheck_secs: Option<u64>,
    send_rate: Option<u32>,
    bounce_smtp_bind: Option<String>,
    sns_cert_url_prefixes: Option<String>,
    webhook_allow_cidrs: Option<String>,
    webhook_allow_http: Option<bool>,
    webhook_disable_after_secs: Option<u64>,
}

/// Reads the settings file named by the flags, if any.
pub struct Loader {
    file: FileSettings,
    file_name: String,
}

impl fmt::Debug for Loader {
    // The file may hold the admin token: show only where it came from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader").field("file_name", &self.file_name).finish_non_exhaustive()
    }
}

impl Loader {
    pub fn new(global: &GlobalArgs) -> Result<Self, SettingError> {
        let Some(path) = &global.config else {
            return Ok(Self { file: FileSettings::default(), file_name: String::new() });
        };
        let file_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SettingError {
            setting: "HERALD_CONFIG (--config)".into(),
            reason: format!("cannot read {file_name}: {e}"),
        })?;
        Self::from_toml(&text, &file_name)
    }

    fn from_toml(text: &str, file_name: &str) -> Result<Self, SettingError> {
        let file = toml::from_str(text).map_err(|e: toml::de::Error| SettingError {
            setting: format!("HERALD_CONFIG (--config {file_name})"),
            reason: e.message().to_owned() + &e.span().map(|s| format!(" (at byte {})", s.start)).unwrap_or_default(),
        })?;
        Ok(Self { file, file_name: file_name.to_owned() })
    }

    /// Picks the flag/env value or else the file's, and parses it, naming the source in errors.
    fn pick<T, R>(
        &self,
        flag: Option<T>,
        from_file: Option<T>,
        key: &str,
        parse: impl FnOnce(T) -> Result<R, String>,
    ) -> Result<Option<R>, SettingError> {
        let (value, setting) = match (flag, from_file) {
            (Some(v), _) => {
                let named = settings::setting(key);
                (v, format!("{} ({})", named.env, named.flag()))
            }
            (None, Some(v)) => (v, format!("{key} in {}", self.file_name)),
            (None, None) => return Ok(None),
        };
        parse(value).map(Some).map_err(|reason| SettingError { setting, reason })
    }

    pub fn common(&self, global: &GlobalArgs) -> Result<CommonSettings, SettingError> {
        let f = &self.file;
        let database = self
            .pick(global.database_url.clone(), f.database_url.clone(), "database_url", |v| DatabaseUrl::parse(&v))?
            .unwrap_or(DatabaseUrl::Sqlite(DEFAULT_DATABASE_URL.to_owned()));
        let log_format = self
            .pick(global.log_format.clone(), f.log_format.clone(), "log_format", |v| match v.as_str() {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                other => Err(format!("must be `text` or `json`, not {other:?}")),
            })?
            .unwrap_or(LogFormat::Text);
        let log_filter = self
            .pick(global.log.clone(), f.log.clone(), "log", |v| {
                tracing_subscriber::EnvFilter::try_new(&v).map(|_| v).map_err(|e| format!("not a log filter: {e}"))
            })?
            .unwrap_or_else(|| "info".to_owned());
        let secret_key =
            self.pick(global.secret_key.clone(), f.secret_key.clone(), "secret_key", |v| SecretKey::parse(&v))?;
        let previous_secret_keys = self
            .pick(global.secret_key_previous.clone(), f.secret_key_previous.clone(), "secret_key_previous", |v| {
                v.split(',').filter(|k| !k.trim().is_empty()).map(SecretKey::parse).collect()
            })?
            .unwrap_or_default();
        Ok(CommonSettings { database, log_format, log_filter, secret_key, previous_secret_keys })
    }

    pub fn serve(&self, args: &ServeArgs) -> Result<ServeSettings, SettingError> {
        let f = &self.file;
        let bind = self
            .pick(args.bind.clone(), f.bind.clone(), "bind", |v| {
                v.parse::<SocketAddr>()
                    .map_err(|_| format!("{v:?} is not an address to listen on; expected IP:PORT, e.g. 127.0.0.1:8080"))
            })?
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
        let public_url =
            self.pick(args.public_url.clone(), f.public_url.clone(), "public_url", |v| parse_public_url(&v))?;
        let admin_token = self.pick(args.admin_token.clone(), f.admin_token.clone(), "admin_token", |v| {
            ApiToken::parse_supplied(&v).map_err(|e| e.to_string())
        })?;
        let defaults = WorkerSettings::default();
        let positive = |what: &'static str| {
            move |n: u64| {
                if n == 0 { Err(format!("{what} must be at least 1")) } else { Ok(n) }
            }
        };
        let worker = WorkerSettings {
            enabled: self.pick(args.worker, f.worker, "worker", Ok)?.unwrap_or(defaults.enabled),
            concurrency: self
                .pick(args.worker_concurrency, f.worker_concurrency, "worker_concurrency", |n| {
                    if (1..=1024).contains(&n) { Ok(n) } else { Err(format!("must be between 1 and 1024, not {n}")) }
                })?
                .unwrap_or(defaults.concurrency),
            lease: self
                .pick(args.job_lease_secs, f.job_lease_secs, "job_lease_secs", positive("the lease"))?
                .map_or(defaults.lease, Duration::from_secs),
            poll: self
                .pick(args.queue_poll_ms, f.queue_poll_ms, "queue_poll_ms", positive("the poll interval"))?
                .map_or(defaults.poll, Duration::from_millis),
        };
        let shutdown_timeout = self
            .pick(args.shutdown_timeout_secs, f.shutdown_timeout_secs, "shutdown_timeout_secs", Ok)?
            .map_or(Duration::from_secs(10), Duration::from_secs);
        let ingest_body_limit = self
            .pick(args.ingest_body_limit, f.ingest_body_limit, "ingest_body_limit", |n| {
                if (1024..=64 * 1024 * 1024).contains(&n) {
                    Ok(n)
                } else {
                    Err(format!("must be between 1024 and 67108864 bytes, not {n}"))
                }
            })?
            .unwrap_or(256 * 1024);
        let header_timeout = self
            .pick(args.header_timeout_secs, f.header_timeout_secs, "header_timeout_secs", |n| {
                if (1..=3600).contains(&n) {
                    Ok(n)
                } else {
                    Err(format!("must be between 1 and 3600 seconds, not {n}"))
                }
            })?
            .map_or(Duration::from_secs(30), Duration::from_secs);
        let max_connections = self.pick(args.max_connections, f.max_connections, "max_connections", |n| {
            if n == 0 {
                Err("must be at least 1 (leave it out to derive it from the open-file limit)".into())
            } else {
                Ok(n)
            }
        })?;
        let bounce_smtp_bind =
            self.pick(args.bounce_smtp_bind.clone(), f.bounce_smtp_bind.clone(), "bounce_smtp_bind", |v| {
                v.parse::<SocketAddr>().map_err(|_| format!("{v:?} is not IP:PORT, e.g. 0.0.0.0:25"))
            })?;
        Ok(ServeSettings {
            bind,
            bounce_smtp_bind,
            public_url,
            admin_token,
            worker,
            shutdown_timeout,
            ingest_body_limit,
            header_timeout,
            max_connections,
            email: self.email(args)?,
            webhooks: self.webhooks(args)?,
        })
    }

    fn webhooks(&self, args: &ServeArgs) -> Result<WebhookSettings, SettingError> {
        let f = &self.file;
        let policy = self
            .pick(args.webhook_allow_cidrs.clone(), f.webhook_allow_cidrs.clone(), "webhook_allow_cidrs", |v| {
                AddressPolicy::from_allow_list(&v).map_err(|e| e.to_string())
            })?
            .unwrap_or_default();
        let allow_http =
            self.pick(args.webhook_allow_http, f.webhook_allow_http, "webhook_allow_http", Ok)?.unwrap_or(false);
        let disable_after = self
            .pick(args.webhook_disable_after_secs, f.webhook_disable_after_secs, "webhook_disable_after_secs", |n| {
                if n < 3600 { Err(format!("must be at least 3600 seconds, not {n}")) } else { Ok(n) }
            })?
            .map_or(DISABLE_AFTER, Duration::from_secs);
        Ok(WebhookSettings {
            client: ClientSettings { policy, allow_http, ..ClientSettings::default() },
            disable_after,
        })
    }

    fn email(&self, args: &ServeArgs) -> Result<EmailSettings, SettingError> {
        let f = &self.file;
        let defaults = EmailSettings::default();
        Ok(EmailSettings {
            smtp: self.pick(args.smtp_url.clone(), f.smtp_url.clone(), "smtp_url", |v| parse_smtp_url(&v))?,
            dns_resolver: self.pick(args.dns_resolver.clone(), f.dns_resolver.clone(), "dns_resolver", |v| {
                v.parse::<SocketAddr>().map_err(|_| format!("{v:?} is not IP:PORT, e.g. 127.0.0.1:53"))
            })?,
            spf: self.pick(args.spf.clone(), f.spf.clone(), "spf", |v| {
                let ok =
                    ["include:", "ip4:", "ip6:", "a:", "mx:"].iter().any(|p| v.starts_with(p)) || v == "a" || v == "mx";
                if ok && !v.contains(char::is_whitespace) {
                    Ok(v)
                } else {
                    Err(format!(
                        "{v:?} is not one SPF mechanism; expected e.g. include:_spf.example.net or ip4:203.0.113.7"
                    ))
                }
            })?,
            recheck: self
                .pick(args.domain_recheck_secs, f.domain_recheck_secs, "domain_recheck_secs", |n| {
                    if n < 60 { Err(format!("must be at least 60 seconds, not {n}")) } else { Ok(n) }
                })?
                .map_or(defaults.recheck, Duration::from_secs),
            rate_per_second: self.pick(args.send_rate, f.send_rate, "send_rate", |n| {
                if n == 0 { Err("must be at least 1 (leave it out for no limit)".into()) } else { Ok(n) }
            })?,
            sns_cert_prefixes: self
                .pick(
                    args.sns_cert_url_prefixes.clone(),
                    f.sns_cert_url_prefixes.clone(),
                    "sns_cert_url_prefixes",
                    |v| parse_url_prefixes(&v),
                )?
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global() -> GlobalArgs {
        GlobalArgs {
            config: None,
            database_url: None,
            log_format: None,
            log: None,
            secret_key: None,
            secret_key_previous: None,
        }
    }

    fn serve_args() -> ServeArgs {
        ServeArgs {
            bind: None,
            public_url: None,
            admin_token: None,
            worker: None,
            worker_concurrency: None,
            job_lease_secs: None,
            queue_poll_ms: None,
            shutdown_timeout_secs: None,
            ingest_body_limit: None,
            header_timeout_secs: None,
            max_connections: None,
            smtp_url: None,
            dns_resolver: None,
            spf: None,
            domain_recheck_secs: None,
            send_rate: None,
            bounce_smtp_bind: None,
            sns_cert_url_prefixes: None,
            webhook_allow_cidrs: None,
            webhook_allow_http: None,
            webhook_disable_after_secs: None,
        }
    }

    #[test]
    fn the_example_file_states_the_defaults() {
        let from_example = Loader::from_toml(&settings::example_file(), "herald.example.toml").expect("example parses");
        let none = Loader::from_toml("", "empty.toml").expect("empty parses");
        let (a, b) = (from_example.common(&global()).expect("ok"), none.common(&global()).expect("ok"));
        assert_eq!((a.database, a.log_format, a.log_filter), (b.database, b.log_format, b.log_filter));
        let (a, b) = (from_example.serve(&serve_args()).expect("ok"), none.serve(&serve_args()).expect("ok"));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn zero_configuration_means_local_sqlite_on_port_8080() {
        let loader = Loader::new(&global()).expect("no file");
        let common = loader.common(&global()).expect("ok");
        assert_eq!(common.database, DatabaseUrl::Sqlite("sqlite://herald.db".into()));
        assert_eq!(common.log_format, LogFormat::Text);
        let serve = loader.serve(&serve_args()).expect("ok");
        assert_eq!(serve.bind, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(serve.public_url, None);
        assert!(serve.admin_token.is_none() && serve.worker.enabled);
    }

    #[test]
    fn flags_and_env_win_over_the_file() {
        let loader = Loader::from_toml("bind = \"127.0.0.1:1\"\nworker_concurrency = 3", "h.toml").expect("parses");
        let mut args = serve_args();
        assert_eq!(loader.serve(&args).expect("ok").bind.port(), 1);
        args.bind = Some("127.0.0.1:2".into());
        let settings = loader.serve(&args).expect("ok");
        assert_eq!((settings.bind.port(), settings.worker.concurrency), (2, 3));
    }

    /// Spoils one argument; the setting the error must name; words the reason must contain.
    type BadServeArg = (fn(&mut ServeArgs), &'static str, &'static str);

    #[test]
    fn bad_values_name_the_setting_and_the_problem() {
        let loader = Loader::from_toml("bind = \"nope\"", "h.toml").expect("parses");
        let err = loader.serve(&serve_args()).expect_err("bad bind");
        assert_eq!(err.setting, "bind in h.toml");
        assert!(err.reason.contains("expected IP:PORT"), "{err}");

        let mut args = serve_args();
        args.bind = Some("localhost".into());
        assert_eq!(loader.serve(&args).expect_err("bad").setting, "HERALD_BIND (--bind)");

        let cases: [BadServeArg; 7] = [
            (|a| a.public_url = Some("ftp://x".into()), "HERALD_PUBLIC_URL", "http"),
            (|a| a.public_url = Some("https://x/?a=1".into()), "HERALD_PUBLIC_URL", "query"),
            (|a| a.header_timeout_secs = Some(0), "HERALD_HEADER_TIMEOUT_SECS", "between 1 and 3600"),
            (|a| a.max_connections = Some(0), "HERALD_MAX_CONNECTIONS", "at least 1"),
            (|a| a.admin_token = Some("short".into()), "HERALD_ADMIN_TOKEN", "at least 16"),
            (|a| a.worker_concurrency = Some(0), "HERALD_WORKER_CONCURRENCY", "between 1 and 1024"),
            (|a| a.job_lease_secs = Some(0), "HERALD_JOB_LEASE_SECS", "at least 1"),
        ];
        let loader = Loader::from_toml("", "h.toml").expect("parses");
        for (set, setting, reason) in cases {
            let mut args = serve_args();
            set(&mut args);
            let err = loader.serve(&args).expect_err("bad value");
            assert!(err.setting.starts_with(setting), "{err}");
            assert!(err.reason.contains(reason), "{err}");
            assert!(!err.to_string().contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn secret_keys_are_32_bytes_of_base64_and_never_shown() {
        let key = "++++//vvvv/7777/++++//vvvv/7777/++++//vvvv8=";
        let mut global = global();
        global.secret_key = Some(key.into());
        global.secret_key_previous =
            Some(format!("{},{}", key.trim_end_matches('='), key.replace('+', "-").replace('/', "_")));
        let loader = Loader::from_toml("", "h.toml").expect("parses");
        let common = loader.common(&global).expect("ok");
        let parsed = common.secret_key.clone().expect("a key");
        assert_eq!(common.previous_secret_keys, [parsed.clone(), parsed.clone()], "padding and alphabet are optional");
        assert!(!format!("{common:?}").contains("++++"), "{common:?}");
        for (bad, says) in [("c2hvcnQ=", "is 5 bytes"), ("not base64!", "not base64")] {
            global.secret_key = Some(bad.into());
            let err = loader.common(&global).expect_err(bad);
            assert!(err.setting.starts_with("HERALD_SECRET_KEY") && err.reason.contains(says), "{err}");
            assert!(!err.to_string().contains(bad), "the value is not echoed: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_types_in_the_file_are_errors() {
        let err = Loader::from_toml("bnid = \"x\"", "h.toml").expect_err("unknown key");
        assert!(err.reason.contains("bnid"), "{err}");
        let err = Loader::from_toml("worker = \"yes\"", "h.toml").expect_err("bad type");
        assert!(err.setting.contains("h.toml"), "{err}");
        let common = Loader::from_toml("log_format = \"xml\"", "h.toml").expect("parses").common(&global());
        assert_eq!(common.expect_err("bad").setting, "log_format in h.toml");
    }
}
