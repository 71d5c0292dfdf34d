//! Ingest: the inbound half of the pipeline. `receive` turns an HTTP request on a source URL
//! into an `IngestRequest` (or a rejection naming the field), `committer` commits requests
//! in shared transactions (group commit) and answers each after its commit, `log` keeps the
//! per-source rejection log and samples off the hot path, `limiter` enforces per-source rates.

pub mod committer;
pub mod limiter;
pub mod log;
pub mod receive;
pub mod sources;
