use serde_json::json;

use super::*;
use crate::document_from_value;

#[test]
fn steps_using_an_action_are_found_in_branches_too() {
    let document = document_from_value(json!({
        "name": "x", "trigger": {"type": "manual"},
        "steps": [
            {"type": "webhook", "id": "crm", "action": "act_a"},
            {"type": "branch", "condition": {"field": "a", "op": "exists"},
             "then": [{"type": "webhook", "id": "again", "action": "act_a"}],
             "else": [{"type": "webhook", "id": "other", "action": "act_b"}]}
        ]
    }))
    .expect("document");
    assert_eq!(steps_using_action(&document, "act_a"), ["crm", "again"]);
    assert_eq!(steps_using_action(&document, "act_c"), Vec::<String>::new());
    assert_eq!(action_references(&document), ["act_a", "act_b"]);
}

#[test]
fn email_topics_are_read_and_their_shape_checked_by_path() {
    let email = |extra: serde_json::Value| {
        let mut step = json!({"type": "email", "from": "a@acme.test", "subject": "s", "html": "h"});
        step.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        step
    };
    let topic = "top_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b";
    let document = |steps: serde_json::Value| {
        document_from_value(json!({"name": "x", "trigger": {"type": "manual"}, "steps": steps})).expect("document")
    };
    let good = document(json!([
        email(json!({"topic": topic})),
        {"type": "branch", "condition": {"field": "a", "op": "exists"},
         "then": [email(json!({"transactional": true}))], "else": [email(json!({"topic": topic}))]}
    ]));
    assert_eq!(
        topic_references(&good),
        [("steps[0].topic".to_owned(), topic.to_owned()), ("steps[1].else[0].topic".to_owned(), topic.to_owned())]
    );
    let compiled = compile(good).expect("compiles");
    let Action::Email(email_template) = &compiled.program.nodes[0].action else { panic!("an email") };
    assert_eq!(email_template.topic.map(|t| t.to_string()).as_deref(), Some(topic));

    let errors = compile(document(json!([
        {"type": "branch", "condition": {"field": "a", "op": "exists"}, "then": [email(json!({"topic": "newsletter"}))], "else": []},
        email(json!({"topic": topic, "transactional": true}))
    ])))
    .expect_err("refused");
    let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["steps[0].then[0].topic", "steps[1].transactional"], "{errors:?}");
    assert!(errors[0].message.contains("is not a topic id"), "{errors:?}");
}

#[test]
fn email_steps_take_their_content_from_a_shared_template() {
    let document = |step: serde_json::Value| {
        document_from_value(json!({"name": "x", "trigger": {"type": "manual"}, "steps": [step]})).expect("document")
    };
    let mut library = Library::default();
    let shared = SharedEmail { subject: "Hi {{ first_name }}".into(), html: "<p>Hi</p>".into(), text: None };
    library.templates.insert("tpl_a".into(), shared);
    let uses = |template: &str| json!({"type": "email", "from": "a@acme.test", "template": template});
    let compiled = compile_with(document(uses("tpl_a")), &library).expect("compiles");
    assert!(matches!(&compiled.program.nodes[0].action, Action::Email(_)));
    assert_eq!(template_references(&compiled.document), ["tpl_a"]);

    let errors = compile_with(document(uses("tpl_b")), &library).expect_err("unknown");
    assert_eq!(errors[0].path, "steps[0].template");
    let both = json!({"type": "email", "from": "a@acme.test", "template": "tpl_a", "subject": "s"});
    assert_eq!(compile_with(document(both), &library).expect_err("both")[0].path, "steps[0]");
    library.templates.insert("tpl_a".into(), SharedEmail { subject: "{{ x".into(), ..SharedEmail::default() });
    let broken = compile_with(document(uses("tpl_a")), &library).expect_err("broken");
    assert!(broken.iter().all(|e| e.path == "steps[0].template"), "{broken:?}");
    let neither = json!({"type": "email", "from": "a@acme.test"});
    let paths: Vec<_> = compile(document(neither)).expect_err("neither").into_iter().map(|e| e.path).collect();
    assert_eq!(paths, ["steps[0].subject", "steps[0].html"]);
}
