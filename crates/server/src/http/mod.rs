//! The admin API's JSON handlers, one module per resource (being moved into their slices).

pub(crate) mod actions;
pub(crate) mod api_keys;
pub(crate) mod domains;
pub(crate) mod endpoints;
pub(crate) mod messages;
pub(crate) mod suppressions;
pub(crate) mod transport;
pub(crate) mod unsubscribe;
pub(crate) mod webhooks;
pub(crate) mod workspace;
