//! The `date` filter's two halves: reading a value as a moment ([`parse`]) and formatting it
//! with strftime directives ([`strftime`]). Both are hand-written scanners over the bytes (no
//! regular expression, no allocation beyond the output); the `time` crate does the calendar.
//!
//! Accepted inputs: RFC 3339 / ISO 8601 date-times (`2026-11-23T09:30:00Z`, `…+01:00`,
//! `…+0100`, fractional seconds, a space instead of `T`, no offset meaning UTC), dates alone
//! (`2026-11-23`, midnight UTC), unix timestamps in seconds as numbers or numeric strings,
//! RFC 2822 (`Mon, 23 Nov 2026 09:30:00 +0000`), and `now` / `today` (the render's clock). A
//! date-time keeps its own offset when formatted; timestamps are formatted in UTC.

use std::fmt::Write as _;

use serde_json::Value;
use time::format_description::well_known::Rfc2822;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::value::{Num, parse_number};

/// The moment `v` stands for, if any.
pub(crate) fn parse(v: &Value, now: OffsetDateTime) -> Option<OffsetDateTime> {
    match v {
        Value::Number(n) => from_unix(match n.as_i64() {
            Some(i) => Num::Int(i),
            None => Num::Float(n.as_f64()?),
        }),
        Value::String(s) => {
            let s = s.trim();
            if s.eq_ignore_ascii_case("now") || s.eq_ignore_ascii_case("today") {
                return Some(now);
            }
            if let Some(n) = parse_number(s) {
                return from_unix(n);
            }
            iso8601(s).or_else(|| OffsetDateTime::parse(s, &Rfc2822).ok())
        }
        _ => None,
    }
}

fn from_unix(seconds: Num) -> Option<OffsetDateTime> {
    match seconds {
        Num::Int(s) => OffsetDateTime::from_unix_timestamp(s).ok(),
        Num::Float(s) if s.is_finite() && s.abs() < 1e15 => {
            OffsetDateTime::from_unix_timestamp_nanos((s * 1e9) as i128).ok()
        }
        Num::Float(_) => None,
    }
}

/// A cursor over the bytes of an ISO 8601 string.
struct Scan<'s> {
    bytes: &'s [u8],
    i: usize,
}

impl Scan<'_> {
    /// Exactly `n` digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let digits = self.bytes.get(self.i..self.i + n)?;
        let mut value = 0u32;
        for &b in digits {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.i += n;
        Some(value)
    }

    fn eat(&mut self, set: &[u8]) -> Option<u8> {
        let b = *self.bytes.get(self.i)?;
        set.contains(&b).then(|| {
            self.i += 1;
            b
        })
    }

    fn done(&self) -> bool {
        self.i == self.bytes.len()
    }
}

