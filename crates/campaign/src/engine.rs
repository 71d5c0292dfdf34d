//! The journey engine: from where a journey stands, run steps until it must wait or ends.
//!
//! Pure: the runner (real time, real store) and the simulator (virtual clock, nothing
//! written) call the same [`advance`], so a simulation shows exactly what a run would do.
//! Effects are returned, not applied; the caller commits them together with the journey's
//! next position, which is what makes a step's result and the next step's schedule atomic.

use herald_domain::{Contact, EmailAddress, Timestamp, TopicId, Tracking};
use herald_template::{Escape, Limits, Template, html_to_text};
use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::compile::{Action, CompiledCampaign, Mailbox, ValueTemplate, Wait};
use crate::context::Scope;
use crate::document::Scope as Target;

/// What the journey carries between steps.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyState {
    /// The contact as the journey sees it; set-attribute steps change it as they run.
    pub contact: Contact,
    pub custom_variables: Map<String, Value>,
}

/// One step's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRun {
    pub step: String,
    pub at: Timestamp,
    #[serde(flatten)]
    pub effect: Effect,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// An email to hand to the transport.
    Email {
        message: Box<RenderedEmail>,
    },
    /// A step that could not do its work (an email without an address, a template that
    /// failed at render time); the journey moves on.
    Failed {
        /// In words, naming the part that failed (`html: …`).
        reason: String,
        /// What an email or webhook step would have sent, when its templates failed to
        /// render: the runner records it as a failed message or call with the reason, so the
        /// message and delivery logs say why nothing was sent. Not part of a simulation.
        #[serde(skip)]
        unsent: Option<Unsent>,
    },
    SetAttribute {
        attribute: String,
        value: Value,
        scope: Target,
    },
    UnsetAttribute {
        attribute: String,
        scope: Target,
    },
    Branch {
        took: Arm,
        reason: String,
    },
    Wait {
        until: Timestamp,
    },
    /// A request to send; the journey waits at this step until it succeeded or failed for good.
    Webhook {
        request: Box<WebhookRequest>,
    },
    /// How a webhook call ended (the journey moved on after it).
    WebhookDone {
        outcome: WebhookOutcome,
        status: Option<u16>,
    },
    Exit,
}

/// What a step whose templates failed to render would have sent, as far as it got.
#[derive(Debug, Clone, PartialEq)]
pub enum Unsent {
    /// The message, with the parts from the failing one on empty.
    Email(Box<RenderedEmail>),
    /// The call's method, and its URL when that rendered.
    Webhook { method: String, url: Option<String> },
}

/// A webhook step's request, rendered. Basic credentials are not serialized: callers that
/// keep a request keep them apart (they are a secret).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct WebhookRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    #[serde(skip)]
    pub basic_auth: Option<(String, String)>,
    pub content_type: String,
    pub body: String,
    #[serde(with = "millis")]
    pub timeout: std::time::Duration,
    pub log_response_body: bool,
}

mod millis {
    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        u64::deserialize(d).map(std::time::Duration::from_millis)
    }
}

/// How a webhook call ended, as branches see it (`custom_variables.last_webhook.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookOutcome {
    /// A 2xx answer.
    Succeeded,
    /// A final refusal (a 4xx other than 408/409/429, a refused address).
    Failed,
    /// Every retry failed.
    Exhausted,
    /// A draft someone chose not to send.
    Skipped,
}

/// A finished webhook call, handed back to the journey.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookResult {
    pub outcome: WebhookOutcome,
    pub status: Option<u16>,
    /// The response body: parsed JSON, else the text, else null.
    pub response: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Then,
    Else,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedEmail {
    pub to: EmailAddress,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Missing variables and the like, in words.
    pub warnings: Vec<String>,
    pub tracking: Tracking,
    /// The subscription topic it is sent under.
    pub topic: Option<TopicId>,
    /// The unsubscribe link it carries (`{{ unsubscribe_url }}`, `List-Unsubscribe`): its
    /// topic's when it has one.
    pub unsubscribe_url: String,
}

