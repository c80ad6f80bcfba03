//! Semantic search: item embeddings (multilingual-e5, `passage: ` of headline, description and body)
//! in an approximate-nearest-neighbour index kept in step with the store, and the search modes that
//! use it. `mode=semantic` ranks by cosine similarity to the query's embedding (`query: `),
//! `mode=hybrid` fuses that ranking with keyword (BM25) ranking by reciprocal rank, and
//! `GET /v1/items/{id}/similar` ranks by similarity to an item: across languages, since the
//! embeddings are multilingual.
//!
//! The index is derived data, like the keyword index: it records the store sequence it reflects, is
//! saved to the data directory, and catches up from the store (publishes, corrections and kills
//! alike) in a background task; a missing or unreadable file, or one built by another model, is
//! rebuilt from the store. Filters, agreements and embargoes are those of keyword search: every
//! candidate passes the keyword index's visibility and filter query before it is shown.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use karavan_domain::{ItemId, MemberId, PubStatus};
use karavan_lang::Role;
use karavan_search::{Audience, SearchIndex, SearchRequest, SearchResults, VectorIndex};
use karavan_store::{Store, StoredVersion};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::language::{LanguageModels, item_text, not_installed};
use crate::params::Params;
use crate::search::{SearchAnswer, audience, parse_search_query};
use crate::{AppState, now};

/// How search ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Keyword,
    Semantic,
    Hybrid,
}

impl Mode {
    pub fn parse(text: Option<&str>) -> ApiResult<Mode> {
        match text {
            None | Some("keyword") => Ok(Mode::Keyword),
            Some("semantic") => Ok(Mode::Semantic),
            Some("hybrid") => Ok(Mode::Hybrid),
            Some(other) => Err(ApiError::invalid(format!("mode: {other:?} is not keyword, semantic or hybrid"))),
        }
    }
}

/// How many items a semantic or hybrid ranking holds: its total, the pool its facets count.
const POOL: usize = 100;
/// The most items a ranking may hold (deep pages).
const MAX_POOL: usize = 1000;
/// When the filters leave at most this many items, similarity is computed exactly over them.
const EXACT_LIMIT: usize = 20_000;
/// The least cosine similarity between a query and an item for the item to be a meaning-based hit
/// (`--semantic-floor`). Calibrated for multilingual-e5-small on the dev set's sentences and typed
/// queries (`devset/queries.tsv`; the table is in BENCHMARKS.md): the model scores every text of a
/// language at 0.7 or more against any query, so without a floor every item came back for any query.
/// At 0.78 a sentence-length query keeps 99.7 % of its translations, every typed query about a story
/// keeps the story in its own language (79 % of its renderings in all nine), and an off-topic query
/// keeps 11 % of the corpus instead of all of it (no floor this model allows separates them fully).
/// "More like this" has its own ([`LIKE_FLOOR`]). An imported model has no default floor (its scores
/// are its own); `--semantic-floor` sets one.
pub const DEFAULT_FLOOR: f32 = 0.78;
/// The least score (the cosine, less [`SAME_LANGUAGE_PENALTY`] in the item's own language) for an item
/// to be listed as similar to another ("more like this", the item page's similar stories), for the
/// calibrated model. Measured on the dev set (all 360 × 359 sentence pairs) and on the demo's items
/// judged by reading them (BENCHMARKS.md): at 0.82 97.6 % of a sentence's renderings of the same
/// story stay and 69 % (dev set) to 88 % (demo) of unrelated candidates go; at 0.80 99.7 % stay but
/// only 55–67 % go. Chinese items score low against every other language (0.77–0.84 for the same
/// story), so some of their cross-language matches fall under it.
pub const LIKE_FLOOR: f32 = 0.82;
/// The model [`DEFAULT_FLOOR`] was calibrated for (the packaged one's name).
const CALIBRATED_MODEL: &str = "multilingual-e5-small-q4";

