//! Email's JSON handlers: messages, sending domains, the workspace transport, suppressions.

pub mod deliverability;
pub mod domains;
pub mod messages;
pub mod suppressions;
pub mod transport;