/// Where the journey goes after this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Next {
    /// Run node `step` at `at`.
    At { at: Timestamp, step: usize },
    /// The last step ran.
    Completed,
    /// An exit step ran.
    Exited,
    /// Node `step` (a webhook) is waiting for its call to finish; [`after_webhook`] resumes.
    AwaitWebhook { step: usize },
}

/// What one call of [`advance`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    pub runs: Vec<StepRun>,
    pub next: Next,
}

/// Unsubscribe links by the topic they leave.
pub type TopicUrls = std::collections::BTreeMap<TopicId, String>;

/// The fixed parts of a journey's surroundings.
#[derive(Debug, Clone, Copy)]
pub struct Surroundings<'a> {
    pub campaign: &'a CompiledCampaign,
    pub info: &'a crate::context::CampaignInfo,
    pub event: Option<&'a herald_domain::Event>,
    /// The contact's unsubscribe link for mail about no topic.
    pub unsubscribe_url: &'a str,
    /// The contact's unsubscribe link for each topic the campaign's emails name.
    pub topic_unsubscribe_urls: &'a TopicUrls,
    pub limits: &'a Limits,
    /// The workspace's default time zone, after the contact's and the campaign's.
    pub workspace_timezone: Option<&'a str>,
    /// The journey's emails so far and what their recipient did with them.
    pub emails: &'a [herald_domain::EmailSummary],
}

/// Runs node `from` and its successors at `now` until a wait that lies in the future, an
/// exit, or the end. A wait whose time has already come (a journey resumed late) is passed.
pub fn advance(surroundings: &Surroundings<'_>, state: &mut JourneyState, from: usize, now: Timestamp) -> Advance {
    let nodes = &surroundings.campaign.program.nodes;
    let mut runs = Vec::new();
    let mut position = Some(from);
    // A program is a tree walked forwards, so no node runs twice; the bound is a safeguard.
    for _ in 0..=nodes.len() {
        let Some(index) = position else {
            return Advance { runs, next: Next::Completed };
        };
        let Some(node) = nodes.get(index) else {
            return Advance { runs, next: Next::Completed };
        };
        let run = |effect| StepRun { step: node.id.clone(), at: now, effect };
        match &node.action {
            Action::Wait(wait) => {
                let until = wait_until(wait, surroundings, &state.contact, now);
                runs.push(run(Effect::Wait { until }));
                match node.next {
                    Some(step) if until > now => return Advance { runs, next: Next::At { at: until, step } },
                    next => position = next,
                }
            }
            Action::Email(email) => {
                let effect = render_email(email, surroundings, state, now);
                runs.push(run(effect));
                position = node.next;
            }
            Action::Branch { condition, then, otherwise } => {
                let variables = scope(surroundings, state).variables();
                let holds = condition.holds(&variables);
                let reason = condition.explain(&variables);
                runs.push(run(Effect::Branch { took: if holds { Arm::Then } else { Arm::Else }, reason }));
                position = if holds { *then } else { *otherwise };
            }
            Action::Set { attribute, value, scope: target } => {
                let value = match value {
                    ValueTemplate::Literal(v) => Ok(v.clone()),
                    ValueTemplate::Template(t) => {
                        render(t, surroundings, state, Escape::Text, now).map(|(out, _)| Value::String(out))
                    }
                };
                runs.push(run(match value {
                    Ok(value) => {
                        target_map(state, *target).insert(attribute.clone(), value.clone());
                        Effect::SetAttribute { attribute: attribute.clone(), value, scope: *target }
                    }
                    Err(reason) => Effect::Failed { reason, unsent: None },
                }));
                position = node.next;
            }
            Action::Unset { attribute, scope: target } => {
                target_map(state, *target).remove(attribute);
                runs.push(run(Effect::UnsetAttribute { attribute: attribute.clone(), scope: *target }));
                position = node.next;
            }
            Action::Webhook(webhook) => match render_webhook(webhook, surroundings, state, now) {
                Ok(request) => {
                    runs.push(run(Effect::Webhook { request: Box::new(request) }));
                    return Advance { runs, next: Next::AwaitWebhook { step: index } };
                }
                Err(reason) => {
                    record_webhook(state, &node.id, WebhookOutcome::Failed, None, Value::Null);
                    let unsent = Unsent::Webhook {
                        method: webhook.method.clone(),
                        url: render_url(webhook, surroundings, state, now),
                    };
                    runs.push(run(Effect::Failed { reason, unsent: Some(unsent) }));
                    position = node.next;
                }
            },
            Action::Exit => {
                runs.push(run(Effect::Exit));
                return Advance { runs, next: Next::Exited };
            }
        }
    }
    Advance { runs, next: Next::Completed }
}

