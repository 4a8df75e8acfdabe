//! Keyset pagination. Ids sort by creation time, so a page is "the next `limit` ids after the
//! cursor"; the cursor is the last id of the previous page, base64url-encoded so that clients
//! treat it as opaque.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::Error;
use crate::ids::{self, Kind};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

/// A validated page request.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    /// The id after which the page starts ("" for the first page).
    pub after: String,
}

impl PageRequest {
    /// Validates `limit` (1–100, default 50) and decodes `cursor` for ids of `kind`.
    pub fn new(kind: Kind, limit: Option<i64>, cursor: Option<&str>) -> Result<Self, Error> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = match cursor {
            None | Some("") => String::new(),
            Some(cursor) => URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .filter(|id| ids::is_valid(kind, id))
                .ok_or_else(|| Error::invalid("cursor", "is not a cursor this list returned"))?,
        };
        Ok(PageRequest { limit, after })
    }

    /// How many rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `fetch()` rows, cutting the extra row and making the cursor.
    pub fn from_rows(mut rows: Vec<T>, request: &PageRequest, id_of: impl Fn(&T) -> &str) -> Self {
        let more = rows.len() as i64 > request.limit;
        rows.truncate(request.limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| URL_SAFE_NO_PAD.encode(id_of(last)))
        } else {
            None
        };
        Page {
            data: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded_and_cursors_checked() {
        assert!(PageRequest::new(Kind::Vault, Some(0), None).is_err());
        assert!(PageRequest::new(Kind::Vault, Some(101), None).is_err());
        assert!(PageRequest::new(Kind::Vault, None, Some("not-a-cursor")).is_err());
        let id = ids::new(Kind::Vault);
        let cursor = URL_SAFE_NO_PAD.encode(&id);
        assert_eq!(
            PageRequest::new(Kind::Vault, Some(5), Some(&cursor))
                .unwrap()
                .after,
            id
        );
        assert!(PageRequest::new(Kind::Event, Some(5), Some(&cursor)).is_err());
    }
}
