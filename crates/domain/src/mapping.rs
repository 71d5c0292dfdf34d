//! Mapped sources (HighLevel-style inbound webhooks): a user-defined `MappingSpec` that
//! turns any JSON body (a
//! Stripe or Shopify webhook, a form tool) into an `InboundEvent`, the `JsonPath`s it is
//! written in, and `suggest`, which drafts a spec from a captured sample.
//!
//! Specs are validated once (`MappingSpec::validate`) into a `CompiledMapping`, so applying
//! one to each request never re-parses paths and can only fail on the request's content.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

use crate::Timestamp;
use crate::contact::{EmailAddress, Identity, IdentityError, Phone, UserId};
use crate::inbound::{
    EventName, FieldError, InboundEvent, Names, WhenUnmatched, identity_field, scalar_text, timestamp_field,
};

/// Longest path string accepted, in characters.
pub const MAX_PATH_CHARS: usize = 512;
/// Most segments in one path.
pub const MAX_PATH_SEGMENTS: usize = 32;
/// Largest array index a path may name.
pub const MAX_PATH_INDEX: usize = 100_000;
/// Longest attribute or property name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest deduplication key, in characters (what the store indexes).
pub const MAX_DEDUPE_KEY_CHARS: usize = 255;

// ---------------------------------------------------------------------------------------------
// JSON paths
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// The spec
// ---------------------------------------------------------------------------------------------

/// How a mapped source turns a JSON body into an event: the shape of the HTTP API.
///
/// Every field is optional; paths are `JsonPath` strings; unknown keys are refused so a typo
/// does not silently map nothing. When serialized, absent fields are written as `null` and
/// empty maps as `{}`.
///
/// ```json
/// {
///   "email": "customer.email",
///   "user_id": "customer.id",
///   "phone": "customer.phone",
///   "event_name": {"path": "type"},
///   "occurred_at": "created_at",
///   "attributes": {"plan": "data.object.plan", "first_name": "customer.first_name"},
///   "properties": {"amount": "data.object.amount", "sku": "items[0].sku"},
///   "include_body_as_properties": false,
///   "dedupe_key": "id"
/// }
/// ```
///
/// - `email`, `user_id`, `phone`: paths to the contact's identity (numbers are accepted as
///   their digits for `user_id` and `phone`). At least one must be mapped.
/// - `event_name`: `{"path": "..."}` to read the name from the body, or
///   `{"constant": "order_paid"}`; absent (or a path that finds nothing) means the request
///   only creates or updates the contact.
/// - `occurred_at`: an RFC 3339 string, or a Unix timestamp in seconds (a number, or a string
///   of digits from form tools); absent means the receive time.
/// - `attributes`: contact attribute name → path; `name`, `first_name` and `last_name` also
///   fill the contact's name fields.
/// - `properties`: event property name → path.
/// - `include_body_as_properties`: start the event's properties from the whole body (when it
///   is an object); `properties` entries then override.
/// - `dedupe_key`: path to a string or number identifying the delivery (at most 255
///   characters), so a retried webhook is recorded once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingSpec {
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub phone: Option<String>,
    pub event_name: Option<EventNameSource>,
    pub occurred_at: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub properties: BTreeMap<String, String>,
    pub include_body_as_properties: bool,
    pub dedupe_key: Option<String>,
}

/// Where the event name comes from: `{"path": "type"}` or `{"constant": "order_paid"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventNameSource {
    Path(String),
    Constant(String),
}

/// A field of a `MappingSpec` that cannot be used, named as in the spec's JSON
/// (`email`, `event_name.path`, `attributes.plan`), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct MappingError {
    pub field: String,
    pub reason: String,
}

impl MappingError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// A validated `MappingSpec`, ready to apply to request bodies.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledMapping {
    email: Option<JsonPath>,
    user_id: Option<JsonPath>,
    phone: Option<JsonPath>,
    event_name: Option<CompiledEventName>,
    occurred_at: Option<JsonPath>,
    attributes: Vec<(String, JsonPath)>,
    properties: Vec<(String, JsonPath)>,
    include_body_as_properties: bool,
    dedupe_key: Option<JsonPath>,
}

#[derive(Debug, Clone, PartialEq)]
enum CompiledEventName {
    Path(JsonPath),
    Constant(EventName),
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        Err("the name must not be empty")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err("the name must be at most 100 characters")
    } else if name.chars().any(char::is_control) {
        Err("the name must not contain control characters")
    } else {
        Ok(())
    }
}

