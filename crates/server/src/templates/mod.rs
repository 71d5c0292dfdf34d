//! Shared email templates and layouts: Liquid emails (subject, HTML, text) that campaign email
//! steps and transactional sends refer to by id, and layouts (the HTML and text around a
//! template's body, with `{{ content }}` where the body goes). Every edit is a new version and
//! all are kept; a journey sends the versions current when it entered its campaign
//! ([`resolve`]; ADR 0017). Managed through `service`, which the API (`api`) and the pages (`pages`) call.

pub mod api;
pub(crate) mod pages;
pub mod service;

use std::collections::BTreeMap;

use herald_campaign::{SharedEmail, Templates};
use herald_domain::template::{as_of, wrap};
use herald_domain::{SavedTemplate, TemplateId, TemplateKind, Timestamp, WorkspaceId};
use herald_store::{SharedStore, StoreResult};

use crate::clock::SharedClock;

/// What the templates' API and pages use.
#[derive(Clone, Debug)]
pub struct TemplatesState {
    pub store: SharedStore,
    pub clock: SharedClock,
}

/// Shared templates resolved for one use: what email steps send, and which versions those are
/// (of the templates and of their layouts), which tell one resolution from another.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub templates: Templates,
    pub versions: Vec<(TemplateId, u32)>,
}

/// The templates `ids` (`tpl_…`; others are left out, as are layouts and, unless
/// `deleted_ok`, deleted templates) as they were at `at` (each one's latest version made by
/// then, and its layout's), or as they are now when `at` is `None`.
pub async fn resolve(
    store: &SharedStore,
    workspace: WorkspaceId,
    ids: &[String],
    at: Option<Timestamp>,
    deleted_ok: bool,
) -> StoreResult<Resolved> {
    let ids: Vec<TemplateId> = ids.iter().filter_map(|id| id.parse().ok()).collect();
    let mut resolved = Resolved::default();
    if ids.is_empty() {
        return Ok(resolved);
    }
    let chosen: Vec<SavedTemplate> = pick(store.template_versions(workspace, &ids).await?, at)
        .into_iter()
        .filter(|t| t.kind == TemplateKind::Template && (deleted_ok || t.deleted_at.is_none()))
        .collect();
    let layout_ids: Vec<TemplateId> = chosen.iter().filter_map(|t| t.content.layout).collect();
    let layouts: BTreeMap<TemplateId, SavedTemplate> = match layout_ids.is_empty() {
        true => BTreeMap::new(),
        false => pick(store.template_versions(workspace, &layout_ids).await?, at)
            .into_iter()
            .filter(|l| l.kind == TemplateKind::Layout)
            .map(|l| (l.id, l))
            .collect(),
    };
    for template in chosen {
        let layout = template.content.layout.and_then(|id| layouts.get(&id));
        resolved.versions.push((template.id, template.version));
        resolved.versions.extend(layout.map(|l| (l.id, l.version)));
        resolved.templates.insert(template.id.to_string(), shared_email(&template, layout));
    }
    Ok(resolved)
}

/// Of each template's versions (as the store lists them, by id), the one current at `at`, or
/// the latest.
fn pick(versions: Vec<SavedTemplate>, at: Option<Timestamp>) -> Vec<SavedTemplate> {
    let mut by_id: BTreeMap<TemplateId, Vec<SavedTemplate>> = BTreeMap::new();
    for version in versions {
        by_id.entry(version.id).or_default().push(version);
    }
    by_id
        .into_values()
        .filter_map(|versions| match at {
            Some(at) => as_of(&versions, at).cloned(),
            None => versions.into_iter().max_by_key(|v| v.version),
        })
        .collect()
}

/// A template as an email step sends it: its HTML (and text) inside its layout's.
pub fn shared_email(template: &SavedTemplate, layout: Option<&SavedTemplate>) -> SharedEmail {
    let content = &template.content;
    let html = layout.map_or_else(|| content.html.clone(), |l| wrap(&l.content.html, &content.html));
    let text = match (&content.text, layout.and_then(|l| l.content.text.as_deref())) {
        (Some(text), Some(layout)) => Some(wrap(layout, text)),
        (text, _) => text.clone(),
    };
    SharedEmail { subject: content.subject.clone(), html, text }
}
