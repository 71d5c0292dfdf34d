//! Helpers shared by the integration tests: compile and render in one call, at a fixed time.

#![allow(dead_code, clippy::unwrap_used)]

use herald_template::{CompileError, Escape, Limits, Rendered, Template};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

/// The clock of every test render.
pub const NOW: OffsetDateTime = datetime!(2026-11-23 08:05:09 UTC);

pub fn try_render(source: &str, vars: &Value, escape: Escape, limits: &Limits) -> Rendered {
    let template = Template::compile(source).unwrap_or_else(|e| panic!("{source:?} does not compile: {e}"));
    template.render_at(vars, escape, limits, NOW).unwrap_or_else(|e| panic!("{source:?} does not render: {e}"))
}

/// Renders in text mode (no escaping) with the default limits.
pub fn text(source: &str, vars: &Value) -> String {
    try_render(source, vars, Escape::Text, &Limits::default()).output
}

/// Renders in HTML mode with the default limits.
pub fn html(source: &str, vars: &Value) -> String {
    try_render(source, vars, Escape::Html, &Limits::default()).output
}

/// Asserts each `(template, expected output)` pair against `vars`, in text mode.
pub fn table(vars: &Value, cases: &[(&str, &str)]) {
    for (source, want) in cases {
        assert_eq!(text(source, vars), *want, "template: {source}");
    }
}

pub fn compile_error(source: &str) -> CompileError {
    match Template::compile(source) {
        Ok(_) => panic!("{source:?} compiled"),
        Err(e) => e,
    }
}
