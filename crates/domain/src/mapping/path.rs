//! JSON paths: the `customer.email`, `items[0].sku` strings a mapping is written in, parsed
//! once into segments and walked over a body.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{MAX_PATH_CHARS, MAX_PATH_INDEX, MAX_PATH_SEGMENTS};

/// One step of a `JsonPath`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// An object key (`customer`, `["user-id"]`). Matches objects only.
    Key(String),
    /// An array index (`[0]`). Matches arrays only: `items.0` is the key `"0"`, not an index.
    Index(usize),
}

/// A path into a JSON value: `customer.contact.email`, `items[0].sku`,
/// `data.object.metadata["user id"]`.
///
/// Grammar: a first segment, then any number of `.key`, `[index]` or `["quoted key"]`. A bare
/// key is one or more characters other than whitespace, control characters and
/// `.` `[` `]` `"` `'` `\`; any key can be written quoted, where `\"` and `\\` are the only
/// escapes. The first segment may also be bracketed (`[0].email` for an array body). `Display`
/// writes the canonical form: keys bare where possible, indexes without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

/// Why a path string was refused, and where (`position` counts characters from 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PathError {
    pub position: usize,
    pub kind: PathErrorKind,
}

/// What is wrong with a path string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathErrorKind {
    Empty,
    TooLong,
    TooManySegments,
    Expected { expected: &'static str, found: Option<char> },
    UnterminatedQuote,
    BadEscape { escaped: Option<char> },
    IndexTooLarge,
}

// Written by hand because the position sits in a different place in each message, and is
// left out where it says nothing (an empty path, one too long).
impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let position = self.position;
        match &self.kind {
            PathErrorKind::Empty => f.write_str("must not be empty"),
            PathErrorKind::TooLong => write!(f, "must be at most {MAX_PATH_CHARS} characters"),
            PathErrorKind::TooManySegments => {
                write!(f, "has more than {MAX_PATH_SEGMENTS} segments (the next starts at position {position})")
            }
            PathErrorKind::Expected { expected, found: Some(c) } => {
                write!(f, "expected {expected} at position {position}, found {c:?}")
            }
            PathErrorKind::Expected { expected, found: None } => {
                write!(f, "expected {expected} at position {position}, found the end of the path")
            }
            PathErrorKind::UnterminatedQuote => write!(f, "the quoted key opened at position {position} is not closed"),
            PathErrorKind::BadEscape { escaped } => {
                let before = escaped.map_or_else(|| "end of path".to_owned(), |c| format!("{c:?}"));
                write!(f, "unsupported escape at position {position} (before {before}): only \\\" and \\\\ are allowed")
            }
            PathErrorKind::IndexTooLarge => {
                write!(f, "the index at position {position} must be at most {MAX_PATH_INDEX}")
            }
        }
    }
}

impl PathError {
    fn new(position: usize, kind: PathErrorKind) -> Self {
        Self { position, kind }
    }

    fn expected(expected: &'static str, found: Option<char>, position: usize) -> Self {
        Self::new(position, PathErrorKind::Expected { expected, found })
    }
}

fn is_bare_char(c: char) -> bool {
    !(c.is_whitespace() || c.is_control() || matches!(c, '.' | '[' | ']' | '"' | '\'' | '\\'))
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(is_bare_char)
}

/// A cursor over the path's characters; the length limit is checked before one is made, so
/// collecting into a `Vec` is bounded.
struct PathParser {
    chars: Vec<char>,
    pos: usize,
}

impl PathParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn bare_key(&mut self) -> Result<Segment, PathError> {
        let start = self.pos;
        let mut key = String::new();
        while let Some(c) = self.peek().filter(|&c| is_bare_char(c)) {
            key.push(c);
            self.pos += 1;
        }
        if key.is_empty() {
            return Err(PathError::expected("a key", self.peek(), start));
        }
        Ok(Segment::Key(key))
    }

    /// `[123]` or `["key"]`, at an opening bracket.
    fn bracketed(&mut self) -> Result<Segment, PathError> {
        self.bump();
        let segment = match self.peek() {
            Some('0'..='9') => self.index()?,
            Some('"') => self.quoted()?,
            found => {
                return Err(PathError::expected("an index or a quoted key", found, self.pos));
            }
        };
        match self.peek() {
            Some(']') => {
                self.pos += 1;
                Ok(segment)
            }
            found => Err(PathError::expected("`]`", found, self.pos)),
        }
    }

    fn index(&mut self) -> Result<Segment, PathError> {
        let start = self.pos;
        let mut index: usize = 0;
        while let Some(digit) = self.peek().and_then(|c| c.to_digit(10)) {
            // Checked against the limit digit by digit, so a long run of digits can never
            // overflow before it is refused.
            index = index
                .checked_mul(10)
                .and_then(|i| i.checked_add(digit as usize))
                .filter(|&i| i <= MAX_PATH_INDEX)
                .ok_or_else(|| PathError::new(start, PathErrorKind::IndexTooLarge))?;
            self.pos += 1;
        }
        Ok(Segment::Index(index))
    }

    fn quoted(&mut self) -> Result<Segment, PathError> {
        let open = self.pos;
        self.bump();
        let mut key = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(PathError::new(open, PathErrorKind::UnterminatedQuote));
                }
                Some('"') => return Ok(Segment::Key(key)),
                Some('\\') => match self.bump() {
                    Some(c @ ('"' | '\\')) => key.push(c),
                    escaped => {
                        let position = self.pos - 1 - usize::from(escaped.is_some());
                        return Err(PathError::new(position, PathErrorKind::BadEscape { escaped }));
                    }
                },
                Some(c) => key.push(c),
            }
        }
    }
}

