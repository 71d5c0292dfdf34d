//! The application: bootstrapping a database for first use, wiring the slices together, and
//! serving HTTP and running workers until shutdown. `main` and the test harness both build it
//! here, so tests run the same code as production with only the clock and the worker loop
//! swapped. Beside it: the command line and settings, the commands, the router and state, the
//! job worker loop, housekeeping and telemetry.

pub(crate) mod api_keys;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connections;
pub mod db;
pub mod housekeeping;
mod openapi;
mod ops;
pub mod router;
pub mod settings;
pub(crate) mod settings_page;
pub mod state;
pub mod telemetry;
pub mod wiring;
pub mod worker;
pub(crate) mod workspace;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_domain::{ApiToken, Workspace};
use herald_store::SharedStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::audiences::segments::{Segments, SegmentsState};
use crate::audiences::topics::TopicsState;
use crate::campaigns::{Campaigns, CampaignsState};
use crate::clock::SharedClock;
use crate::contacts::ContactsState;
use crate::delivery::email::{Email, EmailSettings, EmailState};
use crate::delivery::webhooks::campaign_events::Hooks;
use crate::delivery::webhooks::{WebhookSettings, Webhooks, WebhooksState};
use crate::events::EventsState;
use crate::ingest::log::SourceLog;
use crate::ingest::{self, IngestState};
use crate::web::WebState;
use crate::web::secret::WorkspaceSecrets;
use config::WorkerSettings;
use connections::ConnectionLimits;
use herald_webhook::client::{ClientSettings, WebhookClient};
use state::{AppState, Services};
use worker::Worker;

/// Herald's HTTP state and its worker, ready to serve.
#[derive(Debug, Clone)]
pub struct App {
    pub state: AppState,
    pub worker: Arc<Worker>,
    pub connections: ConnectionLimits,
}

/// Makes a database ready for first use: the `default` workspace exists and, when the
/// operator set one, the admin token is that workspace's bootstrap key.
pub async fn bootstrap(
    store: &SharedStore,
    clock: &SharedClock,
    admin_token: Option<&ApiToken>,
) -> anyhow::Result<Workspace> {
    let workspace = store.ensure_default_workspace(clock.now()).await.context("cannot create the default workspace")?;
    if let Some(token) = admin_token {
        store
            .install_bootstrap_key(workspace.id, token.hash(), clock.now())
            .await
            .context("cannot install HERALD_ADMIN_TOKEN")?;
    }
    Ok(workspace)
}

