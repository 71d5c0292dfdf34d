//! Fuzz target for reading inbound request bodies: `payload::payload` (JSON, form and query
//! parsing), then the generic and PostHog parsers on whatever it read, and the identity
//! parsers (`EmailAddress`, `Phone`, `UserId`, `EventName`) on every string involved.
//! Nothing here may panic, whatever the sender writes.
//!
//! Input layout (see `fuzz/seeds/inbound_payload/` for examples):
//!
//! - byte 0, flags: bit 0 = GET request, bit 1 = a query string is present;
//! - byte 1, content type: 0 = no header, 1..=N = one of `CONTENT_TYPES`, anything else = a
//!   custom header read from the input up to the next NUL byte;
//! - then the query string up to the next NUL byte (none: empty query), and the body.

#![no_main]

use herald_domain::contact::{EmailAddress, Phone, UserId};
use herald_domain::inbound::{EventName, parse_generic, parse_posthog};
use herald_domain::payload::payload;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const CONTENT_TYPES: [&str; 10] = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "text/json",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "application/vnd.api+json",
    "multipart/form-data; boundary=x",
    " Application/JSON ;q=1",
    "",
];

/// How many strings of one payload go through the identity parsers, so a huge body cannot
/// make one run slow.
const MAX_STRINGS: usize = 512;

/// Splits `data` at the first NUL byte; without one, everything is the second part.
fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[], data),
    }
}

fn identities(text: &str) {
    let _ = EmailAddress::parse(text);
    let _ = Phone::parse(text);
    let _ = UserId::parse(text);
    let _ = EventName::parse(text);
}

/// Every key and string (and number, as the parsers see numbers) in `value`, depth first.
fn strings(value: &Value, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    match value {
        Value::String(s) => identities(s),
        Value::Number(n) => identities(&n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, budget)),
        Value::Object(object) => {
            for (key, v) in object {
                identities(key);
                strings(v, budget);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, selector, rest @ ..] = data else {
        return;
    };
    let is_get = flags & 1 != 0;
    let (custom, rest) = match usize::from(*selector) {
        0 => (None, rest),
        n if n <= CONTENT_TYPES.len() => (Some(CONTENT_TYPES[n - 1].to_owned()), rest),
        _ => {
            let (custom, rest) = split_nul(rest);
            (Some(String::from_utf8_lossy(custom).into_owned()), rest)
        }
    };
    let (query, body) = split_nul(rest);
    let query = String::from_utf8_lossy(query);
    let query = (flags & 2 != 0).then_some(query.as_ref());

    if let Some(text) = &custom {
        identities(text);
    }
    if let Some(query) = query {
        identities(query);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        identities(text);
    }

    let Ok(value) = payload(is_get, custom.as_deref(), query, body) else {
        return;
    };
    // A form or a query string always reads as an object.
    if is_get {
        assert!(value.is_object(), "a GET payload must be an object: {value}");
    }
    let mut budget = MAX_STRINGS;
    strings(&value, &mut budget);
    for event in [parse_generic(&value), parse_posthog(&value)].into_iter().flatten() {
        assert_ne!(event.identity, Default::default(), "an accepted event must carry an identity");
    }
});
