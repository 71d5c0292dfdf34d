//! `/api/v1/contacts`: find, read (with recent events), create, update, delete (erasing
//! their events), and import from CSV.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use herald_domain::topic::parse_consent;
use herald_domain::{
    ConsentSource, Contact, ContactId, EmailAddress, Identity, Page, PageRequest, Phone, Timestamp, Topic, TopicId,
    UserId,
};
use herald_store::topic::ConsentChange;
use herald_store::{ContactFilter, ContactPatch, EventFilter, ImportOutcome, NewContact};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ContactsState;
use crate::events::EventDto;
use crate::web::auth::Auth;
use crate::web::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::web::list::{List, ListParams};

/// Most rows one import takes.
const MAX_IMPORT_ROWS: usize = 100_000;
/// Largest CSV body accepted (100k rows of a few hundred bytes).
const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Row errors listed in an import's response (all are counted).
const IMPORT_ERRORS_LISTED: usize = 1000;

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactDto {
    #[schema(value_type = String, example = "ct_0193a4b2c3d47e5f8a9b0c1d2e3f4a5b")]
    id: ContactId,
    #[schema(value_type = Option<String>, example = "alex@example.com")]
    email: Option<EmailAddress>,
    #[schema(value_type = Option<String>, example = "usr_8a3f2d")]
    user_id: Option<UserId>,
    #[schema(value_type = Option<String>, example = "+15550109999")]
    phone: Option<Phone>,
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    #[schema(value_type = Object)]
    attributes: Map<String, Value>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl From<Contact> for ContactDto {
    fn from(c: Contact) -> Self {
        Self {
            id: c.id,
            email: c.email,
            user_id: c.user_id,
            phone: c.phone,
            name: c.name,
            first_name: c.first_name,
            last_name: c.last_name,
            attributes: c.attributes,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactWithEvents {
    #[serde(flatten)]
    contact: ContactDto,
    /// The 20 most recent events, newest first.
    recent_events: Vec<EventDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactQuery {
    /// Exact email (case-insensitive).
    email: Option<String>,
    user_id: Option<String>,
    /// With `value`: contacts whose attribute `attribute` equals `value` (`value` is read as
    /// JSON when it parses, e.g. `3` or `true`, else as a string). Without `email` or
    /// `user_id`, each page examines at most 10,000 contacts, so a page may hold fewer
    /// matches than `limit`, even none, with a `next_cursor` to go on from: follow it until
    /// it is absent.
    attribute: Option<String>,
    value: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Fields of a contact. For updates: absent fields stay, `null` clears them, and
/// `attributes` merge (a `null` attribute removes it).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>)]
    user_id: Option<Option<Value>>,
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>)]
    phone: Option<Option<Value>>,
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>)]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>)]
    first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::web::present")]
    #[schema(value_type = Option<String>)]
    last_name: Option<Option<String>>,
    /// Merged into the contact's attributes: objects key by key, `null` removes a key.
    /// Limits: at most 300 attributes per contact, names of at most 150 bytes, values of at
    /// most 8192 bytes as compact JSON. A change past a limit is refused naming the attribute
    /// (`attributes.<name>`); removals in the same request make room.
    #[schema(value_type = Option<Object>)]
    attributes: Option<Map<String, Value>>,
}

/// Parses one optional identity field of the input, naming it on failure.
fn field<T>(
    value: Option<Option<Value>>,
    name: &str,
    parse: fn(&str) -> Result<T, herald_domain::contact::IdentityError>,
) -> Result<Option<Option<T>>, ApiError> {
    value
        .map(|v| {
            v.filter(|v| !v.is_null())
                .map(|v| {
                    let text = herald_domain::inbound::scalar_text(&v)
                        .ok_or_else(|| ApiError::invalid(name, "must be a string"))?;
                    parse(&text).map_err(|e| ApiError::invalid(name, e))
                })
                .transpose()
        })
        .transpose()
}

