//! Subscription routes: create, read, change and delete subscriptions; their delivery log; their
//! changes feed (cursor, long-poll); and their Atom feed, opened by a feed token.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use karavan_domain::{EventKind, MemberId, Role, SubscriptionId, Timestamp};
use karavan_store::{Change, Cursor, Store, Subscription, VersionRead};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::app;
use crate::app::subscriptions::{SubscriptionInput, WebhookInput};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::items::body_bytes;
use crate::outbound::hex;
use crate::params::Params;
use crate::publish::parse_json_body;
use crate::{AppState, now, wire};

/// The most seconds a changes long-poll may wait.
pub const MAX_WAIT_SECONDS: u64 = 60;

pub(crate) fn random_token(prefix: &str) -> ApiResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("random token", e))?;
    Ok(format!("{prefix}{}", hex(&bytes)))
}

pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) fn feed_url(state: &AppState, token: &str) -> String {
    let base = state.config().public_url.as_deref().unwrap_or("").trim_end_matches('/');
    format!("{base}/feeds/{token}")
}

fn subscription_json(state: &AppState, subscription: &Subscription) -> Value {
    let spec = &subscription.spec;
    let query = crate::search::query_object(&spec.query);
    let id = subscription.id.as_str();
    let base = state.config().public_url.as_deref().unwrap_or("").trim_end_matches('/');
    json!({
        "id": id,
        "name": spec.name,
        "query": query,
        "events": spec.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "format": spec.format,
        "webhook": spec.webhook.as_ref().map(|w| json!({ "url": w.url, "secretSet": true })),
        "changes_url": format!("{base}/v1/subscriptions/{id}/changes"),
        "deliveries_url": format!("{base}/v1/subscriptions/{id}/deliveries"),
        "createdAt": subscription.created_at.to_rfc3339(),
        "updatedAt": subscription.updated_at.to_rfc3339(),
    })
}

/// Reads a subscription body (JSON) into the use case's input; the use case checks what it says.
pub(crate) fn read_input(body: &[u8]) -> ApiResult<SubscriptionInput> {
    let Value::Object(object) = parse_json_body(body)? else {
        return Err(ApiError::invalid("body: expected a JSON object with name, query, events, format and webhook"));
    };
    const FIELDS: [&str; 5] = ["name", "query", "events", "format", "webhook"];
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!("{unknown}: unknown field (expected {})", FIELDS.join(", "))));
    }
    crate::publish::refuse_nulls(&object)?;
    let name = object.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let query = match object.get("query") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(query)) => query.clone(),
        Some(_) => return Err(ApiError::invalid("query: must be an object of search parameters (q, lang, …)")),
    };
    let query = crate::search::query_pairs(&query)?;
    let events = match object.get("events") {
        None | Some(Value::Null) => None,
        Some(Value::Array(values)) => {
            let mut events = Vec::with_capacity(values.len());
            for value in values {
                let Some(text) = value.as_str() else {
                    return Err(ApiError::invalid("events: must be an array of event names"));
                };
                events.push(text.to_string());
            }
            Some(events)
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "events: must be a non-empty array of publish, correction, kill, embargo_release",
            ));
        }
    };
    let format = match object.get("format") {
        None | Some(Value::Null) => None,
        Some(Value::String(format)) => Some(format.clone()),
        Some(other) => return Err(ApiError::invalid(format!("format: {other} is not supported (ninjs, newsml)"))),
    };
    let webhook = match object.get("webhook") {
        None | Some(Value::Null) => None,
        Some(Value::Object(webhook)) => {
            if let Some(unknown) = webhook.keys().find(|k| !["url", "secret"].contains(&k.as_str())) {
                return Err(ApiError::invalid(format!("webhook.{unknown}: unknown field (expected url, secret)")));
            }
            let Some(url) = webhook.get("url").and_then(Value::as_str) else {
                return Err(ApiError::invalid("webhook.url: required, the URL to POST deliveries to"));
            };
            let secret = match webhook.get("secret") {
                Some(Value::String(secret)) => Some(secret.clone()),
                Some(_) => return Err(ApiError::invalid("webhook.secret: must be a string")),
                None => None,
            };
            Some(WebhookInput { url: url.to_string(), secret })
        }
        Some(_) => return Err(ApiError::invalid("webhook: must be an object with url and secret")),
    };
    Ok(SubscriptionInput { name, query, events, format, webhook })
}

