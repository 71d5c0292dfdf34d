//! The filters: their names and arities (checked at compile time, so an unknown filter or a
//! wrong number of arguments rejects the template when it is saved) and what each does.
//!
//! Filters follow Shopify's Liquid. Where data would make Liquid raise an error (a division by
//! zero, an unreadable date), the filter returns nil or its input unchanged and leaves a note
//! that becomes a render warning: the data never fails a render. Every string a filter builds
//! is paid for and bounded through the render's [`Budget`].

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;
use time::OffsetDateTime;

use crate::date;
use crate::error::RenderError;
use crate::html_text::find_ignore_case;
use crate::render::Budget;
use crate::value::{self, Num, escape_html, int, is_empty, number_or_zero, truthy};

macro_rules! filters {
    ($($variant:ident $name:literal $min:literal $max:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Filter { $($variant,)* }

        /// Each filter's name and how many positional arguments it takes (at least, at most).
        const TABLE: &[(Filter, &str, usize, usize)] = &[$((Filter::$variant, $name, $min, $max),)*];
    };
}

filters! {
    Default "default" 1 1,
    Date "date" 1 1,
    Upcase "upcase" 0 0,
    Downcase "downcase" 0 0,
    Capitalize "capitalize" 0 0,
    Plus "plus" 1 1,
    Minus "minus" 1 1,
    Times "times" 1 1,
    DividedBy "divided_by" 1 1,
    Modulo "modulo" 1 1,
    Round "round" 0 1,
    Ceil "ceil" 0 0,
    Floor "floor" 0 0,
    Abs "abs" 0 0,
    AtLeast "at_least" 1 1,
    AtMost "at_most" 1 1,
    Size "size" 0 0,
    Split "split" 1 1,
    Join "join" 0 1,
    Replace "replace" 2 2,
    ReplaceFirst "replace_first" 2 2,
    Remove "remove" 1 1,
    RemoveFirst "remove_first" 1 1,
    Strip "strip" 0 0,
    Lstrip "lstrip" 0 0,
    Rstrip "rstrip" 0 0,
    StripNewlines "strip_newlines" 0 0,
    StripHtml "strip_html" 0 0,
    Truncate "truncate" 1 2,
    Truncatewords "truncatewords" 1 2,
    First "first" 0 0,
    Last "last" 0 0,
    Reverse "reverse" 0 0,
    Sort "sort" 0 0,
    Map "map" 1 1,
    Compact "compact" 0 0,
    Slice "slice" 1 2,
    Escape "escape" 0 0,
    UrlEncode "url_encode" 0 0,
    UrlDecode "url_decode" 0 0,
    Json "json" 0 0,
    Raw "raw" 0 0,
    Append "append" 1 1,
    Prepend "prepend" 1 1,
}

impl Filter {
    pub(crate) fn from_name(name: &str) -> Option<Filter> {
        TABLE.iter().find(|(_, n, _, _)| *n == name).map(|(f, _, _, _)| *f)
    }

    pub(crate) fn name(self) -> &'static str {
        TABLE.iter().find(|(f, _, _, _)| *f == self).map_or("?", |(_, n, _, _)| n)
    }

    pub(crate) fn arity(self) -> (usize, usize) {
        TABLE.iter().find(|(f, _, _, _)| *f == self).map_or((0, 0), |(_, _, min, max)| (*min, *max))
    }

    /// The keyword arguments it accepts.
    pub(crate) fn keywords(self) -> &'static [&'static str] {
        if self == Filter::Default { &["allow_false"] } else { &[] }
    }

    /// As the last filter of an output, whether it leaves the text ready for HTML (so HTML mode
    /// does not escape it again).
    pub(crate) fn marks_safe(self) -> bool {
        matches!(self, Filter::Raw | Filter::Escape)
    }
}

/// What a filter may use besides its input and arguments.
pub(crate) struct FilterCx<'r> {
    pub(crate) budget: &'r Budget,
    pub(crate) now: OffsetDateTime,
    /// Set when the filter could not use its input; becomes a warning.
    pub(crate) note: Option<String>,
}

type Out<'a> = Result<Cow<'a, Value>, RenderError>;

