//! Opening the store: the database URL's scheme picks the backend, once, here; everything
//! after talks to `dyn Store`. Here too the store gets the key its secrets are sealed with
//! (ADR 0011): `HERALD_SECRET_KEY`, else, for SQLite, a key file beside the database.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use herald_store::SharedStore;
use herald_store::secrets::SecretKeys;
use herald_store_postgres::PgStore;
use herald_store_sqlite::SqliteStore;

use super::config::{CommonSettings, DatabaseUrl, SecretKey};

/// Connects, applies pending migrations, and seals again every stored secret that is in clear
/// (from before secrets were sealed) or sealed with a previous key.
pub async fn open(common: &CommonSettings) -> anyhow::Result<SharedStore> {
    let keys = secret_keys(common)?;
    let current = keys.current_id().to_owned();
    let store: SharedStore = match &common.database {
        DatabaseUrl::Sqlite(url) => Arc::new(
            SqliteStore::connect(url)
                .await
                .with_context(|| format!("cannot open SQLite database {url}"))?
                .with_secrets(keys),
        ),
        url @ DatabaseUrl::Postgres(_) => Arc::new(
            PgStore::connect(url.as_str())
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {url:?}"))?
                .with_secrets(keys),
        ),
    };
    store.migrate().await.context("cannot apply database migrations")?;
    let sealed = store.reseal_secrets().await.context("cannot seal the stored secrets with the secret key")?;
    if sealed > 0 {
        tracing::info!(sealed, key = current, "sealed stored secrets with the current secret key");
    }
    Ok(store)
}

/// The key ring: the configured key, or the SQLite key file; the previous keys; and, when a
/// key is configured beside an existing key file, the file's key too, so that secrets it
/// sealed are sealed again with the configured one.
fn secret_keys(common: &CommonSettings) -> anyhow::Result<SecretKeys> {
    let key_file = match &common.database {
        DatabaseUrl::Sqlite(url) => Some(key_file_path(url)?),
        DatabaseUrl::Postgres(_) => None,
    };
    let mut previous: Vec<[u8; 32]> = common.previous_secret_keys.iter().map(|k| k.0).collect();
    let current = match (&common.secret_key, &key_file) {
        (Some(key), file) => {
            if let Some(file) = file.as_deref().filter(|f| f.exists()) {
                previous.push(read_key_file(file)?.0);
            }
            key.0
        }
        (None, Some(file)) => key_from_file(file)?.0,
        (None, None) => anyhow::bail!(
            "HERALD_SECRET_KEY is required with PostgreSQL: the secrets Herald stores (SMTP and webhook \
             passwords, signing secrets, DKIM keys) are encrypted with it, and every node must use the same \
             key. Generate one with `openssl rand -base64 32` and give it to every node"
        ),
    };
    Ok(SecretKeys::new(&current, &previous))
}

/// `herald.db` → `herald.db.key`, beside the database file.
fn key_file_path(url: &str) -> anyhow::Result<PathBuf> {
    let database = SqliteStore::file_path(url).with_context(|| format!("not a SQLite URL: {url}"))?;
    let mut name = database.file_name().context("the SQLite URL names no file")?.to_owned();
    name.push(".key");
    Ok(database.with_file_name(name))
}

/// Reads the key file, or creates it (mode 0600) with a new random key when there is none.
fn key_from_file(path: &Path) -> anyhow::Result<SecretKey> {
    if path.exists() {
        return read_key_file(path);
    }
    let key = SecretKey(rand::random());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file =
        options.open(path).with_context(|| format!("cannot create the secret key file {}", path.display()))?;
    writeln!(file, "{}", base64::engine::general_purpose::STANDARD.encode(key.0))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the secret key file {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "created a secret key file: the secrets Herald stores are encrypted with it. Back it up with the \
         database (without it they cannot be read), or set HERALD_SECRET_KEY to its contents"
    );
    Ok(key)
}

fn read_key_file(path: &Path) -> anyhow::Result<SecretKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the secret key file {}", path.display()))?;
    SecretKey::parse(&text).map_err(|reason| anyhow::anyhow!("the secret key file {} {reason}", path.display()))
}
