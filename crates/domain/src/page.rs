//! Cursor pagination: every list is ordered by id (time-sortable), and a page ends with an
//! opaque cursor naming the last id it held.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An opaque position in a list. Clients pass it back verbatim; its content (the last id,
/// base64url-encoded) is not part of the API contract.
#[derive(Clone, PartialEq, Eq)]
pub struct Cursor(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a cursor returned by this list")]
pub struct InvalidCursor;

impl Cursor {
    pub fn after<Id: fmt::Display>(last: &Id) -> Self {
        Self(URL_SAFE_NO_PAD.encode(last.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Decodes a cursor given by a client into the id it stands after.
    pub fn decode<Id: FromStr>(raw: &str) -> Result<Id, InvalidCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| InvalidCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| InvalidCursor)?;
        text.parse().map_err(|_| InvalidCursor)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Which page of a list to read: the items after `after`, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<Id> {
    pub after: Option<Id>,
    pub limit: u32,
}

impl<Id> PageRequest<Id> {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 500;

    pub fn first(limit: u32) -> Self {
        Self { after: None, limit: limit.clamp(1, Self::MAX_LIMIT) }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows read in order: the extra row, if present,
    /// only proves there is a next page and is dropped.
    pub fn from_overfetch<Id: fmt::Display>(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> Id) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| Cursor::after(&id(last)))
        } else {
            None
        };
        Self { items: rows, next_cursor }
    }

    /// Like [`Page::from_overfetch`], for a read that examined only the rows up to
    /// `window_end` (a scan bounded so that a filter few rows match cannot read a whole table;
    /// `None`: the window reached the end of the list). When the matches do not fill the page,
    /// the cursor continues after the window, so such a page may hold fewer than `limit`
    /// items, even none, and still have a next one.
    pub fn from_window<Id: fmt::Display>(
        rows: Vec<T>,
        limit: u32,
        id: impl Fn(&T) -> Id,
        window_end: Option<Id>,
    ) -> Self {
        let mut page = Self::from_overfetch(rows, limit, id);
        if page.next_cursor.is_none() {
            page.next_cursor = window_end.map(|end| Cursor::after(&end));
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobId;
    use proptest::prelude::*;
    use uuid::Uuid;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let id = JobId::from_uuid(Uuid::from_u128(42));
        let cursor = Cursor::after(&id);
        assert_eq!(Cursor::decode::<JobId>(cursor.as_str()), Ok(id));
        assert_eq!(Cursor::decode::<JobId>("not base64!"), Err(InvalidCursor));
        assert_eq!(Cursor::decode::<JobId>(&URL_SAFE_NO_PAD.encode("job_12")), Err(InvalidCursor));
    }

    #[test]
    fn overfetch_decides_the_next_cursor() {
        let full = Page::from_overfetch(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(full.items, vec![1, 2]);
        assert_eq!(full.next_cursor, Some(Cursor::after(&2)));
        let last = Page::from_overfetch(vec![1, 2], 2, |n| *n);
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn a_window_continues_after_its_end_unless_the_page_is_full() {
        let none_found = Page::<u32>::from_window(vec![], 2, |n| *n, Some(900));
        assert_eq!((none_found.items.len(), none_found.next_cursor), (0, Some(Cursor::after(&900))));
        let full = Page::from_window(vec![5, 6, 7], 2, |n| *n, Some(900));
        assert_eq!(full.next_cursor, Some(Cursor::after(&6)));
        let at_the_end = Page::from_window(vec![5], 2, |n| *n, None);
        assert_eq!(at_the_end.next_cursor, None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in ".*") {
            let _ = Cursor::decode::<JobId>(&s);
        }
    }
}
