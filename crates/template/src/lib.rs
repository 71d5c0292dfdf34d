//! Herald's template language: the Liquid that users write in campaign emails (subject, HTML
//! and text bodies), webhook bodies, URLs and headers, and set-attribute values.
//!
//! A template is compiled once ([`Template::compile`], which is where the API rejects a broken
//! template with a line and column) and rendered many times against a `serde_json::Value`
//! holding the variables ([`Template::render`]). Rendering never fails because of the data: a
//! missing variable renders as nothing and is reported as a [`Warning`]. It fails only when a
//! template does too much work or writes too much ([`Limits`]), so a hostile template cannot
//! stall a worker.
//!
//! The pipeline is `lexer` (template text → text, `{{ }}` and `{% %}` tokens) → `parser` (→ the
//! `ast`) → `render`, with `filters`, `date` (parsing and strftime) and `value` (Liquid's
//! truthiness, comparisons and output form of JSON values) beside it. Why we wrote our own
//! instead of using the `liquid` crate: docs/adr/0007-template-language.md.
//!
//! ```
//! use herald_template::{Escape, Limits, Template};
//!
//! let template = Template::compile("Hi {{ first_name | default: \"there\" }}!").unwrap();
//! let vars = serde_json::json!({ "first_name": "<Ada>" });
//! let rendered = template.render(&vars, Escape::Html, &Limits::default()).unwrap();
//! assert_eq!(rendered.output, "Hi &lt;Ada&gt;!");
//! ```

mod ast;
mod date;
mod error;
mod filters;
mod html_text;
mod lexer;
mod parser;
mod render;
mod value;

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

pub use error::{CompileError, RenderError};
pub use html_text::{decode_entities, html_to_text};

/// How deeply blocks (`if`, `for`, `case`, `capture`, …) and bracketed lookups may nest. The
/// renderer recurses once per level, so this bounds its stack; real templates use a handful.
pub const MAX_NESTING: usize = 64;

/// A compiled template. Cheap to clone (the compiled form is shared behind an `Arc`), and
/// `Send + Sync`, so one compiled template can serve every worker.
#[derive(Clone, Debug)]
pub struct Template {
    nodes: Arc<[ast::Node]>,
}

impl Template {
    /// Parses `source`. The error names the line and column (1-based) of the problem, e.g.
    /// "line 3, column 14: unknown filter `upcse`".
    pub fn compile(source: &str) -> Result<Template, CompileError> {
        let nodes = parser::parse(source)?;
        Ok(Template { nodes: nodes.into() })
    }

    /// Renders with `vars` (normally a JSON object: its keys are the top-level variables), reading
    /// the system clock once for the `date` filter's `"now"` and `"today"`.
    pub fn render(&self, vars: &Value, escape: Escape, limits: &Limits) -> Result<Rendered, RenderError> {
        self.render_at(vars, escape, limits, OffsetDateTime::now_utc())
    }

    /// Like [`render`](Self::render) with the current time given, so callers with their own
    /// clock (and tests) get reproducible output.
    pub fn render_at(
        &self,
        vars: &Value,
        escape: Escape,
        limits: &Limits,
        now: OffsetDateTime,
    ) -> Result<Rendered, RenderError> {
        render::render(&self.nodes, vars, escape, limits, now)
    }
}

/// What `{{ }}` output is escaped for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Escape {
    /// Every `{{ }}` output is HTML-escaped (`& < > " '`), so contact data cannot inject markup,
    /// unless its last filter is `raw` (opt out) or `escape` (already escaped). Text written in
    /// the template itself is never escaped.
    Html,
    /// No escaping: subjects, plain-text bodies, URLs and headers.
    Text,
}

/// Bounds on the work of one render; exceeding one is a [`RenderError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes a render may produce; also the largest string a filter may build.
    pub max_output_bytes: usize,
    /// The step budget: every node rendered, loop iteration and filter call costs one step;
    /// every KiB of text written, built by a filter, or read by a filter or a comparison costs
    /// one more (and every 64 elements of an array read), so both CPU time and the memory a
    /// render churns through are bounded.
    pub max_steps: u64,
}

impl Default for Limits {
    /// 1 MiB of output and 100,000 steps: far more than any email needs (a typical one takes
    /// under 100 steps), and at most a few milliseconds of work.
    fn default() -> Self {
        Limits { max_output_bytes: 1024 * 1024, max_steps: 100_000 }
    }
}

/// A successful render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub output: String,
    /// What went unnoticed in the output: missing variables, values a filter could not use. At
    /// most [`MAX_WARNINGS`], each place reported once.
    pub warnings: Vec<Warning>,
}

/// The most warnings one render reports.
pub const MAX_WARNINGS: usize = 50;

/// Something in the data that the template could not use; the render went on without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// 1-based position in the template source of the variable or filter concerned.
    pub line: u32,
    pub column: u32,
    pub kind: WarningKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// A variable that is not in the data, as written in the template (`customer.frist_name`).
    /// It rendered as nothing. Not reported inside a condition (`{% if customer.nickname %}`
    /// is how one tests for presence) nor when a `default` filter follows.
    MissingVariable { path: String },
    /// A filter could not use its input or arguments (an unparseable date, a division by zero);
    /// the message says what it did instead.
    Filter { filter: &'static str, message: String },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: ", self.line, self.column)?;
        match &self.kind {
            WarningKind::MissingVariable { path } => write!(f, "`{path}` is not defined"),
            WarningKind::Filter { filter, message } => write!(f, "filter `{filter}`: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn templates_can_be_shared_between_threads() {
        assert_send_sync::<Template>();
    }
}
