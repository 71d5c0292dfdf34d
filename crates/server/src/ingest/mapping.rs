//! The field mapping of a `mapped` source, edited on the source's page: the captured samples
//! (newest first, pretty-printed), a form that maps JSON paths to the contact's identifiers,
//! the event name and its properties (`data.*`), a preview of what it makes of a chosen
//! sample, and saving. The rules are the API's: `MappingSpec::validate` and `suggest` from the
//! domain, the slice's use cases (`service.rs`) for reading samples, applying and saving; the
//! source's page (`pages.rs`) shows the editor and takes the posted form.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use herald_domain::mapping::{EventNameSource, MappingSpec, suggest};
use herald_domain::{Source, WorkspaceId};
use herald_store::SourceUpdate;

use super::IngestState;
use super::service;
use crate::web::error::ApiError;
use crate::web::{FieldErrors, Session, UiError, pretty, when};

/// A captured request, as listed.
#[derive(Debug)]
pub struct SampleView {
    pub index: usize,
    pub received: String,
    pub body: String,
}

/// A `name → path` line of the form (an event property or a contact attribute).
#[derive(Debug, Default)]
pub struct Row {
    pub key: String,
    pub path: String,
    pub error: Option<String>,
}

/// The mapping form's values, as typed.
#[derive(Debug, Default)]
pub struct MappingForm {
    pub email: String,
    pub user_id: String,
    pub phone: String,
    pub event_path: String,
    pub event_constant: String,
    pub occurred_at: String,
    pub dedupe_key: String,
    pub include_body: bool,
    /// Event properties (`data.*`), then blank lines to add more.
    pub properties: Vec<Row>,
    pub attributes: Vec<Row>,
}

/// Blank lines offered under each list of names.
const BLANK_ROWS: usize = 2;

fn rows(entries: &BTreeMap<String, String>) -> Vec<Row> {
    let mut rows: Vec<Row> =
        entries.iter().map(|(k, p)| Row { key: k.clone(), path: p.clone(), error: None }).collect();
    rows.extend((0..BLANK_ROWS).map(|_| Row::default()));
    rows
}

fn entries(rows: &[Row]) -> BTreeMap<String, String> {
    rows.iter()
        .filter(|r| !r.key.trim().is_empty() || !r.path.trim().is_empty())
        .map(|r| (r.key.trim().to_owned(), r.path.trim().to_owned()))
        .collect()
}

