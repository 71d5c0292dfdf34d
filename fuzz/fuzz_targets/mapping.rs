//! Fuzz target for mapped sources: `JsonPath` parsing, `MappingSpec::validate`,
//! `CompiledMapping::map_body` and `suggest`. Nothing here may panic, and the properties the
//! domain's own property tests state must hold: a path's canonical form re-parses to the same
//! path, an applied mapping yields an identity or says why not, and a suggested mapping
//! applies to its own sample whenever it found an identity.
//!
//! Input layout (see `fuzz/seeds/mapping/` for examples): the spec, a NUL byte, then the body.
//! Without a NUL byte the whole input is the body and only `suggest` makes a spec.
//!
//! The spec is either a `MappingSpec` in JSON (when it starts with `{`), or, so that byte-level
//! mutations reach `map_body` without having to keep JSON valid, lines:
//!
//! ```text
//! line 0: email path            (an empty line leaves a field unmapped)
//! line 1: user_id path
//! line 2: phone path
//! line 3: event name: `=name` for a constant, otherwise a path
//! line 4: occurred_at path
//! line 5: dedupe_key path
//! line 6: `*` to include the body as properties
//! then:   `@name=path` for an attribute, `name=path` for a property
//! ```
//!
//! The body is JSON, or, when it is not, read as a form post.

#![no_main]

use herald_domain::contact::Identity;
use herald_domain::mapping::{EventNameSource, JsonPath, MappingSpec, suggest};
use herald_domain::payload::payload;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// How many strings of the body are also tried as paths.
const MAX_STRINGS: usize = 256;

fn lines_spec(text: &str) -> MappingSpec {
    let mut lines = text.split('\n');
    let mut field = || lines.next().filter(|l| !l.is_empty()).map(str::to_owned);
    let mut spec = MappingSpec {
        email: field(),
        user_id: field(),
        phone: field(),
        event_name: field().map(|l| match l.strip_prefix('=') {
            Some(constant) => EventNameSource::Constant(constant.to_owned()),
            None => EventNameSource::Path(l),
        }),
        occurred_at: field(),
        dedupe_key: field(),
        include_body_as_properties: field().is_some_and(|l| l == "*"),
        ..MappingSpec::default()
    };
    for line in lines {
        let (name, path) = line.split_once('=').unwrap_or((line, ""));
        match name.strip_prefix('@') {
            Some(name) => spec.attributes.insert(name.to_owned(), path.to_owned()),
            None => spec.properties.insert(name.to_owned(), path.to_owned()),
        };
    }
    spec
}

/// Parses `raw` as a path; a parsed path's canonical form must be no longer and re-parse to
/// the same path. Looks the path up in `body`.
fn path(raw: &str, body: Option<&Value>) {
    let Ok(path) = JsonPath::parse(raw) else {
        return;
    };
    let canonical = path.to_string();
    assert!(canonical.chars().count() <= raw.chars().count(), "{raw:?} → {canonical:?}");
    assert_eq!(JsonPath::parse(&canonical).as_ref(), Ok(&path), "{raw:?} → {canonical:?}");
    if let Some(body) = body {
        let _ = path.get(body);
    }
}

fn strings<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    if out.len() >= MAX_STRINGS {
        return;
    }
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(object) => {
            for (key, v) in object {
                out.push(key);
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// Validates `spec` and applies it to `body`: an applied mapping either yields an identity or
/// names at least one refused field.
fn check(spec: &MappingSpec, body: &Value) {
    let Ok(mapping) = spec.validate() else {
        return;
    };
    match mapping.map_body(body) {
        Ok(event) => assert_ne!(event.identity, Identity::default(), "{spec:?}"),
        Err(errors) => assert!(!errors.is_empty(), "{spec:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let (spec_bytes, body_bytes) = match data.iter().position(|&b| b == 0) {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    let body = serde_json::from_slice::<Value>(body_bytes)
        .ok()
        .or_else(|| payload(false, Some("application/x-www-form-urlencoded"), None, body_bytes).ok());

    if let Some(spec_bytes) = spec_bytes {
        let text = String::from_utf8_lossy(spec_bytes);
        path(&text, body.as_ref());
        let spec = if text.trim_start().starts_with('{') {
            serde_json::from_slice::<MappingSpec>(spec_bytes).ok()
        } else {
            for line in text.split('\n') {
                path(line, body.as_ref());
                if let Some((_, raw)) = line.split_once('=') {
                    path(raw, body.as_ref());
                }
            }
            Some(lines_spec(&text))
        };
        if let Some(spec) = spec {
            // The JSON form of a spec is its API shape: it must round-trip.
            let json = serde_json::to_value(&spec).expect("a spec serializes");
            assert_eq!(serde_json::from_value::<MappingSpec>(json).ok().as_ref(), Some(&spec));
            if let Some(body) = &body {
                check(&spec, body);
            }
        }
    }

    let Some(body) = body else {
        return;
    };
    let mut found = Vec::new();
    strings(&body, &mut found);
    for s in found {
        path(s, Some(&body));
    }

    let suggested = suggest(&body);
    let has_identity = suggested.email.is_some() || suggested.user_id.is_some() || suggested.phone.is_some();
    match suggested.validate() {
        Ok(mapping) => {
            assert!(has_identity, "{suggested:?}");
            let applied = mapping.map_body(&body);
            assert!(applied.is_ok(), "a suggestion must apply to its own sample: {suggested:?} → {applied:?}");
        }
        Err(errors) => {
            assert!(!has_identity, "{suggested:?} → {errors:?}");
            assert_eq!(errors.len(), 1, "{errors:?}");
        }
    }
});