/// The floor meaning-based hits must reach: the configured one, else the default of the model the
/// vector index was opened with (decided once, when it opened).
/// "More like this"'s floor: [`LIKE_FLOOR`] for the calibrated model, none for another.
fn like_floor(vectors: &Vectors) -> f32 {
    if vectors.model_floor.get().is_some_and(|floor| *floor > 0.0) { LIKE_FLOOR } else { f32::MIN }
}

fn similarity_floor(configured: Option<f32>, vectors: &Vectors) -> f32 {
    let floor = configured.unwrap_or_else(|| vectors.model_floor.get().copied().unwrap_or(f32::MIN));
    if floor > 0.0 { floor } else { f32::MIN }
}
/// Reciprocal rank fusion's constant (Cormack et al.: 60).
const RRF_K: f32 = 60.0;
/// Items embedded per encoder call in the background.
const EMBED_BATCH: u32 = 16;
/// How often a changed index is saved.
const SAVE_EVERY: Duration = Duration::from_secs(10);

/// The vector index of item embeddings and where it is saved.
pub struct Vectors {
    index: RwLock<Option<VectorIndex>>,
    dir: Option<PathBuf>,
    dirty: AtomicBool,
    /// The floor the opened index's model calls for by default (set when the index opens).
    model_floor: std::sync::OnceLock<f32>,
}

impl std::fmt::Debug for Vectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vectors").field("dir", &self.dir).finish_non_exhaustive()
    }
}

const INDEX_FILE: &str = "items.kvix";
const MODEL_FILE: &str = "model";

impl Vectors {
    /// Vectors saved in `dir` (none: kept in memory only).
    pub fn new(dir: Option<PathBuf>) -> Vectors {
        Vectors {
            index: RwLock::new(None),
            dir,
            dirty: AtomicBool::new(false),
            model_floor: std::sync::OnceLock::new(),
        }
    }

    /// How many items have a vector, and the store sequence the index reflects.
    pub fn status(&self) -> Option<(usize, i64)> {
        self.index.read().ok()?.as_ref().map(|index| (index.len(), index.seq()))
    }

    /// An item's embedding, where the index has one.
    pub fn vector_of(&self, item: &str) -> Option<Vec<f32>> {
        self.index.read().ok()?.as_ref()?.get(item).map(<[f32]>::to_vec)
    }

    /// Opens the saved index if it was built by `model` with `dim`, else starts an empty one.
    fn open(&self, model: &str, dim: usize) {
        let calibrated = model.split(' ').next() == Some(CALIBRATED_MODEL);
        let _ = self.model_floor.set(if calibrated { DEFAULT_FLOOR } else { f32::MIN });
        let mut loaded = None;
        if let Some(dir) = &self.dir {
            let recorded = std::fs::read_to_string(dir.join(MODEL_FILE)).unwrap_or_default();
            let path = dir.join(INDEX_FILE);
            if recorded.trim() == model && path.exists() {
                match VectorIndex::load(&path) {
                    Ok(index) if index.dim() == dim => loaded = Some(index),
                    Ok(_) => tracing::warn!("vector index of another dimension; rebuilding it from the store"),
                    Err(error) => tracing::warn!(%error, "vector index unreadable; rebuilding it from the store"),
                }
            } else if path.exists() {
                tracing::warn!("vector index built by another model; rebuilding it from the store");
            }
            if loaded.is_none() {
                let _ = std::fs::create_dir_all(dir);
                let _ = std::fs::remove_file(&path);
                if let Err(error) = std::fs::write(dir.join(MODEL_FILE), model) {
                    tracing::error!(%error, "could not record the vector index's model");
                }
            }
        }
        let index = loaded.unwrap_or_else(|| VectorIndex::new(dim));
        tracing::info!(items = index.len(), seq = index.seq(), "vector index open");
        *self.index.write().expect("vector index lock") = Some(index);
    }

