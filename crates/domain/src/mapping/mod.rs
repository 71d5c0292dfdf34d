//! Mapped sources (HighLevel-style inbound webhooks): a user-defined `MappingSpec` that
//! turns any JSON body (a
//! Stripe or Shopify webhook, a form tool) into an `InboundEvent`, the `JsonPath`s it is
//! written in, and `suggest`, which drafts a spec from a captured sample.
//!
//! Specs are validated once (`MappingSpec::validate`) into a `CompiledMapping`, so applying
//! one to each request never re-parses paths and can only fail on the request's content.
//!
//! `path` holds the path grammar, `spec` the document and its validation, `compiled` the
//! mapping of a body to an event, `suggest` the drafting from a sample.

mod compiled;
#[cfg(test)]
mod fixtures;
mod path;
mod spec;
mod suggest;

pub use compiled::CompiledMapping;
pub use path::{JsonPath, PathError, PathErrorKind, Segment};
pub use spec::{EventNameSource, MappingError, MappingSpec};
pub use suggest::suggest;

/// Longest path string accepted, in characters.
pub const MAX_PATH_CHARS: usize = 512;
/// Most segments in one path.
pub const MAX_PATH_SEGMENTS: usize = 32;
/// Largest array index a path may name.
pub const MAX_PATH_INDEX: usize = 100_000;
/// Longest attribute or property name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest deduplication key, in characters (what the store indexes).
pub const MAX_DEDUPE_KEY_CHARS: usize = 255;
