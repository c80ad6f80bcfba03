//! Feed ingest providers: RSS and Atom feeds a member has polled into its items.

use karavan_domain::{FeedId, MemberId};
use karavan_store::{FeedProvider, FeedSpec};

use crate::AppState;
use crate::bus::{ConfigChange, Event};
use crate::error::{ApiError, ApiResult};
use crate::feeds::MAX_INTERVAL_SECONDS;
use crate::outbound::check_url;

/// What a member says about a feed provider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeedInput {
    pub name: String,
    pub url: String,
    /// The language of entries that do not say theirs (a BCP 47 tag).
    pub language: Option<String>,
    /// Subjects added to every item (QCodes, URIs or names).
    pub subjects: Vec<String>,
    /// Seconds between polls; `None`: 15 minutes (or the shortest allowed, if longer).
    pub interval_seconds: Option<u64>,
}

/// Checks an input and makes the stored spec.
pub fn check(state: &AppState, input: FeedInput) -> ApiResult<FeedSpec> {
    let name = input.name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("name: required, a non-empty string"));
    }
    if name.chars().count() > 200 {
        return Err(ApiError::invalid("name: at most 200 characters"));
    }
    let url = input.url.trim();
    if url.is_empty() {
        return Err(ApiError::invalid("url: required, the feed's http(s) URL"));
    }
    let allow_private = state.distribution().config().outbound.allow_private;
    let url = check_url(url, allow_private).map_err(|e| ApiError::invalid(format!("url: {e}")))?.to_string();
    let language = match input.language {
        None => None,
        Some(tag) => Some(
            karavan_domain::LanguageTag::parse(&tag)
                .map_err(|e| ApiError::invalid(format!("language: {}", e.message)))?
                .as_str()
                .to_string(),
        ),
    };
    let subjects = input
        .subjects
        .into_iter()
        .map(|subject| match subject.trim() {
            trimmed if !trimmed.is_empty() && trimmed.len() <= 200 => Ok(trimmed.to_string()),
            _ => {
                Err(ApiError::invalid(format!("subjects: {subject:?} is not a non-empty string (QCode, URI or name)")))
            }
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let min = u32::try_from(state.distribution().config().feed_min_interval.as_secs()).unwrap_or(60).max(1);
    let interval_seconds = match input.interval_seconds {
        None => 900.max(min),
        Some(seconds) => {
            u32::try_from(seconds).ok().filter(|v| (min..=MAX_INTERVAL_SECONDS).contains(v)).ok_or_else(|| {
                ApiError::invalid(format!(
                    "interval_seconds: {seconds} is not a whole number from {min} to {MAX_INTERVAL_SECONDS}"
                ))
            })?
        }
    };
    Ok(FeedSpec { name: name.to_string(), url, language, subjects, interval_seconds })
}

/// Registers a provider for `member`, due at once.
pub async fn add(state: &AppState, member: &MemberId, input: FeedInput) -> ApiResult<FeedProvider> {
    let spec = check(state, input)?;
    let member = member.clone();
    let provider = state.blocking(move |store| store.add_feed(&member, spec)).await?;
    state.bus().publish(Event::Config(ConfigChange::Feeds));
    Ok(provider)
}

/// Changes a provider's spec.
pub async fn update(state: &AppState, member: &MemberId, id: &FeedId, input: FeedInput) -> ApiResult<FeedProvider> {
    let spec = check(state, input)?;
    let (member, id) = (member.clone(), id.clone());
    let provider = state.blocking(move |store| store.update_feed(&member, &id, spec)).await?;
    state.bus().publish(Event::Config(ConfigChange::Feeds));
    Ok(provider)
}

/// Deletes a provider; `NotFound` if the member has none by that id.
pub async fn delete(state: &AppState, member: &MemberId, id: &FeedId) -> ApiResult<()> {
    let (member, id) = (member.clone(), id.clone());
    if !state.blocking(move |store| store.delete_feed(&member, &id)).await? {
        return Err(ApiError::not_found("feed provider"));
    }
    state.bus().publish(Event::Config(ConfigChange::Feeds));
    Ok(())
}

/// Pauses a provider, or resumes it (due at once, its failures forgotten).
pub async fn set_paused(state: &AppState, member: &MemberId, id: &FeedId, paused: bool) -> ApiResult<FeedProvider> {
    let (member, id) = (member.clone(), id.clone());
    let provider = state.blocking(move |store| store.set_feed_paused(&member, &id, paused, crate::now())).await?;
    state.bus().publish(Event::Config(ConfigChange::Feeds));
    Ok(provider)
}
