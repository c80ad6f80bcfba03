//! `GET /v1/wire/stream`: the caller's visible wire as server-sent events (new items, corrections,
//! kills), resumable with `Last-Event-ID` (or `?since=`): every event's id is a wire cursor.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use karavan_domain::{EventKind, LanguageTag, MemberId, PubStatus};
use karavan_store::{Cursor, ListEntry, ListQuery, Page};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{AppState, now, wire};

/// The event a wire entry stands for, from the viewer's side: its first appearance is `publish` (even
/// when an embargo or a delay held it back), later versions are corrections, a canceled one a kill.
pub fn wire_event(entry: &ListEntry) -> EventKind {
    match (entry.version.pub_status, entry.version.number) {
        (PubStatus::Canceled, _) => EventKind::Kill,
        (_, 1) => EventKind::Publish,
        _ => EventKind::Correction,
    }
}

fn event_of(entry: &ListEntry, names: &std::collections::HashMap<String, String>) -> Event {
    let kind = wire_event(entry);
    let mut meta = wire::meta(&entry.version);
    if let Some(name) = names.get(entry.version.owner.as_str()) {
        meta["memberName"] = Value::String(name.clone());
    }
    meta["cursor"] = Value::String(entry.cursor.to_token());
    meta["right"] = Value::String(entry.right.as_str().to_string());
    let data = json!({ "event": kind.as_str(), "meta": meta, "item": wire::ninjs(&entry.version) });
    Event::default().id(entry.cursor.to_token()).event(kind.as_str()).data(data.to_string())
}

struct Streaming {
    state: AppState,
    viewer: MemberId,
    query: ListQuery,
    cursor: Cursor,
    pending: VecDeque<Event>,
    events: crate::bus::Subscriber,
    /// Member names by id, for `meta.memberName`; reloaded when an unknown member appears.
    names: std::collections::HashMap<String, String>,
}

/// `GET /v1/wire/stream?lang=&member=&type=&urgency=&since=`: server-sent events of the caller's wire.
/// Without `Last-Event-ID` or `since`, the stream starts with what appears from now on.
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: RawQuery,
) -> ApiResult<Response> {
    stream_for(state, caller.0.member.clone(), &headers, query).await
}

/// The live wire of `viewer`'s member, for the API (a key) and the web newsroom (a session).
pub async fn stream_for(
    state: AppState,
    viewer: MemberId,
    headers: &HeaderMap,
    query: RawQuery,
) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let since = params.one("since")?;
    let owner = params.one("member")?.map(|text| MemberId::parse(&text)).transpose()?;
    let mut languages = params.all("lang");
    languages.extend(params.all("language"));
    for language in &languages {
        LanguageTag::parse(language)?;
    }
    let item_type = params.one("type")?;
    let urgency = params.one("urgency")?.map(|text| crate::items::parse_urgency(&text)).transpose()?;
    let subjects = crate::items::subject_filter(&mut params)?;
    params.finish()?;
    let resume = headers.get("last-event-id").map(|value| value.to_str().unwrap_or_default().trim().to_string());
    let start = match resume.filter(|r| !r.is_empty()).or(since) {
        Some(token) => Some(Cursor::parse_token(&token).ok_or_else(|| {
            ApiError::invalid(format!("Last-Event-ID / since: {token:?} is not a cursor from this API"))
        })?),
        None => None,
    };
    let query = ListQuery {
        page: Page::NewestFirst(None),
        limit: 200,
        owner,
        languages,
        item_type,
        urgency,
        from: None,
        to: None,
        include_kills: true,
        only_kills: false,
        subjects,
        items: None,
    };
    // Subscribe before the first read, so that nothing published in between goes unnoticed.
    let events = state.bus().subscribe();
    let cursor = match start {
        Some(cursor) => cursor,
        None => {
            let (viewer, mut probe) = (viewer.clone(), query.clone());
            probe.limit = 1;
            state.blocking(move |store| Ok(store.list(&viewer, &probe, now())?.horizon)).await?
        }
    };
    let names = member_names(&state).await?;
    let streaming = Streaming { state, viewer, query, cursor, pending: VecDeque::new(), events, names };
    let events = futures_util::stream::unfold(streaming, |mut s| async move {
        loop {
            if let Some(event) = s.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(event), s));
            }
            s.events.drain();
            let mut query = s.query.clone();
            query.page = Page::Since(s.cursor);
            let viewer = s.viewer.clone();
            match s.state.blocking(move |store| store.list(&viewer, &query, now())).await {
                Ok(page) => {
                    if page.entries.iter().any(|e| !s.names.contains_key(e.version.owner.as_str()))
                        && let Ok(names) = member_names(&s.state).await
                    {
                        s.names = names;
                    }
                    let names = &s.names;
                    let events: Vec<Event> = page.entries.iter().map(|e| event_of(e, names)).collect();
                    s.pending.extend(events);
                    if let Some(next) = page.next {
                        s.cursor = next;
                    }
                    if !s.pending.is_empty() {
                        continue;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error.message, "live wire read failed; ending the stream");
                    return None;
                }
            }
            // Wait for an item event (stored, corrected, killed, released when an embargo ends or a
            // delay passes), or look again in a second in any case.
            s.events.wait_for(Duration::from_secs(1), crate::bus::is_item).await;
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

async fn member_names(state: &AppState) -> ApiResult<std::collections::HashMap<String, String>> {
    state.blocking(|store| Ok(wire::member_names(&store.members()?))).await
}