fn optional(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

impl MappingForm {
    pub fn from_spec(spec: &MappingSpec) -> Self {
        let (event_path, event_constant) = match &spec.event_name {
            Some(EventNameSource::Path(p)) => (p.clone(), String::new()),
            Some(EventNameSource::Constant(c)) => (String::new(), c.clone()),
            None => (String::new(), String::new()),
        };
        Self {
            email: spec.email.clone().unwrap_or_default(),
            user_id: spec.user_id.clone().unwrap_or_default(),
            phone: spec.phone.clone().unwrap_or_default(),
            event_path,
            event_constant,
            occurred_at: spec.occurred_at.clone().unwrap_or_default(),
            dedupe_key: spec.dedupe_key.clone().unwrap_or_default(),
            include_body: spec.include_body_as_properties,
            properties: rows(&spec.properties),
            attributes: rows(&spec.attributes),
        }
    }

    /// The form's fields in the order posted: repeated `data_key`/`data_path` (and
    /// `attr_key`/`attr_path`) pair up line by line.
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut form = Self::default();
        let (mut data_keys, mut data_paths, mut attr_keys, mut attr_paths) = (vec![], vec![], vec![], vec![]);
        for (name, value) in pairs {
            let value = value.clone();
            match name.as_str() {
                "email" => form.email = value,
                "user_id" => form.user_id = value,
                "phone" => form.phone = value,
                "event_path" => form.event_path = value,
                "event_constant" => form.event_constant = value,
                "occurred_at" => form.occurred_at = value,
                "dedupe_key" => form.dedupe_key = value,
                "include_body" => form.include_body = true,
                "data_key" => data_keys.push(value),
                "data_path" => data_paths.push(value),
                "attr_key" => attr_keys.push(value),
                "attr_path" => attr_paths.push(value),
                _ => {}
            }
        }
        let pair_up = |keys: Vec<String>, paths: Vec<String>| -> Vec<Row> {
            let lines = keys.len().max(paths.len());
            let mut keys = keys.into_iter();
            let mut paths = paths.into_iter();
            (0..lines)
                .map(|_| Row {
                    key: keys.next().unwrap_or_default(),
                    path: paths.next().unwrap_or_default(),
                    error: None,
                })
                .collect()
        };
        form.properties = pair_up(data_keys, data_paths);
        form.attributes = pair_up(attr_keys, attr_paths);
        form
    }

    /// The mapping the form describes, and what the form itself refuses (a path and a fixed
    /// event name at once), so every field's problem can be shown together.
    fn to_spec(&self) -> (MappingSpec, Vec<(String, String)>) {
        let mut errors = Vec::new();
        let event_name = match (optional(&self.event_path), optional(&self.event_constant)) {
            (Some(_), Some(_)) => {
                errors.push(("event_path".to_owned(), "give a path or a fixed name, not both".to_owned()));
                None
            }
            (Some(path), None) => Some(EventNameSource::Path(path)),
            (None, Some(name)) => Some(EventNameSource::Constant(name)),
            (None, None) => None,
        };
        let spec = MappingSpec {
            email: optional(&self.email),
            user_id: optional(&self.user_id),
            phone: optional(&self.phone),
            event_name,
            occurred_at: optional(&self.occurred_at),
            attributes: entries(&self.attributes),
            properties: entries(&self.properties),
            include_body_as_properties: self.include_body,
            dedupe_key: optional(&self.dedupe_key),
        };
        (spec, errors)
    }

    /// Files errors named as in the spec (`email`, `event_name.path`, `properties.plan`) under
    /// the form's fields; those of a `name → path` line go on the line. Returns the rest.
    fn place_errors(&mut self, errors: Vec<(String, String)>) -> FieldErrors {
        let mut fields = Vec::new();
        for (field, message) in errors {
            let line = |rows: &mut Vec<Row>, key: &str| {
                rows.iter_mut().find(|r| r.key.trim() == key).map(|r| r.error = Some(crate::web::capitalize(&message)))
            };
            let placed = if let Some(key) = field.strip_prefix("properties.") {
                line(&mut self.properties, key)
            } else if let Some(key) = field.strip_prefix("attributes.") {
                line(&mut self.attributes, key)
            } else {
                None
            };
            if placed.is_none() {
                let field = match field.as_str() {
                    "event_name" | "event_name.path" => "event_path".to_owned(),
                    "event_name.constant" => "event_constant".to_owned(),
                    other => other.to_owned(),
                };
                fields.push((field, message));
            }
        }
        FieldErrors::per_field(fields)
    }

    /// Blank lines to add names, after the filled ones.
    fn with_blank_rows(mut self) -> Self {
        self.properties.retain(|r| !r.key.is_empty() || !r.path.is_empty());
        self.attributes.retain(|r| !r.key.is_empty() || !r.path.is_empty());
        self.properties.extend((0..BLANK_ROWS).map(|_| Row::default()));
        self.attributes.extend((0..BLANK_ROWS).map(|_| Row::default()));
        self
    }
}

/// The samples and the mapping form on a mapped source's page.
#[derive(Debug)]
pub struct MappingEditor {
    pub samples: Vec<SampleView>,
    /// The sample the preview applies to.
    pub sample: usize,
    pub form: MappingForm,
    pub errors: FieldErrors,
    /// What the mapping makes of the chosen sample, pretty-printed (after Preview).
    pub preview: Option<String>,
    /// Where the form's values come from, said above it.
    pub origin: &'static str,
}

/// One path field of the form.
#[derive(Debug)]
pub struct FieldView<'a> {
    pub name: &'static str,
    pub label: &'static str,
    pub value: &'a str,
}

impl MappingEditor {
    /// The single-path fields, in the order shown.
    pub fn fields(&self) -> Vec<FieldView<'_>> {
        let f = &self.form;
        [
            ("email", "Email", &f.email),
            ("user_id", "User id", &f.user_id),
            ("phone", "Phone", &f.phone),
            ("event_path", "Event name (path)", &f.event_path),
            ("event_constant", "Event name (fixed)", &f.event_constant),
            ("occurred_at", "Occurred at", &f.occurred_at),
            ("dedupe_key", "Dedupe key", &f.dedupe_key),
        ]
        .into_iter()
        .map(|(name, label, value)| FieldView { name, label, value: value.as_str() })
        .collect()
    }
}

