use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::graph::{cycle, decision_order};
use super::*;

const DAY: Duration = Duration::from_secs(86_400);
const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

fn segment(value: Value) -> Segment {
    Segment::from_json(&value).unwrap_or_else(|e| panic!("{value}: {e}"))
}

fn event(name: &str, at: Timestamp, properties: Value) -> EventFact {
    EventFact { name: name.into(), at, properties }
}

fn decide(segment: &Segment, contact: &Value, events: &[EventFact], now: Timestamp) -> Verdict {
    let members: BTreeSet<SegmentId> = BTreeSet::new();
    segment.evaluate(&Facts { contact, events, member_of: &|id| members.contains(&id), subscribed: &|_| true, now })
}

fn seg_id(n: u8) -> SegmentId {
    format!("seg_0190c9a000007000800000000000000{n:x}").parse().expect("a segment id")
}

#[test]
fn attributes_with_every_operator_and_dates() {
    let contact = json!({"plan": "pro", "seats": "12", "trial_ends_at": "2027-01-10T00:00:00Z",
                         "seen": (NOW - DAY * 2).to_string()});
    let cases = [
        (json!({"field": "plan", "op": "eq", "value": "pro"}), true),
        (json!({"field": "plan", "op": "in", "value": ["free", "pro"]}), true),
        (json!({"field": "seats", "op": "gt", "value": 10}), true),
        (json!({"field": "missing", "op": "not_exists"}), true),
        (json!({"field": "trial_ends_at", "op": "after", "value": "2027-01-01"}), true),
        (json!({"field": "trial_ends_at", "op": "before", "value": "2027-01-01"}), false),
        (json!({"field": "seen", "op": "within_last", "value": "7d"}), true),
        (json!({"field": "seen", "op": "within_last", "value": "1d"}), false),
        (json!({"not": {"field": "plan", "op": "eq", "value": "pro"}}), false),
    ];
    for (definition, expected) in cases {
        assert_eq!(decide(&segment(definition.clone()), &contact, &[], NOW).member, expected, "{definition}");
    }
    // Seen two days ago: within the last 7 days until five days from now, a tick past.
    let verdict = decide(&segment(json!({"field": "seen", "op": "within_last", "value": "7d"})), &contact, &[], NOW);
    assert_eq!(verdict.changes_at, Some(NOW + DAY * 5 + Duration::from_millis(1)));
}

#[test]
fn behaviour_counts_within_windows_and_knows_when_they_change() {
    let events = [
        event("order", NOW - DAY * 6, json!({"total": 80})),
        event("order", NOW - DAY * 3, json!({"total": 20})),
        event("order", NOW - DAY, json!({"total": 120})),
        event("login", NOW - DAY * 40, json!({})),
    ];
    let at_least_two = segment(json!({"performed": "order", "times": {"at_least": 2}, "within": "7d"}));
    let verdict = decide(&at_least_two, &json!({}), &events, NOW);
    // Three in the window; below two once the two oldest have left it.
    assert_eq!(verdict, Verdict { member: true, changes_at: Some(NOW - DAY * 3 + DAY * 7 + Duration::from_millis(1)) });
    let big = segment(json!({"performed": "order", "where": {"field": "total", "op": "gt", "value": 50}}));
    assert!(decide(&big, &json!({}), &events, NOW).member);
    let exactly = segment(json!({"performed": "order", "where": {"field": "total", "op": "gt", "value": 50},
                                  "times": {"exactly": 2}}));
    assert!(decide(&exactly, &json!({}), &events, NOW).member);
    let idle = segment(json!({"not_performed": "login", "within": "30d"}));
    assert_eq!(decide(&idle, &json!({}), &events, NOW), Verdict { member: true, changes_at: None });
    let first = segment(json!({"first_performed": "order", "before": (NOW - DAY * 5).to_string()}));
    assert!(decide(&first, &json!({}), &events, NOW).member);
    let last = segment(json!({"last_performed": "order", "before": (NOW - DAY * 5).to_string()}));
    assert!(!decide(&last, &json!({}), &events, NOW).member);
}

#[test]
fn email_engagement_is_a_readable_shorthand() {
    let campaign = "cmp_0190c9a0000070008000000000000001";
    let opened = segment(json!({"email": "opened", "campaign_id": campaign, "within": "30d"}));
    assert_eq!(opened.event_names(), BTreeSet::from(["email_opened".to_owned()]));
    let events = [event("email_opened", NOW - DAY, json!({"campaign_id": campaign}))];
    assert!(decide(&opened, &json!({}), &events, NOW).member);
    let other = [event("email_opened", NOW - DAY, json!({"campaign_id": "cmp_other"}))];
    assert!(!decide(&opened, &json!({}), &other, NOW).member);
}

#[test]
fn member_of_reads_the_other_decisions() {
    let (a, b) = (seg_id(1), seg_id(2));
    let nested = segment(json!({"any": [{"member_of": a.to_string()}, {"all": [
        {"field": "plan", "op": "eq", "value": "pro"}, {"not": {"member_of": b.to_string()}}]}]}));
    assert_eq!(nested.references(), BTreeSet::from([a, b]));
    let decide_with = |members: &[SegmentId], plan: &str| {
        let contact = json!({"plan": plan});
        nested
            .evaluate(&Facts {
                contact: &contact,
                events: &[],
                member_of: &|id| members.contains(&id),
                subscribed: &|_| true,
                now: NOW,
            })
            .member
    };
    assert!(decide_with(&[a], "free"));
    assert!(decide_with(&[], "pro"));
    assert!(!decide_with(&[b], "pro"));
}

