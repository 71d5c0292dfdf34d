//! Herald's outbound webhooks, free of storage: signing requests (Herald's `v0` scheme and
//! Standard Webhooks), the retry schedule, the outbound address policy (no requests to
//! private, loopback or metadata addresses unless allowed), and the HTTP client enforcing it.

pub mod client;
pub mod policy;
pub mod retry;
pub mod sign;
