//! Group commit. Submissions queue on a channel; a committer takes everything waiting (up to
//! `MAX_BATCH` items), commits it in one store transaction, and answers each submission after
//! the commit. Under load, many submissions share one fsync; alone, a submission commits at
//! once, never waiting for company. SQLite runs one committer (it has one writer anyway);
//! PostgreSQL runs several so transactions overlap.
//!
//! It carries inbound events (`store.ingest`); campaign work, the effects of trigger
//! evaluations and journey steps (`store.commit_campaign_batch`); and webhook deliveries
//! opened and attempts recorded by delivery jobs.

use std::sync::Arc;

use futures::future::BoxFuture;
use herald_domain::Timestamp;
use herald_store::StoreError;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::clock::SharedClock;

/// Most items one transaction takes.
const MAX_BATCH: usize = 512;
/// Submissions that may wait for a committer before senders are slowed down.
const QUEUE: usize = 8192;

/// Commits a batch; one result per item, in order.
pub type CommitFn<T, R> =
    Arc<dyn Fn(Vec<T>, Timestamp) -> BoxFuture<'static, Result<Vec<R>, StoreError>> + Send + Sync>;

type Reply<R> = oneshot::Sender<Result<Vec<R>, Arc<StoreError>>>;

struct Pending<T, R> {
    items: Vec<T>,
    reply: Reply<R>,
}

/// Hands submissions to the committers.
pub struct GroupCommit<T, R> {
    queue: mpsc::Sender<Pending<T, R>>,
}

impl<T, R> Clone for GroupCommit<T, R> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone() }
    }
}

impl<T, R> std::fmt::Debug for GroupCommit<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

/// Why a submission got no result.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("the commit failed")]
    Store(#[source] Arc<StoreError>),
    #[error("the server is shutting down")]
    Closed,
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts `committers` tasks; they stop when every handle is dropped. `kind` labels the
    /// batch-size metric and the logs.
    pub fn start(kind: &'static str, clock: SharedClock, committers: usize, commit: CommitFn<T, R>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..committers.max(1) {
            tokio::spawn(run(kind, clock.clone(), receiver.clone(), commit.clone()));
        }
        Self { queue }
    }

    /// Commits `items` (in one transaction, possibly shared with others) and returns their
    /// results in order.
    pub async fn submit(&self, items: Vec<T>) -> Result<Vec<R>, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Pending { items, reply }).await.map_err(|_| CommitError::Closed)?;
        answer.await.map_err(|_| CommitError::Closed)?.map_err(CommitError::Store)
    }
}

async fn run<T, R>(
    kind: &'static str,
    clock: SharedClock,
    receiver: Arc<Mutex<mpsc::Receiver<Pending<T, R>>>>,
    commit: CommitFn<T, R>,
) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else { return };
            let mut size = first.items.len();
            let mut batch = vec![first];
            while size < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) => {
                        size += next.items.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        let (items, replies): (Vec<Vec<T>>, Vec<Reply<R>>) = batch.into_iter().map(|p| (p.items, p.reply)).unzip();
        let counts: Vec<usize> = items.iter().map(Vec::len).collect();
        let all: Vec<T> = items.into_iter().flatten().collect();
        let size = all.len();
        metrics::histogram!("herald_commit_batch_size", "kind" => kind).record(size as f64);
        match commit(all, clock.now()).await {
            Ok(results) => {
                let mut results = results.into_iter();
                for (reply, count) in replies.into_iter().zip(counts) {
                    let _ = reply.send(Ok(results.by_ref().take(count).collect()));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                tracing::error!(error = %crate::web::error::error_chain(&*e), kind, size, "group commit failed");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
