//! The stories API: `GET /v1/stories` (filters as the wire's, `sort=activity|size|growth`, pages by
//! `cursor`), `GET /v1/stories/{id}` (a merged story's id answers 301 to the story it joined) and
//! `GET /v1/items/{id}/story`. Every answer is the caller's view of the story: only items it may see.
//! `read=` names the language titles and headlines are given in where a translation is stored.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use karavan_domain::{ItemId, LanguageTag, MemberId, StoryId, Timestamp};
use serde_json::{Value, json};

use super::view::{self, Found, Sort, StoryListQuery, StoryView};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{AppState, now};

fn rfc3339(micros: i64) -> String {
    Timestamp(micros).to_rfc3339()
}

/// What every answer says about a story: the list's fields.
fn summary(story: &StoryView, titles: &HashMap<i64, (String, String)>, read: Option<&str>) -> Value {
    let title = story.title();
    let translated = titles.get(&title.version.seq);
    json!({
        "id": story.id.as_str(),
        "title": translated.map_or(title.headline.as_str(), |(headline, _)| headline.as_str()),
        "titleLanguage": if translated.is_some() { read.unwrap_or_default() } else { title.language.as_str() },
        "titleItem": title.version.item_id.as_str(),
        "titleMachineTranslated": translated.map(|(_, model)| model.as_str()),
        "size": story.items.len(),
        "members": story.members().iter().map(|m| m.as_str().to_string()).collect::<Vec<_>>(),
        "languages": story.languages(),
        "firstItemAt": rfc3339(story.first_at()),
        "lastItemAt": rfc3339(story.last_at()),
        "breaking": story.breaking,
    })
}

/// The whole story: the summary, its items (newest first) and its coverage by agency and language.
fn detail(
    story: &StoryView,
    titles: &HashMap<i64, (String, String)>,
    headlines: &HashMap<i64, (String, String)>,
    names: &HashMap<String, String>,
    read: Option<&str>,
) -> Value {
    let mut body = summary(story, titles, read);
    let (by_member, by_language) = story.coverage();
    let first_by_member =
        |member: &MemberId| story.items.iter().filter(|i| &i.version.owner == member).map(|i| i.at).min().map(rfc3339);
    body["items"] = story
        .items
        .iter()
        .map(|item| {
            let translated = headlines.get(&item.version.seq);
            json!({
                "id": item.version.item_id.as_str(),
                "member": item.version.owner.as_str(),
                "memberName": names.get(item.version.owner.as_str()),
                "language": item.language,
                "headline": item.headline,
                "translatedHeadline": translated.map(|(headline, _)| headline),
                "translationModel": translated.map(|(_, model)| model),
                "at": rfc3339(item.at),
            })
        })
        .collect();
    body["coverage"] = json!({
        "members": by_member.iter().map(|(member, count)| {
            let id = MemberId::parse(member).ok();
            json!({
                "member": member, "name": names.get(member), "items": count,
                "firstItemAt": id.as_ref().and_then(first_by_member),
            })
        }).collect::<Vec<_>>(),
        "languages": by_language.iter().map(|(language, count)| json!({ "language": language, "items": count })).collect::<Vec<_>>(),
    });
    body
}

/// `read=`: a language tag, else the caller's first read language.
fn read_language(params: &mut Params) -> ApiResult<Option<String>> {
    match params.one("read")? {
        Some(tag) => Ok(Some(LanguageTag::parse(&tag)?.to_string())),
        None => Ok(None),
    }
}

/// Titles (and for a whole story every headline) in the reader's language, where stored.
async fn translations(
    state: &AppState,
    viewer: &MemberId,
    stories: Vec<StoryView>,
    read: Option<String>,
    all_items: bool,
) -> ApiResult<(Vec<StoryView>, HashMap<i64, (String, String)>, HashMap<i64, (String, String)>, Option<String>)> {
    let (viewer, models) = (viewer.clone(), Arc::clone(state.language()));
    state
        .blocking(move |store| {
            let read = match read {
                Some(read) => Some(read),
                None => store.read_languages(&viewer)?.into_iter().next(),
            };
            let Some(language) = read.clone() else { return Ok((stories, HashMap::new(), HashMap::new(), None)) };
            let refs: Vec<&StoryView> = stories.iter().collect();
            let titles = view::translated_titles(store, &models, &viewer, &refs, &language)?;
            let headlines = if all_items {
                let versions: Vec<&karavan_store::StoredVersion> =
                    stories.iter().flat_map(|s| s.items.iter().map(|i| &i.version)).collect();
                crate::translation::listed_headlines(store, &models, &viewer, &versions, &language)?
            } else {
                HashMap::new()
            };
            Ok((stories, titles, headlines, read))
        })
        .await
}