fn text(value: Option<Option<String>>, name: &str) -> Result<Option<Option<String>>, ApiError> {
    value
        .map(|v| {
            v.map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.chars().count() > 200 {
                        Err(ApiError::invalid(name, "must be at most 200 characters"))
                    } else {
                        Ok(s)
                    }
                })
                .transpose()
        })
        .transpose()
}

impl ContactInput {
    fn into_patch(self) -> Result<ContactPatch, ApiError> {
        Ok(ContactPatch {
            email: field(self.email.map(|e| e.map(Value::String)), "email", EmailAddress::parse)?,
            user_id: field(self.user_id, "user_id", UserId::parse)?,
            phone: field(self.phone, "phone", Phone::parse)?,
            name: text(self.name, "name")?,
            first_name: text(self.first_name, "first_name")?,
            last_name: text(self.last_name, "last_name")?,
            attributes: self.attributes.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportSummary {
    created: usize,
    updated: usize,
    failed: usize,
    /// The first 1,000 row errors; `row` counts data rows from 1 (the header is row 0).
    errors: Vec<ImportError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportError {
    row: usize,
    message: String,
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    ContactsState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(get_contact, update_contact, delete_contact))
        .routes(routes!(import_contacts))
        .layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT))
}

fn parse_id(raw: &str) -> Result<ContactId, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("id", e))
}

/// List contacts, oldest first, optionally filtered.
#[utoipa::path(get, path = "/contacts", tag = "contacts", params(ContactQuery),
    responses((status = 200, body = List<ContactDto>), (status = 400, body = ErrorBody)))]
async fn list_contacts(
    State(state): State<ContactsState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ContactQuery>,
) -> Result<Json<List<ContactDto>>, ApiError> {
    let page: PageRequest<ContactId> = ListParams { limit: q.limit, cursor: q.cursor }.page()?;
    let attribute = match (q.attribute, q.value) {
        (Some(name), Some(value)) => {
            if name.is_empty() || name.contains('"') {
                return Err(ApiError::invalid("attribute", "must be a non-empty name without quotes"));
            }
            Some((name, serde_json::from_str(&value).unwrap_or(Value::String(value))))
        }
        (Some(_), None) => return Err(ApiError::invalid("value", "is required with `attribute`")),
        (None, Some(_)) => return Err(ApiError::invalid("attribute", "is required with `value`")),
        (None, None) => None,
    };
    let filter = ContactFilter {
        email: q.email.as_deref().map(EmailAddress::parse).transpose().map_err(|e| ApiError::invalid("email", e))?,
        user_id: q.user_id.as_deref().map(UserId::parse).transpose().map_err(|e| ApiError::invalid("user_id", e))?,
        attribute,
    };
    let contacts: Page<Contact> = state.store.list_contacts(p.workspace_id, &filter, page).await?;
    Ok(Json(List::from_page(contacts, ContactDto::from)))
}

