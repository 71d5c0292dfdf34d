//! Fuzz target for unsubscribe tokens (the preference page's and one-click's key):
//! `Claim::parse` on any text, and `verify` of what it reads, never panic; a token made here
//! from the input's bytes reads back as what it names, verifies under its secret and under no
//! other, and stops verifying when one of its characters changes.
//!
//! Input layout (see `fuzz/seeds/unsubscribe_token/` for examples): the whole input, as text,
//! is a token to read. When it is 48 bytes or more, bytes 0–15, 16–31 and 32–47 are also the
//! workspace, contact and topic of a token to make (no topic when byte 48 is even or absent),
//! under the secret that is the rest.

#![no_main]

use herald_domain::signed::unsubscribe::{Claim, token};
use herald_domain::{ContactId, TopicId, WorkspaceId};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

fn uuid(bytes: &[u8]) -> Uuid {
    Uuid::from_slice(bytes).unwrap_or_else(|_| unreachable!("16 bytes"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(claim) = Claim::parse(text)
    {
        let _ = claim.verify(b"a secret");
    }
    if data.len() < 48 {
        return;
    }
    let workspace = WorkspaceId::from_uuid(uuid(&data[..16]));
    let contact = ContactId::from_uuid(uuid(&data[16..32]));
    let topic = data.get(48).filter(|b| *b % 2 == 1).map(|_| TopicId::from_uuid(uuid(&data[32..48])));
    let secret = &data[48..];
    let made = token(secret, workspace, contact, topic);
    let claim = Claim::parse(&made).expect("a token made here reads");
    assert_eq!((claim.workspace, claim.contact, claim.topic), (workspace, contact, topic));
    assert!(claim.verify(secret));
    // Not a zero byte more: HMAC pads short keys with zeros, so `k` and `k\0` are one key.
    let other: Vec<u8> = secret.iter().copied().chain([1]).collect();
    assert!(!claim.verify(&other), "verified under another secret");
    // Change one character of the token to another of the alphabet.
    let at = usize::from(data[0]) % made.len();
    let mut changed: Vec<u8> = made.clone().into_bytes();
    changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).unwrap_or_else(|_| unreachable!("base64url is ASCII"));
    if let Some(altered) = Claim::parse(&changed) {
        assert!(!altered.verify(secret), "an altered token verified");
    }
});
