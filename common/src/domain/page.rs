//! Cursor pagination: `?limit=&cursor=` → `{items, nextCursor}`, cursors opaque to clients.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use uuid::Uuid;

use super::validation::FieldErrors;
use crate::error::{Error, Result};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;
/// A list with a filter reads at most this many items per request, matching or not, so that a
/// rare status among many deliveries costs a few bounded requests instead of one that reads a
/// webhook's whole history: its page may then be short, even empty, and still have a next
/// cursor. Both stores stop at the same item, so their pages agree.
pub const FILTER_SCAN_LIMIT: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Stores fetch one item more than asked; its presence says there is a next page.
    pub fn from_overfetch(items: Vec<T>, limit: usize, id_of: impl Fn(&T) -> Uuid) -> Page<T> {
        Page::from_overfetch_by(items, limit, |item| encode_cursor(id_of(item)))
    }

    /// `from_overfetch` for a list whose cursor is more than an id (`cursor_of` the last item).
    pub fn from_overfetch_by(
        mut items: Vec<T>,
        limit: usize,
        cursor_of: impl Fn(&T) -> String,
    ) -> Page<T> {
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor_of)
        } else {
            None
        };
        Page { items, next_cursor }
    }

    /// A page from a read that may have stopped before the end: `items` are those it found
    /// (one more than `limit` when there is a next page after them), `stopped_after` the last
    /// item it read when it stopped with items possibly left (a filtered read at
    /// `FILTER_SCAN_LIMIT`). A page with fewer than `limit` items then resumes after it.
    pub fn from_read(
        items: Vec<T>,
        limit: usize,
        id_of: impl Fn(&T) -> Uuid,
        stopped_after: Option<Uuid>,
    ) -> Page<T> {
        let mut page = Page::from_overfetch(items, limit, id_of);
        if page.next_cursor.is_none() {
            page.next_cursor = stopped_after.map(encode_cursor);
        }
        page
    }
}

/// Where a page starts and how long it is, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub after: Option<Uuid>,
}

impl PageRequest {
    /// `limit` items (1 to `MAX_LIMIT`; absent: `DEFAULT_LIMIT`) after the item `cursor` names.
    /// `names`: what the face calls the two (REST `limit` and `cursor`, GraphQL `first` and
    /// `after`), for its error.
    pub fn new(
        limit: Option<i64>,
        cursor: Option<&str>,
        names: (&str, &str),
    ) -> Result<PageRequest> {
        let (limit_name, cursor_name) = names;
        let mut errors = FieldErrors::default();
        let limit = limit.map_or(Some(DEFAULT_LIMIT as i64), |n| {
            errors.int(limit_name, n, 1..=MAX_LIMIT as i64)
        });
        let after = cursor.and_then(|cursor| {
            let id = decode_cursor(cursor).ok();
            if id.is_none() {
                errors.fail(cursor_name, NOT_A_CURSOR);
            }
            id
        });
        errors.finish()?;
        Ok(PageRequest {
            limit: limit.map_or(DEFAULT_LIMIT, |n| n as usize),
            after,
        })
    }
}

pub const NOT_A_CURSOR: &str = "is not a cursor this API returned";

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn decode_cursor(cursor: &str) -> Result<Uuid> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| Error::invalid_field("cursor", NOT_A_CURSOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        for bad in ["", "!!", "abc", "AAAA"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_are_bounded() {
        let names = ("limit", "cursor");
        assert_eq!(
            PageRequest::new(None, None, names).unwrap().limit,
            DEFAULT_LIMIT
        );
        assert_eq!(PageRequest::new(Some(100), None, names).unwrap().limit, 100);
        for bad in [0, 101, -1] {
            assert!(PageRequest::new(Some(bad), None, names).is_err(), "{bad}");
        }
        let Err(Error::Invalid { details, .. }) =
            PageRequest::new(Some(0), Some("!!"), ("first", "after"))
        else {
            panic!("a bad page is refused");
        };
        assert_eq!(details["first"], "must be an integer from 1 to 100");
        assert_eq!(details["after"], NOT_A_CURSOR);
    }

    #[test]
    fn a_read_cut_short_resumes_after_the_last_item_read() {
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        let read_on = Uuid::now_v7();
        let short = Page::from_read(ids[..1].to_vec(), 2, |id| *id, Some(read_on));
        assert_eq!(short.items, ids[..1]);
        assert_eq!(short.next_cursor, Some(encode_cursor(read_on)));
        let empty = Page::from_read(Vec::new(), 2, |id: &Uuid| *id, Some(read_on));
        assert_eq!(empty.next_cursor, Some(encode_cursor(read_on)));
        let full = Page::from_read(ids[..3].to_vec(), 2, |id| *id, Some(read_on));
        assert_eq!(
            full.next_cursor,
            Some(encode_cursor(ids[1])),
            "the page's own end"
        );
        let end = Page::from_read(ids[..2].to_vec(), 2, |id| *id, None);
        assert_eq!(end.next_cursor, None);
    }

    #[test]
    fn next_cursor_only_when_more_exist() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let page = Page::from_overfetch(ids.clone(), 2, |id| *id);
        assert_eq!(page.items, ids[..2]);
        assert_eq!(page.next_cursor, Some(encode_cursor(ids[1])));
        let last = Page::from_overfetch(ids.clone(), 3, |id| *id);
        assert_eq!(last.next_cursor, None);
    }
}
