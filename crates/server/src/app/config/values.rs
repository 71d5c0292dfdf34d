//! The setting values that need more than a number or a word: where the database lives,
//! the keys that encrypt stored secrets, the SMTP relay and the public URL. Each parser says
//! what is wrong without echoing a secret.

use std::fmt;

use axum::http::Uri;

use crate::delivery::email::transport::{NodeSmtp, SecurityName, SmtpConfig};

/// Where the database lives; the scheme picks the backend once, here.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub(super) fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Err(
                    "an in-memory SQLite database would lose everything on exit; give a file, e.g. sqlite://herald.db"
                        .into(),
                );
            }
            Ok(Self::Sqlite(url.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else {
            // Never echo the URL: it may hold a password.
            let scheme = url.split_once(':').map_or("(none)", |(s, _)| s);
            Err(format!("must start with sqlite:// or postgres:// (the scheme given is {scheme:?})"))
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Sqlite(url) | Self::Postgres(url) => url,
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(url) => write!(f, "{url}"),
            // Hide credentials: show only what follows the last `@`.
            Self::Postgres(url) => match url.rsplit_once('@') {
                Some((_, host)) => write!(f, "postgres://<redacted>@{host}"),
                None => write!(f, "{url}"),
            },
        }
    }
}

/// A key that encrypts stored secrets. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(pub [u8; herald_store::secrets::KEY_LEN]);

impl SecretKey {
    /// Parses base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let text = text.trim().trim_end_matches('=');
        let bytes = STANDARD_NO_PAD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| "is not base64; generate a key with `openssl rand -base64 32`".to_owned())?;
        let len = bytes.len();
        bytes
            .try_into()
            .map(SecretKey)
            .map_err(|_| format!("is {len} bytes; it must be 32 bytes in base64, e.g. from `openssl rand -base64 32`"))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// An SMTP relay given as a URL: `smtp://` (STARTTLS unless `?security=` says otherwise),
/// `smtps://` (implicit TLS); user and password percent-encoded in the authority; `pool`,
/// `timeout` (seconds) and `rate` (messages per second) as query parameters.
pub(super) fn parse_smtp_url(raw: &str) -> Result<NodeSmtp, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    let (default_security, default_port) = match url.scheme() {
        "smtp" => (SecurityName::Starttls, 587),
        "smtps" => (SecurityName::Tls, 465),
        other => return Err(format!("the scheme must be smtp or smtps, not {other:?}")),
    };
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or("has no host")?.trim_matches(['[', ']']).to_owned();
    let decode = |s: &str| percent_decode(s).ok_or_else(|| format!("{s:?} is not valid percent-encoding"));
    let username = Some(url.username()).filter(|u| !u.is_empty()).map(decode).transpose()?;
    let password = url.password().map(decode).transpose()?;
    let mut config = SmtpConfig {
        host,
        port: url.port().unwrap_or(default_port),
        security: default_security,
        username,
        pool_size: 8,
        timeout_secs: 30,
        hello_name: None,
        accept_invalid_certs: false,
        rate_per_second: None,
        domain_rate_per_second: None,
    };
    for (key, value) in url.query_pairs() {
        let number = |v: &str| v.parse::<u32>().map_err(|_| format!("{key}={v:?} is not a whole number"));
        match key.as_ref() {
            "security" => {
                config.security = serde_json::from_value(serde_json::Value::String(value.to_string()))
                    .map_err(|_| format!("security={value:?}: expected starttls, tls or none"))?;
            }
            "pool" => config.pool_size = number(&value)?,
            "timeout" => config.timeout_secs = u64::from(number(&value)?),
            "rate" => config.rate_per_second = Some(number(&value)?),
            "domain_rate" => config.domain_rate_per_second = Some(number(&value)?),
            other => {
                return Err(format!("unknown parameter {other:?}; known: security, pool, timeout, rate, domain_rate"));
            }
        }
    }
    config.validate().map_err(|(field, reason)| format!("{field}: {reason}"))?;
    Ok(NodeSmtp { config, password })
}