pub(crate) fn apply<'a>(
    filter: Filter,
    input: Cow<'a, Value>,
    args: &[Cow<'a, Value>],
    keywords: &[(&str, Cow<'a, Value>)],
    cx: &mut FilterCx<'_>,
) -> Out<'a> {
    let arg = |i: usize| args.get(i).map_or(&Value::Null, |v| &**v);
    let text = |i: usize| as_text(arg(i));
    let s = || as_text(&input);
    match filter {
        Filter::Default => {
            let allow_false = keywords.iter().any(|(k, v)| *k == "allow_false" && truthy(v));
            let fall_back = match &*input {
                Value::Null => true,
                Value::Bool(false) => !allow_false,
                v => is_empty(v),
            };
            Ok(if fall_back { args.first().cloned().unwrap_or(Cow::Owned(Value::Null)) } else { input })
        }
        Filter::Date => date_filter(input, &text(0), cx),
        Filter::Upcase => string(s().to_uppercase(), cx),
        Filter::Downcase => string(s().to_lowercase(), cx),
        Filter::Capitalize => {
            let s = s();
            let mut chars = s.chars();
            let mut out = String::with_capacity(s.len());
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(&chars.as_str().to_lowercase());
            }
            string(out, cx)
        }
        Filter::Plus | Filter::Minus | Filter::Times | Filter::DividedBy | Filter::Modulo => {
            Ok(Cow::Owned(arithmetic(filter, &input, arg(0), cx)))
        }
        Filter::Round => {
            let digits = args.first().and_then(|d| int(d)).unwrap_or(0).clamp(0, 15);
            Ok(number(match number_or_zero(&input) {
                Num::Float(f) if digits == 0 => whole(f.round()),
                Num::Float(f) => {
                    let scale = 10f64.powi(digits as i32);
                    Num::Float((f * scale).round() / scale)
                }
                n => n,
            }))
        }
        Filter::Ceil => Ok(number(whole(number_or_zero(&input).as_f64().ceil()))),
        Filter::Floor => Ok(number(whole(number_or_zero(&input).as_f64().floor()))),
        Filter::Abs => Ok(number(match number_or_zero(&input) {
            Num::Int(i) => i.checked_abs().map_or(Num::Float((i as f64).abs()), Num::Int),
            Num::Float(f) => Num::Float(f.abs()),
        })),
        Filter::AtLeast | Filter::AtMost => {
            let (a, b) = (number_or_zero(&input), number_or_zero(arg(0)));
            let pick_b = if filter == Filter::AtLeast { b.as_f64() > a.as_f64() } else { b.as_f64() < a.as_f64() };
            Ok(number(if pick_b { b } else { a }))
        }
        Filter::Size => Ok(Cow::Owned(Value::from(match &*input {
            Value::String(s) => s.chars().count(),
            Value::Array(items) => items.len(),
            Value::Object(map) => map.len(),
            _ => 0,
        }))),
        Filter::Split => split(&s(), &text(0), cx),
        Filter::Join => {
            let sep = if args.is_empty() { Cow::Borrowed(" ") } else { text(0) };
            let Value::Array(items) = &*input else { return string(s().into_owned(), cx) };
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&sep);
                }
                value::write(&mut out, item, false);
                cx.budget.fits(out.len())?;
            }
            string(out, cx)
        }
        Filter::Replace | Filter::ReplaceFirst => replace(&s(), &text(0), &text(1), filter == Filter::ReplaceFirst, cx),
        Filter::Remove | Filter::RemoveFirst => replace(&s(), &text(0), "", filter == Filter::RemoveFirst, cx),
        Filter::Strip => string(s().trim().to_owned(), cx),
        Filter::Lstrip => string(s().trim_start().to_owned(), cx),
        Filter::Rstrip => string(s().trim_end().to_owned(), cx),
        Filter::StripNewlines => string(s().replace(['\r', '\n'], ""), cx),
        Filter::StripHtml => string(strip_html(&s()), cx),
        Filter::Truncate => {
            let s = s();
            let n = usize::try_from(int(arg(0)).unwrap_or(50)).unwrap_or(0);
            if s.chars().count() <= n {
                return string(s.into_owned(), cx);
            }
            let ellipsis = if args.len() > 1 { text(1) } else { Cow::Borrowed("...") };
            let mut out: String = s.chars().take(n.saturating_sub(ellipsis.chars().count())).collect();
            out.push_str(&ellipsis);
            string(out, cx)
        }
        Filter::Truncatewords => {
            let s = s();
            let n = usize::try_from(int(arg(0)).unwrap_or(15)).unwrap_or(0).max(1);
            let words: Vec<&str> = s.split_whitespace().take(n.saturating_add(1)).collect();
            if words.len() <= n {
                return string(s.into_owned(), cx);
            }
            let ellipsis = if args.len() > 1 { text(1) } else { Cow::Borrowed("...") };
            string(words[..n].join(" ") + &ellipsis, cx)
        }
        Filter::First | Filter::Last => Ok(first_or_last(input, filter == Filter::Last)),
        Filter::Reverse => Ok(match &*input {
            Value::Array(items) => Cow::Owned(Value::Array(items.iter().rev().cloned().collect())),
            _ => input,
        }),
        Filter::Sort => Ok(match &*input {
            Value::Array(items) => {
                cx.budget.step(items.len() as u64)?;
                let mut items = items.clone();
                items.sort_by(total_order);
                Cow::Owned(Value::Array(items))
            }
            _ => input,
        }),
        Filter::Map => {
            let key = text(0);
            Ok(Cow::Owned(match &*input {
                Value::Array(items) => {
                    cx.budget.step(items.len() as u64)?;
                    Value::Array(items.iter().map(|item| item.get(&*key).cloned().unwrap_or_default()).collect())
                }
                other => other.get(&*key).cloned().unwrap_or_default(),
            }))
        }
        Filter::Compact => Ok(match &*input {
            Value::Array(items) => Cow::Owned(Value::Array(items.iter().filter(|v| !v.is_null()).cloned().collect())),
            _ => input,
        }),
        Filter::Slice => {
            let start = int(arg(0)).unwrap_or(0);
            let len = if args.len() > 1 { int(arg(1)).unwrap_or(0) } else { 1 };
            Ok(Cow::Owned(match &*input {
                Value::Array(items) => Value::Array(items[window(items.len(), start, len)].to_vec()),
                _ => {
                    let s = s();
                    let chars: Vec<char> = s.chars().collect();
                    Value::String(chars[window(chars.len(), start, len)].iter().collect())
                }
            }))
        }
        Filter::Escape => {
            let mut out = String::new();
            escape_html(&mut out, &s());
            string(out, cx)
        }
        Filter::UrlEncode => string(url_encode(&s()), cx),
        Filter::UrlDecode => string(url_decode(&s()), cx),
        Filter::Json => string(input.to_string(), cx),
        Filter::Raw => Ok(input),
        Filter::Append | Filter::Prepend => {
            let (a, b) = (s(), text(0));
            cx.budget.fits(a.len() + b.len())?;
            string(if filter == Filter::Append { a.into_owned() + &b } else { b.into_owned() + &a }, cx)
        }
    }
}

