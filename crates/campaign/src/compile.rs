//! Validation: a document becomes a [`Program`] (steps as nodes with their successors,
//! templates compiled) or a list of every problem, each naming the place and the step.

use std::collections::HashSet;
use std::fmt;

use herald_domain::{EmailAddress, TopicId, Tracking};
use herald_template::Template;
use serde::Serialize;
use serde_json::Value;

pub use crate::program::{
    Action, CompiledCampaign, EmailTemplate, Mailbox, Node, Program, ValueTemplate, WEBHOOK_CONTENT_TYPES,
    WEBHOOK_MAX_TIMEOUT, WEBHOOK_METHODS, Wait, WebhookTemplate,
};

use crate::document::{CampaignDocument, EmailStep, Goal, Step, Trigger, WaitStep, WebhookStep};
use crate::span::Span;

/// One problem in a document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DocumentError {
    /// Where: `steps[2].then[0].subject`; empty for the document itself.
    pub path: String,
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

const MAX_STEPS: usize = 500;
const MAX_NAME: usize = 200;
/// Attributes a set-attribute step may not touch: they are identity, not data.
const RESERVED_ATTRIBUTES: [&str; 4] = ["id", "email", "user_id", "phone"];
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Validates `document`, filling in missing step ids. Returns every problem found.
pub fn compile(document: CampaignDocument) -> Result<CompiledCampaign, Vec<DocumentError>> {
    compile_with(document, &Library::default())
}

/// Saved actions by id (`act_…`), as webhook steps that use them see them.
pub type Actions = std::collections::BTreeMap<String, WebhookStep>;

/// Shared templates by id (`tpl_…`), as email steps that use them send them.
pub type Templates = std::collections::BTreeMap<String, SharedEmail>;

/// A shared template as an email step sends it: its subject, and its HTML and text already
/// inside its layout (Liquid sources).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedEmail {
    pub subject: String,
    pub html: String,
    /// Derived from the HTML when absent.
    pub text: Option<String>,
}

/// What a document's steps refer to by id: saved actions and shared templates.
#[derive(Debug, Clone, Default)]
pub struct Library {
    pub actions: Actions,
    pub templates: Templates,
}

/// The saved actions a document's webhook steps use.
pub fn action_references(document: &CampaignDocument) -> Vec<String> {
    references(document, |step| match step {
        Step::Webhook(webhook) => webhook.action.as_ref(),
        _ => None,
    })
}

/// The shared templates a document's email steps use.
pub fn template_references(document: &CampaignDocument) -> Vec<String> {
    references(document, |step| match step {
        Step::Email(email) => email.template.as_ref(),
        _ => None,
    })
}

/// The distinct ids `of` finds in the document's steps, in order.
fn references(document: &CampaignDocument, of: impl Fn(&Step) -> Option<&String>) -> Vec<String> {
    let mut found = Vec::new();
    each_step(&document.steps, &mut |step| {
        if let Some(id) = of(step)
            && !found.contains(id)
        {
            found.push(id.clone());
        }
    });
    found
}

/// The ids of a document's webhook steps that use saved action `action` (`act_…`).
pub fn steps_using_action(document: &CampaignDocument, action: &str) -> Vec<String> {
    let mut found = Vec::new();
    each_step(&document.steps, &mut |step| {
        if let Step::Webhook(step) = step
            && step.action.as_deref() == Some(action)
        {
            found.push(step.id.clone());
        }
    });
    found
}

/// The topics a document's email steps name, each with the path of its `topic` field
/// (`steps[2].then[0].topic`), in document order.
pub fn topic_references(document: &CampaignDocument) -> Vec<(String, String)> {
    fn walk(steps: &[Step], path: &str, found: &mut Vec<(String, String)>) {
        for (i, step) in steps.iter().enumerate() {
            let here = format!("{path}[{i}]");
            match step {
                Step::Email(EmailStep { topic: Some(topic), .. }) => {
                    found.push((format!("{here}.topic"), topic.clone()))
                }
                Step::Branch(branch) => {
                    walk(&branch.then, &format!("{here}.then"), found);
                    walk(&branch.otherwise, &format!("{here}.else"), found);
                }
                _ => {}
            }
        }
    }
    let mut found = Vec::new();
    walk(&document.steps, "steps", &mut found);
    found
}

/// Calls `f` with every step, in branches too.
fn each_step(steps: &[Step], f: &mut impl FnMut(&Step)) {
    for step in steps {
        f(step);
        if let Step::Branch(branch) = step {
            each_step(&branch.then, f);
            each_step(&branch.otherwise, f);
        }
    }
}