    fn save(&self) {
        let (Some(dir), true) = (&self.dir, self.dirty.swap(false, Ordering::AcqRel)) else { return };
        let guard = self.index.read().expect("vector index lock");
        if let Some(index) = guard.as_ref()
            && let Err(error) = index.save(&dir.join(INDEX_FILE))
        {
            self.dirty.store(true, Ordering::Release);
            tracing::error!(%error, "could not save the vector index; it is rebuilt from the store if lost");
        }
    }
}

/// The text an item is embedded from; none for an item with no text.
fn embedding_text(version: &StoredVersion) -> Option<String> {
    let text = item_text(&version.document);
    (!text.trim().is_empty()).then_some(text)
}

/// One round of catching up: embeds the next batch of changed items. Returns how many versions it
/// read (0: caught up).
fn catch_up_once(store: &dyn Store, models: &LanguageModels, vectors: &Vectors) -> Result<usize, String> {
    let embedder = models.embedder()?;
    let after = vectors.index.read().expect("vector index lock").as_ref().map(VectorIndex::seq).unwrap_or(0);
    let page = store.current_versions_after(after, EMBED_BATCH).map_err(|e| e.to_string())?;
    let Some(last) = page.scanned_to else { return Ok(0) };
    let batch = page.versions;
    let mut texts = Vec::new();
    let mut keys = Vec::new();
    let mut removed = Vec::new();
    let mut versions = Vec::new();
    for version in &batch {
        match (version.pub_status, embedding_text(version)) {
            (PubStatus::Canceled, _) | (_, None) => removed.push(version.item_id.to_string()),
            (_, Some(text)) => {
                texts.push(text);
                keys.push(version.item_id.to_string());
                versions.push(version);
            }
        }
    }
    let (embeddings, failed) = embed_or_set_aside(&embedder, &texts);
    // Items the model could not embed are set aside, not retried for ever (which would stop the
    // index from ever getting past them).
    for index in failed.iter().rev() {
        let (version, error) = (versions[*index], &failed_reason(&embedder, &texts[*index]));
        store
            .set_aside(EMBEDDING_WORK, version.seq, version.item_id.as_str(), Some(&version.owner), error)
            .map_err(|e| e.to_string())?;
        keys.remove(*index);
    }
    let mut guard = vectors.index.write().expect("vector index lock");
    let index = guard.as_mut().ok_or("vector index not open")?;
    for (key, vector) in keys.iter().zip(&embeddings) {
        index.upsert(key, vector).map_err(|e| e.to_string())?;
    }
    for key in &removed {
        index.remove(key);
    }
    index.set_seq(last);
    let compact = index.tombstones() * 4 > index.node_count();
    drop(guard);
    vectors.dirty.store(true, Ordering::Release);
    if compact {
        // Rebuilding takes minutes at scale: do it on a copy, outside the lock, so searches go on. This
        // task is the index's only writer, so nothing changes it meanwhile.
        let copy = vectors.index.read().expect("vector index lock").clone();
        if let Some(mut copy) = copy {
            copy.compact_if_needed();
            *vectors.index.write().expect("vector index lock") = Some(copy);
        }
    }
    // Rows were scanned (some perhaps set aside): not caught up yet.
    Ok(batch.len().max(1))
}

/// The work name under which versions the embedder could not take are set aside.
pub const EMBEDDING_WORK: &str = "embedding";

/// Embeds a batch; if the batch fails (an error or a panic), each text alone, so that one item that
/// breaks the model does not hold back the rest. Returns the embeddings of the texts that worked, in
/// order, and the indexes of those that did not.
fn embed_or_set_aside(embedder: &karavan_lang::Embedder, texts: &[String]) -> (Vec<Vec<f32>>, Vec<usize>) {
    let attempt = |texts: &[&str]| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| embedder.embed(texts, Role::Passage)))
            .ok()
            .and_then(Result::ok)
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    if let Some(all) = attempt(&refs) {
        return (all, Vec::new());
    }
    let (mut embeddings, mut failed) = (Vec::new(), Vec::new());
    for (index, text) in refs.iter().enumerate() {
        match attempt(&[text]) {
            Some(mut one) if !one.is_empty() => embeddings.push(one.remove(0)),
            _ => failed.push(index),
        }
    }
    (embeddings, failed)
}