impl MappingSpec {
    /// Parses every path and checks every name, reporting all problems at once so a form can
    /// highlight each field.
    pub fn validate(&self) -> Result<CompiledMapping, Vec<MappingError>> {
        let mut errors = Vec::new();
        let mut path = |field: &str, raw: &Option<String>| -> Option<JsonPath> {
            JsonPath::parse(raw.as_deref()?).map_err(|e| errors.push(MappingError::new(field, e.to_string()))).ok()
        };
        let email = path("email", &self.email);
        let user_id = path("user_id", &self.user_id);
        let phone = path("phone", &self.phone);
        let occurred_at = path("occurred_at", &self.occurred_at);
        let dedupe_key = path("dedupe_key", &self.dedupe_key);
        let event_name = match &self.event_name {
            None => None,
            Some(EventNameSource::Path(raw)) => JsonPath::parse(raw)
                .map(CompiledEventName::Path)
                .map_err(|e| errors.push(MappingError::new("event_name.path", e.to_string())))
                .ok(),
            Some(EventNameSource::Constant(raw)) => EventName::parse(raw)
                .map(CompiledEventName::Constant)
                .map_err(|e| errors.push(MappingError::new("event_name.constant", e)))
                .ok(),
        };
        let attributes = named_paths("attributes", &self.attributes, &mut errors);
        let properties = named_paths("properties", &self.properties, &mut errors);
        if self.email.is_none() && self.user_id.is_none() && self.phone.is_none() {
            // Every event must belong to a contact, so a mapping without any identity could
            // never accept a request.
            errors.push(MappingError::new("email", "map at least one of `email`, `user_id` or `phone`"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CompiledMapping {
            email,
            user_id,
            phone,
            event_name,
            occurred_at,
            attributes,
            properties,
            include_body_as_properties: self.include_body_as_properties,
            dedupe_key,
        })
    }
}

fn named_paths(
    section: &str,
    entries: &BTreeMap<String, String>,
    errors: &mut Vec<MappingError>,
) -> Vec<(String, JsonPath)> {
    let mut compiled = Vec::with_capacity(entries.len());
    for (name, raw) in entries {
        let field = format!("{section}.{name}");
        if let Err(reason) = check_name(name) {
            errors.push(MappingError::new(field, reason));
            continue;
        }
        match JsonPath::parse(raw) {
            Ok(path) => compiled.push((name.clone(), path)),
            Err(e) => errors.push(MappingError::new(field, e.to_string())),
        }
    }
    compiled
}

// ---------------------------------------------------------------------------------------------
// Applying a mapping
// ---------------------------------------------------------------------------------------------

const OCCURRED_AT_REASON: &str =
    "must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z, or a Unix timestamp in seconds";

/// A refusal naming the spec field and, in the reason, the path it read.
fn at_path(field: &str, path: &JsonPath, reason: impl fmt::Display) -> FieldError {
    FieldError::new(field, format!("{path}: {reason}"))
}

fn identity<T>(
    body: &Value,
    path: Option<&JsonPath>,
    field: &str,
    parse: impl Fn(&str) -> Result<T, IdentityError>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let path = path?;
    identity_field(path.get(body), field, parse).unwrap_or_else(|e| {
        errors.push(at_path(field, path, e.reason));
        None
    })
}

/// A Unix timestamp in seconds, possibly fractional. Values beyond the representable years
/// are refused rather than clamped: they are almost always milliseconds sent as seconds, and
/// clamping would silently date the event in the year 9999.
fn unix_seconds(n: &Number) -> Result<Timestamp, String> {
    let millis = match n.as_i64() {
        Some(seconds) => seconds.checked_mul(1000),
        None => n
            .as_f64()
            .map(|seconds| (seconds * 1000.0).round())
            .filter(|m| {
                m.is_finite() && *m >= Timestamp::MIN.unix_millis() as f64 && *m <= Timestamp::MAX.unix_millis() as f64
            })
            .map(|m| m as i64),
    };
    millis
        .filter(|m| (Timestamp::MIN.unix_millis()..=Timestamp::MAX.unix_millis()).contains(m))
        .map(Timestamp::from_unix_millis)
        .ok_or_else(|| "is out of range for a Unix timestamp in seconds (milliseconds are not accepted)".to_owned())
}

fn occurred_at(value: &Value) -> Result<Option<Timestamp>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => unix_seconds(n).map(Some),
        Value::String(s) => match timestamp_field(Some(value), "occurred_at") {
            Ok(parsed) => Ok(parsed),
            // Form tools send every value as a string, Unix timestamps included.
            Err(_) => match s.trim().parse::<i64>() {
                Ok(seconds) => unix_seconds(&Number::from(seconds)).map(Some),
                Err(_) => Err(OCCURRED_AT_REASON.to_owned()),
            },
        },
        _ => Err(OCCURRED_AT_REASON.to_owned()),
    }
}

