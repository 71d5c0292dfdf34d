//! The shape every list endpoint shares: `?limit=&cursor=` in, `{"data", "next_cursor"}` out.

use std::str::FromStr;

use herald_domain::{Cursor, Page, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items per page, 1–500. Default 50.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    pub fn page<Id: FromStr>(&self) -> Result<PageRequest<Id>, ApiError> {
        let limit = self.limit.unwrap_or(PageRequest::<Id>::DEFAULT_LIMIT);
        if !(1..=PageRequest::<Id>::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid("limit", format!("must be between 1 and {}", PageRequest::<Id>::MAX_LIMIT)));
        }
        let after =
            self.cursor.as_deref().map(Cursor::decode::<Id>).transpose().map_err(|e| ApiError::invalid("cursor", e))?;
        Ok(PageRequest { after, limit })
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> List<T> {
    pub fn from_page<U>(page: Page<U>, convert: impl Fn(U) -> T) -> Self {
        Self {
            data: page.items.into_iter().map(convert).collect(),
            next_cursor: page.next_cursor.map(|c| c.as_str().to_owned()),
        }
    }
}
