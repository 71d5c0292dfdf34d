//! What a relay's refusal means for the message and for the sending that follows: a hard
//! bounce (the address is refused for good), a throttle (the relay or the recipient's domain
//! asks Herald to slow down: the message waits without spending an attempt), a deferral (a
//! soft bounce in the making: retried with backoff), or a failure that is no bounce at all (the
//! relay refuses Herald's credentials or commands).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use herald_domain::Timestamp;
use herald_email::smtp::SmtpFailure;

/// How a refused send is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A 5xx about the recipient or the message (at RCPT or DATA): a hard bounce.
    Bounce,
    /// 421 or 454 (the relay is busy or limits this client): slow down the relay.
    ThrottleRelay,
    /// 450/451 whose text speaks of rates or limits: slow down the recipient's domain.
    ThrottleDomain,
    /// Any other 4xx, or the connection failing: retried with backoff.
    Deferral,
    /// A permanent failure that says nothing about the address: a 5xx about authentication
    /// (530, 534, 535, 538) or the command syntax (500–504), or lettre refusing what the relay
    /// offers. The message fails; the address is not suppressed.
    Failure,
}

/// Words in a 450/451 reply that make it a rate limit rather than a mailbox problem.
const RATE_WORDS: [&str; 7] = ["rate", "too many", "too quickly", "throttl", "limit", "slow down", "try again in"];

/// Which [`Refusal`] `failure` is. The SMTP client does not say at which command a reply
/// came, so the reply code decides: the codes of the session (authentication, syntax) are
/// failures, every other 5xx a bounce.
pub fn classify(failure: &SmtpFailure) -> Refusal {
    let text = failure.message.to_lowercase();
    match failure.code {
        Some(421 | 454) => Refusal::ThrottleRelay,
        Some(450 | 451) if RATE_WORDS.iter().any(|w| text.contains(w)) => Refusal::ThrottleDomain,
        Some(500..=504 | 530 | 534 | 535 | 538) => Refusal::Failure,
        Some(550..=599) if failure.is_permanent() => Refusal::Bounce,
        _ if failure.is_permanent() => Refusal::Failure,
        _ => Refusal::Deferral,
    }
}

/// The shortest and the longest pause a throttled relay or domain gets.
const FIRST_PAUSE: Duration = Duration::from_secs(60);
const LONGEST_PAUSE: Duration = Duration::from_secs(15 * 60);

/// Relays and recipient domains that asked this node to slow down, each paused until a time
/// that doubles with every throttle in a row (one minute up to fifteen) and resets once a
/// message to it is accepted. Kept per node: each node learns a relay's limits on its own.
#[derive(Debug, Default)]
pub struct Throttles {
    paused: Mutex<HashMap<String, Pause>>,
}

#[derive(Debug, Clone, Copy)]
struct Pause {
    until: Timestamp,
    streak: u32,
}

impl Throttles {
    /// Until when `key` is paused, if it is at `now`.
    pub fn paused_until(&self, key: &str, now: Timestamp) -> Option<Timestamp> {
        let paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        paused.get(key).map(|p| p.until).filter(|until| *until > now)
    }

    /// Pauses `key` after a throttling reply at `now`; returns until when.
    pub fn throttled(&self, key: &str, now: Timestamp) -> Timestamp {
        let mut paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        let pause = paused.entry(key.to_owned()).or_insert(Pause { until: now, streak: 0 });
        pause.streak = pause.streak.saturating_add(1);
        let wait = FIRST_PAUSE.saturating_mul(1 << pause.streak.saturating_sub(1).min(10)).min(LONGEST_PAUSE);
        pause.until = pause.until.max(now + wait);
        pause.until
    }

    /// `key` accepted a message: its next throttle starts from the shortest pause again.
    pub fn accepted(&self, key: &str) {
        let mut paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        paused.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use herald_email::smtp::FailureKind;

    use super::*;

    fn reply(code: u16, message: &str) -> SmtpFailure {
        let kind = if code >= 500 { FailureKind::Permanent } else { FailureKind::Transient };
        SmtpFailure { kind, code: Some(code), message: message.into() }
    }

    #[test]
    fn replies_are_bounces_throttles_deferrals_or_failures() {
        let cases = [
            (550, "5.1.1 No such user", Refusal::Bounce),
            (552, "5.2.2 Mailbox full", Refusal::Bounce),
            (554, "5.7.1 Message rejected as spam", Refusal::Bounce),
            (421, "4.7.0 Too many connections, closing", Refusal::ThrottleRelay),
            (454, "4.7.0 Temporary authentication failure", Refusal::ThrottleRelay),
            (451, "4.7.1 Rate limited, try again later", Refusal::ThrottleDomain),
            (450, "4.2.1 The user you are trying to contact is receiving mail too quickly", Refusal::ThrottleDomain),
            (450, "4.2.1 Too many messages for this recipient", Refusal::ThrottleDomain),
            (451, "4.3.0 Try again later", Refusal::Deferral),
            (452, "4.2.2 Mailbox full", Refusal::Deferral),
            (535, "5.7.8 Authentication credentials invalid", Refusal::Failure),
            (530, "5.7.0 Must issue a STARTTLS command first", Refusal::Failure),
            (502, "5.5.1 Command not implemented", Refusal::Failure),
        ];
        for (code, text, want) in cases {
            assert_eq!(classify(&reply(code, text)), want, "{code} {text}");
        }
        let offline = SmtpFailure { kind: FailureKind::Transient, code: None, message: "connection refused".into() };
        assert_eq!(classify(&offline), Refusal::Deferral);
        let unsupported = SmtpFailure { kind: FailureKind::Permanent, code: None, message: "no STARTTLS".into() };
        assert_eq!(classify(&unsupported), Refusal::Failure);
    }

    #[test]
    fn pauses_double_up_to_a_limit_and_reset_on_acceptance() {
        let throttles = Throttles::default();
        let now = Timestamp::from_unix_millis(1_000_000);
        assert_eq!(throttles.paused_until("relay", now), None);
        let minutes = |n: u64| now + Duration::from_secs(n * 60);
        assert_eq!(throttles.throttled("relay", now), minutes(1));
        assert_eq!(throttles.paused_until("relay", now), Some(minutes(1)));
        assert_eq!(throttles.paused_until("other", now), None);
        assert_eq!(throttles.throttled("relay", now), minutes(2));
        assert_eq!(throttles.throttled("relay", now), minutes(4));
        for _ in 0..10 {
            throttles.throttled("relay", now);
        }
        assert_eq!(throttles.paused_until("relay", now), Some(minutes(15)));
        assert_eq!(throttles.paused_until("relay", minutes(15)), None);
        throttles.accepted("relay");
        assert_eq!(throttles.throttled("relay", minutes(20)), minutes(21));
    }
}
