//! Herald's domain: the types every other crate speaks, parsed once at the edge, and the
//! decisions between two store calls written as pure functions.
//!
//! Nothing here performs I/O, reads a clock or draws random numbers: time and randomness are
//! parameters, which is what lets tests drive days of waiting with a manual clock.

pub mod activity;
pub mod api_key;
pub mod campaign;
pub mod campaign_webhook;
pub mod contact;
pub mod email;
pub mod event;
pub mod id;
pub mod inbound;
pub mod job;
pub mod mapping;
pub mod number;
pub mod page;
pub mod payload;
pub mod retry;
pub mod signed;
pub mod source;
pub mod template;
pub mod time;
pub mod topic;
pub mod user_account;
pub mod webhook;
pub mod workspace;

pub use activity::{Activity, ActivityKind, EmailSummary};
pub use api_key::{ApiKey, ApiKeyName, ApiToken, TokenHash};
pub use campaign::{
    BounceKind, Campaign, CampaignReaction, CampaignState, Journey, JourneyStatus, Message, MessageStatus,
    ReactionKind, Tracking,
};
pub use campaign_webhook::{
    CampaignEvent, CampaignEventKind, CampaignWebhook, HookMethod, PayloadEncoding, PayloadMapping,
};
pub use contact::{Contact, EmailAddress, Identity, Phone, UserId};
pub use email::{DomainStatus, SendingDomain, Suppression};
pub use event::{ContactAction, Event, EventOutcome, RequestRecord};
pub use id::{
    ActionId, ApiKeyId, BroadcastId, CampaignId, CampaignWebhookId, ContactId, DomainId, DraftId, EndpointId, EventId,
    IdParseError, JobId, JourneyId, LeaseId, MessageId, SegmentId, SourceId, TemplateId, TopicId, UserAccountId,
    WebhookDeliveryId, WorkspaceId,
};
pub use inbound::{EventName, FieldError, InboundEvent};
pub use job::{Job, JobKind, JobLease, JobOutcome, JobState, LeasedJob, NewJob};
pub use page::{Cursor, Page, PageRequest};
pub use source::{Source, SourceKind, SourceToken};
pub use template::{SavedTemplate, TemplateContent, TemplateKind};
pub use time::Timestamp;
pub use topic::{ConsentSource, Topic, TopicConsent};
pub use user_account::{Password, PasswordError, PasswordHash, UserAccount};
pub use webhook::{
    EndpointHealth, SavedAction, WebhookAttempt, WebhookDelivery, WebhookDraft, WebhookStatus, endpoint_disabled_event,
};
pub use workspace::{Workspace, WorkspaceName};