/// Resumes a journey waiting at webhook node `at` once its call finished: records the result
/// for later branches (`custom_variables.webhooks.<step>` and `custom_variables.last_webhook`),
/// applies the step's `set_attributes` over `response` if it succeeded, then runs on.
pub fn after_webhook(
    surroundings: &Surroundings<'_>,
    state: &mut JourneyState,
    at: usize,
    result: &WebhookResult,
    now: Timestamp,
) -> Advance {
    let nodes = &surroundings.campaign.program.nodes;
    let Some(node) = nodes.get(at) else { return Advance { runs: Vec::new(), next: Next::Completed } };
    let run = |effect| StepRun { step: node.id.clone(), at: now, effect };
    let mut runs = vec![run(Effect::WebhookDone { outcome: result.outcome, status: result.status })];
    record_webhook(state, &node.id, result.outcome, result.status, result.response.clone());
    if let (Action::Webhook(webhook), WebhookOutcome::Succeeded) = (&node.action, result.outcome) {
        let variables = scope(surroundings, state).variables();
        for rendered in response_attributes(webhook, variables, &result.response, surroundings.limits, now) {
            runs.push(run(match rendered {
                Ok((attribute, value)) => {
                    state.contact.attributes.insert(attribute.clone(), value.clone());
                    Effect::SetAttribute { attribute, value, scope: Target::Contact }
                }
                Err(reason) => Effect::Failed { reason, unsent: None },
            }));
        }
    }
    let rest = match node.next {
        Some(next) => advance(surroundings, state, next, now),
        None => Advance { runs: Vec::new(), next: Next::Completed },
    };
    runs.extend(rest.runs);
    Advance { runs, next: rest.next }
}

/// A successful call's `set_attributes`, rendered over `variables` with `response` added: each
/// attribute and its value, or why it could not be rendered.
pub fn response_attributes(
    webhook: &crate::compile::WebhookTemplate,
    mut variables: Value,
    response: &Value,
    limits: &Limits,
    now: Timestamp,
) -> Vec<Result<(String, Value), String>> {
    if let Some(top) = variables.as_object_mut() {
        top.insert("response".into(), response.clone());
    }
    webhook
        .set_attributes
        .iter()
        .map(|(attribute, template)| {
            template
                .render_at(&variables, Escape::Text, limits, now.to_offset_date_time())
                .map(|rendered| (attribute.clone(), Value::String(rendered.output)))
                .map_err(|e| format!("set_attributes.{attribute}: {e}"))
        })
        .collect()
}

/// Keeps a webhook's result where templates and branches can read it.
fn record_webhook(state: &mut JourneyState, step: &str, outcome: WebhookOutcome, status: Option<u16>, response: Value) {
    // `4xx`, `5xx`: branches route on the kind of refusal without listing codes.
    let class = status.map(|code| format!("{}xx", code / 100));
    let result = serde_json::json!({
        "step": step, "outcome": outcome, "status": status, "status_class": class, "response": response
    });
    let webhooks = state.custom_variables.entry("webhooks").or_insert_with(|| Value::Object(Map::new()));
    if let Some(webhooks) = webhooks.as_object_mut() {
        webhooks.insert(step.to_owned(), result.clone());
    }
    state.custom_variables.insert("last_webhook".into(), result);
}

/// Renders a webhook step's request; a JSON body must parse.
fn render_webhook(
    webhook: &crate::compile::WebhookTemplate,
    surroundings: &Surroundings<'_>,
    state: &JourneyState,
    now: Timestamp,
) -> Result<WebhookRequest, String> {
    render_request(webhook, &scope(surroundings, state).variables(), surroundings.limits, now)
}