/// Create a contact; it needs an email, user id or phone.
#[utoipa::path(post, path = "/contacts", tag = "contacts", request_body = ContactInput,
    responses((status = 201, body = ContactDto), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_contact(
    State(state): State<ContactsState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<ContactInput>,
) -> Result<(StatusCode, Json<ContactDto>), ApiError> {
    let patch = body.into_patch()?;
    let identity =
        Identity { email: patch.email.flatten(), user_id: patch.user_id.flatten(), phone: patch.phone.flatten() };
    if identity == Identity::default() {
        return Err(ApiError::invalid("email", "is required (or user_id or phone)"));
    }
    let new = NewContact {
        identity,
        name: patch.name.flatten(),
        first_name: patch.first_name.flatten(),
        last_name: patch.last_name.flatten(),
        attributes: patch.attributes,
    };
    let contact =
        state.store.create_contact(p.workspace_id, new, state.clock.now()).await.map_err(identity_conflict)?;
    Ok((StatusCode::CREATED, Json(contact.into())))
}

/// A unique-identity conflict named by its field.
fn identity_conflict(e: herald_store::StoreError) -> ApiError {
    match e {
        herald_store::StoreError::Conflict { constraint } => {
            let field = constraint.trim_start_matches("contacts_").to_owned();
            let mut error =
                ApiError::new(StatusCode::CONFLICT, "conflict", format!("{field}: already belongs to another contact"));
            error.field = Some(field);
            error
        }
        other => other.into(),
    }
}

/// A contact with its 20 most recent events.
#[utoipa::path(get, path = "/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, body = ContactWithEvents), (status = 404, body = ErrorBody)))]
async fn get_contact(
    State(state): State<ContactsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<ContactWithEvents>, ApiError> {
    let contact = state.store.get_contact(p.workspace_id, parse_id(&id)?).await?;
    let filter = EventFilter { contact: Some(contact.id), ..EventFilter::default() };
    let events = state.store.list_events(p.workspace_id, &filter, PageRequest::first(20)).await?;
    Ok(Json(ContactWithEvents {
        contact: contact.into(),
        recent_events: events.items.into_iter().map(EventDto::from).collect(),
    }))
}

/// Change a contact: absent fields stay, `null` clears, attributes merge.
#[utoipa::path(patch, path = "/contacts/{id}", tag = "contacts", params(("id" = String, Path)), request_body = ContactInput,
    responses((status = 200, body = ContactDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_contact(
    State(state): State<ContactsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ContactInput>,
) -> Result<Json<ContactDto>, ApiError> {
    let id = parse_id(&id)?;
    let patch = body.into_patch()?;
    let contact =
        state.store.update_contact(p.workspace_id, id, patch, state.clock.now()).await.map_err(identity_conflict)?;
    Ok(Json(contact.into()))
}

/// Delete a contact and erase their events.
#[utoipa::path(delete, path = "/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_contact(
    State(state): State<ContactsState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_contact(p.workspace_id, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Import contacts from CSV (`Content-Type: text/csv`), upserting by email. Columns:
/// `email` (required), `user_id`, `phone`, `name`, `first_name`, `last_name`;
/// `topic:<topic id or name>` records the contact's choice about that topic (`yes` or `no`,
/// also `true`/`false`, `1`/`0`, `subscribed`/`unsubscribed`; source `import`); every other
/// column becomes an attribute (empty cells are skipped). Up to 100,000 rows per call; bad
/// rows (including a row that would take its contact past an attribute limit: 300
/// attributes, names of 150 bytes, values of 8192 bytes) are reported and skipped, good rows
/// are imported.
#[utoipa::path(post, path = "/contacts/import", tag = "contacts", request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportSummary), (status = 400, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn import_contacts(
    State(state): State<ContactsState>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ImportSummary>, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("text/csv") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as `Content-Type: text/csv`",
        ));
    }
    let topics = state.store.list_topics(p.workspace_id).await?;
    let (rows, mut errors) = parse_csv(&body, &topics)?;
    let (mut positions, mut contacts, mut choices) = (Vec::new(), Vec::new(), Vec::new());
    for (position, contact, choice) in rows {
        positions.push(position);
        contacts.push(contact);
        choices.push(choice);
    }
    let now = state.clock.now();
    let results = state.store.import_contacts(p.workspace_id, &contacts, now).await?;
    let (mut created, mut updated) = (0, 0);
    let mut changes = Vec::new();
    for ((row, result), choices) in positions.into_iter().zip(results).zip(choices) {
        let contact = match result {
            Ok(ImportOutcome::Created(id)) => {
                created += 1;
                id
            }
            Ok(ImportOutcome::Updated(id)) => {
                updated += 1;
                id
            }
            Err(message) => {
                errors.push(ImportError { row, message });
                continue;
            }
        };
        let source = ConsentSource::Import;
        changes.extend(choices.into_iter().map(|(topic, subscribed)| ConsentChange {
            contact,
            topic,
            subscribed,
            source,
        }));
    }
    // A second transaction: a failure here leaves the contacts imported without their
    // choices, and importing the file again records them (it changes nothing else).
    state.store.set_topic_consents(p.workspace_id, &changes, now).await?;
    errors.sort_by_key(|e| e.row);
    let failed = errors.len();
    errors.truncate(IMPORT_ERRORS_LISTED);
    Ok(Json(ImportSummary { created, updated, failed, errors }))
}

/// Contacts read from a CSV file with their 1-based row numbers and their topic choices, and
/// the rows that could not be read.
type ParsedCsv = (Vec<(usize, NewContact, Vec<(TopicId, bool)>)>, Vec<ImportError>);

/// The topic each `topic:<id or name>` column names (names compared in any case); `None` for
/// other columns. A column naming no topic of the workspace refuses the file.
fn topic_columns(headers: &[String], topics: &[Topic]) -> Result<Vec<Option<TopicId>>, ApiError> {
    headers
        .iter()
        .map(|header| {
            let Some(named) = header.strip_prefix(TOPIC_COLUMN) else { return Ok(None) };
            let named = named.trim();
            topics
                .iter()
                .find(|t| t.id.to_string() == named || t.name.to_lowercase() == named)
                .map(|t| Some(t.id))
                .ok_or_else(|| {
                    ApiError::invalid("body", format!("column {header:?}: no topic {named:?} in this workspace"))
                })
        })
        .collect()
}

/// Columns that record a topic choice start with this.
const TOPIC_COLUMN: &str = "topic:";

fn parse_csv(body: &[u8], topics: &[Topic]) -> Result<ParsedCsv, ApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).trim(csv::Trim::All).from_reader(body);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::invalid("body", format!("cannot read the CSV header: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    if !headers.iter().any(|h| h == "email") {
        return Err(ApiError::invalid("body", "the CSV header must include an `email` column"));
    }
    let topic_columns = topic_columns(&headers, topics)?;
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        if row > MAX_IMPORT_ROWS {
            return Err(ApiError::invalid("body", format!("more than {MAX_IMPORT_ROWS} rows; split the file")));
        }
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                errors.push(ImportError { row, message: format!("unreadable row: {e}") });
                continue;
            }
        };
        match contact_from_row(&headers, &topic_columns, &record) {
            Ok((contact, choices)) => rows.push((row, contact, choices)),
            Err(message) => errors.push(ImportError { row, message }),
        }
    }
    Ok((rows, errors))
}

