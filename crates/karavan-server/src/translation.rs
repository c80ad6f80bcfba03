//! Machine translation on the wire: the translation model (loaded on first use), the workers that
//! drain the durable job queue the store fills at publish time, translation on demand for
//! `GET /v1/items/{id}?lang=`, members' read languages and glossaries, and the queue's status.
//!
//! A translation is stored per (version, language, variant): the variant names the glossary terms
//! applied (empty: none), so members whose glossaries render an item's names differently each get
//! their own rendering, and members without matching terms share one. Sentences already translated
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
use karavan_lang::{ModelDir, ModelError, ModelKind, SegmentCache, Term, Translator};
use karavan_search::SearchIndex;
use karavan_store::{Glossary, GlossaryTerm, JobOutcome, Store, StoredTranslation, StoredVersion, TranslationJob};
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
/// How long a worker holds a job before another may take it (a worker that died).
const LEASE: Duration = Duration::from_secs(15 * 60);
/// Most languages a member may read; most terms in one glossary; longest term.
const MAX_READ_LANGUAGES: usize = 32;
const MAX_TERMS: usize = 5_000;
const MAX_TERM_CHARS: usize = 200;

/// Translation settings.
#[derive(Debug, Clone)]
pub struct TranslationConfig {
    /// Jobs translated at once (each uses the model's own threads); 0 turns the workers off.
    pub workers: usize,
    /// How often idle workers look for jobs.
    pub poll: Duration,
    /// An HTTP endpoint to translate with instead of the local model.
    pub http: Option<crate::translation_http::HttpBackendConfig>,
}

impl Default for TranslationConfig {
    fn default() -> TranslationConfig {
        TranslationConfig { workers: 1, poll: Duration::from_secs(1), http: None }
    }
}

/// The translation model, loaded on first use; absent while none is installed (checked again at
/// most every 30 s, so a model imported while the server runs is picked up).
pub struct Translations {
    dir: Option<ModelDir>,
    loaded: Mutex<Loaded>,
    pub(crate) config: TranslationConfig,
}

enum Loaded {
    Not,
    Model(Arc<Engine>),
    Failed(String, Instant),
}

/// What translates: the local model, or the operator's HTTP endpoint; and the name translations record.
pub struct Engine {
    kind: EngineKind,
    pub model: String,
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

    /// One text value (an HTML fragment when `html`), sentences from `cache` where it has them.
    fn text(
        &self,
        value: &str,
        from: &str,
        to: &str,
        html: bool,
        terms: &[Term],
        cache: Option<&dyn SegmentCache>,
    ) -> Result<String, String> {
        match &self.kind {
            EngineKind::Local(translator) if html => {
                translator.translate_html_cached(value, from, to, terms, cache).map_err(|e| e.to_string())
            }
            EngineKind::Local(translator) => translator
                .translate_cached(&[value], from, to, terms, cache)
                .map(|mut out| out.pop().unwrap_or_default())
                .map_err(|e| e.to_string()),
            EngineKind::Http(backend) => {
                // The whole text is the cached segment: the endpoint sees whole texts.
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
    }
}

impl std::fmt::Debug for Translations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translations").field("dir", &self.dir.as_ref().map(ModelDir::root)).finish_non_exhaustive()
    }
}

