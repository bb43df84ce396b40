//! The handlers, one module per resource.

pub(crate) mod admin;
pub(crate) mod apps;
pub(crate) mod mdm;
pub(crate) mod notify;
pub(crate) mod profiles;
pub(crate) mod tenant;

use serde::Serialize;

use crate::problem::Problem;

/// The most items one page holds.
pub(crate) const MAX_PAGE: usize = 1000;
/// Items per page unless asked.
pub(crate) const DEFAULT_PAGE: usize = 100;

/// A page size as asked (`default` when not), checked: 1 to [`MAX_PAGE`].
pub(crate) fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, Problem> {
    let limit = limit.unwrap_or(default);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::bad_request(
            "invalid-page",
            format!("limit={limit}: give 1 to {MAX_PAGE}"),
        ))
    }
}

/// One page of a list: the items, and how many there are in all.
#[derive(Debug, Serialize)]
pub(crate) struct Page<T> {
    items: Vec<T>,
    total: usize,
    limit: usize,
    offset: usize,
}

impl<T: Clone> Page<&T> {
    /// The page with its items copied out of what they borrow.
    pub(crate) fn owned(self) -> Page<T> {
        Page {
            items: self.items.into_iter().cloned().collect(),
            total: self.total,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

impl<T> Page<T> {
    /// A page cut already: its items, out of `total`.
    pub(crate) fn cut(items: Vec<T>, total: usize, limit: usize, offset: usize) -> Self {
        Page {
            items,
            total,
            limit,
            offset,
        }
    }

    /// Items `offset..offset + limit` of `all`.
    pub(crate) fn of(
        all: impl Iterator<Item = T>,
        limit: Option<usize>,
        offset: Option<usize>,
    ) -> Result<Self, Problem> {
        let limit = page_limit(limit, DEFAULT_PAGE)?;
        let offset = offset.unwrap_or(0);
        let mut total = 0;
        let mut items = Vec::new();
        for (i, x) in all.enumerate() {
            total += 1;
            if i >= offset && items.len() < limit {
                items.push(x);
            }
        }
        Ok(Page {
            items,
            total,
            limit,
            offset,
        })
    }
}

/// An admin's removal of a named thing (a connection, a channel) within
/// the caller's organization group: 204, or the store's refusal.
pub(crate) async fn remove_named<T: Send + 'static>(
    state: &crate::state::AppState,
    caller: &crate::auth::Caller,
    name: String,
    remove: fn(
        &mut dyn provkit_store::Store,
        &str,
        &provkit_store::Actor,
    ) -> Result<T, provkit_store::StoreError>,
) -> Result<axum::http::StatusCode, Problem> {
    caller.require(provkit_service::tokens::Role::Admin)?;
    let actor = caller.actor(state.now());
    state
        .run(caller.scope(), move |store| {
            Ok(remove(store, &name, &actor)?)
        })
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
