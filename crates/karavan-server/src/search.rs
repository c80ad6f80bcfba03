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
use crate::language::LanguageModels;
use crate::params::Params;
use crate::publish::subject_keys;
use crate::{AppState, now, wire};

/// The plain text of each entry of a ninjs text array (`headlines`, `bodies`, …); HTML made plain.
pub(crate) fn texts(document: &Map<String, Value>, key: &str) -> Vec<String> {
    document
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let value = entry.get("value")?.as_str()?;
            let html = entry.get("contentType").and_then(Value::as_str).is_some_and(|t| t.contains("html"));
            Some(if html { karavan_formats::html::plain_text(value) } else { value.to_string() })
        })
        .collect()
}

/// The index document of a stored version. An item without a `language` is indexed under the one
/// identified from its text, when the identifier is installed.
pub fn index_doc(
    version: &StoredVersion,
    country: Option<String>,
    models: &LanguageModels,
    translations: Vec<(String, String)>,
) -> IndexDoc {
    let document = &version.document;
    let text = |key: &str| document.get(key).and_then(Value::as_str).map(str::to_string);
    let language = crate::language::declared_or_detected_language(document, models);
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
        language,
        item_type: text("type"),
        urgency: document.get("urgency").and_then(Value::as_u64).map(|u| u.min(9) as u8),
        dated_at: dated_at.micros(),
        available_at: version.available_at.micros(),
        pub_status: version.pub_status.as_str().to_string(),
        subjects: subject_keys(document),
        genres,
        headline: texts(document, "headlines").join(" "),
        body: body.join("\n"),
        translations,
    }
}

/// A search's error as the API answers it: a query that cannot be read is the caller's.
pub(crate) fn search_error(error: SearchError) -> ApiError {
    match error {
        SearchError::BadQuery(message) => ApiError::invalid(format!("q: {message}")),
        other => ApiError::internal("search", other),
    }
}

fn search_failure(error: SearchError) -> StoreError {
    StoreError::Io(std::io::Error::other(error.to_string()))
}

/// Indexes one stored version with its stored translations (after a publish, and again when a
/// translation is made). Not yet searchable: the committer commits.
pub fn index_version(
    store: &dyn Store,
    search: &SearchIndex,
    models: &LanguageModels,
    version: &StoredVersion,
) -> Result<(), StoreError> {
    let country = store.member(&version.owner)?.map(|m| m.country.as_str().to_string());
    let translations = crate::translation::index_texts(&store.translations(&[version.seq])?);
    search.upsert(&index_doc(version, country, models, translations)).map_err(search_failure)
}

/// Brings the index up to the store: everything whose current version is newer than what the index
/// recorded. Run at start-up (after a crash the index may be behind) and by `karavan reindex`.
pub fn catch_up(store: &dyn Store, search: &SearchIndex, models: &LanguageModels) -> Result<usize, StoreError> {
    let retried = retry_set_aside(store, search, models)?;
    let (indexed, _) = index_after(store, search, models, search.indexed_seq().map_err(search_failure)?, true)?;
    Ok(retried + indexed)
}

/// Indexes what an operator asked to be tried again (rows that could not be read, versions the index
/// could not take); returns how many went in.
fn retry_set_aside(store: &dyn Store, search: &SearchIndex, models: &LanguageModels) -> Result<usize, StoreError> {
    let countries = member_countries(store)?;
    let mut count = 0;
    for work in [karavan_store::READ_WORK, SEARCH_INDEX_WORK] {
        for version in store.set_aside_to_retry(work)? {
            if index_or_set_aside(store, search, models, &countries, &version, Vec::new())? {
                store.clear_set_aside(work, version.seq)?;
                count += 1;
            }
        }
    }
    if count > 0 {
        search.commit().map_err(search_failure)?;
    }
    Ok(count)
}

fn member_countries(store: &dyn Store) -> Result<std::collections::HashMap<String, String>, StoreError> {
    Ok(store.members()?.into_iter().map(|m| (m.id.to_string(), m.country.as_str().to_string())).collect())
}

