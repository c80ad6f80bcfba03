//! Feed ingest providers: a member registers an RSS or Atom URL that Karavan polls on a schedule and
//! publishes as the member's items.
//!
//! - Routes: `GET|POST /v1/ingest/feeds`, `GET|PUT|DELETE /v1/ingest/feeds/{id}`,
//!   `POST /v1/ingest/feeds/{id}/pause` and `/resume` (which also means "poll now"). Editors manage
//!   them; readers see them; other members see nothing.
//! - Polling: conditional GET (`If-None-Match` / `If-Modified-Since` from the last answer) through the
//!   one outbound client, so the webhook URL rules apply; `Retry-After` on 429/503 is honoured;
//!   failures back off (interval × 2^failures, at most a day) and after `feed_pause_after` in a row the
//!   provider is paused until its member resumes it.
//! - Entries: identified by guid / id / link; an entry seen before with the same content hash is
//!   skipped, with another hash it is published again as a correction of its item; an unseen entry
//!   whose content hash was seen under another id is a duplicate and skipped. All items of one poll are
//!   stored in one transaction.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use karavan_domain::{FeedId, Role, Timestamp};
use karavan_formats::feed::{Defaults, Entry, Feed};
use karavan_store::{FeedProvider, FeedSpec, NewVersion, PollRecord, PublishOutcome, SeenEntry};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::items::body_bytes;
use crate::outbound::check_url;
use crate::publish::{new_version, parse_json_body};
use crate::{AppState, now};

/// The longest interval between polls (a day).
const MAX_INTERVAL_SECONDS: u32 = 86_400;

/// A provider's status: `paused` (by its member, or after too many failures), `failing`, or `active`.
pub fn status(provider: &FeedProvider) -> &'static str {
    if provider.paused {
        "paused"
    } else if provider.consecutive_failures > 0 {
        "failing"
    } else {
        "active"
    }
}

fn feed_json(provider: &FeedProvider) -> Value {
    let time = |t: Option<Timestamp>| t.map(Timestamp::to_rfc3339);
    let status = status(provider);
    json!({
        "id": provider.id.as_str(),
        "member": provider.member.as_str(),
        "name": provider.spec.name,
        "url": provider.spec.url,
        "language": provider.spec.language,
        "subjects": provider.spec.subjects,
        "interval_seconds": provider.spec.interval_seconds,
        "status": status,
        "health": {
            "last_polled_at": time(provider.last_polled_at),
            "last_success_at": time(provider.last_success_at),
            "last_error": provider.last_error,
            "last_error_at": time(provider.last_error_at),
            "consecutive_failures": provider.consecutive_failures,
            "next_poll_at": (!provider.paused).then(|| provider.next_poll_at.to_rfc3339()),
            "items_published": provider.items_published,
        },
        "created_at": provider.created_at.to_rfc3339(),
    })
}

/// Reads a provider body: `{name, url, language?, subjects?, interval_seconds?}`.
fn read_feed_spec(state: &AppState, body: &[u8]) -> ApiResult<FeedSpec> {
    let value = parse_json_body(body)?;
    if let Value::Object(object) = &value {
        crate::publish::refuse_nulls(object)?;
    }
    feed_spec(state, &value)
}

