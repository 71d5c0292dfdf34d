//! Rate limits: a token bucket per key (a source for inbound requests, a sending domain or the
//! whole node for email), refilled by the injected clock, so a test can exhaust and refill it
//! without sleeping. Off unless a rate is set.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use herald_domain::{SourceId, Timestamp};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: u32,
    tokens: f64,
    last: Timestamp,
}

/// Token buckets by key. Capacity is one second's worth of requests.
#[derive(Debug)]
pub struct Limiter<K = SourceId> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K> Default for Limiter<K> {
    fn default() -> Self {
        Self { buckets: Mutex::default() }
    }
}

impl<K: Hash + Eq> Limiter<K> {
    /// Takes a token for `key` limited to `rate` per second; `Err(wait)` says how long until
    /// one is available.
    pub fn check(&self, key: K, rate: u32, now: Timestamp) -> Result<(), Duration> {
        self.reserve(key, rate, now, Duration::ZERO).map(|_| ())
    }

    /// Takes a token for `key`, possibly one that is only available up to `ahead` from now:
    /// `Ok(wait)` reserves it (the caller acts after `wait`, and concurrent callers get later
    /// slots); `Err(wait)` reserves nothing and says how long until one is available.
    pub fn reserve(&self, key: K, rate: u32, now: Timestamp, ahead: Duration) -> Result<Duration, Duration> {
        let rate_f = f64::from(rate.max(1));
        let wait = |tokens: f64| Duration::from_secs_f64(((1.0 - tokens) / rate_f).max(0.0));
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = Self::refilled(&mut buckets, key, rate, now);
        let needed = wait(bucket.tokens);
        if needed <= ahead {
            bucket.tokens -= 1.0;
            Ok(needed)
        } else {
            Err(needed)
        }
    }

    /// Gives back a token taken with [`reserve`](Self::reserve) that will not be used.
    pub fn release(&self, key: K, rate: u32) {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bucket) = buckets.get_mut(&key) {
            bucket.tokens = (bucket.tokens + 1.0).min(f64::from(rate));
        }
    }

    /// The bucket of `key`, refilled up to `now` (tokens below zero are slots reserved ahead).
    fn refilled(buckets: &mut HashMap<K, Bucket>, key: K, rate: u32, now: Timestamp) -> &mut Bucket {
        let bucket = buckets.entry(key).or_insert(Bucket { rate, tokens: f64::from(rate), last: now });
        if bucket.rate != rate {
            *bucket = Bucket { rate, tokens: f64::from(rate), last: now };
        }
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * f64::from(rate)).min(f64::from(rate));
        bucket.last = bucket.last.max(now);
        bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn reservations_hand_out_later_slots_up_to_the_horizon() {
        let limiter: Limiter<&str> = Limiter::default();
        let t0 = Timestamp::from_unix_millis(1_000_000);
        let ahead = Duration::from_secs(2);
        let waits: Vec<_> = (0..4).map(|_| limiter.reserve("d", 2, t0, ahead)).collect();
        let ms = |d: Duration| d.as_millis();
        assert_eq!(
            waits[..2].iter().map(|w| w.map(ms)).collect::<Vec<_>>(),
            [Ok(0), Ok(0)],
            "a second's worth at once"
        );
        assert_eq!((waits[2].map(ms), waits[3].map(ms)), (Ok(500), Ok(1000)), "then one slot each half second");
        assert_eq!(limiter.reserve("d", 2, t0, ahead).map(ms), Ok(1500));
        assert_eq!(limiter.reserve("d", 2, t0, ahead).map(ms), Ok(2000));
        assert_eq!(limiter.reserve("d", 2, t0, ahead).map_err(ms), Err(2500), "beyond the horizon: nothing taken");
        assert_eq!(limiter.reserve("d", 2, t0 + Duration::from_secs(1), ahead).map(ms), Ok(1500));
        assert_eq!(limiter.reserve("other", 2, t0, ahead).map(ms), Ok(0), "per key");
    }

    #[test]
    fn allows_the_rate_then_refuses_until_refilled() {
        let limiter = Limiter::default();
        let source = SourceId::from_uuid(Uuid::from_u128(1));
        let t0 = Timestamp::from_unix_millis(1_000_000);
        for _ in 0..3 {
            assert!(limiter.check(source, 3, t0).is_ok());
        }
        let wait = limiter.check(source, 3, t0).expect_err("exhausted");
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(334), "{wait:?}");
        assert!(limiter.check(source, 3, t0 + Duration::from_millis(340)).is_ok(), "one token back");
        assert!(limiter.check(source, 3, t0 + Duration::from_millis(340)).is_err());
        let other = SourceId::from_uuid(Uuid::from_u128(2));
        assert!(limiter.check(other, 3, t0).is_ok(), "buckets are per source");
    }
}
