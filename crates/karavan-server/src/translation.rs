//! Machine translation on the wire: the translation model (loaded on first use), the workers that
//! drain the durable job queue the store fills at publish time, the read path of
//! `GET /v1/items/{id}?lang=` and where a translation stands, members' read languages and glossaries,
//! and the queue's status.
//!
//! Every version gets two jobs per language: its head (headlines and descriptions) and its body. The
//! store hands out every due head before any body, so a headline never waits behind long bodies;
//! bodies a reader waits for go first. A worker claims several jobs at once and translates those of
//! one language, source and glossary variant in one call to the model, so that it runs full batches.
//! A reader of an item whose body is not translated yet gets the translated head (made now if need
//! be: it is short) with the original body, and a status that says where the body stands; the read
//! never waits for a body.
//!
//! A translation is stored per (version, language, variant, part): the variant names the glossary
//! terms applied (empty: none), so members whose glossaries render an item's names differently each
//! get their own rendering, and members without matching terms share one. Sentences already translated
//! come from the store's segment cache, so a correction translates only what changed.
//!
//! Architecture invariant: translation runs on the blocking pool (never on the async threads), and a
//! translation is only ever served through a read that passed the visibility rule.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use karavan_domain::{LanguageTag, MemberId, Role, Timestamp, same_language};
use karavan_lang::translate::Text;
use karavan_lang::{ModelDir, ModelError, ModelKind, Precision, SegmentCache, Term, Translator};
use karavan_search::SearchIndex;
use karavan_store::{
    ClaimLimits, Glossary, JobOutcome, JobProgress, JobState, Store, StoredTranslation, StoredVersion, TranslationJob,
    TranslationPart, TranslationProgress,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::language::LanguageModels;
use crate::translation_http::HttpBackend;

/// IPTC's digital source type for content made by a trained model (machine translation).
pub const MACHINE_GENERATED: &str = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";
/// The text fields a translation replaces.
const FIELDS: [&str; 3] = ["headlines", "descriptions", "bodies"];
/// Attempts a job gets before it is marked failed.
const MAX_ATTEMPTS: u32 = 5;
/// Jobs a worker claims at once, by default: many heads (a sentence or two each), few bodies (tens of
/// sentences each, a batch of the model's size or more), so that a head published meanwhile waits for
/// at most one batch of bodies.
pub const BATCH: ClaimLimits = ClaimLimits { heads: 32, bodies: 4 };
/// The head part's beams by default: greedy (the wire bench's headline and description into seven
/// languages, int8 on 2 cores: p50 2.4 s greedy against 8.3 s at beam 4; BENCHMARKS.md).
pub const HEAD_BEAMS: usize = 1;
/// The weight of the newest job in the moving average of job durations.
const SMOOTHING: f64 = 0.3;
/// How long a worker holds a job before another may take it (a worker that died).
const LEASE: Duration = Duration::from_secs(15 * 60);

/// Translation settings.
#[derive(Debug, Clone)]
pub struct TranslationConfig {
    /// Jobs translated at once (each uses the model's own threads); 0 turns the workers off.
    pub workers: usize,
    /// How often idle workers look for jobs.
    pub poll: Duration,
    /// An HTTP endpoint to translate with instead of the local model.
    pub http: Option<crate::translation_http::HttpBackendConfig>,
    /// The precision the local model's linear layers are loaded in (`--translation-precision`).
    pub precision: Precision,
    /// How many jobs of each part a worker claims and translates at once with the local model
    /// ([`BATCH`]; with an HTTP endpoint, one of each).
    pub batch: ClaimLimits,
    /// The beams the local model searches with for the head part (`--translation-head-beams`): 1,
    /// greedy, by default, so that headlines are readable within seconds; bodies use the model's
    /// own (4).
    pub head_beams: usize,
}

impl Default for TranslationConfig {
    fn default() -> TranslationConfig {
        TranslationConfig {
            workers: 1,
            poll: Duration::from_secs(1),
            http: None,
            precision: Precision::Float32,
            batch: BATCH,
            head_beams: HEAD_BEAMS,
        }
    }
}

/// The translation model, loaded on first use; absent while none is installed (checked again at
/// most every 30 s, so a model imported while the server runs is picked up).
pub struct Translations {
    dir: Option<ModelDir>,
    loaded: Mutex<Loaded>,
    pub(crate) config: TranslationConfig,
    timings: Mutex<Timings>,
}

/// Moving averages of how long one job of each part took on this server, in seconds: what the
/// estimates readers see are made from. Only an estimate, so kept in memory (lost at a restart, and
/// each node's own: a node that translates nothing has none, and says so).
#[derive(Debug, Default)]
struct Timings {
    head: Option<f64>,
    body: Option<f64>,
}

enum Loaded {
    Not,
    Model(Arc<Engine>),
    Failed(String, Instant),
}

/// What translates: the local model, or the operator's HTTP endpoint; and the name translations record
/// (a local model loaded in int8 records its name with `+int8`: its renderings, and the sentences it
/// caches, are its own).
pub struct Engine {
    kind: EngineKind,
    pub model: String,
    /// The local model's beams for the head part.
    head_beams: usize,
}

/// The name a local model's translations record, and its segment cache key, in a precision.
fn recorded_name(name: &str, precision: Precision) -> String {
    match precision {
        Precision::Float32 => name.to_string(),
        other => format!("{name}+{}", other.as_str()),
    }
}

enum EngineKind {
    Local(Box<Translator>),
    Http(HttpBackend),
}

impl Engine {
    /// Whether it translates a language (an HTTP endpoint is asked and says so itself).
    pub fn supports(&self, tag: &str) -> bool {
        match &self.kind {
            EngineKind::Local(translator) => translator.language_code(tag).is_some(),
            EngineKind::Http(_) => true,
        }
    }

    /// Text values of `part` (HTML fragments where `html`), sentences from `cache` where it has them;
    /// the local model takes them in one call, batching across them, the head part with its own
    /// beams.
    fn texts(
        &self,
        texts: &[Text<'_>],
        (from, to): (&str, &str),
        part: TranslationPart,
        terms: &[Term],
        cache: Option<&dyn SegmentCache>,
    ) -> Result<Vec<String>, String> {
        match &self.kind {
            EngineKind::Local(translator) => translator
                .translate_many_beams(texts, from, to, terms, cache, self.beams(translator, part))
                .map_err(|e| e.to_string()),
            EngineKind::Http(backend) => texts
                .iter()
                .map(|text| self.http_text(backend, text.value, from, to, text.html, terms, cache))
                .collect(),
        }
    }

    /// The local model's beams for `part`.
    fn beams(&self, translator: &Translator, part: TranslationPart) -> usize {
        match part {
            TranslationPart::Head => self.head_beams,
            TranslationPart::Body => translator.options.num_beams,
        }
    }

    /// Makes the sentences of several requests from one source language that `cache` lacks, in shared
    /// batches, and keeps them there. Only the local model batches ([`Engine::batches`]); an HTTP
    /// endpoint takes texts one by one.
    fn warm(
        &self,
        from: &str,
        requests: &[karavan_lang::translate::Request<'_>],
        part: TranslationPart,
        cache: &dyn SegmentCache,
    ) -> Result<(), String> {
        match &self.kind {
            EngineKind::Local(translator) => {
                translator.warm(from, requests, cache, self.beams(translator, part)).map_err(|e| e.to_string())
            }
            EngineKind::Http(_) => Ok(()),
        }
    }

    /// Whether [`Engine::warm`] does anything.
    fn batches(&self) -> bool {
        matches!(self.kind, EngineKind::Local(_))
    }

    /// One text through the HTTP endpoint; the whole text is the cached segment (the endpoint sees
    /// whole texts).
    #[allow(clippy::too_many_arguments)]
    fn http_text(
        &self,
        backend: &HttpBackend,
        value: &str,
        from: &str,
        to: &str,
        html: bool,
        terms: &[Term],
        cache: Option<&dyn SegmentCache>,
    ) -> Result<String, String> {
        let key: [u8; 32] = {
            let mut hasher = Sha256::new();
            hasher.update(format!("karavan-http-1\0{}\0{from}\0{to}\0{html}\0", self.model));
            for term in terms {
                hasher.update(format!("{}\0{}\0", term.source, term.target));
            }
            hasher.update(value.as_bytes());
            hasher.finalize().into()
        };
        if let Some(Some(found)) = cache.map(|c| c.get(&[key]).pop().flatten()) {
            return Ok(found);
        }
        let translated = backend.translate(value, from, to, html, terms)?;
        if let Some(cache) = cache {
            cache.put(vec![(key, translated.clone())]);
        }
        Ok(translated)
    }
}

impl std::fmt::Debug for Translations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translations").field("dir", &self.dir.as_ref().map(ModelDir::root)).finish_non_exhaustive()
    }
}

impl Translations {
    pub fn new(dir: Option<PathBuf>, config: TranslationConfig) -> Translations {
        Translations { dir: dir.map(ModelDir::new), loaded: Mutex::new(Loaded::Not), config, timings: Mutex::default() }
    }

    /// The precision a local model is loaded in (`None` with an HTTP endpoint, which has its own).
    pub fn precision(&self) -> Option<Precision> {
        self.config.http.is_none().then_some(self.config.precision)
    }

    /// Whether the model is loaded now (without loading it).
    pub fn is_loaded(&self) -> bool {
        self.loaded.lock().is_ok_and(|loaded| matches!(*loaded, Loaded::Model(_)))
    }

    /// Adds a measurement: one job of `part` took `per_job` (a batch's time over its jobs).
    pub fn record_duration(&self, part: TranslationPart, per_job: Duration) {
        let Ok(mut timings) = self.timings.lock() else { return };
        let slot = match part {
            TranslationPart::Head => &mut timings.head,
            TranslationPart::Body => &mut timings.body,
        };
        let seconds = per_job.as_secs_f64();
        *slot = Some(slot.map_or(seconds, |average| average + SMOOTHING * (seconds - average)));
    }

    /// How long a job of `part` takes here, on recent average; `None` before any was measured.
    pub fn average_duration(&self, part: TranslationPart) -> Option<Duration> {
        let timings = self.timings.lock().ok()?;
        let seconds = match part {
            TranslationPart::Head => timings.head,
            TranslationPart::Body => timings.body,
        }?;
        Some(Duration::from_secs_f64(seconds))
    }

    /// The model, loading it if needed (blocking: call on the blocking pool).
    pub fn engine(&self) -> Result<Arc<Engine>, String> {
        let mut loaded = self.loaded.lock().map_err(|_| "translation model lock poisoned".to_string())?;
        match &*loaded {
            Loaded::Model(engine) => return Ok(Arc::clone(engine)),
            Loaded::Failed(message, at) if at.elapsed() < Duration::from_secs(30) => return Err(message.clone()),
            _ => {}
        }
        if let Some(http) = &self.config.http {
            let engine = HttpBackend::new(http.clone()).map(|backend| {
                Arc::new(Engine { model: backend.name(), kind: EngineKind::Http(backend), head_beams: 1 })
            })?;
            *loaded = Loaded::Model(Arc::clone(&engine));
            return Ok(engine);
        }
        let Some(dir) = &self.dir else {
            return Err("the translation model is not installed (no model directory is configured; import a \
                        checkpoint with `karavan models import DIR`)"
                .to_string());
        };
        let started = Instant::now();
        let precision = self.config.precision;
        let outcome = dir.find(ModelKind::Translation).and_then(|(model, path)| {
            let mut translator = Translator::load_with(&path, precision)?;
            // The name is the segment cache's key: int8 renderings are cached apart from float32 ones.
            translator.name = recorded_name(&model.name, precision);
            Ok(Engine {
                model: translator.name.clone(),
                kind: EngineKind::Local(Box::new(translator)),
                head_beams: self.config.head_beams.max(1),
            })
        });
        match outcome {
            Ok(engine) => {
                tracing::info!(model = %engine.model, precision = precision.as_str(), elapsed_ms = started.elapsed().as_millis() as u64, "translation model loaded");
                let engine = Arc::new(engine);
                *loaded = Loaded::Model(Arc::clone(&engine));
                Ok(engine)
            }
            Err(error) => {
                let message = match error {
                    ModelError::NotInstalled(_) => "the translation model is not installed (import an NLLB-200 or \
                                                    M2M100 checkpoint with `karavan models import DIR`)"
                        .to_string(),
                    other => format!("the translation model could not be loaded: {other}"),
                };
                tracing::warn!(%message, "translation not available");
                *loaded = Loaded::Failed(message.clone(), Instant::now());
                Err(message)
            }
        }
    }

    /// The installed model's name (or the HTTP endpoint's), without loading it.
    pub fn installed_model(&self) -> Option<String> {
        if let Some(http) = &self.config.http {
            return Some(http.name());
        }
        self.dir.as_ref()?.find(ModelKind::Translation).ok().map(|(model, _)| model.name)
    }
}

/// The store's segment cache as the translator sees it; a store error is a miss (logged), never a failure.
struct StoreCache<'a>(&'a dyn Store);

