//! Cursor paging shared by every list: `limit` and an opaque `cursor`, answered with the items and
//! `next_cursor`. Cursors are keyset positions (never offsets), so a page costs the same at item
//! 100,000 as at item 1.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{de::DeserializeOwned, Serialize};

use crate::{Error, Result};

/// Default page size when the caller gives none.
pub const DEFAULT_LIMIT: u64 = 50;
/// Largest page a caller may ask for.
pub const MAX_LIMIT: u64 = 500;

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<C> {
    /// Items to return (1..=MAX_LIMIT).
    pub limit: u64,
    /// Position after which to continue, if any.
    pub after: Option<C>,
}

impl<C: DeserializeOwned> PageRequest<C> {
    /// Validates `limit` and decodes `cursor`.
    pub fn parse(limit: Option<u64>, cursor: Option<&str>) -> Result<Self> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(Error::invalid(
                "invalid_limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = match cursor {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(c)?),
        };
        Ok(PageRequest { limit, after })
    }
}

/// Encodes a keyset position as an opaque cursor.
pub fn encode_cursor<C: Serialize>(position: &C) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).expect("cursor serializes"))
}

fn decode_cursor<C: DeserializeOwned>(cursor: &str) -> Result<C> {
    let bad = || {
        Error::invalid(
            "invalid_cursor",
            "cursor is not one this server handed out; start again without a cursor",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// The keyset condition of a newest-first list ordered by `(time DESC, id DESC)`: the rows
/// strictly after position `(at, id)`.
pub fn newest_first_after<T, I>(
    time_col: impl sea_orm::sea_query::IntoColumnRef + Copy,
    id_col: impl sea_orm::sea_query::IntoColumnRef + Copy,
    (at, id): (T, I),
) -> sea_orm::sea_query::Condition
where
    T: Into<sea_orm::Value> + Clone,
    I: Into<sea_orm::Value>,
{
    use sea_orm::sea_query::{Condition, Expr};
    Condition::any()
        .add(Expr::col(time_col).lt(at.clone()))
        .add(
            Condition::all()
                .add(Expr::col(time_col).eq(at))
                .add(Expr::col(id_col).lt(id)),
        )
}

/// A page of items and the cursor of the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Cursor of the next page, `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row only tells that more exist.
    pub fn from_rows<C: Serialize>(
        mut rows: Vec<T>,
        limit: u64,
        position: impl Fn(&T) -> C,
    ) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| encode_cursor(&position(r)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    /// Maps the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}
