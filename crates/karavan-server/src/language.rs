//! The server's language models: loaded from the model directory on first use, absent when they are
//! not installed (the features that need them then answer `503 model_not_installed`, and everything
//! else works), and the language facts derived from them: an item's detected language and whether
//! its declared one contradicts its text; script conversion of an item's text for `?script=`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use karavan_lang::{Detection, Embedder, LanguageIdentifier, ModelDir, ModelKind};
use karavan_script::Script;
use serde_json::{Map, Value, json};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};

type Loaded<T> = OnceLock<Result<Arc<T>, String>>;

/// The language identifier and the embedder, each loaded once, on first use.
pub struct LanguageModels {
    dir: Option<ModelDir>,
    identifier: Loaded<LanguageIdentifier>,
    embedder: Loaded<Embedder>,
}

impl std::fmt::Debug for LanguageModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanguageModels").field("dir", &self.dir.as_ref().map(ModelDir::root)).finish_non_exhaustive()
    }
}

fn load<T>(
    cell: &Loaded<T>,
    dir: Option<&ModelDir>,
    kind: ModelKind,
    open: impl FnOnce(&std::path::Path) -> Result<T, karavan_lang::ModelError>,
) -> Result<Arc<T>, String> {
    cell.get_or_init(|| {
        let Some(dir) = dir else {
            return Err(format!("the {} model is not installed (no model directory is configured)", kind.as_str()));
        };
        let started = std::time::Instant::now();
        let loaded = dir.find(kind).and_then(|(model, path)| Ok((model, open(&path)?)));
        match loaded {
            Ok((model, value)) => {
                tracing::info!(model = %model.name, elapsed_ms = started.elapsed().as_millis() as u64, "model loaded");
                Ok(Arc::new(value))
            }
            Err(error) => {
                tracing::warn!(%error, kind = kind.as_str(), "model not available");
                Err(match error {
                    karavan_lang::ModelError::NotInstalled(_) => {
                        format!("the {} model is not installed (run `karavan models install`)", kind.as_str())
                    }
                    other => format!("the {} model could not be loaded: {other}", kind.as_str()),
                })
            }
        }
    })
    .clone()
}

impl LanguageModels {
    /// Models from `dir` (none: every model is "not installed").
    pub fn new(dir: Option<PathBuf>) -> LanguageModels {
        LanguageModels { dir: dir.map(ModelDir::new), identifier: OnceLock::new(), embedder: OnceLock::new() }
    }

    pub fn identifier(&self) -> Result<Arc<LanguageIdentifier>, String> {
        load(&self.identifier, self.dir.as_ref(), ModelKind::LanguageId, LanguageIdentifier::load)
    }

    pub fn embedder(&self) -> Result<Arc<Embedder>, String> {
        load(&self.embedder, self.dir.as_ref(), ModelKind::Embedding, Embedder::load)
    }

    /// What identifies the installed embedding model (its name and SHA-256): an index of vectors
    /// made by another model must be rebuilt.
    pub fn embedding_model_id(&self) -> Option<String> {
        let (model, _) = self.dir.as_ref()?.find(ModelKind::Embedding).ok()?;
        Some(format!("{} {}", model.name, model.sha256))
    }

    /// The language of a text, when the identifier is installed and the text says enough.
    pub fn detect(&self, text: &str) -> Option<Detection> {
        self.identifier().ok()?.detect(text)
    }
}

/// The API error of a feature whose model is missing.
pub fn not_installed(message: String) -> ApiError {
    ApiError::new(ErrorCode::ModelNotInstalled, message)
}

/// The text an item's language is told from: headline, description and body, made plain.
pub fn item_text(document: &Map<String, Value>) -> String {
    let mut parts = crate::search::texts(document, "headlines");
    parts.extend(crate::search::texts(document, "descriptions"));
    parts.extend(crate::search::texts(document, "bodies"));
    parts.join("\n")
}

/// An item's language: the one it declares, or the one identified from its text with confidence of
/// at least 0.5 (what the search index files it under and what translation reads it as).
pub fn declared_or_detected_language(document: &Map<String, Value>, models: &LanguageModels) -> Option<String> {
    match document.get("language").and_then(Value::as_str) {
        Some(language) => Some(language.to_string()),
        None => models.detect(&item_text(document)).filter(|d| d.confidence >= 0.5).map(|d| d.language),
    }
}

