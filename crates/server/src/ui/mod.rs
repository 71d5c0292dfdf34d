//! The web UI's pages, one module per screen (being moved into their slices).

pub(crate) mod campaign_webhooks;
pub(crate) mod campaigns;
pub(crate) mod deliveries;
pub(crate) mod domains;
pub(crate) mod drafts;
pub(crate) mod editor;
pub(crate) mod messages;
pub(crate) mod settings;
