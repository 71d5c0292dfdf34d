//! The two lexers: [`tokenize`] splits a template into text, `{{ output }}` and `{% tag %}`
//! tokens (applying whitespace control and swallowing `raw` and `comment` blocks), and
//! [`expression`] splits the markup inside one of those into [`Tok`]s.
//!
//! Unlike Shopify's regex tokenizer, the search for `}}` / `%}` skips quoted strings, so
//! `{{ x | default: "}}" }}` works. Liquid strings have no escapes.

use crate::ast::Pos;
use crate::error::CompileError;

/// Turns byte offsets into 1-based line and column (in characters) for errors and warnings.
#[derive(Debug)]
pub(crate) struct Lines<'s> {
    pub(crate) source: &'s str,
    /// Byte offset at which each line starts.
    starts: Vec<usize>,
}

impl<'s> Lines<'s> {
    pub(crate) fn new(source: &'s str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Lines { source, starts }
    }

    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let line = self.starts.partition_point(|&start| start <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self.source.get(start..offset.min(self.source.len())).map_or(0, |s| s.chars().count()) + 1;
        Pos { line: to_u32(line), column: to_u32(column) }
    }

    pub(crate) fn error(&self, offset: usize, message: impl Into<String>) -> CompileError {
        let Pos { line, column } = self.pos(offset);
        CompileError { line, column, message: message.into() }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One piece of a template.
#[derive(Debug)]
pub(crate) enum Token<'s> {
    /// Literal text (also the content of `{% raw %}`), already trimmed by whitespace control.
    Text(&'s str),
    /// `{{ markup }}`; `offset` is where the markup starts in the source.
    Output { markup: &'s str, offset: usize },
    /// `{% name markup %}`; `offset` is where the tag (`{%`) starts.
    Tag { name: &'s str, markup: &'s str, offset: usize, markup_offset: usize },
}

/// Splits a template into tokens.
pub(crate) fn tokenize<'s>(source: &'s str, lines: &Lines<'_>) -> Result<Vec<Token<'s>>, CompileError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while let Some(open) = find_open(source, pos) {
        let is_tag = source.as_bytes()[open + 1] == b'%';
        let trim_before = source[open + 2..].starts_with('-');
        push_text(&mut tokens, &source[pos..open], trim_next, trim_before);
        let inner_start = open + 2 + usize::from(trim_before);
        let close = if is_tag { "%}" } else { "}}" };
        let Some(inner_end) = find_close(source, inner_start, close, lines)? else {
            let what = if is_tag { "`{%` is never closed with `%}`" } else { "`{{` is never closed with `}}`" };
            return Err(lines.error(open, what));
        };
        let mut markup_end = inner_end;
        trim_next = inner_end > inner_start && source[..inner_end].ends_with('-');
        if trim_next {
            markup_end -= 1;
        }
        pos = inner_end + 2;
        let markup = &source[inner_start..markup_end];
        if !is_tag {
            tokens.push(Token::Output { markup, offset: inner_start });
            continue;
        }
        let lead = markup.len() - markup.trim_start().len();
        let rest = markup.trim_start();
        let name_len =
            if rest.starts_with('#') { 1 } else { rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len()) };
        let (name, args) = rest.split_at(name_len);
        let markup_offset = inner_start + lead + name_len;
        match name {
            "#" => {}
            "raw" | "comment" => {
                let Some(end) = find_block_end(source, pos, name) else {
                    return Err(lines.error(open, format!("`{{% {name} %}}` is never closed with `{{% end{name} %}}`")));
                };
                if name == "raw" {
                    push_text(&mut tokens, &source[pos..end.start], trim_next, end.trim_before);
                }
                pos = end.end;
                trim_next = end.trim_after;
            }
            _ => tokens.push(Token::Tag { name, markup: args, offset: open, markup_offset }),
        }
    }
    push_text(&mut tokens, &source[pos..], trim_next, false);
    Ok(tokens)
}

fn push_text<'s>(tokens: &mut Vec<Token<'s>>, mut text: &'s str, trim_start: bool, trim_end: bool) {
    if trim_start {
        text = text.trim_start();
    }
    if trim_end {
        text = text.trim_end();
    }
    if !text.is_empty() {
        tokens.push(Token::Text(text));
    }
}

/// The next `{{` or `{%` at or after `from`.
fn find_open(source: &str, from: usize) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut at = from;
    while let Some(i) = source.get(at..)?.find('{') {
        let i = at + i;
        if matches!(bytes.get(i + 1), Some(b'{' | b'%')) {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

/// Where `close` starts after `from`, skipping quoted strings.
fn find_close(source: &str, from: usize, close: &str, lines: &Lines<'_>) -> Result<Option<usize>, CompileError> {
    let bytes = source.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'') => match source[i + 1..].find(char::from(quote)) {
                Some(len) => i += len + 2,
                None => return Err(lines.error(i, "this string is never closed")),
            },
            _ if bytes[i..].starts_with(close.as_bytes()) => return Ok(Some(i)),
            _ => i += 1,
        }
    }
    Ok(None)
}

