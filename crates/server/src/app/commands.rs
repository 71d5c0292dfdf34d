//! What each subcommand does. Output meant for scripts (a new key, a list) goes to stdout;
//! everything else is logged to stderr.

use std::sync::Arc;

use anyhow::Context;
use herald_domain::{
    ApiKeyName, ApiToken, EmailAddress, JobKind, NewJob, Password, UserAccount, Workspace, WorkspaceName,
};
use herald_store::{NewApiKey, SharedStore};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::config::{CommonSettings, ServeSettings};
use super::connections::{self, ConnectionLimits};
use super::db;
use super::{self as app, App};
use crate::clock::{SharedClock, SystemClock};
use crate::delivery::email::bounces::listener::{self, ListenerLimits};
use crate::web::users;

fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

pub async fn serve(common: &CommonSettings, settings: ServeSettings) -> anyhow::Result<()> {
    let store = db::open(common).await?;
    let clock = system_clock();
    let workspace = app::bootstrap(&store, &clock, settings.admin_token.as_ref()).await?;
    let listener = TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("cannot listen on {} (HERALD_BIND)", settings.bind))?;
    let local = listener.local_addr().context("cannot read the bound address")?;
    let public_url = settings.public_url.clone().unwrap_or_else(|| format!("http://{local}"));
    let app = App::with_webhooks(
        store.clone(),
        clock,
        &public_url,
        settings.worker.clone(),
        settings.ingest_body_limit,
        settings.email.clone(),
        settings.webhooks.clone(),
    )?
    .with_connection_limits(connection_limits(&settings));
    tracing::info!(
        address = %local,
        public_url,
        database = ?common.database,
        backend = store.backend().as_str(),
        workspace = %workspace.name,
        worker = settings.worker.enabled,
        "herald listening"
    );
    println!("Herald is listening on http://{local}");
    let clock = app.state.clock.clone();
    if let Some(link) = crate::web::first_run::link(&store, &clock, workspace.id, &public_url).await? {
        // Only the first run on a database gets here (no API key or user exists), so the link
        // goes to stdout beside the address, not to the log.
        println!(
            "Nobody can log in yet. Open this link within 15 minutes to sign in to the web UI and create the first user (it works once):\n  {link}"
        );
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    if let Some(bind) = settings.bounce_smtp_bind {
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind} (HERALD_BOUNCE_SMTP_BIND)"))?;
        tracing::info!(address = %bind, "bounce listener taking mail");
        let email = app.state.email.email.clone();
        tokio::spawn(listener::serve(email, listener, ListenerLimits::default(), shutdown.child_token()));
    }
    let served = app.serve(listener, settings.worker.enabled, settings.shutdown_timeout, shutdown).await;
    store.close().await;
    served
}

/// The header timeout as set, and the connection cap as set or derived from the open-file
/// limit (raised first to its hard value), never above what that limit leaves room for.
fn connection_limits(settings: &ServeSettings) -> ConnectionLimits {
    let file_limit = match connections::raise_file_limit() {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit");
            None
        }
    };
    let room = file_limit.map(|limit| connections::cap_for_file_limit(limit, settings.worker.concurrency));
    let max_connections = match (settings.max_connections, room) {
        (Some(set), Some(room)) if set > room => {
            tracing::warn!(
                max_connections = set,
                file_limit,
                using = room,
                "HERALD_MAX_CONNECTIONS is more than the open-file limit leaves room for; using less"
            );
            room
        }
        (Some(set), _) => set,
        (None, Some(room)) => room,
        (None, None) => ConnectionLimits::default().max_connections,
    };
    tracing::info!(
        max_connections,
        file_limit,
        header_timeout_secs = settings.header_timeout.as_secs(),
        "connection limits"
    );
    ConnectionLimits { header_timeout: settings.header_timeout, max_connections }
}

/// Cancels `shutdown` on SIGTERM or SIGINT (Ctrl-C).
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received Ctrl-C"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
    shutdown.cancel();
}

pub async fn migrate(common: &CommonSettings) -> anyhow::Result<()> {
    let store = db::open(common).await?;
    store.close().await;
    eprintln!("migrations applied");
    Ok(())
}

async fn workspace_named(store: &SharedStore, clock: &SharedClock, name: &str) -> anyhow::Result<Workspace> {
    let name = WorkspaceName::parse(name).map_err(|e| anyhow::anyhow!("invalid workspace name {name:?}: {e}"))?;
    if name.as_str() == WorkspaceName::DEFAULT {
        return app::bootstrap(store, clock, None).await;
    }
    store
        .workspace_by_name(&name)
        .await?
        .with_context(|| format!("no workspace named {name:?}; create it with `herald workspace create {name}`"))
}

pub async fn api_key_create(common: &CommonSettings, workspace: &str, name: &str) -> anyhow::Result<()> {
    let store = db::open(common).await?;
    let clock = system_clock();
    let workspace = workspace_named(&store, &clock, workspace).await?;
    let name = ApiKeyName::parse(name).map_err(|e| anyhow::anyhow!("invalid key name: {e}"))?;
    let token = ApiToken::generate(rand::random());
    let key = store
        .create_api_key(workspace.id, NewApiKey { name, hash: token.hash(), hint: token.hint() }, clock.now())
        .await?;
    store.close().await;
    eprintln!("Created API key {} for workspace {}. It is shown only this once:", key.id, workspace.name);
    println!("{}", token.expose());
    Ok(())
}

