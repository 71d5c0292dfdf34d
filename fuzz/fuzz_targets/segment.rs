//! Fuzz target for segment definitions: `Segment::from_json` on any JSON, and `evaluate` of a
//! definition that parses, over a contact and events taken from the same input. Nothing may
//! panic, and the evaluator's promise must hold: the time it says its answer changes at lies
//! after now, and until then (a millisecond before it) the answer is the same.
//!
//! Input layout (see `fuzz/seeds/segment/` for examples): a JSON document. When it is an
//! object with a `definition`, that is the definition, `contact` (an object) the contact's
//! fields and attributes, and `events` a list of `{"name", "at" (Unix milliseconds, relative
//! to now when small), "properties"}`; otherwise the whole document is the definition, over
//! an empty contact with no events. `member_of` and topic tests answer from the ids' bytes.

#![no_main]

use std::time::Duration;

use herald_campaign::segment::{EventFact, Facts, Segment};
use herald_domain::{SegmentId, Timestamp, TopicId};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

fn events(value: Option<&Value>) -> Vec<EventFact> {
    let Some(Value::Array(list)) = value else { return Vec::new() };
    list.iter()
        .filter_map(|e| {
            let name = e.get("name")?.as_str()?.to_owned();
            let at = e.get("at").and_then(Value::as_i64).unwrap_or(0);
            // Small numbers are offsets from now, so that windows see them.
            let at = if at.abs() < 1_000_000_000_000 { NOW.unix_millis().saturating_add(at) } else { at };
            let properties = e.get("properties").cloned().unwrap_or_else(|| json!({}));
            Some(EventFact { name, at: Timestamp::from_unix_millis(at), properties })
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let (definition, contact, events) = match value.get("definition") {
        Some(definition) => (
            definition.clone(),
            value.get("contact").cloned().unwrap_or_else(|| json!({})),
            events(value.get("events")),
        ),
        None => (value.clone(), json!({}), Vec::new()),
    };
    let Ok(segment) = Segment::from_json(&definition) else { return };
    let _ = (segment.event_names(), segment.references(), segment.topics());
    let member_of = |id: SegmentId| id.as_uuid().as_bytes()[15] % 2 == 0;
    let subscribed = |id: TopicId| id.as_uuid().as_bytes()[15] % 3 != 0;
    let decide = |now| {
        segment.evaluate(&Facts {
            contact: &contact,
            events: &events,
            member_of: &member_of,
            subscribed: &subscribed,
            now,
        })
    };
    let verdict = decide(NOW);
    if let Some(at) = verdict.changes_at {
        assert!(at > NOW, "{definition}: changes at {at:?}, not after now");
        let before = decide(at - Duration::from_millis(1));
        assert_eq!(before.member, verdict.member, "{definition}: changed before {at:?}");
    }
});
