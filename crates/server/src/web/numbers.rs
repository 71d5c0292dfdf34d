//! Email numbers as pages show them: each count with its rate in words, and the last days
//! drawn as a bar chart in inline SVG (no script: the page's policy allows none inline).

use herald_domain::Timestamp;
use herald_store::email::{DayNumbers, EmailNumbers, day_date};

/// One number of a set: `id` names it in the page (`numbers-sent`), `value` is the count,
/// `rate` its share of the messages sent, `note` what else there is to know.
#[derive(Debug)]
pub struct Figure {
    pub id: &'static str,
    pub label: &'static str,
    pub value: u64,
    pub rate: Option<String>,
    pub note: String,
}

/// A fraction as a percentage, with two decimals at most: `12.5%`, `0.12%`, `0%`.
pub fn percent(fraction: f64) -> String {
    let text = format!("{:.2}", fraction * 100.0);
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{text}%")
}

/// `1 click`, `2 clicks`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// The figures of a set of messages, in the order people read them.
pub fn figures(n: &EmailNumbers) -> Vec<Figure> {
    let (c, r) = (&n.counts, &n.rates);
    let mut figures = vec![
        Figure { id: "sent", label: "Sent", value: c.sent, rate: None, note: String::new() },
        Figure {
            id: "delivered",
            label: "Delivered",
            value: c.delivered,
            rate: Some(percent(r.delivered)),
            note: String::new(),
        },
        Figure {
            id: "bounced",
            label: "Bounced",
            value: c.bounced_hard + c.bounced_soft,
            rate: Some(percent(r.bounced)),
            note: format!("{} hard, {} soft", c.bounced_hard, c.bounced_soft),
        },
        Figure {
            id: "opened",
            label: "Opened",
            value: c.opened,
            rate: Some(percent(r.opened)),
            note: format!(
                "{} in all; apart from these, machines opened {} ({})",
                count(c.opens, "open"),
                c.machine_opened,
                count(c.machine_opens, "open")
            ),
        },
        Figure {
            id: "clicked",
            label: "Clicked",
            value: c.clicked,
            rate: Some(percent(r.clicked)),
            note: format!("{} in all; {} of those opened", count(c.clicks, "click"), percent(r.click_to_open)),
        },
        Figure {
            id: "complained",
            label: "Complained",
            value: c.complained,
            rate: Some(percent(r.complained)),
            note: String::new(),
        },
        Figure {
            id: "unsubscribed",
            label: "Unsubscribed",
            value: c.unsubscribed,
            rate: Some(percent(r.unsubscribed)),
            note: String::new(),
        },
    ];
    if let Some(converted) = n.converted {
        figures.push(Figure {
            id: "converted",
            label: "Converted",
            value: converted,
            rate: Some(percent(r.converted)),
            note: String::new(),
        });
    }
    figures
}

/// What the chart draws for each day, with its colour class.
const SERIES: [(&str, &str); 4] =
    [("sent", "Sent"), ("opened", "Opened"), ("clicked", "Clicked"), ("bounced", "Bounced")];
/// The chart's drawing size (its viewBox); it scales to the page's width.
const WIDTH: u32 = 720;
const HEIGHT: u32 = 160;

/// One bar of the chart.
#[derive(Debug)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub class: &'static str,
    /// The tooltip: `2026-01-02: 3 sent`.
    pub title: String,
}

/// One day of the chart, as its table lists it.
#[derive(Debug)]
pub struct ChartDay {
    pub date: String,
    /// Sent, opened, clicked, bounced (hard and soft), as the series.
    pub values: [u64; 4],
}

/// A bar chart of the last days: sent, opened (by people), clicked and bounced per day.
#[derive(Debug)]
pub struct DayChart {
    pub width: u32,
    pub height: u32,
    pub bars: Vec<Bar>,
    /// The days with activity, newest first, for the table under the chart.
    pub days: Vec<ChartDay>,
    pub first: String,
    pub last: String,
    pub max: u64,
    pub series: [(&'static str, &'static str); 4],
}

/// The day `t` falls on, counted from 1970-01-01 (UTC).
fn day_of(t: Timestamp) -> i64 {
    t.unix_millis().div_euclid(86_400_000)
}

