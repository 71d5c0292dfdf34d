//! Conformance cases for shared email templates and layouts.

use herald_domain::{SavedTemplate, TemplateContent, TemplateKind};

use super::helpers::{at, ws_name};
use crate::{SharedStore, StoreError};

fn content(subject: &str, html: &str) -> TemplateContent {
    TemplateContent { subject: subject.into(), html: html.into(), text: None, layout: None }
}

pub async fn templates_keep_every_version(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other ws").id;
    let layout = store
        .create_template(ws, TemplateKind::Layout, "Plain", &content("", "<main>{{ content }}</main>"), at(1))
        .await
        .expect("layout");
    let first = TemplateContent {
        text: Some("Hi {{ first_name }}\u{0}".into()),
        layout: Some(layout.id),
        ..content("Welcome", "<p>Hi {{ first_name }}</p>")
    };
    let created = store.create_template(ws, TemplateKind::Template, "Welcome", &first, at(2)).await.expect("create");
    assert_eq!((created.version, created.created_at, created.version_created_at), (1, at(2), at(2)));
    assert_eq!((created.kind, created.content.layout), (TemplateKind::Template, Some(layout.id)));
    let conflict = store
        .create_template(ws, TemplateKind::Template, "Welcome", &content("s", "h"), at(3))
        .await
        .expect_err("same name");
    assert!(
        matches!(conflict, StoreError::Conflict { ref constraint } if constraint == "templates_kind_name"),
        "{conflict:?}"
    );
    store
        .create_template(ws, TemplateKind::Layout, "Welcome", &content("", "{{ content }}"), at(3))
        .await
        .expect("names are per kind");
    store
        .create_template(other, TemplateKind::Template, "Welcome", &content("s", "h"), at(3))
        .await
        .expect("names are per workspace");

    let edited = store
        .update_template(ws, created.id, "Welcome!", &content("Welcome, {{ first_name }}", "<p>v2</p>"), at(4))
        .await
        .expect("edit");
    assert_eq!(
        (edited.version, edited.name.as_str(), edited.created_at, edited.version_created_at),
        (2, "Welcome!", at(2), at(4))
    );
    assert!(matches!(
        store.update_template(other, created.id, "x", &content("s", "h"), at(5)).await,
        Err(StoreError::NotFound { .. })
    ));
    let names = |list: Vec<SavedTemplate>| list.into_iter().map(|t| (t.name, t.version)).collect::<Vec<_>>();
    assert_eq!(names(store.list_templates(ws, TemplateKind::Template).await.expect("list")), [("Welcome!".into(), 2)]);
    assert_eq!(
        names(store.list_templates(ws, TemplateKind::Layout).await.expect("layouts")),
        [("Plain".into(), 1), ("Welcome".into(), 1)]
    );

    let versions = store.template_versions(ws, &[created.id]).await.expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0], created, "the first version reads back unchanged");
    assert_eq!(versions[1], edited);
    assert!(store.template_versions(other, &[created.id]).await.expect("other").is_empty());
    assert!(store.template_versions(ws, &[]).await.expect("none").is_empty());

    store.delete_template(ws, created.id, at(6)).await.expect("delete");
    assert!(matches!(store.delete_template(ws, created.id, at(7)).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(
        store.update_template(ws, created.id, "x", &content("s", "h"), at(7)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.list_templates(ws, TemplateKind::Template).await.expect("list").is_empty());
    // Journeys still read a deleted template's versions; its name is free again.
    let kept = store.template_versions(ws, &[created.id, layout.id]).await.expect("deleted too");
    assert_eq!(kept.iter().map(|t| (t.version, t.deleted_at.is_some())).collect::<Vec<_>>().len(), 3);
    assert!(kept.iter().filter(|t| t.id == created.id).all(|t| t.deleted_at == Some(at(6))));
    store
        .create_template(ws, TemplateKind::Template, "Welcome!", &content("s", "h"), at(8))
        .await
        .expect("a deleted template's name is free again");
}