#[test]
fn topic_tests_read_the_contacts_choices() {
    let (news, updates): (TopicId, TopicId) = (
        "top_0190c9a0000070008000000000000001".parse().expect("a topic id"),
        "top_0190c9a0000070008000000000000002".parse().expect("a topic id"),
    );
    let definition = segment(json!({"all": [{"subscribed_to": news.to_string()},
                                            {"not_subscribed_to": updates.to_string()}]}));
    assert_eq!(definition.topics(), BTreeSet::from([news, updates]));
    assert!(definition.event_names().is_empty());
    let decide_with = |left: &[TopicId]| {
        definition.evaluate(&Facts {
            contact: &json!({}),
            events: &[],
            member_of: &|_| false,
            subscribed: &|topic| !left.contains(&topic),
            now: NOW,
        })
    };
    // A contact who never chose is subscribed to both, so not "not subscribed" to updates.
    assert_eq!(decide_with(&[]), Verdict { member: false, changes_at: None });
    assert_eq!(decide_with(&[updates]), Verdict { member: true, changes_at: None });
    assert!(!decide_with(&[news, updates]).member);
}

#[test]
fn cycles_are_found_and_the_order_follows_references() {
    let (a, b, c) = (seg_id(1), seg_id(2), seg_id(3));
    let mut others: BTreeMap<SegmentId, BTreeSet<SegmentId>> = BTreeMap::new();
    others.insert(b, BTreeSet::from([c]));
    others.insert(c, BTreeSet::from([a]));
    assert_eq!(cycle(a, &BTreeSet::from([b]), &others), Some(vec![a, b, c, a]));
    assert_eq!(cycle(a, &BTreeSet::from([a]), &others), Some(vec![a, a]));
    others.insert(c, BTreeSet::new());
    assert_eq!(cycle(a, &BTreeSet::from([b]), &others), None);
    others.insert(a, BTreeSet::from([b]));
    let order = decision_order(&others);
    let place = |id| order.iter().position(|x| *x == id);
    assert!(place(c) < place(b) && place(b) < place(a), "{order:?}");
}

#[test]
fn bad_definitions_name_the_place() {
    for (definition, path, message) in [
        (json!({"all": [{"field": "plan", "op": "greater", "value": 1}]}), "all[0].op", "unknown operator \"greater\""),
        (json!({"field": "plan", "op": "eq"}), "value", "is required for eq"),
        (json!({"performed": "order", "times": {"at_least": -1}}), "times.at_least", "must be a whole number"),
        (json!({"performed": "order", "within": "soon"}), "within", ""),
        (json!({"not": {"member_of": "cmp_x"}}), "not.member_of", "must be a segment id"),
        (json!({"any": [{"email": "read"}]}), "any[0].email", "must be one of"),
        (json!({"subscribed_to": "news"}), "subscribed_to", "must be a topic id"),
        (json!({"not_subscribed_to": "top_0190c9a0000070008000000000000001", "x": 1}), "x", "unknown key"),
        (json!({"field": "d", "op": "before", "value": "someday"}), "value", "must be a time"),
        (json!({"performed": "order", "where": {"field": "total", "op": "gt"}}), "where.value", "is required"),
        (json!({"first_performed": "order"}), "", "takes one of"),
        (json!({"sometimes": 1}), "sometimes", "unknown test"),
    ] {
        let error = Segment::from_json(&definition).expect_err(&definition.to_string());
        assert_eq!(error.path, path, "{definition}: {error}");
        assert!(error.message.contains(message), "{definition}: {error}");
    }
}

proptest! {
    /// The time a verdict says it holds until is right: just before it the answer is the
    /// same, and (for a single windowed count) at it the answer differs.
    #[test]
    fn a_windowed_count_changes_exactly_when_it_says(
        ages in prop::collection::vec(0u64..20 * 86_400_000, 0..12),
        n in 0u32..6,
        compare in 0usize..3,
    ) {
        let times = [("at_least"), ("at_most"), ("exactly")][compare];
        let definition = segment(json!({"performed": "x", "times": {times: n}, "within": "7d"}));
        let events: Vec<EventFact> =
            ages.iter().map(|age| event("x", NOW - Duration::from_millis(*age), json!({}))).collect();
        let verdict = decide(&definition, &json!({}), &events, NOW);
        match verdict.changes_at {
            Some(at) => {
                prop_assert!(at > NOW);
                let before = decide(&definition, &json!({}), &events, at - Duration::from_millis(1));
                prop_assert_eq!(before.member, verdict.member);
                prop_assert_ne!(decide(&definition, &json!({}), &events, at).member, verdict.member);
            }
            None => {
                // Nothing left to leave the window: the answer is final.
                let later = decide(&definition, &json!({}), &events, NOW + DAY * 30);
                prop_assert_eq!(later.member, verdict.member);
            }
        }
    }
}
