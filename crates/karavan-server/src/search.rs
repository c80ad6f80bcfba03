//! Search on the HTTP API: keeping the index in step with the store (on every publish, on start-up
//! catch-up, and by a committer that makes changes searchable within a second), and `GET /v1/search`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use karavan_domain::{Agreement, MemberId, Timestamp};
use karavan_search::{Audience, Grant, IndexDoc, SearchError, SearchIndex, SearchRequest, Sort};
use karavan_store::{ItemRead, Store, StoreError, StoredVersion};
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::publish::subject_keys;
use crate::{AppState, now, wire};

/// Plain text of an HTML fragment: tags dropped, the common entities decoded, blocks separated.
pub fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn texts(document: &Map<String, Value>, key: &str) -> Vec<String> {
    document
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let value = entry.get("value")?.as_str()?;
            let html = entry.get("contentType").and_then(Value::as_str).is_some_and(|t| t.contains("html"));
            Some(if html { html_to_text(value) } else { value.to_string() })
        })
        .collect()
}

/// The index document of a stored version.
pub fn index_doc(version: &StoredVersion, country: Option<String>) -> IndexDoc {
    let document = &version.document;
    let text = |key: &str| document.get(key).and_then(Value::as_str).map(str::to_string);
    let dated_at = text("versionCreated")
        .and_then(|t| Timestamp::parse_rfc3339("versionCreated", &t).ok())
        .unwrap_or(version.committed_at);
    let genres = document
        .get("genres")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|g| {
            ["uri", "literal"].into_iter().filter_map(|k| g.get(k).and_then(Value::as_str).map(str::to_string))
        })
        .collect();
    let mut body = texts(document, "descriptions");
    body.extend(texts(document, "bodies"));
    IndexDoc {
        item_id: version.item_id.to_string(),
        seq: version.seq,
        owner: version.owner.to_string(),
        country,
        language: text("language"),
        item_type: text("type"),
        urgency: document.get("urgency").and_then(Value::as_u64).map(|u| u.min(9) as u8),
        dated_at: dated_at.micros(),
        available_at: version.available_at.micros(),
        pub_status: version.pub_status.as_str().to_string(),
        subjects: subject_keys(document),
        genres,
        headline: texts(document, "headlines").join(" "),
        body: body.join("\n"),
    }
}

fn search_failure(error: SearchError) -> StoreError {
    StoreError::Io(std::io::Error::other(error.to_string()))
}

/// Indexes one stored version (after a publish). Not yet searchable: the committer commits.
pub fn index_version(store: &dyn Store, search: &SearchIndex, version: &StoredVersion) -> Result<(), StoreError> {
    let country = store.member(&version.owner)?.map(|m| m.country.as_str().to_string());
    search.upsert(&index_doc(version, country)).map_err(search_failure)
}

/// Brings the index up to the store: everything whose current version is newer than what the index
/// recorded. Run at start-up (after a crash the index may be behind) and by `karavan reindex`.
pub fn catch_up(store: &dyn Store, search: &SearchIndex) -> Result<usize, StoreError> {
    let countries: std::collections::HashMap<String, String> =
        store.members()?.into_iter().map(|m| (m.id.to_string(), m.country.as_str().to_string())).collect();
    let mut after = search.indexed_seq().map_err(search_failure)?;
    let mut count = 0;
    loop {
        let batch = store.current_versions_after(after, 1000)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for version in &batch {
            let country = countries.get(version.owner.as_str()).cloned();
            search.upsert(&index_doc(version, country)).map_err(search_failure)?;
        }
        count += batch.len();
        search.commit().map_err(search_failure)?;
    }
    Ok(count)
}

/// Commits the index every `interval` while there are changes, so a publish is searchable within it.
pub fn spawn_committer(search: Arc<SearchIndex>, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let search = Arc::clone(&search);
            match tokio::task::spawn_blocking(move || search.commit()).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::error!(%error, "search index commit failed"),
                Err(error) => tracing::error!(%error, "search index commit task failed"),
            }
        }
    })
}

fn audience(viewer: &MemberId, agreements: &[Agreement], now: Timestamp) -> Audience {
    Audience {
        viewer: viewer.to_string(),
        grants: agreements
            .iter()
            .filter(|a| a.grantee.includes(viewer) && &a.grantor != viewer)
            .map(|a| Grant {
                grantor: a.grantor.to_string(),
                delay_minutes: a.delay_minutes,
                subjects: a.subjects.clone(),
            })
            .collect(),
        now: now.micros(),
    }
}

