//! Herald's campaigns, without I/O: the document users write ([`document`]), its validation
//! into a program ([`compile`]), the conditions of filters and branches ([`condition`]), the
//! variables templates see ([`context`]), trigger decisions ([`trigger`]) and the journey
//! engine ([`engine`]) that both the durable runner and the simulator drive; and saved
//! segments of contacts ([`segment`]), which reuse the conditions.

pub mod compile;
pub mod condition;
pub mod context;
pub mod document;
pub mod engine;
pub mod program;
pub mod segment;
pub mod simulate;
pub mod span;
pub mod trigger;

pub use compile::{
    Actions, CompiledCampaign, DocumentError, Library, SharedEmail, Templates, action_references, compile,
    compile_action, compile_with, steps_using_action, template_references,
};
pub use condition::Condition;
pub use context::CampaignInfo;
pub use document::{CampaignDocument, EntryRule, Step, Trigger, document_from_value};
pub use span::Span;
