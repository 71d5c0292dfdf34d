//! `Timestamp`: an instant with millisecond precision, the only time type stored.
//!
//! Both backends keep milliseconds (SQLite as an integer, PostgreSQL as `timestamptz`, which
//! holds microseconds), so a value read back equals the value written on either backend.
//! The domain never asks what time it is; callers pass `now` in.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch, UTC, kept within years -9999 to 9999 (what both
/// backends and RFC 3339 can represent): arithmetic saturates at those bounds instead of
/// wrapping or turning into a different instant on one backend.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);
    /// -9999-01-01T00:00:00.000Z
    pub const MIN: Timestamp = Timestamp(-377_705_116_800_000);
    /// 9999-12-31T23:59:59.999Z
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    /// Clamped to [`Timestamp::MIN`, `Timestamp::MAX`].
    pub const fn from_unix_millis(millis: i64) -> Self {
        if millis < Self::MIN.0 {
            Self::MIN
        } else if millis > Self::MAX.0 {
            Self::MAX
        } else {
            Self(millis)
        }
    }

    pub fn unix_millis(self) -> i64 {
        self.0
    }

    /// Truncates to the millisecond.
    pub fn from_offset_date_time(t: OffsetDateTime) -> Self {
        let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
        Self::from_unix_millis(i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX }))
    }

    pub fn to_offset_date_time(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            // Unreachable: every Timestamp lies within the `time` crate's range.
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Whole milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp::from_unix_millis(self.0.saturating_add(millis(rhs)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;

    fn sub(self, rhs: Duration) -> Timestamp {
        Timestamp::from_unix_millis(self.0.saturating_sub(millis(rhs)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_offset_date_time().format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "@{}ms", self.0),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        OffsetDateTime::parse(&s, &Rfc3339).map(Self::from_offset_date_time).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shows_rfc3339_with_milliseconds() {
        let t = Timestamp::from_unix_millis(1_700_000_000_123);
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123Z");
        let back: Timestamp = serde_json::from_str("\"2023-11-14T22:13:20.123Z\"").expect("parses");
        assert_eq!(back, t);
    }

    #[test]
    fn arithmetic_saturates_at_representable_bounds() {
        let t = Timestamp::from_unix_millis(i64::MAX - 1);
        assert_eq!(t, Timestamp::MAX);
        assert_eq!(t + Duration::from_secs(10), Timestamp::MAX);
        assert_eq!(Timestamp::UNIX_EPOCH + Duration::MAX, Timestamp::MAX);
        assert_eq!(Timestamp::UNIX_EPOCH - Duration::MAX, Timestamp::MIN);
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_offset_date_time(Timestamp::MAX.to_offset_date_time()), Timestamp::MAX);
        assert_eq!(Timestamp::from_offset_date_time(Timestamp::MIN.to_offset_date_time()), Timestamp::MIN);
        let early = Timestamp::from_unix_millis(5);
        assert_eq!(early.saturating_duration_since(t), Duration::ZERO);
        assert_eq!(t.saturating_duration_since(t - Duration::from_millis(7)), Duration::from_millis(7));
    }

    proptest! {
        #[test]
        fn offset_date_time_round_trip(ms in -62_135_596_800_000i64..253_402_300_799_999i64) {
            let t = Timestamp::from_unix_millis(ms);
            prop_assert_eq!(Timestamp::from_offset_date_time(t.to_offset_date_time()), t);
        }
    }
}