/// Why one text cannot be embedded, for the set-aside record.
fn failed_reason(embedder: &karavan_lang::Embedder, text: &str) -> String {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| embedder.embed(&[text], Role::Passage))) {
        Ok(Err(error)) => format!("embedding failed: {error}"),
        Ok(Ok(_)) => "embedding failed in its batch".to_string(),
        Err(panic) => format!("embedding panicked: {}", crate::panic_message(panic.as_ref())),
    }
}

/// Opens the vector index for the installed embedding model (blocking); an error when none is.
fn open_for_model(models: &LanguageModels, vectors: &Vectors) -> Result<(), String> {
    let embedder = models.embedder()?;
    let name = models.embedding_model_id().unwrap_or_default();
    vectors.open(&name, embedder.dim());
    Ok(())
}

/// The embedder's deterministic step (blocking), as the engine runs it: opens the vector index for
/// the installed model if it is not open yet, then embeds one batch of what the store holds beyond
/// it; how many versions it took (0: caught up). An error when no embedding model is installed.
pub fn embed_step(state: &AppState) -> Result<usize, String> {
    if state.vectors().status().is_none() {
        open_for_model(state.language(), state.vectors())?;
    }
    catch_up_once(state.store().as_ref(), state.language(), state.vectors())
}

/// The least time between the starts of two rounds of the embedder when it has caught up.
const EMBED_ROUND_GAP: Duration = Duration::from_millis(100);

/// Keeps the vector index in step with the store while the server runs; waits for the embedding
/// model when it is not installed.
/// The embedder engine. It stops between batches when asked (the server saves the vector index after
/// the engines have stopped).
pub async fn run_embedder(state: AppState, mut context: crate::engine::EngineContext) {
    {
        let vectors = Arc::clone(state.vectors());
        let models = Arc::clone(state.language());
        let mut events = state.bus().subscribe();
        // Open the index once the model is known.
        loop {
            let (models_, vectors_) = (Arc::clone(&models), Arc::clone(&vectors));
            let opened = tokio::task::spawn_blocking(move || open_for_model(&models_, &vectors_)).await;
            match opened {
                Ok(Ok(())) => break,
                Ok(Err(message)) => tracing::info!(%message, "semantic search waits for the embedding model"),
                Err(error) => tracing::error!(%error, "vector index task failed"),
            }
            // The model may be installed while the server runs: look again now and then (not on
            // every publish: that would read the model directory for each).
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = context.stopped() => return,
            }
        }
        let mut saved_at = Instant::now();
        while !context.stopping() {
            events.drain();
            let started = tokio::time::Instant::now();
            let state_ = state.clone();
            let read = tokio::task::spawn_blocking(move || embed_step(&state_)).await;
            let caught_up = match read {
                Ok(Ok(0)) => true,
                Ok(Ok(_)) => false,
                Ok(Err(error)) => {
                    tracing::error!(%error, "embedding items failed; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    false
                }
                Err(error) => {
                    tracing::error!(%error, "vector index task failed");
                    true
                }
            };
            if caught_up || saved_at.elapsed() >= SAVE_EVERY {
                let vectors_ = Arc::clone(&vectors);
                let _ = tokio::task::spawn_blocking(move || vectors_.save()).await;
                saved_at = Instant::now();
            }
            if caught_up {
                tokio::select! {
                    _ = events.wait_for_from(started + EMBED_ROUND_GAP, Duration::from_secs(2), crate::bus::is_item) => {}
                    _ = context.stopped() => return,
                }
            }
        }
    }
}

/// Saves the vector index now (at shutdown).
pub fn save_now(vectors: &Vectors) {
    vectors.save();
}

