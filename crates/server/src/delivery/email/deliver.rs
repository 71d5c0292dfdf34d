//! The delivery job: one queued message, one hand-over to SMTP per claim. The message's new
//! state and the relay's reply are committed with the job's completion right after the relay
//! answers, fenced by the lease. The one window for a duplicate is a process dying (or losing
//! its lease) between the relay's acceptance and that commit: the retried delivery then sends
//! the same message again, with the same `Message-ID`, so receivers can drop it.

use herald_domain::campaign_webhook::message_data;
use herald_domain::job::{JobOutcome, LeasedJob};
use herald_domain::retry::{Attempt, GiveUp, RetrySchedule, Verdict, minutes};
use herald_domain::{
    Activity, ActivityKind, BounceKind, BroadcastId, CampaignEventKind, DomainStatus, Message, MessageId,
    MessageStatus, NewJob, Timestamp,
};
use herald_email::dkim::DkimSigner;
use herald_email::message::{Composed, Mailbox, Outgoing, Unsubscribe, compose};
use herald_email::smtp::{SmtpClient, SmtpFailure};
use herald_store::StoreError;
use herald_store::broadcast::BroadcastState;
use herald_store::email::{DOMAIN_UNVERIFIED, Delivery, from_domain};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

use super::activity::{SOFT_BOUNCE_WINDOW, SOFT_BOUNCES_TO_SUPPRESS, suppression};
use super::providers::{Envelope, Provider};
use super::refusals::{Refusal, classify};
use super::transport::Transport;
use super::{Email, bounces};
use crate::delivery::webhooks::campaign_events::{Occurrence, jobs_for};

const SMTP_DELAYS: [Duration; 10] = [
    Duration::from_secs(30),
    minutes(1),
    minutes(2),
    minutes(4),
    minutes(8),
    minutes(16),
    minutes(32),
    minutes(60),
    minutes(120),
    minutes(240),
];

/// Deferred sends (4xx, a lost connection) are retried with backoff: from 30 s, doubling, at
/// most four hours apart, until [`SMTP_GIVE_UP_AFTER`]; then the message fails as a soft
/// bounce. The attempt budget is only a backstop: the deadline comes first.
pub const SMTP_RETRY: RetrySchedule =
    RetrySchedule { max_retries: 60, delays: &SMTP_DELAYS, jitter: 0.2, max_retry_after: minutes(60) };

/// How long after its message was queued a deferred send is still retried.
pub const SMTP_GIVE_UP_AFTER: Duration = Duration::from_secs(72 * 3600);

/// A rate-limited send waits at most this long in the job before the job is put back.
const MAX_RATE_WAIT: Duration = Duration::from_secs(2);

/// How long a message of a paused broadcast waits before its job looks again (a resume
/// normally brings it back first: it sets the due times of the held messages).
const PAUSED_RECHECK: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
struct DeliverPayload {
    message: MessageId,
    /// The broadcast the message is part of: held while it is paused.
    #[serde(default)]
    broadcast: Option<BroadcastId>,
}

/// Who a message is handed to.
enum Handover {
    Smtp(SmtpClient),
    Provider(Arc<Provider>),
}

/// What to record for one run.
struct Decision {
    delivery: Delivery,
    outcome: JobOutcome,
    label: &'static str,
}