/// A value as text: a string as it is, anything else in its output form.
fn as_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(value::text(other)),
    }
}

fn string<'a>(s: String, cx: &FilterCx<'_>) -> Out<'a> {
    cx.budget.bytes(s.len())?;
    Ok(Cow::Owned(Value::String(s)))
}

fn number<'a>(n: Num) -> Cow<'a, Value> {
    Cow::Owned(n.into_value())
}

/// A whole float as an integer when it fits (`round`, `ceil`, `floor` give integers).
fn whole(f: f64) -> Num {
    if f.abs() < 9.0e18 { Num::Int(f as i64) } else { Num::Float(f) }
}

/// `plus`, `minus`, `times`, `divided_by`, `modulo`. Two integers give an integer (division and
/// modulo floor, as in Ruby: `-7 | divided_by: 2` is -4); a float on either side gives a float;
/// an integer overflow falls back to a float. Division by zero is nil, with a warning.
fn arithmetic(filter: Filter, input: &Value, arg: &Value, cx: &mut FilterCx<'_>) -> Value {
    let (a, b) = (number_or_zero(input), number_or_zero(arg));
    let divides = matches!(filter, Filter::DividedBy | Filter::Modulo);
    if divides && b.as_f64() == 0.0 {
        cx.note = Some("division by zero; the result is nil".to_owned());
        return Value::Null;
    }
    if let (Num::Int(x), Num::Int(y)) = (a, b) {
        let exact = match filter {
            Filter::Plus => x.checked_add(y),
            Filter::Minus => x.checked_sub(y),
            Filter::Times => x.checked_mul(y),
            Filter::DividedBy => x
                .checked_div(y)
                .zip(x.checked_rem(y))
                .map(|(q, r)| if r != 0 && (r < 0) != (y < 0) { q - 1 } else { q }),
            _ => x.checked_rem(y).map(|r| if r != 0 && (r < 0) != (y < 0) { r + y } else { r }),
        };
        if let Some(n) = exact {
            return Value::from(n);
        }
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    Num::Float(match filter {
        Filter::Plus => x + y,
        Filter::Minus => x - y,
        Filter::Times => x * y,
        Filter::DividedBy => x / y,
        _ => x - y * (x / y).floor(),
    })
    .into_value()
}

fn date_filter<'a>(input: Cow<'a, Value>, format: &str, cx: &mut FilterCx<'_>) -> Out<'a> {
    if format.is_empty() || input.is_null() || input.as_str() == Some("") {
        return Ok(input);
    }
    match date::parse(&input, cx.now) {
        Some(t) => {
            let mut out = String::new();
            date::strftime(t, format, &mut out);
            string(out, cx)
        }
        None => {
            let shown: String = value::text(&input).chars().take(40).collect();
            cx.note = Some(format!("`{shown}` is not a date or a unix timestamp; left as it was"));
            Ok(input)
        }
    }
}

/// Ruby's `String#split`: `" "` splits on runs of whitespace, `""` into characters, and
/// trailing empty strings are dropped. Each piece costs a step.
fn split<'a>(s: &str, sep: &str, cx: &FilterCx<'_>) -> Out<'a> {
    let mut items = Vec::new();
    let mut push = |piece: &str| -> Result<(), RenderError> {
        cx.budget.step(1)?;
        items.push(Value::String(piece.to_owned()));
        Ok(())
    };
    if sep.is_empty() {
        for (i, c) in s.char_indices() {
            push(&s[i..i + c.len_utf8()])?;
        }
    } else if sep == " " {
        s.split_whitespace().try_for_each(&mut push)?;
    } else {
        s.split(sep).try_for_each(&mut push)?;
        while items.last().is_some_and(|v| v.as_str() == Some("")) {
            items.pop();
        }
    }
    Ok(Cow::Owned(Value::Array(items)))
}

