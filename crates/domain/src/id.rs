//! Prefixed, time-sortable identifiers (`ws_0193…`, `job_0193…`).
//!
//! Every id is a UUIDv7 shown as `<prefix>_<32 hex digits>`. The prefix makes an id
//! self-describing in logs and URLs, and lets the API reject a job id passed where a key id
//! belongs with a clear message. UUIDv7 sorts by creation time, so ids double as stable
//! pagination cursors and keep B-tree inserts at the right edge. See docs/adr/0003-ids.md.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    #[error("expected an id starting with `{expected}_`")]
    WrongPrefix { expected: &'static str },
    #[error("the part after `{prefix}_` must be 32 lowercase hex digits")]
    Malformed { prefix: &'static str },
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// Wraps a UUID produced by the caller (who owns the clock and the randomness).
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_prefixed(s, $prefix).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fn parse_prefixed(s: &str, prefix: &'static str) -> Result<Uuid, IdParseError> {
    let rest = s
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .ok_or(IdParseError::WrongPrefix { expected: prefix })?;
    let well_formed = rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(IdParseError::Malformed { prefix });
    }
    Uuid::try_parse(rest).map_err(|_| IdParseError::Malformed { prefix })
}

prefixed_id!(
    /// A workspace (tenant). Every stored record belongs to exactly one.
    WorkspaceId,
    "ws"
);
prefixed_id!(
    /// An admin API key (the key's record, never its secret).
    ApiKeyId,
    "key"
);
prefixed_id!(
    /// A contact (a person).
    ContactId,
    "ct"
);
prefixed_id!(
    /// An event in the event log.
    EventId,
    "evt"
);
prefixed_id!(
    /// An inbound endpoint.
    SourceId,
    "src"
);
prefixed_id!(
    /// A campaign (all its versions share the id).
    CampaignId,
    "cmp"
);
prefixed_id!(
    /// One contact's way through one version of a campaign.
    JourneyId,
    "jrn"
);
prefixed_id!(
    /// An email message rendered by a campaign step.
    MessageId,
    "msg"
);
prefixed_id!(
    /// A sending domain (its DKIM key and DNS records).
    DomainId,
    "dom"
);
prefixed_id!(
    /// One outbound webhook call (all its attempts).
    WebhookDeliveryId,
    "whd"
);
prefixed_id!(
    /// A saved webhook action, reusable by campaigns and runnable for one contact.
    ActionId,
    "act"
);
prefixed_id!(
    /// A shared email template or layout (all its versions share the id).
    TemplateId,
    "tpl"
);
prefixed_id!(
    /// A webhook call a draft step holds until someone sends or skips it.
    DraftId,
    "drf"
);
prefixed_id!(
    /// An outbound webhook endpoint (`scheme://host:port`) and its health.
    EndpointId,
    "wep"
);
prefixed_id!(
    /// A campaign event webhook (a campaign's subscription to its own events).
    CampaignWebhookId,
    "cwh"
);
prefixed_id!(
    /// A person who logs in to the web UI with an email and a password (not a contact's
    /// `user_id`, which is the sender's id for a contact).
    UserAccountId,
    "usr"
);
prefixed_id!(
    /// A subscription topic (a kind of mail a contact may leave, such as a newsletter).
    TopicId,
    "top"
);
prefixed_id!(
    /// A saved segment: a named condition over contacts whose members are kept current.
    SegmentId,
    "seg"
);
prefixed_id!(
    /// A broadcast: one email to every contact of an audience, each at most once.
    BroadcastId,
    "brd"
);
prefixed_id!(
    /// A job in the durable queue.
    JobId,
    "job"
);
prefixed_id!(
    /// One claim of a job by a worker; finishing a job requires the lease it was claimed with.
    LeaseId,
    "lease"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_through_display() {
        let id = JobId::from_uuid(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001));
        let shown = id.to_string();
        assert_eq!(shown, "job_01930000000070008000000000000001");
        assert_eq!(shown.parse::<JobId>(), Ok(id));
    }

    #[test]
    fn rejects_other_prefixes_and_shapes() {
        let cases = [
            ("ws_01930000000070008000000000000001", IdParseError::WrongPrefix { expected: "job" }),
            ("job01930000000070008000000000000001", IdParseError::WrongPrefix { expected: "job" }),
            ("job_0193", IdParseError::Malformed { prefix: "job" }),
            ("job_01930000-0000-7000-8000-000000000001", IdParseError::Malformed { prefix: "job" }),
            ("job_0193000000007000800000000000000G", IdParseError::Malformed { prefix: "job" }),
            ("job_0193000000007000800000000000000A", IdParseError::Malformed { prefix: "job" }),
            ("", IdParseError::WrongPrefix { expected: "job" }),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<JobId>(), Err(expected), "input {input:?}");
        }
    }

    #[test]
    fn serde_uses_the_prefixed_form() {
        let id = WorkspaceId::from_uuid(Uuid::from_u128(7));
        let json = serde_json::to_string(&id).expect("serializes");
        assert_eq!(json, "\"ws_00000000000000000000000000000007\"");
        assert_eq!(serde_json::from_str::<WorkspaceId>(&json).expect("parses"), id);
        assert!(serde_json::from_str::<WorkspaceId>("\"key_00000000000000000000000000000007\"").is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in ".*") {
            let _ = s.parse::<ApiKeyId>();
        }

        #[test]
        fn every_uuid_round_trips(n in any::<u128>()) {
            let id = ApiKeyId::from_uuid(Uuid::from_u128(n));
            prop_assert_eq!(id.to_string().parse::<ApiKeyId>(), Ok(id));
        }
    }
}