/// `GET /v1/stories`.
pub async fn list_stories(State(state): State<AppState>, caller: Caller, query: RawQuery) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let limit = params.limit(20, 100)?;
    let cursor = params.one("cursor")?;
    let mut languages = params.all("lang");
    languages.extend(params.all("language"));
    for language in &languages {
        LanguageTag::parse(language)?;
    }
    let member = params.one("member")?.map(|text| MemberId::parse(&text)).transpose()?;
    let subjects = crate::items::subject_filter(&mut params)?;
    let (from, to) = (params.time("from")?, params.time("to")?);
    let sort = match params.one("sort")?.as_deref() {
        None | Some("activity") => Sort::Activity,
        Some("size") => Sort::Size,
        Some("growth") => Sort::Growth,
        Some(other) => return Err(ApiError::invalid(format!("sort: {other:?} is not activity, size or growth"))),
    };
    let read = read_language(&mut params)?;
    params.finish()?;
    let query = StoryListQuery { limit, cursor, languages, member, subjects, from, to, sort };
    let viewer = caller.0.member.clone();
    let store = Arc::clone(state.store());
    let listed = {
        let viewer = viewer.clone();
        state.compute(move || view::list(store.as_ref(), &viewer, &query, now())).await??
    };
    let next = listed.next.clone();
    let (stories, titles, _, read) = translations(&state, &viewer, listed.stories, read, false).await?;
    Ok(Json(json!({
        "stories": stories.iter().map(|s| summary(s, &titles, read.as_deref())).collect::<Vec<_>>(),
        "next": next,
    }))
    .into_response())
}

/// A whole story as the answer of `/v1/stories/{id}` and `/v1/items/{id}/story`.
async fn story_answer(state: &AppState, viewer: &MemberId, story: StoryView, read: Option<String>) -> ApiResult<Value> {
    let names = state.blocking(|store| store.members()).await?;
    let names = crate::wire::member_names(&names);
    let (stories, titles, headlines, read) = translations(state, viewer, vec![story], read, true).await?;
    Ok(detail(&stories[0], &titles, &headlines, &names, read.as_deref()))
}

/// `GET /v1/stories/{id}`.
pub async fn get_story(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: RawQuery,
) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let read = read_language(&mut params)?;
    params.finish()?;
    let id = StoryId::parse(&id)?;
    let viewer = caller.0.member.clone();
    let found = {
        let viewer = viewer.clone();
        state.blocking(move |store| view::story(store, &viewer, &id, now())).await?
    };
    match found {
        Found::NotFound => Err(ApiError::not_found("story")),
        Found::Moved(into) => {
            let mut response = (
                StatusCode::MOVED_PERMANENTLY,
                Json(json!({ "movedTo": into.as_str(), "message": "this story was merged into another" })),
            )
                .into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/v1/stories/{into}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        Found::Story(story) => Ok(Json(story_answer(&state, &viewer, *story, read).await?).into_response()),
    }
}

/// `GET /v1/items/{id}/story`: the story of an item the caller may see; 404 saying so while the item
/// is not placed yet.
pub async fn item_story(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: RawQuery,
) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let read = read_language(&mut params)?;
    params.finish()?;
    let item = ItemId::parse(&id)?;
    let viewer = caller.0.member.clone();
    let found = {
        let viewer = viewer.clone();
        state
            .blocking(move |store| {
                let at = now();
                match store.item(&viewer, &item, at)? {
                    karavan_store::ItemRead::Visible(..) => Ok(Some(view::story_of_item(store, &viewer, &item, at)?)),
                    _ => Ok(None),
                }
            })
            .await?
    };
    match found {
        None => Err(ApiError::not_found("item")),
        Some(None) => Err(ApiError::new(
            crate::error::ErrorCode::NotFound,
            "story: this item is not in a story yet (items are placed within seconds of being stored)",
        )),
        Some(Some(story)) => {
            let body = story_answer(&state, &viewer, story, read).await?;
            Ok(Json(json!({ "story": body })).into_response())
        }
    }
}

/// `GET /v1/analytics/coverage?from=&to=&by=member|language|subject|day`: the caller's visible items of
/// the window (default the last 30 days) counted by one key.
pub async fn coverage(State(state): State<AppState>, caller: Caller, query: RawQuery) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let by = super::analytics::By::parse(params.one("by")?.as_deref().unwrap_or("member"))?;
    let now = now();
    let to = params.time("to")?.unwrap_or(now);
    let from = params.time("from")?.unwrap_or(Timestamp(to.micros() - 30 * 24 * 3_600_000_000));
    params.finish()?;
    if from > to {
        return Err(ApiError::invalid("from: the window starts after it ends (to)"));
    }
    let (store, viewer) = (Arc::clone(state.store()), caller.0.member.clone());
    let counted =
        state.compute(move || super::analytics::coverage(store.as_ref(), &viewer, from, to, by, now)).await??;
    Ok(Json(json!({
        "buckets": counted.buckets.iter().map(|(key, count)| json!({ "key": key, "count": count })).collect::<Vec<_>>(),
        "from": from.to_rfc3339(),
        "to": to.to_rfc3339(),
        "counted": counted.counted,
        "truncated": counted.truncated,
    }))
    .into_response())
}