impl Email {
    /// Runs one delivery job; returns the outcome's metric label.
    pub async fn deliver(&self, leased: &LeasedJob) -> Result<&'static str, StoreError> {
        let workspace = leased.job.workspace_id;
        let now = self.clock.now();
        let Ok(DeliverPayload { message: id, broadcast }) = serde_json::from_value(leased.job.payload.clone()) else {
            let error = "the job's payload names no message".to_owned();
            self.store.finish_job(workspace, &leased.lease, &JobOutcome::Dead { error }, now).await?;
            return Ok("dead");
        };
        let message = match self.store.get_message(workspace, id).await {
            Ok(message) if message.status == MessageStatus::Queued => message,
            // Deleted with its contact or campaign, or already delivered by an earlier claim.
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                self.store.finish_job(workspace, &leased.lease, &JobOutcome::Done, now).await?;
                return Ok("done");
            }
            Err(e) => return Err(e),
        };
        if let Some(broadcast) = broadcast
            && self.store.get_broadcast(workspace, broadcast).await?.state == BroadcastState::Paused
        {
            let outcome = JobOutcome::Retry { at: now + PAUSED_RECHECK, error: "the broadcast is paused".into() };
            self.store.finish_job(workspace, &leased.lease, &outcome, now).await?;
            return Ok("held");
        }
        let mut decision = self.decide(&message, now).await?;
        self.suppress_repeated_soft_bounces(&message, &mut decision).await?;
        decision.delivery.activity = delivery_activity(&message, &decision.delivery, now);
        let follow_up = self.hook_jobs(&message, &decision.delivery, now).await?;
        self.store
            .record_delivery(workspace, &leased.lease, id, &decision.delivery, &decision.outcome, &follow_up, now)
            .await?;
        metrics::counter!("herald_email_deliveries_total", "status" => decision.label).increment(1);
        Ok(match decision.outcome {
            JobOutcome::Done => "done",
            JobOutcome::Retry { .. } => "retry",
            JobOutcome::Dead { .. } => "dead",
        })
    }

    /// The campaign event webhook calls a delivery result fires, committed with it.
    async fn hook_jobs(
        &self,
        message: &Message,
        delivery: &Delivery,
        now: Timestamp,
    ) -> Result<Vec<NewJob>, StoreError> {
        let kind = match delivery.status {
            MessageStatus::Sent => CampaignEventKind::EmailSent,
            MessageStatus::Failed => CampaignEventKind::EmailFailed,
            MessageStatus::Bounced => CampaignEventKind::EmailBounced,
            MessageStatus::Suppressed => CampaignEventKind::EmailSuppressed,
            MessageStatus::Queued | MessageStatus::Held | MessageStatus::Delivered | MessageStatus::Complained => {
                return Ok(Vec::new());
            }
        };
        let data = message_data(
            message.id,
            &message.step,
            &message.to,
            &message.subject,
            delivery.status.as_str(),
            delivery.reason.as_deref(),
        );
        self.message_hooks(message, kind, data, message.id.to_string(), now).await
    }

    /// The calls of the campaign event webhooks that listen to `kind`, for an event of
    /// `message` carrying `data`; `occurrence` tells this event from others of its kind (a
    /// repeated job makes no second call for the same one).
    pub(super) async fn message_hooks(
        &self,
        message: &Message,
        kind: CampaignEventKind,
        data: serde_json::Value,
        occurrence: String,
        now: Timestamp,
    ) -> Result<Vec<NewJob>, StoreError> {
        // Campaign event webhooks are a campaign's: a transactional message has none.
        let Some(campaign) = message.campaign_id else { return Ok(Vec::new()) };
        let occurrence =
            Occurrence { kind, campaign, contact: message.contact_id, journey: message.journey_id, data, occurrence };
        jobs_for(&self.store, message.workspace_id, occurrence, now).await
    }

    async fn decide(&self, message: &Message, now: Timestamp) -> Result<Decision, StoreError> {
        let workspace = message.workspace_id;
        let finished = |status, reason: Option<String>, reply: Option<String>, label| Decision {
            delivery: Delivery {
                status,
                reason,
                reply,
                attempts: message.attempts,
                sent_at: (status == MessageStatus::Sent).then_some(now),
                bounce: None,
                suppress: None,
                activity: None,
            },
            outcome: JobOutcome::Done,
            label,
        };
        if let Some(suppression) = self.store.suppression(workspace, &message.to.to_lowercase()).await? {
            let reason = format!("the address is suppressed ({})", suppression.reason);
            return Ok(finished(MessageStatus::Suppressed, Some(reason), None, "suppressed"));
        }
        // Left the message's topic while it waited.
        if let Some(topic) = message.topic
            && !self.store.is_subscribed(workspace, message.contact_id, topic).await?
        {
            return Ok(finished(
                MessageStatus::Suppressed,
                Some(herald_domain::topic::left_topic_reason(topic)),
                None,
                "suppressed",
            ));
        }
        let (handover, rate, domain_rate) = match self.transport(workspace).await? {
            Transport::Smtp { client, config } => {
                (Handover::Smtp(client), config.rate_per_second, config.domain_rate_per_second)
            }
            Transport::Provider(provider) => (Handover::Provider(provider), None, None),
            Transport::Outbox => {
                // The workspace's relay was removed after this message was queued.
                let reply = Some("delivered to the embedded outbox: no SMTP transport is configured".to_owned());
                return Ok(finished(MessageStatus::Sent, None, reply, "outbox"));
            }
        };
        let domain_name = from_domain(&message.from);
        let (signer, return_path) = match self.store.domain_key(workspace, &domain_name).await? {
            Some((domain, key)) if domain.status == DomainStatus::Verified => {
                (self.signer(&domain, &key), bounces::receives_bounces(&domain))
            }
            _ => return Ok(finished(MessageStatus::Held, Some(DOMAIN_UNVERIFIED.into()), None, "held")),
        };
        // A paused relay or domain: wait before spending any work on the message.
        let relay = format!("relay of {workspace}");
        let recipient_domain = format!("{workspace} {}", from_domain(&message.to));
        if let Some(until) =
            [&relay, &recipient_domain].into_iter().filter_map(|key| self.throttles.paused_until(key, now)).max()
        {
            let reason = "throttled: the receiving side asked to slow down".to_owned();
            return Ok(wait_without_attempt(message, until, reason, None));
        }
        let unsubscribe_url = self.unsubscribe_url(workspace, message.contact_id, message.topic).await?;
        let token = self.return_token(workspace, message.id).await?;
        let envelope_from = return_path.then(|| bounces::token::address(&token, &domain_name));
        let list_headers = super::list_headers(&unsubscribe_url, &message.from);
        // The HTML as sent: with its links and open pixel tracked when the step tracks them.
        let html = match self.tracker(message).await? {
            Some(tracker) => tracker.html(message, &unsubscribe_url),
            None => message.html.clone(),
        };
        // Signing (RSA above all) is CPU work: off the async threads that also answer requests.
        let (owned, sent_html) = (message.clone(), html.clone());
        let built = tokio::task::spawn_blocking(move || {
            let return_path = (envelope_from, token);
            signer.and_then(|s| compose_message(&owned, &s, unsubscribe_url, return_path, sent_html, now))
        })
        .await
        .unwrap_or_else(|e| Err(format!("building the message failed: {e}")));
        let composed = match built {
            Ok(composed) => composed,
            Err(reason) => return Ok(finished(MessageStatus::Failed, Some(reason), None, "failed")),
        };
        if let Some(wait) = self.rate_wait(&domain_name, rate, domain_rate).await {
            // Over the send rate for longer than a job should wait: try again when a slot frees.
            let mut decision = wait_without_attempt(message, now + wait, "send rate limit".into(), None);
            if decision.delivery.status == MessageStatus::Queued {
                decision.delivery.reason = None;
                decision.label = "rate_limited";
            }
            return Ok(decision);
        }
        let sent_at = self.clock.now();
        let client = match handover {
            Handover::Smtp(client) => client,
            Handover::Provider(provider) => {
                let envelope = Envelope { message, composed: &composed, html: &html, list_headers };
                let (attempt, reply) = provider.send(&self.http, &envelope, sent_at.to_offset_date_time()).await;
                return Ok(judge(message, attempt, None, reply, sent_at, self.clock.now()));
            }
        };
        let sent = client.send(&composed).await.map(|reply| reply.to_string());
        let now = self.clock.now();
        let throttle_key = match &sent {
            Ok(_) => {
                self.throttles.accepted(&relay);
                self.throttles.accepted(&recipient_domain);
                None
            }
            Err(failure) => match classify(failure) {
                Refusal::ThrottleRelay => Some(&relay),
                Refusal::ThrottleDomain => Some(&recipient_domain),
                _ => None,
            },
        };
        if let (Some(key), Err(failure)) = (throttle_key, &sent) {
            // A request to slow down costs no attempt: the message waits out the pause.
            let until = self.throttles.throttled(key, now);
            return Ok(wait_without_attempt(
                message,
                until,
                format!("throttled: {failure}"),
                Some(reply_line(failure)),
            ));
        }
        Ok(judge_send(message, sent, sent_at, now))
    }

    /// A soft bounce suppresses its address when it is the third within seven days, whichever
    /// way the message ran out of time (deferred by the relay, or kept waiting by a throttle).
    async fn suppress_repeated_soft_bounces(
        &self,
        message: &Message,
        decision: &mut Decision,
    ) -> Result<(), StoreError> {
        if decision.delivery.bounce != Some(BounceKind::Soft) {
            return Ok(());
        }
        let now = self.clock.now();
        let earlier = self.store.soft_bounces(message.workspace_id, &message.to, now - SOFT_BOUNCE_WINDOW).await?;
        if earlier + 1 >= SOFT_BOUNCES_TO_SUPPRESS {
            let detail = format!("{} soft bounces within 7 days, the last of message {}", earlier + 1, message.id);
            decision.delivery.suppress = Some(suppression(message, "soft_bounce", detail, now));
        }
        Ok(())
    }

    /// `None` when a send may go now (after waiting for the slots reserved in the node's and
    /// the domain's send rates), else how long until one may, when that is longer than a job
    /// should wait (nothing is then reserved).
    async fn rate_wait(&self, domain: &str, rate: Option<u32>, domain_rate: Option<u32>) -> Option<Duration> {
        let now = self.clock.now();
        let mut limits: Vec<(String, u32)> = Vec::new();
        limits.extend(rate.or(self.settings.rate_per_second).map(|r| (String::new(), r)));
        limits.extend(domain_rate.map(|r| (domain.to_owned(), r)));
        let mut wait = Duration::ZERO;
        for (taken, (key, rate)) in limits.iter().enumerate() {
            match self.limits.reserve(key.clone(), *rate, now, MAX_RATE_WAIT) {
                Ok(slot) => wait = wait.max(slot),
                Err(later) => {
                    // Give back what was reserved in the limits before this one.
                    for (key, rate) in &limits[..taken] {
                        self.limits.release(key.clone(), *rate);
                    }
                    return Some(later.saturating_sub(MAX_RATE_WAIT).max(Duration::from_millis(100)));
                }
            }
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        None
    }
}

