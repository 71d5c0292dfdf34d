//! Delivery: the last stage, where campaign steps leave Herald. `email` hands messages to SMTP
//! (or the outbox) and keeps sending domains, transports, suppressions and unsubscribe links;
//! `webhooks` makes signed outbound calls (journey steps, saved actions, campaign event
//! webhooks) with retries and endpoint health. Both are shaped alike: the jobs and use cases at
//! the top, the JSON handlers under `api/`, the UI pages beside them. `broadcasts` writes one
//! email per contact of an audience and hands each to the email delivery job.

pub mod broadcasts;
pub mod email;
pub mod webhooks;
