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
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(key).or_insert(Bucket { rate, tokens: f64::from(rate), last: now });
        if bucket.rate != rate {
            *bucket = Bucket { rate, tokens: f64::from(rate), last: now };
        }
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * f64::from(rate)).min(f64::from(rate));
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / f64::from(rate.max(1))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

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