/// `POST /v1/subscriptions`: a saved query plus delivery options. Answers with the subscription, its
/// feed URL (the only time the feed token is shown) and, if the server chose it, the webhook secret.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.require(Role::Editor, "creating subscriptions")?;
    let input = read_input(&body_bytes(body)?)?;
    let saved = app::subscriptions::create(&state, &caller.0.member, input).await?;
    let mut answer = subscription_json(&state, &saved.subscription);
    answer["feed_url"] = json!(saved.feed_url);
    if let Some(secret) = saved.secret {
        answer["webhook"]["secret"] = json!(secret);
    }
    let location = format!("/v1/subscriptions/{}", saved.subscription.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(answer)).into_response())
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let member = caller.0.member.clone();
    let subscriptions = state.blocking(move |store| store.subscriptions(&member)).await?;
    let list: Vec<Value> = subscriptions.iter().map(|s| subscription_json(&state, s)).collect();
    Ok(Json(json!({ "subscriptions": list })).into_response())
}

async fn find(state: &AppState, member: &MemberId, id: &str) -> ApiResult<Subscription> {
    app::subscriptions::find(state, member, &SubscriptionId::parse(id)?).await
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let subscription = find(&state, &caller.0.member, &id).await?;
    Ok(Json(subscription_json(&state, &subscription)).into_response())
}

