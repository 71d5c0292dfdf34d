//! The queue's local signal: a commit that makes jobs due tells this process's worker at once,
//! so a job that another job (or a request) enqueues runs in milliseconds, not at the worker's
//! next poll.
//!
//! Each backend owns one and calls [`QueueSignal::jobs_due`] after every commit that inserted
//! jobs or brought queued ones forward, with the earliest due time among them: the store is
//! the one place every job passes through, so no caller has to remember to wake the worker.
//! Commits in other processes are not heard; their jobs wait for the poll interval.

use std::pin::pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Waker};

use herald_domain::Timestamp;
use tokio::sync::Notify;

/// What `sleeps_until` holds while the worker is not sleeping.
const AWAKE: i64 = i64::MAX;

/// Wakes the worker when a commit makes a job due before the worker would look anyway.
#[derive(Debug)]
pub struct QueueSignal {
    wake: Notify,
    /// Until when (unix ms, the store's clock) the worker sleeps; [`AWAKE`] while it claims or
    /// runs jobs. A commit while it is awake leaves it a wake-up for its next sleep, since its
    /// claim may have read the queue before that commit.
    sleeps_until: AtomicI64,
}

impl Default for QueueSignal {
    fn default() -> Self {
        Self { wake: Notify::new(), sleeps_until: AtomicI64::new(AWAKE) }
    }
}

impl QueueSignal {
    /// For the backends, after a commit: it made jobs due, the earliest at `earliest`. Wakes
    /// the worker unless it will look at the queue by then anyway.
    pub fn jobs_due(&self, earliest: Timestamp) {
        if earliest.unix_millis() < self.sleeps_until.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// For the worker, before it claims: a wake-up left by a commit until now is spent, since
    /// the claim sees that commit.
    pub fn looking(&self) {
        self.sleeps_until.store(AWAKE, Ordering::SeqCst);
        // Polling a `Notified` once takes a stored wake-up if there is one; dropping it
        // unpolled otherwise leaves later wake-ups untouched.
        let notified = pin!(self.wake.notified());
        let _ = std::future::Future::poll(notified, &mut Context::from_waker(Waker::noop()));
    }

    /// For the worker, while it sleeps until `until`: returns as soon as a commit makes a job
    /// due before then (or left a wake-up since [`Self::looking`]). The caller bounds the wait
    /// with its own timer.
    pub async fn woken_before(&self, until: Timestamp) {
        /// Marks the worker awake however the sleep ends (its timer may win and drop this).
        struct Awake<'a>(&'a AtomicI64);
        impl Drop for Awake<'_> {
            fn drop(&mut self) {
                self.0.store(AWAKE, Ordering::SeqCst);
            }
        }
        self.sleeps_until.store(until.unix_millis(), Ordering::SeqCst);
        let _awake = Awake(&self.sleeps_until);
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const T: Timestamp = Timestamp::from_unix_millis(1_767_225_600_000);

    async fn woken(signal: &QueueSignal, until: Timestamp) -> bool {
        tokio::time::timeout(Duration::from_millis(50), signal.woken_before(until)).await.is_ok()
    }

    #[tokio::test]
    async fn a_commit_while_awake_wakes_the_next_sleep_unless_a_claim_came_after_it() {
        let signal = QueueSignal::default();
        signal.jobs_due(T + Duration::from_secs(3600));
        assert!(woken(&signal, T).await, "the claim before may have missed it");
        signal.jobs_due(T);
        signal.looking();
        assert!(!woken(&signal, T + Duration::from_secs(60)).await, "the claim after saw it");
    }

    #[tokio::test]
    async fn only_jobs_due_before_the_sleep_ends_wake_it() {
        let signal = std::sync::Arc::new(QueueSignal::default());
        signal.looking();
        let until = T + Duration::from_secs(60);
        let sleeper = tokio::spawn({
            let signal = signal.clone();
            async move { woken(&signal, until).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        signal.jobs_due(until);
        assert!(!sleeper.await.expect("sleeper"), "due when it wakes anyway");

        let sleeper = tokio::spawn({
            let signal = signal.clone();
            async move { woken(&signal, until).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        signal.jobs_due(until - Duration::from_millis(1));
        assert!(sleeper.await.expect("sleeper"), "due sooner");
    }
}
