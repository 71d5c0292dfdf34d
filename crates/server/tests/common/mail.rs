//! Reading the mail the SMTP sink received, with Python's email package: never Herald's own
//! code.

use std::process::{Command, Stdio};

use serde_json::Value;

/// A header as Python's email package decodes it (RFC 2047 and all).
pub fn decoded_headers(message: &[u8]) -> Value {
    let script = "import email, email.policy, json, sys\n\
                  m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)\n\
                  parts = [p.get_content_type() for p in m.walk()]\n\
                  text = m.get_body(('plain',)).get_content()\n\
                  html = m.get_body(('html',)).get_content()\n\
                  print(json.dumps({k: str(m[k]) for k in m.keys()} | {'parts': parts, 'text': text, 'html': html}))";
    let mut child = Command::new(herald_email::testing::python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), message).expect("write");
    let output = child.wait_with_output().expect("python");
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).expect("json")
}
