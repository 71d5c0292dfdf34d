//! The `herald` binary's library, cut along the data flow: `ingest` (source URLs) →
//! `contacts`, `events` → `campaigns` (triggers, journeys) → `delivery` (email, webhooks).
//! Beside them, `web` (the error shape, auth, sessions, the page frame) and `app` (state,
//! router, settings, commands, the worker loop); `clock` and `group_commit` are the two small
//! building blocks every slice uses. `main.rs` only parses the command line and calls in here;
//! integration tests build the same `App`.

pub mod app;
pub mod audiences;
pub mod campaigns;
pub mod clock;
pub mod contacts;
pub mod delivery;
pub mod events;
pub mod group_commit;
pub mod ingest;
pub mod web;
