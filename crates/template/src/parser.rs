//! Builds the [`ast`](crate::ast) from the lexer's tokens: block tags by recursive descent over
//! the template tokens, expressions, filters and conditions over the expression tokens. Every
//! error names the position of the token at fault; nesting is bounded by
//! [`MAX_NESTING`](crate::MAX_NESTING).

use serde_json::Value;

use crate::MAX_NESTING;
use crate::ast::{CmpOp, Cond, Expr, FilterCall, Filtered, ForLoop, Node, Path, Segment};
use crate::error::CompileError;
use crate::filters::Filter;
use crate::lexer::{self, Lines, Spanned, Tok, Token};

pub(crate) fn parse(source: &str) -> Result<Vec<Node>, CompileError> {
    let lines = Lines::new(source);
    let tokens = lexer::tokenize(source, &lines)?;
    let mut parser = Parser { tokens: tokens.into_iter(), lines: &lines, open: Vec::new(), loops: 0 };
    let (nodes, _) = parser.block(&[])?;
    Ok(nodes)
}

struct Parser<'s, 'l> {
    tokens: std::vec::IntoIter<Token<'s>>,
    lines: &'l Lines<'s>,
    /// The blocks that enclose the current position: name and where the tag starts.
    open: Vec<(&'s str, usize)>,
    /// How many `for` bodies enclose it (`break` and `continue` need one).
    loops: usize,
}

/// A tag as the lexer found it: `{% name markup %}`, starting at byte `offset` of the source,
/// its markup at `markup_offset`.
#[derive(Clone, Copy)]
struct TagAt<'s> {
    name: &'s str,
    markup: &'s str,
    offset: usize,
    markup_offset: usize,
}

