//! Email's UI pages: the message log, the sending domains and deliverability.

pub(crate) mod deliverability;
pub(crate) mod domains;
pub(crate) mod messages;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};

use super::EmailState;
use crate::web::WebState;

/// The message, domain and deliverability pages.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    EmailState: FromRef<S>,
    WebState: FromRef<S>,
{
    Router::new()
        .route("/messages", get(messages::list))
        .route("/messages/{id}", get(messages::show))
        .route("/messages/{id}/resend", post(messages::resend))
        .route("/domains", get(domains::list).post(domains::create))
        .route("/domains/{id}", get(domains::show))
        .route("/domains/{id}/verify", post(domains::verify))
        .route("/deliverability", get(deliverability::show))
        .route("/deliverability/suppressions.csv", get(deliverability::export))
        .route("/deliverability/remove", post(deliverability::remove))
}
