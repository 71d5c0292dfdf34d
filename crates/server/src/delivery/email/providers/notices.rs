//! Providers' notifications read into what happened to which message, after their signature
//! (or Basic auth) is checked: Postmark's `RecordType` Bounce / SpamComplaint / Delivery,
//! Resend's `email.delivered` / `email.bounced` / `email.complained`, and SES's Bounce /
//! Complaint / Delivery inside an SNS notification. Anything else is ignored, not refused.

use herald_store::StoreError;
use serde_json::Value;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::web::error::ApiError;

/// What a notification reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind {
    Delivered,
    Bounced { hard: bool },
    Complained,
}

/// One event of a notification, naming its message by the Herald id the send carried
/// (`herald_id`) or by our `Message-ID` (`internet_id`, without angle brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub herald_id: Option<String>,
    pub internet_id: Option<String>,
    pub kind: NoticeKind,
    /// A bounce's diagnostic or a complaint's feedback type.
    pub reason: Option<String>,
    /// The provider's id of this event: a repeat is recognised by it.
    pub key: String,
    /// When it happened, as the provider says (`None`: it does not say).
    pub occurred_at: Option<OffsetDateTime>,
}

fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// An RFC 3339 time.
fn time(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()
}

fn bare(message_id: Option<String>) -> Option<String> {
    message_id.map(|id| id.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
}

/// Whether the Basic auth of a Postmark notification carries the workspace's password
/// (compared in constant time; the user name is not checked).
pub fn postmark_authorized(authorization: Option<&str>, password: &str) -> bool {
    use base64::Engine;
    let Some(encoded) = authorization.and_then(|a| a.strip_prefix("Basic ")) else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
    let given = decoded.splitn(2, |b| *b == b':').nth(1).unwrap_or_default();
    !password.is_empty() && bool::from(given.ct_eq(password.as_bytes()))
}

/// A Postmark webhook body.
pub fn postmark(body: &Value) -> Option<Notice> {
    let kind = match body["RecordType"].as_str()? {
        "Delivery" => NoticeKind::Delivered,
        // Postmark's hard bounces are `HardBounce` (and a few permanent kinds); the rest are soft.
        "Bounce" => NoticeKind::Bounced {
            hard: matches!(body["Type"].as_str(), Some("HardBounce" | "BadEmailAddress" | "ManuallyDeactivated")),
        },
        "SpamComplaint" => NoticeKind::Complained,
        _ => return None,
    };
    let reason = match kind {
        NoticeKind::Bounced { .. } => text(&body["Details"]).or_else(|| text(&body["Description"])),
        NoticeKind::Complained => Some("abuse".to_owned()),
        NoticeKind::Delivered => None,
    };
    let id = body.get("ID").map(|id| id.to_string()).unwrap_or_default();
    let message = text(&body["MessageID"]).unwrap_or_default();
    Some(Notice {
        herald_id: text(&body["Metadata"][super::MESSAGE_TAG]),
        internet_id: None,
        kind,
        reason,
        key: format!("postmark:{}:{message}:{id}", body["RecordType"].as_str().unwrap_or_default()),
        occurred_at: time(&body["BouncedAt"]).or_else(|| time(&body["DeliveredAt"])),
    })
}

/// A Resend webhook body; `event_id` is its `svix-id` / `webhook-id` header.
pub fn resend(body: &Value, event_id: &str) -> Option<Notice> {
    let data = &body["data"];
    let kind = match body["type"].as_str()? {
        "email.delivered" => NoticeKind::Delivered,
        "email.bounced" => NoticeKind::Bounced { hard: data["bounce"]["type"].as_str() != Some("Transient") },
        "email.complained" => NoticeKind::Complained,
        _ => return None,
    };
    let reason = match kind {
        NoticeKind::Bounced { .. } => text(&data["bounce"]["message"]),
        NoticeKind::Complained => Some("abuse".to_owned()),
        NoticeKind::Delivered => None,
    };
    let tags = &data["tags"];
    // Resend has sent tags both as an object and as a list of {name, value}.
    let herald_id = text(&tags[super::MESSAGE_TAG])
        .or_else(|| tags.as_array()?.iter().find(|t| t["name"] == super::MESSAGE_TAG).and_then(|t| text(&t["value"])));
    let internet_id = data["headers"].as_array().and_then(|headers| {
        headers.iter().find(|h| h["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("message-id")))
    });
    Some(Notice {
        herald_id,
        internet_id: bare(internet_id.and_then(|h| text(&h["value"]))),
        kind,
        reason,
        key: format!("resend:{event_id}"),
        occurred_at: time(&body["created_at"]),
    })
}

/// The SES event inside an SNS notification's `Message`: an identity notification
/// (`notificationType`) or a configuration set's event (`eventType`).
pub fn ses(message: &Value) -> Option<Notice> {
    let mail = &message["mail"];
    let event = message["notificationType"].as_str().or_else(|| message["eventType"].as_str())?;
    let (kind, reason) = match event {
        "Delivery" => (NoticeKind::Delivered, None),
        "Bounce" => {
            let bounce = &message["bounce"];
            let hard = bounce["bounceType"].as_str() == Some("Permanent");
            let diagnostic = bounce["bouncedRecipients"][0]["diagnosticCode"].as_str();
            let reason = diagnostic.map(str::to_owned).or_else(|| text(&bounce["bounceSubType"]));
            (NoticeKind::Bounced { hard }, reason)
        }
        "Complaint" => {
            let feedback = text(&message["complaint"]["complaintFeedbackType"]).unwrap_or_else(|| "abuse".to_owned());
            (NoticeKind::Complained, Some(feedback))
        }
        _ => return None,
    };
    let herald_id = text(&mail["tags"][super::MESSAGE_TAG][0]);
    let internet_id = bare(text(&mail["commonHeaders"]["messageId"]));
    let feedback = match kind {
        NoticeKind::Bounced { .. } => text(&message["bounce"]["feedbackId"]),
        NoticeKind::Complained => text(&message["complaint"]["feedbackId"]),
        NoticeKind::Delivered => None,
    };
    let key = format!("ses:{event}:{}:{}", text(&mail["messageId"]).unwrap_or_default(), feedback.unwrap_or_default());
    let occurred_at = ["bounce", "complaint", "delivery"].iter().find_map(|part| time(&message[*part]["timestamp"]));
    Some(Notice { herald_id, internet_id, kind, reason, key, occurred_at })
}

/// Why a notification is not applied.
#[derive(Debug)]
pub(super) enum Refused {
    /// Not shown to come from the provider (401); the reason is logged, not answered.
    Unverified(String),
    /// Verified, but not a notification we can read (400).
    Malformed(String),
    /// Verified, but what it asks for failed (a subscription confirmation): the provider
    /// should try again.
    Failed(ApiError),
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn postmark_records_as_documented() {
        // Shaped as Postmark's bounce webhook example.
        let bounce = json!({"RecordType": "Bounce", "ID": 4323372036854775807_u64, "Type": "HardBounce", "TypeCode": 1,
            "Name": "Hard bounce", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.", "Email": "zaphod@example.com",
            "Metadata": {"herald_message": "msg_1"}, "MessageStream": "outbound"});
        let notice = postmark(&bounce).unwrap();
        assert_eq!(notice.kind, NoticeKind::Bounced { hard: true });
        assert_eq!(notice.herald_id.as_deref(), Some("msg_1"));
        assert!(notice.reason.unwrap().contains("550 5.1.1"));
        let soft = json!({"RecordType": "Bounce", "ID": 1, "Type": "SoftBounce", "MessageID": "x"});
        assert_eq!(postmark(&soft).unwrap().kind, NoticeKind::Bounced { hard: false });
        let spam =
            json!({"RecordType": "SpamComplaint", "ID": 2, "MessageID": "x", "Metadata": {"herald_message": "msg_1"}});
        assert_eq!(postmark(&spam).unwrap().kind, NoticeKind::Complained);
        assert!(postmark(&json!({"RecordType": "Open"})).is_none());
    }

    #[test]
    fn postmark_basic_auth_needs_the_password() {
        let header = |user_pass: &str| {
            use base64::Engine;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
        };
        assert!(postmark_authorized(Some(&header("herald:s3cret")), "s3cret"));
        assert!(!postmark_authorized(Some(&header("herald:wrong")), "s3cret"));
        assert!(!postmark_authorized(None, "s3cret"));
        assert!(!postmark_authorized(Some(&header("herald:")), ""));
    }

    #[test]
    fn resend_and_ses_events_as_documented() {
        let bounced = json!({"type": "email.bounced", "created_at": "2024-11-22T23:41:12.126Z", "data": {
            "email_id": "56761188-7520-42d8-8898-ff6fc54ce618", "to": ["delivered@resend.dev"],
            "bounce": {"message": "The recipient's email address is on the suppression list", "subType": "Suppressed", "type": "Permanent"},
            "tags": {"herald_message": "msg_2"}}});
        let notice = resend(&bounced, "msg_2fa").unwrap();
        assert_eq!(
            (notice.kind, notice.herald_id.as_deref(), notice.key.as_str()),
            (NoticeKind::Bounced { hard: true }, Some("msg_2"), "resend:msg_2fa")
        );
        let ses_bounce = json!({"notificationType": "Bounce", "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull",
            "bouncedRecipients": [{"emailAddress": "a@example.com", "diagnosticCode": "smtp; 452 4.2.2 mailbox full"}], "feedbackId": "fb-1"},
            "mail": {"messageId": "ses-1", "commonHeaders": {"messageId": "<msg_3@mail.acme.test>"}}});
        let notice = ses(&ses_bounce).unwrap();
        assert_eq!(notice.kind, NoticeKind::Bounced { hard: false });
        assert_eq!(notice.internet_id.as_deref(), Some("msg_3@mail.acme.test"));
        assert_eq!(notice.key, "ses:Bounce:ses-1:fb-1");
        let complaint = json!({"eventType": "Complaint", "complaint": {"complaintFeedbackType": "abuse", "feedbackId": "fb-2"},
            "mail": {"messageId": "ses-2", "tags": {"herald_message": ["msg_4"]}}});
        assert_eq!(ses(&complaint).unwrap().herald_id.as_deref(), Some("msg_4"));
    }
}