/// Validates a saved action's request on its own; errors name its fields (`url`, `body`).
pub fn compile_action(action: &WebhookStep) -> Result<WebhookTemplate, Vec<DocumentError>> {
    let library = Library::default();
    let mut builder = Builder { nodes: Vec::new(), errors: Vec::new(), library: &library };
    for (set, field) in [(!action.id.is_empty(), "id"), (action.action.is_some(), "action")] {
        if set {
            builder.error(field, "belongs to a campaign step, not to a saved action".into());
        }
    }
    for (set, field) in [(action.draft, "draft"), (action.conversion, "conversion")] {
        if set {
            builder.error(field, "is set per campaign step that uses the action".into());
        }
    }
    let compiled = builder.webhook(action, "");
    let mut errors = builder.errors;
    for error in &mut errors {
        error.path = error.path.trim_start_matches('.').to_owned();
    }
    match compiled {
        Action::Webhook(template) if errors.is_empty() => Ok(*template),
        _ => Err(errors),
    }
}

/// Compiles a document whose steps may use the saved actions and shared templates of `library`.
pub fn compile_with(mut document: CampaignDocument, library: &Library) -> Result<CompiledCampaign, Vec<DocumentError>> {
    let mut errors = Vec::new();
    let mut push = |path: &str, message: String| errors.push(DocumentError { path: path.into(), message });
    let name = document.name.trim();
    if name.is_empty() {
        push("name", "must not be empty".into());
    } else if name.chars().count() > MAX_NAME {
        push("name", format!("is too long (at most {MAX_NAME} characters)"));
    }
    check_trigger(&document.trigger, &mut push);
    if let Some(goal) = &document.goal {
        check_goal(goal, &mut push);
    }
    if let Some(Err(e)) = document.timezone.as_deref().map(check_timezone) {
        push("timezone", e);
    }
    if document.steps.is_empty() {
        push("steps", "a campaign needs at least one step".into());
    }
    assign_ids(&mut document.steps, &mut errors);
    let mut builder = Builder { nodes: Vec::new(), errors, library };
    if builder.count(&document.steps) > MAX_STEPS {
        builder.error("steps", format!("a campaign may have at most {MAX_STEPS} steps"));
    } else {
        builder.list(&document.steps, "steps", None);
    }
    match builder.nodes.into_iter().collect::<Option<Vec<Node>>>() {
        Some(nodes) if builder.errors.is_empty() => {
            let reads_emails = serde_json::to_string(&document).is_ok_and(|text| text.contains("emails."));
            Ok(CompiledCampaign { document, program: Program { nodes }, reads_emails })
        }
        _ => Err(builder.errors),
    }
}

fn check_event_name(path: &str, name: &str, push: &mut impl FnMut(&str, String)) {
    if name.is_empty() {
        push(path, "must not be empty".into());
    } else if name.trim() != name {
        push(path, format!("{name:?} has leading or trailing spaces; event names are exact"));
    } else if name.chars().count() > MAX_NAME {
        push(path, format!("is too long (at most {MAX_NAME} characters)"));
    }
}

fn check_trigger(trigger: &Trigger, push: &mut impl FnMut(&str, String)) {
    match trigger {
        Trigger::Event { event, occurrence, .. } => {
            check_event_name("trigger.event", event, push);
            if occurrence.is_some_and(|o| o.nth == 0) {
                push("trigger.occurrence.nth", "counts from 1 (the first event)".into());
            }
        }
        Trigger::DropOff { event, missing, .. } => {
            check_event_name("trigger.event", event, push);
            check_event_name("trigger.missing", missing, push);
            if event == missing {
                push("trigger.missing", "must differ from trigger.event".into());
            }
        }
        Trigger::Inactivity { events, .. } => {
            for (i, name) in events.iter().enumerate() {
                check_event_name(&format!("trigger.events[{i}]"), name, push);
            }
        }
        Trigger::Source { .. } | Trigger::Segment { .. } | Trigger::Manual => {}
    }
}

fn check_goal(goal: &Goal, push: &mut impl FnMut(&str, String)) {
    check_event_name("goal.event", &goal.event, push);
}