pub async fn workspace_create(common: &CommonSettings, name: &str) -> anyhow::Result<()> {
    let store = db::open(common).await?;
    let name = WorkspaceName::parse(name).map_err(|e| anyhow::anyhow!("invalid workspace name {name:?}: {e}"))?;
    let workspace = match store.create_workspace(&name, system_clock().now()).await {
        Err(herald_store::StoreError::Conflict { .. }) => {
            anyhow::bail!("a workspace named {name:?} already exists")
        }
        other => other?,
    };
    store.close().await;
    println!("{}\t{}", workspace.id, workspace.name);
    Ok(())
}

pub async fn workspace_list(common: &CommonSettings) -> anyhow::Result<()> {
    let store = db::open(common).await?;
    for workspace in store.list_workspaces().await? {
        println!("{}\t{}\t{}", workspace.id, workspace.name, workspace.created_at);
    }
    store.close().await;
    Ok(())
}

/// A new password from stdin (`--password-stdin`) or typed twice on the terminal, held to the
/// length rule before anything is hashed or stored.
fn read_new_password(from_stdin: bool) -> anyhow::Result<Password> {
    use std::io::{IsTerminal, Read};
    let typed = if from_stdin {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input).context("cannot read the password from stdin")?;
        let line = input.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&input);
        line.to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("no terminal to ask for the password on: pass it on stdin with --password-stdin");
        }
        let first = rpassword::prompt_password("Password (at least 12 characters): ")
            .context("cannot read the password from the terminal")?;
        let again = rpassword::prompt_password("Repeat it: ").context("cannot read the password from the terminal")?;
        if first != again {
            anyhow::bail!("the two passwords differ; nothing was changed");
        }
        first
    };
    Password::parse_new(&typed).map_err(|e| anyhow::anyhow!("password refused: it {e}"))
}

fn parse_email(email: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("invalid --email {email:?}: {e}"))
}

async fn user_named(store: &SharedStore, workspace: &Workspace, email: &str) -> anyhow::Result<UserAccount> {
    let email = parse_email(email)?;
    store
        .user_by_email(workspace.id, &email)
        .await?
        .with_context(|| format!("workspace {} has no user {email}", workspace.name))
}

pub async fn user_create(
    common: &CommonSettings,
    workspace: &str,
    email: &str,
    from_stdin: bool,
) -> anyhow::Result<()> {
    let email = parse_email(email)?;
    let password = read_new_password(from_stdin)?;
    let store = db::open(common).await?;
    let clock = system_clock();
    let workspace = workspace_named(&store, &clock, workspace).await?;
    let hash = users::hash(password).await;
    let user = match store.create_user(workspace.id, &email, &hash, clock.now()).await {
        Err(herald_store::StoreError::Conflict { .. }) => {
            anyhow::bail!("workspace {} already has a user {email}; use `herald user set-password`", workspace.name)
        }
        other => other?,
    };
    store.close().await;
    eprintln!("Created user {} in workspace {}: they can log in to the web UI now.", user.email, workspace.name);
    println!("{}", user.id);
    Ok(())
}

pub async fn user_list(common: &CommonSettings, workspace: &str) -> anyhow::Result<()> {
    let store = db::open(common).await?;
    let workspace = workspace_named(&store, &system_clock(), workspace).await?;
    for user in store.list_users(workspace.id).await? {
        println!("{}\t{}\t{}\t{}", user.id, user.email, user.created_at, user.password_changed_at);
    }
    store.close().await;
    Ok(())
}

pub async fn user_delete(common: &CommonSettings, workspace: &str, email: &str) -> anyhow::Result<()> {
    let store = db::open(common).await?;
    let workspace = workspace_named(&store, &system_clock(), workspace).await?;
    let user = user_named(&store, &workspace, email).await?;
    store.delete_user(workspace.id, user.id).await?;
    store.close().await;
    eprintln!("Deleted user {} from workspace {}; their sessions have ended.", user.email, workspace.name);
    Ok(())
}

pub async fn user_set_password(
    common: &CommonSettings,
    workspace: &str,
    email: &str,
    from_stdin: bool,
) -> anyhow::Result<()> {
    parse_email(email)?;
    let password = read_new_password(from_stdin)?;
    let store = db::open(common).await?;
    let clock = system_clock();
    let workspace = workspace_named(&store, &clock, workspace).await?;
    let user = user_named(&store, &workspace, email).await?;
    let hash = users::hash(password).await;
    store.set_user_password(workspace.id, user.id, &hash, clock.now()).await?;
    store.close().await;
    eprintln!(
        "Set a new password for {} in workspace {}; every session made with the old one has ended.",
        user.email, workspace.name
    );
    Ok(())
}

pub async fn queue_stats(common: &CommonSettings) -> anyhow::Result<()> {
    let store = db::open(common).await?;
    let stats = store.queue_stats(system_clock().now()).await?;
    store.close().await;
    println!("due\t{}\nscheduled\t{}\nrunning\t{}\ndead\t{}", stats.due, stats.scheduled, stats.running, stats.dead);
    Ok(())
}

pub async fn queue_ping(common: &CommonSettings, workspace: &str, count: u32) -> anyhow::Result<()> {
    let store = db::open(common).await?;
    let clock = system_clock();
    let workspace = workspace_named(&store, &clock, workspace).await?;
    let now = clock.now();
    let jobs: Vec<NewJob> = (0..count).map(|n| NewJob::new(JobKind::Ping, json!({ "n": n }), now)).collect();
    let ids = store.enqueue_jobs(workspace.id, &jobs, now).await?;
    store.close().await;
    eprintln!("enqueued {} ping jobs in workspace {}", ids.len(), workspace.name);
    Ok(())
}
