//! When to try a webhook again: a pure function of how many retries were made, what the last
//! attempt came to, and a random number the caller draws. No clock, no I/O.
//!
//! Two questions are kept apart, as Vector does: *is this outcome worth retrying?*
//! ([`AttemptOutcome::class`], here) and *when?* ([`SCHEDULE`], judged by the
//! [`RetrySchedule`] that email deliveries and internal jobs use too).
//!
//! Retried: 408, 409, 429, every 5xx, timeouts and connection errors (refused, reset, DNS,
//! TLS). Final: every other status, including 3xx (redirects are not followed, so a redirect
//! will not fix itself) and the other 4xx, a destination the address policy refuses, and a
//! request that cannot be made at all. 2xx is success.
//!
//! # The default schedule
//!
//! | retry | delay before it | total since the first attempt |
//! | ---: | ---: | ---: |
//! | 1 | 5 s | 5 s |
//! | 2 | 30 s | 35 s |
//! | 3 | 2 min | 2 min 35 s |
//! | 4 | 5 min | 7 min 35 s |
//! | 5 | 10 min | 17 min 35 s |
//! | 6 | 15 min | 32 min 35 s |
//! | 7 | 20 min | 52 min 35 s |
//! | 8 | 30 min | 1 h 22 min 35 s |
//! | 9 | 45 min | 2 h 7 min 35 s |
//! | 10 | 60 min | 3 h 7 min 35 s |
//!
//! Roughly exponential at first, so a blip costs seconds, then flattening, so an outage of
//! an hour or two is still covered without retrying every few seconds through it: eleven
//! attempts over about three hours. Each delay is scaled by a jitter factor in
//! `[0.8, 1.2)` so receivers that failed together are not retried together; the mean total
//! stays at about three hours.
//!
//! `Retry-After` on a retried status is honoured when it asks for longer than the schedule,
//! up to one hour; a longer request is capped at an hour (a receiver should not park a
//! message for a day), and a shorter one does not make Herald retry sooner than planned.

use std::time::Duration;

use herald_domain::retry::minutes;
pub use herald_domain::retry::{Attempt, GiveUp, RetrySchedule, Verdict};
use time::OffsetDateTime;
use time::PrimitiveDateTime;
use time::macros::format_description;

/// What one attempt came to, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered with this status; `retry_after` is its `Retry-After`, if any
    /// was given and understood.
    Status { code: u16, retry_after: Option<Duration> },
    /// No complete answer within the request's timeout.
    Timeout,
    /// No connection: refused, reset, DNS failure, TLS failure.
    Connect,
    /// The address policy refused the destination (a private address, plain `http://` when
    /// not allowed): no request was sent, and retrying will not change that.
    Refused,
    /// The request could not be made (a malformed URL, an unsupported scheme, a header value
    /// that is not valid in HTTP): nothing was sent.
    Invalid,
}

/// How an outcome is classed, before any question of timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Success,
    Retryable,
    Final(FinalReason),
}

/// Why an attempt ended its message's delivery without success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalReason {
    /// A status that retrying will not change (3xx, most 4xx).
    Status(u16),
    /// See [`AttemptOutcome::Refused`].
    Refused,
    /// See [`AttemptOutcome::Invalid`].
    Invalid,
}

impl AttemptOutcome {
    /// Whether this outcome is a success, worth retrying, or final.
    pub fn class(&self) -> Class {
        match *self {
            AttemptOutcome::Status { code, .. } => match code {
                200..=299 => Class::Success,
                408 | 409 | 429 | 500..=599 => Class::Retryable,
                _ => Class::Final(FinalReason::Status(code)),
            },
            AttemptOutcome::Timeout | AttemptOutcome::Connect => Class::Retryable,
            AttemptOutcome::Refused => Class::Final(FinalReason::Refused),
            AttemptOutcome::Invalid => Class::Final(FinalReason::Invalid),
        }
    }
}

impl AttemptOutcome {
    /// The attempt as the retry schedule judges it; `reason` says what happened (the
    /// transport's error, or the status).
    pub fn judged(&self, reason: String) -> Attempt {
        match (self.class(), self) {
            (Class::Success, _) => Attempt::Delivered,
            (Class::Retryable, AttemptOutcome::Status { retry_after, .. }) => {
                Attempt::Transient { reason, retry_after: *retry_after }
            }
            (Class::Retryable, _) => Attempt::Transient { reason, retry_after: None },
            (Class::Final(_), _) => Attempt::Permanent { reason },
        }
    }
}