/// What Karavan says about an item's language: the detection and, when the item declares a
/// language the text contradicts, a flag for editors. None without the identifier or enough text.
pub fn language_check(models: &LanguageModels, document: &Map<String, Value>) -> Option<Value> {
    let text = item_text(document);
    let detected = models.detect(&text)?;
    let declared = document.get("language").and_then(Value::as_str);
    let contradicts = declared.is_some_and(|d| karavan_lang::contradicts(d, &detected, &text));
    Some(json!({
        "declared": declared,
        "detected": detected.language,
        "script": detected.script,
        "confidence": (detected.confidence * 1000.0).round() / 1000.0,
        "method": detected.method,
        "contradicts": contradicts,
    }))
}

/// An item's text fields (`headlines`, `descriptions`, `bodies`, `slugline`) converted into
/// `script` for a language written in both (Uzbek, Kazakh, Turkmen; Kyrgyz and Tajik to Latin only),
/// with `language` set to say so. HTML keeps its markup: only text between tags is converted, and
/// entities are left alone. The language is the item's, or the detected one.
pub fn convert_script(
    document: &mut Map<String, Value>,
    script: Script,
    detected: Option<&str>,
) -> Result<(), ApiError> {
    let tag = document.get("language").and_then(Value::as_str).or(detected).map(str::to_string);
    let Some(language) = tag.as_deref().and_then(karavan_script::Language::from_tag) else {
        return Err(ApiError::invalid(format!(
            "script: the item's language ({}) is not one Karavan converts between Cyrillic and Latin (uz, kk, tk, ky, tg)",
            tag.as_deref().unwrap_or("unknown")
        )));
    };
    if script == Script::Cyrillic
        && matches!(language, karavan_script::Language::Kyrgyz | karavan_script::Language::Tajik)
    {
        return Err(ApiError::invalid(
            "script: Kyrgyz and Tajik are written in Cyrillic; their Latin romanisation cannot be converted back",
        ));
    }
    for key in ["headlines", "descriptions", "bodies"] {
        if let Some(Value::Array(entries)) = document.get_mut(key) {
            for entry in entries {
                let html = entry.get("contentType").and_then(Value::as_str).is_some_and(|t| t.contains("html"));
                if let Some(Value::String(value)) = entry.get_mut("value") {
                    *value = if html {
                        convert_html(language, value, script)
                    } else {
                        karavan_script::convert(language, value, script)
                    };
                }
            }
        }
    }
    if let Some(Value::String(slugline)) = document.get_mut("slugline") {
        *slugline = karavan_script::convert(language, slugline, script);
    }
    let primary = tag.as_deref().unwrap_or_default().split(['-', '_']).next().unwrap_or_default().to_string();
    document.insert("language".into(), Value::String(format!("{primary}-{}", script.subtag())));
    Ok(())
}

