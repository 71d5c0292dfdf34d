//! Audiences: who a message is for beyond one trigger. `topics` are the subscription topics
//! a workspace sends under and each contact's choice per topic. This slice sits after
//! `events/` and before `campaigns/`: campaigns and delivery use it, it uses neither.

pub mod topics;