/// Fuses rankings by reciprocal rank: each item scores the sum of 1 / (60 + rank) over the rankings
/// it appears in; best first.
pub fn reciprocal_rank_fusion(rankings: &[Vec<String>]) -> Vec<(String, f32)> {
    let mut scores: HashMap<&str, f32> = HashMap::new();
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut order = 0;
    for ranking in rankings {
        for (rank, id) in ranking.iter().enumerate() {
            *scores.entry(id).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
            first_seen.entry(id).or_insert_with(|| {
                order += 1;
                order
            });
        }
    }
    let mut fused: Vec<(String, f32)> = scores.into_iter().map(|(id, score)| (id.to_string(), score)).collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| first_seen[a.0.as_str()].cmp(&first_seen[b.0.as_str()])));
    fused
}

/// The items most similar to `query` that `audience` may see and pass the request's filters, best
/// first, at most `pool`.
fn nearest(
    search: &SearchIndex,
    vectors: &Vectors,
    request: &SearchRequest,
    audience: &Audience,
    query: &[f32],
    pool: usize,
    exclude: Option<&str>,
) -> ApiResult<Vec<(String, f32)>> {
    let failure = |error: karavan_search::SearchError| ApiError::internal("semantic search", error);
    let guard = vectors.index.read().expect("vector index lock");
    let Some(index) = guard.as_ref() else {
        return Err(not_installed("the vector index is still opening; try again in a moment".into()));
    };
    if let Some(allowed) = search.allowed_ids(request, audience, EXACT_LIMIT).map_err(failure)? {
        return Ok(index.exact(query, pool, &|key| allowed.contains(key) && Some(key) != exclude));
    }
    // Many items pass the filters: ask the graph for more than needed, keep those that pass.
    let others = index.len().saturating_sub(usize::from(exclude.is_some_and(|key| index.get(key).is_some())));
    let mut asked = (pool * 2).min(others.max(1));
    loop {
        let candidates = index.search(query, asked, &|key| Some(key) != exclude);
        // The graph gave fewer than asked: the walk cannot reach the rest (a graph over several
        // languages can hold clusters its entry point barely links to). Only a full scan is sure.
        let exhausted = candidates.len() < asked;
        let ids: Vec<String> = candidates.iter().map(|(id, _)| id.clone()).collect();
        let passed: HashSet<String> = search.filter_candidates(request, audience, &ids).map_err(failure)?;
        let kept: Vec<(String, f32)> = candidates.into_iter().filter(|(id, _)| passed.contains(id)).collect();
        if kept.len() >= pool {
            return Ok(kept.into_iter().take(pool).collect());
        }
        if exhausted || asked >= others {
            return exact_passing(search, index, request, audience, query, pool, exclude);
        }
        asked = (asked * 4).min(others);
    }
}

/// Every vector scored exactly, nearest first, keeping the first `pool` that pass the filters and
/// visibility (checked a chunk at a time): the answer when the graph cannot provide enough.
fn exact_passing(
    search: &SearchIndex,
    index: &VectorIndex,
    request: &SearchRequest,
    audience: &Audience,
    query: &[f32],
    pool: usize,
    exclude: Option<&str>,
) -> ApiResult<Vec<(String, f32)>> {
    let failure = |error: karavan_search::SearchError| ApiError::internal("semantic search", error);
    let all = index.exact(query, index.len(), &|key| Some(key) != exclude);
    let mut kept = Vec::with_capacity(pool);
    for chunk in all.chunks(1000) {
        let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
        let passed = search.filter_candidates(request, audience, &ids).map_err(failure)?;
        kept.extend(chunk.iter().filter(|(id, _)| passed.contains(id)).cloned());
        if kept.len() >= pool {
            break;
        }
    }
    kept.truncate(pool);
    Ok(kept)
}

/// A semantic or hybrid search (or "more like this", with `like` an item's vector) as `viewer`: the
/// same answer shape as keyword search.
pub async fn search_answer(
    state: &AppState,
    viewer: MemberId,
    request: SearchRequest,
    mode: Mode,
    like: Option<(String, Vec<f32>)>,
) -> ApiResult<SearchAnswer> {
    search_answer_like(state, viewer, request, mode, like, None).await
}