impl SegmentCache for StoreCache<'_> {
    fn get(&self, keys: &[[u8; 32]]) -> Vec<Option<String>> {
        match self.0.cached_segments(keys) {
            Ok(found) => {
                let found: std::collections::HashMap<[u8; 32], String> = found.into_iter().collect();
                keys.iter().map(|k| found.get(k).cloned()).collect()
            }
            Err(error) => {
                tracing::warn!(%error, "translation cache read failed");
                vec![None; keys.len()]
            }
        }
    }

    fn put(&self, entries: Vec<([u8; 32], String)>) {
        if let Err(error) = self.0.cache_segments(entries) {
            tracing::warn!(%error, "translation cache write failed");
        }
    }
}

/// The glossary terms of `glossary` found in `text` (case-insensitively), and the variant key they make.
pub fn applicable_terms(glossaries: &[&Glossary], text: &str) -> (String, Vec<Term>) {
    let lower = text.to_lowercase();
    let mut terms: BTreeMap<String, String> = BTreeMap::new();
    for glossary in glossaries {
        for term in &glossary.terms {
            if !term.source.trim().is_empty() && lower.contains(&term.source.to_lowercase()) {
                terms.entry(term.source.clone()).or_insert_with(|| term.target.clone());
            }
        }
    }
    if terms.is_empty() {
        return (String::new(), Vec::new());
    }
    let mut hasher = Sha256::new();
    for (source, target) in &terms {
        hasher.update(source.as_bytes());
        hasher.update([0]);
        hasher.update(target.as_bytes());
        hasher.update([1]);
    }
    let digest = hasher.finalize();
    let variant = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    (variant, terms.into_iter().map(|(source, target)| Term { source, target }).collect())
}

