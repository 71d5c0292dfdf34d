//! What happened to a message becomes data: every activity (sent, opened, clicked, bounced, …)
//! is an `email_*` event of the contact, in the event log and the contact's timeline, that
//! campaigns trigger on, convert on, and test in branches (`emails.previous.opened`,
//! `emails.previous.links_clicked`). Activities are recorded here through the email service,
//! the one door the mail listener, the providers' notifications and the tracking links use.

mod common;

use std::time::Duration;

use common::{Backend, TestApp, json, spawn_app};
use herald_domain::{Activity, ActivityKind, BounceKind, MessageId};
use herald_server::clock::Clock;
use herald_server::delivery::email::activity::Recorded;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    activities_become_events_that_trigger_convert_and_branch,
    numbers_count_each_message_once_and_machine_opens_apart
);

const DAY: Duration = Duration::from_secs(86_400);

fn email(id: &str, subject: &str) -> Value {
    json!({"id": id, "type": "email", "from": "Acme <hello@acme.test>", "subject": subject,
           "html": "<p>Hello</p>"})
}

async fn create(app: &TestApp, document: Value) -> String {
    let (status, body) = json(app.post("/api/v1/campaigns", &document).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let (status, body) = json(app.post(&format!("/api/v1/campaigns/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

async fn messages(app: &TestApp, campaign: &str) -> Vec<Value> {
    let (status, body) = json(app.get(&format!("/api/v1/messages?campaign_id={campaign}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut messages = body["data"].as_array().expect("data").clone();
    messages.reverse();
    messages
}

fn subjects(messages: &[Value]) -> Vec<&str> {
    messages.iter().map(|m| m["subject"].as_str().expect("subject")).collect()
}

async fn record(app: &TestApp, message: &Value, kind: ActivityKind, edit: impl FnOnce(&mut Activity)) -> Recorded {
    let id: MessageId = message["id"].as_str().expect("id").parse().expect("message id");
    let workspace = app.store.ensure_default_workspace(app.clock.now()).await.expect("workspace").id;
    let mut activity = Activity::new(id, kind, "test", app.clock.now());
    edit(&mut activity);
    app.app.state.email.email.record_activity(workspace, activity).await.expect("record")
}

async fn activities_become_events_that_trigger_convert_and_branch(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, source) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    let url = source["url"].as_str().expect("url").to_owned();
    let onboarding = create(
        &app,
        json!({
            "name": "Onboarding",
            "trigger": {"type": "event", "event": "signed_up"},
            "goal": {"event": "email_clicked", "within": "30d", "exit": false},
            "steps": [
                email("welcome", "Welcome"),
                {"type": "wait", "duration": "1d"},
                {"id": "read", "type": "branch",
                 "condition": {"field": "emails.previous.opened", "op": "eq", "value": true},
                 "then": [{"id": "pricing", "type": "branch",
                           "condition": {"field": "emails.welcome.links_clicked", "op": "contains",
                                         "value": "/pricing"},
                           "then": [email("sales", "Questions about plans?")],
                           "else": [email("tips", "Three tips")]}],
                 "else": [email("resend", "Did you miss this?")]}
            ]
        }),
    )
    .await;
    let follow_up = create(
        &app,
        json!({
            "name": "Pricing clickers",
            "trigger": {"type": "event", "event": "email_clicked",
                        "filter": {"field": "event.data.url", "op": "contains", "value": "/pricing"}},
            "entry": "every_time",
            "steps": [email("offer", "An offer for {{ event.data.campaign }}")]
        }),
    )
    .await;

    for who in ["reader@x.test", "clicker@x.test", "silent@x.test"] {
        let (status, _) =
            json(app.client.post(&url).json(&json!({"email": who, "event": "signed_up"})).send().await.expect("post"))
                .await;
        assert_eq!(status, StatusCode::OK);
    }
    app.run_jobs().await;
    let welcomes = messages(&app, &onboarding).await;
    assert_eq!(welcomes.len(), 3);
    let to = |who: &str| welcomes.iter().find(|m| m["to"] == who).expect("message").clone();
    let (reader, clicker) = (to("reader@x.test"), to("clicker@x.test"));

    // A privacy proxy's open counts as opened; a click proves an open, and converts.
    assert_eq!(record(&app, &reader, ActivityKind::Opened, |a| a.machine = true).await, Recorded::Applied);
    let pricing = |a: &mut Activity| {
        a.url = Some("https://acme.test/pricing?plan=pro".into());
        a.key = Some("click-1".into());
    };
    assert_eq!(record(&app, &clicker, ActivityKind::Clicked, pricing).await, Recorded::Applied);
    assert_eq!(record(&app, &clicker, ActivityKind::Clicked, pricing).await, Recorded::Duplicate);
    app.run_jobs().await;
    // The click started the other campaign once, with the click's data.
    assert_eq!(subjects(&messages(&app, &follow_up).await), ["An offer for Onboarding"]);

    app.clock.advance(DAY);
    app.run_jobs().await;
    let sent = messages(&app, &onboarding).await;
    let mut later: Vec<(&str, &str)> =
        sent[3..].iter().map(|m| (m["to"].as_str().expect("to"), m["subject"].as_str().expect("subject"))).collect();
    later.sort();
    assert_eq!(
        later,
        [
            ("clicker@x.test", "Questions about plans?"),
            ("reader@x.test", "Three tips"),
            ("silent@x.test", "Did you miss this?")
        ]
    );
    let (_, stats) = json(app.get(&format!("/api/v1/campaigns/{onboarding}/stats")).await).await;
    assert_eq!(stats["converted"], 1, "{stats}");

    // The contact's timeline has the email's story, with what each activity carried.
    let contact = clicker["contact_id"].as_str().expect("contact");
    let (_, events) = json(app.get(&format!("/api/v1/events?contact_id={contact}")).await).await;
    let names: Vec<&str> = events["data"].as_array().expect("data").iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.contains(&"email_sent") && names.contains(&"email_clicked"), "{names:?}");
    let click = events["data"].as_array().expect("data").iter().find(|e| e["name"] == "email_clicked").expect("click");
    assert_eq!(click["properties"]["url"], "https://acme.test/pricing?plan=pro", "{click}");
    assert_eq!(click["properties"]["message_id"], clicker["id"]);

    // A later hard bounce moves the message and suppresses the address, with the message named.
    let silent = to("silent@x.test");
    let bounce = |a: &mut Activity| {
        a.bounce = Some(BounceKind::Hard);
        a.reason = Some("550 5.1.1 user unknown".into());
    };
    assert_eq!(record(&app, &silent, ActivityKind::Bounced, bounce).await, Recorded::Applied);
    let (_, message) = json(app.get(&format!("/api/v1/messages/{}", silent["id"].as_str().expect("id"))).await).await;
    assert_eq!((message["status"].as_str(), message["bounce"].as_str()), (Some("bounced"), Some("hard")), "{message}");
    let (_, list) = json(app.get("/api/v1/suppressions").await).await;
    let entry = &list["data"][0];
    assert_eq!((entry["email"].as_str(), entry["reason"].as_str()), (Some("silent@x.test"), Some("hard_bounce")));
    assert_eq!(entry["message_id"], silent["id"], "{entry}");
    // A message that is not there changes nothing.
    let gone = json!({"id": MessageId::from_uuid(uuid::Uuid::from_u128(7)).to_string()});
    assert_eq!(record(&app, &gone, ActivityKind::Opened, |_| ()).await, Recorded::UnknownMessage);
    app.stop().await;
}

async fn numbers_count_each_message_once_and_machine_opens_apart(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, source) = json(app.post("/api/v1/sources", &json!({"name": "app", "kind": "generic"})).await).await;
    let url = source["url"].as_str().expect("url").to_owned();
    let id = create(
        &app,
        json!({"name": "News", "trigger": {"type": "event", "event": "joined"},
               "goal": {"event": "subscribed", "within": "7d"},
               "steps": [email("first", "First"), {"type": "wait", "duration": "1d"}, email("second", "Second")]}),
    )
    .await;
    let people: Vec<String> = (0..4).map(|n| format!("p{n}@x.test")).collect();
    for who in &people {
        let body = json!({"email": who, "event": "joined"});
        let (status, _) = json(app.client.post(&url).json(&body).send().await.expect("post")).await;
        assert_eq!(status, StatusCode::OK);
    }
    app.run_jobs().await;
    let mut first = messages(&app, &id).await;
    assert_eq!(first.len(), 4);
    first.sort_by_key(|m| m["to"].as_str().map(str::to_owned));
    // p0 opens twice and clicks; p1's open is a privacy proxy's; p2 bounces; p3 complains.
    record(&app, &first[0], ActivityKind::Opened, |_| ()).await;
    record(&app, &first[0], ActivityKind::Opened, |_| ()).await;
    record(&app, &first[0], ActivityKind::Clicked, |a| a.url = Some("https://acme.test/a".into())).await;
    record(&app, &first[1], ActivityKind::Opened, |a| a.machine = true).await;
    record(&app, &first[2], ActivityKind::Bounced, |a| a.bounce = Some(BounceKind::Hard)).await;
    record(&app, &first[3], ActivityKind::Complained, |a| a.reason = Some("abuse".into())).await;
    let (status, _) = json(
        app.client.post(&url).json(&json!({"email": "p0@x.test", "event": "subscribed"})).send().await.expect("post"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.run_jobs().await;

    let (status, stats) = json(app.get(&format!("/api/v1/campaigns/{id}/email-stats")).await).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let totals = &stats["totals"];
    let counts: Vec<u64> =
        ["sent", "opened", "opens", "machine_opened", "clicked", "clicks", "bounced_hard", "complained"]
            .iter()
            .map(|k| totals[k].as_u64().unwrap_or(u64::MAX))
            .collect();
    assert_eq!(counts, [4, 1, 2, 1, 1, 1, 1, 1], "{totals}");
    assert_eq!(totals["converted"], 1, "{totals}");
    assert_eq!((totals["rates"]["opened"].as_f64(), totals["rates"]["complained"].as_f64()), (Some(0.25), Some(0.25)));
    assert_eq!(stats["steps"]["first"]["sent"], 4, "{stats}");
    assert_eq!(stats["steps"]["first"]["converted"], 1, "the conversion is credited to the first email");
    assert_eq!(stats["daily"].as_array().map(Vec::len), Some(1), "{stats}");
    assert_eq!(stats["daily"][0]["sent"], 4);
    let (status, step) = json(app.get(&format!("/api/v1/campaigns/{id}/email-stats?step=first&days=7")).await).await;
    assert_eq!((status, &step["totals"]["clicks"]), (StatusCode::OK, &json!(1)), "{step}");
    let (status, body) = json(app.get(&format!("/api/v1/campaigns/{id}/email-stats?days=0")).await).await;
    assert_eq!((status, body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("days")), "{body}");

    let message = first[0]["id"].as_str().expect("id");
    let (status, activity) = json(app.get(&format!("/api/v1/messages/{message}/activity")).await).await;
    assert_eq!(status, StatusCode::OK, "{activity}");
    let kinds: Vec<&str> =
        activity["activities"].as_array().expect("activities").iter().filter_map(|a| a["kind"].as_str()).collect();
    assert_eq!(kinds, ["sent", "opened", "opened", "clicked"]);
    assert_eq!((activity["numbers"]["opens"].as_u64(), activity["numbers"]["converted"].as_u64()), (Some(2), Some(1)));

    // One complaint in four messages: far past the bulk-sender limit.
    let (status, deliverability) = json(app.get("/api/v1/deliverability").await).await;
    assert_eq!(status, StatusCode::OK, "{deliverability}");
    let week = &deliverability["last_7_days"];
    assert_eq!((week["sent"].as_u64(), week["complaint_state"].as_str()), (Some(4), Some("alarm")), "{week}");
    assert_eq!(week["bounce_rate"].as_f64(), Some(0.25));
    app.clock.advance(DAY * 8);
    let (_, later) = json(app.get("/api/v1/deliverability").await).await;
    assert_eq!((later["last_7_days"]["sent"].as_u64(), later["last_30_days"]["sent"].as_u64()), (Some(0), Some(4)));
    assert_eq!(later["last_7_days"]["complaint_state"], "ok");
    app.stop().await;
}