/// [`search_answer`], for "more like this" with the item's language: results in that language are
/// ranked as if [`SAME_LANGUAGE_PENALTY`] less similar (see [`prefer_other_languages`]).
async fn search_answer_like(
    state: &AppState,
    viewer: MemberId,
    request: SearchRequest,
    mode: Mode,
    like: Option<(String, Vec<f32>)>,
    like_language: Option<String>,
) -> ApiResult<SearchAnswer> {
    let models = Arc::clone(state.language());
    let embedder = models.embedder().map_err(not_installed)?;
    let (search, store, vectors) = (Arc::clone(state.search()), Arc::clone(state.store()), Arc::clone(state.vectors()));
    // A query's hits must reach the floor; "more like this" its own, on the score after the penalty
    // for the item's own language.
    let floor = if like.is_some() {
        like_floor(state.vectors())
    } else {
        similarity_floor(state.config().semantic_floor, state.vectors())
    };
    state
        .compute(move || -> ApiResult<SearchAnswer> {
            let (exclude, query) = match like {
                Some((id, vector)) => (Some(id), vector),
                None => {
                    let text = request.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
                    let text =
                        text.ok_or_else(|| ApiError::invalid("q: required for mode=semantic and mode=hybrid"))?;
                    let mut embedded =
                        embedder.embed(&[text], Role::Query).map_err(|e| ApiError::internal("embedding", e))?;
                    (None, embedded.pop().unwrap_or_default())
                }
            };
            let now = now();
            let agreements = store.agreements_of(&viewer).map_err(ApiError::from)?;
            let audience = audience(&viewer, &agreements, now);
            let pool = (request.offset + request.limit).clamp(POOL, MAX_POOL);
            let mut similar = nearest(&search, &vectors, &request, &audience, &query, pool, exclude.as_deref())?;
            if exclude.is_some() {
                similar = prefer_other_languages(&search, similar, like_language.as_deref(), floor)?;
            } else {
                similar.retain(|(_, score)| *score >= floor);
            }
            let ranked = match mode {
                Mode::Hybrid => {
                    let keyword_request = SearchRequest { offset: 0, limit: pool, ..request.clone() };
                    let keyword: SearchResults =
                        search.search(&keyword_request, &audience).map_err(crate::search::search_error)?;
                    let keyword_ids: Vec<String> = keyword.hits.into_iter().map(|h| h.item_id).collect();
                    let similar_ids: Vec<String> = similar.into_iter().map(|(id, _)| id).collect();
                    reciprocal_rank_fusion(&[keyword_ids, similar_ids])
                }
                _ => similar,
            };
            let results = search
                .ranked_results(&request, &audience, &ranked)
                .map_err(|error| ApiError::internal("semantic search", error))?;
            let mut answer = crate::search::answer(store.as_ref(), &viewer, now, &request, results)?;
            answer.mode = Some(mode);
            Ok(answer)
        })
        .await?
}

/// `GET /v1/items/{id}/similar`: items like this one, in any language, with the filters of
/// `GET /v1/search` (`lang`, `member`, `subject`, …), over what the caller may see.
pub async fn similar(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: RawQuery,
) -> ApiResult<Response> {
    let mut params = Params::parse(query)?;
    let mut request = parse_search_query(&mut params)?;
    if request.text.as_deref().is_some_and(|t| !t.trim().is_empty()) {
        return Err(ApiError::invalid("q: not taken here; the item is the query"));
    }
    request.text = None;
    request.limit = params.limit(20, 100)? as usize;
    params.finish()?;
    let id = ItemId::parse(&id)?;
    let viewer = caller.0.member.clone();
    let read = state.blocking(move |store| store.item(&viewer, &id, now())).await?;
    let (version, _) = crate::items::visible(read)?;
    let answer = similar_to(&state, caller.0.member.clone(), &version, request).await?;
    Ok(Json(answer.to_json()).into_response())
}