fn event_name_at(value: Option<&Value>) -> Result<Option<EventName>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => EventName::parse(s).map(Some),
        Some(_) => Err("must be a string".to_owned()),
    }
}

fn dedupe_key_at(value: Option<&Value>) -> Result<Option<String>, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let key = scalar_text(value).ok_or_else(|| "must be a string or a number".to_owned())?;
    if key.is_empty() {
        Err("must not be empty".to_owned())
    } else if key.chars().count() > MAX_DEDUPE_KEY_CHARS {
        Err(format!("must be at most {MAX_DEDUPE_KEY_CHARS} characters"))
    } else {
        Ok(Some(key))
    }
}

impl CompiledMapping {
    /// Maps one request body. This is also the preview shown when editing a mapping against a
    /// captured sample.
    ///
    /// A path that finds nothing leaves its field absent; a value of the wrong type or with
    /// invalid content is refused, naming the spec field (`email`, `event_name`,
    /// `occurred_at`, `dedupe_key`) with the path in the reason. Every refusal is reported.
    pub fn map_body(&self, body: &Value) -> Result<InboundEvent, Vec<FieldError>> {
        let mut errors = Vec::new();
        let identity = Identity {
            email: identity(body, self.email.as_ref(), "email", EmailAddress::parse, &mut errors),
            user_id: identity(body, self.user_id.as_ref(), "user_id", UserId::parse, &mut errors),
            phone: identity(body, self.phone.as_ref(), "phone", Phone::parse, &mut errors),
        };
        // Only when no identity field was refused: its own error already says what is wrong.
        if identity == Identity::default() && errors.is_empty() {
            let reason = "is required (or user_id or phone of an existing contact)";
            errors.push(match &self.email {
                Some(path) => at_path("email", path, reason),
                None => FieldError::new("email", reason),
            });
        }

        let name = match &self.event_name {
            None => None,
            Some(CompiledEventName::Constant(name)) => Some(name.clone()),
            Some(CompiledEventName::Path(path)) => event_name_at(path.get(body)).unwrap_or_else(|reason| {
                errors.push(at_path("event_name", path, reason));
                None
            }),
        };
        let occurred_at = self.occurred_at.as_ref().and_then(|path| {
            path.get(body).map_or(Ok(None), occurred_at).unwrap_or_else(|reason| {
                errors.push(at_path("occurred_at", path, reason));
                None
            })
        });
        let dedupe_key = self.dedupe_key.as_ref().and_then(|path| {
            dedupe_key_at(path.get(body)).unwrap_or_else(|reason| {
                errors.push(at_path("dedupe_key", path, reason));
                None
            })
        });
        if !errors.is_empty() {
            return Err(errors);
        }

        let mut properties = match body {
            Value::Object(object) if self.include_body_as_properties => object.clone(),
            _ => Map::new(),
        };
        for (key, path) in &self.properties {
            if let Some(value) = path.get(body) {
                properties.insert(key.clone(), value.clone());
            }
        }
        let mut attributes = Map::new();
        for (key, path) in &self.attributes {
            // `null` in attributes means "remove" when merged into the contact; webhooks send
            // `null` for every unset field, which must not wipe what the contact already has.
            if let Some(value) = path.get(body).filter(|v| !v.is_null()) {
                attributes.insert(key.clone(), value.clone());
            }
        }

        let mut event = InboundEvent {
            identity,
            name,
            properties,
            attributes,
            attributes_once: Map::new(),
            names: Names::default(),
            occurred_at,
            dedupe_key,
            when_unmatched: WhenUnmatched::Reject,
        };
        event.take_names_from_attributes();
        Ok(event.replace_nul())
    }
}

// ---------------------------------------------------------------------------------------------
// Suggestions
// ---------------------------------------------------------------------------------------------

/// How deep `suggest` looks into a sample.
const SUGGEST_MAX_DEPTH: usize = 8;
/// How many values `suggest` looks at, so a huge sample cannot make it slow.
const SUGGEST_MAX_NODES: usize = 10_000;

/// Keys that usually hold the sender's own id for the person, most specific first.
const USER_ID_KEYS: [&str; 6] =
    ["user_id", "userId", "client_reference_id", "customer_id", "customerId", "distinct_id"];