/// Checks a provider's spec (from the API's JSON or the web form's fields).
pub(crate) fn feed_spec(state: &AppState, value: &Value) -> ApiResult<FeedSpec> {
    let Value::Object(object) = value else {
        return Err(ApiError::invalid("body: expected a JSON object with name and url"));
    };
    const FIELDS: [&str; 5] = ["name", "url", "language", "subjects", "interval_seconds"];
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!("{unknown}: unknown field (expected {})", FIELDS.join(", "))));
    }
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
    let name = text("name").ok_or_else(|| ApiError::invalid("name: required, a non-empty string"))?;
    if name.chars().count() > 200 {
        return Err(ApiError::invalid("name: at most 200 characters"));
    }
    let url = text("url").ok_or_else(|| ApiError::invalid("url: required, the feed's http(s) URL"))?;
    let allow_private = state.distribution().config().outbound.allow_private;
    let url = check_url(url, allow_private).map_err(|e| ApiError::invalid(format!("url: {e}")))?.to_string();
    let language = match object.get("language") {
        None | Some(Value::Null) => None,
        Some(Value::String(tag)) => Some(
            karavan_domain::LanguageTag::parse(tag)
                .map_err(|e| ApiError::invalid(format!("language: {}", e.message)))?
                .as_str()
                .to_string(),
        ),
        Some(other) => return Err(ApiError::invalid(format!("language: {other} is not a language tag"))),
    };
    let subjects = match object.get("subjects") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| match s.as_str().map(str::trim) {
                Some(s) if !s.is_empty() && s.len() <= 200 => Ok(s.to_string()),
                _ => Err(ApiError::invalid(format!("subjects: {s} is not a non-empty string (QCode, URI or name)"))),
            })
            .collect::<ApiResult<Vec<_>>>()?,
        Some(other) => return Err(ApiError::invalid(format!("subjects: {other} is not an array of strings"))),
    };
    let min = u32::try_from(state.distribution().config().feed_min_interval.as_secs()).unwrap_or(60).max(1);
    let interval_seconds = match object.get("interval_seconds") {
        None | Some(Value::Null) => 900.max(min),
        Some(value) => value
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| (min..=MAX_INTERVAL_SECONDS).contains(v))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "interval_seconds: {value} is not a whole number from {min} to {MAX_INTERVAL_SECONDS}"
                ))
            })?,
    };
    Ok(FeedSpec { name: name.to_string(), url, language, subjects, interval_seconds })
}

fn parse_id(id: &str) -> ApiResult<FeedId> {
    FeedId::parse(id).map_err(ApiError::from)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.require(Role::Editor, "registering feeds")?;
    let spec = read_feed_spec(&state, &body_bytes(body)?)?;
    let member = caller.0.member.clone();
    let provider = state.blocking(move |store| store.add_feed(&member, spec)).await?;
    state.distribution().feeds.notify_one();
    let location = format!("/v1/ingest/feeds/{}", provider.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(feed_json(&provider))).into_response())
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let member = caller.0.member.clone();
    let providers = state.blocking(move |store| store.feeds(&member)).await?;
    Ok(Json(json!({ "feeds": providers.iter().map(feed_json).collect::<Vec<_>>() })).into_response())
}

pub async fn get_one(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let member = caller.0.member.clone();
    let provider = state.blocking(move |store| store.feed(&member, &id)).await?;
    Ok(Json(feed_json(&provider.ok_or_else(|| ApiError::not_found("feed provider"))?)).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.require(Role::Editor, "changing feeds")?;
    let id = parse_id(&id)?;
    let spec = read_feed_spec(&state, &body_bytes(body)?)?;
    let member = caller.0.member.clone();
    let provider = state.blocking(move |store| store.update_feed(&member, &id, spec)).await?;
    Ok(Json(feed_json(&provider)).into_response())
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    caller.require(Role::Editor, "deleting feeds")?;
    let id = parse_id(&id)?;
    let member = caller.0.member.clone();
    if state.blocking(move |store| store.delete_feed(&member, &id)).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("feed provider"))
    }
}

async fn set_paused(state: &AppState, caller: &Caller, id: &str, paused: bool) -> ApiResult<Response> {
    caller.require(Role::Editor, "pausing and resuming feeds")?;
    let id = parse_id(id)?;
    let member = caller.0.member.clone();
    let provider = state.blocking(move |store| store.set_feed_paused(&member, &id, paused, now())).await?;
    state.distribution().feeds.notify_one();
    Ok(Json(feed_json(&provider)).into_response())
}

pub async fn pause(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    set_paused(&state, &caller, &id, true).await
}

/// Resumes a paused provider, or asks an active one to poll now (both are due at once).
pub async fn resume(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    set_paused(&state, &caller, &id, false).await
}