/// Decodes `%XX` escapes (the URL crate leaves user and password encoded).
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// An absolute http(s) URL without query or fragment; returned without a trailing slash.
pub(super) fn parse_public_url(raw: &str) -> Result<String, String> {
    let uri: Uri = raw.parse().map_err(|_| format!("{raw:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{raw:?} must start with http:// or https://")),
    }
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err(format!("{raw:?} has no host"));
    }
    if uri.query().is_some() || raw.contains('#') {
        return Err(format!("{raw:?} must not have a query or fragment"));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// Comma-separated URL prefixes, each `http(s)://host…/` ending in a slash, so that a prefix
/// cannot be extended into another host or port (`http://127.0.0.1:4000` would admit
/// `http://127.0.0.1:40001`).
pub fn parse_url_prefixes(value: &str) -> Result<Vec<String>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|prefix| {
            let rest = prefix.strip_prefix("https://").or_else(|| prefix.strip_prefix("http://"));
            match rest {
                Some(rest) if rest.contains('/') && prefix.ends_with('/') && !rest.starts_with('/') => {
                    Ok(prefix.to_owned())
                }
                _ => Err(format!("{prefix:?} is not a URL prefix like https://sns.example.net/ (ending in /)")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_name_relay_security_and_limits() {
        let node = parse_smtp_url("smtp://ann%40x:p%2Fss@smtp.example.com?pool=4&rate=50").expect("parses");
        assert_eq!((node.config.host.as_str(), node.config.port), ("smtp.example.com", 587));
        assert_eq!(node.config.security, SecurityName::Starttls);
        assert_eq!((node.config.username.as_deref(), node.password.as_deref()), (Some("ann@x"), Some("p/ss")));
        assert_eq!((node.config.pool_size, node.config.rate_per_second), (4, Some(50)));
        let tls = parse_smtp_url("smtps://relay.example.com").expect("parses");
        assert_eq!((tls.config.port, tls.config.security), (465, SecurityName::Tls));
        let plain = parse_smtp_url("smtp://127.0.0.1:2525?security=none").expect("parses");
        assert_eq!((plain.config.port, plain.config.security, plain.password), (2525, SecurityName::None, None));
        for (bad, says) in [
            ("http://x", "scheme"),
            ("smtp://x?security=ssl", "security"),
            ("smtp://x?pool=0", "pool_size"),
            ("smtp://x?colour=red", "unknown parameter"),
            ("smtp://", "host"),
        ] {
            let err = parse_smtp_url(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(!format!("{:?}", parse_smtp_url("smtp://u:hunter2@x").expect("parses")).contains("hunter2"));
    }

    #[test]
    fn url_prefixes_end_in_a_slash_after_the_host() {
        let prefixes = parse_url_prefixes("http://127.0.0.1:4000/certs/, https://sns.internal.example/").expect("ok");
        assert_eq!(prefixes, ["http://127.0.0.1:4000/certs/", "https://sns.internal.example/"]);
        for bad in ["http://127.0.0.1:4000", "https:///x/", "ftp://x/", "sns.example/"] {
            assert!(parse_url_prefixes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn database_urls_pick_the_backend_and_never_echo_secrets() {
        assert!(matches!(DatabaseUrl::parse("sqlite://x.db"), Ok(DatabaseUrl::Sqlite(_))));
        assert!(matches!(DatabaseUrl::parse("postgresql://u:p@h/db"), Ok(DatabaseUrl::Postgres(_))));
        let err = DatabaseUrl::parse("mysql://root:hunter2@h/db").expect_err("unsupported");
        assert!(err.contains("\"mysql\"") && !err.contains("hunter2"), "{err}");
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
        let shown = format!("{:?}", DatabaseUrl::parse("postgres://u:hunter2@db:5432/h").expect("ok"));
        assert_eq!(shown, "postgres://<redacted>@db:5432/h");
    }

    #[test]
    fn public_urls_lose_their_trailing_slash() {
        assert_eq!(parse_public_url("https://herald.example.com/").as_deref(), Ok("https://herald.example.com"));
        assert_eq!(parse_public_url("http://10.0.0.1:8080/h").as_deref(), Ok("http://10.0.0.1:8080/h"));
    }
}