fn iso8601(s: &str) -> Option<OffsetDateTime> {
    let mut scan = Scan { bytes: s.as_bytes(), i: 0 };
    let year = scan.digits(4)?;
    scan.eat(b"-")?;
    let month = scan.digits(2)?;
    scan.eat(b"-")?;
    let day = scan.digits(2)?;
    let date = Date::from_calendar_date(
        i32::try_from(year).ok()?,
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    if scan.done() {
        return Some(date.midnight().assume_utc());
    }
    scan.eat(b"Tt ")?;
    let hour = scan.digits(2)?;
    scan.eat(b":")?;
    let minute = scan.digits(2)?;
    let (mut second, mut nanos) = (0, 0);
    if scan.eat(b":").is_some() {
        second = scan.digits(2)?;
        if scan.eat(b".,").is_some() {
            let mut scale = 100_000_000;
            while let Some(d) = scan.digits(1) {
                nanos += d * scale;
                scale /= 10;
            }
        }
    }
    let time =
        Time::from_hms_nano(u8::try_from(hour).ok()?, u8::try_from(minute).ok()?, u8::try_from(second).ok()?, nanos)
            .ok()?;
    scan.eat(b" ");
    let rest = &s[scan.i..];
    let offset = if rest.is_empty() || rest.eq_ignore_ascii_case("z") || rest == "UTC" || rest == "GMT" {
        UtcOffset::UTC
    } else {
        let sign = scan.eat(b"+-")?;
        let hours = scan.digits(2)?;
        scan.eat(b":");
        let minutes = if scan.done() { 0 } else { scan.digits(2)? };
        if !scan.done() {
            return None;
        }
        let (h, m) = (i8::try_from(hours).ok()?, i8::try_from(minutes).ok()?);
        if sign == b'-' { UtcOffset::from_hms(-h, -m, 0).ok()? } else { UtcOffset::from_hms(h, m, 0).ok()? }
    };
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Formats `t` like Ruby's `Time#strftime`. Flags: `-` (no padding), `_` (pad with spaces),
/// `0` (pad with zeros), `^` (upper case). An unknown directive is written as it is.
pub(crate) fn strftime(t: OffsetDateTime, format: &str, out: &mut String) {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut rest = chars.clone();
        let flag = match rest.next() {
            Some(f @ ('-' | '_' | '0' | '^')) => {
                chars.next();
                Some(f)
            }
            _ => None,
        };
        let Some(directive) = chars.next() else {
            out.push('%');
            flag.into_iter().for_each(|f| out.push(f));
            break;
        };
        directive_into(t, flag, directive, out);
    }
}

fn directive_into(t: OffsetDateTime, flag: Option<char>, directive: char, out: &mut String) {
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    let month = usize::from(u8::from(t.month())) - 1;
    let weekday = usize::from(t.weekday().number_days_from_sunday());
    let num = |out: &mut String, n: i64, width: usize, pad: char| {
        let pad = match flag {
            Some('-') => {
                let _ = write!(out, "{n}");
                return;
            }
            Some('_') => ' ',
            Some('0') => '0',
            _ => pad,
        };
        let digits = n.unsigned_abs().to_string();
        if n < 0 {
            out.push('-');
        }
        (digits.len()..width).for_each(|_| out.push(pad));
        out.push_str(&digits);
    };
    let name = |out: &mut String, s: &str| {
        if flag == Some('^') { out.push_str(&s.to_uppercase()) } else { out.push_str(s) }
    };
    match directive {
        'Y' => num(out, i64::from(t.year()), 4, '0'),
        'C' => num(out, i64::from(t.year()).div_euclid(100), 2, '0'),
        'y' => num(out, i64::from(t.year()).rem_euclid(100), 2, '0'),
        'm' => num(out, month as i64 + 1, 2, '0'),
        'd' => num(out, i64::from(t.day()), 2, '0'),
        'e' => num(out, i64::from(t.day()), 2, ' '),
        'j' => num(out, i64::from(t.ordinal()), 3, '0'),
        'H' => num(out, i64::from(t.hour()), 2, '0'),
        'k' => num(out, i64::from(t.hour()), 2, ' '),
        'I' => num(out, i64::from(hour12), 2, '0'),
        'l' => num(out, i64::from(hour12), 2, ' '),
        'M' => num(out, i64::from(t.minute()), 2, '0'),
        'S' => num(out, i64::from(t.second()), 2, '0'),
        'L' => num(out, i64::from(t.millisecond()), 3, '0'),
        'u' => num(out, i64::from(t.weekday().number_from_monday()), 1, '0'),
        'w' => num(out, weekday as i64, 1, '0'),
        'V' => num(out, i64::from(t.iso_week()), 2, '0'),
        's' => num(out, t.unix_timestamp(), 1, '0'),
        'p' => name(out, if t.hour() < 12 { "AM" } else { "PM" }),
        'P' => out.push_str(if t.hour() < 12 { "am" } else { "pm" }),
        'b' | 'h' => name(out, &MONTHS[month][..3]),
        'B' => name(out, MONTHS[month]),
        'a' => name(out, &DAYS[weekday][..3]),
        'A' => name(out, DAYS[weekday]),
        'F' => strftime(t, "%Y-%m-%d", out),
        'T' | 'X' => strftime(t, "%H:%M:%S", out),
        'R' => strftime(t, "%H:%M", out),
        'r' => strftime(t, "%I:%M:%S %p", out),
        'D' | 'x' => strftime(t, "%m/%d/%y", out),
        'c' => strftime(t, "%a %b %e %H:%M:%S %Y", out),
        'z' | 'Z' => {
            let offset = t.offset();
            if directive == 'Z' && offset.is_utc() {
                out.push_str("UTC");
                return;
            }
            let (h, m, _) = offset.as_hms();
            out.push(if offset.is_negative() { '-' } else { '+' });
            let sep = if directive == 'Z' { ":" } else { "" };
            let _ = write!(out, "{:02}{sep}{:02}", h.unsigned_abs(), m.unsigned_abs());
        }
        'n' => out.push('\n'),
        't' => out.push('\t'),
        '%' => out.push('%'),
        other => {
            out.push('%');
            flag.into_iter().for_each(|f| out.push(f));
            out.push(other);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-23 08:05:09 UTC);

    fn show(v: Value, format: &str) -> Option<String> {
        let t = parse(&v, NOW)?;
        let mut out = String::new();
        strftime(t, format, &mut out);
        Some(out)
    }

    #[test]
    fn reads_every_supported_input() {
        let cases = [
            (json!("2026-11-23T09:30:00Z"), "2026-11-23 09:30:00 +0000"),
            (json!("2026-11-23T09:30:00.123456+01:00"), "2026-11-23 09:30:00 +0100"),
            (json!("2026-11-23 09:30:00 -0530"), "2026-11-23 09:30:00 -0530"),
            (json!("2026-11-23T09:30"), "2026-11-23 09:30:00 +0000"),
            (json!("2026-11-23"), "2026-11-23 00:00:00 +0000"),
            (json!(1_795_000_000), "2026-11-18 11:06:40 +0000"),
            (json!("1795000000"), "2026-11-18 11:06:40 +0000"),
            (json!(1_795_000_000.5), "2026-11-18 11:06:40 +0000"),
            (json!("now"), "2026-11-23 08:05:09 +0000"),
            (json!("Today"), "2026-11-23 08:05:09 +0000"),
            (json!("Mon, 23 Nov 2026 09:30:00 +0000"), "2026-11-23 09:30:00 +0000"),
        ];
        for (input, want) in cases {
            assert_eq!(show(input.clone(), "%F %T %z").as_deref(), Some(want), "{input}");
        }
        for bad in [
            json!("2026-13-01"),
            json!("2026-11-31"),
            json!("next week"),
            json!("2026-11-23T25:00"),
            json!(null),
            json!(true),
        ] {
            assert_eq!(show(bad.clone(), "%F"), None, "{bad}");
        }
    }

    #[test]
    fn formats_every_directive() {
        let t = json!("2026-03-05T14:07:09.250+01:00");
        let cases = [
            ("%Y %m %d %e %j", "2026 03 05  5 064"),
            ("%H %I %M %S %p %P %L", "14 02 07 09 PM pm 250"),
            ("%y %b %B %a %A %h", "26 Mar March Thu Thursday Mar"),
            ("%F | %T | %D | %R", "2026-03-05 | 14:07:09 | 03/05/26 | 14:07"),
            ("%Z %z %s", "+01:00 +0100 1772716029"),
            ("%-d/%-m %-I%P %^b %_m", "5/3 2pm MAR  3"),
            ("%u %w %V %k %l", "4 4 10 14  2"),
            ("100%% %Q %", "100% %Q %"),
        ];
        for (format, want) in cases {
            assert_eq!(show(t.clone(), format).as_deref(), Some(want), "{format}");
        }
        assert_eq!(show(json!("2026-03-05T00:30:00Z"), "%I %p %Z").as_deref(), Some("12 AM UTC"));
    }
}
