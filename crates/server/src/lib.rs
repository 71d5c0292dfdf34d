//! The `herald` binary's library: configuration, the HTTP API, the job workers and the
//! commands that tie them together. `main.rs` only parses the command line and calls in here;
//! integration tests build the same `App`.

pub mod app;
pub mod campaigns;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod connections;
pub mod db;
pub mod email;
pub mod group_commit;
pub mod housekeeping;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod settings;
pub mod telemetry;
pub mod ui;
pub mod users;
pub mod webhooks;