const DEFAULT_DELAYS: [Duration; 10] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    minutes(2),
    minutes(5),
    minutes(10),
    minutes(15),
    minutes(20),
    minutes(30),
    minutes(45),
    minutes(60),
];

/// The webhook retry schedule: the table in the module documentation, ten retries, a jitter
/// of ±20 %, `Retry-After` honoured up to an hour.
pub const SCHEDULE: RetrySchedule =
    RetrySchedule { max_retries: 10, delays: &DEFAULT_DELAYS, jitter: 0.2, max_retry_after: minutes(60) };

/// Parses a `Retry-After` value: delay-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, the IMF-fixdate form every current server sends),
/// relative to `now`. A date in the past is a delay of zero. Anything else is `None`.
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let format =
        format_description!("[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT");
    let at = PrimitiveDateTime::parse(value, format).ok()?.assume_utc();
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::datetime;

    use super::*;

    const S: RetrySchedule = SCHEDULE;

    fn status(code: u16) -> AttemptOutcome {
        AttemptOutcome::Status { code, retry_after: None }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn classes() {
        use Class::*;
        let cases = [
            (status(200), Success),
            (status(201), Success),
            (status(204), Success),
            (status(299), Success),
            (status(408), Retryable),
            (status(409), Retryable),
            (status(429), Retryable),
            (status(500), Retryable),
            (status(501), Retryable),
            (status(502), Retryable),
            (status(503), Retryable),
            (status(504), Retryable),
            (status(599), Retryable),
            (AttemptOutcome::Timeout, Retryable),
            (AttemptOutcome::Connect, Retryable),
            (status(100), Final(FinalReason::Status(100))),
            (status(301), Final(FinalReason::Status(301))),
            (status(302), Final(FinalReason::Status(302))),
            (status(304), Final(FinalReason::Status(304))),
            (status(307), Final(FinalReason::Status(307))),
            (status(400), Final(FinalReason::Status(400))),
            (status(401), Final(FinalReason::Status(401))),
            (status(403), Final(FinalReason::Status(403))),
            (status(404), Final(FinalReason::Status(404))),
            (status(405), Final(FinalReason::Status(405))),
            (status(410), Final(FinalReason::Status(410))),
            (status(413), Final(FinalReason::Status(413))),
            (status(422), Final(FinalReason::Status(422))),
            (status(600), Final(FinalReason::Status(600))),
            (AttemptOutcome::Refused, Final(FinalReason::Refused)),
            (AttemptOutcome::Invalid, Final(FinalReason::Invalid)),
        ];
        for (outcome, class) in cases {
            assert_eq!(outcome.class(), class, "{outcome:?}");
        }
    }

    const NOW: herald_domain::Timestamp = herald_domain::Timestamp::UNIX_EPOCH;

    /// The default schedule's verdict on `outcome` after `done` retries, at the epoch.
    fn verdict(done: u32, outcome: &AttemptOutcome, random: f64) -> Verdict {
        S.judge(done, outcome.judged("boom".into()), NOW, random)
    }

    fn retry(after: Duration) -> Verdict {
        Verdict::Retry { not_before: NOW + after, reason: "boom".into() }
    }

    fn final_failure() -> Verdict {
        Verdict::GiveUp { reason: "boom".into(), why: GiveUp::Permanent }
    }

    fn exhausted(attempts: u32) -> Verdict {
        Verdict::GiveUp { reason: format!("gave up after {attempts} attempts: boom"), why: GiveUp::Exhausted }
    }

    #[test]
    fn default_table_without_jitter() {
        // random = 0.5 is the jitter factor 1.0: the table itself.
        let expected = [5, 30, 120, 300, 600, 900, 1200, 1800, 2700, 3600];
        for (done, want) in expected.iter().enumerate() {
            let done = u32::try_from(done).unwrap();
            for outcome in [status(500), status(429), AttemptOutcome::Timeout, AttemptOutcome::Connect] {
                assert_eq!(verdict(done, &outcome, 0.5), retry(secs(*want)), "retry {done}");
            }
        }
        assert_eq!(verdict(10, &status(503), 0.5), exhausted(11));
        assert_eq!(verdict(11, &AttemptOutcome::Timeout, 0.5), exhausted(12));
    }

    #[test]
    fn ten_retries_spread_over_about_three_hours() {
        let total = |random: f64| -> Duration {
            (0..S.max_retries)
                .map(|done| match verdict(done, &status(500), random) {
                    Verdict::Retry { not_before, .. } => {
                        Duration::from_millis(u64::try_from(not_before.unix_millis()).unwrap())
                    }
                    other => panic!("{other:?}"),
                })
                .sum()
        };
        assert_eq!(total(0.5), secs(11_255)); // 3 h 7 min 35 s
        assert_eq!(total(0.0), secs(9_004)); // 0.8 × the table: 2 h 30 min 4 s
        assert!(total(0.999_999) < secs(13_507)); // below 1.2 × the table
        assert!(total(0.999_999) > secs(13_505));
    }

    #[test]
    fn jitter_bounds() {
        let cases = [
            (0.0, 4_000),
            (0.25, 4_500),
            (0.5, 5_000),
            (0.75, 5_500),
            (0.999_9, 6_000),
            (-3.0, 4_000),
            (7.0, 6_000),
            (f64::NAN, 5_000),
            (f64::INFINITY, 5_000),
        ];
        for (random, millis) in cases {
            assert_eq!(verdict(0, &status(502), random), retry(Duration::from_millis(millis)), "random {random}");
        }
    }

    #[test]
    fn final_and_success_ignore_the_count() {
        for done in [0, 5, 10, 50] {
            assert_eq!(verdict(done, &status(200), 0.3), Verdict::Delivered);
            for outcome in [status(404), status(302), AttemptOutcome::Refused, AttemptOutcome::Invalid] {
                assert_eq!(verdict(done, &outcome, 0.3), final_failure(), "{outcome:?}");
            }
        }
    }

    #[test]
    fn retry_after_within_bounds() {
        let with = |code, after: u64| AttemptOutcome::Status { code, retry_after: Some(secs(after)) };
        let cases = [
            // (retries done, outcome, expected delay): shorter than planned → planned.
            (0, with(429, 1), 5),
            (3, with(503, 60), 300),
            // Longer than planned → as asked.
            (0, with(429, 7), 7),
            (0, with(503, 600), 600),
            (9, with(503, 3_600), 3_600),
            // Beyond an hour → an hour (or the plan, if that is longer).
            (0, with(429, 86_400), 3_600),
            (4, with(500, 7_200), 3_600),
            // Zero → planned.
            (2, with(429, 0), 120),
        ];
        for (done, outcome, want) in cases {
            assert_eq!(verdict(done, &outcome, 0.5), retry(secs(want)), "{done} {outcome:?}");
        }
        // Not honoured on a final status, nor past the last retry.
        assert_eq!(verdict(0, &with(400, 10), 0.5), final_failure());
        assert_eq!(verdict(10, &with(429, 10), 0.5), exhausted(11));
    }

    #[test]
    fn custom_schedules() {
        const TEN_MS: &[Duration] = &[Duration::from_millis(10)];
        let short = RetrySchedule { max_retries: 3, delays: TEN_MS, jitter: 0.0, ..S };
        let judge =
            |s: &RetrySchedule, done, outcome: AttemptOutcome| s.judge(done, outcome.judged("boom".into()), NOW, 0.9);
        assert_eq!(judge(&short, 0, status(500)), retry(Duration::from_millis(10)));
        assert_eq!(judge(&short, 2, status(500)), retry(Duration::from_millis(10)));
        assert_eq!(judge(&short, 3, status(500)), exhausted(4));
        let none = RetrySchedule { max_retries: 0, ..S };
        assert_eq!(judge(&none, 0, AttemptOutcome::Timeout), exhausted(1));
        assert_eq!(S.base_delay(0), secs(5));
        assert_eq!(S.base_delay(11), secs(3_600));
        assert_eq!(S.base_delay(u32::MAX), secs(3_600));
    }

    #[test]
    fn retry_after_parsing() {
        let now = datetime!(2015-10-21 07:20:00 UTC);
        let cases = [
            ("7", Some(secs(7))),
            (" 120 ", Some(secs(120))),
            ("0", Some(secs(0))),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(secs(480))),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(secs(0))),
            ("Thu, 22 Oct 2015 07:20:00 GMT", Some(secs(86_400))),
            ("", None),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("99999999999999999999999", None),
            ("2015-10-21T07:28:00Z", None),
            ("Wed, 21 Oct 2015 07:28:00 +0000", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_retry_after(value, now), want, "{value:?}");
        }
    }
}
