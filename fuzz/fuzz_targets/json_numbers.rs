//! Fuzz target for the scan that finds numbers Herald cannot keep as written
//! (`number::first_unkept`): it never panics on any bytes, and it never refuses what
//! serde_json itself writes (the text Herald stores and reads back), whatever value that is.
//!
//! (A raw text may hold an unkept number the parsed value no longer shows: with a duplicate
//! key the last value wins. Refusing it is harmless, so that is not checked.)
//!
//! Input: any bytes, read as a JSON text.

#![no_main]

use herald_domain::number::first_unkept;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let _ = first_unkept(data);
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let written = value.to_string();
    assert_eq!(first_unkept(written.as_bytes()), None, "refuses serde_json's own output: {written}");
});
