//! Password guessing is slowed per account: after [`MAX_FAILURES`] wrong passwords for one
//! workspace and email within [`WINDOW`], this node refuses further password logins for that
//! pair, right or wrong, until the oldest of those failures is [`WINDOW`] old. A login that
//! succeeds clears the count. Unknown emails count like known ones, so the refusal tells
//! nothing about which addresses have accounts. The counts live in this process (by the
//! injected clock): with several nodes an attacker gets that many tries per node.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use herald_domain::Timestamp;

/// Wrong passwords allowed per account within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Accounts tracked at most; past it, the ones whose failures are oldest are forgotten.
const MAX_ACCOUNTS: usize = 100_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<(String, String), VecDeque<Timestamp>>>,
}

impl LoginThrottle {
    fn key(workspace: &str, email: &str) -> (String, String) {
        (workspace.trim().to_lowercase(), email.trim().to_lowercase())
    }

    /// `Err(wait)` when the account has used up its tries: how long until the next one.
    pub fn check(&self, workspace: &str, email: &str, now: Timestamp) -> Result<(), Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(times) = failures.get_mut(&Self::key(workspace, email)) else { return Ok(()) };
        times.retain(|t| now.saturating_duration_since(*t) < WINDOW);
        match times.front() {
            Some(oldest) if times.len() >= MAX_FAILURES => Err(WINDOW - now.saturating_duration_since(*oldest)),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, workspace: &str, email: &str, now: Timestamp) {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() >= MAX_ACCOUNTS {
            failures.retain(|_, times| times.back().is_some_and(|t| now.saturating_duration_since(*t) < WINDOW));
            if failures.len() >= MAX_ACCOUNTS {
                failures.clear();
            }
        }
        let times = failures.entry(Self::key(workspace, email)).or_default();
        times.push_back(now);
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }

    pub fn succeeded(&self, workspace: &str, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.remove(&Self::key(workspace, email));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_account_until_the_oldest_is_a_window_old() {
        let throttle = LoginThrottle::default();
        let start = Timestamp::from_unix_millis(1_767_225_600_000);
        for minute in 0..5 {
            assert_eq!(throttle.check("default", "ada@example.com", start + Duration::from_secs(minute * 60)), Ok(()));
            throttle.failed("default", "Ada@Example.com ", start + Duration::from_secs(minute * 60));
        }
        let later = start + Duration::from_secs(5 * 60);
        assert_eq!(throttle.check("DEFAULT", "ada@example.com", later), Err(Duration::from_secs(10 * 60)));
        assert_eq!(throttle.check("default", "bob@example.com", later), Ok(()), "other accounts are free");
        assert_eq!(throttle.check("other", "ada@example.com", later), Ok(()), "so is another workspace");
        assert_eq!(throttle.check("default", "ada@example.com", start + WINDOW), Ok(()), "the oldest has expired");
        throttle.failed("default", "ada@example.com", start + WINDOW);
        assert!(throttle.check("default", "ada@example.com", start + WINDOW).is_err(), "five within the window again");
        throttle.succeeded("default", "ada@example.com");
        assert_eq!(throttle.check("default", "ada@example.com", start + WINDOW), Ok(()));
    }
}