/// The items most like `version` (which `viewer` may see) that pass `request`'s filters: its vector
/// from the index, or embedded now if it has none yet.
pub async fn similar_to(
    state: &AppState,
    viewer: MemberId,
    version: &StoredVersion,
    request: SearchRequest,
) -> ApiResult<SearchAnswer> {
    let embedder = state.language().embedder().map_err(not_installed)?;
    let key = version.item_id.to_string();
    let stored =
        state.vectors().index.read().ok().and_then(|g| g.as_ref().and_then(|i| i.get(&key).map(<[f32]>::to_vec)));
    let vector = match stored {
        Some(vector) => vector,
        None => {
            let text = embedding_text(version).unwrap_or_default();
            state
                .compute(move || embedder.embed(&[text.as_str()], Role::Passage))
                .await?
                .map_err(|e| ApiError::internal("embedding", e))?
                .pop()
                .unwrap_or_default()
        }
    };
    let language = version.document.get("language").and_then(Value::as_str).map(str::to_string);
    search_answer_like(state, viewer, request, Mode::Semantic, Some((key, vector)), language).await
}

/// How much less similar an item in the query item's own language is taken to be when ranking
/// "more like this". The embedding model scores texts of one language (and script) close to each
/// other whatever they say: on the dev set a Chinese story's nearest other Chinese story scores 0.895
/// (median) and its nearest translation 0.869, so without this the same story in other languages came
/// first for 3 of 40 Chinese items (86.4 % of all 360). With 0.05: 37 of 40 and 98.6 % (see
/// BENCHMARKS.md). A copy of the same story in the same language (another agency's) scores well above
/// 0.95 and still comes first.
pub const SAME_LANGUAGE_PENALTY: f32 = 0.05;

/// Re-ranks similar items so that those in `language` (the item's, where it has one) count
/// [`SAME_LANGUAGE_PENALTY`] less, and keeps those whose score so counted reaches `floor`; the scores
/// shown stay the true similarities.
fn prefer_other_languages(
    search: &SearchIndex,
    similar: Vec<(String, f32)>,
    language: Option<&str>,
    floor: f32,
) -> ApiResult<Vec<(String, f32)>> {
    let ids: Vec<String> = similar.iter().map(|(id, _)| id.clone()).collect();
    let languages = match language {
        Some(_) => search.languages_of(&ids).map_err(|error| ApiError::internal("semantic search", error))?,
        None => Default::default(),
    };
    let mut ranked: Vec<(f32, (String, f32))> = similar
        .into_iter()
        .map(|(id, score)| {
            let same = language
                .is_some_and(|language| languages.get(&id).is_some_and(|l| karavan_domain::same_language(l, language)));
            (if same { score - SAME_LANGUAGE_PENALTY } else { score }, (id, score))
        })
        .filter(|(counted, _)| *counted >= floor)
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(ranked.into_iter().map(|(_, hit)| hit).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reciprocal_rank_fusion_rewards_agreement() {
        let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let fused = reciprocal_rank_fusion(&[ids(&["a", "b", "c"]), ids(&["c", "a", "d"])]);
        let order: Vec<&str> = fused.iter().map(|(id, _)| id.as_str()).collect();
        // a: 1/61 + 1/62; c: 1/63 + 1/61; b: 1/62; d: 1/63.
        assert_eq!(order, ["a", "c", "b", "d"]);
        assert!((fused[0].1 - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-6);
    }

    #[test]
    fn modes_parse_and_refuse_others() {
        assert_eq!(Mode::parse(None).unwrap(), Mode::Keyword);
        assert_eq!(Mode::parse(Some("hybrid")).unwrap(), Mode::Hybrid);
        assert!(Mode::parse(Some("vector")).unwrap_err().message.contains("keyword, semantic or hybrid"));
    }
}
