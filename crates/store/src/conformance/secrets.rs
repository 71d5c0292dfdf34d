//! Conformance cases for the secrets the store keeps: sealing, and signing keys' rotation.

use serde_json::json;

use super::helpers::{at, claim};
use crate::SharedStore;

/// Secrets written through the store are sealed with the store's current key: they read back
/// as written, and sealing again on start finds nothing to do.
pub async fn sealed_secrets_read_back_and_need_no_second_sealing(store: SharedStore) {
    use crate::email::TransportRecord;
    use crate::webhook::SigningKeyRecord;
    assert_eq!(store.reseal_secrets().await.expect("an empty database"), 0);
    let ws = store.ensure_default_workspace(at(0)).await.expect("workspace").id;
    let transport =
        TransportRecord { settings: json!({"host": "relay.test"}), password: Some("pw".into()), updated_at: at(1) };
    store.set_transport(ws, Some(&transport)).await.expect("transport");
    let key = SigningKeyRecord { id: "whk_1".into(), secret: vec![7; 32], created_at: at(1), retires_at: None };
    store.rotate_signing_key(ws, &key, at(1)).await.expect("key");
    let definition = json!({"url": "https://crm.test/x", "basic_auth": {"username": "u", "password": "p"}});
    let action = store.create_action(ws, "Ticket", &definition, at(1)).await.expect("action");
    assert_eq!(store.email_secret(ws, "unsubscribe-secret").await.expect("secret"), "unsubscribe-secret");
    // Secrets inside documents: a campaign's webhook step, a queued call and a delivery's call.
    let document = json!({"name": "Hooks", "steps": [{"id": "crm", "type": "webhook",
        "basic_auth": {"username": "u", "password": "step-pw"}, "headers": {"X-Api-Key": "step-key"}}]});
    let campaign = store.create_campaign(ws, "Hooks", &document, at(1)).await.expect("campaign");
    let call = json!({"endpoint": "https://crm.test:443", "basic_auth": "u:call-pw", "secret": "own",
                      "request": {"headers": [["Authorization", "Bearer t"], ["X-Team", "growth"]]}});
    store.enqueue_jobs(ws, &[crate::webhook::webhook_job(call.clone(), at(1))], at(1)).await.expect("job");
    let delivery = crate::webhook::NewDelivery {
        journey_id: None,
        campaign_id: None,
        contact_id: None,
        step: None,
        campaign_webhook_id: None,
        idempotency_key: "sealed".into(),
        endpoint: "https://crm.test:443".into(),
        request: json!({}),
        call: call.clone(),
    };
    store.open_delivery(ws, &delivery, at(1)).await.expect("delivery");
    assert_eq!(store.reseal_secrets().await.expect("reseal"), 0, "everything is sealed with the current key already");
    assert_eq!(store.transport(ws).await.expect("read"), Some(transport));
    assert_eq!(store.signing_keys(ws, at(2)).await.expect("keys")[0].secret, key.secret);
    assert_eq!(store.actions_by_ids(ws, &[action.id]).await.expect("actions")[0].definition, definition);
    assert_eq!(store.email_secret(ws, "other").await.expect("secret"), "unsubscribe-secret");
    assert_eq!(store.get_campaign(ws, campaign.id).await.expect("campaign").document, document);
    assert_eq!(store.campaign_version(ws, campaign.id, 1).await.expect("version"), document);
    assert_eq!(store.claim_jobs(&claim(at(2), 1)).await.expect("claim")[0].job.payload, call);
}

pub async fn signing_keys_rotate_with_an_overlap(store: SharedStore) {
    use crate::webhook::SigningKeyRecord;
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws").id;
    assert!(store.signing_keys(ws, at(1)).await.expect("keys").is_empty());
    let key = |id: &str, t| SigningKeyRecord {
        id: id.into(),
        secret: id.as_bytes().to_vec(),
        created_at: at(t),
        retires_at: None,
    };
    store.rotate_signing_key(ws, &key("k1", 1), at(1)).await.expect("first");
    store.rotate_signing_key(ws, &key("k2", 10), at(10 + 3600)).await.expect("rotate");
    let ids = |keys: Vec<SigningKeyRecord>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(ids(store.signing_keys(ws, at(11)).await.expect("keys")), ["k2", "k1"], "both sign during the overlap");
    assert_eq!(ids(store.signing_keys(ws, at(10 + 3600)).await.expect("keys")), ["k2"], "then only the new one");
    assert_eq!(store.signing_keys(ws, at(11)).await.expect("keys")[0].secret, b"k2".to_vec());
}