/// The feed poller engine: it wakes when a provider falls due (or one is added or resumed) and polls
/// at most `feed_concurrency` feeds at once.
pub async fn run_poller(state: AppState) {
    {
        let limit = state.distribution().config().feed_concurrency.max(1);
        let slots = Arc::new(tokio::sync::Semaphore::new(limit));
        let in_flight: Arc<std::sync::Mutex<Vec<FeedId>>> = Arc::default();
        loop {
            let due = state.blocking(move |store| store.due_feeds(now(), 64)).await;
            let mut waited = false;
            match due {
                Ok(providers) => {
                    for provider in providers {
                        if in_flight.lock().map(|f| f.contains(&provider.id)).unwrap_or(true) {
                            continue;
                        }
                        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else { continue };
                        if let Ok(mut flying) = in_flight.lock() {
                            flying.push(provider.id.clone());
                        }
                        let (state, in_flight) = (state.clone(), Arc::clone(&in_flight));
                        tokio::spawn(async move {
                            let id = provider.id.clone();
                            poll(&state, provider).await;
                            if let Ok(mut flying) = in_flight.lock() {
                                flying.retain(|f| f != &id);
                            }
                            drop(permit);
                            state.distribution().feeds.notify_one();
                        });
                    }
                }
                Err(error) => {
                    tracing::error!(error = %error.message, "could not read the due feed providers");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    waited = true;
                }
            }
            if !waited {
                let next = state.blocking(|store| store.next_feed_due()).await.ok().flatten();
                let wait = match next {
                    Some(at) => Duration::from_micros(u64::try_from(at.micros() - now().micros()).unwrap_or(0)),
                    None => Duration::from_secs(60),
                };
                let wait = wait.clamp(Duration::from_millis(200), Duration::from_secs(60));
                let _ = tokio::time::timeout(wait, state.distribution().feeds.notified()).await;
            }
        }
    }
}

fn later(at: Timestamp, seconds: u64) -> Timestamp {
    Timestamp(at.micros().saturating_add(i64::try_from(seconds.saturating_mul(1_000_000)).unwrap_or(i64::MAX)))
}

/// Seconds from a `Retry-After` value: delay-seconds or an HTTP date.
fn retry_after_seconds(value: &str, at: Timestamp) -> Option<u64> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(seconds);
    }
    let when = karavan_formats::feed::rfc822(value).ok()?;
    let when = Timestamp::parse_rfc3339("retry-after", &when).ok()?;
    Some(u64::try_from((when.micros() - at.micros()).max(0) / 1_000_000).unwrap_or(0))
}

/// Polls one provider and records what came of it.
async fn poll(state: &AppState, provider: FeedProvider) {
    let started = now();
    let config = state.distribution().config();
    let interval = u64::from(provider.spec.interval_seconds.max(1));
    let mut headers = Vec::new();
    if let Some(etag) = &provider.etag {
        headers.push(("if-none-match", etag.clone()));
    }
    if let Some(modified) = &provider.last_modified {
        headers.push(("if-modified-since", modified.clone()));
    }
    headers.push(("accept", "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8".into()));
    let answer = state.distribution().client().get(&provider.spec.url, headers, config.feed_max_bytes).await;
    let outcome = match answer {
        Err(error) => Err((error, None)),
        Ok(fetched) if fetched.status == 304 => Ok((provider.etag.clone(), provider.last_modified.clone(), None)),
        Ok(fetched) if (200..300).contains(&fetched.status) => match karavan_formats::feed::parse(&fetched.body) {
            Ok(feed) => Ok((fetched.etag, fetched.last_modified, Some(feed))),
            Err(error) => Err((format!("the feed cannot be read: {error}"), None)),
        },
        Ok(fetched) => {
            let retry = fetched.retry_after.as_deref().and_then(|v| retry_after_seconds(v, started));
            let mut message = format!("HTTP {}", fetched.status);
            if let Some(seconds) = retry {
                message.push_str(&format!(" (Retry-After: {seconds} s)"));
            }
            Err((message, retry))
        }
    };
    let record = match outcome {
        Ok((etag, last_modified, feed)) => {
            let next_poll_at = later(started, interval);
            match feed {
                None => PollRecord::Fetched { etag, last_modified, entries: Vec::new(), published: 0, next_poll_at },
                Some(feed) => match ingest(state, &provider, &feed).await {
                    Ok((entries, published)) => {
                        PollRecord::Fetched { etag, last_modified, entries, published, next_poll_at }
                    }
                    Err(error) => failed(&provider, started, interval, config.feed_pause_after, error, None),
                },
            }
        }
        Err((error, retry)) => failed(&provider, started, interval, config.feed_pause_after, error, retry),
    };
    if let PollRecord::Failed { error, .. } = &record {
        tracing::warn!(feed = %provider.id, url = %provider.spec.url, %error, "feed poll failed");
    }
    let id = provider.id.clone();
    if let Err(error) = state.blocking(move |store| store.record_feed_poll(&id, started, record)).await {
        tracing::error!(feed = %provider.id, error = %error.message, "could not record a feed poll");
    }
}

