//! The HTTP accept loop, with the limits `axum::serve` does not offer: a header-read timeout
//! and a cap on open connections below the process's open-file limit.
//!
//! Without them a client that opens connections and sends nothing (or stops inside the
//! headers) keeps each one, and its file descriptor, forever; about a thousand of them use
//! up a 1,024-file limit, after which nothing (not even `/healthz`, the database or SMTP) can
//! open a file. Here hyper closes a connection that has not sent a request's headers within
//! the header timeout (counted from when it opens, and again after each response: it is also
//! the keep-alive idle limit), and at the cap the loop stops accepting until a connection
//! closes, so the backlog waits in the kernel rather than in file descriptors. Slow request
//! bodies are bounded by the whole request's time limit in `http::time_limit`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How many connections one process keeps open, and how long each may take to send its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    /// What tests and benchmarks run with; `herald serve` derives the cap from its file limit.
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(30), max_connections: 512 }
    }
}

/// Files kept free besides HTTP connections: the database (SQLite's file, WAL and shared memory
/// per pooled connection, or PostgreSQL sockets), SMTP pools, DNS, logs, the listener.
const RESERVED_FILES: u64 = 128;

/// The largest connection cap an open-file limit leaves room for, beside the fixed reserve
/// and two outbound connections per job slot (a webhook call in flight and a pooled idle one).
/// Never below a quarter of the limit, so that a tiny limit still serves.
pub fn cap_for_file_limit(file_limit: u64, worker_concurrency: u32) -> usize {
    let reserve = RESERVED_FILES + 2 * u64::from(worker_concurrency);
    let cap = file_limit.saturating_sub(reserve).max(file_limit / 4).max(1);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// Raises the soft open-file limit to the hard one (as Go's runtime does: the soft default
/// of 1,024 is a relic of `select`, which Herald does not use) and returns the limit in force.
pub fn raise_file_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= hard {
        return Ok(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Ok(hard),
        Err(e) => {
            tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit; keeping the soft one");
            Ok(soft)
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits
/// for open connections to finish their requests (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut last_full_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Once a minute at most: at the cap every closing connection lets one in.
                if last_full_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    last_full_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: new connections wait until others close \
                         (HERALD_MAX_CONNECTIONS, HERALD_HEADER_TIMEOUT_SECS)"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Errors here are the client's (reset, timed out, malformed): hyper answered what it
            // could; nothing to log above debug.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// After a failed `accept`: per-connection errors (the peer gave up) are skipped; others
/// (out of files, out of memory) are logged and followed by a pause, so the loop does not spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::cap_for_file_limit;

    #[test]
    fn the_cap_leaves_room_for_files_and_outbound_connections() {
        assert_eq!(cap_for_file_limit(1024, 128), 1024 - 128 - 256);
        assert_eq!(cap_for_file_limit(1_048_576, 128), 1_048_576 - 384);
        assert_eq!(cap_for_file_limit(256, 128), 64, "a quarter of a small limit");
        assert_eq!(cap_for_file_limit(0, 1), 1);
    }
}
