//! Conformance cases for workspaces, API keys, users and the first-run link.

use herald_domain::{ApiKeyId, ApiKeyName, ApiToken, EmailAddress, PageRequest, PasswordHash};

use super::helpers::{at, ws_name};
use crate::{NewApiKey, SharedStore, StoreError};

fn new_key(name: &str, seed: u8) -> (ApiToken, NewApiKey) {
    let token = ApiToken::generate([seed; 32]);
    let key =
        NewApiKey { name: ApiKeyName::parse(name).expect("valid key name"), hash: token.hash(), hint: token.hint() };
    (token, key)
}

pub async fn migrate_is_idempotent(store: SharedStore) {
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    store.ping().await.expect("ping");
}

pub async fn default_workspace_is_created_once(store: SharedStore) {
    let first = store.ensure_default_workspace(at(0)).await.expect("create");
    let again = store.ensure_default_workspace(at(5)).await.expect("ensure");
    assert_eq!(first, again);
    assert_eq!(first.name.as_str(), "default");
    assert_eq!(first.created_at, at(0));
    assert_eq!(store.list_workspaces().await.expect("list"), vec![first.clone()]);
    assert_eq!(store.get_workspace(first.id).await.expect("get"), first);
}

pub async fn workspace_names_are_unique(store: SharedStore) {
    let acme = store.create_workspace(&ws_name("acme"), at(0)).await.expect("create");
    let err = store.create_workspace(&ws_name("acme"), at(1)).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "workspaces_name"), "{err:?}");
    assert_eq!(store.workspace_by_name(&ws_name("acme")).await.expect("lookup"), Some(acme));
    assert_eq!(store.workspace_by_name(&ws_name("nope")).await.expect("lookup"), None);
}

pub async fn api_keys_authenticate_until_revoked(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let (token, new) = new_key("ci", 1);
    let key = store.create_api_key(ws.id, new, at(1)).await.expect("create key");
    assert_eq!(key.name.as_str(), "ci");
    assert_eq!(key.hint, token.hint());
    assert_eq!(key.revoked_at, None);

    let principal = store.authenticate(&token.hash()).await.expect("auth").expect("known key");
    assert_eq!((principal.workspace_id, principal.api_key_id), (ws.id, key.id));
    let stranger = ApiToken::generate([2; 32]);
    assert_eq!(store.authenticate(&stranger.hash()).await.expect("auth"), None);

    let revoked = store.revoke_api_key(ws.id, key.id, at(2)).await.expect("revoke");
    assert_eq!(revoked.revoked_at, Some(at(2)));
    let again = store.revoke_api_key(ws.id, key.id, at(3)).await.expect("revoke twice");
    assert_eq!(again.revoked_at, Some(at(2)), "the first revocation time is kept");
    assert_eq!(store.authenticate(&token.hash()).await.expect("auth"), None);
}

pub async fn api_keys_are_scoped_to_their_workspace(store: SharedStore) {
    let a = store.ensure_default_workspace(at(0)).await.expect("ws a");
    let b = store.create_workspace(&ws_name("other"), at(0)).await.expect("ws b");
    let (_, new_a) = new_key("a-key", 1);
    let (token_b, new_b) = new_key("b-key", 2);
    let key_a = store.create_api_key(a.id, new_a, at(1)).await.expect("key a");
    let key_b = store.create_api_key(b.id, new_b, at(1)).await.expect("key b");

    let err = store.get_api_key(a.id, key_b.id).await.expect_err("cross-workspace get");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = store.revoke_api_key(a.id, key_b.id, at(2)).await.expect_err("cross-workspace revoke");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(store.authenticate(&token_b.hash()).await.expect("auth").is_some(), "b's key still works");

    let listed = store.list_api_keys(a.id, PageRequest::first(50)).await.expect("list a");
    assert_eq!(listed.items, vec![key_a]);
    assert_eq!(store.get_api_key(b.id, key_b.id).await.expect("get b"), key_b);
}

