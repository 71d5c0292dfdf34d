//! Subscription topics: `service` the use cases (name a topic, record a contact's choices,
//! read them back) that `api` (`/api/v1/topics`, `/api/v1/contacts/{id}/topics`), `pages`
//! (the topics screen) and the hosted preference page share.

pub mod api;
pub(crate) mod pages;
pub mod service;

use herald_store::SharedStore;

use crate::clock::SharedClock;

/// What the topics' API and pages use.
#[derive(Clone, Debug)]
pub struct TopicsState {
    pub store: SharedStore,
    pub clock: SharedClock,
}
