//! The compiled form of a template: what the parser builds and the renderer walks.

use serde_json::Value;

use crate::filters::Filter;

/// A 1-based position in the template source, kept for warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: u32,
    pub(crate) column: u32,
}

#[derive(Debug)]
pub(crate) enum Node {
    Text(Box<str>),
    /// `{{ … }}` and `{% echo … %}`.
    Output(Filtered),
    /// `if`/`elsif`/`else`, and `unless` (its first condition wrapped in [`Cond::Not`]).
    If {
        branches: Vec<(Cond, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    Case {
        subject: Expr,
        whens: Vec<(Vec<Expr>, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    For(Box<ForLoop>),
    Assign {
        name: Box<str>,
        value: Filtered,
    },
    Capture {
        name: Box<str>,
        body: Vec<Node>,
    },
    Break,
    Continue,
}

#[derive(Debug)]
pub(crate) struct ForLoop {
    pub(crate) var: Box<str>,
    pub(crate) collection: Expr,
    pub(crate) limit: Option<Expr>,
    pub(crate) offset: Option<Expr>,
    pub(crate) reversed: bool,
    pub(crate) body: Vec<Node>,
    pub(crate) otherwise: Vec<Node>,
}

/// An expression and its filters: `expr | f: a, b | g`.
#[derive(Debug)]
pub(crate) struct Filtered {
    pub(crate) expr: Expr,
    pub(crate) filters: Vec<FilterCall>,
    /// A `default` filter follows, so a missing variable is expected, not a warning.
    pub(crate) defaulted: bool,
}

#[derive(Debug)]
pub(crate) struct FilterCall {
    pub(crate) filter: Filter,
    pub(crate) args: Vec<Expr>,
    /// Keyword arguments (`allow_false: true`), checked against the filter at compile time.
    pub(crate) keywords: Vec<(Box<str>, Expr)>,
    pub(crate) pos: Pos,
}

#[derive(Debug)]
pub(crate) enum Expr {
    Literal(Value),
    /// `empty`: equal to `""`, `[]` and `{}`; renders as nothing.
    Empty,
    /// `blank`: like `empty`, and also equal to nil, false and whitespace-only strings.
    Blank,
    Var(Path),
    /// `(a..b)`, inclusive.
    Range(Box<Expr>, Box<Expr>),
}

/// `customer.address["city"].size`, `items[forloop.index0]`.
#[derive(Debug)]
pub(crate) struct Path {
    pub(crate) root: Box<str>,
    pub(crate) segments: Vec<Segment>,
    /// The path as written, for warnings.
    pub(crate) text: Box<str>,
    pub(crate) pos: Pos,
}

#[derive(Debug)]
pub(crate) enum Segment {
    /// `.name` or `["name"]`.
    Key(Box<str>),
    /// `[0]`, `[-1]` or `[expression]`.
    Index(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Contains,
}

#[derive(Debug)]
pub(crate) enum Cond {
    /// A value tested for truth, or a comparison.
    Test(Expr, Option<(CmpOp, Expr)>),
    /// Liquid evaluates `and`/`or` right to left without precedence: `a or b and c` is
    /// `a or (b and c)`, and `a and b or c` is `a and (b or c)`.
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}