fn replace<'a>(s: &str, from: &str, to: &str, first_only: bool, cx: &FilterCx<'_>) -> Out<'a> {
    if from.is_empty() {
        return string(s.to_owned(), cx);
    }
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (i, _) in s.match_indices(from) {
        out.push_str(&s[last..i]);
        out.push_str(to);
        cx.budget.fits(out.len())?;
        last = i + from.len();
        if first_only {
            break;
        }
    }
    out.push_str(&s[last..]);
    string(out, cx)
}

fn first_or_last(input: Cow<'_, Value>, last: bool) -> Cow<'_, Value> {
    match input {
        Cow::Borrowed(Value::Array(items)) => {
            (if last { items.last() } else { items.first() }).map_or(Cow::Owned(Value::Null), Cow::Borrowed)
        }
        Cow::Owned(Value::Array(mut items)) => {
            let item = if last { items.pop() } else { (!items.is_empty()).then(|| items.swap_remove(0)) };
            Cow::Owned(item.unwrap_or_default())
        }
        other => Cow::Owned(match &*other {
            Value::String(s) => {
                let c = if last { s.chars().next_back() } else { s.chars().next() };
                c.map_or(Value::Null, |c| Value::String(c.to_string()))
            }
            _ => Value::Null,
        }),
    }
}

/// A total order for `sort` (a partial one may make `sort_by` panic): nil, booleans, numbers,
/// strings, arrays, objects; within a kind by value.
fn total_order(a: &Value, b: &Value) -> Ordering {
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// The indices `slice: start, len` takes from `total` items; a negative start counts from the end.
fn window(total: usize, start: i64, len: i64) -> std::ops::Range<usize> {
    let total_i = i128::try_from(total).unwrap_or(i128::MAX);
    let start = if start < 0 { total_i + i128::from(start) } else { i128::from(start) };
    if start < 0 || start >= total_i || len <= 0 {
        return 0..0;
    }
    let end = (start + i128::from(len)).min(total_i);
    usize::try_from(start).unwrap_or(0)..usize::try_from(end).unwrap_or(0)
}

/// Like Ruby's `CGI.escape`: letters, digits and `-._~` stay, a space becomes `+`, every other
/// byte `%XX`.
fn url_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
    out
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if hex(bytes.get(i + 1)).is_some() && hex(bytes.get(i + 2)).is_some() => {
                let (hi, lo) = (hex(bytes.get(i + 1)).unwrap_or(0), hex(bytes.get(i + 2)).unwrap_or(0));
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes tags, comments, and the content of `script` and `style` elements.
fn strip_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        let starts = |prefix: &str| {
            rest.as_bytes().get(..prefix.len()).is_some_and(|b| b.eq_ignore_ascii_case(prefix.as_bytes()))
        };
        let end = if rest.starts_with("<!--") {
            rest.find("-->").map(|i| i + 3)
        } else if let Some(close) = ["script", "style"].into_iter().find(|name| starts(&format!("<{name}"))) {
            find_ignore_case(rest, &format!("</{close}")).and_then(|i| rest[i..].find('>').map(|j| i + j + 1))
        } else {
            rest.find('>').map(|i| i + 1)
        };
        rest = &rest[end.unwrap_or(rest.len())..];
    }
    out.push_str(rest);
    out
}