/// Whether a glossary applies to translating from `source` into `target`.
fn glossary_applies(glossary: &Glossary, source: &str, target: &str) -> bool {
    same_language(&glossary.source_language, source) && same_language(&glossary.target_language, target)
}

/// Whether a document has text in `part`'s fields.
fn has_text(document: &Map<String, Value>, part: TranslationPart) -> bool {
    part.fields().iter().any(|key| document.get(*key).and_then(Value::as_array).is_some_and(|list| !list.is_empty()))
}

/// The entries of a document's text field (`headlines`, `bodies`, …).
fn entries(document: &Map<String, Value>, key: &str) -> Vec<Map<String, Value>> {
    let list = document.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    list.iter().filter_map(Value::as_object).cloned().collect()
}

/// The texts of `part` of several documents, in order, each with whether it is HTML.
fn part_texts(documents: &[&Map<String, Value>], part: TranslationPart) -> Vec<(String, bool)> {
    let mut texts = Vec::new();
    for document in documents {
        for key in part.fields() {
            for entry in entries(document, key) {
                let value = entry.get("value").and_then(Value::as_str).unwrap_or_default().to_string();
                let html = entry.get("contentType").and_then(Value::as_str).is_some_and(|t| t.contains("html"));
                texts.push((value, html));
            }
        }
    }
    texts
}

/// [`part_texts`] as the translator takes them.
fn as_texts(texts: &[(String, bool)]) -> Vec<Text<'_>> {
    texts.iter().map(|(value, html)| Text { value, html: *html }).collect()
}

/// The translated fields of `part` of several documents, from `from` into `to`, in one call to the
/// engine (so that the model batches across them): each entry translated (HTML text node by text
/// node), roles and content types kept, counts of characters and words dropped.
pub fn translate_parts(
    engine: &Engine,
    documents: &[&Map<String, Value>],
    part: TranslationPart,
    from: &str,
    to: &str,
    terms: &[Term],
    cache: Option<&dyn SegmentCache>,
) -> Result<Vec<Map<String, Value>>, String> {
    let texts = part_texts(documents, part);
    let request = as_texts(&texts);
    let mut translated = engine.texts(&request, (from, to), part, terms, cache)?.into_iter();
    let mut out = Vec::with_capacity(documents.len());
    for document in documents {
        let mut fields = Map::new();
        for key in part.fields() {
            if !document.get(*key).is_some_and(Value::is_array) {
                continue;
            }
            let mut list = Vec::new();
            for entry in entries(document, key) {
                let mut rendered: Map<String, Value> = entry
                    .into_iter()
                    .filter(|(name, _)| name != "charCount" && name != "wordCount" && name != "value")
                    .collect();
                rendered.insert("value".to_string(), Value::String(translated.next().unwrap_or_default()));
                list.push(Value::Object(rendered));
            }
            fields.insert(key.to_string(), Value::Array(list));
        }
        out.push(fields);
    }
    Ok(out)
}

/// Makes the translation of `parts` of a version now, for one reader's glossary variant (blocking).
#[allow(clippy::too_many_arguments)]
fn make_translation(
    engine: &Engine,
    store: &dyn Store,
    version: &StoredVersion,
    source: &str,
    target: &str,
    variant: String,
    terms: &[Term],
    parts: &[TranslationPart],
) -> Result<StoredTranslation, String> {
    let cache = StoreCache(store);
    let mut fields = Map::new();
    for part in parts {
        let mut made = translate_parts(engine, &[&version.document], *part, source, target, terms, Some(&cache))?;
        fields.extend(made.pop().unwrap_or_default());
    }
    Ok(StoredTranslation {
        seq: version.seq,
        language: target.to_string(),
        variant,
        source_language: source.to_string(),
        model: engine.model.clone(),
        fields,
        created_at: crate::now(),
        parts: parts.to_vec(),
    })
}

/// The translated text of stored translations, for the search index: (language, text) per translation.
pub fn index_texts(translations: &[StoredTranslation]) -> Vec<(String, String)> {
    translations
        .iter()
        .map(|t| {
            let mut parts = Vec::new();
            for key in FIELDS {
                parts.extend(crate::search::texts(&t.fields, key));
            }
            (t.language.clone(), parts.join("\n"))
        })
        .collect()
}

/// Everything a worker needs.
#[derive(Clone)]
struct Worker {
    /// The lease holder name of this worker.
    holder: String,
    store: Arc<dyn Store>,
    search: Arc<SearchIndex>,
    models: Arc<LanguageModels>,
    translations: Arc<Translations>,
    bus: Arc<dyn crate::bus::EventBus>,
}

/// Jobs of a batch translated in one call to the engine: one source and target language, one glossary
/// variant.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    source: String,
    target: String,
    variant: String,
}

/// The glossary terms of a group, and its jobs (indexes into the batch).
struct Group {
    terms: Vec<Term>,
    jobs: Vec<usize>,
}

/// A claimed job ready to translate: its source language and the renderings to make (glossary
/// variant → terms).
struct Prepared {
    source: String,
    variants: BTreeMap<String, Vec<Term>>,
}

impl Worker {
    /// Translates a batch of claimed jobs, heads before bodies, and records how each ended (blocking).
    fn run(&self, jobs: Vec<TranslationJob>) {
        let (heads, bodies): (Vec<_>, Vec<_>) = jobs.into_iter().partition(|job| job.part == TranslationPart::Head);
        for (part, jobs) in [(TranslationPart::Head, heads), (TranslationPart::Body, bodies)] {
            if !jobs.is_empty() {
                self.run_part(part, jobs);
            }
        }
    }

