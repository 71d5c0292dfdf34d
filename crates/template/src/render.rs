//! Walks the AST against the variables and writes the output, counting every step against the
//! [`Limits`].
//!
//! Values are `Cow<'a, Value>`: a variable found in the data (or in a loop over the data) is
//! borrowed from it, so rendering `{{ customer.first_name }}` copies nothing but the output
//! text; values computed by filters, literals aside, are owned. Names are looked up in the
//! enclosing `for` variables (innermost first), then in `assign`/`capture` variables (global to
//! the render, as in Liquid), then in the data.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;

use serde_json::Value;
use time::OffsetDateTime;

use crate::ast::{CmpOp, Cond, Expr, Filtered, ForLoop, Node, Path, Pos, Segment};
use crate::error::RenderError;
use crate::filters::{self, FilterCx};
use crate::value::{self, equal, is_blank, is_empty, truthy};
use crate::{Escape, Limits, MAX_WARNINGS, Rendered, Warning, WarningKind};

pub(crate) fn render(
    nodes: &[Node],
    vars: &Value,
    escape: Escape,
    limits: &Limits,
    now: OffsetDateTime,
) -> Result<Rendered, RenderError> {
    let mut renderer = Renderer {
        data: vars,
        assigns: HashMap::new(),
        loops: Vec::new(),
        out: String::new(),
        warnings: Vec::new(),
        budget: Budget { steps: Cell::new(0), max_steps: limits.max_steps, max_bytes: limits.max_output_bytes },
        html: escape == Escape::Html,
        now,
    };
    renderer.nodes(nodes)?;
    Ok(Rendered { output: renderer.out, warnings: renderer.warnings })
}

/// The step budget and the size bound, shared with the filters.
#[derive(Debug)]
pub(crate) struct Budget {
    /// A `Cell` so that expression evaluation, which only reads the renderer, can still pay.
    steps: Cell<u64>,
    max_steps: u64,
    max_bytes: usize,
}

impl Budget {
    pub(crate) fn step(&self, n: u64) -> Result<(), RenderError> {
        let steps = self.steps.get().saturating_add(n);
        self.steps.set(steps);
        if steps > self.max_steps { Err(RenderError::StepBudgetExceeded { limit: self.max_steps }) } else { Ok(()) }
    }

    /// Pays for `len` bytes just built (one step per KiB) and refuses anything larger than the
    /// output may be.
    pub(crate) fn bytes(&self, len: usize) -> Result<(), RenderError> {
        self.fits(len)?;
        self.step((len / 1024) as u64)
    }

    /// Pays for reading `v` (a filter's input or argument, a compared value): a step per KiB of
    /// a string, per 64 elements of an array or object. Without it, a template could scan one
    /// large value over and over at one step a time.
    pub(crate) fn read(&self, v: &Value) -> Result<(), RenderError> {
        let weight = match v {
            Value::String(s) => s.len() / 1024,
            Value::Array(items) => items.len() / 64,
            Value::Object(map) => map.len() / 64,
            _ => 0,
        };
        self.step(weight as u64)
    }

    /// Refuses a string about to grow past the output limit, before it is built.
    pub(crate) fn fits(&self, len: usize) -> Result<(), RenderError> {
        if len > self.max_bytes { Err(RenderError::OutputTooLarge { limit: self.max_bytes }) } else { Ok(()) }
    }
}

/// A variable set by `assign` or `capture`.
struct Local {
    value: Value,
    /// Captured in HTML mode: already escaped, so `{{ name }}` writes it as it is.
    safe: bool,
}

/// The state of one enclosing `for` loop.
struct Frame<'a> {
    var: &'a str,
    item: Cow<'a, Value>,
    index: usize,
    length: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

struct Renderer<'a> {
    data: &'a Value,
    assigns: HashMap<&'a str, Local>,
    loops: Vec<Frame<'a>>,
    out: String,
    warnings: Vec<Warning>,
    budget: Budget,
    html: bool,
    now: OffsetDateTime,
}

