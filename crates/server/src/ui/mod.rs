//! The web UI's pages, one module per screen (being moved into their slices).

pub(crate) mod deliveries;
pub(crate) mod domains;
pub(crate) mod messages;
pub(crate) mod settings;