    /// Translates jobs of one part: those of one source language, target language and glossary
    /// variant in one call to the engine.
    fn run_part(&self, part: TranslationPart, jobs: Vec<TranslationJob>) {
        let started = Instant::now();
        let mut results: Vec<Result<Vec<StoredTranslation>, String>> = Vec::with_capacity(jobs.len());
        let mut prepared: Vec<Option<Prepared>> = Vec::with_capacity(jobs.len());
        let mut glossaries: BTreeMap<String, Vec<Glossary>> = BTreeMap::new();
        let engine = self.translations.engine();
        for job in &jobs {
            let outcome = match &engine {
                Ok(engine) => self.prepare(engine, job, &mut glossaries),
                Err(error) => Err(error.clone()),
            };
            match outcome {
                Ok(Some(ready)) => {
                    results.push(Ok(Vec::new()));
                    prepared.push(Some(ready));
                }
                Ok(None) => {
                    results.push(Ok(Vec::new()));
                    prepared.push(None);
                }
                Err(error) => {
                    results.push(Err(error));
                    prepared.push(None);
                }
            }
        }
        // Groups of jobs translated together: those of one source, target and glossary variant.
        let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
        for (index, ready) in prepared.iter().enumerate() {
            let Some(ready) = ready else { continue };
            for (variant, terms) in &ready.variants {
                let key = GroupKey {
                    source: ready.source.clone(),
                    target: jobs[index].language.clone(),
                    variant: variant.clone(),
                };
                groups.entry(key).or_insert_with(|| Group { terms: terms.clone(), jobs: Vec::new() }).jobs.push(index);
            }
        }
        if let Ok(engine) = &engine {
            let cache = StoreCache(self.store.as_ref());
            // The groups of one source language go to the model together first (one story's reader
            // languages in shared batches, not one run per language); each group's own call below
            // then finds its sentences in the cache. A failure here is left to those calls.
            let mut by_source: BTreeMap<&str, Vec<(&GroupKey, &Group)>> = BTreeMap::new();
            for (key, group) in &groups {
                by_source.entry(key.source.as_str()).or_default().push((key, group));
            }
            let batched = by_source.into_iter().filter(|(_, members)| engine.batches() && members.len() > 1);
            for (source, members) in batched {
                let texts: Vec<Vec<(String, bool)>> = members
                    .iter()
                    .map(|(_, group)| {
                        let documents: Vec<&Map<String, Value>> =
                            group.jobs.iter().map(|&i| &jobs[i].version.document).collect();
                        part_texts(&documents, part)
                    })
                    .collect();
                let texts: Vec<Vec<Text<'_>>> = texts.iter().map(|texts| as_texts(texts)).collect();
                let requests: Vec<karavan_lang::translate::Request<'_>> = members
                    .iter()
                    .zip(&texts)
                    .map(|((key, group), texts)| karavan_lang::translate::Request {
                        texts,
                        to: &key.target,
                        glossary: &group.terms,
                    })
                    .collect();
                if let Err(error) = engine.warm(source, &requests, part, &cache) {
                    tracing::debug!(%error, source, "translating a part's languages together failed; one by one");
                }
            }
            for (key, group) in groups {
                let translate = |members: &[usize]| {
                    let documents: Vec<&Map<String, Value>> =
                        members.iter().map(|&i| &jobs[i].version.document).collect();
                    translate_parts(engine, &documents, part, &key.source, &key.target, &group.terms, Some(&cache))
                };
                // A failure of the whole group is tried again job by job, so that one job's text does
                // not fail the others.
                let mut made = Vec::with_capacity(group.jobs.len());
                match translate(&group.jobs) {
                    Ok(fields) => made.extend(group.jobs.iter().copied().zip(fields.into_iter().map(Ok))),
                    Err(_) if group.jobs.len() > 1 => {
                        for &index in &group.jobs {
                            made.push((index, translate(&[index]).map(|mut fields| fields.pop().unwrap_or_default())));
                        }
                    }
                    Err(error) => made.push((group.jobs[0], Err(error))),
                }
                for (index, fields) in made {
                    let Ok(done) = &mut results[index] else { continue };
                    match fields {
                        Ok(fields) => done.push(StoredTranslation {
                            seq: jobs[index].version.seq,
                            language: key.target.clone(),
                            variant: key.variant.clone(),
                            source_language: key.source.clone(),
                            model: engine.model.clone(),
                            fields,
                            created_at: crate::now(),
                            parts: vec![part],
                        }),
                        Err(error) => results[index] = Err(error),
                    }
                }
            }
        }
        let translated =
            prepared.iter().zip(&results).filter(|(ready, result)| ready.is_some() && result.is_ok()).count();
        if translated > 0 {
            self.translations.record_duration(part, started.elapsed() / translated as u32);
        }
        for (job, result) in jobs.into_iter().zip(results) {
            self.record(job, result);
        }
    }

    /// What a job needs translated: `None` when nothing (a superseded version no reader waits for, a
    /// kill, an item already in the language), else its source language and renderings.
    fn prepare(
        &self,
        engine: &Engine,
        job: &TranslationJob,
        glossaries: &mut BTreeMap<String, Vec<Glossary>>,
    ) -> Result<Option<Prepared>, String> {
        let version = &job.version;
        if (!job.current && !job.wanted) || version.pub_status == karavan_domain::PubStatus::Canceled {
            return Ok(None);
        }
        let Some(source) = crate::language::declared_or_detected_language(&version.document, &self.models) else {
            return Err("the item does not say its language and it could not be identified".to_string());
        };
        if same_language(&source, &job.language) {
            return Ok(None);
        }
        for tag in [&source, &job.language] {
            if !engine.supports(tag) {
                return Err(format!("the translation model {} does not translate {tag:?}", engine.model));
            }
        }
        // One rendering without glossary terms, and one per distinct set of terms members apply.
        if !glossaries.contains_key(&job.language) {
            let into = self.store.glossaries_into(&job.language).map_err(|e| e.to_string())?;
            glossaries.insert(job.language.clone(), into);
        }
        let text = crate::language::item_text(&version.document);
        let mut by_member: BTreeMap<MemberId, Vec<&Glossary>> = BTreeMap::new();
        for glossary in glossaries[&job.language].iter().filter(|g| glossary_applies(g, &source, &job.language)) {
            by_member.entry(glossary.member.clone()).or_default().push(glossary);
        }
        let mut variants: BTreeMap<String, Vec<Term>> = BTreeMap::new();
        variants.insert(String::new(), Vec::new());
        for member_glossaries in by_member.values() {
            let (variant, terms) = applicable_terms(member_glossaries, &text);
            variants.entry(variant).or_insert(terms);
        }
        Ok(Some(Prepared { source, variants }))
    }

    /// Records how a job ended, indexes what it stored and tells pages waiting for it.
    fn record(&self, job: TranslationJob, result: Result<Vec<StoredTranslation>, String>) {
        let outcome = match result {
            Ok(translations) => JobOutcome::Done(translations),
            Err(error) if job.attempts >= MAX_ATTEMPTS => JobOutcome::Failed { error },
            Err(error) => {
                let backoff = 30_000_000i64 << job.attempts.min(8);
                JobOutcome::Retry { error, retry_at: Timestamp(crate::now().micros() + backoff) }
            }
        };
        let stored = matches!(&outcome, JobOutcome::Done(t) if !t.is_empty());
        let (item, part) = (&job.version.item_id, job.part.as_str());
        match &outcome {
            JobOutcome::Done(t) => {
                tracing::info!(job = job.id, %item, part, language = %job.language, renderings = t.len(), "translated")
            }
            JobOutcome::Retry { error, .. } | JobOutcome::Failed { error } => {
                tracing::warn!(job = job.id, %item, part, language = %job.language, %error, attempts = job.attempts, "translation failed")
            }
        }
        let finished = !matches!(outcome, JobOutcome::Retry { .. });
        if let Err(error) = self.store.finish_translation_job(&self.holder, job.id, outcome) {
            tracing::error!(%error, job = job.id, "could not record a translation job");
            return;
        }
        if stored
            && let Err(error) =
                crate::search::index_version(self.store.as_ref(), &self.search, &self.models, &job.version)
        {
            tracing::warn!(%error, %item, "could not index a translation");
        }
        if finished {
            self.bus.publish(crate::bus::Event::Translated { seq: job.version.seq });
        }
    }