/// A webhook step's URL, if it renders to an http(s) URL (for the record of a call whose
/// request failed to render further on).
fn render_url(
    webhook: &crate::compile::WebhookTemplate,
    surroundings: &Surroundings<'_>,
    state: &JourneyState,
    now: Timestamp,
) -> Option<String> {
    let variables = scope(surroundings, state).variables();
    let url = webhook.url.render_at(&variables, Escape::Text, surroundings.limits, now.to_offset_date_time()).ok()?;
    let url = url.output.trim();
    (url.starts_with("https://") || url.starts_with("http://")).then(|| url.to_owned())
}

/// Renders a webhook request over `variables` (a journey's, or a contact's alone for a saved
/// action run outside any campaign); a JSON body must parse.
pub fn render_request(
    webhook: &crate::compile::WebhookTemplate,
    variables: &Value,
    limits: &Limits,
    now: Timestamp,
) -> Result<WebhookRequest, String> {
    let text = |name: &str, template: &Template| {
        template
            .render_at(variables, Escape::Text, limits, now.to_offset_date_time())
            .map(|rendered| rendered.output)
            .map_err(|e| format!("{name}: {e}"))
    };
    let url = text("url", &webhook.url)?.trim().to_owned();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("url: {url:?} is not an http(s) URL"));
    }
    let mut headers = Vec::with_capacity(webhook.headers.len());
    for (name, template) in &webhook.headers {
        let value = text(&format!("headers.{name}"), template)?;
        if value.contains(['\r', '\n']) {
            return Err(format!("headers.{name}: the value contains a line break"));
        }
        headers.push((name.clone(), value));
    }
    let body = match &webhook.body {
        Some(template) => text("body", template)?,
        None => String::new(),
    };
    if webhook.content_type == "application/json"
        && !body.is_empty()
        && let Err(e) = serde_json::from_str::<Value>(&body)
    {
        return Err(format!(
            "body: the rendered body is not JSON: {e} (line {} of the body template's output)",
            e.line()
        ));
    }
    Ok(WebhookRequest {
        method: webhook.method.clone(),
        url,
        headers,
        basic_auth: webhook.basic_auth.clone(),
        content_type: webhook.content_type.clone(),
        body,
        timeout: webhook.timeout,
        log_response_body: webhook.log_response_body,
    })
}

fn target_map(state: &mut JourneyState, target: Target) -> &mut Map<String, Value> {
    match target {
        Target::Contact => &mut state.contact.attributes,
        Target::CustomVariables => &mut state.custom_variables,
    }
}

fn scope<'a>(surroundings: &'a Surroundings<'_>, state: &'a JourneyState) -> Scope<'a> {
    Scope {
        contact: &state.contact,
        event: surroundings.event,
        custom_variables: &state.custom_variables,
        campaign: Some(surroundings.info),
        unsubscribe_url: surroundings.unsubscribe_url,
        emails: surroundings.emails,
    }
}

/// Renders one template; on failure the error in words.
fn render(
    template: &Template,
    surroundings: &Surroundings<'_>,
    state: &JourneyState,
    escape: Escape,
    now: Timestamp,
) -> Result<(String, Vec<String>), String> {
    let variables = scope(surroundings, state).variables();
    template
        .render_at(&variables, escape, surroundings.limits, now.to_offset_date_time())
        .map(|rendered| (rendered.output, rendered.warnings.iter().map(ToString::to_string).collect()))
        .map_err(|e| e.to_string())
}

