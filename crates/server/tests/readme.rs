//! README.md's `curl` examples, run as written with the real `curl` against a live Herald,
//! in the order the README gives them, so the README cannot drift from the server.
//!
//! The rules, the only liberties taken with the text:
//! - Commands are taken from the ```sh and ```bash blocks; a command goes on while a quote is
//!   open or a line ends with `\`. Commands that start or administer Herald (`cargo …`,
//!   `herald …`, `printf … | herald …`, `NAME=value cargo …`) are not run here: the CLI's own
//!   tests (tests/process.rs, tests/user_cli.rs) run those. Any other command fails the test.
//! - `curl` gets `-sS -w '\n%{http_code}'` added, to read the status; it must be 2xx.
//! - `$KEY` and `$HERALD_ADMIN_TOKEN` are the test server's admin token; `$URL` is the `url`
//!   of the last answer that had one (the source just created); `127.0.0.1:8080` and
//!   `localhost:8080` are the test server's address; a placeholder id such as `cmp_…` is the
//!   last id with that prefix an answer gave.
//! - The SMTP relay of "Sending email" (`smtp.example.com`, port 587, STARTTLS) is the test's
//!   SMTP server on loopback, and DNS questions go to the test's DNS server: a test reaches
//!   nothing beyond this machine.
//! - A `# → {…}` line after a command is the shape of its answer: each key shown must be
//!   there with the value shown, where `…` in a string stands for any text and a bare `…`
//!   for any further keys.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{ADMIN_TOKEN, Backend, spawn_app_with};
use herald_email::testing::dns::DnsServer;
use herald_email::testing::smtp::{SinkOptions, SmtpSink};
use herald_server::delivery::email::EmailSettings;
use serde_json::Value;

const README: &str = include_str!("../../../README.md");