/// Checks given ids (unique, short, URL-safe) and names the unnamed steps `<kind>-<n>`.
fn assign_ids(steps: &mut [Step], errors: &mut Vec<DocumentError>) {
    let mut seen = HashSet::new();
    visit(steps, "steps", &mut |step, path| {
        let id = step.id().to_owned();
        if id.is_empty() {
            return;
        }
        if id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            errors.push(DocumentError {
                path: format!("{path}.id"),
                message: format!("{id:?}: use at most 64 letters, digits, '-' or '_'"),
            });
        } else if !seen.insert(id.clone()) {
            errors
                .push(DocumentError { path: format!("{path}.id"), message: format!("{id:?} is used by another step") });
        }
    });
    let mut counter = 0usize;
    visit(steps, "steps", &mut |step, _| {
        let kind = step.kind();
        if let Some(id) = step.id_mut().filter(|id| id.is_empty()) {
            loop {
                counter += 1;
                let candidate = format!("{kind}-{counter}");
                if seen.insert(candidate.clone()) {
                    *id = candidate;
                    break;
                }
            }
        }
    });
}

/// Pre-order over every step, with its path.
fn visit(steps: &mut [Step], path: &str, f: &mut dyn FnMut(&mut Step, &str)) {
    for (i, step) in steps.iter_mut().enumerate() {
        let here = format!("{path}[{i}]");
        f(step, &here);
        if let Step::Branch(branch) = step {
            visit(&mut branch.then, &format!("{here}.then"), f);
            visit(&mut branch.otherwise, &format!("{here}.else"), f);
        }
    }
}

struct Builder<'a> {
    nodes: Vec<Option<Node>>,
    errors: Vec<DocumentError>,
    library: &'a Library,
}

