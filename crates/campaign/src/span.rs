//! `Span`: a length of time as users write it in campaign documents (`"2d"`, `"24h"`,
//! `"1d12h"`, `"90m"`, `"1w"`), kept as milliseconds and written back in the same notation.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A positive length of time, at most 10 years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(u64);

const UNITS: [(char, u64); 5] =
    [('w', 7 * 86_400_000), ('d', 86_400_000), ('h', 3_600_000), ('m', 60_000), ('s', 1_000)];
const MAX: u64 = 10 * 365 * 86_400_000;

/// Why a span was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}; write a duration like \"30m\", \"24h\", \"2d\", \"1w\" or \"1d12h\"")]
pub struct SpanError(String);

impl Span {
    pub fn from_millis(millis: u64) -> Option<Self> {
        (millis > 0 && millis <= MAX).then_some(Self(millis))
    }

    pub fn as_millis(self) -> u64 {
        self.0
    }

    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if text.is_empty() {
            return Err(SpanError("empty duration".into()));
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut last_unit = usize::MAX;
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let Some(position) = UNITS.iter().position(|(u, _)| *u == c) else {
                return Err(SpanError(format!("unknown unit {c:?} in {text:?}")));
            };
            if digits.is_empty() {
                return Err(SpanError(format!("unit {c:?} without a number in {text:?}")));
            }
            if last_unit != usize::MAX && position <= last_unit {
                return Err(SpanError(format!("units out of order in {text:?} (largest first)")));
            }
            last_unit = position;
            let n: u64 = digits.parse().map_err(|_| SpanError(format!("number too large in {text:?}")))?;
            digits.clear();
            total = n
                .checked_mul(UNITS[position].1)
                .and_then(|ms| total.checked_add(ms))
                .ok_or_else(|| SpanError(format!("{text:?} is too long")))?;
        }
        if !digits.is_empty() {
            return Err(SpanError(format!("missing unit after {digits:?} in {text:?}")));
        }
        if total == 0 {
            return Err(SpanError(format!("{text:?} is zero; a duration must be positive")));
        }
        Span::from_millis(total).ok_or_else(|| SpanError(format!("{text:?} is longer than 10 years")))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        for (unit, ms) in UNITS {
            if rest >= ms {
                write!(f, "{}{unit}", rest / ms)?;
                rest %= ms;
            }
        }
        if rest > 0 {
            // Sub-second remainders only come from `from_millis`; keep them exact.
            write!(f, "{rest}ms")?;
        }
        Ok(())
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        for (text, ms, printed) in [
            ("30m", 1_800_000, "30m"),
            ("24h", 86_400_000, "1d"),
            ("2d", 172_800_000, "2d"),
            ("1w", 604_800_000, "1w"),
            ("1d12h", 129_600_000, "1d12h"),
            (" 90s ", 90_000, "1m30s"),
        ] {
            let span: Span = text.parse().expect(text);
            assert_eq!(span.as_millis(), ms, "{text}");
            assert_eq!(span.to_string(), printed, "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_positive_duration() {
        for text in ["", "0d", "5", "d", "2x", "1h1d", "-1d", "99999999999999999999d", "11000d"] {
            assert!(text.parse::<Span>().is_err(), "{text:?} was accepted");
        }
    }
}