/// `PUT /v1/subscriptions/{id}`: replaces what the subscription asks for (a webhook without a secret
/// keeps its secret). Deliveries already made stay.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.require(Role::Editor, "changing subscriptions")?;
    let id = SubscriptionId::parse(&id)?;
    let input = read_input(&body_bytes(body)?)?;
    let saved = app::subscriptions::update(&state, &caller.0.member, &id, input).await?;
    let mut answer = subscription_json(&state, &saved.subscription);
    if let Some(secret) = saved.secret {
        answer["webhook"]["secret"] = json!(secret);
    }
    Ok(Json(answer).into_response())
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    caller.require(Role::Editor, "deleting subscriptions")?;
    app::subscriptions::delete(&state, &caller.0.member, &SubscriptionId::parse(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/subscriptions/{id}/feed-token`: a new feed token (the old feed URL stops working).
pub async fn rotate_feed_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(Role::Editor, "changing subscriptions")?;
    let url = app::subscriptions::rotate_feed_token(&state, &caller.0.member, &SubscriptionId::parse(&id)?).await?;
    Ok(Json(json!({ "feed_url": url })).into_response())
}

/// `POST /v1/subscriptions/{id}/test`: a signed `test` event to the webhook now (not queued, not
/// logged): `{"delivered", "status", "latencyMs", "error"}`; 409 without a webhook.
pub async fn test_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(Role::Editor, "testing subscriptions")?;
    let outcome = app::subscriptions::test_delivery(&state, &caller.0.member, &SubscriptionId::parse(&id)?).await?;
    Ok(Json(json!({
        "delivered": outcome.delivered(),
        "status": outcome.status,
        "latencyMs": outcome.latency_micros as f64 / 1000.0,
        "error": outcome.error,
    }))
    .into_response())
}

/// `GET /v1/subscriptions/{id}/deliveries?limit=&before=`: the delivery log, newest first, with every
/// attempt (time, HTTP status, latency, error).
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: RawQuery,
) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let limit = params.limit(50, 500)?;
    let before = match params.one("before")? {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::invalid(format!("before: {text:?} is not a position from this log")))?,
        ),
    };
    params.finish()?;
    let subscription = find(&state, &caller.0.member, &id).await?;
    let records = state.blocking(move |store| store.deliveries(&subscription.id, now(), before, limit)).await?;
    let next = (records.len() as u32 >= limit).then(|| records.last().map(|r| r.n.to_string())).flatten();
    let entries: Vec<Value> = records
        .iter()
        .map(|record| {
            json!({
                "id": record.id.as_str(),
                "position": record.n,
                "event": record.kind.as_str(),
                "itemId": record.item_id.as_str(),
                "state": record.state.as_str(),
                "dueAt": record.listed_at.to_rfc3339(),
                "nextAttemptAt": record.next_attempt_at.map(Timestamp::to_rfc3339),
                "deliveredAt": record.delivered_at.map(Timestamp::to_rfc3339),
                "attempts": record.attempts.iter().map(|a| json!({
                    "attempt": a.attempt,
                    "at": a.at.to_rfc3339(),
                    "status": a.status,
                    "latencyMs": a.latency_micros as f64 / 1000.0,
                    "error": a.error,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "deliveries": entries, "next": next })).into_response())
}

/// One change as JSON, with the item as the subscriber may see it now: a kill notice for kills, and
/// no content for an item withdrawn since (killed, or no longer shared).
fn change_json(store: &dyn Store, member: &MemberId, change: &Change) -> Result<Value, karavan_store::StoreError> {
    let read = store.version_for(member, &change.item_id, change.seq, now())?;
    let mut entry = json!({
        "cursor": change.cursor.to_token(),
        "event": change.kind.as_str(),
        "delivery": change.delivery.as_str(),
        "itemId": change.item_id.as_str(),
        "at": change.cursor.at.to_rfc3339(),
    });
    match (change.kind, read) {
        (EventKind::Kill, VersionRead::Killed(notice)) => {
            entry["meta"] = wire::meta(&notice);
            entry["item"] = wire::ninjs(&notice);
        }
        (EventKind::Kill, _) => {
            entry["item"] = Value::Null;
        }
        (_, VersionRead::Visible(version, right)) => {
            let mut meta = wire::meta(&version);
            meta["right"] = json!(right.as_str());
            entry["meta"] = meta;
            entry["item"] = wire::ninjs(&version);
        }
        (_, VersionRead::Killed(_)) => {
            entry["item"] = Value::Null;
            entry["withdrawn"] = json!("killed");
        }
        (_, VersionRead::NotFound) => {
            entry["item"] = Value::Null;
            entry["withdrawn"] = json!("no longer visible to your member");
        }
    }
    Ok(entry)
}

/// `GET /v1/subscriptions/{id}/changes?since=CURSOR&wait=SECONDS&limit=`: what the subscription
/// received after the cursor (from its start without one), oldest first. With `wait`, an empty answer
/// waits up to that many seconds for news. Poll again with `next`.
pub async fn changes(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: RawQuery,
) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let since = match params.one("since")? {
        None => Cursor { at: Timestamp(0), seq: 0 },
        Some(token) => Cursor::parse_token(&token)
            .ok_or_else(|| ApiError::invalid(format!("since: {token:?} is not a cursor from this API")))?,
    };
    let wait = match params.one("wait")? {
        None => 0,
        Some(text) => match text.parse::<u64>() {
            Ok(seconds) if seconds <= MAX_WAIT_SECONDS => seconds,
            _ => {
                return Err(ApiError::invalid(format!(
                    "wait: {text:?} is not a number of seconds from 0 to {MAX_WAIT_SECONDS}"
                )));
            }
        },
    };
    let limit = params.limit(100, 1000)?;
    params.finish()?;
    let subscription = find(&state, &caller.0.member, &id).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    // Subscribed before the first read, so that a fan-out during a read wakes the wait.
    let mut events = state.bus().subscribe();
    loop {
        events.drain();
        let (id, member) = (subscription.id.clone(), subscription.member.clone());
        let page = state
            .blocking(move |store| {
                let page = store.changes(&id, Some(since), limit, now())?;
                let entries = page
                    .changes
                    .iter()
                    .map(|change| change_json(store, &member, change))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((entries, page.next))
            })
            .await?;
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !page.0.is_empty() || remaining.is_zero() {
            return Ok(Json(json!({ "changes": page.0, "next": page.1.to_token() })).into_response());
        }
        // Deliveries due later (embargo, agreement delays) appear without a fan-out: their release
        // wakes the wait too, and it looks every second in any case.
        let released = |event: &crate::bus::Event| {
            matches!(
                event,
                crate::bus::Event::Deliveries
                    | crate::bus::Event::Item { change: crate::bus::ItemChange::Released, .. }
            )
        };
        events.wait_for(remaining.min(Duration::from_secs(1)), released).await;
    }
}

/// `GET /feeds/{token}`: the subscription's Atom 1.0 feed, for feed readers (the token in the URL is
/// the credential). Each item appears once, at its latest change.
pub async fn atom(State(state): State<AppState>, Path(token): Path<String>) -> ApiResult<Response> {
    if !token.starts_with("kft_") || token.len() != 68 || !token[4..].bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found("feed"));
    }
    let hash = token_hash(&token);
    let public_url = state.config().public_url.clone().unwrap_or_default();
    let xml = state
        .blocking(move |store| {
            let Some(subscription) = store.subscription_by_feed_token(hash)? else {
                return Ok(None);
            };
            let changes = store.recent_changes(&subscription.id, 200, now())?;
            let names = wire::member_names(&store.members()?);
            let mut seen = std::collections::HashSet::new();
            let mut entries = Vec::new();
            for change in &changes {
                if entries.len() >= 50 || !seen.insert(change.item_id.clone()) {
                    continue;
                }
                let read = store.version_for(&subscription.member, &change.item_id, change.seq, now())?;
                let name = |owner: &MemberId| names.get(owner.as_str()).cloned().unwrap_or_default();
                match read {
                    VersionRead::Visible(version, _) => {
                        entries.push(crate::atom::Entry::of(&version, change, &name(&version.owner), false));
                    }
                    VersionRead::Killed(notice) => {
                        entries.push(crate::atom::Entry::of(&notice, change, &name(&notice.owner), true));
                    }
                    VersionRead::NotFound => {}
                }
            }
            Ok(Some(crate::atom::feed(&subscription, &entries, &public_url, &token)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("feed"))?;
    Ok(([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")], xml).into_response())
}
