//! Fuzz target for the reading of inbound reports (`herald_email::report::parse`): delivery
//! status notifications, plain-text bounces and ARF complaints arrive from anyone who can
//! reach the mail listener, so no bytes may make it panic, hang or keep more than it should:
//! a diagnostic or feedback type is one line of at most `MAX_DIAGNOSTIC` characters, and
//! reading the same bytes twice gives the same report.
//!
//! Input: any bytes, read as a whole message (headers, then the MIME body). The seeds are
//! the samples beside the parser (`crates/email/src/report/samples/`).

#![no_main]

use std::sync::Once;

use herald_email::report::{MAX_DIAGNOSTIC, ReportKind, parse};
use libfuzzer_sys::fuzz_target;

/// libFuzzer's panic hook aborts on every panic, caught or not. mail-parser 0.11.9 has one
/// `debug_assert!` on malformed nesting that `report::guarded` catches (and that release builds
/// compile out); that one panic is let through to the catch, every other still aborts.
fn allow_the_known_debug_assertion() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info.location().is_some_and(|l| l.file().contains("mail-parser"));
            let message = info.payload().downcast_ref::<&str>().copied().unwrap_or_default();
            if !(in_mail_parser && message.starts_with("Invalid part ID")) {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    allow_the_known_debug_assertion();
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