/// One shell command of the README and the answer shape shown after it.
#[derive(Debug)]
struct Example {
    command: String,
    expect: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_curl_example_in_the_readme_works_as_written() {
    let dns = DnsServer::start().await.expect("dns server");
    // The README's relay credentials, so its example logs in as written.
    let auth = Some(("herald".to_owned(), "…".to_owned()));
    let sink = SmtpSink::start_with(SinkOptions { auth, ..SinkOptions::default() }).expect("smtp sink");
    let settings = EmailSettings { dns_resolver: Some(dns.addr()), ..EmailSettings::default() };
    let app = spawn_app_with(Backend::Sqlite, settings).await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let relay = format!(r#""host": "127.0.0.1", "port": {}, "security": "none""#, sink.port());

    let examples = examples(README);
    let mut ran = 0;
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut url = String::new();
    for example in &examples {
        let Some(rest) = example.command.strip_prefix("curl ") else {
            assert!(
                is_herald_itself(&example.command),
                "a README command this test neither runs nor knows: {example:?}"
            );
            continue;
        };
        let mut command = format!("curl -sS -w '\\n%{{http_code}}' {rest}")
            .replace("http://127.0.0.1:8080", &app.address)
            .replace("localhost:8080", &host)
            .replace(r#""host": "smtp.example.com", "port": 587, "security": "starttls""#, &relay);
        for (prefix, id) in &ids {
            command = command.replace(&format!("{prefix}_…"), id);
        }
        let output = tokio::task::spawn_blocking({
            let command = command.clone();
            let url = url.clone();
            move || {
                Command::new("sh")
                    .args(["-c", &command])
                    .env("KEY", ADMIN_TOKEN)
                    .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
                    .env("URL", url)
                    .output()
                    .expect("run sh")
            }
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{command}\nfailed: {}", String::from_utf8_lossy(&output.stderr));
        let (body, status) = stdout.rsplit_once('\n').unwrap();
        assert!(status.starts_with('2'), "{command}\nanswered {status}: {body}");
        let answer: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{command}\nnot JSON ({e}): {body}"));
        if let Some(expect) = &example.expect {
            let expected = shape(&expect.replace("http://127.0.0.1:8080", &app.address));
            assert_fits(&expected, &answer, &command);
        }
        collect_ids(&answer, &mut ids);
        if let Some(id) = answer["id"].as_str() {
            ids.insert(id.split('_').next().unwrap().to_owned(), id.to_owned());
        }
        if let Some(found) = answer["url"].as_str() {
            url = found.to_owned();
        }
        ran += 1;
    }
    assert!(ran >= 10, "ran only {ran} curl examples of {}", examples.len());
    app.stop().await;
}

/// Whether `command` starts or administers Herald rather than calling its API.
fn is_herald_itself(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().skip_while(|w| w.contains('=')).collect();
    matches!(words.first(), Some(&"cargo" | &"herald"))
        || (words.first() == Some(&"printf") && command.contains("| herald "))
}

/// The commands of the README's shell blocks, each with the answer shape after it.
fn examples(readme: &str) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    let mut in_block = false;
    let mut pending: Option<String> = None;
    for line in readme.lines() {
        if !in_block {
            in_block = line == "```sh" || line == "```bash";
            continue;
        }
        if let Some(mut command) = pending.take() {
            command.push('\n');
            command.push_str(line);
            pending = Some(command);
        } else if line.starts_with("```") {
            in_block = false;
            continue;
        } else if let Some(shape) = line.trim_start().strip_prefix("# →") {
            examples.last_mut().expect("a shape after a command").expect = Some(shape.trim().to_owned());
            continue;
        } else if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        } else {
            pending = Some(line.to_owned());
        }
        let command = pending.as_deref().unwrap();
        if is_complete(command) {
            let command = pending.take().unwrap();
            examples.push(Example { command: command.replace("\\\n", " "), expect: None });
        }
    }
    assert!(pending.is_none() && !in_block, "README ends inside a command or a block");
    examples
}

/// Whether `command` ends here: no quote is open and the last line does not end with `\`.
fn is_complete(command: &str) -> bool {
    let (mut single, mut double, mut escaped) = (false, false, false);
    for c in command.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
    }
    !single && !double && !command.ends_with('\\')
}

/// The JSON of a `# →` line: `{"id": "src_…", "state": "draft", …}` with the bare `…` (any
/// further keys) dropped.
fn shape(text: &str) -> Value {
    let start = text.find('{').expect("a JSON object after →");
    let mut depth = 0;
    let mut in_string = false;
    let mut json = String::new();
    let mut chars = text[start..].chars().peekable();
    while let Some(c) = chars.next() {
        json.push(c);
        match c {
            '"' => in_string = !in_string,
            '\\' if in_string => json.extend(chars.next()),
            '{' if !in_string => depth += 1,
            '}' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    let json = json.replace(", …}", "}");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("the shape {json} is not JSON: {e}"))
}

/// Asserts that `answer` has every key of `expected` with its value (`…` in a string of
/// `expected` standing for any text).
fn assert_fits(expected: &Value, answer: &Value, command: &str) {
    for (key, want) in expected.as_object().unwrap() {
        let got = answer.get(key).unwrap_or_else(|| panic!("{command}\nno `{key}` in {answer}"));
        let fits = match (want, got) {
            (Value::String(want), Value::String(got)) if want.contains('…') => matches_pattern(want, got),
            _ => want == got,
        };
        assert!(fits, "{command}\n`{key}` is {got}, the README shows {want}");
    }
}

/// Whether `text` is `pattern` with each `…` standing for any text.
fn matches_pattern(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Remembers every prefixed id of `answer` by its prefix.
fn collect_ids(answer: &Value, ids: &mut HashMap<String, String>) {
    match answer {
        Value::String(s) => {
            if let Some((prefix, rest)) = s.split_once('_')
                && rest.len() == 32
                && rest.bytes().all(|b| b.is_ascii_hexdigit())
            {
                ids.insert(prefix.to_owned(), s.clone());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_ids(v, ids)),
        Value::Object(map) => map.values().for_each(|v| collect_ids(v, ids)),
        _ => {}
    }
}

#[test]
fn the_readme_yields_its_examples() {
    let found = examples("```sh\ncurl -d '{\n  \"a\": 1}' x\n# → {\"a\": \"b_…\", …}\nherald user list\n```\n");
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].command, "curl -d '{\n  \"a\": 1}' x");
    assert_eq!(shape(found[0].expect.as_deref().unwrap()), serde_json::json!({"a": "b_…"}));
    assert!(matches_pattern("http://h/whk_…", "http://h/whk_abc") && !matches_pattern("src_…", "ct_1"));
    assert!(is_herald_itself("HERALD_ADMIN_TOKEN=x cargo run -- serve") && !is_herald_itself("rm -rf x"));
}
