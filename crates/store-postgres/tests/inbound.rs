//! PostgreSQL only: ingest and import under the conditions only this backend meets: writers
//! in several processes (each a pool of its own) racing on the same new contacts and
//! idempotency keys, and input PostgreSQL cannot store as given (NUL characters, instants
//! before 4714 BC), which must not fail the batch it arrives in.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use herald_domain::inbound::parse_generic;
use herald_domain::{
    ContactId, EmailAddress, EventId, Identity, PageRequest, RequestRecord, SourceId, SourceKind, SourceToken,
    Timestamp, WorkspaceId, WorkspaceName,
};
use herald_store::ingest::{IngestRequest, IngestResult};
use herald_store::{
    ContactFilter, ContactStore, EventFilter, EventStore, ImportOutcome, NewContact, NewSource, Rejection, Sample,
    SourceStore, Store, WorkspaceStore,
};
use herald_store_postgres::PgStore;
use herald_store_postgres::test_support::{TestDatabase, fresh_database};
use serde_json::{Value, json};

fn at(secs: u64) -> Timestamp {
    Timestamp::from_unix_millis(1_767_225_600_000) + Duration::from_secs(secs)
}

/// `n` stores ("processes") on one fresh, migrated database.
async fn processes(n: usize) -> (Vec<PgStore>, TestDatabase) {
    let db = fresh_database().await;
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(PgStore::connect_with(db.url(), 8).await.expect("connect"));
    }
    stores[0].migrate().await.expect("migrate");
    (stores, db)
}

async fn close(stores: Vec<PgStore>) {
    for store in stores {
        store.close().await;
    }
}

async fn source(store: &PgStore, ws: WorkspaceId, seed: u8) -> SourceId {
    let token = SourceToken::generate([seed; 32]);
    let new = NewSource {
        name: format!("source {seed}"),
        kind: SourceKind::Generic,
        token_hash: token.hash(),
        token_hint: token.hint(),
    };
    store.create_source(ws, new, at(0)).await.expect("source").id
}

fn request(ws: WorkspaceId, source: SourceId, body: &Value, key: Option<String>, t: Timestamp) -> IngestRequest {
    IngestRequest {
        workspace_id: ws,
        source_id: source,
        received_at: t,
        request: RequestRecord {
            method: "POST".into(),
            content_type: Some("application/json".into()),
            body: body.to_string().into_bytes(),
        },
        idempotency_key: key,
        event: parse_generic(body).expect("valid payload"),
        notes: Vec::new(),
    }
}

fn receipt(result: &IngestResult) -> (EventId, Option<ContactId>, bool) {
    match result {
        IngestResult::Accepted(r) => (r.event_id, r.contact_id, true),
        IngestResult::Replayed(r) => (r.event_id, r.contact_id, false),
        other @ (IngestResult::Unmatched | IngestResult::OverLimit(_)) => panic!("unexpected {other:?}"),
    }
}