pub async fn bootstrap_key_is_replaced_not_duplicated(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let first = ApiToken::parse_supplied("first-admin-token-0001").expect("token");
    let second = ApiToken::parse_supplied("second-admin-token-002").expect("token");

    let k1 = store.install_bootstrap_key(ws.id, first.hash(), at(1)).await.expect("install");
    let k1_again = store.install_bootstrap_key(ws.id, first.hash(), at(2)).await.expect("reinstall");
    assert_eq!(k1.id, k1_again.id, "restarting with the same token keeps the key");

    let k2 = store.install_bootstrap_key(ws.id, second.hash(), at(3)).await.expect("rotate");
    assert_ne!(k1.id, k2.id);
    assert!(store.authenticate(&first.hash()).await.expect("auth").is_none(), "old token revoked");
    assert!(store.authenticate(&second.hash()).await.expect("auth").is_some());
    let keys = store.list_api_keys(ws.id, PageRequest::first(50)).await.expect("list");
    assert_eq!(keys.items.len(), 2);
    assert_eq!(keys.items[0].revoked_at, Some(at(3)));
}

pub async fn api_keys_paginate_in_creation_order(store: SharedStore) {
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let mut created = Vec::new();
    for i in 0..7u8 {
        let (_, new) = new_key(&format!("key-{i}"), i);
        created.push(store.create_api_key(ws.id, new, at(u64::from(i))).await.expect("create").id);
    }
    let mut seen: Vec<ApiKeyId> = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let got = store.list_api_keys(ws.id, page).await.expect("page");
        assert!(got.items.len() <= 3);
        seen.extend(got.items.iter().map(|k| k.id));
        match got.next_cursor {
            Some(cursor) => {
                page.after = Some(herald_domain::Cursor::decode(cursor.as_str()).expect("own cursor"));
            }
            None => break,
        }
    }
    assert_eq!(seen, created);
}

pub async fn users_are_unique_per_workspace_and_change_passwords(store: SharedStore) {
    let a = store.ensure_default_workspace(at(0)).await.expect("ws a");
    let b = store.create_workspace(&ws_name("other"), at(0)).await.expect("ws b");
    let email = |s: &str| EmailAddress::parse(s).expect("valid email");
    // The store keeps hashes opaque: any PHC-looking string will do here.
    let hash = |s: &str| PasswordHash::from_phc(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${s}"));

    let ada = store.create_user(a.id, &email(" Ada@Example.com "), &hash("one"), at(1)).await.expect("create");
    assert_eq!(ada.email.as_str(), "ada@example.com");
    assert_eq!((ada.workspace_id, ada.created_at, ada.password_changed_at), (a.id, at(1), at(1)));
    assert_eq!(ada.password_hash, hash("one"));
    let err = store.create_user(a.id, &email("ADA@example.com"), &hash("two"), at(2)).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "users_email"), "{err:?}");
    let other = store.create_user(b.id, &email("ada@example.com"), &hash("three"), at(2)).await.expect("other ws");
    let bob = store.create_user(a.id, &email("bob@example.com"), &hash("four"), at(3)).await.expect("bob");

    assert_eq!(store.user_by_email(a.id, &email("ada@example.com")).await.expect("find"), Some(ada.clone()));
    assert_eq!(store.user_by_email(b.id, &email("ada@example.com")).await.expect("find"), Some(other.clone()));
    assert_eq!(store.user_by_email(a.id, &email("eve@example.com")).await.expect("find"), None);
    assert_eq!(store.get_user(a.id, ada.id).await.expect("get"), ada);
    let err = store.get_user(a.id, other.id).await.expect_err("cross-workspace get");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let listed = store.list_users(a.id).await.expect("list");
    assert_eq!(listed, vec![ada.clone(), bob.clone()]);

    let changed = store.set_user_password(a.id, ada.id, &hash("five"), at(4)).await.expect("set password");
    assert_eq!(
        (changed.password_hash.clone(), changed.password_changed_at, changed.created_at),
        (hash("five"), at(4), at(1))
    );
    assert_eq!(store.get_user(a.id, ada.id).await.expect("get"), changed);
    let err = store.set_user_password(a.id, other.id, &hash("six"), at(5)).await.expect_err("cross-workspace set");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(store.get_user(b.id, other.id).await.expect("get"), other, "untouched");

    let err = store.delete_user(a.id, other.id).await.expect_err("cross-workspace delete");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    store.delete_user(a.id, ada.id).await.expect("delete");
    let err = store.get_user(a.id, ada.id).await.expect_err("gone");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = store.delete_user(a.id, ada.id).await.expect_err("delete twice");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(store.list_users(a.id).await.expect("list"), vec![bob]);
    // The email is free again.
    let again = store.create_user(a.id, &email("ada@example.com"), &hash("seven"), at(6)).await.expect("re-create");
    assert_ne!(again.id, ada.id);
}

