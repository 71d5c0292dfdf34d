//! Conformance cases for sources: management, token rotation, rejections and samples.

use herald_domain::{PageRequest, SourceKind, SourceToken};
use serde_json::json;

use super::helpers::{at, new_source, with_source, ws_name};
use crate::{NewSource, Rejection, Sample, SharedStore, SourceUpdate, StoreError};

pub async fn sources_are_managed_per_workspace(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    let (token, new) = new_source("website", 1);
    let source = store.create_source(ws.id, new, at(1)).await.expect("create");
    assert_eq!((source.name.as_str(), source.kind, source.enabled), ("website", SourceKind::Generic, true));
    assert_eq!(source.token_hint, token.hint());
    assert_eq!(store.get_source(ws.id, source.id).await.expect("get"), source);
    let (_, second) = new_source("posthog", 2);
    let second =
        store.create_source(ws.id, NewSource { kind: SourceKind::Posthog, ..second }, at(2)).await.expect("create");
    let page = store.list_sources(ws.id, PageRequest::first(1)).await.expect("list");
    assert_eq!(page.items, vec![source.clone()]);
    assert!(page.next_cursor.is_some());
    assert!(store.list_sources(other.id, PageRequest::first(10)).await.expect("list").items.is_empty());
    assert!(matches!(store.get_source(other.id, source.id).await, Err(StoreError::NotFound { .. })));

    let update = SourceUpdate {
        name: Some("site".into()),
        enabled: Some(false),
        rate_limit_per_second: Some(Some(5)),
        mapping: Some(Some(json!({"email": "customer.email"}))),
    };
    let updated = store.update_source(ws.id, source.id, update, at(3)).await.expect("update");
    assert_eq!((updated.name.as_str(), updated.enabled, updated.rate_limit_per_second), ("site", false, Some(5)));
    assert_eq!(updated.mapping, Some(json!({"email": "customer.email"})));
    assert_eq!(updated.updated_at, at(3));
    assert!(store.source_by_token(&token.hash(), at(3)).await.expect("lookup").is_none(), "disabled");
    let cleared = SourceUpdate { mapping: Some(None), rate_limit_per_second: Some(None), ..SourceUpdate::default() };
    let cleared = store.update_source(ws.id, source.id, cleared, at(4)).await.expect("update");
    assert_eq!((cleared.mapping, cleared.rate_limit_per_second, cleared.name.as_str()), (None, None, "site"));
    assert!(matches!(
        store.update_source(other.id, source.id, SourceUpdate::default(), at(4)).await,
        Err(StoreError::NotFound { .. })
    ));

    assert!(matches!(store.delete_source(other.id, source.id).await, Err(StoreError::NotFound { .. })));
    store.delete_source(ws.id, source.id).await.expect("delete");
    assert!(matches!(store.get_source(ws.id, source.id).await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.list_sources(ws.id, PageRequest::first(10)).await.expect("list").items, vec![second]);
}

pub async fn source_tokens_rotate_with_and_without_grace(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let (first, new) = new_source("website", 1);
    let source = store.create_source(ws.id, new, at(0)).await.expect("create");
    assert_eq!(store.source_by_token(&first.hash(), at(1)).await.expect("lookup").map(|s| s.id), Some(source.id));
    assert!(store.source_by_token(&SourceToken::generate([9; 32]).hash(), at(1)).await.expect("lookup").is_none());

    let second = SourceToken::generate([2; 32]);
    let rotated =
        store.rotate_source_token(ws.id, source.id, second.hash(), second.hint(), None, at(2)).await.expect("rotate");
    assert_eq!(rotated.token_hint, second.hint());
    assert!(store.source_by_token(&first.hash(), at(2)).await.expect("lookup").is_none(), "old token dead at once");
    assert!(store.source_by_token(&second.hash(), at(2)).await.expect("lookup").is_some());

    let third = SourceToken::generate([3; 32]);
    let rotated = store
        .rotate_source_token(ws.id, source.id, third.hash(), third.hint(), Some(at(60)), at(3))
        .await
        .expect("rotate with grace");
    assert_eq!(rotated.previous_token_expires_at, Some(at(60)));
    assert!(store.source_by_token(&second.hash(), at(59)).await.expect("lookup").is_some(), "grace period");
    assert!(store.source_by_token(&second.hash(), at(60)).await.expect("lookup").is_none(), "grace over");
    assert!(store.source_by_token(&third.hash(), at(60)).await.expect("lookup").is_some());
    assert!(store.source_by_token(&first.hash(), at(3)).await.expect("lookup").is_none());
}

pub async fn rejections_and_samples_are_bounded(store: SharedStore) {
    let (ws, source) = with_source(&store).await;
    let rejections: Vec<Rejection> = (0..105u64)
        .map(|i| Rejection {
            workspace_id: ws,
            source_id: source,
            received_at: at(i),
            status: 400,
            code: "validation_failed".into(),
            reason: format!("email: bad #{i}"),
            body_prefix: format!("{{\"n\": {i}}}").into_bytes(),
        })
        .collect();
    store.record_rejections(&rejections[..50]).await.expect("record");
    store.record_rejections(&rejections[50..]).await.expect("record");
    let kept = store.list_rejections(ws, source).await.expect("list");
    assert_eq!(kept.len(), 100);
    assert_eq!(kept[0], rejections[104], "newest first");
    assert_eq!(kept[99], rejections[5]);

    let samples: Vec<Sample> = (0..25u64)
        .map(|i| Sample { workspace_id: ws, source_id: source, received_at: at(i), body: json!({"n": i}) })
        .collect();
    store.record_samples(&samples).await.expect("record");
    let kept = store.list_samples(ws, source).await.expect("list");
    assert_eq!(kept.len(), 20);
    assert_eq!(kept[0], samples[24]);

    let other = store.create_workspace(&ws_name("other"), at(0)).await.expect("other");
    assert!(store.list_rejections(other.id, source).await.expect("list").is_empty(), "scoped");
    assert!(store.list_samples(other.id, source).await.expect("list").is_empty(), "scoped");

    // Written with another workspace's id, the source's log gets nothing; the rest of the
    // batch is kept.
    let stray = Rejection { workspace_id: other.id, received_at: at(200), ..rejections[0].clone() };
    let last = Rejection { received_at: at(201), ..rejections[0].clone() };
    store.record_rejections(&[stray, last.clone()]).await.expect("record");
    let kept = store.list_rejections(ws, source).await.expect("list");
    assert_eq!((kept.len(), &kept[0], &kept[1]), (100, &last, &rejections[104]));
    let stray =
        Sample { workspace_id: other.id, source_id: source, received_at: at(200), body: json!({"stray": true}) };
    store.record_samples(&[stray]).await.expect("record");
    assert_eq!(store.list_samples(ws, source).await.expect("list")[0], samples[24]);
    assert!(store.list_samples(other.id, source).await.expect("list").is_empty());
}
