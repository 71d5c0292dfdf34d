//! The application's state: what handlers reach, handed to each as the part it uses.

use std::sync::Arc;

use axum::extract::FromRef;
use herald_store::SharedStore;
use metrics_exporter_prometheus::PrometheusHandle;

use super::settings_page::SettingsState;
use crate::audiences::segments::SegmentsState;
use crate::audiences::topics::TopicsState;
use crate::campaigns::CampaignsState;
use crate::clock::SharedClock;
use crate::contacts::ContactsState;
use crate::delivery::email::EmailState;
use crate::delivery::webhooks::WebhooksState;
use crate::events::EventsState;
use crate::ingest::IngestState;
use crate::templates::TemplatesState;
use crate::web::WebState;

/// What the router holds: every slice's state, of which each handler receives the part it
/// uses (the `FromRef` impls below); only the operations endpoints read it whole. Cloned for
/// every request, so it is one shared pointer rather than a struct of them.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct Services {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub metrics: PrometheusHandle,
    /// Base URL for URLs handed out to others, without a trailing slash.
    pub public_url: Arc<str>,
    pub ingest: IngestState,
    pub contacts: ContactsState,
    pub events: EventsState,
    pub topics: TopicsState,
    pub segments: SegmentsState,
    pub campaigns: CampaignsState,
    /// Sending domains, transports, suppressions and unsubscribe links.
    pub email: EmailState,
    /// Outbound webhook calls, saved actions and signing keys.
    pub webhooks: WebhooksState,
    /// What the web layer (sessions, logins, API keys) uses.
    pub web: WebState,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("store", &self.store)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl FromRef<AppState> for WebState {
    fn from_ref(state: &AppState) -> Self {
        state.web.clone()
    }
}

impl FromRef<AppState> for IngestState {
    fn from_ref(state: &AppState) -> Self {
        state.ingest.clone()
    }
}

impl FromRef<AppState> for ContactsState {
    fn from_ref(state: &AppState) -> Self {
        state.contacts.clone()
    }
}

impl FromRef<AppState> for EventsState {
    fn from_ref(state: &AppState) -> Self {
        state.events.clone()
    }
}

impl FromRef<AppState> for TopicsState {
    fn from_ref(state: &AppState) -> Self {
        state.topics.clone()
    }
}

impl FromRef<AppState> for SegmentsState {
    fn from_ref(state: &AppState) -> Self {
        state.segments.clone()
    }
}

impl FromRef<AppState> for TemplatesState {
    fn from_ref(state: &AppState) -> Self {
        TemplatesState { store: state.store.clone(), clock: state.clock.clone() }
    }
}

impl FromRef<AppState> for CampaignsState {
    fn from_ref(state: &AppState) -> Self {
        state.campaigns.clone()
    }
}

impl FromRef<AppState> for EmailState {
    fn from_ref(state: &AppState) -> Self {
        state.email.clone()
    }
}

impl FromRef<AppState> for WebhooksState {
    fn from_ref(state: &AppState) -> Self {
        state.webhooks.clone()
    }
}

impl FromRef<AppState> for SettingsState {
    fn from_ref(state: &AppState) -> Self {
        Self { web: state.web.clone(), email: state.email.clone(), webhooks: state.webhooks.clone() }
    }
}