/// The message as the relay receives it: signed at `now`, with the one-click unsubscribe
/// headers, the return-path token in `X-Herald-Message`, the return path (when the domain
/// receives bounces) as the envelope sender, and `html` (tracked or as written) as its HTML.
fn compose_message(
    message: &Message,
    signer: &DkimSigner,
    unsubscribe_url: String,
    (envelope_from, token): (Option<String>, String),
    html: String,
    now: Timestamp,
) -> Result<Composed, String> {
    let from = mailbox(&message.from, "from")?;
    let reply_to = message.reply_to.as_deref().map(|r| mailbox(r, "reply_to")).transpose()?;
    let unsubscribe = Unsubscribe { url: unsubscribe_url, mailto: Some(super::unsubscribe_mailto(&from.address)) };
    let outgoing = Outgoing {
        message_id: message.internet_message_id.clone(),
        date: message.created_at.to_offset_date_time(),
        from,
        to: Mailbox::new(None::<String>, message.to.clone()),
        reply_to,
        subject: message.subject.clone(),
        html,
        text: message.text.clone(),
        unsubscribe: Some(unsubscribe),
        envelope_from,
        herald_token: Some(token),
    };
    compose(&outgoing, Some(signer), now.to_offset_date_time()).map_err(|e| format!("the message cannot be built: {e}"))
}