/// Indexes every current version stored after sequence `after` (set-aside ones skipped), a page of
/// 1,000 at a time; returns how many were indexed and the sequence scanned to (the next call's
/// `after`). With `commit_pages` each page is committed (a catch-up, which must leave the index
/// durable); without, the committer engine commits every `COMMIT_INTERVAL`, so that a busy wire
/// makes one index segment per interval rather than one per round of the indexer.
pub fn index_after(
    store: &dyn Store,
    search: &SearchIndex,
    models: &LanguageModels,
    mut after: i64,
    commit_pages: bool,
) -> Result<(usize, i64), StoreError> {
    let mut count = 0;
    let mut context: Option<(std::collections::HashMap<String, String>, std::collections::HashSet<i64>)> = None;
    loop {
        let page = store.current_versions_after(after, 1000)?;
        let Some(scanned_to) = page.scanned_to else { break };
        after = scanned_to;
        if context.is_none() {
            let held = store
                .set_aside_list(None)?
                .into_iter()
                .filter(|s| s.work == SEARCH_INDEX_WORK && !s.retry)
                .map(|s| s.seq)
                .collect();
            context = Some((member_countries(store)?, held));
        }
        let Some((countries, held)) = &context else { break };
        let seqs: Vec<i64> = page.versions.iter().map(|v| v.seq).collect();
        let mut translations: std::collections::HashMap<i64, Vec<karavan_store::StoredTranslation>> =
            std::collections::HashMap::new();
        for translation in store.translations(&seqs)? {
            translations.entry(translation.seq).or_default().push(translation);
        }
        for version in page.versions.iter().filter(|v| !held.contains(&v.seq)) {
            let texts = translations.get(&version.seq).map(|t| crate::translation::index_texts(t)).unwrap_or_default();
            if index_or_set_aside(store, search, models, countries, version, texts)? {
                count += 1;
            }
        }
        if commit_pages {
            search.commit().map_err(search_failure)?;
        }
    }
    Ok((count, after))
}

/// The keyword indexer engine: tails the store from the index's committed position, indexing each new
/// current version (publishes, corrections, kills); the committer makes them searchable within
/// `COMMIT_INTERVAL`, and a publish never waits for analysis itself. Woken by item events on
/// the bus; looks again every second in any case.
pub async fn run_indexer(state: crate::AppState, mut context: crate::engine::EngineContext) {
    let (store, search, models) = (Arc::clone(state.store()), Arc::clone(state.search()), Arc::clone(state.language()));
    let mut position: Option<i64> = None;
    let mut events = state.bus().subscribe();
    loop {
        events.drain();
        let started = tokio::time::Instant::now();
        let (store_, search_, models_) = (Arc::clone(&store), Arc::clone(&search), Arc::clone(&models));
        let from = position;
        let round = tokio::task::spawn_blocking(move || {
            let after = match from {
                Some(after) => after,
                None => search_.indexed_seq().map_err(search_failure)?,
            };
            index_after(store_.as_ref(), &search_, &models_, after, false)
        })
        .await;
        match round {
            Ok(Ok((_, scanned_to))) => position = Some(scanned_to),
            Ok(Err(StoreError::Closed)) => return,
            Ok(Err(error)) => tracing::error!(%error, "indexing the stored versions failed; retrying"),
            // A panic escaped the per-version guard: let the supervisor restart the engine.
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
        // Rounds at most every INDEX_ROUND_GAP: what a busy wire stores meanwhile is taken in one.
        tokio::select! {
            _ = events.wait_for_from(started + INDEX_ROUND_GAP, Duration::from_secs(1), crate::bus::is_item) => {}
            _ = context.stopped() => return,
        }
    }
}

/// The least time between the starts of two rounds of the keyword indexer (publish → searchable is
/// this plus the committer's interval at most, besides the work itself).
const INDEX_ROUND_GAP: Duration = Duration::from_millis(50);

/// The work name under which versions the search index could not take are set aside.
pub const SEARCH_INDEX_WORK: &str = "search-index";

/// Indexes one version; if building its index document panics, the version is set aside (with the
/// panic's message) instead, and the catch-up goes on. Errors of the index itself are the caller's.
fn index_or_set_aside(
    store: &dyn Store,
    search: &SearchIndex,
    models: &LanguageModels,
    countries: &std::collections::HashMap<String, String>,
    version: &StoredVersion,
    texts: Vec<(String, String)>,
) -> Result<bool, StoreError> {
    let country = countries.get(version.owner.as_str()).cloned();
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| index_doc(version, country, models, texts)));
    match built {
        Ok(document) => {
            search.upsert(&document).map_err(search_failure)?;
            Ok(true)
        }
        Err(panic) => {
            let message = crate::panic_message(panic.as_ref());
            tracing::error!(seq = version.seq, item = %version.item_id, %message, "indexing failed; set aside");
            let error = format!("building the index document panicked: {message}");
            store.set_aside(SEARCH_INDEX_WORK, version.seq, version.item_id.as_str(), Some(&version.owner), &error)?;
            Ok(false)
        }
    }
}