impl Translations {
    pub fn new(dir: Option<PathBuf>, config: TranslationConfig) -> Translations {
        Translations { dir: dir.map(ModelDir::new), loaded: Mutex::new(Loaded::Not), config }
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
            let engine = HttpBackend::new(http.clone())
                .map(|backend| Arc::new(Engine { model: backend.name(), kind: EngineKind::Http(backend) }))?;
            *loaded = Loaded::Model(Arc::clone(&engine));
            return Ok(engine);
        }
        let Some(dir) = &self.dir else {
            return Err("the translation model is not installed (no model directory is configured; import a \
                        checkpoint with `karavan models import DIR`)"
                .to_string());
        };
        let started = Instant::now();
        let outcome = dir.find(ModelKind::Translation).and_then(|(model, path)| {
            Ok(Engine { kind: EngineKind::Local(Box::new(Translator::load(&path)?)), model: model.name })
        });
        match outcome {
            Ok(engine) => {
                tracing::info!(model = %engine.model, elapsed_ms = started.elapsed().as_millis() as u64, "translation model loaded");
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

/// The translated text fields of a document: each headline, description and body translated (HTML
/// text node by text node), roles and content types kept; counts of characters and words dropped.
pub fn translate_fields(
    engine: &Engine,
    document: &Map<String, Value>,
    from: &str,
    to: &str,
    terms: &[Term],
    cache: Option<&dyn SegmentCache>,
) -> Result<Map<String, Value>, String> {
    let mut fields = Map::new();
    for key in FIELDS {
        let Some(entries) = document.get(key).and_then(Value::as_array) else { continue };
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some(object) = entry.as_object() else { continue };
            let mut translated = Map::new();
            for (name, value) in object {
                if name != "charCount" && name != "wordCount" && name != "value" {
                    translated.insert(name.clone(), value.clone());
                }
            }
            let value = object.get("value").and_then(Value::as_str).unwrap_or_default();
            let html = object.get("contentType").and_then(Value::as_str).is_some_and(|t| t.contains("html"));
            let text = engine.text(value, from, to, html, terms, cache)?;
            translated.insert("value".to_string(), Value::String(text));
            out.push(Value::Object(translated));
        }
        fields.insert(key.to_string(), Value::Array(out));
    }
    Ok(fields)
}

/// Makes one translation of a version (blocking).
fn make_translation(
    engine: &Engine,
    store: &dyn Store,
    version: &StoredVersion,
    source: &str,
    target: &str,
    variant: String,
    terms: &[Term],
) -> Result<StoredTranslation, String> {
    let cache = StoreCache(store);
    let fields = translate_fields(engine, &version.document, source, target, terms, Some(&cache))?;
    Ok(StoredTranslation {
        seq: version.seq,
        language: target.to_string(),
        variant,
        source_language: source.to_string(),
        model: engine.model.clone(),
        fields,
        created_at: crate::now(),
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
}

impl Worker {
    /// Translates one claimed job and records how it ended (blocking).
    fn run(&self, job: TranslationJob) {
        let outcome = match self.translate(&job) {
            Ok(translations) => JobOutcome::Done(translations),
            Err(error) if job.attempts >= MAX_ATTEMPTS => JobOutcome::Failed { error },
            Err(error) => {
                let backoff = 30_000_000i64 << job.attempts.min(8);
                JobOutcome::Retry { error, retry_at: Timestamp(crate::now().micros() + backoff) }
            }
        };
        let stored = matches!(&outcome, JobOutcome::Done(t) if !t.is_empty());
        match &outcome {
            JobOutcome::Done(t) => {
                tracing::info!(job = job.id, item = %job.version.item_id, language = %job.language, renderings = t.len(), "translated")
            }
            JobOutcome::Retry { error, .. } | JobOutcome::Failed { error } => {
                tracing::warn!(job = job.id, item = %job.version.item_id, language = %job.language, %error, attempts = job.attempts, "translation failed")
            }
        }
        if let Err(error) = self.store.finish_translation_job(&self.holder, job.id, outcome) {
            tracing::error!(%error, job = job.id, "could not record a translation job");
            return;
        }
        if stored
            && let Err(error) =
                crate::search::index_version(self.store.as_ref(), &self.search, &self.models, &job.version)
        {
            tracing::warn!(%error, item = %job.version.item_id, "could not index a translation");
        }
    }

    fn translate(&self, job: &TranslationJob) -> Result<Vec<StoredTranslation>, String> {
        let version = &job.version;
        if !job.current || version.pub_status == karavan_domain::PubStatus::Canceled {
            return Ok(Vec::new());
        }
        let Some(source) = crate::language::declared_or_detected_language(&version.document, &self.models) else {
            return Err("the item does not say its language and it could not be identified".to_string());
        };
        if same_language(&source, &job.language) {
            return Ok(Vec::new());
        }
        let engine = self.translations.engine()?;
        for tag in [&source, &job.language] {
            if !engine.supports(tag) {
                return Err(format!("the translation model {} does not translate {tag:?}", engine.model));
            }
        }
        // One rendering without glossary terms, and one per distinct set of terms members apply.
        let glossaries = self.store.glossaries_into(&job.language).map_err(|e| e.to_string())?;
        let text = crate::language::item_text(&version.document);
        let mut by_member: BTreeMap<MemberId, Vec<&Glossary>> = BTreeMap::new();
        for glossary in glossaries.iter().filter(|g| glossary_applies(g, &source, &job.language)) {
            by_member.entry(glossary.member.clone()).or_default().push(glossary);
        }
        let mut variants: BTreeMap<String, Vec<Term>> = BTreeMap::new();
        variants.insert(String::new(), Vec::new());
        for member_glossaries in by_member.values() {
            let (variant, terms) = applicable_terms(member_glossaries, &text);
            variants.entry(variant).or_insert(terms);
        }
        variants
            .into_iter()
            .map(|(variant, terms)| {
                make_translation(&engine, self.store.as_ref(), version, &source, &job.language, variant, &terms)
            })
            .collect()
    }

    /// The worker named `name` of this process (its lease holder name).
    fn new(state: &AppState, name: &str) -> Worker {
        Worker {
            holder: state.holder(name),
            store: Arc::clone(state.store()),
            search: Arc::clone(state.search()),
            models: Arc::clone(state.language()),
            translations: Arc::clone(state.translations()),
        }
    }

    /// The translation worker's deterministic step (blocking): claims one job by lease and translates
    /// and records it. `None` when no translation model is installed (nothing is claimed: jobs wait in
    /// the queue); otherwise whether a job was done. Tests drive it with [`translate_step`].
    fn step(&self) -> Option<Result<bool, karavan_store::StoreError>> {
        self.translations.installed_model()?;
        let now = crate::now();
        let lease = Timestamp(now.micros() + LEASE.as_micros() as i64);
        Some(self.store.claim_translation_jobs(&self.holder, now, lease, 1).map(|mut jobs| match jobs.pop() {
            Some(job) => {
                self.run(job);
                true
            }
            None => false,
        }))
    }
}

/// How often a worker looks for a translation model while none is installed.
const NO_MODEL_LOOK_AGAIN: Duration = Duration::from_secs(5);
/// The least time between two looks for jobs prompted by new items.
const TRANSLATE_ROUND_GAP: Duration = Duration::from_millis(50);

/// One step of a translation worker named `name` (blocking), as the engine runs it: `None` when no
/// model is installed, else whether it did a job.
pub fn translate_step(state: &AppState, name: &str) -> Option<Result<bool, karavan_store::StoreError>> {
    Worker::new(state, name).step()
}

/// One translation worker engine: claims a job by lease, translates it on the blocking pool, records
/// it. `--translation-workers` of them run, each its own engine and lease holder (`name`). Woken by
/// item and glossary / read-language events; looks again every `poll` in any case.
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
            Ok(Some(Ok(true))) => continue,
            Ok(Some(Ok(false))) => {}
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
            matches!(event, Event::Item { .. } | Event::Config(ConfigChange::Glossaries | ConfigChange::ReadLanguages))
        };
        tokio::select! {
            _ = events.wait_for_from(started + TRANSLATE_ROUND_GAP, config.poll, wanted) => {}
            _ = context.stopped() => {}
        }
    }
    // Stopping between jobs: hand back anything still held (nothing, unless a record failed).
    let _ = tokio::task::spawn_blocking(move || worker.store.release_translation_jobs(&worker.holder)).await;
}

/// A version as `viewer` reads it in `language` (blocking): the stored translation for the viewer's
/// glossary terms, or one made now. `None`: the item is already in that language.
pub fn translated(
    store: &dyn Store,
    translations: &Translations,
    search: &SearchIndex,
    models: &LanguageModels,
    viewer: &MemberId,
    version: &StoredVersion,
    language: &str,
) -> Result<Option<StoredTranslation>, ApiError> {
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
    if let Some(found) =
        store.translations(&[version.seq])?.into_iter().find(|t| t.language == language && t.variant == variant)
    {
        return Ok(Some(found));
    }
    let engine = translations.engine().map_err(crate::language::not_installed)?;
    for tag in [source.as_str(), language] {
        if !engine.supports(tag) {
            return Err(ApiError::invalid(format!(
                "lang: the translation model {} does not translate {tag:?}",
                engine.model
            )));
        }
    }
    let translation = make_translation(&engine, store, version, &source, language, variant, &terms).map_err(|e| {
        ApiError::new(crate::error::ErrorCode::Unavailable, format!("the item could not be translated now: {e}"))
    })?;
    store.put_translation(translation.clone())?;
    if let Err(error) = crate::search::index_version(store, search, models, version) {
        tracing::warn!(%error, item = %version.item_id, "could not index a translation");
    }
    Ok(Some(translation))
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
    for key in FIELDS {
        document.remove(key);
    }
    for (key, value) in &translation.fields {
        document.insert(key.clone(), value.clone());
    }
    document.insert(
        "uri".to_string(),
        json!(format!("urn:karavan:translation:{}:{}:{}", version.item_id, version.seq, translation.language)),
    );
    document.insert("language".to_string(), json!(translation.language));
    document.insert(
        "digitalSourceType".to_string(),
        json!({
            "uri": MACHINE_GENERATED,
            "name": format!("Machine translation from {} by {}", translation.source_language, translation.model),
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
    if list.len() > MAX_READ_LANGUAGES {
        return Err(ApiError::invalid(format!("languages: at most {MAX_READ_LANGUAGES}")));
    }
    let mut languages = Vec::with_capacity(list.len());
    for (i, language) in list.iter().enumerate() {
        let language =
            language.as_str().ok_or_else(|| ApiError::invalid(format!("languages[{i}]: must be a string")))?;
        let tag =
            LanguageTag::parse(language).map_err(|e| ApiError::invalid(format!("languages[{i}]: {}", e.message)))?;
        if !languages.contains(&tag.as_str().to_string()) {
            languages.push(tag.as_str().to_string());
        }
    }
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
    let parse = |name: &str, value: &str| {
        LanguageTag::parse(value)
            .map(|t| t.as_str().to_string())
            .map_err(|e| ApiError::invalid(format!("{name}: {}", e.message)))
    };
    let (from, to) = (parse("from", from)?, parse("to", to)?);
    if same_language(&from, &to) {
        return Err(ApiError::invalid(format!("a glossary translates between two languages; {from} and {to} are one")));
    }
    Ok((from, to))
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
    if list.is_empty() {
        return Err(ApiError::invalid("terms: give at least one term (DELETE removes a glossary)"));
    }
    if list.len() > MAX_TERMS {
        return Err(ApiError::invalid(format!("terms: at most {MAX_TERMS}")));
    }
    let mut terms: Vec<GlossaryTerm> = Vec::with_capacity(list.len());
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
        let term = TermText { source: text("source")?, target: text("target")? };
        for (name, value) in [("source", &term.source), ("target", &term.target)] {
            if value.trim().is_empty() {
                return Err(ApiError::invalid(format!("terms[{i}].{name}: must not be empty")));
            }
            if value.chars().count() > MAX_TERM_CHARS {
                return Err(ApiError::invalid(format!("terms[{i}].{name}: at most {MAX_TERM_CHARS} characters")));
            }
            if value.chars().any(char::is_control) {
                return Err(ApiError::invalid(format!("terms[{i}].{name}: must not contain control characters")));
            }
        }
        let source = term.source.trim().to_string();
        if terms.iter().any(|t| t.source.to_lowercase() == source.to_lowercase()) {
            return Err(ApiError::invalid(format!("terms[{i}].source: {source:?} is listed twice")));
        }
        terms.push(GlossaryTerm { source, target: term.target.trim().to_string() });
    }
    let glossary = crate::app::translation::set_glossary(&state, &caller.0.member, from, to, terms).await?;
    Ok(Json(glossary_json(&glossary)).into_response())
}

struct TermText {
    source: String,
    target: String,
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

/// `GET /v1/translation/queue`: the job queue's counts and the model.
pub async fn queue(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let member = caller.0.member.clone();
    let counts = state.blocking(move |store| store.translation_queue(&member)).await?;
    let translations = Arc::clone(state.translations());
    let model = state.compute(move || translations.installed_model()).await?;
    Ok(Json(json!({
        "model": model,
        "queued": counts.queued,
        "running": counts.running,
        "done": counts.done,
        "failed": counts.failed,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glossary(source: &str, target: &str, terms: &[(&str, &str)]) -> Glossary {
        Glossary {
            member: MemberId::new(karavan_domain::Ulid::decode("01HZZZZZZZZZZZZZZZZZZZZZZZ").unwrap()),
            source_language: source.into(),
            target_language: target.into(),
            terms: terms.iter().map(|(s, t)| GlossaryTerm { source: s.to_string(), target: t.to_string() }).collect(),
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
