//! Audiences: who a message can reach, kept as the contacts and their events change. It sits
//! after `contacts/` and `events/` and before `campaigns/` in the data flow: campaigns (their
//! segment triggers, the evaluation job) use it; it uses no later stage.
//!
//! `segments`: saved conditions over contacts, with members kept current as events commit,
//! attributes change and time passes.

pub mod segments;