    /// The worker named `name` of this process (its lease holder name).
    fn new(state: &AppState, name: &str) -> Worker {
        Worker {
            holder: state.holder(name),
            store: Arc::clone(state.store()),
            search: Arc::clone(state.search()),
            models: Arc::clone(state.language()),
            translations: Arc::clone(state.translations()),
            bus: Arc::clone(state.bus()),
        }
    }

    /// The translation worker's deterministic step (blocking): claims a batch of jobs by lease (every
    /// due head before any body) and translates and records them. `None` when no translation model is
    /// installed (nothing is claimed: jobs wait in the queue); otherwise how many jobs were done.
    /// Tests drive it with [`translate_step`].
    fn step(&self) -> Option<Result<usize, karavan_store::StoreError>> {
        self.translations.installed_model()?;
        let now = crate::now();
        let lease = Timestamp(now.micros() + LEASE.as_micros() as i64);
        // An HTTP endpoint translates text by text: a batch gains nothing there and would hold the jobs
        // of other workers (and nodes) behind one.
        let batch = match self.translations.config.http {
            Some(_) => ClaimLimits::each(1),
            None => self.translations.config.batch,
        };
        Some(self.store.claim_translation_jobs(&self.holder, now, lease, batch).map(|jobs| {
            let claimed = jobs.len();
            if claimed > 0 {
                self.run(jobs);
            }
            claimed
        }))
    }
}

/// How often a worker looks for a translation model while none is installed.
const NO_MODEL_LOOK_AGAIN: Duration = Duration::from_secs(5);
/// The least time between two looks for jobs prompted by new items.
const TRANSLATE_ROUND_GAP: Duration = Duration::from_millis(50);

/// One step of a translation worker named `name` (blocking), as the engine runs it: `None` when no
/// model is installed, else how many jobs it did (one batch: every due head before any body).
pub fn translate_step(state: &AppState, name: &str) -> Option<Result<usize, karavan_store::StoreError>> {
    Worker::new(state, name).step()
}

/// One translation worker engine: claims a batch of jobs by lease, translates them on the blocking
/// pool, records them. `--translation-workers` of them run, each its own engine and lease holder
/// (`name`). Woken by item and glossary / read-language events, and by a reader who waits for a body
/// (`Event::TranslationWanted`); looks again every `poll` in any case.
pub async fn run_worker(state: AppState, name: &'static str, mut context: crate::engine::EngineContext) {
    let config = state.translations().config.clone();
    let mut events = state.bus().subscribe();
    let worker = Worker::new(&state, name);
    // Jobs an earlier run of this engine held (it panicked) are queued again at once.
    let (store, holder) = (Arc::clone(&worker.store), worker.holder.clone());
    let _ = tokio::task::spawn_blocking(move || store.release_translation_jobs(&holder)).await;
    while !context.stopping() {
        events.drain();
        let started = tokio::time::Instant::now();
        let stepped = {
            let worker = worker.clone();
            tokio::task::spawn_blocking(move || worker.step()).await
        };
        match stepped {
            Ok(Some(Ok(done))) if done > 0 => continue,
            Ok(Some(Ok(_))) => {}
            Ok(None) => {
                // No model installed: look again now and then, not on every publish (each look reads
                // the model directory).
                tokio::select! {
                    _ = tokio::time::sleep(NO_MODEL_LOOK_AGAIN) => {}
                    _ = context.stopped() => {}
                }
                continue;
            }
            Ok(Some(Err(error))) => tracing::warn!(%error, "could not claim translation jobs"),
            Err(error) => tracing::error!(%error, "translation worker task failed"),
        }
        let wanted = |event: &crate::bus::Event| {
            use crate::bus::{ConfigChange, Event};
            matches!(
                event,
                Event::Item { .. }
                    | Event::TranslationWanted
                    | Event::Config(ConfigChange::Glossaries | ConfigChange::ReadLanguages)
            )
        };
        tokio::select! {
            _ = events.wait_for_from(started + TRANSLATE_ROUND_GAP, config.poll, wanted) => {}
            _ = context.stopped() => {}
        }
    }
    // Stopping between jobs: hand back anything still held (nothing, unless a record failed).
    let _ = tokio::task::spawn_blocking(move || worker.store.release_translation_jobs(&worker.holder)).await;
}

/// Where one part of a translation stands for a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartStatus {
    /// Translated (for the reader's glossary variant).
    Done,
    Queued,
    Running,
    /// Failed for good.
    Failed,
    /// Neither made nor queued (reading the item with `?lang=` has it made).
    None,
}

impl PartStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PartStatus::Done => "done",
            PartStatus::Queued => "queued",
            PartStatus::Running => "running",
            PartStatus::Failed => "failed",
            PartStatus::None => "none",
        }
    }
}

/// Where the translation of a version into a language stands for one reader: each part, and for a
/// body still to come its place in the queue (1: next; 0: being translated) and about how long until
/// it is done, from this server's recent job durations (`None`: no measurement yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationStatus {
    pub language: String,
    pub headline: PartStatus,
    pub body: PartStatus,
    pub position: Option<u64>,
    pub estimated_seconds: Option<u64>,
}

impl TranslationStatus {
    /// The API's JSON of it.
    pub fn json(&self) -> Value {
        json!({
            "language": self.language,
            "headline": self.headline.as_str(),
            "body": self.body.as_str(),
            "position": self.position,
            "estimatedSeconds": self.estimated_seconds,
        })
    }

    /// The `Karavan-Translation-Status` header of it (a structured-field dictionary).
    pub fn header(&self) -> String {
        let mut header = format!("headline={}, body={}", self.headline.as_str(), self.body.as_str());
        if let Some(position) = self.position {
            header.push_str(&format!(", position={position}"));
        }
        if let Some(seconds) = self.estimated_seconds {
            header.push_str(&format!(", estimated-seconds={seconds}"));
        }
        header
    }

    /// Whether the whole item is translated.
    pub fn complete(&self) -> bool {
        self.headline == PartStatus::Done && self.body == PartStatus::Done
    }
}

/// The translation a reader gets: what is stored for the reader's glossary variant (the head at
/// least; the body when it is done) and where the rest stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub translation: StoredTranslation,
    pub status: TranslationStatus,
}

