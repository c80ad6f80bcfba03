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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use karavan_domain::{FeedId, Role, Timestamp};
use karavan_formats::feed::{Defaults, Entry, Feed};

use crate::app;
use crate::app::feeds::FeedInput;
use crate::bus::{ConfigChange, Event};
use karavan_store::{FeedProvider, NewVersion, PollRecord, PublishOutcome, SeenEntry};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::items::body_bytes;
use crate::publish::{new_version, parse_json_body};
use crate::{AppState, now};

/// The longest interval between polls (a day).
pub(crate) const MAX_INTERVAL_SECONDS: u32 = 86_400;

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

/// Reads a provider body (`{name, url, language?, subjects?, interval_seconds?}`) into the use
/// case's input; the use case checks what it says.
fn read_feed_input(state: &AppState, body: &[u8]) -> ApiResult<FeedInput> {
    let Value::Object(object) = parse_json_body(body)? else {
        return Err(ApiError::invalid("body: expected a JSON object with name and url"));
    };
    crate::publish::refuse_nulls(&object)?;
    const FIELDS: [&str; 5] = ["name", "url", "language", "subjects", "interval_seconds"];
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!("{unknown}: unknown field (expected {})", FIELDS.join(", "))));
    }
    let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let language = match object.get("language") {
        None | Some(Value::Null) => None,
        Some(Value::String(tag)) => Some(tag.clone()),
        Some(other) => return Err(ApiError::invalid(format!("language: {other} is not a language tag"))),
    };
    let subjects = match object.get("subjects") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| {
                s.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::invalid(format!("subjects: {s} is not a non-empty string (QCode, URI or name)"))
                })
            })
            .collect::<ApiResult<Vec<_>>>()?,
        Some(other) => return Err(ApiError::invalid(format!("subjects: {other} is not an array of strings"))),
    };
    let interval_seconds = match object.get("interval_seconds") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().ok_or_else(|| {
            let min = state.distribution().config().feed_min_interval.as_secs().max(1);
            ApiError::invalid(format!(
                "interval_seconds: {value} is not a whole number from {min} to {MAX_INTERVAL_SECONDS}"
            ))
        })?),
    };
    Ok(FeedInput { name: text("name"), url: text("url"), language, subjects, interval_seconds })
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
    let input = read_feed_input(&state, &body_bytes(body)?)?;
    let provider = app::feeds::add(&state, &caller.0.member, input).await?;
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
    let input = read_feed_input(&state, &body_bytes(body)?)?;
    let provider = app::feeds::update(&state, &caller.0.member, &id, input).await?;
    Ok(Json(feed_json(&provider)).into_response())
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    caller.require(Role::Editor, "deleting feeds")?;
    let id = parse_id(&id)?;
    app::feeds::delete(&state, &caller.0.member, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_paused(state: &AppState, caller: &Caller, id: &str, paused: bool) -> ApiResult<Response> {
    caller.require(Role::Editor, "pausing and resuming feeds")?;
    let id = parse_id(id)?;
    let provider = app::feeds::set_paused(state, &caller.0.member, &id, paused).await?;
    Ok(Json(feed_json(&provider)).into_response())
}

pub async fn pause(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    set_paused(&state, &caller, &id, true).await
}

/// Resumes a paused provider, or asks an active one to poll now (both are due at once).
pub async fn resume(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    set_paused(&state, &caller, &id, false).await
}

/// How long a claimed feed poll is this instance's (a poll that takes longer is cut short by the
/// outbound client's timeouts first); a poller that died leaves its feeds to another after this.
const POLL_LEASE: Duration = Duration::from_secs(120);

/// The feed poller engine: it claims due providers by lease in the store (so that instances sharing
/// the store never poll one feed twice), polls at most `feed_concurrency` at once, and wakes when one
/// falls due, one is added or resumed (a feeds event), or a poll ends.
pub async fn run_poller(state: AppState, mut context: crate::engine::EngineContext) {
    let limit = state.distribution().config().feed_concurrency.max(1);
    let holder = state.holder("feed-poller");
    let mut events = state.bus().subscribe();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (ended, mut finished) = tokio::sync::mpsc::unbounded_channel::<()>();
    let releasing = holder.clone();
    let _ = state.blocking(move |store| store.release_feeds(&releasing)).await;
    while !context.stopping() {
        events.drain();
        let free = limit.saturating_sub(in_flight.load(Ordering::SeqCst));
        let mut wait = Duration::from_secs(60);
        if free > 0 {
            match claim_due(&state, &holder, free).await {
                Ok(providers) => {
                    for provider in providers {
                        in_flight.fetch_add(1, Ordering::SeqCst);
                        let (state, holder, in_flight, ended) =
                            (state.clone(), holder.clone(), Arc::clone(&in_flight), ended.clone());
                        tokio::spawn(async move {
                            poll(&state, &holder, provider).await;
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            let _ = ended.send(());
                        });
                    }
                }
                Err(error) => {
                    tracing::error!(error = %error.message, "could not claim the due feed providers");
                    wait = Duration::from_secs(5);
                }
            }
        }
        if wait > Duration::from_secs(5) {
            let next = state.blocking(|store| store.next_feed_due()).await.ok().flatten();
            if let Some(at) = next {
                wait = Duration::from_micros(u64::try_from(at.micros() - now().micros()).unwrap_or(0));
            }
            wait = wait.clamp(Duration::from_millis(200), Duration::from_secs(60));
        }
        tokio::select! {
            _ = events.wait_for(wait, |event| *event == Event::Config(ConfigChange::Feeds)) => {}
            _ = finished.recv() => {}
            _ = context.stopped() => {}
        }
    }
    // Stopping: let polls in hand end for a moment, then hand back what is still held.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while in_flight.load(Ordering::SeqCst) > 0 {
        if !matches!(tokio::time::timeout_at(deadline, finished.recv()).await, Ok(Some(()))) {
            break;
        }
    }
    let _ = state.blocking(move |store| store.release_feeds(&holder)).await;
}

