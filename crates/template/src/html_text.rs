//! [`html_to_text`]: a readable plain-text body derived from an HTML email, for when the
//! campaign has no text body of its own.
//!
//! A single forward scan, not an HTML parser: emails are simple documents, and the result only
//! has to read well. Whitespace collapses as a browser would; block elements start new lines
//! (paragraphs, headings, lists and tables leave a blank line); links become `text (url)`;
//! images give their `alt` text; `head`, `script` and `style` disappear; entities are decoded,
//! and the invisible characters used to pad preheaders are dropped.

/// Turns an HTML email into plain text.
///
/// ```
/// let text = herald_template::html_to_text(
///     "<p>Hi Ada,</p><p>Your order <b>shipped</b>.<br>Track it <a href=\"https://x.test/t?a=1&amp;b=2\">here</a>.</p>",
/// );
/// assert_eq!(text, "Hi Ada,\n\nYour order shipped.\nTrack it here (https://x.test/t?a=1&b=2).");
/// ```
pub fn html_to_text(html: &str) -> String {
    let mut w = Writer::default();
    // One entry per open list: the last number of an `ol`, `None` for a `ul`.
    let mut lists: Vec<Option<u32>> = Vec::new();
    // One entry per open link: its address and where its text starts in the output.
    let mut links: Vec<(Option<String>, usize)> = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(['<', '&']) {
        w.text(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with('&') {
            let (c, after) = take_entity(rest);
            w.char(c);
            rest = after;
            continue;
        }
        if rest.starts_with("<!--") {
            rest = after(rest, "-->");
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            rest = after(rest, ">");
            continue;
        }
        let Some(tag) = Tag::parse(rest) else {
            w.char('<');
            rest = &rest[1..];
            continue;
        };
        rest = &rest[tag.len..];
        let name = tag.name.as_str();
        if !tag.closing && matches!(name, "head" | "script" | "style" | "title" | "template") {
            rest = find_ignore_case(rest, &format!("</{name}")).map_or("", |i| after(&rest[i..], ">"));
            continue;
        }
        match name {
            "br" => w.newline(),
            "ul" | "ol" => {
                w.block(if lists.is_empty() { 2 } else { 1 });
                if tag.closing {
                    lists.pop();
                } else {
                    lists.push((name == "ol").then_some(0));
                }
            }
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote" | "table" | "hr" | "pre" => w.block(2),
            "li" if !tag.closing => {
                w.block(1);
                match lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        w.text(&format!("{n}. "));
                    }
                    _ => w.text("- "),
                }
            }
            "li" | "div" | "tr" | "section" | "article" | "header" | "footer" | "center" | "dt" | "dd" | "address" => {
                w.block(1)
            }
            "td" | "th" if tag.closing => w.space(),
            "a" if !tag.closing => links.push((attribute(tag.attributes, "href"), w.out.len())),
            "a" => {
                if let Some((Some(href), start)) = links.pop() {
                    w.link(start, href.trim());
                }
            }
            "img" => {
                if let Some(alt) = attribute(tag.attributes, "alt") {
                    w.text(&alt);
                }
            }
            _ => {}
        }
    }
    w.text(rest);
    w.out
}

/// Collapses whitespace and holds line breaks back until there is text to separate, so the
/// output has no leading, trailing or repeated blank lines.
#[derive(Default)]
struct Writer {
    out: String,
    /// Line breaks owed before the next character (at most 2: one blank line).
    breaks: u8,
    space: bool,
}

impl Writer {
    fn text(&mut self, s: &str) {
        s.chars().for_each(|c| self.char(c));
    }

    fn char(&mut self, c: char) {
        // Zero-width characters and soft hyphens pad preheaders; they mean nothing in text.
        if matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{034F}' | '\u{00AD}') {
            return;
        }
        if c.is_whitespace() {
            self.space = true;
            return;
        }
        if !self.out.is_empty() {
            if self.breaks > 0 {
                (0..self.breaks).for_each(|_| self.out.push('\n'));
            } else if self.space {
                self.out.push(' ');
            }
        }
        self.breaks = 0;
        self.space = false;
        self.out.push(c);
    }

    fn space(&mut self) {
        self.space = true;
    }

    fn block(&mut self, breaks: u8) {
        self.breaks = self.breaks.max(breaks);
    }

    fn newline(&mut self) {
        self.breaks = (self.breaks + 1).min(2);
    }

    /// Closes a link whose text started at `start`: adds ` (url)` unless the text already says it.
    fn link(&mut self, start: usize, href: &str) {
        if href.is_empty() || href.starts_with('#') || href.to_ascii_lowercase().starts_with("javascript:") {
            return;
        }
        let shown = href.strip_prefix("mailto:").unwrap_or(href);
        let text = self.out.get(start..).unwrap_or("").trim();
        if text.is_empty() {
            self.text(shown);
        } else if text != shown && text != href {
            self.space();
            self.text(&format!("({shown})"));
        }
    }
}

/// An opening or closing tag at the start of the input.
struct Tag<'s> {
    name: String,
    closing: bool,
    attributes: &'s str,
    /// Bytes up to and including the `>` (or the whole input when there is none).
    len: usize,
}