/// A part's status from what is stored for the reader and its job.
fn part_status(stored: Option<&StoredTranslation>, part: TranslationPart, job: Option<JobProgress>) -> PartStatus {
    if stored.is_some_and(|t| t.has(part)) {
        return PartStatus::Done;
    }
    match job.map(|j| j.state) {
        Some(JobState::Queued) => PartStatus::Queued,
        Some(JobState::Running) => PartStatus::Running,
        Some(JobState::Failed) => PartStatus::Failed,
        // Done, yet not for this reader's variant; or no job.
        Some(JobState::Done) | None => PartStatus::None,
    }
}

/// The status of a translation for a reader, with the body's place in the queue and an estimate.
fn status_of(
    translations: &Translations,
    language: &str,
    stored: Option<&StoredTranslation>,
    progress: &TranslationProgress,
    now: Timestamp,
) -> TranslationStatus {
    let headline = part_status(stored, TranslationPart::Head, progress.head);
    let body = part_status(stored, TranslationPart::Body, progress.body);
    let (head_average, body_average) =
        (translations.average_duration(TranslationPart::Head), translations.average_duration(TranslationPart::Body));
    let workers = translations.config.workers.max(1) as f64;
    let (position, estimate) = match (body, progress.body) {
        (PartStatus::Queued, Some(JobProgress { ahead: Some(ahead), .. })) => {
            let estimate = body_average.map(|body| {
                let heads = head_average.unwrap_or_default().as_secs_f64() * ahead.heads as f64;
                (heads + body.as_secs_f64() * (ahead.bodies + 1) as f64) / workers
            });
            (Some(ahead.bodies + 1), estimate)
        }
        (PartStatus::Running, Some(JobProgress { started_at, .. })) => {
            let elapsed = started_at.map_or(0.0, |at| (now.micros() - at.micros()).max(0) as f64 / 1e6);
            (Some(0), body_average.map(|body| body.as_secs_f64() - elapsed))
        }
        _ => (None, None),
    };
    TranslationStatus {
        language: language.to_string(),
        headline,
        body,
        position,
        // At least a second while something is still to come.
        estimated_seconds: estimate.map(|seconds| seconds.ceil().max(1.0) as u64),
    }
}

/// The source language of a version, its reader's glossary variant and terms into `language`; `None`
/// when it is already in that language.
fn reader_rendering(
    store: &dyn Store,
    models: &LanguageModels,
    viewer: &MemberId,
    version: &StoredVersion,
    language: &str,
) -> Result<Option<(String, String, Vec<Term>)>, ApiError> {
    let Some(source) = crate::language::declared_or_detected_language(&version.document, models) else {
        return Err(ApiError::invalid(
            "lang: the item does not say its language and it could not be identified, so it cannot be translated",
        ));
    };
    if same_language(&source, language) {
        return Ok(None);
    }
    let glossaries = store.glossaries(viewer)?;
    let mine: Vec<&Glossary> = glossaries.iter().filter(|g| glossary_applies(g, &source, language)).collect();
    let (variant, terms) = applicable_terms(&mine, &crate::language::item_text(&version.document));
    Ok(Some((source, variant, terms)))
}

/// The stored machine translations of listed versions' headlines into `language`, as `viewer` reads
/// them (the variant of their glossary terms), by version seq: (headline, model). For the wire: only
/// what is stored (the head jobs make every reader language's soon after a publish); nothing is
/// translated here. The versions must be ones `viewer` may read.
pub fn listed_headlines(
    store: &dyn Store,
    models: &LanguageModels,
    viewer: &MemberId,
    versions: &[&StoredVersion],
    language: &str,
) -> karavan_store::Result<std::collections::HashMap<i64, (String, String)>> {
    let glossaries = store.glossaries(viewer)?;
    let mut wanted: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    for version in versions {
        let Some(source) = crate::language::declared_or_detected_language(&version.document, models) else { continue };
        if same_language(&source, language) {
            continue;
        }
        let mine: Vec<&Glossary> = glossaries.iter().filter(|g| glossary_applies(g, &source, language)).collect();
        let variant = if mine.is_empty() {
            String::new()
        } else {
            applicable_terms(&mine, &crate::language::item_text(&version.document)).0
        };
        wanted.insert(version.seq, variant);
    }
    let seqs: Vec<i64> = wanted.keys().copied().collect();
    let mut found = std::collections::HashMap::new();
    if seqs.is_empty() {
        return Ok(found);
    }
    for translation in store.translations(&seqs)? {
        let fits = wanted.get(&translation.seq).is_some_and(|variant| *variant == translation.variant);
        if !fits || translation.language != language || !translation.has(TranslationPart::Head) {
            continue;
        }
        if let Some(headline) =
            crate::search::texts(&translation.fields, "headlines").into_iter().find(|h| !h.trim().is_empty())
        {
            found.insert(translation.seq, (headline, translation.model.clone()));
        }
    }
    Ok(found)
}

fn stored_rendering(
    store: &dyn Store,
    version: &StoredVersion,
    language: &str,
    variant: &str,
) -> Result<Option<StoredTranslation>, ApiError> {
    Ok(store.translations(&[version.seq])?.into_iter().find(|t| t.language == language && t.variant == variant))
}

/// A version as `viewer` reads it in `language` (blocking): the stored translation for the viewer's
/// glossary terms, its head made now if need be (short: a headline and a description), never its
/// body, which a worker makes: the body's job is marked wanted (claimed before every body no one waits
/// for), or made when there is none. A kill notice and a version without a body are made whole now.
/// `None`: the item is already in that language.
pub fn translated(
    store: &dyn Store,
    context: &crate::wire::ReadContext,
    viewer: &MemberId,
    version: &StoredVersion,
    language: &str,
) -> Result<Option<Translated>, ApiError> {
    let (translations, models) = (context.translations.as_ref(), context.models.as_ref());
    let Some((source, variant, terms)) = reader_rendering(store, models, viewer, version, language)? else {
        return Ok(None);
    };
    let mut stored = stored_rendering(store, version, language, &variant)?;
    let whole_now = version.pub_status == karavan_domain::PubStatus::Canceled
        || !has_text(&version.document, TranslationPart::Body);
    let missing: Vec<TranslationPart> = TranslationPart::ALL
        .into_iter()
        .filter(|part| !stored.as_ref().is_some_and(|t| t.has(*part)))
        .filter(|part| *part == TranslationPart::Head || whole_now)
        .collect();
    if !missing.is_empty() {
        let engine = translations.engine().map_err(crate::language::not_installed)?;
        for tag in [source.as_str(), language] {
            if !engine.supports(tag) {
                return Err(ApiError::invalid(format!(
                    "lang: the translation model {} does not translate {tag:?}",
                    engine.model
                )));
            }
        }
        let made = make_translation(&engine, store, version, &source, language, variant.clone(), &terms, &missing)
            .map_err(|e| {
                ApiError::new(
                    crate::error::ErrorCode::Unavailable,
                    format!("the item could not be translated now: {e}"),
                )
            })?;
        store.put_translation(made)?;
        if let Err(error) = crate::search::index_version(store, &context.search, models, version) {
            tracing::warn!(%error, item = %version.item_id, "could not index a translation");
        }
        stored = stored_rendering(store, version, language, &variant)?;
    }
    let Some(stored) = stored else {
        return Err(ApiError::internal("reading a translation just stored", "not found"));
    };
    let waiting = !stored.has(TranslationPart::Body);
    if waiting {
        // A reader waits for the body: its job goes first (made now if there is none, e.g. for a
        // language no member reads).
        let queued = store.prioritize_translation(version.seq, language)?;
        if !queued && store.enqueue_translation(version.seq, language)? {
            store.prioritize_translation(version.seq, language)?;
        }
    }
    let now = crate::now();
    let progress = store.translation_progress(viewer, version.seq, language, now)?;
    let status = status_of(translations, language, Some(&stored), &progress, now);
    if waiting {
        // The workers look now rather than at their next poll.
        context.bus.publish(crate::bus::Event::TranslationWanted);
    }
    Ok(Some(Translated { translation: stored, status }))
}