/// Days a page's chart shows.
pub const CHART_DAYS: u32 = 30;

impl DayChart {
    /// When the first of the last `days` days (up to the one `now` falls on) began: what to
    /// count from for the chart.
    pub fn since(now: Timestamp, days: u32) -> Timestamp {
        let first = day_of(now) - i64::from(days.max(1)) + 1;
        Timestamp::from_unix_millis(first.saturating_mul(86_400_000))
    }

    /// The chart of the `days` days up to and including the one `now` falls on, from
    /// `daily` (the days with activity).
    pub fn new(daily: &[DayNumbers], now: Timestamp, days: u32) -> Self {
        let last = day_of(now);
        let first = last - i64::from(days.max(1)) + 1;
        let values = |d: &DayNumbers| {
            let c = &d.numbers.counts;
            [c.sent, c.opened, c.clicked, c.bounced_hard + c.bounced_soft]
        };
        let (from, to) = (day_date(first), day_date(last));
        let shown: Vec<&DayNumbers> = daily.iter().filter(|d| d.date >= from && d.date <= to).collect();
        let max = shown.iter().flat_map(|d| values(d)).max().unwrap_or(0);
        let slot = WIDTH / days.max(1);
        let bar = (slot.saturating_sub(2) / 4).max(1);
        let mut bars = Vec::new();
        for (i, day) in (first..=last).enumerate() {
            let date = day_date(day);
            let Some(numbers) = shown.iter().find(|d| d.date == date) else { continue };
            let x0 = u32::try_from(i).unwrap_or(0) * slot + 1;
            for (j, value) in values(numbers).into_iter().enumerate() {
                if value == 0 {
                    continue;
                }
                // At least one pixel high, so a single message shows.
                let height = ((value * u64::from(HEIGHT)) / max.max(1)).max(1);
                let height = u32::try_from(height).unwrap_or(HEIGHT);
                let (class, label) = SERIES[j];
                bars.push(Bar {
                    x: x0 + u32::try_from(j).unwrap_or(0) * bar,
                    y: HEIGHT - height,
                    width: bar,
                    height,
                    class,
                    title: format!("{date}: {value} {}", label.to_lowercase()),
                });
            }
        }
        let days = shown.iter().rev().map(|d| ChartDay { date: d.date.clone(), values: values(d) }).collect();
        Self { width: WIDTH, height: HEIGHT, bars, days, first: from, last: to, max, series: SERIES }
    }
}

#[cfg(test)]
mod tests {
    use herald_store::email::{DayNumbers, EmailCounts, EmailNumbers};

    use super::*;

    #[test]
    fn percentages_keep_what_matters() {
        for (fraction, shown) in [(0.0, "0%"), (0.5, "50%"), (0.125, "12.5%"), (0.0012, "0.12%"), (1.0, "100%")] {
            assert_eq!(percent(fraction), shown);
        }
    }

    #[test]
    fn the_chart_draws_days_in_range_scaled_to_the_busiest() {
        let day = |date: &str, sent, opened| DayNumbers {
            date: date.into(),
            numbers: EmailNumbers::new(EmailCounts { sent, opened, ..EmailCounts::default() }, None),
        };
        // 2026-01-31 is day 20484.
        let now = Timestamp::from_unix_millis(20_484 * 86_400_000 + 3_600_000);
        let chart =
            DayChart::new(&[day("2025-12-01", 9, 0), day("2026-01-30", 4, 2), day("2026-01-31", 2, 0)], now, 30);
        assert_eq!((chart.first.as_str(), chart.last.as_str()), ("2026-01-02", "2026-01-31"));
        let titles: Vec<&str> = chart.bars.iter().map(|b| b.title.as_str()).collect();
        assert_eq!(titles, ["2026-01-30: 4 sent", "2026-01-30: 2 opened", "2026-01-31: 2 sent"]);
        assert_eq!(chart.bars[0].height, HEIGHT, "the busiest day in range is full height");
        assert_eq!(chart.bars[1].height, HEIGHT / 2);
        assert!(chart.bars[2].x > chart.bars[0].x);
        assert_eq!(chart.days.iter().map(|d| d.date.as_str()).collect::<Vec<_>>(), ["2026-01-31", "2026-01-30"]);
    }
}