fn mailbox(text: &str, field: &str) -> Result<Mailbox, String> {
    let parsed = herald_campaign::compile::parse_mailbox(text).map_err(|e| format!("{field}: {e}"))?;
    Ok(Mailbox::new(parsed.name, parsed.address.as_str()))
}

/// Trying again at `until` without spending an attempt (a throttle, the send rate), unless
/// that is past the message's deadline: then it fails as a soft bounce.
fn wait_without_attempt(message: &Message, until: Timestamp, reason: String, reply: Option<String>) -> Decision {
    let (status, reason, outcome, bounce, label) = if until > message.created_at + SMTP_GIVE_UP_AFTER {
        let reason = format!("gave up after {} attempts: {reason}", message.attempts);
        (MessageStatus::Failed, reason, JobOutcome::Done, Some(BounceKind::Soft), "failed")
    } else {
        let outcome = JobOutcome::Retry { at: until, error: reason.clone() };
        (MessageStatus::Queued, reason, outcome, None, "throttled")
    };
    let delivery = Delivery {
        status,
        reason: Some(reason),
        reply,
        attempts: message.attempts,
        sent_at: None,
        bounce,
        suppress: None,
        activity: None,
    };
    Decision { delivery, outcome, label }
}

/// What a delivery result is as an activity of the message: sent, or bounced (hard, or soft
/// when deferrals ran out).
fn delivery_activity(message: &Message, delivery: &Delivery, now: Timestamp) -> Option<Activity> {
    let source = if message.transport == "outbox" { "outbox" } else { "smtp" };
    let kind = match (delivery.status, delivery.bounce) {
        (MessageStatus::Sent, _) => ActivityKind::Sent,
        (MessageStatus::Bounced, _) | (MessageStatus::Failed, Some(BounceKind::Soft)) => ActivityKind::Bounced,
        _ => return None,
    };
    let mut activity = Activity::new(message.id, kind, source, delivery.sent_at.unwrap_or(now));
    if kind == ActivityKind::Bounced {
        activity.bounce = delivery.bounce.or(Some(BounceKind::Hard));
        activity.reason = delivery.reply.clone().or_else(|| delivery.reason.clone());
    }
    Some(activity)
}