pub async fn first_run_links_work_once_and_only_while_nobody_can_log_in(store: SharedStore) {
    use crate::user::LoginLinkUse;
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let token = |n: u8| ApiToken::generate([n; 32]).hash();
    let new_key = |n: u8| NewApiKey {
        name: ApiKeyName::parse("first-run link").expect("name"),
        hash: ApiToken::generate([100 + n; 32]).hash(),
        hint: "first-run link".into(),
    };
    let expires = at(900);
    assert!(store.create_first_run_link(ws.id, &token(1), expires, at(0)).await.expect("create"));
    assert!(store.create_first_run_link(ws.id, &token(2), expires, at(0)).await.expect("a second start"));
    assert_eq!(store.redeem_login_link(&token(9), new_key(9), at(1)).await.expect("use"), LoginLinkUse::Unknown);
    assert_eq!(store.redeem_login_link(&token(2), new_key(2), at(900)).await.expect("use"), LoginLinkUse::Expired);

    // Used at the same time twice: one redeems, the other finds it used.
    let link = token(1);
    let (one, two) = tokio::join!(
        store.redeem_login_link(&link, new_key(1), at(899)),
        store.redeem_login_link(&link, new_key(3), at(899)),
    );
    let mut uses = [one.expect("first use"), two.expect("second use")];
    uses.sort_by_key(|u| matches!(u, LoginLinkUse::Used));
    let [LoginLinkUse::Redeemed(key), LoginLinkUse::Used] = &uses else { panic!("{uses:?}") };
    assert_eq!((key.workspace_id, key.name.as_str(), key.revoked_at), (ws.id, "first-run link", None));
    let principal = store.authenticate(&new_key(1).hash).await.expect("auth");
    let principal = principal.or(store.authenticate(&new_key(3).hash).await.expect("auth")).expect("the key works");
    assert_eq!(principal.api_key_id, key.id);
    assert_eq!(store.redeem_login_link(&token(1), new_key(4), at(2)).await.expect("use"), LoginLinkUse::Used);

    // Not while a key lives; again once it is revoked; not while a user exists.
    assert!(!store.create_first_run_link(ws.id, &token(5), at(1000), at(100)).await.expect("create"));
    store.revoke_api_key(ws.id, key.id, at(101)).await.expect("revoke");
    assert!(store.create_first_run_link(ws.id, &token(6), at(1000), at(102)).await.expect("create"));
    let other = store.create_workspace(&ws_name("other"), at(103)).await.expect("ws");
    let hash = PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$x".to_owned());
    store
        .create_user(other.id, &EmailAddress::parse("ada@example.com").expect("email"), &hash, at(104))
        .await
        .expect("user");
    assert!(!store.create_first_run_link(ws.id, &token(7), at(1000), at(105)).await.expect("create"));
}