/// How often the keyword index's committer makes new documents searchable.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(250);

/// The committer engine: commits the index every `interval` while there are changes, so a publish is
/// searchable within it; asked to stop, it commits what it holds once more.
pub async fn run_committer(search: Arc<SearchIndex>, interval: Duration, mut context: crate::engine::EngineContext) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = ticks.tick() => false,
            _ = context.stopped() => true,
        };
        let search = Arc::clone(&search);
        match tokio::task::spawn_blocking(move || search.commit()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "search index commit failed"),
            Err(error) => tracing::error!(%error, "search index commit task failed"),
        }
        if stopping {
            return;
        }
    }
}

pub(crate) fn audience(viewer: &MemberId, agreements: &[Agreement], now: Timestamp) -> Audience {
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

/// The deepest offset an `o…` cursor may hold. Keyword search answers with keyset cursors (the last
/// hit's place in the ranking, see `karavan_search::After`), which reach every hit at any depth;
/// offsets remain for rankings made in memory (semantic and hybrid hold at most 1,000 items).
const MAX_OFFSET: usize = 10_000;

/// Reads the query and filter parameters of a search (everything but paging).
pub(crate) fn parse_search_query(params: &mut Params) -> ApiResult<SearchRequest> {
    let text = params.one("q")?;
    if let Some(text) = &text {
        // Every place a query is accepted (search in every mode, saved searches, subscriptions) reads
        // it here: one limit on its size, said before any work is done.
        if let Err(karavan_search::SearchError::BadQuery(message)) = karavan_search::check_query_text(text) {
            return Err(ApiError::invalid(format!("q: {message}")));
        }
    }
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
    Ok(request)
}

/// Reads `limit` and `cursor` into a request.
fn parse_paging(params: &mut Params, request: &mut SearchRequest) -> ApiResult<()> {
    request.limit = params.limit(20, 100)? as usize;
    apply_cursor(request, params.one("cursor")?.as_deref())
}

/// Starts a request at a cursor of an earlier page: `o<offset>` (up to 10,000) or a keyword
/// ranking's key (`karavan_search::After`), which must be of the request's sort.
pub(crate) fn apply_cursor(request: &mut SearchRequest, cursor: Option<&str>) -> ApiResult<()> {
    let Some(token) = cursor else {
        request.offset = 0;
        return Ok(());
    };
    if let Some(offset) = token.strip_prefix("o").and_then(|n| n.parse::<usize>().ok())
        && offset <= MAX_OFFSET
    {
        request.offset = offset;
        return Ok(());
    }
    match karavan_search::After::parse(token) {
        Some(after) if after.sort() == request.sort => {
            request.offset = 0;
            request.after = Some(after);
            Ok(())
        }
        Some(_) => Err(ApiError::invalid(format!(
            "cursor: {token:?} belongs to a search sorted another way (sort changed between pages)"
        ))),
        None => Err(ApiError::invalid(format!("cursor: {token:?} is not a cursor from this API"))),
    }
}

/// `GET /v1/search?q=…`: full-text search over what the caller may see, with filters, facets, snippets;
/// `mode=semantic` or `mode=hybrid` rank by meaning across languages (see `semantic`).
pub async fn search(State(state): State<AppState>, caller: Caller, query: RawQuery) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let mut request = parse_search_query(&mut params)?;
    let mode = crate::semantic::Mode::parse(params.one("mode")?.as_deref())?;
    parse_paging(&mut params, &mut request)?;
    params.finish()?;
    if mode != crate::semantic::Mode::Keyword && request.sort == Sort::Newest {
        return Err(ApiError::invalid(
            "sort: date is not taken with mode=semantic or mode=hybrid (they rank by meaning)",
        ));
    }
    Ok(Json(search_in_mode(&state, caller.0.member.clone(), request, mode).await?.to_json()).into_response())
}

