//! Saved searches: a member's named queries, checked exactly as `GET /v1/search` checks a query, so
//! that a stored one always runs.

use karavan_domain::{MemberId, SavedSearchId};
use karavan_store::SavedSearch;

use super::Core;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;

/// Checks search parameters given as (name, value) pairs as a search would (errors name
/// `query.<parameter>`).
pub fn check_query(pairs: &[(String, String)]) -> ApiResult<()> {
    check(pairs, false)
}

/// Checks a saved search's parameters: a search's, and the ranking mode it keeps (`mode`).
pub fn check_saved_query(pairs: &[(String, String)]) -> ApiResult<()> {
    check(pairs, true)
}

fn check(pairs: &[(String, String)], with_mode: bool) -> ApiResult<()> {
    let mut params = Params::from_pairs(pairs.to_vec());
    let prefixed = |mut e: ApiError| {
        e.message = format!("query.{}", e.message);
        e
    };
    crate::search::parse_search_query(&mut params).map_err(prefixed)?;
    if with_mode {
        crate::semantic::Mode::parse(params.one("mode")?.as_deref()).map_err(prefixed)?;
    }
    params.finish()?;
    Ok(())
}

/// Saves a named search of `member` (a name of 1 to 200 characters, unique per member).
pub async fn save(core: &Core, member: &MemberId, name: &str, query: Vec<(String, String)>) -> ApiResult<SavedSearch> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name: required, a non-empty string of at most 200 characters"));
    }
    check_saved_query(&query)?;
    let member = member.clone();
    core.blocking(move |store| store.add_saved_search(&member, &name, query)).await
}

/// One of `member`'s saved searches, or `NotFound`.
pub async fn find(core: &Core, member: &MemberId, id: &SavedSearchId) -> ApiResult<SavedSearch> {
    let (member, id) = (member.clone(), id.clone());
    core.blocking(move |store| store.saved_search(&member, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("saved search of your member"))
}

/// Deletes one of `member`'s saved searches; `NotFound` if it has none by that id.
pub async fn delete(core: &Core, member: &MemberId, id: &SavedSearchId) -> ApiResult<()> {
    let (member, id) = (member.clone(), id.clone());
    if !core.blocking(move |store| store.delete_saved_search(&member, &id)).await? {
        return Err(ApiError::not_found("saved search of your member"));
    }
    Ok(())
}