/// The collection of a `for` loop.
enum Items<'a> {
    /// `(from..to)`, never materialised: `(1..1000000000)` costs nothing until iterated.
    Range(i64, i64),
    Borrowed(&'a [Value]),
    Owned(Vec<Value>),
}

impl<'a> Items<'a> {
    fn len(&self) -> usize {
        match self {
            Items::Range(from, to) => usize::try_from(i128::from(*to) - i128::from(*from) + 1).unwrap_or(0),
            Items::Borrowed(items) => items.len(),
            Items::Owned(items) => items.len(),
        }
    }

    /// Item `i`, which is below `len()`; an owned item is moved out (each is taken once).
    fn take(&mut self, i: usize) -> Cow<'a, Value> {
        match self {
            Items::Range(from, _) => Cow::Owned(Value::from(from.saturating_add(i64::try_from(i).unwrap_or(i64::MAX)))),
            Items::Borrowed(items) => items.get(i).map_or(Cow::Owned(Value::Null), Cow::Borrowed),
            Items::Owned(items) => Cow::Owned(items.get_mut(i).map(std::mem::take).unwrap_or_default()),
        }
    }
}

impl<'a> Renderer<'a> {
    fn nodes(&mut self, nodes: &'a [Node]) -> Result<Flow, RenderError> {
        for node in nodes {
            self.budget.step(1)?;
            let flow = match node {
                Node::Text(text) => {
                    self.budget.fits(self.out.len() + text.len())?;
                    self.out.push_str(text);
                    Flow::Normal
                }
                Node::Output(filtered) => {
                    let v = self.filtered(filtered)?;
                    let escape = self.html && !self.is_safe(filtered);
                    self.write(&v, escape)?;
                    Flow::Normal
                }
                Node::If { branches, otherwise } => {
                    let mut chosen = otherwise;
                    for (cond, body) in branches {
                        if self.cond(cond)? {
                            chosen = body;
                            break;
                        }
                    }
                    self.nodes(chosen)?
                }
                Node::Case { subject, whens, otherwise } => {
                    let subject = self.quiet(subject)?;
                    let mut chosen = otherwise;
                    'whens: for (values, body) in whens {
                        for v in values {
                            if self.matches(&subject, v)? {
                                chosen = body;
                                break 'whens;
                            }
                        }
                    }
                    self.nodes(chosen)?
                }
                Node::For(for_loop) => self.for_loop(for_loop)?,
                Node::Assign { name, value } => {
                    let value = self.filtered(value)?.into_owned();
                    self.assigns.insert(name, Local { value, safe: false });
                    Flow::Normal
                }
                Node::Capture { name, body } => {
                    let start = self.out.len();
                    let flow = self.nodes(body)?;
                    let captured = self.out.split_off(start);
                    self.assigns.insert(name, Local { value: Value::String(captured), safe: self.html });
                    flow
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn write(&mut self, v: &Value, escape: bool) -> Result<(), RenderError> {
        let start = self.out.len();
        value::write(&mut self.out, v, escape);
        let written = self.out.len() - start;
        if let Err(too_large) = self.budget.fits(self.out.len()) {
            self.out.truncate(start);
            return Err(too_large);
        }
        self.budget.bytes(written)
    }

    /// Whether an output is written without escaping even in HTML mode: its last filter is
    /// `raw` or `escape`, or it is a captured variable (escaped as it was captured) as it is.
    fn is_safe(&self, filtered: &Filtered) -> bool {
        if let Some(last) = filtered.filters.last() {
            return last.filter.marks_safe();
        }
        match &filtered.expr {
            Expr::Var(path) if path.segments.is_empty() => {
                !self.loops.iter().any(|f| f.var == &*path.root)
                    && self.assigns.get(&*path.root).is_some_and(|local| local.safe)
            }
            _ => false,
        }
    }

    fn filtered(&mut self, filtered: &'a Filtered) -> Result<Cow<'a, Value>, RenderError> {
        let mut v = self.value(&filtered.expr, filtered.defaulted)?;
        for call in &filtered.filters {
            self.budget.step(1)?;
            let mut args = Vec::with_capacity(call.args.len());
            for arg in &call.args {
                args.push(self.value(arg, filtered.defaulted)?);
            }
            let mut keywords = Vec::new();
            for (name, arg) in &call.keywords {
                keywords.push((&**name, self.value(arg, filtered.defaulted)?));
            }
            self.budget.read(&v)?;
            for arg in &args {
                self.budget.read(arg)?;
            }
            let mut cx = FilterCx { budget: &self.budget, now: self.now, note: None };
            v = filters::apply(call.filter, v, &args, &keywords, &mut cx)?;
            if let Some(message) = cx.note {
                self.warn(call.pos, WarningKind::Filter { filter: call.filter.name(), message });
            }
        }
        Ok(v)
    }

    /// The value of `expr`; a missing variable is nil, and a warning unless `quiet`.
    fn value(&mut self, expr: &'a Expr, quiet: bool) -> Result<Cow<'a, Value>, RenderError> {
        match self.eval(expr)? {
            Some(v) => Ok(v),
            None => {
                if let (Expr::Var(path), false) = (expr, quiet) {
                    self.warn(path.pos, WarningKind::MissingVariable { path: path.text.to_string() });
                }
                Ok(Cow::Owned(Value::Null))
            }
        }
    }

    /// The value of `expr` in a condition, where a missing variable is simply nil.
    fn quiet(&self, expr: &'a Expr) -> Result<Cow<'a, Value>, RenderError> {
        Ok(self.eval(expr)?.unwrap_or(Cow::Owned(Value::Null)))
    }

    fn warn(&mut self, pos: Pos, kind: WarningKind) {
        let seen = self.warnings.iter().any(|w| w.line == pos.line && w.column == pos.column);
        if !seen && self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(Warning { line: pos.line, column: pos.column, kind });
        }
    }

    /// `None` when a variable is missing.
    fn eval(&self, expr: &'a Expr) -> Result<Option<Cow<'a, Value>>, RenderError> {
        Ok(Some(match expr {
            Expr::Literal(v) => Cow::Borrowed(v),
            Expr::Empty | Expr::Blank => Cow::Owned(Value::String(String::new())),
            Expr::Var(path) => return self.lookup(path),
            // A range outside `for` is an array, paid for element by element.
            Expr::Range(from, to) => {
                let (from, to) = (self.int(from)?, self.int(to)?);
                let len = Items::Range(from, to).len();
                self.budget.step(u64::try_from(len).unwrap_or(u64::MAX))?;
                Cow::Owned(Value::Array(if len == 0 { Vec::new() } else { (from..=to).map(Value::from).collect() }))
            }
        }))
    }

    fn int(&self, expr: &'a Expr) -> Result<i64, RenderError> {
        Ok(self.eval(expr)?.and_then(|v| value::int(&v)).unwrap_or(0))
    }

    fn lookup(&self, path: &'a Path) -> Result<Option<Cow<'a, Value>>, RenderError> {
        let root = &*path.root;
        if let Some(frame) = self.loops.iter().rev().find(|f| f.var == root) {
            return match &frame.item {
                Cow::Borrowed(item) => self.walk(Cow::Borrowed(*item), &path.segments),
                Cow::Owned(item) => Ok(self.walk(Cow::Borrowed(item), &path.segments)?.map(owned)),
            };
        }
        if let Some(local) = self.assigns.get(root) {
            return Ok(self.walk(Cow::Borrowed(&local.value), &path.segments)?.map(owned));
        }
        if root == "forloop"
            && let Some(frame) = self.loops.last()
        {
            return self.forloop(frame, &path.segments);
        }
        match self.data.get(root) {
            Some(v) => self.walk(Cow::Borrowed(v), &path.segments),
            None => Ok(None),
        }
    }

    /// `forloop.index` and friends, for the innermost loop.
    fn forloop(&self, frame: &Frame<'a>, segments: &'a [Segment]) -> Result<Option<Cow<'a, Value>>, RenderError> {
        let (i, n) = (frame.index, frame.length);
        let field = |name: &str| -> Option<Value> {
            Some(match name {
                "index" => Value::from(i + 1),
                "index0" => Value::from(i),
                "rindex" => Value::from(n - i),
                "rindex0" => Value::from(n - i - 1),
                "first" => Value::Bool(i == 0),
                "last" => Value::Bool(i + 1 == n),
                "length" => Value::from(n),
                _ => return None,
            })
        };
        if let [Segment::Key(name), rest @ ..] = segments {
            return match field(name) {
                Some(v) => Ok(self.walk(Cow::Owned(v), rest)?.map(owned)),
                None => Ok(None),
            };
        }
        let names = ["index", "index0", "rindex", "rindex0", "first", "last", "length"];
        let object = names.iter().filter_map(|n| Some(((*n).to_owned(), field(n)?))).collect();
        Ok(self.walk(Cow::Owned(Value::Object(object)), segments)?.map(owned))
    }

    /// Follows `segments` from `start`.
    fn walk<'v>(&self, start: Cow<'v, Value>, segments: &'a [Segment]) -> Result<Option<Cow<'v, Value>>, RenderError> {
        let mut current = start;
        for segment in segments {
            let next = match segment {
                Segment::Key(key) => child(current, key),
                Segment::Index(expr) => match self.eval(expr)? {
                    None => None,
                    Some(index) => match &*index {
                        Value::String(key) => child(current, key),
                        Value::Number(n) => n.as_i64().and_then(|i| element(current, i)),
                        _ => None,
                    },
                },
            };
            match next {
                Some(v) => current = v,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    fn cond(&self, cond: &'a Cond) -> Result<bool, RenderError> {
        Ok(match cond {
            Cond::Test(expr, None) => truthy(&*self.quiet(expr)?),
            Cond::Test(left, Some((op, right))) => self.compare(left, *op, right)?,
            Cond::And(a, b) => self.cond(a)? && self.cond(b)?,
            Cond::Or(a, b) => self.cond(a)? || self.cond(b)?,
            Cond::Not(c) => !self.cond(c)?,
        })
    }

    fn compare(&self, left: &'a Expr, op: CmpOp, right: &'a Expr) -> Result<bool, RenderError> {
        if matches!(op, CmpOp::Eq | CmpOp::Ne) {
            let same = match (left, right) {
                (Expr::Empty | Expr::Blank, other) | (other, Expr::Empty | Expr::Blank) => self.matches(
                    &*self.quiet(other)?,
                    if matches!(left, Expr::Empty | Expr::Blank) { left } else { right },
                )?,
                _ => equal(&*self.quiet(left)?, &*self.quiet(right)?),
            };
            return Ok(same == (op == CmpOp::Eq));
        }
        let (a, b) = (self.quiet(left)?, self.quiet(right)?);
        self.budget.read(&a)?;
        self.budget.read(&b)?;
        use std::cmp::Ordering::{Greater, Less};
        Ok(match op {
            CmpOp::Lt => value::order(&a, &b) == Some(Less),
            CmpOp::Gt => value::order(&a, &b) == Some(Greater),
            CmpOp::Le => value::order(&a, &b).is_some_and(|o| o != Greater),
            CmpOp::Ge => value::order(&a, &b).is_some_and(|o| o != Less),
            CmpOp::Contains => value::contains(&a, &b),
            CmpOp::Eq | CmpOp::Ne => false,
        })
    }

    /// Whether `subject` equals the value of `expr` (`empty` and `blank` included).
    fn matches(&self, subject: &Value, expr: &'a Expr) -> Result<bool, RenderError> {
        Ok(match expr {
            Expr::Empty => is_empty(subject),
            Expr::Blank => is_blank(subject),
            _ => equal(subject, &*self.quiet(expr)?),
        })
    }

    fn for_loop(&mut self, f: &'a ForLoop) -> Result<Flow, RenderError> {
        let offset = match &f.offset {
            Some(expr) => usize::try_from(self.int(expr)?).unwrap_or(0),
            None => 0,
        };
        let limit = match &f.limit {
            Some(expr) => Some(usize::try_from(self.int(expr)?).unwrap_or(0)),
            None => None,
        };
        let mut items = match &f.collection {
            Expr::Range(from, to) => Items::Range(self.int(from)?, self.int(to)?),
            expr => match self.value(expr, false)? {
                Cow::Borrowed(Value::Array(items)) => Items::Borrowed(items),
                Cow::Owned(Value::Array(items)) => Items::Owned(items),
                // Liquid iterates an object as [key, value] pairs.
                Cow::Borrowed(Value::Object(map)) => {
                    self.budget.step(map.len() as u64)?;
                    Items::Owned(
                        map.iter().map(|(k, v)| Value::Array(vec![Value::from(k.as_str()), v.clone()])).collect(),
                    )
                }
                Cow::Owned(Value::Object(map)) => {
                    self.budget.step(map.len() as u64)?;
                    Items::Owned(map.into_iter().map(|(k, v)| Value::Array(vec![Value::String(k), v])).collect())
                }
                Cow::Borrowed(s @ Value::String(text)) if !text.is_empty() => Items::Borrowed(std::slice::from_ref(s)),
                Cow::Owned(s @ Value::String(_)) if !value::is_empty(&s) => Items::Owned(vec![s]),
                _ => Items::Owned(Vec::new()),
            },
        };
        let total = items.len();
        let start = offset.min(total);
        let end = limit.map_or(total, |limit| total.min(start.saturating_add(limit)));
        let length = end - start;
        if length == 0 {
            return self.nodes(&f.otherwise);
        }
        self.loops.push(Frame { var: &f.var, item: Cow::Owned(Value::Null), index: 0, length });
        for k in 0..length {
            self.budget.step(1)?;
            let item = items.take(if f.reversed { end - 1 - k } else { start + k });
            if let Some(frame) = self.loops.last_mut() {
                frame.item = item;
                frame.index = k;
            }
            if self.nodes(&f.body)? == Flow::Break {
                break;
            }
        }
        self.loops.pop();
        Ok(Flow::Normal)
    }
}

fn owned<'a>(v: Cow<'_, Value>) -> Cow<'a, Value> {
    Cow::Owned(v.into_owned())
}

/// `value.key`, and the computed `size`, `first` and `last` where no such key exists.
fn child<'v>(value: Cow<'v, Value>, key: &str) -> Option<Cow<'v, Value>> {
    match value {
        Cow::Borrowed(v) => child_ref(v, key),
        Cow::Owned(v) => child_ref(&v, key).map(owned),
    }
}

fn child_ref<'v>(value: &'v Value, key: &str) -> Option<Cow<'v, Value>> {
    if let Some(v) = value.get(key) {
        return Some(Cow::Borrowed(v));
    }
    match (key, value) {
        ("size", Value::Array(items)) => Some(Cow::Owned(Value::from(items.len()))),
        ("size", Value::Object(map)) => Some(Cow::Owned(Value::from(map.len()))),
        ("size", Value::String(s)) => Some(Cow::Owned(Value::from(s.chars().count()))),
        ("first", Value::Array(items)) => items.first().map(Cow::Borrowed),
        ("last", Value::Array(items)) => items.last().map(Cow::Borrowed),
        _ => None,
    }
}

/// `value[i]`; a negative index counts from the end.
fn element<'v>(value: Cow<'v, Value>, i: i64) -> Option<Cow<'v, Value>> {
    let at = |len: usize| -> Option<usize> {
        let i = if i < 0 { i128::from(i) + len as i128 } else { i128::from(i) };
        usize::try_from(i).ok().filter(|&i| i < len)
    };
    match value {
        Cow::Borrowed(Value::Array(items)) => at(items.len()).and_then(|i| items.get(i)).map(Cow::Borrowed),
        Cow::Owned(Value::Array(mut items)) => at(items.len()).map(|i| Cow::Owned(items.swap_remove(i))),
        _ => None,
    }
}