/// A search ranked by words (keyword) or by meaning (semantic, hybrid), as `viewer`.
pub async fn search_in_mode(
    state: &AppState,
    viewer: MemberId,
    request: SearchRequest,
    mode: crate::semantic::Mode,
) -> ApiResult<SearchAnswer> {
    if mode != crate::semantic::Mode::Keyword && request.after.is_some() {
        return Err(ApiError::invalid(
            "cursor: a keyword search's cursor; mode=semantic and mode=hybrid page with their own",
        ));
    }
    match mode {
        crate::semantic::Mode::Keyword => search_answer(state, viewer, request).await,
        mode => crate::semantic::search_answer(state, viewer, request, mode, None).await,
    }
}

/// Runs a search as `viewer`'s member: the answer of `GET /v1/search` (hits, total, facets, next).
pub async fn search_answer(state: &AppState, viewer: MemberId, mut request: SearchRequest) -> ApiResult<SearchAnswer> {
    let search = Arc::clone(state.search());
    let store = Arc::clone(state.store());
    let models = Arc::clone(state.language());
    state
        .compute(move || -> ApiResult<_> {
            let now = now();
            let query_language = detect_query_language(&models, &mut request);
            let agreements = store.agreements_of(&viewer).map_err(ApiError::from)?;
            let results = search.search(&request, &audience(&viewer, &agreements, now)).map_err(search_error)?;
            let mut answer = answer(store.as_ref(), &viewer, now, &request, results)?;
            answer.query_language = query_language;
            Ok(answer)
        })
        .await?
}

/// The fewest letters, and the least confidence, at which a query's detected language chooses its
/// analysis (shorter queries are too ambiguous: they are analysed in every language).
const QUERY_LANGUAGE_LETTERS: usize = 16;
const QUERY_LANGUAGE_CONFIDENCE: f32 = 0.9;

/// Identifies the language of a query without `qlang`; a sure guess on a long enough query is used
/// to analyse it. Returns the detection, for the answer.
fn detect_query_language(models: &LanguageModels, request: &mut SearchRequest) -> Option<karavan_lang::Detection> {
    if request.query_language.is_some() {
        return None;
    }
    let text = request.text.as_deref()?;
    let detected = models.detect(text)?;
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters >= QUERY_LANGUAGE_LETTERS && detected.confidence >= QUERY_LANGUAGE_CONFIDENCE {
        request.query_language = Some(detected.language.clone());
    }
    Some(detected)
}

/// One hit of a search, as the caller may see it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub version: karavan_store::StoredVersion,
    pub score: f32,
    /// HTML: the text escaped, the matched words in `<b>`.
    pub snippet: String,
}

/// The answer of a search, whatever its mode: what the API renders as JSON and the newsroom as a page.
#[derive(Debug, Clone)]
pub struct SearchAnswer {
    pub hits: Vec<Hit>,
    pub total: usize,
    pub facets: karavan_search::Facets,
    /// The next page's cursor.
    pub next: Option<String>,
    /// The language detected in a keyword query without `qlang`.
    pub query_language: Option<karavan_lang::Detection>,
    /// The mode of a semantic or hybrid search (`None`: keyword).
    pub mode: Option<crate::semantic::Mode>,
}

