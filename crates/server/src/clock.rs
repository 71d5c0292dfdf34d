//! The clock, injected everywhere time matters. Production reads the system clock; tests hold
//! a `ManualClock` and move it forward by days in a line of code, never by sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_domain::Timestamp;

/// Tells the time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Timestamp;
}

pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
    }
}

/// A clock that stands still until told to move.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = *now + by;
    }

    pub fn set(&self, to: Timestamp) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000));
        assert_eq!(clock.now(), Timestamp::from_unix_millis(1_000));
        clock.advance(Duration::from_secs(86_400 * 3));
        assert_eq!(clock.now().unix_millis(), 1_000 + 259_200_000);
        let shared: SharedClock = Arc::new(clock.clone());
        clock.set(Timestamp::from_unix_millis(5));
        assert_eq!(shared.now(), Timestamp::from_unix_millis(5));
    }
}