fn render_email(
    email: &crate::compile::EmailTemplate,
    surroundings: &Surroundings<'_>,
    state: &JourneyState,
    now: Timestamp,
) -> Effect {
    let Some(to) = state.contact.email.clone() else {
        return Effect::Failed { reason: "the contact has no email address".into(), unsent: None };
    };
    // The email's own link: the one that leaves its topic.
    let unsubscribe_url = email
        .topic
        .and_then(|topic| surroundings.topic_unsubscribe_urls.get(&topic))
        .map_or(surroundings.unsubscribe_url, String::as_str);
    let surroundings = &Surroundings { unsubscribe_url, ..*surroundings };
    let mut message = RenderedEmail {
        to,
        from: email.from.clone(),
        reply_to: email.reply_to.clone(),
        subject: String::new(),
        html: String::new(),
        text: String::new(),
        warnings: Vec::new(),
        tracking: email.tracking,
        topic: email.topic,
        unsubscribe_url: unsubscribe_url.to_owned(),
    };
    let part = |name: &str, template: &Template, escape: Escape, warnings: &mut Vec<String>| {
        render(template, surroundings, state, escape, now)
            .map(|(output, w)| {
                warnings.extend(w.into_iter().map(|w| format!("{name}: {w}")));
                output
            })
            .map_err(|e| format!("{name}: {e}"))
    };
    let rendered = (|| {
        let subject = part("subject", &email.subject, Escape::Text, &mut message.warnings)?;
        // A subject is one line, whatever the template produced.
        message.subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        message.html = part("html", &email.html, Escape::Html, &mut message.warnings)?;
        message.text = match &email.text {
            Some(template) => part("text", template, Escape::Text, &mut message.warnings)?,
            None => html_to_text(&message.html),
        };
        Ok::<_, String>(())
    })();
    match rendered {
        Ok(()) => Effect::Email { message: Box::new(message) },
        Err(reason) => Effect::Failed { reason, unsent: Some(Unsent::Email(Box::new(message))) },
    }
}

/// When a wait reached at `now` ends.
fn wait_until(wait: &Wait, surroundings: &Surroundings<'_>, contact: &Contact, now: Timestamp) -> Timestamp {
    match wait {
        Wait::For(span) => now + span.as_duration(),
        Wait::Until { hour, minute, weekdays } => {
            let zone = contact
                .attributes
                .get("timezone")
                .and_then(Value::as_str)
                .and_then(|name| TimeZone::get(name).ok())
                .or_else(|| surroundings.campaign.document.timezone.as_deref().and_then(|z| TimeZone::get(z).ok()))
                .or_else(|| surroundings.workspace_timezone.and_then(|z| TimeZone::get(z).ok()))
                .unwrap_or(TimeZone::UTC);
            next_local_time(now, &zone, *hour, *minute, weekdays).unwrap_or(now)
        }
    }
}

/// The instant that is `hour:minute` on `date` (`YYYY-MM-DD`) in the zone named `zone`; `None`
/// for a date or zone that does not parse. A time skipped by a daylight-saving change falls
/// just after the gap.
pub fn local_instant(date: &str, hour: i8, minute: i8, zone: &str) -> Option<Timestamp> {
    let zone = TimeZone::get(zone).ok()?;
    let date: jiff::civil::Date = date.parse().ok()?;
    let zoned = date.at(hour, minute, 0, 0).to_zoned(zone).ok()?;
    Some(Timestamp::from_unix_millis(zoned.timestamp().as_millisecond()))
}

/// The first instant after `now` that is `hour:minute` local time in `zone` on an allowed
/// weekday (Monday first). Times skipped by a daylight-saving change fall just after the gap.
pub fn next_local_time(
    now: Timestamp,
    zone: &TimeZone,
    hour: i8,
    minute: i8,
    weekdays: &[bool; 7],
) -> Option<Timestamp> {
    let instant = jiff::Timestamp::from_millisecond(now.unix_millis()).ok()?;
    let today = instant.to_zoned(zone.clone()).date();
    for offset in 0..8 {
        let date = today.checked_add(jiff::Span::new().days(offset)).ok()?;
        let allowed = weekdays[usize::try_from(date.weekday().to_monday_zero_offset()).ok()?];
        if !allowed {
            continue;
        }
        let candidate = date.at(hour, minute, 0, 0).to_zoned(zone.clone()).ok()?;
        let millis = candidate.timestamp().as_millisecond();
        if millis > now.unix_millis() {
            return Some(Timestamp::from_unix_millis(millis));
        }
    }
    None
}