impl<'s> Tag<'s> {
    fn parse(s: &'s str) -> Option<Tag<'s>> {
        let b = s.as_bytes();
        let closing = b.get(1) == Some(&b'/');
        let start = if closing { 2 } else { 1 };
        if !b.get(start).is_some_and(u8::is_ascii_alphabetic) {
            return None;
        }
        let mut i = start;
        while i < b.len() && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let name = s[start..i].to_ascii_lowercase();
        let attributes_start = i;
        let mut quote = None;
        while i < b.len() {
            match (quote, b[i]) {
                (None, b'>') => break,
                (None, q @ (b'"' | b'\'')) => quote = Some(q),
                (Some(q), c) if c == q => quote = None,
                _ => {}
            }
            i += 1;
        }
        Some(Tag { name, closing, attributes: &s[attributes_start..i], len: (i + 1).min(s.len()) })
    }
}

/// The value of attribute `name`, entities decoded.
fn attribute(attributes: &str, name: &str) -> Option<String> {
    let b = attributes.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let key_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        let key = &attributes[key_start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = "";
        if b.get(i) == Some(&b'=') {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let value_start;
            if let Some(&q @ (b'"' | b'\'')) = b.get(i) {
                value_start = i + 1;
                i = attributes[value_start..].find(char::from(q)).map_or(b.len(), |len| value_start + len);
                value = &attributes[value_start..i];
                i += 1;
            } else {
                value_start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = &attributes[value_start..i];
            }
        } else if key.is_empty() {
            i += 1;
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(decode_entities(value));
        }
    }
    None
}

/// `s` with its HTML character references (`&amp;`, `&#39;`, `&#x2019;`, the common named
/// ones) replaced by the characters they stand for; an `&` that starts none stays as it is.
///
/// ```
/// assert_eq!(herald_template::decode_entities("?a=1&amp;b=&#50;&c"), "?a=1&b=2&c");
/// ```
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let (c, after) = take_entity(&rest[at..]);
        out.push(c);
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Decodes the entity at the start of `s` (which starts with `&`), or takes the `&` as it is;
/// returns the character and what follows.
fn take_entity(s: &str) -> (char, &str) {
    match entity(s) {
        Some((c, len)) => (c, &s[len..]),
        None => ('&', &s[1..]),
    }
}

/// The character of the entity at the start of `s` (`&amp;`, `&#39;`, `&#x2019;`) and its
/// length in bytes.
fn entity(s: &str) -> Option<(char, usize)> {
    let semi = s.bytes().take(12).position(|b| b == b';')?;
    let body = s.get(1..semi)?;
    let c = match body.strip_prefix('#') {
        Some(number) => {
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)?
        }
        None => match body {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "nbsp" | "ensp" | "emsp" | "thinsp" => ' ',
            "copy" => '©',
            "reg" => '®',
            "trade" => '™',
            "hellip" => '…',
            "mdash" => '—',
            "ndash" => '–',
            "lsquo" => '‘',
            "rsquo" => '’',
            "ldquo" => '“',
            "rdquo" => '”',
            "laquo" => '«',
            "raquo" => '»',
            "bull" => '•',
            "middot" => '·',
            "euro" => '€',
            "pound" => '£',
            "yen" => '¥',
            "cent" => '¢',
            "deg" => '°',
            "times" => '×',
            "zwnj" => '\u{200C}',
            "zwj" => '\u{200D}',
            "shy" => '\u{00AD}',
            _ => return None,
        },
    };
    Some((c, semi + 1))
}

/// What follows the first `pattern` in `s` (nothing when it is absent).
fn after<'s>(s: &'s str, pattern: &str) -> &'s str {
    s.find(pattern).map_or("", |i| &s[i + pattern.len()..])
}

/// The first position of `needle` in `haystack`, ignoring ASCII case.
pub(crate) fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    haystack.as_bytes().windows(needle.len().max(1)).position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_reads_well() {
        let html = r##"<!DOCTYPE html><html><head><title>Order</title><style>p { color: red }</style></head>
<body>
  <div style="display:none">Your order is on its way&zwnj;&nbsp;&zwnj;&nbsp;</div>
  <h1>Thanks,   Ada!</h1>
  <p>Your order&nbsp;#1042 has <em>shipped</em>.<br>
     It should arrive by Tuesday.</p>
  <ul><li>Blue mug &times; 2</li><li>Tea &amp; biscuits</li></ul>
  <ol><li>Open</li><li>Enjoy</li></ol>
  <table><tr><td>Total</td><td>&euro;42.00</td></tr></table>
  <p><a href="https://shop.test/orders/1042?utm=a&amp;b=c">Track your order</a>
     or mail <a href="mailto:help@shop.test">help@shop.test</a>.
     <a href="https://shop.test">https://shop.test</a> <a href="#top">Top</a></p>
  <img src="logo.png" alt="Shop logo"><script>alert("x")</script>
  <!-- a comment with <p> inside -->
  <p>&copy; 2026 Shop &#8212; &#x2019;quoted&#8217; &bogus; 5 < 6</p>
</body></html>"##;
        let want = "Your order is on its way\n\n\
                    Thanks, Ada!\n\n\
                    Your order #1042 has shipped.\n\
                    It should arrive by Tuesday.\n\n\
                    - Blue mug × 2\n\
                    - Tea & biscuits\n\n\
                    1. Open\n\
                    2. Enjoy\n\n\
                    Total €42.00\n\n\
                    Track your order (https://shop.test/orders/1042?utm=a&b=c) or mail help@shop.test. https://shop.test Top\n\n\
                    Shop logo\n\n\
                    © 2026 Shop — ’quoted’ &bogus; 5 < 6";
        assert_eq!(html_to_text(html), want);
    }

    #[test]
    fn odd_input_does_not_break_it() {
        for html in ["", "<", "<a", "<a href='x", "&", "&#xFFFFFFFF;", "<script>", "</p></p>", "<p>é</p>"] {
            let _ = html_to_text(html);
        }
        assert_eq!(html_to_text("a<br><br><br>b"), "a\n\nb");
        assert_eq!(html_to_text("<a href=\"https://x.test\"></a>"), "https://x.test");
        assert_eq!(html_to_text("<a href=x.test>go</a>"), "go (x.test)");
    }
}
