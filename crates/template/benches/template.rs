//! `cargo bench -p herald-template`: compile and render a typical 1 KB HTML email template
//! (a few variables, an `if`, a `for` over 3 items, a `date` filter, `default`) and report the
//! median time per operation.
//!
//! The machines are shared and noisy, so each figure is the median of many samples, and the
//! same run measures a baseline: the same email built by hand with `push_str`, `write!` and
//! the same HTML escaping, reading the same `serde_json::Value`. Targets: compile ≤ 50 µs,
//! render ≤ 10 µs.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use herald_template::{Escape, Limits, Template};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const TEMPLATE: &str = r#"<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Your order</title></head>
<body style="font-family: Helvetica, Arial, sans-serif; color: #222; margin: 0; padding: 24px;">
  <table width="100%" cellpadding="0" cellspacing="0" role="presentation">
    <tr><td>
      <h1 style="font-size: 22px;">Hi {{ customer.first_name | default: "there" }},</h1>
      <p>Thanks for your order <strong>#{{ order.number }}</strong>, placed on {{ order.placed_at | date: "%B %-d, %Y" }}.</p>
      {% if customer.plan == "pro" %}
      <p style="color: #0a7;">As a Pro member, your shipping is free.</p>
      {% endif %}
      <table cellpadding="4" style="border-collapse: collapse;">
        {% for item in order.items %}
        <tr><td>{{ item.title }}</td><td>{{ item.quantity }} &times;</td><td>${{ item.price }}</td></tr>
        {% endfor %}
      </table>
      <p>Total: <strong>${{ order.total }}</strong></p>
      <p><a href="https://shop.example.com/orders/{{ order.number }}?utm_source=email" style="color: #06c;">View your order</a></p>
      <p style="font-size: 12px; color: #888;">You receive this email because you shopped at Example Shop. <a href="{{ unsubscribe_url }}">Unsubscribe</a>.</p>
    </td></tr>
  </table>
</body>
</html>
"#;

fn vars() -> Value {
    json!({
        "customer": { "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "plan": "pro" },
        "order": {
            "number": 1042,
            "placed_at": "2026-11-23T09:30:00Z",
            "total": "47.00",
            "items": [
                { "title": "Blue mug", "quantity": 2, "price": "12.00" },
                { "title": "Earl Grey & biscuits", "quantity": 1, "price": "18.00" },
                { "title": "Tea towel", "quantity": 1, "price": "5.00" }
            ]
        },
        "unsubscribe_url": "https://shop.example.com/u/abc123"
    })
}

fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The same email without a template engine (whitespace aside).
fn baseline(v: &Value) -> String {
    let mut out = String::with_capacity(1536);
    out.push_str(&TEMPLATE[..TEMPLATE.find("Hi {{").unwrap_or(0)]);
    out.push_str("Hi ");
    match v["customer"]["first_name"].as_str() {
        Some(name) if !name.is_empty() => escape(&mut out, name),
        _ => out.push_str("there"),
    }
    out.push_str(",</h1>\n      <p>Thanks for your order <strong>#");
    escape(&mut out, &text(&v["order"]["number"]));
    out.push_str("</strong>, placed on ");
    if let Some(t) = v["order"]["placed_at"].as_str().and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok()) {
        let _ = write!(out, "{} {}, {}", t.month(), t.day(), t.year());
    }
    out.push_str(".</p>\n");
    if v["customer"]["plan"] == "pro" {
        out.push_str("<p style=\"color: #0a7;\">As a Pro member, your shipping is free.</p>\n");
    }
    out.push_str("<table cellpadding=\"4\" style=\"border-collapse: collapse;\">\n");
    for item in v["order"]["items"].as_array().into_iter().flatten() {
        out.push_str("<tr><td>");
        escape(&mut out, &text(&item["title"]));
        out.push_str("</td><td>");
        escape(&mut out, &text(&item["quantity"]));
        out.push_str(" &times;</td><td>$");
        escape(&mut out, &text(&item["price"]));
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n<p>Total: <strong>$");
    escape(&mut out, &text(&v["order"]["total"]));
    out.push_str("</strong></p>\n<p><a href=\"https://shop.example.com/orders/");
    escape(&mut out, &text(&v["order"]["number"]));
    out.push_str("?utm_source=email\" style=\"color: #06c;\">View your order</a></p>\n");
    out.push_str("<p style=\"font-size: 12px; color: #888;\">You receive this email because you shopped at Example Shop. <a href=\"");
    escape(&mut out, &text(&v["unsubscribe_url"]));
    out.push_str("\">Unsubscribe</a>.</p>\n</td></tr>\n</table>\n</body>\n</html>\n");
    out
}

/// Median nanoseconds per call of `f`, over `samples` samples of `per_sample` calls each.
fn median_ns(samples: usize, per_sample: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..per_sample {
        f();
    }
    let mut times: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_sample {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(per_sample)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let vars = vars();
    let limits = Limits::default();
    let template = Template::compile(TEMPLATE).expect("the benchmark template compiles");
    let rendered = template.render(&vars, Escape::Html, &limits).expect("the benchmark template renders");
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    assert_eq!(squeeze(&rendered.output), squeeze(&baseline(&vars)), "the baseline builds the same email");
    assert!(rendered.warnings.is_empty(), "{:?}", rendered.warnings);

    let compile = median_ns(101, 200, || {
        black_box(Template::compile(black_box(TEMPLATE)).ok());
    });
    let render = median_ns(101, 1000, || {
        black_box(template.render(black_box(&vars), Escape::Html, &limits).ok());
    });
    let by_hand = median_ns(101, 1000, || {
        black_box(baseline(black_box(&vars)));
    });

    println!("template: {} bytes of source, {} bytes of output", TEMPLATE.len(), rendered.output.len());
    println!("| operation | median | target |");
    println!("| --- | ---: | ---: |");
    println!("| compile | {:.1} µs | ≤ 50 µs: {} |", compile / 1e3, verdict(compile <= 50_000.0));
    println!("| render (HTML mode) | {:.2} µs | ≤ 10 µs: {} |", render / 1e3, verdict(render <= 10_000.0));
    println!("| baseline: the same email by hand | {:.2} µs | — |", by_hand / 1e3);
    println!("render / baseline: {:.1}×", render / by_hand);
}

fn verdict(pass: bool) -> &'static str {
    if pass { "pass" } else { "FAIL" }
}