impl<'s> Parser<'s, '_> {
    /// Parses nodes until one of the tags in `ends` (returned) or the end of the template.
    fn block(&mut self, ends: &[&str]) -> Result<(Vec<Node>, Option<TagAt<'s>>), CompileError> {
        let mut nodes = Vec::new();
        while let Some(token) = self.tokens.next() {
            match token {
                Token::Text(text) => nodes.push(Node::Text(text.into())),
                Token::Output { markup, offset } => {
                    let mut exprs = self.exprs(markup, offset)?;
                    if !exprs.at_end() {
                        let filtered = exprs.filtered()?;
                        exprs.finish()?;
                        nodes.push(Node::Output(filtered));
                    }
                }
                Token::Tag { name, markup, offset, markup_offset } => {
                    let tag = TagAt { name, markup, offset, markup_offset };
                    if ends.contains(&name) {
                        return Ok((nodes, Some(tag)));
                    }
                    nodes.push(self.tag(&tag)?);
                }
            }
        }
        Ok((nodes, None))
    }

    /// The body of block `open` (which started at `offset`), up to one of `ends`.
    fn body(&mut self, open: &'s str, offset: usize, ends: &[&str]) -> Result<(Vec<Node>, TagAt<'s>), CompileError> {
        if self.open.len() >= MAX_NESTING {
            return Err(self.lines.error(offset, format!("blocks nest more than {MAX_NESTING} deep")));
        }
        self.open.push((open, offset));
        let (nodes, end) = self.block(ends)?;
        self.open.pop();
        let end = end.ok_or_else(|| {
            self.lines.error(offset, format!("`{{% {open} %}}` is never closed with `{{% end{open} %}}`"))
        })?;
        Ok((nodes, end))
    }

    fn exprs(&self, markup: &'s str, offset: usize) -> Result<Exprs<'s, '_>, CompileError> {
        let toks = lexer::expression(markup, offset, self.lines)?;
        Ok(Exprs { toks, i: 0, end: offset + markup.len(), lines: self.lines, depth: self.open.len() })
    }

    /// `else` and end tags take nothing.
    fn bare(&self, tag: &TagAt<'_>) -> Result<(), CompileError> {
        if tag.markup.trim().is_empty() {
            return Ok(());
        }
        let hint = if tag.name == "else" { " (for another condition, write `{% elsif … %}`)" } else { "" };
        let at = tag.markup_offset + (tag.markup.len() - tag.markup.trim_start().len());
        Err(self.lines.error(at, format!("`{{% {} %}}` takes nothing here{hint}", tag.name)))
    }

    fn tag(&mut self, tag: &TagAt<'s>) -> Result<Node, CompileError> {
        let TagAt { name, markup, offset, markup_offset } = *tag;
        match name {
            "if" | "unless" => self.if_tag(tag),
            "case" => self.case_tag(tag),
            "for" => self.for_tag(tag),
            "assign" => {
                let mut exprs = self.exprs(markup, markup_offset)?;
                let var = exprs.name("a variable name after `assign`")?;
                exprs.expect(&Tok::Equals, "`=`")?;
                let value = exprs.filtered()?;
                exprs.finish()?;
                Ok(Node::Assign { name: var.into(), value })
            }
            "capture" => {
                let mut exprs = self.exprs(markup, markup_offset)?;
                let var = match exprs.next_tok() {
                    Some(Spanned { tok: Tok::Ident(name) | Tok::Str(name), .. }) => name,
                    _ => return Err(exprs.error_here("expected a variable name after `capture`")),
                };
                exprs.finish()?;
                let (body, _) = self.body("capture", offset, &["endcapture"])?;
                Ok(Node::Capture { name: var.into(), body })
            }
            "echo" => {
                let mut exprs = self.exprs(markup, markup_offset)?;
                let filtered = exprs.filtered()?;
                exprs.finish()?;
                Ok(Node::Output(filtered))
            }
            "break" | "continue" => {
                if self.loops == 0 {
                    return Err(self.lines.error(offset, format!("`{{% {name} %}}` outside a `for` loop")));
                }
                self.bare(tag)?;
                Ok(if name == "break" { Node::Break } else { Node::Continue })
            }
            "else" | "elsif" | "when" | "endif" | "endunless" | "endcase" | "endfor" | "endcapture" | "endraw"
            | "endcomment" => Err(match self.open.last() {
                // Most likely the enclosing block was left open: say so where it starts.
                Some(&(open, at)) => self.lines.error(
                    at,
                    format!("`{{% {open} %}}` is never closed with `{{% end{open} %}}` (found `{{% {name} %}}` first)"),
                ),
                None => self.lines.error(offset, format!("unexpected `{{% {name} %}}`: no open block takes it")),
            }),
            "" => Err(self.lines.error(offset, "empty tag: expected a tag name after `{%`")),
            _ => Err(self.lines.error(markup_offset - name.len(), format!("unknown tag `{name}`"))),
        }
    }

    fn if_tag(&mut self, tag: &TagAt<'s>) -> Result<Node, CompileError> {
        let TagAt { name, markup, offset, markup_offset } = *tag;
        let end_name = if name == "if" { "endif" } else { "endunless" };
        let mut cond = self.condition(markup, markup_offset)?;
        if name == "unless" {
            cond = Cond::Not(Box::new(cond));
        }
        let mut branches = Vec::new();
        loop {
            let (body, end) = self.body(name, offset, &["elsif", "else", end_name])?;
            branches.push((cond, body));
            match end.name {
                "elsif" => cond = self.condition(end.markup, end.markup_offset)?,
                "else" => {
                    self.bare(&end)?;
                    let (otherwise, end) = self.body(name, offset, &[end_name])?;
                    self.bare(&end)?;
                    return Ok(Node::If { branches, otherwise });
                }
                _ => {
                    self.bare(&end)?;
                    return Ok(Node::If { branches, otherwise: Vec::new() });
                }
            }
        }
    }

    fn condition(&self, markup: &'s str, offset: usize) -> Result<Cond, CompileError> {
        let mut exprs = self.exprs(markup, offset)?;
        let cond = exprs.condition()?;
        exprs.finish()?;
        Ok(cond)
    }

    fn case_tag(&mut self, tag: &TagAt<'s>) -> Result<Node, CompileError> {
        let TagAt { markup, offset, markup_offset, .. } = *tag;
        let mut exprs = self.exprs(markup, markup_offset)?;
        let subject = exprs.expr()?;
        exprs.finish()?;
        // Whatever comes before the first `when` is never rendered (as in Liquid).
        let (_, mut end) = self.body("case", offset, &["when", "else", "endcase"])?;
        let mut whens = Vec::new();
        loop {
            match end.name {
                "when" => {
                    let mut exprs = self.exprs(end.markup, end.markup_offset)?;
                    let mut values = vec![exprs.expr()?];
                    while exprs.eat(&Tok::Comma) || exprs.eat(&Tok::Ident("or")) {
                        values.push(exprs.expr()?);
                    }
                    exprs.finish()?;
                    let (body, next) = self.body("case", offset, &["when", "else", "endcase"])?;
                    whens.push((values, body));
                    end = next;
                }
                "else" => {
                    self.bare(&end)?;
                    let (otherwise, end) = self.body("case", offset, &["endcase"])?;
                    self.bare(&end)?;
                    return Ok(Node::Case { subject, whens, otherwise });
                }
                _ => {
                    self.bare(&end)?;
                    return Ok(Node::Case { subject, whens, otherwise: Vec::new() });
                }
            }
        }
    }

    fn for_tag(&mut self, tag: &TagAt<'s>) -> Result<Node, CompileError> {
        let TagAt { markup, offset, markup_offset, .. } = *tag;
        let mut exprs = self.exprs(markup, markup_offset)?;
        let var = exprs.name("a variable name after `for`")?;
        if !exprs.eat(&Tok::Ident("in")) {
            return Err(exprs.error_here("expected `in` (`{% for item in collection %}`)"));
        }
        let collection = exprs.expr()?;
        let (mut limit, mut offset_expr, mut reversed) = (None, None, false);
        while !exprs.at_end() {
            if exprs.eat(&Tok::Ident("reversed")) {
                reversed = true;
            } else if exprs.eat(&Tok::Ident("limit")) {
                exprs.expect(&Tok::Colon, "`:` after `limit`")?;
                limit = Some(exprs.expr()?);
            } else if exprs.eat(&Tok::Ident("offset")) {
                exprs.expect(&Tok::Colon, "`:` after `offset`")?;
                offset_expr = Some(exprs.expr()?);
            } else if !exprs.eat(&Tok::Comma) {
                return Err(exprs.error_here("expected `reversed`, `limit: n` or `offset: n`"));
            }
        }
        self.loops += 1;
        let body = self.body("for", offset, &["else", "endfor"]);
        self.loops -= 1;
        let (body, end) = body?;
        let otherwise = if end.name == "else" {
            self.bare(&end)?;
            let (otherwise, end) = self.body("for", offset, &["endfor"])?;
            self.bare(&end)?;
            otherwise
        } else {
            self.bare(&end)?;
            Vec::new()
        };
        let for_loop = ForLoop { var: var.into(), collection, limit, offset: offset_expr, reversed, body, otherwise };
        Ok(Node::For(Box::new(for_loop)))
    }
}