/// Objects whose `id` is the person's id (`customer.id` in Shopify).
const PERSON_OBJECTS: [&str; 2] = ["customer", "user"];
const PHONE_KEYS: [&str; 4] = ["phone", "phone_number", "phoneNumber", "mobile"];
const EVENT_NAME_KEYS: [&str; 4] = ["event", "type", "event_type", "topic"];

/// Visits the values of `root` breadth-first (shallowest first) down to `SUGGEST_MAX_DEPTH`,
/// with their paths, until `visit` returns something.
fn breadth_first<T>(root: &Value, mut visit: impl FnMut(&[Segment], &Value) -> Option<T>) -> Option<T> {
    let mut queue = VecDeque::from([(Vec::new(), root)]);
    let mut visited = 0;
    while let Some((path, value)) = queue.pop_front() {
        visited += 1;
        if visited > SUGGEST_MAX_NODES {
            return None;
        }
        if let Some(found) = visit(&path, value) {
            return Some(found);
        }
        if path.len() >= SUGGEST_MAX_DEPTH {
            continue;
        }
        let child = |segment| {
            let mut child = path.clone();
            child.push(segment);
            child
        };
        match value {
            Value::Object(object) => {
                queue.extend(object.iter().map(|(key, value)| (child(Segment::Key(key.clone())), value)))
            }
            Value::Array(items) => queue.extend(
                items
                    .iter()
                    .take(MAX_PATH_INDEX + 1)
                    .enumerate()
                    .map(|(index, value)| (child(Segment::Index(index)), value)),
            ),
            _ => {}
        }
    }
    None
}

/// `base` + `keys` as a path string, if it fits the path limits.
fn path_string(base: &[Segment], keys: &[&str]) -> Option<String> {
    let mut segments = base.to_vec();
    segments.extend(keys.iter().map(|k| Segment::Key((*k).to_owned())));
    JsonPath::from_segments(segments).ok().map(|p| p.to_string())
}

fn parses_as<T, E>(value: Option<&Value>, parse: impl Fn(&str) -> Result<T, E>) -> bool {
    value.and_then(scalar_text).is_some_and(|text| parse(&text).is_ok())
}

