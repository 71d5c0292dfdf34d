//! Fuzz target for the template language: `Template::compile` on arbitrary text, then
//! `render_at` in both escaping modes with small limits, and `html_to_text` on the input and on
//! the HTML output. Nothing here may panic or hang, whatever a tenant writes: a template
//! compiles or says where it is wrong, and a render finishes or stops at its limits, with
//! output never larger than allowed.
//!
//! Input layout (see `fuzz/seeds/template/` for examples): the template source, then
//! optionally a NUL byte and the variables as JSON. Without a NUL byte (or when the JSON does
//! not parse), a fixed set of contact-like variables is used, so mutations of the template
//! alone reach the renderer with data to look up.

#![no_main]

use herald_template::{Escape, Limits, Template, html_to_text};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use time::macros::datetime;

/// Small limits, so each input runs fast and the limit paths are exercised often.
const LIMITS: Limits = Limits { max_output_bytes: 64 * 1024, max_steps: 5_000 };

fn default_vars() -> Value {
    json!({
        "customer": {
            "first_name": "Ada <b>",
            "email": "ada@example.com",
            "tags": ["vip", "beta"],
            "orders": 3,
            "total_spent": "149.00",
            "created_at": "2026-11-23T09:30:00+01:00",
            "signed_up": 1795000000,
            "address": { "city": "London" },
            "nickname": null
        },
        "items": [{ "title": "Mug", "price": 12 }, { "title": "Tea", "price": 5.5 }],
        "event": { "name": "order_placed", "properties": { "total": 47 } }
    })
}

fuzz_target!(|data: &[u8]| {
    let (source, vars) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], serde_json::from_slice(&data[nul + 1..]).unwrap_or_else(|_| default_vars())),
        None => (data, default_vars()),
    };
    let Ok(source) = std::str::from_utf8(source) else { return };
    let _ = html_to_text(source);
    let template = match Template::compile(source) {
        Ok(template) => template,
        Err(err) => {
            assert!(err.line >= 1 && err.column >= 1, "{err}");
            return;
        }
    };
    let now = datetime!(2026-11-23 08:05:09 UTC);
    for escape in [Escape::Html, Escape::Text] {
        if let Ok(rendered) = template.render_at(&vars, escape, &LIMITS, now) {
            assert!(rendered.output.len() <= LIMITS.max_output_bytes, "output over the limit");
            if escape == Escape::Html {
                let _ = html_to_text(&rendered.output);
            }
        }
    }
});
