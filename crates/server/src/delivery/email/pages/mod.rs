//! Email's UI pages: the message log and the sending domains.

pub(crate) mod domains;
pub(crate) mod messages;