/// Where the translation of a version into `language` stands for `viewer`, without making or queuing
/// anything (blocking). `None`: the item is already in that language.
pub fn translation_status(
    store: &dyn Store,
    translations: &Translations,
    models: &LanguageModels,
    viewer: &MemberId,
    version: &StoredVersion,
    language: &str,
) -> Result<Option<TranslationStatus>, ApiError> {
    let Some((_, variant, _)) = reader_rendering(store, models, viewer, version, language)? else {
        return Ok(None);
    };
    let stored = stored_rendering(store, version, language, &variant)?;
    let now = crate::now();
    let progress = store.translation_progress(viewer, version.seq, language, now)?;
    Ok(Some(status_of(translations, language, stored.as_ref(), &progress, now)))
}

/// The ninjs document of a translation: the original's metadata with the translated text, the
/// target language, IPTC's digital source type for machine-generated content naming the model, and
/// the original as an association (its uri, language, headlines and, with the server's public URL,
/// where to read it).
pub fn translated_document(
    version: &StoredVersion,
    translation: &StoredTranslation,
    original_href: Option<&str>,
) -> Map<String, Value> {
    let Value::Object(original) = crate::wire::ninjs(version) else { unreachable!("ninjs() returns an object") };
    let mut document = original.clone();
    // Only the parts translated are replaced: a body not translated yet stays the original's.
    for part in &translation.parts {
        for key in part.fields() {
            document.remove(*key);
        }
    }
    for (key, value) in &translation.fields {
        document.insert(key.clone(), value.clone());
    }
    let only_head = !translation.has(TranslationPart::Body);
    document.insert(
        "uri".to_string(),
        json!(format!("urn:karavan:translation:{}:{}:{}", version.item_id, version.seq, translation.language)),
    );
    document.insert("language".to_string(), json!(translation.language));
    document.insert(
        "digitalSourceType".to_string(),
        json!({
            "uri": MACHINE_GENERATED,
            "name": if only_head {
                format!(
                    "Machine translation from {} by {} (headlines and descriptions; the body is the original's \
                     until its translation is done)",
                    translation.source_language, translation.model
                )
            } else {
                format!("Machine translation from {} by {}", translation.source_language, translation.model)
            },
        }),
    );
    let mut link = Map::new();
    link.insert("name".to_string(), json!("original"));
    link.insert("rel".to_string(), json!("translationOf"));
    for key in ["uri", "version", "language", "headlines", "altIds"] {
        if let Some(value) = original.get(key) {
            link.insert(key.to_string(), value.clone());
        }
    }
    link.entry("language").or_insert_with(|| json!(translation.source_language));
    if let Some(href) = original_href {
        link.insert(
            "renditions".to_string(),
            json!([{ "name": "original", "href": href, "contentType": "application/json" }]),
        );
    }
    let mut associations = match document.remove("associations") {
        Some(Value::Array(list)) => list,
        _ => Vec::new(),
    };
    associations.insert(0, Value::Object(link));
    document.insert("associations".to_string(), Value::Array(associations));
    document
}

/// A `lang` query value: a BCP 47 tag.
pub fn parse_lang(value: &str) -> ApiResult<String> {
    LanguageTag::parse(value)
        .map(|t| t.as_str().to_string())
        .map_err(|e| ApiError::invalid(format!("lang: {}", e.message)))
}

/// A body field that must be an array.
fn array_field<'a>(object: &'a Map<String, Value>, name: &str) -> ApiResult<&'a Vec<Value>> {
    match object.get(name) {
        Some(Value::Array(list)) => Ok(list),
        Some(_) => Err(ApiError::invalid(format!("{name}: must be an array"))),
        None => Err(ApiError::invalid(format!("{name}: required"))),
    }
}

fn read_languages_json(languages: &[String], translations: &Translations) -> Value {
    json!({ "languages": languages, "model": translations.installed_model() })
}

/// `GET /v1/me/read-languages`: the languages the caller's member reads (items are translated into them).
pub async fn get_read_languages(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let member = caller.0.member.clone();
    let languages = state.blocking(move |store| store.read_languages(&member)).await?;
    let translations = Arc::clone(state.translations());
    let body = state.compute(move || read_languages_json(&languages, &translations)).await?;
    Ok(Json(body).into_response())
}

/// `PUT /v1/me/read-languages`: replaces them (`{"languages": ["kk", "zh-Hans"]}`); editors and admins.
pub async fn put_read_languages(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.require(Role::Editor, "choosing read languages")?;
    let body = crate::admin::object_body(body, &["languages"])?;
    let list = array_field(&body, "languages")?;
    let mut asked = Vec::with_capacity(list.len());
    for (i, language) in list.iter().enumerate() {
        let language =
            language.as_str().ok_or_else(|| ApiError::invalid(format!("languages[{i}]: must be a string")))?;
        asked.push(language.to_string());
    }
    let languages = crate::app::translation::check_read_languages(&asked)?;
    let stored = crate::app::translation::set_read_languages(&state, &caller.0.member, languages).await?;
    let translations = Arc::clone(state.translations());
    let body = state.compute(move || read_languages_json(&stored, &translations)).await?;
    Ok(Json(body).into_response())
}

fn glossary_json(glossary: &Glossary) -> Value {
    json!({
        "from": glossary.source_language,
        "to": glossary.target_language,
        "terms": glossary.terms.iter().map(|t| json!({ "source": t.source, "target": t.target })).collect::<Vec<_>>(),
        "updatedAt": glossary.updated_at.to_rfc3339(),
    })
}

fn pair(from: &str, to: &str) -> ApiResult<(String, String)> {
    crate::app::translation::check_pair(from, to)
}

/// `GET /v1/glossaries`: the caller's member's glossaries, one per language pair.
pub async fn list_glossaries(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let member = caller.0.member.clone();
    let glossaries = state.blocking(move |store| store.glossaries(&member)).await?;
    Ok(Json(json!({ "glossaries": glossaries.iter().map(glossary_json).collect::<Vec<_>>() })).into_response())
}