impl SearchAnswer {
    /// The JSON answer of `GET /v1/search` (and `/similar`).
    pub fn to_json(&self) -> Value {
        let hits: Vec<Value> = self
            .hits
            .iter()
            .map(|hit| {
                json!({
                    "id": hit.version.item_id.as_str(),
                    "member": hit.version.owner.as_str(),
                    "score": hit.score,
                    "item": wire::ninjs(&hit.version),
                    "snippet": hit.snippet,
                })
            })
            .collect();
        let counts = |pairs: &[(String, u64)]| -> Map<String, Value> {
            pairs.iter().map(|(key, count)| (key.clone(), json!(count))).collect()
        };
        let facets = &self.facets;
        let mut body = json!({
            "hits": hits,
            "total": self.total,
            "facets": {
                "member": counts(&facets.members),
                "language": counts(&facets.languages),
                "subject": counts(&facets.subjects),
                "date": facets.days.iter()
                    .map(|(day, count)| json!({ "day": Timestamp(*day).to_rfc3339()[..10].to_string(), "count": count }))
                    .collect::<Vec<_>>(),
            },
            "next": self.next,
        });
        match self.mode {
            None => body["queryLanguage"] = json!(self.query_language),
            Some(mode) => {
                body["mode"] = json!(match mode {
                    crate::semantic::Mode::Keyword => "keyword",
                    crate::semantic::Mode::Semantic => "semantic",
                    crate::semantic::Mode::Hybrid => "hybrid",
                })
            }
        }
        body
    }
}

/// The answer of a search: each hit loaded through the store's own visibility check too (the index is
/// derived data), the total, facets and the next cursor.
pub(crate) fn answer(
    store: &dyn Store,
    viewer: &MemberId,
    now: Timestamp,
    request: &SearchRequest,
    results: karavan_search::SearchResults,
) -> ApiResult<SearchAnswer> {
    // A keyword page's next cursor is its last hit's place in the ranking (it reaches every hit);
    // a ranking made in memory pages by offset.
    let next = match results.hits.last().and_then(|hit| hit.key) {
        Some(last) => (results.remaining > request.offset + results.hits.len()).then(|| last.token()),
        None => (request.offset + request.limit < results.total.min(MAX_OFFSET))
            .then(|| format!("o{}", request.offset + request.limit)),
    };
    let mut hits = Vec::with_capacity(results.hits.len());
    for hit in results.hits {
        let Ok(id) = karavan_domain::ItemId::parse(&hit.item_id) else { continue };
        if let ItemRead::Visible(version, _) = store.item(viewer, &id, now).map_err(ApiError::from)? {
            hits.push(Hit { version, score: hit.score, snippet: hit.snippet });
        }
    }
    Ok(SearchAnswer { hits, total: results.total, facets: results.facets, next, query_language: None, mode: None })
}

/// The parameters a saved search may hold: the query and filters of `GET /v1/search`, not paging.
const SAVED_PARAMETERS: [&str; 13] =
    ["q", "qlang", "member", "country", "lang", "subject", "genre", "type", "urgency", "from", "to", "sort", "mode"];

/// Stored (parameter, value) pairs as the JSON object clients send: a repeated parameter becomes an array.
pub(crate) fn query_object(pairs: &[(String, String)]) -> Map<String, Value> {
    let mut query = Map::new();
    for (key, value) in pairs {
        match query.get_mut(key) {
            Some(Value::Array(values)) => values.push(json!(value)),
            Some(single) => *single = json!([single.clone(), value]),
            None => {
                query.insert(key.clone(), json!(value));
            }
        }
    }
    query
}

fn saved_json(saved: &karavan_store::SavedSearch) -> Value {
    let query = query_object(&saved.query);
    json!({ "id": saved.id.as_str(), "name": saved.name, "query": query, "createdAt": saved.created_at.to_rfc3339() })
}

