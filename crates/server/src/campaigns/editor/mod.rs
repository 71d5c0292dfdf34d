//! The campaign editor: name, trigger, entry rule and goal, and the steps as an ordered,
//! nestable list (a branch holds two lists), edited as one HTML form that needs no script.
//!
//! Every button posts the whole form with an `op`: add a step to a list, move or remove one,
//! add or remove a condition rule, preview an email, save. The server rebuilds the document
//! from the fields, applies the op and shows the form again, so nothing typed is lost between
//! round trips. Fields are named by their path in the document (`steps[2].then[0].subject`),
//! which is how the compiler names its errors, so each error is shown next to its field.
//! Saving goes through the API's validation and storage ([`service::save_campaign`]): editing an
//! active campaign saves a new version, and running journeys finish on theirs.
//!
//! In the order of a round trip: `handlers` receive the form, `form` reads its fields into a
//! document, `ops` edits the document's structure, `preview` renders an email step, and
//! `page` shows the document as the form again, with the inputs that `fields` builds.
//!
//! [`service::save_campaign`]: super::service::save_campaign

mod fields;
mod form;
mod handlers;
mod ops;
mod page;
mod preview;

pub use handlers::{edit, new, submit_edit, submit_new};

/// Branches nest at most this deep in the editor (the form is read no deeper).
const MAX_DEPTH: usize = 8;

/// The kinds of step, with the title the editor gives each.
const STEP_KINDS: [(&str, &str); 7] = [
    ("wait", "Wait"),
    ("email", "Send email"),
    ("webhook", "Webhook"),
    ("branch", "Branch (if / else)"),
    ("set_attribute", "Set attribute"),
    ("unset_attribute", "Unset attribute"),
    ("exit", "Exit"),
];