/// A cursor over the expression tokens of one tag or output.
struct Exprs<'s, 'l> {
    toks: Vec<Spanned<'s>>,
    i: usize,
    /// Where the markup ends, for errors about something missing at the end.
    end: usize,
    lines: &'l Lines<'s>,
    /// Nesting so far: blocks enclosing the tag plus open brackets.
    depth: usize,
}

impl<'s> Exprs<'s, '_> {
    fn at_end(&self) -> bool {
        self.i >= self.toks.len()
    }

    fn peek(&self) -> Option<&Tok<'s>> {
        self.toks.get(self.i).map(|s| &s.tok)
    }

    fn next_tok(&mut self) -> Option<Spanned<'s>> {
        let tok = self.toks.get(self.i).cloned();
        self.i += 1;
        tok
    }

    fn eat(&mut self, tok: &Tok<'_>) -> bool {
        let found = self.peek() == Some(tok);
        if found {
            self.i += 1;
        }
        found
    }

    fn offset(&self) -> usize {
        self.toks.get(self.i).map_or(self.end, |s| s.offset)
    }

    fn error_here(&self, message: &str) -> CompileError {
        let found = match self.toks.get(self.i) {
            Some(s) => format!("found `{}`", &self.lines.source[s.offset..s.end]),
            None => "found nothing".to_owned(),
        };
        self.lines.error(self.offset(), format!("{message}, {found}"))
    }

    fn expect(&mut self, tok: &Tok<'_>, what: &str) -> Result<(), CompileError> {
        if self.eat(tok) { Ok(()) } else { Err(self.error_here(&format!("expected {what}"))) }
    }

    fn name(&mut self, what: &str) -> Result<&'s str, CompileError> {
        match self.peek() {
            Some(&Tok::Ident(name)) => {
                self.i += 1;
                Ok(name)
            }
            _ => Err(self.error_here(&format!("expected {what}"))),
        }
    }

    fn finish(&self) -> Result<(), CompileError> {
        match self.toks.get(self.i) {
            None => Ok(()),
            Some(s) => {
                let text = &self.lines.source[s.offset..s.end];
                Err(self.lines.error(s.offset, format!("unexpected `{text}`")))
            }
        }
    }

    /// `expr | filter: arg, name: arg | …`
    fn filtered(&mut self) -> Result<Filtered, CompileError> {
        let expr = self.expr()?;
        let mut filters = Vec::new();
        while self.eat(&Tok::Pipe) {
            let at = self.offset();
            let name = self.name("a filter name after `|`")?;
            let filter =
                Filter::from_name(name).ok_or_else(|| self.lines.error(at, format!("unknown filter `{name}`")))?;
            let mut call = FilterCall { filter, args: Vec::new(), keywords: Vec::new(), pos: self.lines.pos(at) };
            if self.eat(&Tok::Colon) {
                loop {
                    let keyword = match (self.peek(), self.toks.get(self.i + 1).map(|s| &s.tok)) {
                        (Some(&Tok::Ident(word)), Some(Tok::Colon)) => Some((word, self.offset())),
                        _ => None,
                    };
                    if let Some((word, word_at)) = keyword {
                        if !filter.keywords().contains(&word) {
                            return Err(self.lines.error(word_at, format!("filter `{name}` has no option `{word}`")));
                        }
                        self.i += 2;
                        call.keywords.push((word.into(), self.expr()?));
                    } else {
                        call.args.push(self.expr()?);
                    }
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
            }
            let (min, max) = filter.arity();
            if !(min..=max).contains(&call.args.len()) {
                let wanted = match (min, max) {
                    (0, 0) => "no arguments".to_owned(),
                    (a, b) if a == b => format!("{a} argument{}", if a == 1 { "" } else { "s" }),
                    (a, b) => format!("{a} to {b} arguments"),
                };
                return Err(self.lines.error(at, format!("filter `{name}` takes {wanted}, not {}", call.args.len())));
            }
            filters.push(call);
        }
        let defaulted = filters.iter().any(|f| f.filter == Filter::Default);
        Ok(Filtered { expr, filters, defaulted })
    }

    /// A literal, a variable path or a range `(a..b)`.
    fn expr(&mut self) -> Result<Expr, CompileError> {
        let Some(Spanned { tok, offset, .. }) = self.toks.get(self.i).cloned() else {
            return Err(self.error_here("expected a value"));
        };
        self.i += 1;
        Ok(match tok {
            Tok::Str(s) => Expr::Literal(Value::String(s.to_owned())),
            Tok::Int(n) => Expr::Literal(Value::from(n)),
            Tok::Float(f) => Expr::Literal(Value::from(f)),
            Tok::Ident("true") => Expr::Literal(Value::Bool(true)),
            Tok::Ident("false") => Expr::Literal(Value::Bool(false)),
            Tok::Ident("nil" | "null") => Expr::Literal(Value::Null),
            Tok::Ident("empty") => Expr::Empty,
            Tok::Ident("blank") => Expr::Blank,
            Tok::Ident(root) => Expr::Var(self.path(root, offset)?),
            Tok::LParen => {
                self.nest(offset)?;
                let from = self.expr()?;
                self.expect(&Tok::DotDot, "`..` in a range `(1..n)`")?;
                let to = self.expr()?;
                self.expect(&Tok::RParen, "`)` to close the range")?;
                self.depth -= 1;
                Expr::Range(Box::new(from), Box::new(to))
            }
            _ => {
                self.i -= 1;
                return Err(self.error_here("expected a value"));
            }
        })
    }

    fn nest(&mut self, offset: usize) -> Result<(), CompileError> {
        if self.depth >= MAX_NESTING {
            return Err(self.lines.error(offset, format!("expressions nest more than {MAX_NESTING} deep")));
        }
        self.depth += 1;
        Ok(())
    }

    /// The rest of a variable path after its first name.
    fn path(&mut self, root: &str, start: usize) -> Result<Path, CompileError> {
        let mut segments = Vec::new();
        let mut end = self.toks.get(self.i - 1).map_or(start, |s| s.end);
        loop {
            if self.eat(&Tok::Dot) {
                let key = self.name("a name after `.`")?;
                segments.push(Segment::Key(key.into()));
            } else if self.peek() == Some(&Tok::LBracket) {
                let at = self.offset();
                self.i += 1;
                self.nest(at)?;
                let index = self.expr()?;
                self.expect(&Tok::RBracket, "`]`")?;
                self.depth -= 1;
                segments.push(match index {
                    Expr::Literal(Value::String(key)) => Segment::Key(key.into()),
                    index => Segment::Index(index),
                });
            } else {
                break;
            }
            end = self.toks.get(self.i - 1).map_or(end, |s| s.end);
        }
        let text = self.lines.source.get(start..end).unwrap_or(root).into();
        Ok(Path { root: root.into(), segments, text, pos: self.lines.pos(start) })
    }

    /// Comparisons joined by `and` / `or`, grouped right to left as Liquid does.
    fn condition(&mut self) -> Result<Cond, CompileError> {
        let mut tests = vec![self.comparison()?];
        let mut ands = Vec::new();
        loop {
            if self.eat(&Tok::Ident("and")) {
                ands.push(true);
            } else if self.eat(&Tok::Ident("or")) {
                ands.push(false);
            } else {
                break;
            }
            // The renderer recurses once per `and`/`or`: bound it like nesting.
            if ands.len() > MAX_NESTING {
                let message = format!("a condition joins more than {MAX_NESTING} comparisons with `and`/`or`");
                return Err(self.lines.error(self.toks.get(self.i - 1).map_or(self.end, |s| s.offset), message));
            }
            tests.push(self.comparison()?);
        }
        let mut cond = tests.pop().ok_or_else(|| self.error_here("expected a condition"))?;
        while let (Some(and), Some(left)) = (ands.pop(), tests.pop()) {
            cond =
                if and { Cond::And(Box::new(left), Box::new(cond)) } else { Cond::Or(Box::new(left), Box::new(cond)) };
        }
        Ok(cond)
    }

    fn comparison(&mut self) -> Result<Cond, CompileError> {
        let left = self.expr()?;
        let op = match self.peek() {
            Some(Tok::Cmp("==")) => CmpOp::Eq,
            Some(Tok::Cmp("!=" | "<>")) => CmpOp::Ne,
            Some(Tok::Cmp("<")) => CmpOp::Lt,
            Some(Tok::Cmp(">")) => CmpOp::Gt,
            Some(Tok::Cmp("<=")) => CmpOp::Le,
            Some(Tok::Cmp(">=")) => CmpOp::Ge,
            Some(Tok::Ident("contains")) => CmpOp::Contains,
            Some(Tok::Equals) => return Err(self.error_here("expected a comparison (`==` compares; `=` assigns)")),
            _ => return Ok(Cond::Test(left, None)),
        };
        self.i += 1;
        let right = self.expr()?;
        Ok(Cond::Test(left, Some((op, right))))
    }
}
