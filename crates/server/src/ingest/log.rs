//! The per-source rejection log and mapped-source samples, written off the request path:
//! handlers push onto a bounded channel and a background task writes in batches. Under a
//! flood of bad requests the channel fills and further entries are dropped (and counted),
//! so logging a rejection can never slow down or fail accepted traffic.

use herald_store::{Rejection, Sample, SharedStore};
use tokio::sync::mpsc;

const QUEUE: usize = 4096;
const BATCH: usize = 256;

#[derive(Debug)]
enum Entry {
    Rejection(Rejection),
    Sample(Sample),
}

/// Sends entries to the writer task.
#[derive(Debug, Clone)]
pub struct SourceLog {
    queue: mpsc::Sender<Entry>,
}

impl SourceLog {
    pub fn start(store: SharedStore) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, receiver));
        Self { queue }
    }

    pub fn rejection(&self, rejection: Rejection) {
        self.push(Entry::Rejection(rejection));
    }

    pub fn sample(&self, sample: Sample) {
        self.push(Entry::Sample(sample));
    }

    fn push(&self, entry: Entry) {
        if self.queue.try_send(entry).is_err() {
            metrics::counter!("herald_source_log_dropped_total").increment(1);
        }
    }
}

async fn run(store: SharedStore, mut receiver: mpsc::Receiver<Entry>) {
    let mut entries = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut entries, BATCH).await > 0 {
        let (mut rejections, mut samples) = (Vec::new(), Vec::new());
        for entry in entries.drain(..) {
            match entry {
                Entry::Rejection(r) => rejections.push(r),
                Entry::Sample(s) => samples.push(s),
            }
        }
        if let Err(e) = store.record_rejections(&rejections).await {
            tracing::warn!(error = %crate::web::error::error_chain(&e), "cannot record rejections");
        }
        if let Err(e) = store.record_samples(&samples).await {
            tracing::warn!(error = %crate::web::error::error_chain(&e), "cannot record samples");
        }
    }
}
