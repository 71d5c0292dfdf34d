//! How a delivery attempt is judged, and when to try again: one vocabulary for a message
//! handed to the mail relay, an outbound webhook call and an internal job. Pure: the caller
//! passes the time and a random number, so tests can pin both.
//!
//! Two questions are kept apart. *Was the attempt worth retrying?* is the transport's to
//! answer (an SMTP 4xx reply, an HTTP 503, a timeout: yes; an SMTP 5xx, an HTTP 400, a refused
//! address: no), and it arrives here as an [`Attempt`]. *When, and until when?* is the
//! schedule's ([`RetrySchedule::judge`]), and its answer is a [`Verdict`]: delivered, retry
//! not before a time, or give up, always with the reason.

use std::time::Duration;

use crate::Timestamp;

/// What one attempt came to, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver took it.
    Delivered,
    /// It failed, and trying again may help; `retry_after` is how long the receiver asked to
    /// be left alone, if it said.
    Transient { reason: String, retry_after: Option<Duration> },
    /// It failed, and trying again will not help.
    Permanent { reason: String },
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again, not before `not_before`.
    Retry {
        not_before: Timestamp,
        reason: String,
    },
    /// Stop without success.
    GiveUp {
        reason: String,
        why: GiveUp,
    },
}

/// Why a delivery was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// The failure was permanent: retrying would not help.
    Permanent,
    /// The failure was transient, but every retry of the schedule has been made.
    Exhausted,
}

impl Verdict {
    /// This verdict, except that a retry due after `deadline` gives up instead; `attempts`
    /// (made so far) is for the reason.
    pub fn within(self, deadline: Timestamp, attempts: u32) -> Verdict {
        match self {
            Verdict::Retry { not_before, reason } if not_before > deadline => Verdict::GiveUp {
                reason: format!("gave up after {attempts} attempts: {reason}"),
                why: GiveUp::Exhausted,
            },
            other => other,
        }
    }

    /// Whether the attempt failed in a way that counts against its receiver's health: a
    /// transient failure, retried or not.
    pub fn is_transient_failure(&self) -> bool {
        matches!(self, Verdict::Retry { .. } | Verdict::GiveUp { why: GiveUp::Exhausted, .. })
    }
}

/// When to retry: the delay before each retry, a jitter, and a cap on how long a receiver may
/// ask Herald to wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySchedule {
    /// Retries after the first attempt (so `max_retries + 1` attempts in all).
    pub max_retries: u32,
    /// The delay before retry `n` is `delays[n - 1]`; retries past the end of the table use
    /// its last entry.
    pub delays: &'static [Duration],
    /// Each delay is scaled by a factor drawn from `[1 - jitter, 1 + jitter)`, so receivers
    /// (or jobs) that failed together are not retried together.
    pub jitter: f64,
    /// The longest `retry_after` honoured; a longer request is capped to this, and a shorter
    /// one never makes Herald retry sooner than planned.
    pub max_retry_after: Duration,
}

impl RetrySchedule {
    /// Attempts in all: the first and every retry.
    pub const fn max_attempts(&self) -> u32 {
        self.max_retries.saturating_add(1)
    }

    /// The delay before retry `retry` (1-based) without jitter.
    pub fn base_delay(&self, retry: u32) -> Duration {
        let index = usize::try_from(retry.saturating_sub(1)).unwrap_or(usize::MAX);
        self.delays.get(index).or(self.delays.last()).copied().unwrap_or(Duration::ZERO)
    }

    /// The verdict on an attempt made after `retries_done` retries (0 for the first
    /// attempt), at `now`. `random` is a number drawn uniformly from `[0, 1)`; it sets the
    /// jitter.
    pub fn judge(&self, retries_done: u32, attempt: Attempt, now: Timestamp, random: f64) -> Verdict {
        match attempt {
            Attempt::Delivered => Verdict::Delivered,
            Attempt::Permanent { reason } => Verdict::GiveUp { reason, why: GiveUp::Permanent },
            Attempt::Transient { reason, .. } if retries_done >= self.max_retries => {
                let attempts = retries_done.saturating_add(1);
                Verdict::GiveUp {
                    reason: format!("gave up after {attempts} attempts: {reason}"),
                    why: GiveUp::Exhausted,
                }
            }
            Attempt::Transient { reason, retry_after } => {
                let planned = self.jittered(self.base_delay(retries_done.saturating_add(1)), random);
                let asked = retry_after.map_or(Duration::ZERO, |asked| asked.min(self.max_retry_after));
                Verdict::Retry { not_before: now + planned.max(asked), reason }
            }
        }
    }