/// Where a `raw` or `comment` block ends: the byte range of its closing tag.
struct BlockEnd {
    start: usize,
    end: usize,
    trim_before: bool,
    trim_after: bool,
}

/// Finds the tag that closes a `raw` (the first `{% endraw %}`) or `comment` (the matching
/// `{% endcomment %}`: comments nest) block that opened before `from`. Nothing in between is
/// parsed.
fn find_block_end(source: &str, from: usize, name: &str) -> Option<BlockEnd> {
    let mut depth = 1usize;
    let mut at = from;
    loop {
        let open = at + source.get(at..)?.find("{%")?;
        at = open + 2;
        let rest = &source[at..];
        let trim_before = rest.starts_with('-');
        let rest = rest[usize::from(trim_before)..].trim_start();
        let word_len = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
        let word = &rest[..word_len];
        let after = rest[word_len..].trim_start();
        let trim_after = after.starts_with("-%}");
        if !(trim_after || after.starts_with("%}")) {
            continue;
        }
        if name == "comment" && word == "comment" {
            depth += 1;
            continue;
        }
        if word.strip_prefix("end") == Some(name) {
            depth -= 1;
            if depth == 0 {
                let end = source.len() - after.len() + if trim_after { 3 } else { 2 };
                return Some(BlockEnd { start: open, end, trim_before, trim_after });
            }
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A token of the expression language inside `{{ }}` and `{% %}`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok<'s> {
    /// A name: `[A-Za-z_][A-Za-z0-9_-]*` with an optional trailing `?`. Keywords (`and`,
    /// `contains`, `nil`, …) are names too; the parser gives them meaning by position.
    Ident(&'s str),
    Str(&'s str),
    Int(i64),
    Float(f64),
    Dot,
    DotDot,
    Comma,
    Colon,
    Pipe,
    LBracket,
    RBracket,
    LParen,
    RParen,
    /// `=` (in `assign`).
    Equals,
    /// `==`, `!=`, `<>`, `<`, `>`, `<=`, `>=`.
    Cmp(&'s str),
}

/// A token and the byte offset in the template source where it starts.
#[derive(Clone, Debug)]
pub(crate) struct Spanned<'s> {
    pub(crate) tok: Tok<'s>,
    pub(crate) offset: usize,
    /// Where the token ends (exclusive).
    pub(crate) end: usize,
}

/// Splits the markup that starts at byte `base` of the template source into tokens.
pub(crate) fn expression<'s>(
    markup: &'s str,
    base: usize,
    lines: &Lines<'_>,
) -> Result<Vec<Spanned<'s>>, CompileError> {
    let bytes = markup.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'"' | b'\'' => {
                let Some(len) = markup[i + 1..].find(char::from(c)) else {
                    return Err(lines.error(base + i, "this string is never closed"));
                };
                i += len + 2;
                Tok::Str(&markup[start + 1..i - 1])
            }
            b'0'..=b'9' => number(markup, &mut i),
            b'-' if next.is_some_and(|n| n.is_ascii_digit()) => number(markup, &mut i),
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-')) {
                    i += 1;
                }
                if bytes.get(i) == Some(&b'?') {
                    i += 1;
                }
                Tok::Ident(&markup[start..i])
            }
            b'.' if next == Some(b'.') => {
                i += 2;
                Tok::DotDot
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = matches!((c, next), (b'=' | b'!' | b'<' | b'>', Some(b'=')) | (b'<', Some(b'>')));
                i += if two { 2 } else { 1 };
                match &markup[start..i] {
                    "=" => Tok::Equals,
                    "!" => return Err(lines.error(base + start, "unexpected `!` (write `!=` to compare)")),
                    op => Tok::Cmp(op),
                }
            }
            _ => {
                i += 1;
                match c {
                    b'.' => Tok::Dot,
                    b',' => Tok::Comma,
                    b':' => Tok::Colon,
                    b'|' => Tok::Pipe,
                    b'[' => Tok::LBracket,
                    b']' => Tok::RBracket,
                    b'(' => Tok::LParen,
                    b')' => Tok::RParen,
                    _ => {
                        let ch = markup[start..].chars().next().unwrap_or('?');
                        return Err(lines.error(base + start, format!("unexpected character `{ch}`")));
                    }
                }
            }
        };
        tokens.push(Spanned { tok, offset: base + start, end: base + i });
    }
    Ok(tokens)
}

