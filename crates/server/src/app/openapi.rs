//! What every operation of the OpenAPI document shares, written once instead of in each
//! handler's annotation: the error answers (the one error shape), the form of ids in paths
//! and in the query parameters that filter by id, and the range of `limit`. So the document says what the server does for every route,
//! including routes added later.

use herald_domain::{
    ActionId, ApiKeyId, BroadcastId, CampaignId, CampaignWebhookId, ContactId, DomainId, DraftId, EndpointId, EventId,
    JourneyId, MessageId, PageRequest, SegmentId, SourceId, TemplateId, TopicId, WebhookDeliveryId,
};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi, Ref, RefOr, ResponseBuilder};

use crate::web::error::ErrorBody;

/// The id a path parameter holds, by the collection its path names just before it
/// (`/sources/{id}`, `/campaigns/{id}/webhooks/{webhook_id}`).
const PATH_IDS: [(&str, &str); 18] = [
    ("actions", ActionId::PREFIX),
    ("api-keys", ApiKeyId::PREFIX),
    ("broadcasts", BroadcastId::PREFIX),
    ("campaigns", CampaignId::PREFIX),
    ("contacts", ContactId::PREFIX),
    ("domains", DomainId::PREFIX),
    ("events", EventId::PREFIX),
    ("layouts", TemplateId::PREFIX),
    ("messages", MessageId::PREFIX),
    ("segments", SegmentId::PREFIX),
    ("sources", SourceId::PREFIX),
    ("templates", TemplateId::PREFIX),
    ("webhook-deliveries", WebhookDeliveryId::PREFIX),
    ("webhook-drafts", DraftId::PREFIX),
    ("webhook-endpoints", EndpointId::PREFIX),
    ("webhooks", CampaignWebhookId::PREFIX),
    // `/suppressions/{email}` holds an address, not an id.
    ("suppressions", ""),
    ("topics", TopicId::PREFIX),
];

/// The id a query parameter holds, by its name: a filter by id is named alike everywhere.
const QUERY_IDS: [(&str, &str); 8] = [
    ("action", ActionId::PREFIX),
    ("campaign", CampaignId::PREFIX),
    ("campaign_id", CampaignId::PREFIX),
    ("campaign_webhook", CampaignWebhookId::PREFIX),
    ("contact", ContactId::PREFIX),
    ("contact_id", ContactId::PREFIX),
    ("journey", JourneyId::PREFIX),
    ("source_id", SourceId::PREFIX),
];

/// The error answers an operation can give, by what it takes: every one needs its key; one
/// with parameters or a body can be refused (400); one with an id in its path can find
/// nothing (404); one with a body can get one too large (413) or not JSON (415).
fn error_answers(path_params: bool, params: bool, body: bool) -> Vec<(&'static str, &'static str)> {
    let mut answers = vec![("401", "No valid API key")];
    if params || body {
        answers.push(("400", "A parameter or the body is invalid; `field` names it"));
    }
    if path_params {
        answers.push(("404", "Nothing of that id in this workspace"));
    }
    if body {
        answers.push(("413", "The body is larger than the endpoint accepts"));
        answers.push(("415", "The body is not sent as `Content-Type: application/json`"));
    }
    answers
}

/// Adds to every `/api/v1` operation what all of them share (see the module's doc). An
/// answer an operation documents itself is kept.
pub(super) fn complete(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut().filter(|(path, _)| path.starts_with("/api/v1/")) {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            complete_operation(path, operation);
        }
    }
}

fn complete_operation(path: &str, operation: &mut Operation) {
    let mut path_params = false;
    let mut params = false;
    for parameter in operation.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else { continue };
        params = true;
        let Some(RefOr::T(Schema::Object(schema))) = &mut parameter.schema else { continue };
        match parameter.parameter_in {
            ParameterIn::Path => {
                path_params = true;
                if let Some(prefix) = id_prefix(path, &parameter.name).filter(|p| !p.is_empty()) {
                    schema.pattern = Some(id_pattern(prefix));
                } else {
                    schema.min_length = Some(1);
                }
            }
            ParameterIn::Query if parameter.name == "limit" => {
                // `ListParams::page` (and every list) refuses anything outside this range.
                schema.minimum = Some(1.into());
                schema.maximum = Some(PageRequest::<SourceId>::MAX_LIMIT.into());
            }
            ParameterIn::Query => {
                if let Some((_, prefix)) = QUERY_IDS.iter().find(|(name, _)| *name == parameter.name) {
                    schema.pattern = Some(id_pattern(prefix));
                }
            }
            _ => {}
        }
    }
    let body = operation.request_body.is_some();
    for (status, description) in error_answers(path_params, params, body) {
        operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::Content::new(Some(Ref::from_schema_name(<ErrorBody as utoipa::ToSchema>::name()))),
                )
                .build()
                .into()
        });
    }
}

