//! Email's UI pages: the message log and the sending domains.

pub(crate) mod domains;
pub(crate) mod messages;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};

use super::EmailState;
use crate::web::WebState;

/// The message and domain pages.
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
}
