//! Herald's signatures checked by an independent implementation: the `standardwebhooks`
//! package from PyPI for Standard Webhooks, Python's `hmac` for Herald's `v0` scheme (see
//! `verify_standard_webhooks.py`). The interpreter is `$HERALD_TEST_PYTHON`, else `python3`;
//! it must have `standardwebhooks` installed.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use herald_webhook::sign::{SigningKey, sign};
use serde_json::{Value, json};

const BODY: &str =
    r#"{"event":"trial_started","contact":{"email":"ada@example.com","name":"Ada Lovelace"},"note":"ünïcödé ✓"}"#;

fn python() -> String {
    std::env::var("HERALD_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn run_verifier(input: &Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_standard_webhooks.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} (set HERALD_TEST_PYTHON): {e}", python()));
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the verifier failed (is standardwebhooks installed for {}?):\n{}",
        python(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn headers_json(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}

fn now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

struct Case {
    name: &'static str,
    secret: String,
    headers: BTreeMap<String, String>,
    body: String,
    standard: bool,
    v0: bool,
}

#[test]
fn independent_implementations_verify_herald_signatures() {
    let current = SigningKey::generate();
    let previous = SigningKey::generate();
    let stranger = SigningKey::generate();
    let timestamp = now();
    let webhook_id = "msg_2xKq7bVfD3mYk1";

    let single = sign(std::slice::from_ref(&current), webhook_id, timestamp, BODY.as_bytes()).into_pairs();
    let rotating = sign(&[current.clone(), previous.clone()], webhook_id, timestamp, BODY.as_bytes()).into_pairs();
    // The headers as sent, with some values replaced.
    let with = |pairs: &[(String, String)], changes: &[(&str, String)]| {
        let mut headers = headers_json(pairs);
        for (name, value) in changes {
            headers.insert((*name).to_owned(), value.clone());
        }
        headers
    };

    let cases = vec![
        Case {
            name: "one key",
            secret: current.to_standard_secret(),
            headers: headers_json(&single),
            body: BODY.to_owned(),
            standard: true,
            v0: true,
        },
        Case {
            name: "rotation, receiver has the new key",
            secret: current.to_standard_secret(),
            headers: headers_json(&rotating),
            body: BODY.to_owned(),
            standard: true,
            v0: true,
        },
        Case {
            name: "rotation, receiver still has the old key",
            secret: previous.to_standard_secret(),
            headers: headers_json(&rotating),
            body: BODY.to_owned(),
            standard: true,
            v0: true,
        },
        Case {
            name: "someone else's key",
            secret: stranger.to_standard_secret(),
            headers: headers_json(&rotating),
            body: BODY.to_owned(),
            standard: false,
            v0: false,
        },
        Case {
            name: "tampered body",
            secret: current.to_standard_secret(),
            headers: headers_json(&single),
            body: BODY.replace("Ada", "Eve"),
            standard: false,
            v0: false,
        },
        Case {
            name: "one byte of white space added",
            secret: current.to_standard_secret(),
            headers: headers_json(&single),
            body: format!("{BODY} "),
            standard: false,
            v0: false,
        },
        Case {
            name: "tampered timestamps",
            secret: current.to_standard_secret(),
            headers: with(
                &single,
                &[
                    ("webhook-timestamp", (timestamp + 1).to_string()),
                    ("X-Herald-Timestamp", (timestamp + 1).to_string()),
                ],
            ),
            body: BODY.to_owned(),
            standard: false,
            v0: false,
        },
        Case {
            // The message id is signed by Standard Webhooks only.
            name: "tampered webhook-id",
            secret: current.to_standard_secret(),
            headers: with(&single, &[("webhook-id", "msg_other".to_owned())]),
            body: BODY.to_owned(),
            standard: false,
            v0: true,
        },
        Case {
            name: "signed an hour ago (a replay)",
            secret: current.to_standard_secret(),
            headers: headers_json(
                &sign(std::slice::from_ref(&current), webhook_id, timestamp - 3600, BODY.as_bytes()).into_pairs(),
            ),
            body: BODY.to_owned(),
            standard: false,
            v0: false,
        },
    ];

    // A fixed key, timestamp and id: Python computes both signatures from scratch.
    let fixed = SigningKey::from_secret("fixed", (0u8..32).collect::<Vec<_>>());
    let known = sign(std::slice::from_ref(&fixed), "msg_2b7kQ", 1_700_000_000, BODY.as_bytes());

    let input = json!({
        "known_answer": {
            "secret": fixed.to_standard_secret(),
            "msg_id": "msg_2b7kQ",
            "timestamp": 1_700_000_000,
            "body": BODY,
        },
        "cases": cases.iter().map(|c| json!({"secret": c.secret, "headers": c.headers, "body": c.body})).collect::<Vec<_>>(),
    });
    let output = run_verifier(&input);

    assert_eq!(output["known_answer"]["v0"], json!(known.herald_signature));
    assert_eq!(output["known_answer"]["v1"], json!(known.webhook_signature));

    let results = output["results"].as_array().unwrap();
    assert_eq!(results.len(), cases.len());
    for (case, result) in cases.iter().zip(results) {
        assert_eq!(result["standard"], json!(case.standard), "{}: standardwebhooks said {result}", case.name);
        assert_eq!(result["v0"], json!(case.v0), "{}: Python hmac said {result}", case.name);
    }
}

#[test]
fn every_request_header_is_present_and_consistent() {
    let key = SigningKey::generate();
    let pairs = sign(std::slice::from_ref(&key), "msg_1", 1_700_000_000, b"{}").into_pairs();
    let names: Vec<&str> = pairs.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "X-Herald-Timestamp",
            "X-Herald-Signature",
            "Idempotency-Key"
        ]
    );
    let get = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap();
    assert_eq!(get("Idempotency-Key"), get("webhook-id"));
    assert_eq!(get("X-Herald-Timestamp"), get("webhook-timestamp"));
    assert!(get("webhook-signature").starts_with("v1,"));
    assert_eq!(get("X-Herald-Signature").len(), 64);
}
