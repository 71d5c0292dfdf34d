//! Fuzz target for the reading of inbound reports (`herald_email::report::parse`): delivery
//! status notifications, plain-text bounces and ARF complaints arrive from anyone who can
//! reach the mail listener, so no bytes may make it panic, hang or keep more than it should:
//! a diagnostic or feedback type is one line of at most `MAX_DIAGNOSTIC` characters, and
//! reading the same bytes twice gives the same report.
//!
//! Input: any bytes, read as a whole message (headers, then the MIME body). The seeds are
//! the samples beside the parser (`crates/email/src/report/samples/`).

#![no_main]

use herald_email::report::{MAX_DIAGNOSTIC, ReportKind, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = parse(data) else {
        return;
    };
    let text = match &report.kind {
        ReportKind::Bounce { diagnostic, .. } => diagnostic,
        ReportKind::Complaint { feedback_type } => feedback_type,
        ReportKind::Notice { action } => action,
    };
    if !matches!(report.kind, ReportKind::Notice { .. }) {
        assert!(text.chars().count() <= MAX_DIAGNOSTIC, "kept too much: {} characters", text.chars().count());
        assert!(!text.contains(['\r', '\n']), "not one line: {text:?}");
    }
    assert_eq!(parse(data).ok(), Some(report), "the same bytes read twice differ");
});