async fn count_events(store: &PgStore, ws: WorkspaceId) -> usize {
    let mut page = PageRequest::first(500);
    let mut n = 0;
    loop {
        let got = store.list_events(ws, &EventFilter::default(), page).await.expect("events");
        n += got.items.len();
        match got.next_cursor {
            Some(c) => page.after = Some(herald_domain::Cursor::decode(c.as_str()).expect("c")),
            None => return n,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_idempotency_key_is_accepted_once_across_processes() {
    const KEYS: usize = 10;
    let (stores, _db) = processes(3).await;
    let ws = stores[0].ensure_default_workspace(at(0)).await.expect("ws");
    let src = source(&stores[0], ws.id, 1).await;
    let mut tasks = Vec::new();
    for (p, store) in stores.iter().enumerate() {
        for t in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                // Each task has its own contact, so only the keys are shared.
                let batch: Vec<IngestRequest> = (0..KEYS)
                    .map(|k| {
                        let body = json!({"email": format!("p{p}t{t}@example.com"), "event": "paid"});
                        request(ws.id, src, &body, Some(format!("key-{k}")), at(1))
                    })
                    .collect();
                store.ingest(&batch, at(1)).await.expect("ingest")
            }));
        }
    }
    let mut by_key: Vec<HashSet<EventId>> = vec![HashSet::new(); KEYS];
    let mut accepted = vec![0; KEYS];
    for task in tasks {
        for (k, result) in task.await.expect("task").iter().enumerate() {
            let (event, _, fresh) = receipt(result);
            by_key[k].insert(event);
            accepted[k] += usize::from(fresh);
        }
    }
    assert!(by_key.iter().all(|events| events.len() == 1), "one receipt per key");
    assert_eq!(accepted, vec![1; KEYS], "each key accepted exactly once");
    assert_eq!(count_events(&stores[0], ws.id).await, KEYS);
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_creating_the_same_contacts_in_any_order_all_commit() {
    let (stores, _db) = processes(3).await;
    let ws = stores[0].ensure_default_workspace(at(0)).await.expect("ws");
    let other = stores[0].create_workspace(&WorkspaceName::parse("other").expect("name"), at(0)).await.expect("ws");
    let sources = [source(&stores[0], ws.id, 1).await, source(&stores[0], other.id, 2).await];
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (p, store) in stores.iter().enumerate() {
        for t in 0..3u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for round in 0..5u64 {
                    // Both workspaces, emails in an order that differs per task and round.
                    let mut batch = Vec::new();
                    for n in 0..30u64 {
                        // A multiplier coprime with 30: every email once per batch.
                        let n = (n * [1, 7, 11][t as usize] + round * 7 + p as u64) % 30;
                        for (w, (ws, src)) in [(ws.id, sources[0]), (other.id, sources[1])].into_iter().enumerate() {
                            let body = json!({
                                "email": format!("c{n}@example.com"),
                                "userId": format!("u{n}-{w}"),
                                "event": "tick",
                                "data": {format!("p{p}t{t}"): round}
                            });
                            batch.push(request(ws, src, &body, None, at(round)));
                        }
                    }
                    store.ingest(&batch, at(round)).await.expect("ingest");
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("task");
    }
    let elapsed = started.elapsed();
    for workspace in [ws.id, other.id] {
        let contacts = stores[0]
            .list_contacts(workspace, &ContactFilter::default(), PageRequest::first(100))
            .await
            .expect("contacts");
        assert_eq!(contacts.items.len(), 30, "one contact per email");
        for contact in &contacts.items {
            assert_eq!(contact.attributes.len(), 9, "{:?}", contact.attributes);
            assert!(contact.attributes.values().all(|v| v == 4), "no lost merge");
        }
        assert_eq!(count_events(&stores[0], workspace).await, 9 * 5 * 30);
    }
    // Deadlocks would still commit (after a retry), but each costs PostgreSQL's
    // deadlock_timeout (1 s) of waiting: consistent lock order keeps them out.
    eprintln!("45 batches of 60 requests in {elapsed:?}");
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_postgres_cannot_store_as_given_does_not_fail_the_batch() {
    let (stores, _db) = processes(1).await;
    let store = &stores[0];
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let src = source(store, ws.id, 1).await;
    let nul = json!({
        "email": "nul@example.com",
        "event": "odd",
        "data": {"k\u{0}ey": "va\u{0}lue", "name": "A\u{0}B", "nested": ["\u{0}"]}
    });
    let mut ancient = request(ws.id, src, &json!({"email": "old@example.com", "event": "ancient"}), None, at(1));
    ancient.event.occurred_at = Some(Timestamp::MIN);
    let batch = vec![
        request(ws.id, src, &json!({"email": "fine@example.com", "event": "ok"}), None, at(1)),
        IngestRequest {
            notes: vec!["the mapping quoted \u{0}".into()],
            ..request(ws.id, src, &nul, Some("key\u{0}1".into()), at(1))
        },
        ancient,
    ];
    let results = store.ingest(&batch, at(1)).await.expect("ingest");
    let (nul_event, nul_contact, _) = receipt(&results[1]);
    let event = store.get_event(ws.id, nul_event).await.expect("event");
    assert_eq!(
        Value::Object(event.properties),
        json!({"k\u{FFFD}ey": "va\u{FFFD}lue", "name": "A\u{FFFD}B", "nested": ["\u{FFFD}"]})
    );
    assert_eq!(event.idempotency_key.as_deref(), Some("key\u{FFFD}1"));
    assert!(event.outcome.notes.contains(&"the mapping quoted \u{FFFD}".to_owned()));
    assert_eq!(event.request.expect("request").body, nul.to_string().into_bytes(), "the raw body is kept exactly");
    let contact = store.get_contact(ws.id, nul_contact.expect("contact")).await.expect("contact");
    assert_eq!(contact.name.as_deref(), Some("A\u{FFFD}B"));
    let filtered = store
        .list_contacts(
            ws.id,
            &ContactFilter { attribute: Some(("k\u{0}ey".into(), json!("va\u{0}lue"))), ..ContactFilter::default() },
            PageRequest::first(10),
        )
        .await
        .expect("filter");
    assert_eq!(filtered.items.len(), 1, "filters compare the stored form");
    let (old_event, _, _) = receipt(&results[2]);
    let old = store.get_event(ws.id, old_event).await.expect("event");
    assert!(old.occurred_at > Timestamp::MIN && old.occurred_at < at(0));

    // The same key, as sent, replays.
    let again =
        store.ingest(&[request(ws.id, src, &nul, Some("key\u{0}1".into()), at(2))], at(2)).await.expect("ingest");
    assert_eq!(receipt(&again[0]), (nul_event, nul_contact, false));

    store
        .record_rejections(&[Rejection {
            workspace_id: ws.id,
            source_id: src,
            received_at: at(3),
            status: 400,
            code: "validation_failed".into(),
            reason: "email: \u{0}".into(),
            body_prefix: vec![0, 1, 2],
        }])
        .await
        .expect("rejection");
    store
        .record_samples(&[Sample {
            workspace_id: ws.id,
            source_id: src,
            received_at: at(3),
            body: json!({"\u{0}": "\u{0}"}),
        }])
        .await
        .expect("sample");
    assert_eq!(store.list_samples(ws.id, src).await.expect("samples")[0].body, json!({"\u{FFFD}": "\u{FFFD}"}));
    close(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn imports_and_ingest_racing_on_the_same_emails_agree() {
    let (stores, _db) = processes(2).await;
    let ws = stores[0].ensure_default_workspace(at(0)).await.expect("ws");
    let src = source(&stores[0], ws.id, 1).await;
    let rows: Vec<NewContact> = (0..3000)
        .map(|i| NewContact {
            identity: Identity {
                email: Some(EmailAddress::parse(&format!("r{i}@example.com")).expect("email")),
                ..Identity::default()
            },
            attributes: json!({"imported": true}).as_object().cloned().expect("object"),
            ..NewContact::default()
        })
        .collect();
    let importer = {
        let store = stores[0].clone();
        tokio::spawn(async move { store.import_contacts(ws.id, &rows, at(1)).await })
    };
    let ingester = {
        let store = stores[1].clone();
        tokio::spawn(async move {
            for chunk in 0..30 {
                let batch: Vec<IngestRequest> = (0..100)
                    .map(|i| {
                        let body =
                            json!({"email": format!("r{}@example.com", chunk * 100 + i), "data": {"ingested": true}});
                        request(ws.id, src, &body, None, at(1))
                    })
                    .collect();
                store.ingest(&batch, at(1)).await.expect("ingest");
            }
        })
    };
    let imported = importer.await.expect("task").expect("import");
    ingester.await.expect("task");
    assert!(imported.iter().all(Result::is_ok));
    let mut all = HashMap::new();
    let mut page = PageRequest::first(500);
    loop {
        let got = stores[0].list_contacts(ws.id, &ContactFilter::default(), page).await.expect("list");
        for contact in got.items {
            all.insert(contact.email.clone().expect("email"), contact.attributes);
        }
        match got.next_cursor {
            Some(c) => page.after = Some(herald_domain::Cursor::decode(c.as_str()).expect("c")),
            None => break,
        }
    }
    assert_eq!(all.len(), 3000, "one contact per email");
    assert!(
        all.values().all(|a| a.get("imported") == Some(&json!(true)) && a.get("ingested") == Some(&json!(true))),
        "both writers' attributes kept"
    );
    close(stores).await;
}

/// 100,000 rows in one call. Prints the rate (run with `--nocapture` to see it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_rows_import_in_one_call() {
    const ROWS: usize = 100_000;
    let (stores, _db) = processes(1).await;
    let store = &stores[0];
    let ws = store.ensure_default_workspace(at(0)).await.expect("ws");
    let rows: Vec<NewContact> = (0..ROWS)
        .map(|i| NewContact {
            identity: Identity {
                email: Some(EmailAddress::parse(&format!("row{i}@example.com")).expect("email")),
                ..Identity::default()
            },
            first_name: Some(format!("R{i}")),
            attributes: json!({"i": i, "plan": "free"}).as_object().cloned().expect("object"),
            ..NewContact::default()
        })
        .collect();
    let started = Instant::now();
    let results = store.import_contacts(ws.id, &rows, at(1)).await.expect("import");
    let created = started.elapsed();
    assert!(results.iter().all(|r| matches!(r, Ok(ImportOutcome::Created(_)))));
    // Again: every row now updates an existing contact.
    let started = Instant::now();
    let results = store.import_contacts(ws.id, &rows, at(2)).await.expect("import");
    let updated = started.elapsed();
    assert!(results.iter().all(|r| matches!(r, Ok(ImportOutcome::Updated(_)))));
    let rate = |d: Duration| ROWS as f64 / d.as_secs_f64();
    eprintln!(
        "import of {ROWS} rows: new {created:?} ({:.0} rows/s), existing unchanged {updated:?} ({:.0} rows/s)",
        rate(created),
        rate(updated)
    );
    close(stores).await;
}
