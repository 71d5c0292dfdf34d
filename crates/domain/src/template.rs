//! Shared email templates and layouts: Liquid sources that campaign steps and transactional
//! sends refer to by id. Every edit is a new immutable version; readers pick the version that
//! was current at a moment ([`as_of`]), which is how a running journey keeps the version it
//! started with.

use serde::{Deserialize, Serialize};

use crate::{TemplateId, Timestamp, WorkspaceId};

/// A template is a whole email; a layout is the HTML (and text) around a template's body,
/// with `{{ content }}` where the body goes. Both share ids (`tpl_…`) and versioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    Template,
    Layout,
}

impl TemplateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Template => "template",
            TemplateKind::Layout => "layout",
        }
    }

    /// The kind stored as `text`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "template" => Some(TemplateKind::Template),
            "layout" => Some(TemplateKind::Layout),
            _ => None,
        }
    }
}

/// What one version holds (Liquid sources). A layout has no subject and names no layout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateContent {
    pub subject: String,
    pub html: String,
    /// Derived from the HTML when absent.
    pub text: Option<String>,
    /// The layout (a template of kind layout) the HTML and text are wrapped in.
    pub layout: Option<TemplateId>,
}

/// One version of a template or layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedTemplate {
    pub id: TemplateId,
    pub workspace_id: WorkspaceId,
    pub kind: TemplateKind,
    pub name: String,
    /// 1 for the first; each edit adds one.
    pub version: u32,
    pub content: TemplateContent,
    /// When the template was created (its first version).
    pub created_at: Timestamp,
    /// When this version was made.
    pub version_created_at: Timestamp,
    /// Deleted templates are kept for the journeys that still use them, but are not listed
    /// and cannot be used by new campaign versions or sends.
    pub deleted_at: Option<Timestamp>,
}

/// Of one template's versions, the one current at `at`: the latest made at or before it, or
/// the first when all are later (a journey is never older than the campaign version naming the
/// template, so that happens only with clocks that disagree between nodes).
pub fn as_of(versions: &[SavedTemplate], at: Timestamp) -> Option<&SavedTemplate> {
    versions
        .iter()
        .filter(|v| v.version_created_at <= at)
        .max_by_key(|v| v.version)
        .or_else(|| versions.iter().min_by_key(|v| v.version))
}

/// Where a layout's body goes: `{{ content }}`, with any spacing and whitespace control.
fn placeholder(layout: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(open) = layout[from..].find("{{").map(|i| from + i) {
        let close = layout[open..].find("}}").map(|i| open + i + 2)?;
        let inner = layout[open + 2..close - 2].trim_start_matches('-').trim_end_matches('-').trim();
        if inner == "content" {
            return Some((open, close));
        }
        from = close;
    }
    None
}

/// How many `{{ content }}` placeholders a layout source has (exactly one is valid).
pub fn placeholders(layout: &str) -> usize {
    let mut count = 0;
    let mut rest = layout;
    while let Some((_, end)) = placeholder(rest) {
        count += 1;
        rest = &rest[end..];
    }
    count
}

/// The layout's source with its placeholder replaced by `body`: one Liquid source, so the
/// body sees the same variables as the layout. A layout without a placeholder puts the body
/// last.
pub fn wrap(layout: &str, body: &str) -> String {
    match placeholder(layout) {
        Some((start, end)) => format!("{}{body}{}", &layout[..start], &layout[end..]),
        None => format!("{layout}{body}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_go_where_the_placeholder_is() {
        assert_eq!(wrap("<header/>{{ content }}<footer/>", "<p>x</p>"), "<header/><p>x</p><footer/>");
        assert_eq!(wrap("a{{-content -}}b", "x"), "axb");
        assert_eq!(wrap("{{ name }}|{{content}}|", "x"), "{{ name }}|x|");
        assert_eq!(wrap("no place", "x"), "no placex");
        assert_eq!(placeholders("{{ content }} and {{ content }}"), 2);
        assert_eq!(placeholders("{{ contents }}"), 0);
        assert_eq!(placeholders("{{ content"), 0);
    }

    fn version(version: u32, at: i64) -> SavedTemplate {
        SavedTemplate {
            id: TemplateId::from_uuid(uuid::Uuid::nil()),
            workspace_id: WorkspaceId::from_uuid(uuid::Uuid::nil()),
            kind: TemplateKind::Template,
            name: "t".into(),
            version,
            content: TemplateContent::default(),
            created_at: Timestamp::from_unix_millis(0),
            version_created_at: Timestamp::from_unix_millis(at),
            deleted_at: None,
        }
    }

    #[test]
    fn the_version_current_at_a_moment_is_the_latest_made_by_then() {
        let versions = [version(1, 10), version(2, 20), version(3, 30)];
        let at = |t| as_of(&versions, Timestamp::from_unix_millis(t)).map(|v| v.version);
        assert_eq!(at(20), Some(2));
        assert_eq!(at(29), Some(2));
        assert_eq!(at(99), Some(3));
        assert_eq!(at(5), Some(1));
        assert_eq!(as_of(&[], Timestamp::from_unix_millis(5)), None);
    }
}