impl Builder<'_> {
    fn error(&mut self, path: &str, message: String) {
        self.errors.push(DocumentError { path: path.into(), message });
    }

    fn count(&self, steps: &[Step]) -> usize {
        steps
            .iter()
            .map(|s| match s {
                Step::Branch(b) => 1 + self.count(&b.then) + self.count(&b.otherwise),
                _ => 1,
            })
            .sum()
    }

    /// Compiles a list whose last step continues at `continuation`; returns its first node
    /// (or `continuation` when the list is empty).
    fn list(&mut self, steps: &[Step], path: &str, continuation: Option<usize>) -> Option<usize> {
        let indices: Vec<usize> = steps
            .iter()
            .map(|_| {
                self.nodes.push(None);
                self.nodes.len() - 1
            })
            .collect();
        for (i, step) in steps.iter().enumerate() {
            let here = format!("{path}[{i}]");
            let next = indices.get(i + 1).copied().or(continuation);
            if matches!(step, Step::Exit(_)) && i + 1 < steps.len() {
                self.error(
                    &format!("{path}[{}]", i + 1),
                    format!("step {:?} can never run: it follows the exit step {:?}", steps[i + 1].id(), step.id()),
                );
            }
            let action = self.action(step, &here, next);
            self.nodes[indices[i]] = Some(Node { id: step.id().to_owned(), action, next });
        }
        indices.first().copied().or(continuation)
    }

    fn action(&mut self, step: &Step, path: &str, next: Option<usize>) -> Action {
        match step {
            Step::Wait(wait) => self.wait(wait, path, next).map_or(Action::Exit, Action::Wait),
            Step::Email(email) => {
                let from = self.mailbox(&email.from, &format!("{path}.from"));
                let reply_to = email.reply_to.as_deref().and_then(|r| self.mailbox(r, &format!("{path}.reply_to")));
                let (subject, html, text) = match &email.template {
                    None => {
                        let subject = self.template(&email.subject, &format!("{path}.subject"), true);
                        let html = self.template(&email.html, &format!("{path}.html"), true);
                        let text = email.text.as_deref().and_then(|t| self.template(t, &format!("{path}.text"), false));
                        (subject, html, text)
                    }
                    Some(_) if !email.subject.is_empty() || !email.html.is_empty() || email.text.is_some() => {
                        let message = "a step that uses a template takes its subject, html and text from it; \
                                       leave them out";
                        self.error(path, message.into());
                        (None, None, None)
                    }
                    Some(id) => match self.library.templates.get(id) {
                        Some(shared) => {
                            let at = format!("{path}.template");
                            let subject = self.template(&shared.subject, &at, true);
                            let html = self.template(&shared.html, &at, true);
                            let text = shared.text.as_deref().and_then(|t| self.template(t, &at, false));
                            (subject, html, text)
                        }
                        None => {
                            self.error(&format!("{path}.template"), format!("no template {id:?} in this workspace"));
                            (None, None, None)
                        }
                    },
                };
                let topic = self.topic(email, path);
                match (from, subject, html, topic) {
                    (Some(from), Some(subject), Some(html), Ok(topic)) => {
                        let tracking = Tracking { opens: email.track_opens, clicks: email.track_clicks };
                        Action::Email(Box::new(EmailTemplate { from, reply_to, subject, html, text, tracking, topic }))
                    }
                    _ => Action::Exit,
                }
            }
            Step::Branch(branch) => {
                let then = self.list(&branch.then, &format!("{path}.then"), next);
                let otherwise = self.list(&branch.otherwise, &format!("{path}.else"), next);
                Action::Branch { condition: branch.condition.clone(), then, otherwise }
            }
            Step::SetAttribute(set) => {
                self.attribute(&set.attribute, &format!("{path}.attribute"));
                let value = match &set.value {
                    Value::String(text) => self
                        .template(text, &format!("{path}.value"), false)
                        .map_or(ValueTemplate::Literal(Value::Null), ValueTemplate::Template),
                    other => ValueTemplate::Literal(other.clone()),
                };
                Action::Set { attribute: set.attribute.clone(), value, scope: set.scope }
            }
            Step::UnsetAttribute(unset) => {
                self.attribute(&unset.attribute, &format!("{path}.attribute"));
                Action::Unset { attribute: unset.attribute.clone(), scope: unset.scope }
            }
            Step::Exit(_) => Action::Exit,
            Step::Webhook(webhook) => match &webhook.action {
                None => self.webhook(webhook, path),
                Some(_) if webhook.has_request() => {
                    self.error(
                        path,
                        "a step that uses a saved action takes its request from it; leave out url, method, \
                         headers, body and the other request fields"
                            .into(),
                    );
                    Action::Exit
                }
                Some(id) => match self.library.actions.get(id) {
                    Some(action) => self.webhook(&webhook.with_request_of(action), &format!("{path}.action")),
                    None => {
                        self.error(&format!("{path}.action"), format!("no saved action {id:?} in this workspace"));
                        Action::Exit
                    }
                },
            },
        }
    }

    fn webhook(&mut self, step: &WebhookStep, path: &str) -> Action {
        let method = step.method.to_ascii_uppercase();
        if !WEBHOOK_METHODS.contains(&method.as_str()) {
            self.error(
                &format!("{path}.method"),
                format!("{:?} is not one of {}", step.method, WEBHOOK_METHODS.join(", ")),
            );
        }
        let url = self.template(&step.url, &format!("{path}.url"), true);
        let literal = !step.url.contains("{{") && !step.url.contains("{%");
        if literal && !(step.url.starts_with("https://") || step.url.starts_with("http://")) {
            self.error(
                &format!("{path}.url"),
                "must start with https:// (or http:// where the operator allows it)".into(),
            );
        }
        let mut headers = Vec::new();
        for (name, value) in &step.headers {
            let at = format!("{path}.headers.{name}");
            let token =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                self.error(&at, "is not a valid header name".into());
            } else if name.eq_ignore_ascii_case("content-type") {
                self.error(&at, "set the body's type with content_type instead".into());
            } else if ["host", "content-length", "authorization"].iter().any(|h| name.eq_ignore_ascii_case(h))
                && !(name.eq_ignore_ascii_case("authorization") && step.basic_auth.is_none())
            {
                self.error(&at, "is set by Herald".into());
            } else if name.to_ascii_lowercase().starts_with("webhook-")
                || name.to_ascii_lowercase().starts_with("x-herald-")
            {
                self.error(&at, "is a signature header set by Herald".into());
            }
            headers.extend(self.template(value, &at, false).map(|t| (name.clone(), t)));
        }
        if !WEBHOOK_CONTENT_TYPES.contains(&step.content_type.as_str()) {
            self.error(
                &format!("{path}.content_type"),
                format!("{:?} is not one of {}", step.content_type, WEBHOOK_CONTENT_TYPES.join(", ")),
            );
        }
        let body = (!step.body.is_empty()).then(|| self.template(&step.body, &format!("{path}.body"), false)).flatten();
        if method == "GET" && body.is_some() {
            self.error(&format!("{path}.body"), "a GET request has no body; put values in the URL".into());
        }
        let timeout = step.timeout.map_or(std::time::Duration::from_secs(4), Span::as_duration);
        if timeout.is_zero() || timeout > WEBHOOK_MAX_TIMEOUT {
            self.error(&format!("{path}.timeout"), "must be between 1s and 30s".into());
        }
        let mut set_attributes = Vec::new();
        for (attribute, value) in &step.set_attributes {
            let at = format!("{path}.set_attributes.{attribute}");
            self.attribute(attribute, &at);
            set_attributes.extend(self.template(value, &at, false).map(|t| (attribute.clone(), t)));
        }
        match url {
            Some(url) => Action::Webhook(Box::new(WebhookTemplate {
                method,
                url,
                headers,
                basic_auth: step.basic_auth.as_ref().map(|a| (a.username.clone(), a.password.clone())),
                content_type: step.content_type.clone(),
                body,
                timeout,
                log_response_body: step.log_response_body,
                set_attributes,
                conversion: step.conversion,
                draft: step.draft,
            })),
            None => Action::Exit,
        }
    }

    fn wait(&mut self, wait: &WaitStep, path: &str, next: Option<usize>) -> Option<Wait> {
        if next.is_none() {
            self.error(path, "a wait must be followed by a step: nothing would happen after it".into());
        }
        match (&wait.duration, &wait.until) {
            (Some(span), None) => Some(Wait::For(*span)),
            (None, Some(until)) => {
                let (hour, minute) = parse_time(&until.time).unwrap_or_else(|| {
                    self.error(&format!("{path}.until.time"), format!("{:?} is not a time of day HH:MM", until.time));
                    (0, 0)
                });
                let mut weekdays = [until.weekdays.is_empty(); 7];
                for (i, day) in until.weekdays.iter().enumerate() {
                    let key: String = day.trim().to_ascii_lowercase().chars().take(3).collect();
                    match WEEKDAYS.iter().position(|d| *d == key) {
                        Some(d) => weekdays[d] = true,
                        None => self.error(
                            &format!("{path}.until.weekdays[{i}]"),
                            format!("{day:?} is not a weekday (mon, tue, wed, thu, fri, sat, sun)"),
                        ),
                    }
                }
                Some(Wait::Until { hour, minute, weekdays })
            }
            _ => {
                self.error(path, "give either \"duration\" (e.g. \"2d\") or \"until\" (a weekday and time)".into());
                None
            }
        }
    }

    /// The topic an email step names, read; `Err` (reported) when it is not a topic id or the
    /// step is also marked transactional.
    fn topic(&mut self, email: &EmailStep, path: &str) -> Result<Option<TopicId>, ()> {
        let Some(raw) = &email.topic else { return Ok(None) };
        if email.transactional {
            self.error(&format!("{path}.transactional"), "a transactional email names no topic".into());
            return Err(());
        }
        raw.parse()
            .map(Some)
            .map_err(|e| self.error(&format!("{path}.topic"), format!("{raw:?} is not a topic id: {e}")))
    }

    fn mailbox(&mut self, text: &str, path: &str) -> Option<Mailbox> {
        let parsed = parse_mailbox(text);
        if let Err(message) = &parsed {
            self.error(path, message.clone());
        }
        parsed.ok()
    }

    fn template(&mut self, source: &str, path: &str, required: bool) -> Option<Template> {
        if required && source.trim().is_empty() {
            self.error(path, "must not be empty".into());
            return None;
        }
        match Template::compile(source) {
            Ok(template) => Some(template),
            Err(e) => {
                self.error(path, e.to_string());
                None
            }
        }
    }

    fn attribute(&mut self, name: &str, path: &str) {
        if name.is_empty() || name.len() > 200 || name.contains('.') {
            self.error(path, "must be a non-empty attribute name without dots".into());
        } else if RESERVED_ATTRIBUTES.contains(&name) {
            self.error(path, format!("{name:?} is an identity field, not an attribute"));
        }
    }
}

/// Whether `name` is a time zone Herald knows (IANA names, from the bundled database).
pub fn check_timezone(name: &str) -> Result<(), String> {
    jiff::tz::TimeZone::get(name)
        .map(|_| ())
        .map_err(|_| format!("unknown time zone {name:?}; use an IANA name such as \"Europe/Paris\""))
}

fn parse_time(text: &str) -> Option<(i8, i8)> {
    let (h, m) = text.trim().split_once(':')?;
    let hour: i8 = h.parse().ok().filter(|h| (0..24).contains(h))?;
    let minute: i8 = m.parse().ok().filter(|m| (0..60).contains(m))?;
    (m.len() == 2).then_some((hour, minute))
}

/// `Name <address>`, `"Name" <address>` or `address`.
pub fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    let text = text.trim();
    let (name, address) = match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => {
            let name = text[..open].trim().trim_matches('"').trim();
            (Some(name).filter(|n| !n.is_empty()).map(str::to_owned), &text[open + 1..text.len() - 1])
        }
        _ => (None, text),
    };
    let address = EmailAddress::parse(address).map_err(|e| format!("{address:?} is not an email address: {e}"))?;
    Ok(Mailbox { name, address })
}

#[cfg(test)]
mod tests;
