//! A segment's size over the last days as a bar chart in inline SVG, one bar per day, drawn
//! the way the email numbers' chart is (same frame and styles, no script).

use herald_domain::Timestamp;
use herald_store::email::day_date;
use herald_store::segment::DailySize;

/// The chart's drawing size (its viewBox); it scales to the page's width.
const WIDTH: u32 = 720;
const HEIGHT: u32 = 120;

/// One day's bar.
#[derive(Debug)]
pub struct SizeBar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// The tooltip: `2026-01-02: 3 members`.
    pub title: String,
}

#[derive(Debug)]
pub struct SizeChart {
    pub width: u32,
    pub height: u32,
    pub bars: Vec<SizeBar>,
    pub first: String,
    pub last: String,
    pub max: u64,
}

impl SizeChart {
    /// The sizes of the `days` days up to the one `now` falls on, from `sizes` (the days that
    /// saw a change, oldest first): a day without a change keeps the size of the day before,
    /// and days before the first known size count as empty.
    pub fn new(sizes: &[DailySize], now: Timestamp, days: u32) -> Self {
        let last = now.unix_millis().div_euclid(86_400_000);
        let first = last - i64::from(days.max(1)) + 1;
        let (from, to) = (day_date(first), day_date(last));
        // ISO dates order as text: the size going into the first day is the last one before it.
        let mut size = sizes.iter().rev().find(|s| s.day < from).map_or(0, |s| s.members);
        let mut daily = Vec::with_capacity(days as usize);
        for day in first..=last {
            let date = day_date(day);
            if let Some(changed) = sizes.iter().find(|s| s.day == date) {
                size = changed.members;
            }
            daily.push((date, size));
        }
        let max = daily.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let slot = WIDTH / days.max(1);
        let bars = daily
            .into_iter()
            .enumerate()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(i, (date, n))| {
                // At least one pixel high, so a single member shows.
                let height = u32::try_from(((n * u64::from(HEIGHT)) / max.max(1)).max(1)).unwrap_or(HEIGHT);
                SizeBar {
                    x: u32::try_from(i).unwrap_or(0) * slot + 1,
                    y: HEIGHT - height,
                    width: slot.saturating_sub(2).max(1),
                    height,
                    title: format!("{date}: {n} member{}", if n == 1 { "" } else { "s" }),
                }
            })
            .collect();
        Self { width: WIDTH, height: HEIGHT, bars, first: from, last: to, max }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_without_a_change_keep_the_size_before() {
        let size = |day: &str, members| DailySize { day: day.into(), members };
        // 2026-01-31 is day 20484.
        let now = Timestamp::from_unix_millis(20_484 * 86_400_000 + 3_600_000);
        let chart = SizeChart::new(&[size("2025-12-01", 4), size("2026-01-29", 2), size("2026-01-31", 0)], now, 5);
        assert_eq!((chart.first.as_str(), chart.last.as_str(), chart.max), ("2026-01-27", "2026-01-31", 4));
        let titles: Vec<&str> = chart.bars.iter().map(|b| b.title.as_str()).collect();
        assert_eq!(
            titles,
            ["2026-01-27: 4 members", "2026-01-28: 4 members", "2026-01-29: 2 members", "2026-01-30: 2 members"]
        );
        assert_eq!(chart.bars[0].height, HEIGHT);
        assert_eq!(chart.bars[2].height, HEIGHT / 2);
    }
}
