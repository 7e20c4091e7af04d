//! Listing users: filters and keyset paging over `user_name_key`.
//!
//! The order is the unique index on `user_name_key`, so a page is a range scan of that index
//! (or of `(auth_method, user_name_key)` when that filter is set) that stops after `limit + 1`
//! matching rows, whatever page it is. The text filter cannot use a B-tree index (it matches
//! inside names); names are checked row by row along that same scan, and the matching addresses
//! are found in one pass over `user_emails` per page — a correlated lookup per user would cost
//! 100,000 index probes when the text is rare (measured: ~1 s against ~60 ms at 100,000 users;
//! see `scale_tests`).

use dirsync_entity::{user_emails, users};
use sea_orm::{
    sea_query::{Condition, Expr, Func, LikeExpr, Query},
    ColumnTrait, ConnectionTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

use super::{select_users, with_emails, AuthMethod, User, UserRow};
use crate::paging::{Page, PageRequest};
use crate::{Error, Result};

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Text found, without case, in the user name, the full name or any address.
    pub q: Option<String>,
    /// Only local or only directory users.
    pub auth_method: Option<AuthMethod>,
    /// Only disabled or only enabled users.
    pub disabled: Option<bool>,
}

/// A `LIKE` pattern (with `\` as the escape character) that matches values containing `text`
/// literally, lower-cased: `%` and `_` in the text are not wildcards.
pub fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Users ordered by user name (case-insensitive), a page at a time; the cursor is the last
/// user's `user_name_key`.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &UserFilter,
    page: PageRequest<String>,
) -> Result<Page<User>> {
    if filter
        .q
        .as_deref()
        .is_some_and(|q| q.chars().any(char::is_control))
    {
        // PostgreSQL cannot compare text holding NUL, and searching for control characters
        // has no use.
        return Err(Error::invalid(
            "invalid_q",
            "q may not contain control characters",
        ));
    }
    let rows: Vec<UserRow> = list_query(filter, &page)
        .into_model::<UserRow>()
        .all(db)
        .await?;
    let page = Page::from_rows(rows, page.limit, |r| r.user_name_key.clone());
    let items = with_emails(db, page.items).await?;
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// The query of one page (`limit + 1` rows, to tell whether more follow).
pub(super) fn list_query(filter: &UserFilter, page: &PageRequest<String>) -> Select<users::Entity> {
    let mut q = select_users().order_by_asc(users::Column::UserNameKey);
    if let Some(after) = &page.after {
        q = q.filter(users::Column::UserNameKey.gt(after.as_str()));
    }
    if let Some(m) = filter.auth_method {
        q = q.filter(users::Column::AuthMethod.eq(m));
    }
    if let Some(d) = filter.disabled {
        q = q.filter(users::Column::Disabled.eq(d));
    }
    if let Some(text) = filter.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = contains_pattern(text);
        let like = || LikeExpr::new(pattern.clone()).escape('\\');
        let address = Query::select()
            .column((user_emails::Entity, user_emails::Column::UserId))
            .from(user_emails::Entity)
            .and_where(
                Expr::col((user_emails::Entity, user_emails::Column::AddressKey)).like(like()),
            )
            .to_owned();
        q = q.filter(
            Condition::any()
                .add(Expr::col((users::Entity, users::Column::UserNameKey)).like(like()))
                .add(
                    Expr::expr(Func::lower(Expr::col((
                        users::Entity,
                        users::Column::FullName,
                    ))))
                    .like(like()),
                )
                .add(users::Column::Id.in_subquery(address)),
        );
    }
    q.limit(page.limit + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_the_text_literally() {
        assert_eq!(contains_pattern("Ada"), "%ada%");
        assert_eq!(contains_pattern("50%_off"), "%50\\%\\_off%");
        assert_eq!(contains_pattern("a\\b"), "%a\\\\b%");
        assert_eq!(contains_pattern("ÅSA"), "%åsa%");
    }
}