impl JsonPath {
    /// Parses a path string; errors say what was expected and at which character.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        if raw.is_empty() {
            return Err(PathError::new(0, PathErrorKind::Empty));
        }
        if raw.chars().nth(MAX_PATH_CHARS).is_some() {
            return Err(PathError::new(MAX_PATH_CHARS, PathErrorKind::TooLong));
        }
        let mut parser = PathParser { chars: raw.chars().collect(), pos: 0 };
        let mut segments = Vec::new();
        let first = match parser.peek() {
            Some('[') => parser.bracketed()?,
            _ => parser.bare_key()?,
        };
        segments.push(first);
        while let Some(c) = parser.peek() {
            let start = parser.pos;
            if segments.len() == MAX_PATH_SEGMENTS {
                return Err(PathError::new(start, PathErrorKind::TooManySegments));
            }
            let segment = match c {
                '.' => {
                    parser.pos += 1;
                    parser.bare_key()?
                }
                '[' => parser.bracketed()?,
                other => return Err(PathError::expected("`.` or `[`", Some(other), start)),
            };
            segments.push(segment);
        }
        Ok(Self { segments })
    }

    /// A path from its segments, held to the same limits as a parsed one (it is checked by
    /// parsing its canonical form, so the two can never disagree).
    pub fn from_segments(segments: Vec<Segment>) -> Result<Self, PathError> {
        Self::parse(&Self { segments }.to_string())
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The value at this path, if every step exists.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.segments.iter().try_fold(value, |current, segment| match segment {
            Segment::Key(key) => current.as_object()?.get(key),
            Segment::Index(index) => current.as_array()?.get(*index),
        })
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_bare_key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => {
                    f.write_str("[\"")?;
                    for c in key.chars() {
                        if matches!(c, '"' | '\\') {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    f.write_str("\"]")?;
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl FromStr for JsonPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Serialized as its canonical string.
impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JsonPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_owned())
    }

    #[test]
    fn parses_valid_paths_to_canonical_form() {
        let cases: [(&str, Vec<Segment>, &str); 11] = [
            ("plan", vec![key("plan")], "plan"),
            ("customer.contact.email", vec![key("customer"), key("contact"), key("email")], "customer.contact.email"),
            ("items[0].sku", vec![key("items"), Segment::Index(0), key("sku")], "items[0].sku"),
            ("a.b[12].c", vec![key("a"), key("b"), Segment::Index(12), key("c")], "a.b[12].c"),
            (
                r#"data.object.metadata["user-id"]"#,
                vec![key("data"), key("object"), key("metadata"), key("user-id")],
                "data.object.metadata.user-id",
            ),
            (
                r#"meta["user id"]["a\"b\\c"]"#,
                vec![key("meta"), key("user id"), key("a\"b\\c")],
                r#"meta["user id"]["a\"b\\c"]"#,
            ),
            ("[0].email", vec![Segment::Index(0), key("email")], "[0].email"),
            (r#"[""]"#, vec![key("")], r#"[""]"#),
            ("m[007][1][2]", vec![key("m"), Segment::Index(7), Segment::Index(1), Segment::Index(2)], "m[7][1][2]"),
            ("$set.é-ü/x:1@", vec![key("$set"), key("é-ü/x:1@")], "$set.é-ü/x:1@"),
            ("a[100000]", vec![key("a"), Segment::Index(100_000)], "a[100000]"),
        ];
        for (raw, segments, canonical) in cases {
            let path = JsonPath::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(path.segments(), segments.as_slice(), "{raw}");
            assert_eq!(path.to_string(), canonical, "{raw}");
            assert_eq!(JsonPath::parse(canonical), Ok(path), "{raw}");
        }
    }

    #[test]
    fn refuses_invalid_paths_at_a_position() {
        let long = "a".repeat(MAX_PATH_CHARS + 1);
        let deep = vec!["a"; MAX_PATH_SEGMENTS + 1].join(".");
        let cases: [(&str, usize, &str); 20] = [
            ("", 0, "must not be empty"),
            (&long, MAX_PATH_CHARS, "at most 512 characters"),
            (&deep, 63, "more than 32 segments"),
            (".a", 0, "expected a key at position 0, found '.'"),
            ("a.", 2, "expected a key at position 2, found the end"),
            ("a..b", 2, "expected a key at position 2, found '.'"),
            ("a b", 1, "expected `.` or `[` at position 1, found ' '"),
            ("a]", 1, "found ']'"),
            ("a[", 2, "expected an index or a quoted key at position 2"),
            ("a[]", 2, "found ']'"),
            ("a[-1]", 2, "found '-'"),
            ("a[x]", 2, "found 'x'"),
            ("a['x']", 2, "found '\\''"),
            ("a[1", 3, "expected `]` at position 3"),
            ("a[1x]", 3, "expected `]` at position 3, found 'x'"),
            ("a[100001]", 2, "index at position 2 must be at most 100000"),
            ("a[99999999999999999999999]", 2, "must be at most 100000"),
            (r#"a["x"#, 2, "quoted key opened at position 2 is not closed"),
            (r#"a["x\n"]"#, 4, "unsupported escape at position 4"),
            (r#"a["x"].["y"]"#, 7, "expected a key at position 7, found '['"),
        ];
        for (raw, position, message) in cases {
            let err = JsonPath::parse(raw).expect_err(raw);
            assert_eq!(err.position, position, "{raw}: {err}");
            assert!(err.to_string().contains(message), "{raw}: {err}");
        }
        let max_deep = vec!["a"; MAX_PATH_SEGMENTS].join(".");
        assert!(JsonPath::parse(&max_deep).is_ok());
        assert!(JsonPath::parse(&"a".repeat(MAX_PATH_CHARS)).is_ok());
    }

    #[test]
    fn from_segments_holds_the_same_limits() {
        assert!(JsonPath::from_segments(vec![]).is_err());
        assert!(JsonPath::from_segments(vec![Segment::Index(MAX_PATH_INDEX + 1)]).is_err());
        assert!(JsonPath::from_segments(vec![key(&"k".repeat(MAX_PATH_CHARS + 1))]).is_err());
        assert_eq!(
            JsonPath::from_segments(vec![key("a b"), Segment::Index(3)]).map(|p| p.to_string()),
            Ok(r#"["a b"][3]"#.to_owned())
        );
    }

    #[test]
    fn get_walks_objects_and_arrays() {
        let body = json!({
            "customer": {"email": "a@example.com", "tags": ["vip", {"x": 1}]},
            "items": [{"sku": "A-1"}, {"sku": "B-2"}],
            "0": "key zero",
            "meta": {"user-id": 7, "nothing": null}
        });
        let cases = [
            ("customer.email", Some(json!("a@example.com"))),
            ("customer.tags[0]", Some(json!("vip"))),
            ("customer.tags[1].x", Some(json!(1))),
            ("customer.tags[2]", None),
            ("items[1].sku", Some(json!("B-2"))),
            ("items.0", None),
            ("0", Some(json!("key zero"))),
            ("[0]", None),
            (r#"meta["user-id"]"#, Some(json!(7))),
            ("meta.nothing", Some(Value::Null)),
            ("meta.nothing.deeper", None),
            ("customer.email.local", None),
            ("missing", None),
        ];
        for (raw, expected) in cases {
            let path = JsonPath::parse(raw).expect(raw);
            assert_eq!(path.get(&body).cloned(), expected, "{raw}");
        }
        let array = json!([{"email": "b@example.com"}]);
        assert_eq!(JsonPath::parse("[0].email").expect("ok").get(&array), Some(&json!("b@example.com")));
    }

    #[test]
    fn path_serde_uses_the_canonical_string() {
        let path: JsonPath = serde_json::from_value(json!(r#"a["b"][2]"#)).expect("parses");
        assert_eq!(serde_json::to_value(&path).expect("ser"), json!("a.b[2]"));
        assert!(serde_json::from_value::<JsonPath>(json!("a..b")).is_err());
    }

    fn path_like_string() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "[a-z0-9.\\[\\]\"\\\\' -]{0,40}",]
    }

    fn segment() -> impl Strategy<Value = Segment> {
        prop_oneof![
            "[a-z_]{1,8}".prop_map(Segment::Key),
            "\\PC{0,8}".prop_map(Segment::Key),
            any::<String>().prop_map(Segment::Key),
            (0..=MAX_PATH_INDEX).prop_map(Segment::Index),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_canonical_form_reparses(raw in path_like_string()) {
            if let Ok(path) = JsonPath::parse(&raw) {
                let canonical = path.to_string();
                prop_assert!(canonical.chars().count() <= raw.chars().count());
                prop_assert_eq!(JsonPath::parse(&canonical), Ok(path));
            }
        }

        #[test]
        fn display_round_trips(segments in prop::collection::vec(segment(), 1..=MAX_PATH_SEGMENTS)) {
            let path = JsonPath { segments };
            let shown = path.to_string();
            match JsonPath::parse(&shown) {
                Ok(parsed) => prop_assert_eq!(parsed, path),
                // Only the length limit can refuse a generated path.
                Err(e) => prop_assert_eq!(e.kind, PathErrorKind::TooLong),
            }
        }
    }
}