/// Converts the text of an HTML fragment, leaving tags and character references as they are.
pub fn convert_html(language: karavan_script::Language, html: &str, script: Script) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / 4);
    let mut rest = html;
    while !rest.is_empty() {
        // Text runs up to the next tag or character reference.
        let stop = rest.find(['<', '&']).unwrap_or(rest.len());
        out.push_str(&karavan_script::convert(language, &rest[..stop], script));
        rest = &rest[stop..];
        let end = if rest.starts_with('<') {
            rest.find('>').map(|i| i + 1).unwrap_or(rest.len())
        } else if rest.starts_with('&') {
            rest.find(';').filter(|&i| i <= 32 && !rest[1..i].contains([' ', '<', '&'])).map(|i| i + 1).unwrap_or(1)
        } else {
            0
        };
        out.push_str(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

/// The longest text `POST /v1/language/detect` takes, in characters.
const MAX_DETECT_CHARS: usize = 100_000;

/// `POST /v1/language/detect` `{"text": "…"}`: the language of a text (a query, a draft).
pub async fn detect(
    State(state): State<AppState>,
    _caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let object = crate::admin::object_body(body, &["text"])?;
    let text = crate::admin::string_field(&object, "text")?.ok_or_else(|| ApiError::invalid("text: required"))?;
    if text.chars().count() > MAX_DETECT_CHARS {
        return Err(ApiError::invalid(format!("text: longer than {MAX_DETECT_CHARS} characters")));
    }
    let models = Arc::clone(state.language());
    let detected = state
        .compute(move || models.identifier().map(|identifier| identifier.detect(&text)))
        .await?
        .map_err(not_installed)?;
    Ok(Json(json!({ "detected": detected })).into_response())
}

/// `GET /v1/items/{id}/language`: the language check of an item the caller may see.
pub async fn item_language(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = karavan_domain::ItemId::parse(&id)?;
    let viewer = caller.0.member.clone();
    let read = state.blocking(move |store| store.item(&viewer, &id, crate::now())).await?;
    let (version, _) = crate::items::visible(read)?;
    let models = Arc::clone(state.language());
    models.identifier().map_err(not_installed)?;
    let check = state.compute(move || language_check(&models, &version.document)).await?;
    Ok(Json(json!({ "language": check })).into_response())
}

/// `GET /v1/models`: the installed models and whether each loaded (not where they are on disk), and
/// the translation model this server uses: its name, the precision it is loaded in and whether it is
/// loaded yet (it loads on first use).
pub async fn list_models(State(state): State<AppState>, _caller: Caller) -> ApiResult<Response> {
    let models = Arc::clone(state.language());
    let translations = Arc::clone(state.translations());
    let body = state
        .compute(move || {
            let installed = models.dir.as_ref().map(ModelDir::installed).transpose();
            let status = |loaded: Result<(), String>| match loaded {
                Ok(()) => json!({ "ready": true }),
                Err(message) => json!({ "ready": false, "message": message }),
            };
            json!({
                "installed": installed.unwrap_or_default().unwrap_or_default(),
                "languageId": status(models.identifier().map(|_| ())),
                "embedding": status(models.embedder().map(|_| ())),
                "translation": {
                    "model": translations.installed_model(),
                    "precision": translations.precision().map(karavan_lang::Precision::as_str),
                    "headBeams": translations.precision().map(|_| translations.config.head_beams),
                    "loaded": translations.is_loaded(),
                },
            })
        })
        .await?;
    Ok(Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use karavan_script::Language;

    #[test]
    fn html_markup_and_entities_survive_conversion() {
        let html = "<p class=\"lead\">Тошкент &amp; Самарқанд</p><p>шаҳар&nbsp;янги</p>";
        assert_eq!(
            convert_html(Language::Uzbek, html, Script::Latin),
            "<p class=\"lead\">Toshkent &amp; Samarqand</p><p>shahar&nbsp;yangi</p>"
        );
        let latin = "<p>Toshkent &amp; Samarqand</p>";
        assert_eq!(convert_html(Language::Uzbek, latin, Script::Cyrillic), "<p>Тошкент &amp; Самарқанд</p>");
        assert_eq!(convert_html(Language::Uzbek, "a & b <", Script::Cyrillic), "а & б <");
    }

    #[test]
    fn items_convert_with_their_language_and_say_so() {
        let mut document: Map<String, Value> = serde_json::from_value(json!({
            "language": "uz",
            "headlines": [{"value": "Ўзбекистонда янги темир йўл", "role": "main"}],
            "bodies": [{"contentType": "text/html", "value": "<p>Тошкент шаҳри</p>"}],
        }))
        .unwrap();
        convert_script(&mut document, Script::Latin, None).unwrap();
        assert_eq!(document["language"], "uz-Latn");
        assert_eq!(document["headlines"][0]["value"], "O‘zbekistonda yangi temir yo‘l");
        assert_eq!(document["bodies"][0]["value"], "<p>Toshkent shahri</p>");
        let mut russian: Map<String, Value> = serde_json::from_value(json!({"language": "ru"})).unwrap();
        let error = convert_script(&mut russian, Script::Latin, None).unwrap_err();
        assert!(error.message.contains("(ru)"), "{}", error.message);
    }
}