/// `GET /v1/glossaries/{from}/{to}`.
pub async fn get_glossary(
    State(state): State<AppState>,
    caller: Caller,
    Path((from, to)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (from, to) = pair(&from, &to)?;
    let member = caller.0.member.clone();
    let glossaries = state.blocking(move |store| store.glossaries(&member)).await?;
    let found = glossaries
        .iter()
        .find(|g| g.source_language == from && g.target_language == to)
        .ok_or_else(|| ApiError::not_found("glossary"))?;
    Ok(Json(glossary_json(found)).into_response())
}

/// `PUT /v1/glossaries/{from}/{to}`: replaces the glossary (`{"terms": [{"source", "target"}]}`);
/// editors and admins. Every term is checked before anything is stored.
pub async fn put_glossary(
    State(state): State<AppState>,
    caller: Caller,
    Path((from, to)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    caller.require(Role::Editor, "changing glossaries")?;
    let (from, to) = pair(&from, &to)?;
    let body = crate::admin::object_body(body, &["terms"])?;
    let list = array_field(&body, "terms")?;
    if list.len() > crate::app::translation::MAX_TERMS {
        return Err(ApiError::invalid(format!("terms: at most {}", crate::app::translation::MAX_TERMS)));
    }
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(list.len());
    for (i, term) in list.iter().enumerate() {
        let Some(term) = term.as_object() else {
            return Err(ApiError::invalid(format!("terms[{i}]: must be an object with source and target")));
        };
        if let Some(unknown) = term.keys().find(|k| *k != "source" && *k != "target") {
            return Err(ApiError::invalid(format!("terms[{i}].{unknown}: unknown field (expected source, target)")));
        }
        let text = |name: &str| -> ApiResult<String> {
            match term.get(name) {
                Some(Value::String(value)) => Ok(value.clone()),
                Some(_) => Err(ApiError::invalid(format!("terms[{i}].{name}: must be a string"))),
                None => Err(ApiError::invalid(format!("terms[{i}].{name}: required"))),
            }
        };
        pairs.push((text("source")?, text("target")?));
    }
    let terms = crate::app::translation::check_terms(&pairs)?;
    let glossary = crate::app::translation::set_glossary(&state, &caller.0.member, from, to, terms).await?;
    Ok(Json(glossary_json(&glossary)).into_response())
}

/// `DELETE /v1/glossaries/{from}/{to}`; editors and admins.
pub async fn delete_glossary(
    State(state): State<AppState>,
    caller: Caller,
    Path((from, to)): Path<(String, String)>,
) -> ApiResult<Response> {
    caller.require(Role::Editor, "changing glossaries")?;
    let (from, to) = pair(&from, &to)?;
    crate::app::translation::delete_glossary(&state, &caller.0.member, from, to).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

fn counts_json(counts: &karavan_store::QueueCounts) -> Value {
    json!({ "queued": counts.queued, "running": counts.running, "done": counts.done, "failed": counts.failed })
}

/// `GET /v1/translation/queue`: the job queue's counts (the caller's own items' jobs, both parts
/// together and by part), the model, its precision, and this server's recent job durations.
pub async fn queue(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let member = caller.0.member.clone();
    let counts = state.blocking(move |store| store.translation_queue(&member)).await?;
    let translations = Arc::clone(state.translations());
    let model = {
        let translations = Arc::clone(&translations);
        state.compute(move || translations.installed_model()).await?
    };
    let total = counts.total();
    let seconds = |part| translations.average_duration(part).map(|d| (d.as_secs_f64() * 10.0).round() / 10.0);
    Ok(Json(json!({
        "model": model,
        "precision": translations.precision().map(Precision::as_str),
        "queued": total.queued,
        "running": total.running,
        "done": total.done,
        "failed": total.failed,
        "head": counts_json(&counts.head),
        "body": counts_json(&counts.body),
        "averageSeconds": { "head": seconds(TranslationPart::Head), "body": seconds(TranslationPart::Body) },
    }))
    .into_response())
}

/// `GET /v1/items/{id}/translation?lang=`: where the item's translation into `lang` stands for the
/// caller (nothing is made or queued: reading the item with `?lang=` does that).
pub async fn item_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: axum::extract::RawQuery,
) -> ApiResult<Response> {
    let mut params = crate::params::Params::parse(query)?;
    let lang = params.one("lang")?.ok_or_else(|| ApiError::invalid("lang: required (a BCP 47 tag)"))?;
    params.finish()?;
    let lang = parse_lang(&lang)?;
    let id = karavan_domain::ItemId::parse(&id).map_err(ApiError::from)?;
    let viewer = caller.0.member.clone();
    let (translations, models) = (Arc::clone(state.translations()), Arc::clone(state.language()));
    let language = lang.clone();
    let status = state
        .blocking(move |store| {
            let read = store.item(&viewer, &id, crate::now())?;
            Ok(crate::items::visible(read).and_then(|(version, _)| {
                translation_status(store, &translations, &models, &viewer, &version, &language)
            }))
        })
        .await??;
    // Already in that language: nothing to translate.
    let status = status.unwrap_or(TranslationStatus {
        language: lang,
        headline: PartStatus::Done,
        body: PartStatus::Done,
        position: None,
        estimated_seconds: None,
    });
    Ok(Json(status.json()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glossary(source: &str, target: &str, terms: &[(&str, &str)]) -> Glossary {
        Glossary {
            member: MemberId::new(karavan_domain::Ulid::decode("01HZZZZZZZZZZZZZZZZZZZZZZZ").unwrap()),
            source_language: source.into(),
            target_language: target.into(),
            terms: terms
                .iter()
                .map(|(s, t)| karavan_store::GlossaryTerm { source: s.to_string(), target: t.to_string() })
                .collect(),
            updated_at: Timestamp(0),
        }
    }

    #[test]
    fn variants_name_the_terms_found() {
        let g = glossary("zh", "kk", &[("托卡耶夫", "Тоқаев"), ("上海合作组织", "ШЫҰ")]);
        let (none, terms) = applicable_terms(&[&g], "今天天气很好");
        assert_eq!((none.as_str(), terms.len()), ("", 0));
        let (one, terms) = applicable_terms(&[&g], "托卡耶夫今天访问北京");
        assert_eq!(terms, vec![Term { source: "托卡耶夫".into(), target: "Тоқаев".into() }]);
        assert_eq!(one.len(), 16);
        // The same terms in another order are the same variant; another rendering is another.
        let h = glossary("zh", "kk", &[("上海合作组织", "ШЫҰ"), ("托卡耶夫", "Тоқаев")]);
        assert_eq!(applicable_terms(&[&h], "托卡耶夫今天访问北京").0, one);
        let other = glossary("zh", "kk", &[("托卡耶夫", "Токаев")]);
        assert_ne!(applicable_terms(&[&other], "托卡耶夫今天访问北京").0, one);
        assert!(glossary_applies(&g, "zh-Hans", "kk"));
        assert!(!glossary_applies(&g, "zh-Hant", "kk"));
        assert!(!glossary_applies(&g, "zh", "ru"));
    }
}
