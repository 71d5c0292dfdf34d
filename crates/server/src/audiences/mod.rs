//! Audiences: who a message can reach, kept as contacts, their events and their choices
//! change. It sits after `contacts/` and `events/` and before `campaigns/` in the data flow:
//! campaigns (their segment triggers, the evaluation job, topic checks) and delivery use it; it
//! uses no later stage.
//!
//! `segments`: saved conditions over contacts, with members kept current as events commit,
//! attributes change and time passes. `topics`: the subscription topics a workspace sends
//! under and each contact's choice per topic.

pub mod segments;
pub mod topics;