/// The editor as the source page first shows it: the saved mapping, or else (or when asked
/// with `suggest`) the suggestion for sample `sample`.
pub async fn editor(
    state: &IngestState,
    session: &Session,
    source: &Source,
    sample: usize,
    suggested: bool,
) -> Result<MappingEditor, ApiError> {
    let samples = service::samples(state, session.workspace_id, source.id).await?;
    let sample = sample.min(samples.len().saturating_sub(1));
    let saved = source.mapping.as_ref().and_then(|m| serde_json::from_value::<MappingSpec>(m.clone()).ok());
    let (spec, origin) = match (saved, samples.get(sample)) {
        (Some(_), Some(chosen)) if suggested => (suggest(&chosen.body), "suggested"),
        (None, Some(chosen)) => (suggest(&chosen.body), "suggested"),
        (Some(spec), _) => (spec, "saved"),
        (None, None) => (MappingSpec::default(), "empty"),
    };
    Ok(MappingEditor {
        samples: views(&samples),
        sample,
        form: MappingForm::from_spec(&spec),
        errors: FieldErrors::default(),
        preview: None,
        origin,
    })
}

fn views(samples: &[herald_store::Sample]) -> Vec<SampleView> {
    samples
        .iter()
        .enumerate()
        .map(|(index, s)| SampleView { index, received: when(s.received_at), body: pretty(&s.body) })
        .collect()
}

/// What a posted mapping comes to.
pub enum Submitted {
    /// Saved on the source.
    Saved,
    /// The editor to show again, with a preview or the errors, and the page's status.
    Shown(Box<MappingEditor>, StatusCode),
}

/// Preview (the default: Enter in a field) or Save the mapping posted for `source`.
pub async fn submitted(
    state: &IngestState,
    workspace: WorkspaceId,
    source: &Source,
    pairs: &[(String, String)],
) -> Result<Submitted, UiError> {
    let id = source.id;
    let field = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let save = field("action") == Some("save");
    let sample = field("sample").and_then(|s| s.parse().ok()).unwrap_or(0);
    let form = MappingForm::from_pairs(pairs);
    let samples = service::samples(state, workspace, id).await?;
    let shown = |form: MappingForm, errors: FieldErrors, preview: Option<String>| MappingEditor {
        samples: views(&samples),
        sample,
        form: form.with_blank_rows(),
        errors,
        preview,
        origin: "edited",
    };
    let refuse = |mut form: MappingForm, errors: Vec<(String, String)>| {
        let errors = form.place_errors(errors);
        Submitted::Shown(Box::new(shown(form, errors, None)), StatusCode::BAD_REQUEST)
    };

    let (spec, mut errors) = form.to_spec();
    let compiled = match spec.validate() {
        Ok(compiled) if errors.is_empty() => compiled,
        Ok(_) => return Ok(refuse(form, errors)),
        Err(invalid) => {
            errors.extend(invalid.into_iter().map(|e| (e.field, e.reason)));
            return Ok(refuse(form, errors));
        }
    };
    if save {
        let mapping = serde_json::to_value(&spec).map_err(|e| ApiError::invalid("mapping", e))?;
        let update = SourceUpdate { mapping: Some(Some(mapping)), ..SourceUpdate::default() };
        service::update(state, workspace, id, update).await?;
        return Ok(Submitted::Saved);
    }
    let Some(chosen) = samples.get(sample) else {
        let reason = "there is no captured request yet: send one to the source's URL first";
        return Ok(refuse(form, vec![("sample".to_owned(), reason.to_owned())]));
    };
    Ok(match service::mapped(&compiled, &chosen.body) {
        Ok(event) => {
            Submitted::Shown(Box::new(shown(form, FieldErrors::default(), Some(pretty(&event)))), StatusCode::OK)
        }
        Err(refused) => {
            // The mapping is sound but this sample does not fit it: a preview's answer, not a
            // refused form.
            let mut form = form;
            let errors = form.place_errors(refused.into_iter().map(|e| (e.field, e.reason)).collect());
            Submitted::Shown(Box::new(shown(form, errors, None)), StatusCode::OK)
        }
    })
}
