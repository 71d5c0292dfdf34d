//! Group commit. Requests queue on a channel; a committer takes everything waiting (up to
//! `MAX_BATCH`), commits it in one store transaction, and answers each request after the
//! commit. Under load, many requests share one fsync; alone, a request commits at once,
//! never waiting for company. SQLite runs one committer (it has one writer anyway);
//! PostgreSQL runs several so transactions overlap.

use std::sync::Arc;

use herald_store::SharedStore;
use herald_store::ingest::{IngestRequest, IngestResult};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::clock::SharedClock;

/// Most requests one transaction takes.
const MAX_BATCH: usize = 512;
/// Requests that may wait for a committer before senders are slowed down.
const QUEUE: usize = 8192;

type Reply = oneshot::Sender<Result<Vec<IngestResult>, Arc<herald_store::StoreError>>>;

struct Pending {
    requests: Vec<IngestRequest>,
    reply: Reply,
}

/// Hands requests to the committers.
#[derive(Debug, Clone)]
pub struct Committer {
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("requests", &self.requests.len()).finish_non_exhaustive()
    }
}

/// Why a submission got no result.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("the commit failed")]
    Store(#[source] Arc<herald_store::StoreError>),
    #[error("the server is shutting down")]
    Closed,
}

impl Committer {
    /// Starts `committers` tasks; they stop when every `Committer` handle is dropped.
    pub fn start(store: SharedStore, clock: SharedClock, committers: usize) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..committers.max(1) {
            tokio::spawn(run(store.clone(), clock.clone(), receiver.clone()));
        }
        Self { queue }
    }

    /// Commits `requests` (in one transaction, possibly shared with others) and returns
    /// their results in order.
    pub async fn submit(&self, requests: Vec<IngestRequest>) -> Result<Vec<IngestResult>, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Pending { requests, reply }).await.map_err(|_| CommitError::Closed)?;
        answer.await.map_err(|_| CommitError::Closed)?.map_err(CommitError::Store)
    }
}

async fn run(store: SharedStore, clock: SharedClock, receiver: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else { return };
            let mut batch = vec![first];
            let mut size = batch[0].requests.len();
            while size < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) => {
                        size += next.requests.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        let (requests, replies): (Vec<Vec<IngestRequest>>, Vec<Reply>) =
            batch.into_iter().map(|p| (p.requests, p.reply)).unzip();
        let counts: Vec<usize> = requests.iter().map(Vec::len).collect();
        let all: Vec<IngestRequest> = requests.into_iter().flatten().collect();
        metrics::histogram!("herald_ingest_batch_size").record(all.len() as f64);
        match store.ingest(&all, clock.now()).await {
            Ok(results) => {
                let mut results = results.into_iter();
                for (reply, count) in replies.into_iter().zip(counts) {
                    let _ = reply.send(Ok(results.by_ref().take(count).collect()));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                tracing::error!(error = %crate::http::error::error_chain(&*e), requests = all.len(), "ingest commit failed");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