/// How an id with this prefix reads (`herald_domain`'s prefixed ids).
fn id_pattern(prefix: &str) -> String {
    format!("^{prefix}_[0-9a-f]{{32}}$")
}

/// The id prefix of the path parameter `name` in `path`, from the segment before it; `None`
/// for a collection not in [`PATH_IDS`].
fn id_prefix(path: &str, name: &str) -> Option<&'static str> {
    let placeholder = format!("{{{name}}}");
    let segments: Vec<&str> = path.split('/').collect();
    let collection = segments.windows(2).find(|pair| pair[1] == placeholder).map(|pair| pair[0])?;
    PATH_IDS.iter().find(|(known, _)| *known == collection).map(|(_, prefix)| *prefix)
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::{RefOr, path::Operation};

    /// Every id in a path has its form stated, and every operation its error answers: a new
    /// collection must be added to `PATH_IDS`.
    #[test]
    fn every_path_parameter_and_operation_is_described() {
        let doc = super::super::router::openapi();
        for (path, item) in doc.paths.paths.iter().filter(|(path, _)| path.starts_with("/api/v1/")) {
            let operations = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for operation in operations.into_iter().flatten() {
                check(path, operation);
            }
        }
    }

    fn check(path: &str, operation: &Operation) {
        assert!(operation.responses.responses.contains_key("401"), "{path}: no 401");
        for parameter in operation.parameters.iter().flatten() {
            let RefOr::T(parameter) = parameter else { panic!("{path}: a parameter by reference") };
            if parameter.parameter_in != ParameterIn::Path {
                continue;
            }
            assert!(
                super::id_prefix(path, &parameter.name).is_some(),
                "{path}: `{}` is not in PATH_IDS",
                parameter.name
            );
            let Some(RefOr::T(Schema::Object(schema))) = &parameter.schema else { panic!("{path}: no schema") };
            assert!(
                schema.pattern.is_some() || schema.min_length == Some(1),
                "{path}: `{}` unconstrained",
                parameter.name
            );
            assert!(operation.responses.responses.contains_key("404"), "{path}: no 404");
        }
    }

    #[test]
    fn filters_by_id_state_the_form_of_the_id() {
        let doc = super::super::router::openapi();
        let pattern = |path: &str, name: &str| {
            let operation = doc.paths.paths[path].get.as_ref().expect("a GET");
            operation.parameters.iter().flatten().find_map(|p| match p {
                RefOr::T(p) if p.name == name => match &p.schema {
                    Some(RefOr::T(Schema::Object(schema))) => schema.pattern.clone(),
                    _ => None,
                },
                _ => None,
            })
        };
        assert_eq!(pattern("/api/v1/events", "contact_id").as_deref(), Some("^ct_[0-9a-f]{32}$"));
        assert_eq!(pattern("/api/v1/webhook-deliveries", "action").as_deref(), Some("^act_[0-9a-f]{32}$"));
        assert_eq!(pattern("/api/v1/contacts", "user_id"), None, "a user id is the customer's, of any form");
    }

    #[test]
    fn the_collection_before_a_parameter_names_its_id() {
        assert_eq!(super::id_prefix("/api/v1/sources/{id}/rotate", "id"), Some("src"));
        assert_eq!(super::id_prefix("/api/v1/campaigns/{id}/webhooks/{webhook_id}", "webhook_id"), Some("cwh"));
        assert_eq!(super::id_prefix("/api/v1/campaigns/{id}/webhooks/{webhook_id}", "id"), Some("cmp"));
        assert_eq!(super::id_prefix("/api/v1/suppressions/{email}", "email"), Some(""));
        assert_eq!(super::id_prefix("/api/v1/unknown/{id}", "id"), None);
    }
}