/// The relay's reply as one line: the code, then the text.
fn reply_line(failure: &SmtpFailure) -> String {
    match failure.code {
        Some(code) => format!("{code} {}", failure.message),
        None => failure.message.clone(),
    }
}

/// What the relay's answer to a send makes of the message: sent; bounced (a hard bounce: the
/// address is suppressed); queued again until a later attempt, when the failure is a deferral
/// and the deadline allows; or failed, with the relay's reply (a soft bounce when deferrals
/// ran out).
fn judge_send(message: &Message, sent: Result<String, SmtpFailure>, sent_at: Timestamp, now: Timestamp) -> Decision {
    let (attempt, refusal, reply) = match sent {
        Ok(reply) => (Attempt::Delivered, None, reply),
        Err(failure) => {
            let reason = failure.to_string();
            let refusal = classify(&failure);
            let attempt = match refusal {
                Refusal::Bounce | Refusal::Failure => Attempt::Permanent { reason },
                Refusal::Deferral | Refusal::ThrottleRelay | Refusal::ThrottleDomain => {
                    Attempt::Transient { reason, retry_after: None }
                }
            };
            (attempt, Some(refusal), reply_line(&failure))
        }
    };
    judge(message, attempt, refusal, reply, sent_at, now)
}

/// What an attempt makes of the message. `refusal` is the SMTP class of a refusal (only a
/// `Bounce` suppresses the address); `reply` is the transport's answer, kept on the message.
fn judge(
    message: &Message,
    attempt: Attempt,
    refusal: Option<Refusal>,
    reply: String,
    sent_at: Timestamp,
    now: Timestamp,
) -> Decision {
    let attempts = message.attempts + 1;
    let deadline = message.created_at + SMTP_GIVE_UP_AFTER;
    let verdict = SMTP_RETRY.judge(attempts - 1, attempt, now, rand::random()).within(deadline, attempts);
    let delivery = |status, reason, bounce| Delivery {
        status,
        reason,
        reply: Some(reply.clone()),
        attempts,
        sent_at: (status == MessageStatus::Sent).then_some(sent_at),
        bounce,
        suppress: None,
        activity: None,
    };
    match verdict {
        Verdict::Delivered => {
            Decision { delivery: delivery(MessageStatus::Sent, None, None), outcome: JobOutcome::Done, label: "sent" }
        }
        Verdict::Retry { not_before, reason } => Decision {
            delivery: delivery(MessageStatus::Queued, Some(reason.clone()), None),
            outcome: JobOutcome::Retry { at: not_before, error: reason },
            label: "retry",
        },
        Verdict::GiveUp { reason, why: GiveUp::Permanent } if refusal == Some(Refusal::Bounce) => {
            let mut delivery = delivery(MessageStatus::Bounced, Some(reason), Some(BounceKind::Hard));
            delivery.suppress = Some(suppression(message, "hard_bounce", reply.clone(), now));
            Decision { delivery, outcome: JobOutcome::Done, label: "bounced" }
        }
        Verdict::GiveUp { reason, why } => {
            let bounce = (why == GiveUp::Exhausted).then_some(BounceKind::Soft);
            Decision {
                delivery: delivery(MessageStatus::Failed, Some(reason), bounce),
                outcome: JobOutcome::Done,
                label: "failed",
            }
        }
    }
}
