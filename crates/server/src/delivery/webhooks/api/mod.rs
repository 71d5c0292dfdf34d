//! Outbound webhooks' JSON handlers: the delivery log and signing keys, saved actions, and
//! endpoint health.

pub mod actions;
pub mod deliveries;
pub mod endpoints;