/// `POST /v1/searches {"name", "query": {"q": "…", "lang": ["kk", "ru"], …}}`: saves a named search for
/// the caller's member; the query is checked exactly as `GET /v1/search` would check it.
pub async fn create_saved(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    caller.require(karavan_domain::Role::Editor, "saving searches")?;
    let body = crate::items::body_bytes(body)?;
    let Value::Object(object) = crate::publish::parse_json_body(&body)? else {
        return Err(ApiError::invalid("body: expected a JSON object with name and query"));
    };
    crate::publish::refuse_nulls(&object)?;
    if let Some(unknown) = object.keys().find(|k| !["name", "query"].contains(&k.as_str())) {
        return Err(ApiError::invalid(format!("{unknown}: unknown field (expected name, query)")));
    }
    let Some(name) = object.get("name").and_then(Value::as_str) else {
        return Err(ApiError::invalid("name: required, a non-empty string of at most 200 characters"));
    };
    let Some(Value::Object(query)) = object.get("query") else {
        return Err(ApiError::invalid("query: required, an object of search parameters"));
    };
    let pairs = query_pairs(query)?;
    let saved = crate::app::saved_searches::save(&state, &caller.0.member, name, pairs).await?;
    Ok((axum::http::StatusCode::CREATED, Json(saved_json(&saved))).into_response())
}

/// Reads a JSON object of search parameters (`{"q": "…", "lang": ["kk", "ru"]}`) into (name, value)
/// pairs (the saved-search use case checks them as a search would).
pub(crate) fn query_pairs(query: &Map<String, Value>) -> ApiResult<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for (key, value) in query {
        if !SAVED_PARAMETERS.contains(&key.as_str()) {
            return Err(ApiError::invalid(format!(
                "query.{key}: not a search parameter ({})",
                SAVED_PARAMETERS.join(", ")
            )));
        }
        let values: Vec<&Value> = match value {
            Value::Array(values) => values.iter().collect(),
            single => vec![single],
        };
        for value in values {
            match value {
                Value::String(text) => pairs.push((key.clone(), text.clone())),
                Value::Number(number) => pairs.push((key.clone(), number.to_string())),
                _ => return Err(ApiError::invalid(format!("query.{key}: must be a string or an array of strings"))),
            }
        }
    }
    Ok(pairs)
}

pub async fn list_saved(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let member = caller.0.member.clone();
    let saved = state.blocking(move |store| store.saved_searches(&member)).await?;
    Ok(Json(json!({ "searches": saved.iter().map(saved_json).collect::<Vec<_>>() })).into_response())
}

async fn find_saved(state: &AppState, caller: &Caller, id: &str) -> ApiResult<karavan_store::SavedSearch> {
    let id = karavan_domain::SavedSearchId::parse(id)?;
    crate::app::saved_searches::find(state, &caller.0.member, &id).await
}

pub async fn get_saved(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Response> {
    Ok(Json(saved_json(&find_saved(&state, &caller, &id).await?)).into_response())
}

pub async fn delete_saved(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Response> {
    caller.require(karavan_domain::Role::Editor, "deleting saved searches")?;
    let id = karavan_domain::SavedSearchId::parse(&id)?;
    crate::app::saved_searches::delete(&state, &caller.0.member, &id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/searches/{id}/results?limit=&cursor=`: runs a saved search now, as the caller.
pub async fn run_saved(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
    query: RawQuery,
) -> ApiResult<Response> {
    let saved = find_saved(&state, &caller, &id).await?;
    let mut stored = Params::from_pairs(saved.query.clone());
    let mut request = parse_search_query(&mut stored)?;
    // A saved search runs in the ranking mode it was saved with (words when it names none).
    let mode = crate::semantic::Mode::parse(stored.one("mode")?.as_deref())?;
    let mut paging = Params::parse(query)?;
    parse_paging(&mut paging, &mut request)?;
    paging.finish()?;
    Ok(Json(search_in_mode(&state, caller.0.member.clone(), request, mode).await?.to_json()).into_response())
}