/// Reads `-?[0-9]+(\.[0-9]+)?` at `*i`; a `.` followed by another `.` is a range, not a fraction.
fn number<'s>(markup: &'s str, i: &mut usize) -> Tok<'s> {
    let bytes = markup.as_bytes();
    let start = *i;
    *i += 1;
    while *i < bytes.len() && bytes[*i].is_ascii_digit() {
        *i += 1;
    }
    let fraction = bytes.get(*i) == Some(&b'.') && bytes.get(*i + 1).is_some_and(u8::is_ascii_digit);
    if fraction {
        *i += 1;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
    }
    let text = &markup[start..*i];
    match text.parse::<i64>() {
        Ok(n) if !fraction => Tok::Int(n),
        // Digits only, so this parses; too long for an i64 becomes a float, as in JSON.
        _ => Tok::Float(text.parse().unwrap_or(0.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(source: &str) -> Vec<String> {
        let lines = Lines::new(source);
        tokenize(source, &lines)
            .expect("tokenizes")
            .into_iter()
            .map(|t| match t {
                Token::Text(s) => format!("T({s})"),
                Token::Output { markup, .. } => format!("O({markup})"),
                Token::Tag { name, markup, .. } => format!("G({name}|{markup})"),
            })
            .collect()
    }

    #[test]
    fn splits_text_outputs_and_tags() {
        assert_eq!(
            texts("a {{ b }} c {% if d %}e{% endif %}"),
            ["T(a )", "O( b )", "T( c )", "G(if| d )", "T(e)", "G(endif| )"]
        );
        assert_eq!(texts("{ not a tag } {"), ["T({ not a tag } {)"]);
        assert_eq!(texts(r#"{{ x | default: "}}" }}"#), [r#"O( x | default: "}}" )"#]);
    }

    #[test]
    fn whitespace_control_trims_neighbouring_text() {
        assert_eq!(texts("a  \n {{- b -}} \n c"), ["T(a)", "O( b )", "T(c)"]);
        assert_eq!(texts("a \n{%- if x -%}\n b"), ["T(a)", "G(if| x )", "T(b)"]);
    }

    #[test]
    fn raw_and_comment_blocks() {
        assert_eq!(texts("{% raw %}{{ x }}{% if %}{% endraw %}!"), ["T({{ x }}{% if %})", "T(!)"]);
        assert_eq!(texts("a{% comment %}x{% comment %}y{% endcomment %}z{% endcomment %}b"), ["T(a)", "T(b)"]);
        assert_eq!(texts("a {% # note %} b"), ["T(a )", "T( b)"]);
        assert_eq!(texts("a {%- raw -%} x {%- endraw -%} b"), ["T(a)", "T(x)", "T(b)"]);
    }

    #[test]
    fn unclosed_markup_names_its_position() {
        let source = "ab\ncd {{ x";
        let err = tokenize(source, &Lines::new(source)).expect_err("unclosed");
        assert_eq!(err.to_string(), "line 2, column 4: `{{` is never closed with `}}`");
        let source = "{% raw %}x";
        let err = tokenize(source, &Lines::new(source)).expect_err("unclosed");
        assert_eq!(err.to_string(), "line 1, column 1: `{% raw %}` is never closed with `{% endraw %}`");
    }

    #[test]
    fn expression_tokens() {
        let source = "a.b[0] | f: 'x', -1.5 == (1..3) <= <> contains";
        let toks: Vec<Tok<'_>> =
            expression(source, 0, &Lines::new(source)).expect("lexes").into_iter().map(|s| s.tok).collect();
        assert_eq!(
            toks,
            [
                Tok::Ident("a"),
                Tok::Dot,
                Tok::Ident("b"),
                Tok::LBracket,
                Tok::Int(0),
                Tok::RBracket,
                Tok::Pipe,
                Tok::Ident("f"),
                Tok::Colon,
                Tok::Str("x"),
                Tok::Comma,
                Tok::Float(-1.5),
                Tok::Cmp("=="),
                Tok::LParen,
                Tok::Int(1),
                Tok::DotDot,
                Tok::Int(3),
                Tok::RParen,
                Tok::Cmp("<="),
                Tok::Cmp("<>"),
                Tok::Ident("contains"),
            ]
        );
    }

    #[test]
    fn positions_count_characters() {
        let lines = Lines::new("é{{\n  ü x");
        assert_eq!(lines.pos(0), Pos { line: 1, column: 1 });
        assert_eq!(lines.pos(2), Pos { line: 1, column: 2 });
        assert_eq!(lines.pos(9), Pos { line: 2, column: 4 });
    }
}