fn contact_from_row(
    headers: &[String],
    topic_columns: &[Option<TopicId>],
    record: &csv::StringRecord,
) -> Result<(NewContact, Vec<(TopicId, bool)>), String> {
    let mut contact = NewContact::default();
    let mut choices = Vec::new();
    for ((column, value), topic) in headers.iter().zip(record.iter()).zip(topic_columns) {
        if value.is_empty() {
            continue;
        }
        if let Some(topic) = topic {
            let subscribed = parse_consent(value).ok_or_else(|| format!("{column}: {value:?} is not yes or no"))?;
            choices.push((*topic, subscribed));
            continue;
        }
        let invalid = |e: herald_domain::contact::IdentityError| format!("{column}: {e}");
        match column.as_str() {
            "email" => contact.identity.email = Some(EmailAddress::parse(value).map_err(invalid)?),
            "user_id" => contact.identity.user_id = Some(UserId::parse(value).map_err(invalid)?),
            "phone" => contact.identity.phone = Some(Phone::parse(value).map_err(invalid)?),
            "name" => contact.name = Some(value.to_owned()),
            "first_name" => contact.first_name = Some(value.to_owned()),
            "last_name" => contact.last_name = Some(value.to_owned()),
            _ => {
                contact.attributes.insert(column.clone(), Value::String(value.to_owned()));
            }
        }
    }
    for (name, value) in
        [("name", &contact.name), ("first_name", &contact.first_name), ("last_name", &contact.last_name)]
    {
        if let Some(value) = value {
            contact.attributes.insert(name.to_owned(), Value::String(value.clone()));
        }
    }
    if contact.identity.email.is_none() {
        return Err("email: is required".to_owned());
    }
    Ok((contact, choices))
}