fn failed(
    provider: &FeedProvider,
    at: Timestamp,
    interval: u64,
    pause_after: u32,
    error: String,
    retry: Option<u64>,
) -> PollRecord {
    let backoff =
        interval.saturating_mul(1u64 << provider.consecutive_failures.min(16)).min(u64::from(MAX_INTERVAL_SECONDS));
    let wait = retry.map_or(backoff, |r| r.max(backoff.min(interval))).min(u64::from(MAX_INTERVAL_SECONDS));
    PollRecord::Failed { error, next_poll_at: later(at, wait), pause_after }
}

/// Publishes the new and changed entries of a feed; returns the entries to remember and how many
/// items were published.
async fn ingest(state: &AppState, provider: &FeedProvider, feed: &Feed) -> Result<(Vec<SeenEntry>, u32), String> {
    let keyed: Vec<(String, String, &Entry)> = feed
        .entries
        .iter()
        .map(|entry| {
            let hash = entry.content_hash();
            let key = entry.key().map(str::to_string).unwrap_or_else(|| format!("hash:{hash}"));
            (key, hash, entry)
        })
        .collect();
    let keys: Vec<String> = keyed.iter().map(|(k, _, _)| k.clone()).collect();
    let hashes: Vec<String> = keyed.iter().map(|(_, h, _)| h.clone()).collect();
    let id = provider.id.clone();
    let seen = state.blocking(move |store| store.seen_entries(&id, &keys, &hashes)).await.map_err(|e| e.message)?;
    let defaults = Defaults { language: provider.spec.language.clone(), subjects: provider.spec.subjects.clone() };
    let mut remember: Vec<SeenEntry> = Vec::new();
    let mut versions: Vec<NewVersion> = Vec::new();
    let mut publishing: Vec<usize> = Vec::new();
    let received = now().to_rfc3339();
    // Feeds list the newest first: publish the oldest first.
    for (key, hash, entry) in keyed.iter().rev() {
        if remember.iter().any(|r| &r.key == key) {
            continue;
        }
        match seen.iter().find(|s| &s.key == key) {
            Some(before) if &before.hash == hash => continue,
            Some(_) => {}
            None if seen.iter().any(|s| &s.hash == hash) || remember.iter().any(|r| &r.hash == hash) => {
                // The same story under another id: remember the id, publish nothing.
                remember.push(SeenEntry { key: key.clone(), hash: hash.clone(), item_id: None });
                continue;
            }
            None => {}
        }
        let mut item = entry.to_ninjs(&defaults, feed).map_err(|e| e.message)?.document;
        item.entry("versionCreated").or_insert_with(|| Value::String(received.clone()));
        let value = Value::Object(item);
        let mut version =
            new_version(&provider.member, &value, value.to_string(), Some(karavan_ninjs::NinjsVersion::V3_1))
                .map_err(|e| format!("entry {key:?}: {}", e.message))?;
        version.source_format = format!("{} feed", feed.format);
        publishing.push(remember.len());
        remember.push(SeenEntry { key: key.clone(), hash: hash.clone(), item_id: None });
        versions.push(version);
    }
    if versions.is_empty() {
        return Ok((remember, 0));
    }
    let outcomes = crate::items::publish_all(state, versions).await.map_err(|e| e.message)?;
    let mut published = 0;
    for (slot, outcome) in publishing.into_iter().zip(&outcomes) {
        remember[slot].item_id = Some(outcome.stored().item_id.clone());
        if !matches!(outcome, PublishOutcome::Unchanged(_)) {
            published += 1;
        }
    }
    Ok((remember, published))
}