/// The most hits one can page through: deep offsets cost more than they help.
const MAX_OFFSET: usize = 10_000;

/// `GET /v1/search?q=…`: full-text search over what the caller may see, with filters, facets, snippets.
pub async fn search(State(state): State<AppState>, caller: Caller, query: RawQuery) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let text = params.one("q")?;
    let query_language = params.one("qlang")?;
    let mut request = SearchRequest::text(text.as_deref().unwrap_or_default());
    if let Some(language) = &query_language {
        karavan_domain::LanguageTag::parse(language).map_err(|e| ApiError::invalid(format!("qlang: {}", e.message)))?;
    }
    request.query_language = query_language;
    request.members = params.all("member");
    for member in &request.members {
        MemberId::parse(member)?;
    }
    request.countries = params.all("country").iter().map(|c| c.to_ascii_uppercase()).collect();
    request.languages = params.all("lang");
    for language in &request.languages {
        karavan_domain::LanguageTag::parse(language)?;
    }
    request.subjects = params.all("subject");
    request.genres = params.all("genre");
    request.types = params.all("type");
    if let Some(urgency) = params.one("urgency")? {
        request.urgency = Some(crate::items::parse_urgency(&urgency)?);
    }
    request.from = params.time("from")?.map(Timestamp::micros);
    request.to = params.time("to")?.map(Timestamp::micros);
    request.sort = match params.one("sort")?.as_deref() {
        None | Some("relevance") => Sort::Relevance,
        Some("date") => Sort::Newest,
        Some(other) => return Err(ApiError::invalid(format!("sort: {other:?} is not relevance or date"))),
    };
    request.limit = match params.one("limit")? {
        None => 20,
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=100).contains(&limit) => limit,
            _ => return Err(ApiError::invalid(format!("limit: {text:?} is not a number from 1 to 100"))),
        },
    };
    request.offset = match params.one("cursor")? {
        None => 0,
        Some(token) => match token.strip_prefix("o").and_then(|n| n.parse::<usize>().ok()) {
            Some(offset) if offset <= MAX_OFFSET => offset,
            _ => return Err(ApiError::invalid(format!("cursor: {token:?} is not a cursor from this API"))),
        },
    };
    params.finish()?;

    let viewer = caller.0.member.clone();
    let search = Arc::clone(state.search());
    let store = Arc::clone(state.store());
    let results = state
        .compute(move || -> ApiResult<_> {
            let now = now();
            let agreements = store.agreements_of(&viewer).map_err(ApiError::from)?;
            let results = search.search(&request, &audience(&viewer, &agreements, now)).map_err(|error| match error {
                SearchError::BadQuery(message) => ApiError::invalid(format!("q: {message}")),
                other => ApiError::internal("search", other),
            })?;
            // Load each hit through the store's own visibility check, too: the index is derived data.
            let mut hits = Vec::with_capacity(results.hits.len());
            for hit in &results.hits {
                let Ok(id) = karavan_domain::ItemId::parse(&hit.item_id) else { continue };
                if let ItemRead::Visible(version, _) = store.item(&viewer, &id, now).map_err(ApiError::from)? {
                    hits.push(json!({
                        "id": hit.item_id,
                        "score": hit.score,
                        "item": wire::ninjs(&version),
                        "snippet": hit.snippet,
                    }));
                }
            }
            let next = (request.offset + request.limit < results.total.min(MAX_OFFSET))
                .then(|| format!("o{}", request.offset + request.limit));
            let counts = |pairs: &[(String, u64)]| -> Map<String, Value> {
                pairs.iter().map(|(key, count)| (key.clone(), json!(count))).collect()
            };
            Ok(json!({
                "hits": hits,
                "total": results.total,
                "facets": {
                    "member": counts(&results.facets.members),
                    "language": counts(&results.facets.languages),
                    "subject": counts(&results.facets.subjects),
                    "date": results.facets.days.iter()
                        .map(|(day, count)| json!({ "day": Timestamp(*day).to_rfc3339()[..10].to_string(), "count": count }))
                        .collect::<Vec<_>>(),
                },
                "next": next,
            }))
        })
        .await??;
    Ok(Json(results).into_response())
}