/// Claims up to `limit` due feed providers for `holder` (by lease in the store).
async fn claim_due(state: &AppState, holder: &str, limit: usize) -> ApiResult<Vec<FeedProvider>> {
    let claimant = holder.to_string();
    state
        .blocking(move |store| {
            let now = now();
            let until = Timestamp(now.micros() + POLL_LEASE.as_micros() as i64);
            store.claim_feeds(&claimant, now, until, u32::try_from(limit).unwrap_or(u32::MAX))
        })
        .await
}

/// The feed poller's deterministic step: claims the providers due now (at most `limit`) and polls
/// each to its end (fetch, ingest, record); how many were polled. The engine runs the same pieces,
/// several polls at once; tests drive this instead.
pub async fn poll_step(state: &AppState, holder: &str, limit: usize) -> ApiResult<usize> {
    let providers = claim_due(state, holder, limit).await?;
    let count = providers.len();
    for provider in providers {
        poll(state, holder, provider).await;
    }
    Ok(count)
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

/// Polls one provider (claimed by `holder`) and records what came of it.
async fn poll(state: &AppState, holder: &str, provider: FeedProvider) {
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
    let (id, holder) = (provider.id.clone(), holder.to_string());
    if let Err(error) = state.blocking(move |store| store.record_feed_poll(&holder, &id, started, record)).await {
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
    let outcomes = crate::app::publishing::publish_all(state, versions).await.map_err(|e| e.message)?;
    let mut published = 0;
    for (slot, outcome) in publishing.into_iter().zip(&outcomes) {
        remember[slot].item_id = Some(outcome.stored().item_id.clone());
        if !matches!(outcome, PublishOutcome::Unchanged(_)) {
            published += 1;
        }
    }
    Ok((remember, published))
}
