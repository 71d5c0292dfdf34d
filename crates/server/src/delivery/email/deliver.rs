//! The delivery job: one queued message, one hand-over to SMTP per claim. The message's new
//! state and the relay's reply are committed with the job's completion right after the relay
//! answers, fenced by the lease. The one window for a duplicate is a process dying (or losing
//! its lease) between the relay's acceptance and that commit: the retried delivery then sends
//! the same message again, with the same `Message-ID`, so receivers can drop it.

use herald_domain::campaign_webhook::message_data;
use herald_domain::job::{JobOutcome, LeasedJob};
use herald_domain::retry::{Attempt, RetrySchedule, Verdict, minutes};
use herald_domain::{CampaignEventKind, DomainStatus, Message, MessageId, MessageStatus, NewJob, Timestamp};
use herald_email::dkim::DkimSigner;
use herald_email::message::{Composed, Mailbox, Outgoing, Unsubscribe, compose};
use herald_email::smtp::SmtpFailure;
use herald_store::StoreError;
use herald_store::email::{DOMAIN_UNVERIFIED, Delivery, from_domain};
use serde::Deserialize;
use std::time::Duration;

use super::Email;
use super::transport::Transport;
use crate::delivery::webhooks::campaign_events::{Occurrence, jobs_for};

const SMTP_DELAYS: [Duration; 8] =
    [Duration::from_secs(30), minutes(1), minutes(2), minutes(4), minutes(8), minutes(16), minutes(32), minutes(60)];

/// Transient SMTP failures are retried with backoff: from 30 s, doubling, at most an hour
/// apart, 10 attempts (about 3 hours in all), then the message fails.
pub const SMTP_RETRY: RetrySchedule =
    RetrySchedule { max_retries: 9, delays: &SMTP_DELAYS, jitter: 0.2, max_retry_after: minutes(60) };

/// A rate-limited send waits at most this long in the job before the job is put back.
const MAX_RATE_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
struct DeliverPayload {
    message: MessageId,
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
        let Ok(DeliverPayload { message: id }) = serde_json::from_value(leased.job.payload.clone()) else {
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
        let decision = self.decide(&message, now).await?;
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
            MessageStatus::Suppressed => CampaignEventKind::EmailSuppressed,
            MessageStatus::Queued | MessageStatus::Held => return Ok(Vec::new()),
        };
        let data = message_data(
            message.id,
            &message.step,
            &message.to,
            &message.subject,
            delivery.status.as_str(),
            delivery.reason.as_deref(),
        );
        let occurrence = Occurrence {
            kind,
            campaign: message.campaign_id,
            contact: message.contact_id,
            journey: Some(message.journey_id),
            data,
            occurrence: message.id.to_string(),
        };
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
            },
            outcome: JobOutcome::Done,
            label,
        };
        if let Some(suppression) = self.store.suppression(workspace, &message.to.to_lowercase()).await? {
            let reason = format!("the address is suppressed ({})", suppression.reason);
            return Ok(finished(MessageStatus::Suppressed, Some(reason), None, "suppressed"));
        }
        let (client, config) = match self.transport(workspace).await? {
            Transport::Smtp { client, config } => (client, config),
            Transport::Outbox => {
                // The workspace's relay was removed after this message was queued.
                let reply = Some("delivered to the embedded outbox: no SMTP transport is configured".to_owned());
                return Ok(finished(MessageStatus::Sent, None, reply, "outbox"));
            }
        };
        let domain_name = from_domain(&message.from);
        let signer = match self.store.domain_key(workspace, &domain_name).await? {
            Some((domain, key)) if domain.status == DomainStatus::Verified => self.signer(&domain, &key),
            _ => return Ok(finished(MessageStatus::Held, Some(DOMAIN_UNVERIFIED.into()), None, "held")),
        };
        let unsubscribe_url = self.unsubscribe_url(workspace, message.contact_id).await?;
        // Signing (RSA above all) is CPU work: off the async threads that also answer requests.
        let owned = message.clone();
        let built =
            tokio::task::spawn_blocking(move || signer.and_then(|s| compose_message(&owned, &s, unsubscribe_url, now)))
                .await
                .unwrap_or_else(|e| Err(format!("building the message failed: {e}")));
        let composed = match built {
            Ok(composed) => composed,
            Err(reason) => return Ok(finished(MessageStatus::Failed, Some(reason), None, "failed")),
        };
        if let Some(wait) = self.rate_wait(&domain_name, config.rate_per_second, config.domain_rate_per_second).await {
            // Over the send rate for longer than a job should wait: try again when a slot frees.
            let delivery = Delivery {
                status: MessageStatus::Queued,
                reason: None,
                reply: None,
                attempts: message.attempts,
                sent_at: None,
            };
            let outcome = JobOutcome::Retry { at: now + wait, error: "send rate limit".into() };
            return Ok(Decision { delivery, outcome, label: "rate_limited" });
        }
        let attempts = message.attempts + 1;
        let sent_at = self.clock.now();
        let sent = client.send(&composed).await.map(|reply| reply.to_string());
        Ok(judge_send(sent, attempts, sent_at, self.clock.now()))
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

/// The message as the relay receives it: signed at `now`, with the one-click unsubscribe headers.
fn compose_message(
    message: &Message,
    signer: &DkimSigner,
    unsubscribe_url: String,
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
        html: message.html.clone(),
        text: message.text.clone(),
        unsubscribe: Some(unsubscribe),
        envelope_from: None,
    };
    compose(&outgoing, Some(signer), now.to_offset_date_time()).map_err(|e| format!("the message cannot be built: {e}"))
}

fn mailbox(text: &str, field: &str) -> Result<Mailbox, String> {
    let parsed = herald_campaign::compile::parse_mailbox(text).map_err(|e| format!("{field}: {e}"))?;
    Ok(Mailbox::new(parsed.name, parsed.address.as_str()))
}

/// What the relay's answer to a send makes of the message: sent; queued again until a later
/// attempt, when the failure is transient and the schedule has retries left; or failed, with
/// the relay's reply.
fn judge_send(sent: Result<String, SmtpFailure>, attempts: u32, sent_at: Timestamp, now: Timestamp) -> Decision {
    let (attempt, reply) = match sent {
        Ok(reply) => (Attempt::Delivered, reply),
        Err(failure) => {
            let reply = match failure.code {
                Some(code) => format!("{code} {}", failure.message),
                None => failure.message.clone(),
            };
            let reason = failure.to_string();
            let attempt = if failure.is_permanent() {
                Attempt::Permanent { reason }
            } else {
                Attempt::Transient { reason, retry_after: None }
            };
            (attempt, reply)
        }
    };
    let delivery = |status, reason, sent_at| Delivery { status, reason, reply: Some(reply.clone()), attempts, sent_at };
    match SMTP_RETRY.judge(attempts.saturating_sub(1), attempt, now, rand::random()) {
        Verdict::Delivered => Decision {
            delivery: delivery(MessageStatus::Sent, None, Some(sent_at)),
            outcome: JobOutcome::Done,
            label: "sent",
        },
        Verdict::Retry { not_before, reason } => Decision {
            delivery: delivery(MessageStatus::Queued, Some(reason.clone()), None),
            outcome: JobOutcome::Retry { at: not_before, error: reason },
            label: "retry",
        },
        Verdict::GiveUp { reason, .. } => Decision {
            delivery: delivery(MessageStatus::Failed, Some(reason), None),
            outcome: JobOutcome::Done,
            label: "failed",
        },
    }
}