impl App {
    /// This app with other connection limits than the defaults.
    pub fn with_connection_limits(self, connections: ConnectionLimits) -> Self {
        Self { connections, ..self }
    }

    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        public_url: &str,
        worker: WorkerSettings,
        ingest_body_limit: usize,
        email: EmailSettings,
    ) -> anyhow::Result<Self> {
        Self::with_webhooks(store, clock, public_url, worker, ingest_body_limit, email, ClientSettings::default())
    }

    /// [`App::new`] with the outbound webhooks' address policy and scheme rules.
    pub fn with_webhooks(
        store: SharedStore,
        clock: SharedClock,
        public_url: &str,
        worker: WorkerSettings,
        ingest_body_limit: usize,
        email: EmailSettings,
        webhooks: impl Into<WebhookSettings>,
    ) -> anyhow::Result<Self> {
        let WebhookSettings { client, disable_after } = webhooks.into();
        let client = WebhookClient::new(client).context("cannot build the webhook client")?;
        // SQLite has one writer, so one committer; PostgreSQL overlaps several transactions.
        let committers = match store.backend() {
            herald_store::Backend::Sqlite => 1,
            herald_store::Backend::Postgres => 4,
        };
        let public_url: Arc<str> = public_url.trim_end_matches('/').into();
        let secrets = Arc::new(WorkspaceSecrets::new(store.clone()));
        let email = Arc::new(Email::new(
            store.clone(),
            clock.clone(),
            email,
            &public_url,
            secrets.clone(),
            committers,
            client.clone(),
        )?);
        let webhooks = Arc::new(Webhooks::new(store.clone(), clock.clone(), client, disable_after, committers));
        let for_campaigns =
            wiring::WebhooksForCampaigns { webhooks: webhooks.clone(), hooks: Hooks::new(store.clone()) };
        let segments = Arc::new(Segments::new(store.clone(), clock.clone()));
        let campaigns = Arc::new(Campaigns::new(
            store.clone(),
            clock.clone(),
            committers,
            email.clone(),
            Arc::new(for_campaigns),
            segments.clone(),
        ));
        let worker = Arc::new(Worker::new(
            store.clone(),
            clock.clone(),
            worker,
            campaigns.clone(),
            segments.clone(),
            email.clone(),
            webhooks.clone(),
        ));
        let email = EmailState { store: store.clone(), clock: clock.clone(), email };
        let webhooks = WebhooksState {
            store: store.clone(),
            clock: clock.clone(),
            webhooks,
            links: email.email.clone(),
            campaigns: campaigns.clone(),
        };
        let state = AppState::new(Services {
            ingest: IngestState {
                store: store.clone(),
                clock: clock.clone(),
                public_url: public_url.clone(),
                committer: ingest::committer(store.clone(), clock.clone(), committers),
                source_log: SourceLog::start(store.clone()),
                limiter: Arc::default(),
                sources: Arc::default(),
                body_limit: ingest_body_limit,
            },
            contacts: ContactsState {
                store: store.clone(),
                clock: clock.clone(),
                delivery: Arc::new(wiring::DeliveryForContacts { email: email.clone(), webhooks: webhooks.clone() }),
            },
            events: EventsState { store: store.clone() },
            topics: TopicsState { store: store.clone(), clock: clock.clone() },
            segments: SegmentsState { store: store.clone(), clock: clock.clone(), segments },
            campaigns: CampaignsState {
                store: store.clone(),
                clock: clock.clone(),
                campaigns,
                outbound: Arc::new(webhooks.webhooks.client_settings().clone()),
            },
            web: WebState {
                store: store.clone(),
                clock: clock.clone(),
                public_url: public_url.clone(),
                secrets,
                login_throttle: Arc::default(),
            },
            email,
            webhooks,
            store,
            clock,
            metrics: telemetry::metrics_handle(),
            public_url,
        });
        Ok(Self { state, worker, connections: ConnectionLimits::default() })
    }

    /// Serves on `listener` (and runs the worker loop when `run_worker`) until `shutdown` is
    /// cancelled; then stops accepting, and gives in-flight requests and jobs `grace` to
    /// finish before returning anyway (unfinished jobs are not lost: their leases expire).
    pub async fn serve(
        self,
        listener: TcpListener,
        run_worker: bool,
        grace: Duration,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let router = router::router(self.state.clone());
        let worker = run_worker.then(|| tokio::spawn(self.worker.clone().run(shutdown.child_token())));
        if run_worker {
            tokio::spawn(housekeeping::run(self.state.store.clone(), self.state.clock.clone(), shutdown.child_token()));
            tokio::spawn(self.state.email.email.clone().run_rechecks(shutdown.child_token()));
        }
        let server = connections::serve(listener, router, self.connections, shutdown.clone().cancelled_owned());
        let mut server = tokio::spawn(server);
        tokio::select! {
            // Checked first: once shutdown is asked, the server finishing is expected.
            biased;
            () = shutdown.cancelled() => {}
            finished = &mut server => {
                // The server stopped by itself: that is a failure, not a shutdown.
                shutdown.cancel();
                finished.context("HTTP server task failed")?.context("HTTP server failed")?;
                anyhow::bail!("the HTTP server stopped unexpectedly");
            }
        }
        tracing::info!(grace_secs = grace.as_secs_f64(), "shutting down: finishing in-flight requests and jobs");
        let mut worker = worker;
        let drain = async {
            let served = (&mut server).await;
            if let Some(worker) = worker.as_mut() {
                let _ = worker.await;
            }
            served
        };
        match tokio::time::timeout(grace, drain).await {
            Ok(served) => {
                served.context("HTTP server task failed")?.context("HTTP server failed")?;
                tracing::info!("shutdown complete");
            }
            Err(_) => {
                tracing::warn!("shutdown grace period over; leaving unfinished work to expire and rerun");
                server.abort();
                if let Some(worker) = worker {
                    worker.abort();
                }
            }
        }
        Ok(())
    }
}