    fn jittered(&self, delay: Duration, random: f64) -> Duration {
        let random = if random.is_finite() { random.clamp(0.0, 1.0) } else { 0.5 };
        let jitter = if self.jitter.is_finite() { self.jitter.clamp(0.0, 1.0) } else { 0.0 };
        let factor = 1.0 - jitter + 2.0 * jitter * random;
        // Whole milliseconds: the time ends up in a database column and in logs.
        let millis = (delay.as_secs_f64() * factor * 1000.0).round();
        Duration::try_from_secs_f64(millis / 1000.0).unwrap_or(Duration::MAX)
    }
}

/// A whole number of minutes, for schedule tables.
pub const fn minutes(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TABLE: [Duration; 3] = [Duration::from_secs(10), Duration::from_secs(60), minutes(5)];
    const S: RetrySchedule =
        RetrySchedule { max_retries: 4, delays: &TABLE, jitter: 0.2, max_retry_after: minutes(60) };
    const NOW: Timestamp = Timestamp::UNIX_EPOCH;

    fn transient(retry_after: Option<Duration>) -> Attempt {
        Attempt::Transient { reason: "421 busy".into(), retry_after }
    }

    fn retry_in(verdict: &Verdict) -> Duration {
        match verdict {
            Verdict::Retry { not_before, .. } => {
                Duration::from_millis(u64::try_from(not_before.unix_millis()).unwrap_or(0))
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn follows_the_table_then_repeats_its_last_entry() {
        let cases = [(0, 10), (1, 60), (2, 300), (3, 300)];
        for (done, secs) in cases {
            assert_eq!(retry_in(&S.judge(done, transient(None), NOW, 0.5)), Duration::from_secs(secs), "{done}");
        }
    }

    #[test]
    fn gives_up_when_the_retries_are_spent_saying_how_many_attempts_were_made() {
        assert_eq!(
            S.judge(4, transient(None), NOW, 0.5),
            Verdict::GiveUp { reason: "gave up after 5 attempts: 421 busy".into(), why: GiveUp::Exhausted }
        );
        assert_eq!(S.max_attempts(), 5);
    }

    #[test]
    fn a_permanent_failure_gives_up_at_once_and_success_is_delivered() {
        let refused = Attempt::Permanent { reason: "550 no such user".into() };
        assert_eq!(
            S.judge(0, refused, NOW, 0.5),
            Verdict::GiveUp { reason: "550 no such user".into(), why: GiveUp::Permanent }
        );
        assert_eq!(S.judge(4, Attempt::Delivered, NOW, 0.5), Verdict::Delivered);
    }

    #[test]
    fn retry_after_lengthens_the_wait_up_to_the_cap_but_never_shortens_it() {
        assert_eq!(retry_in(&S.judge(0, transient(Some(minutes(2))), NOW, 0.5)), minutes(2));
        assert_eq!(retry_in(&S.judge(0, transient(Some(minutes(600))), NOW, 0.5)), minutes(60));
        assert_eq!(retry_in(&S.judge(2, transient(Some(Duration::from_secs(1))), NOW, 0.5)), minutes(5));
    }

    #[test]
    fn only_transient_failures_count_against_a_receiver() {
        assert!(S.judge(0, transient(None), NOW, 0.5).is_transient_failure());
        assert!(S.judge(9, transient(None), NOW, 0.5).is_transient_failure());
        assert!(!S.judge(0, Attempt::Permanent { reason: "x".into() }, NOW, 0.5).is_transient_failure());
        assert!(!S.judge(0, Attempt::Delivered, NOW, 0.5).is_transient_failure());
    }

    #[test]
    fn a_deadline_turns_a_late_retry_into_giving_up() {
        let deadline = NOW + Duration::from_secs(30);
        assert_eq!(
            S.judge(0, transient(None), NOW, 0.5).within(deadline, 1),
            Verdict::Retry { not_before: NOW + Duration::from_secs(10), reason: "421 busy".into() }
        );
        assert_eq!(
            S.judge(1, transient(None), NOW, 0.5).within(deadline, 2),
            Verdict::GiveUp { reason: "gave up after 2 attempts: 421 busy".into(), why: GiveUp::Exhausted }
        );
        assert_eq!(S.judge(1, Attempt::Delivered, NOW, 0.5).within(deadline, 2), Verdict::Delivered);
    }

    #[test]
    fn an_empty_table_retries_at_once() {
        let empty = RetrySchedule { delays: &[], ..S };
        assert_eq!(retry_in(&empty.judge(0, transient(None), NOW, 0.5)), Duration::ZERO);
    }

    proptest! {
        #[test]
        fn jitter_stays_within_its_band(done in 0u32..4, random in 0.0f64..1.0) {
            let base = S.base_delay(done + 1).as_secs_f64();
            let waited = retry_in(&S.judge(done, transient(None), NOW, random)).as_secs_f64();
            prop_assert!(waited >= base * 0.8 - 0.001 && waited < base * 1.2 + 0.001, "{waited} vs {base}");
        }

        #[test]
        fn odd_random_numbers_do_not_panic(random in proptest::num::f64::ANY) {
            let _ = S.judge(1, transient(None), NOW, random);
        }
    }
}