/// A starting point for a mapping, from a captured sample: the first email found
/// (breadth-first), the usual user id and phone keys, the event name from a top-level
/// `event`/`type`/`event_type`/`topic` string, and the whole body as the event's properties.
/// Only values that would map cleanly are suggested, so the spec applies to its own sample
/// whenever it found an identity.
pub fn suggest(sample: &Value) -> MappingSpec {
    let email = breadth_first(sample, |path, value| {
        let text = value.as_str()?;
        if path.is_empty() || EmailAddress::parse(text).is_err() {
            return None;
        }
        path_string(path, &[])
    });
    let user_id = breadth_first(sample, |path, value| {
        let object = value.as_object()?;
        let direct = USER_ID_KEYS
            .iter()
            .find(|key| parses_as(object.get(**key), UserId::parse))
            .and_then(|key| path_string(path, &[key]));
        direct.or_else(|| {
            PERSON_OBJECTS
                .iter()
                .find(|container| {
                    let id = object.get(**container).and_then(|c| c.get("id"));
                    parses_as(id, UserId::parse)
                })
                .and_then(|container| path_string(path, &[container, "id"]))
        })
    });
    let phone = breadth_first(sample, |path, value| {
        let object = value.as_object()?;
        PHONE_KEYS
            .iter()
            .find(|key| parses_as(object.get(**key), Phone::parse))
            .and_then(|key| path_string(path, &[key]))
    });
    let event_name = sample.as_object().and_then(|object| {
        EVENT_NAME_KEYS
            .iter()
            .find(|key| object.get(**key).and_then(Value::as_str).is_some_and(|name| EventName::parse(name).is_ok()))
            .and_then(|key| path_string(&[], &[key]))
            .map(EventNameSource::Path)
    });
    MappingSpec { email, user_id, phone, event_name, include_body_as_properties: true, ..MappingSpec::default() }
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

    fn stripe_checkout() -> Value {
        json!({
            "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
            "object": "event",
            "api_version": "2023-10-16",
            "created": 1_686_089_970,
            "type": "checkout.session.completed",
            "livemode": false,
            "data": {
                "object": {
                    "id": "cs_test_a1b2c3",
                    "object": "checkout.session",
                    "amount_total": 2000,
                    "currency": "usd",
                    "client_reference_id": "usr_8a3f2d",
                    "customer": "cus_NffrFeUfNV2Hib",
                    "customer_email": null,
                    "customer_details": {
                        "email": "Jenny.Rosen@Example.com",
                        "name": "Jenny Rosen",
                        "phone": null,
                        "address": {"country": "US", "postal_code": "94103"}
                    },
                    "metadata": {"plan": "pro", "user-id": "42"},
                    "mode": "subscription",
                    "payment_status": "paid",
                    "status": "complete"
                }
            },
            "request": {"id": null, "idempotency_key": null}
        })
    }

    fn shopify_order() -> Value {
        json!({
            "id": 820_982_911_946_154_508_u64,
            "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
            "email": "jon@example.com",
            "created_at": "2021-12-31T19:00:00-05:00",
            "currency": "USD",
            "total_price": "403.00",
            "name": "#9999",
            "phone": null,
            "user_id": null,
            "customer": {
                "id": 115_310_627_314_723_954_u64,
                "email": "john@example.com",
                "first_name": "John",
                "last_name": "Smith",
                "phone": "+1 (613) 555-1111",
                "tags": ""
            },
            "line_items": [
                {"id": 866_550_311_766_439_020_u64, "sku": "IPOD2008PINK", "title": "IPod Nano - 8GB", "quantity": 1, "price": "199.00"},
                {"id": 141_249_953_214_522_974_u64, "sku": null, "title": "IPod Nano - 8GB", "quantity": 1, "price": "199.00"}
            ],
            "shipping_address": {"first_name": "Steve", "phone": "555-625-1199"}
        })
    }

    fn spec(value: Value) -> MappingSpec {
        serde_json::from_value(value).expect("spec deserializes")
    }

    #[test]
    fn maps_a_stripe_checkout_session_end_to_end() {
        let mapping = spec(json!({
            "email": "data.object.customer_details.email",
            "user_id": "data.object.client_reference_id",
            "phone": "data.object.customer_details.phone",
            "event_name": {"path": "type"},
            "occurred_at": "created",
            "attributes": {
                "plan": "data.object.metadata.plan",
                "name": "data.object.customer_details.name",
                "country": "data.object.customer_details.address.country",
                "coupon": "data.object.discount.coupon"
            },
            "properties": {
                "amount": "data.object.amount_total",
                "currency": "data.object.currency",
                "legacy_user": "data.object.metadata[\"user-id\"]"
            },
            "dedupe_key": "id"
        }))
        .validate()
        .expect("valid");
        let event = mapping.map_body(&stripe_checkout()).expect("maps");
        assert_eq!(event.identity.email.as_ref().map(EmailAddress::as_str), Some("jenny.rosen@example.com"));
        assert_eq!(event.identity.user_id.as_ref().map(UserId::as_str), Some("usr_8a3f2d"));
        assert_eq!(event.identity.phone, None, "null phone is absent");
        assert_eq!(event.name.as_ref().map(EventName::as_str), Some("checkout.session.completed"));
        assert_eq!(event.occurred_at, Some(Timestamp::from_unix_millis(1_686_089_970_000)));
        assert_eq!(
            Value::Object(event.attributes.clone()),
            json!({"plan": "pro", "name": "Jenny Rosen", "country": "US"})
        );
        assert_eq!(
            Value::Object(event.properties.clone()),
            json!({"amount": 2000, "currency": "usd", "legacy_user": "42"})
        );
        assert_eq!(event.names.name.as_deref(), Some("Jenny Rosen"));
        assert_eq!(event.names.first_name, None);
        assert_eq!(event.dedupe_key.as_deref(), Some("evt_1NG8Du2eZvKYlo2CUI79vXWy"));
        assert_eq!(event.when_unmatched, WhenUnmatched::Reject);
        assert!(event.attributes_once.is_empty());
    }

    #[test]
    fn maps_a_shopify_order_end_to_end() {
        let mapping = spec(json!({
            "email": "customer.email",
            "user_id": "customer.id",
            "phone": "customer.phone",
            "event_name": {"constant": "orders/create"},
            "occurred_at": "created_at",
            "attributes": {"first_name": "customer.first_name", "last_name": "customer.last_name"},
            "properties": {"sku": "line_items[0].sku", "second_sku": "line_items[1].sku", "total": "total_price", "name": "customer.first_name"},
            "include_body_as_properties": true,
            "dedupe_key": "id"
        }))
        .validate()
        .expect("valid");
        let body = shopify_order();
        let event = mapping.map_body(&body).expect("maps");
        assert_eq!(event.identity.email.as_ref().map(EmailAddress::as_str), Some("john@example.com"));
        assert_eq!(
            event.identity.user_id.as_ref().map(UserId::as_str),
            Some("115310627314723954"),
            "numeric ids become their digits"
        );
        assert_eq!(event.identity.phone.as_ref().map(Phone::as_str), Some("+16135551111"));
        assert_eq!(event.name.as_ref().map(EventName::as_str), Some("orders/create"));
        assert_eq!(event.occurred_at, Some(Timestamp::from_unix_millis(1_640_995_200_000)));
        assert_eq!(event.properties["sku"], "IPOD2008PINK");
        assert_eq!(event.properties["second_sku"], Value::Null);
        assert_eq!(event.properties["total"], "403.00");
        assert_eq!(event.properties["name"], "John", "entries override the body");
        assert_eq!(event.properties["currency"], "USD", "the body is included");
        assert_eq!(event.properties.len(), body.as_object().map_or(0, Map::len) + 3);
        assert_eq!(event.names, Names { name: None, first_name: Some("John".into()), last_name: Some("Smith".into()) });
        assert_eq!(event.dedupe_key.as_deref(), Some("820982911946154508"));
    }

    #[test]
    fn spec_json_shape_round_trips_and_refuses_unknown_fields() {
        let raw = json!({
            "email": "customer.email",
            "user_id": null,
            "phone": null,
            "event_name": {"path": "type"},
            "occurred_at": null,
            "attributes": {"plan": "plan"},
            "properties": {},
            "include_body_as_properties": false,
            "dedupe_key": "id"
        });
        let parsed = spec(raw.clone());
        assert_eq!(serde_json::to_value(&parsed).expect("ser"), raw);
        assert_eq!(
            spec(json!({"event_name": {"constant": "order_paid"}})).event_name,
            Some(EventNameSource::Constant("order_paid".into()))
        );
        assert_eq!(spec(json!({})), MappingSpec::default());
        for bad in [
            json!({"emial": "email"}),
            json!({"event_name": {"path": "type", "constant": "x"}}),
            json!({"event_name": {"field": "type"}}),
            json!({"event_name": "type"}),
            json!({"attributes": {"plan": 5}}),
        ] {
            assert!(serde_json::from_value::<MappingSpec>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_each_spec_field() {
        let long_name = "n".repeat(MAX_NAME_CHARS + 1);
        let errors = spec(json!({
            "email": "customer..email",
            "user_id": "ok.path",
            "phone": "",
            "event_name": {"path": "a["},
            "occurred_at": "created at",
            "attributes": {"plan": "data[x]", "": "a", "bad\nname": "a", long_name.clone(): "a", "fine": "fine"},
            "properties": {"amount": "[100001]", "sku": "items[0].sku"},
            "dedupe_key": "id]"
        }))
        .validate()
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let long_field = format!("attributes.{long_name}");
        assert_eq!(
            fields,
            [
                "email",
                "phone",
                "occurred_at",
                "dedupe_key",
                "event_name.path",
                "attributes.",
                "attributes.bad\nname",
                long_field.as_str(),
                "attributes.plan",
                "properties.amount",
            ]
        );
        assert!(errors[0].reason.contains("position 9"), "{}", errors[0]);
        assert_eq!(errors[1].reason, "must not be empty");
        assert!(errors[5].reason.contains("must not be empty"));
        assert!(errors[6].reason.contains("control characters"));
        assert!(errors[7].reason.contains("at most 100 characters"));
        assert!(errors[9].reason.contains("at most 100000"));

        let constant =
            spec(json!({"email": "e", "event_name": {"constant": " "}})).validate().expect_err("blank constant");
        assert_eq!(constant[0].field, "event_name.constant");

        let anonymous = MappingSpec { include_body_as_properties: true, ..MappingSpec::default() }
            .validate()
            .expect_err("no identity");
        assert_eq!(anonymous.len(), 1);
        assert_eq!(anonymous[0].field, "email");
        assert!(spec(json!({"phone": "p"})).validate().is_ok());
    }

    #[test]
    fn map_body_refusals_name_the_spec_field_and_path() {
        let mapping = spec(json!({
            "email": "customer.email",
            "user_id": "customer.id",
            "phone": "customer.phone",
            "event_name": {"path": "type"},
            "occurred_at": "created_at",
            "dedupe_key": "id"
        }))
        .validate()
        .expect("valid");
        let ok = json!({"customer": {"email": "a@example.com"}});
        let cases = [
            (json!({"customer": {"email": "nope"}}), "email", "customer.email: must contain exactly one `@`"),
            (json!({"customer": {"email": ["a@example.com"]}}), "email", "customer.email: must be a string"),
            (json!({"customer": {"id": ""}}), "user_id", "customer.id: must not be empty"),
            (json!({"customer": {"id": true}}), "user_id", "customer.id: must be a string"),
            (json!({"customer": {"phone": "call me"}}), "phone", "customer.phone: must have 5 to 20 digits"),
            (json!({"customer": {}}), "email", "customer.email: is required"),
            (json!({"customer": {"email": "a@example.com"}, "type": 3}), "event_name", "type: must be a string"),
            (json!({"customer": {"email": "a@example.com"}, "type": ""}), "event_name", "type: must not be empty"),
            (
                json!({"customer": {"email": "a@example.com"}, "created_at": "yesterday"}),
                "occurred_at",
                "created_at: must be an RFC 3339 date-time",
            ),
            (
                json!({"customer": {"email": "a@example.com"}, "created_at": true}),
                "occurred_at",
                "created_at: must be an RFC 3339",
            ),
            (
                json!({"customer": {"email": "a@example.com"}, "created_at": 1_686_089_970_000_000_i64}),
                "occurred_at",
                "created_at: is out of range",
            ),
            (
                json!({"customer": {"email": "a@example.com"}, "created_at": 1e300}),
                "occurred_at",
                "created_at: is out of range",
            ),
            (
                json!({"customer": {"email": "a@example.com"}, "id": {"a": 1}}),
                "dedupe_key",
                "id: must be a string or a number",
            ),
            (
                json!({"customer": {"email": "a@example.com"}, "id": "x".repeat(256)}),
                "dedupe_key",
                "id: must be at most 255 characters",
            ),
        ];
        for (body, field, reason) in cases {
            let errors = mapping.map_body(&body).expect_err("refused");
            assert_eq!(errors.len(), 1, "{body}: {errors:?}");
            assert_eq!(errors[0].field, field, "{body}");
            assert!(errors[0].reason.starts_with(reason), "{body}: {}", errors[0]);
        }
        assert!(mapping.map_body(&ok).is_ok());

        let several =
            mapping.map_body(&json!({"customer": {"email": 1, "phone": false}, "type": []})).expect_err("refused");
        let fields: Vec<&str> = several.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "phone", "event_name"]);

        let phone_only = spec(json!({"phone": "p"})).validate().expect("valid");
        let missing = phone_only.map_body(&json!({})).expect_err("no identity");
        assert_eq!(missing, [FieldError::new("email", "is required (or user_id or phone of an existing contact)")]);
    }

    #[test]
    fn occurred_at_accepts_rfc3339_and_unix_seconds() {
        let mapping = spec(json!({"email": "e", "occurred_at": "t"})).validate().expect("valid");
        let at = |t: Value| mapping.map_body(&json!({"e": "a@example.com", "t": t})).expect("maps").occurred_at;
        let expected = Some(Timestamp::from_unix_millis(1_700_000_000_000));
        assert_eq!(at(json!("2023-11-14T22:13:20Z")), expected);
        assert_eq!(at(json!(1_700_000_000)), expected);
        assert_eq!(at(json!("1700000000")), expected, "form tools send strings");
        assert_eq!(at(json!(1_700_000_000.25)), Some(Timestamp::from_unix_millis(1_700_000_000_250)));
        assert_eq!(at(json!(-1)), Some(Timestamp::from_unix_millis(-1000)));
        assert_eq!(at(Value::Null), None);
        assert_eq!(mapping.map_body(&json!({"e": "a@example.com"})).expect("maps").occurred_at, None);
    }

    #[test]
    fn null_attributes_do_not_clear_the_contact() {
        let mapping = spec(
            json!({"email": "e", "attributes": {"plan": "plan", "seats": "seats"}, "properties": {"plan": "plan"}}),
        )
        .validate()
        .expect("valid");
        let event = mapping.map_body(&json!({"e": "a@example.com", "plan": null})).expect("maps");
        assert!(event.attributes.is_empty());
        assert_eq!(event.properties["plan"], Value::Null);
        assert_eq!(event.name, None, "no event name mapped: contact only");
    }

    #[test]
    fn suggests_a_mapping_from_samples() {
        let stripe = suggest(&stripe_checkout());
        assert_eq!(
            stripe,
            MappingSpec {
                email: Some("data.object.customer_details.email".into()),
                user_id: Some("data.object.client_reference_id".into()),
                phone: None,
                event_name: Some(EventNameSource::Path("type".into())),
                include_body_as_properties: true,
                ..MappingSpec::default()
            }
        );
        let shopify = suggest(&shopify_order());
        assert_eq!(
            shopify,
            MappingSpec {
                email: Some("email".into()),
                user_id: Some("customer.id".into()),
                phone: Some("customer.phone".into()),
                event_name: None,
                include_body_as_properties: true,
                ..MappingSpec::default()
            }
        );
        for sample in [stripe_checkout(), shopify_order()] {
            let event =
                suggest(&sample).validate().expect("valid").map_body(&sample).expect("applies to its own sample");
            assert_eq!(Some(&Value::Object(event.properties)), Some(&sample));
        }

        let posthog_like = suggest(
            &json!({"event": {"event": "x"}, "type": "signup", "user": {"id": 9, "contact": {"mail": "deep@example.com"}}}),
        );
        assert_eq!(
            posthog_like.event_name,
            Some(EventNameSource::Path("type".into())),
            "a non-string `event` is skipped"
        );
        assert_eq!(posthog_like.user_id.as_deref(), Some("user.id"));
        assert_eq!(posthog_like.email.as_deref(), Some("user.contact.mail"));

        let quoted = suggest(&json!({"lead form": [{"e-mail": "x@example.com"}]}));
        assert_eq!(quoted.email.as_deref(), Some(r#"["lead form"][0].e-mail"#));

        let too_deep = suggest(&json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": "x@example.com"}}}}}}}}}));
        assert_eq!(too_deep.email, None);
        let deepest = suggest(&json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": "x@example.com"}}}}}}}}));
        assert_eq!(deepest.email.as_deref(), Some("a.b.c.d.e.f.g.h"));
        assert_eq!(suggest(&json!("x@example.com")).email, None);
    }

    // ---- property tests ----

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

    fn json_key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "email",
                "id",
                "type",
                "event",
                "customer",
                "user",
                "user_id",
                "phone",
                "data",
                "items",
                "created_at",
                "name",
                "first_name",
                "0",
            ])
            .prop_map(str::to_owned),
            "\\PC{0,6}",
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            prop_oneof![
                Just("a@example.com".to_owned()),
                Just("+1 555 010 9999".to_owned()),
                Just("2026-01-31T12:00:00Z".to_owned()),
                "[0-9]{1,20}",
                "\\PC{0,12}",
                any::<String>(),
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((json_key(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    fn raw_path() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "email",
                "customer.email",
                "data.email",
                "[0].email",
                "items[0].id",
                "id",
                "type",
                "event",
                "created_at",
                "user_id",
                "customer.id",
                "phone",
                "data[\"0\"]",
                "0",
            ])
            .prop_map(str::to_owned),
            "[a-z0-9.\\[\\]\"]{0,12}",
        ]
    }

    fn mapping_spec() -> impl Strategy<Value = MappingSpec> {
        let event_name = prop::option::of(prop_oneof![
            raw_path().prop_map(EventNameSource::Path),
            "\\PC{0,6}".prop_map(EventNameSource::Constant),
        ]);
        (
            (
                prop::option::of(raw_path()),
                prop::option::of(raw_path()),
                prop::option::of(raw_path()),
                event_name,
                prop::option::of(raw_path()),
            ),
            prop::collection::btree_map(json_key(), raw_path(), 0..4),
            prop::collection::btree_map(json_key(), raw_path(), 0..4),
            any::<bool>(),
            prop::option::of(raw_path()),
        )
            .prop_map(
                |(
                    (email, user_id, phone, event_name, occurred_at),
                    attributes,
                    properties,
                    include_body_as_properties,
                    dedupe_key,
                )| MappingSpec {
                    email,
                    user_id,
                    phone,
                    event_name,
                    occurred_at,
                    attributes,
                    properties,
                    include_body_as_properties,
                    dedupe_key,
                },
            )
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

        #[test]
        fn map_body_never_panics(spec in mapping_spec(), body in json_value()) {
            if let Ok(mapping) = spec.validate() {
                match mapping.map_body(&body) {
                    Ok(event) => prop_assert!(event.identity != Identity::default()),
                    Err(errors) => prop_assert!(!errors.is_empty()),
                }
            }
        }

        #[test]
        fn suggestions_apply_to_their_own_sample(body in json_value()) {
            let suggested = suggest(&body);
            let has_identity = suggested.email.is_some()
                || suggested.user_id.is_some()
                || suggested.phone.is_some();
            match suggested.validate() {
                Ok(mapping) => {
                    prop_assert!(has_identity);
                    prop_assert!(mapping.map_body(&body).is_ok(), "{:?}", mapping.map_body(&body));
                }
                Err(errors) => {
                    prop_assert!(!has_identity);
                    prop_assert_eq!(errors.len(), 1);
                }
            }
        }
    }
}
