//! Machine translation with a local NLLB-200 / M2M100 checkpoint: language tags to the model's
//! codes, bodies cut into sentences so that nothing is truncated, HTML translated text node by text
//! node so that its markup survives, and glossaries whose terms come out as the glossary says.

use std::path::Path;

use crate::bpe::{BpeTokenizer, Family};
use crate::generate::{EarlyStopping, Options, generate};
use crate::m2m100::M2m100;
use crate::models::ModelError;

/// BCP-47 tags (lowercase) and the NLLB-200 codes they mean.
const NLLB_TAGS: &[(&str, &str)] = &[
    ("en", "eng_Latn"),
    ("zh", "zho_Hans"),
    ("zh-hans", "zho_Hans"),
    ("zh-cn", "zho_Hans"),
    ("zh-hant", "zho_Hant"),
    ("zh-tw", "zho_Hant"),
    ("ru", "rus_Cyrl"),
    ("kk", "kaz_Cyrl"),
    ("kk-cyrl", "kaz_Cyrl"),
    ("ky", "kir_Cyrl"),
    ("tg", "tgk_Cyrl"),
    ("tk", "tuk_Latn"),
    ("uz", "uzn_Latn"),
    ("uz-latn", "uzn_Latn"),
    ("mn", "khk_Cyrl"),
    ("ug", "uig_Arab"),
    ("fa", "pes_Arab"),
    ("ar", "arb_Arab"),
    ("tr", "tur_Latn"),
    ("az", "azj_Latn"),
    ("hi", "hin_Deva"),
    ("ur", "urd_Arab"),
    ("ps", "pbt_Arab"),
    ("be", "bel_Cyrl"),
    ("uk", "ukr_Cyrl"),
    ("tt", "tat_Cyrl"),
    ("ba", "bak_Cyrl"),
    ("hy", "hye_Armn"),
    ("ka", "kat_Geor"),
    ("fr", "fra_Latn"),
    ("de", "deu_Latn"),
    ("es", "spa_Latn"),
    ("ja", "jpn_Jpan"),
    ("ko", "kor_Hang"),
];

/// A translation model ready to use.
pub struct Translator {
    model: M2m100,
    tokenizer: BpeTokenizer,
    /// The model's name (its directory's), recorded with every translation.
    pub name: String,
    pub options: Options,
}

impl std::fmt::Debug for Translator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translator").field("name", &self.name).field("model", &self.model).finish_non_exhaustive()
    }
}

/// One glossary entry: a term in the source language and how it must read in the target language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub source: String,
    pub target: String,
}

/// A text for [`Translator::translate_many_cached`]: plain text, or an HTML fragment translated text
/// node by text node (tags, attributes and entities stay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text<'a> {
    pub value: &'a str,
    pub html: bool,
}

/// One request of [`Translator::translate_requests`]: texts into `to` with `glossary`.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub texts: &'a [Text<'a>],
    pub to: &'a str,
    pub glossary: &'a [Term],
}

/// Where translated sentences are kept between translations (the server's is in its store), so that a
/// corrected item only has what changed translated again. Keys come from [`Translator`]: a digest of
/// the model, the language pair, the decoding settings and the sentence.
pub trait SegmentCache {
    /// The cached translations of `keys` (`None` where there is none).
    fn get(&self, keys: &[[u8; 32]]) -> Vec<Option<String>>;
    /// Keeps new translations.
    fn put(&self, entries: Vec<([u8; 32], String)>);
}

/// The most tokens of source one sentence may have before it is cut (well inside every model's
/// positions, and where translation quality is still good).
const MAX_SENTENCE_TOKENS: usize = 200;
/// How many tokens of sources one batch encodes at once.
const BATCH_TOKENS: usize = 4096;

/// Where translation goes: the model's language code, and a script to convert the output to
/// (Uzbek in Cyrillic is translated as Uzbek in Latin script, then converted).
#[derive(Debug, Clone, PartialEq)]
struct Target {
    code: String,
    convert: Option<(karavan_script::Language, karavan_script::Script)>,
}

impl Translator {
    /// Loads a checkpoint directory (`config.json`, the safetensors, the tokenizer files).
    pub fn load(dir: &Path) -> Result<Translator, ModelError> {
        Translator::load_with(dir, crate::Precision::Float32)
    }

    /// Loads a checkpoint directory with the model's linear layers in `precision`.
    pub fn load_with(dir: &Path, precision: crate::Precision) -> Result<Translator, ModelError> {
        let tokenizer = BpeTokenizer::load(dir)?;
        let model = M2m100::load_with(dir, precision)?;
        if tokenizer.vocab_size() > model.config.vocab_size {
            return Err(ModelError::Invalid(format!(
                "the tokenizer has {} tokens and the model only {}",
                tokenizer.vocab_size(),
                model.config.vocab_size
            )));
        }
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("translation").to_string();
        let max_length = (model.config.max_positions - 1).min(MAX_SENTENCE_TOKENS * 2 + 10);
        let options = Options {
            num_beams: 4,
            max_length,
            min_length: 0,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            no_repeat_ngram_size: 0,
            forced_eos: model.config.forced_eos,
        };
        Ok(Translator { model, tokenizer, name, options })
    }

    /// The model's code for a language tag (`kk`, `zh-Hant`, `uz-Cyrl`) or one of its own codes
    /// (`kaz_Cyrl`), if it translates that language.
    pub fn language_code(&self, tag: &str) -> Option<String> {
        self.target(tag).map(|t| t.code)
    }

    /// Every language the model translates, as its codes.
    pub fn languages(&self) -> Vec<String> {
        self.tokenizer.languages()
    }

    fn target(&self, tag: &str) -> Option<Target> {
        let lower = tag.trim().to_ascii_lowercase();
        if self.tokenizer.language(tag.trim()).is_some() {
            return Some(Target { code: tag.trim().to_string(), convert: None });
        }
        // Uzbek in Cyrillic: the models know Uzbek in Latin script only.
        if lower == "uz-cyrl" {
            let mut target = self.target("uz")?;
            target.convert = Some((karavan_script::Language::Uzbek, karavan_script::Script::Cyrillic));
            return Some(target);
        }
        let code = match self.tokenizer.family {
            Family::Nllb => NLLB_TAGS
                .iter()
                .find(|(t, _)| *t == lower)
                .or_else(|| {
                    let primary = lower.split('-').next().unwrap_or("");
                    NLLB_TAGS.iter().find(|(t, _)| *t == primary)
                })
                .map(|(_, code)| code.to_string())?,
            Family::M2m100 => lower.split('-').next().unwrap_or("").to_string(),
        };
        self.tokenizer.language(&code).map(|_| Target { code, convert: None })
    }

    fn source(&self, tag: &str) -> Option<(String, Option<karavan_script::Language>)> {
        let target = self.target(tag)?;
        // A Cyrillic Uzbek source is converted to Latin script before translation.
        Some((target.code, target.convert.map(|(language, _)| language)))
    }

    fn unknown(&self, tag: &str) -> ModelError {
        ModelError::Invalid(format!("the translation model {} does not translate {tag:?}", self.name))
    }

    /// Translates plain texts from `from` to `to`, keeping their line breaks; `glossary` terms in
    /// the source come out as the glossary says.
    pub fn translate(
        &self,
        texts: &[&str],
        from: &str,
        to: &str,
        glossary: &[Term],
    ) -> Result<Vec<String>, ModelError> {
        self.translate_cached(texts, from, to, glossary, None)
    }

    /// [`Translator::translate`], taking sentences already translated from `cache` and keeping the new ones there.
    pub fn translate_cached(
        &self,
        texts: &[&str],
        from: &str,
        to: &str,
        glossary: &[Term],
        cache: Option<&dyn SegmentCache>,
    ) -> Result<Vec<String>, ModelError> {
        self.translate_beams(texts, from, to, glossary, cache, self.options.num_beams)
    }

    /// [`Translator::translate_cached`] with `beams` beams (1: greedy) instead of the translator's own.
    fn translate_beams(
        &self,
        texts: &[&str],
        from: &str,
        to: &str,
        glossary: &[Term],
        cache: Option<&dyn SegmentCache>,
        beams: usize,
    ) -> Result<Vec<String>, ModelError> {
        let (source_code, source_script) = self.source(from).ok_or_else(|| self.unknown(from))?;
        let target = self.target(to).ok_or_else(|| self.unknown(to))?;
        let source_id = self.tokenizer.language(&source_code).ok_or_else(|| self.unknown(from))?;
        let target_id = self.tokenizer.language(&target.code).ok_or_else(|| self.unknown(to))?;
        let (plans, sentences) = plan_texts(texts, source_script);
        let translated = self.translate_sentences(&sentences, (source_id, target_id), glossary, cache, beams)?;
        let mut out = Vec::with_capacity(texts.len());
        for plan in plans {
            let mut text = String::new();
            for piece in plan {
                match piece {
                    Slot::Keep(s) => text.push_str(&s),
                    Slot::Sentence(i) => text.push_str(&translated[i]),
                }
            }
            if let Some((language, script)) = target.convert {
                text = karavan_script::convert(language, &text, script);
            }
            out.push(text);
        }
        Ok(out)
    }

    /// Translates an HTML fragment text node by text node: tags, attributes and entities stay.
    pub fn translate_html(&self, html: &str, from: &str, to: &str, glossary: &[Term]) -> Result<String, ModelError> {
        self.translate_html_cached(html, from, to, glossary, None)
    }

    /// [`Translator::translate_html`] with a cache of translated sentences.
    pub fn translate_html_cached(
        &self,
        html: &str,
        from: &str,
        to: &str,
        glossary: &[Term],
        cache: Option<&dyn SegmentCache>,
    ) -> Result<String, ModelError> {
        let text = Text { value: html, html: true };
        Ok(self.translate_many_cached(&[text], from, to, glossary, cache)?.pop().unwrap_or_default())
    }

    /// Translates several texts at once, each plain or an HTML fragment (e.g. the fields of many items
    /// into one language): their sentences go to the model together, so it runs full batches across
    /// texts. Each result is what [`Translator::translate_cached`] or
    /// [`Translator::translate_html_cached`] makes of that text alone.
    pub fn translate_many_cached(
        &self,
        texts: &[Text<'_>],
        from: &str,
        to: &str,
        glossary: &[Term],
        cache: Option<&dyn SegmentCache>,
    ) -> Result<Vec<String>, ModelError> {
        self.translate_many_beams(texts, from, to, glossary, cache, self.options.num_beams)
    }

    /// [`Translator::translate_many_cached`] with `beams` beams (1: greedy search) instead of the
    /// translator's own: what a fast first rendering (the headlines) uses. Cached sentences are kept
    /// apart per beam width.
    pub fn translate_many_beams(
        &self,
        texts: &[Text<'_>],
        from: &str,
        to: &str,
        glossary: &[Term],
        cache: Option<&dyn SegmentCache>,
        beams: usize,
    ) -> Result<Vec<String>, ModelError> {
        // Every text becomes plain pieces to translate: itself, or its HTML text nodes.
        let mut pieces: Vec<String> = Vec::new();
        let mut shapes: Vec<Option<Vec<HtmlPart<'_>>>> = Vec::with_capacity(texts.len());
        for text in texts {
            pieces.extend(text_pieces(text));
            shapes.push(text.html.then(|| split_html(text.value)));
        }
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let mut translated = self.translate_beams(&refs, from, to, glossary, cache, beams)?.into_iter();
        let mut out = Vec::with_capacity(texts.len());
        for (text, shape) in texts.iter().zip(shapes) {
            match shape {
                None => out.push(translated.next().unwrap_or_default()),
                Some(parts) => {
                    let mut html = String::with_capacity(text.value.len() * 2);
                    for part in parts {
                        match part {
                            HtmlPart::Markup(m) => html.push_str(m),
                            HtmlPart::Text(_) => html.push_str(&escape(&translated.next().unwrap_or_default())),
                        }
                    }
                    out.push(html);
                }
            }
        }
        Ok(out)
    }

    /// Translates every sentence of `requests` that `cache` does not have, all in shared batches, and
    /// keeps them in `cache` (the requests' glossary fallbacks aside, which run when a request is
    /// answered): what [`Translator::translate_requests`] does before answering each request, for a
    /// caller that reads the cache itself afterwards.
    pub fn warm(
        &self,
        from: &str,
        requests: &[Request<'_>],
        cache: &dyn SegmentCache,
        beams: usize,
    ) -> Result<(), ModelError> {
        self.prepare_requests(from, requests, Some(cache), beams).map(drop)
    }

    /// The sentences of `requests` missing from `cache`, made in shared batches, in front of `cache`.
    fn prepare_requests<'c>(
        &self,
        from: &str,
        requests: &[Request<'_>],
        cache: Option<&'c dyn SegmentCache>,
        beams: usize,
    ) -> Result<Made<'c>, ModelError> {
        let (source_code, source_script) = self.source(from).ok_or_else(|| self.unknown(from))?;
        let source_id = self.tokenizer.language(&source_code).ok_or_else(|| self.unknown(from))?;
        // Every sentence the requests will ask the model for (glossary terms already substituted, as
        // `translate_sentences` does), under the key the cache knows it by.
        let mut wanted: Vec<([u8; 32], String, (u32, u32))> = Vec::new();
        for request in requests {
            // A language the model does not have is left to the request's own call, which says so.
            let Some(target_id) = self.target(request.to).and_then(|target| self.tokenizer.language(&target.code))
            else {
                continue;
            };
            let pieces: Vec<String> = request.texts.iter().flat_map(text_pieces).collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            for sentence in plan_texts(&refs, source_script).1 {
                let whole = units_text(&glossary_units(&sentence, request.glossary));
                let key = self.segment_key(&whole, (source_id, target_id), beams);
                wanted.push((key, whole, (source_id, target_id)));
            }
        }
        let mut seen = std::collections::HashSet::new();
        wanted.retain(|(key, _, _)| seen.insert(*key));
        let keys: Vec<[u8; 32]> = wanted.iter().map(|(key, _, _)| *key).collect();
        let mut found = cache.map(|cache| cache.get(&keys)).unwrap_or_default();
        found.resize(keys.len(), None);
        // What the cache has is kept here too, so that answering the requests reads it only once.
        let mut known = std::collections::HashMap::new();
        let mut todo: Vec<([u8; 32], Row<'_>)> = Vec::new();
        for ((key, whole, pair), hit) in wanted.iter().zip(found) {
            match hit {
                Some(text) => {
                    known.insert(*key, text);
                }
                None => todo.push((*key, (whole.as_str(), *pair))),
            }
        }
        if !todo.is_empty() {
            let rows: Vec<Row<'_>> = todo.iter().map(|(_, row)| *row).collect();
            let done = self.run(&rows, beams)?;
            let made: Vec<([u8; 32], String)> = todo.iter().map(|(key, _)| *key).zip(done).collect();
            if let Some(cache) = cache {
                cache.put(made.clone());
            }
            known.extend(made);
        }
        Ok(Made { cache, made: std::sync::Mutex::new(known) })
    }

    /// Several requests from one language at once (e.g. the headlines of a story into every reader
    /// language): the sentences of all of them go to the model together, in shared batches, so that a
    /// story's seven languages take one run rather than seven. Each answer is what
    /// [`Translator::translate_many_beams`] makes of that request alone.
    pub fn translate_requests(
        &self,
        from: &str,
        requests: &[Request<'_>],
        cache: Option<&dyn SegmentCache>,
        beams: usize,
    ) -> Result<Vec<Vec<String>>, ModelError> {
        let made = self.prepare_requests(from, requests, cache, beams)?;
        requests
            .iter()
            .map(|request| {
                self.translate_many_beams(request.texts, from, request.to, request.glossary, Some(&made), beams)
            })
            .collect()
    }

    /// Translates sentences (each on its own), in batches of similar length.
    fn translate_sentences(
        &self,
        sentences: &[String],
        pair: (u32, u32),
        glossary: &[Term],
        cache: Option<&dyn SegmentCache>,
        beams: usize,
    ) -> Result<Vec<String>, ModelError> {
        // Each sentence becomes one or more units: the sentence with glossary terms replaced by
        // their renderings, and, as a fallback where the model loses a rendering, the parts
        // between the terms.
        let plans: Vec<Vec<Unit>> = sentences.iter().map(|s| glossary_units(s, glossary)).collect();
        let whole: Vec<String> = plans.iter().map(|units| units_text(units)).collect();
        let mut out = self.run_cached(&whole, pair, cache, beams)?;
        let mut fallback = Vec::new();
        for (i, units) in plans.iter().enumerate() {
            let terms: Vec<&str> =
                units.iter().filter_map(|u| if let Unit::Term(t) = u { Some(t.as_str()) } else { None }).collect();
            if !terms.is_empty() && !terms.iter().all(|t| out[i].contains(t)) {
                fallback.push(i);
            }
        }
        if !fallback.is_empty() {
            let parts: Vec<String> = fallback
                .iter()
                .flat_map(|&i| {
                    plans[i].iter().filter_map(|u| if let Unit::Text(t) = u { Some(t.clone()) } else { None })
                })
                .collect();
            let mut translated = self.run_cached(&parts, pair, cache, beams)?.into_iter();
            for &i in &fallback {
                let mut text = String::new();
                for unit in &plans[i] {
                    let piece = match unit {
                        Unit::Term(t) => t.clone(),
                        Unit::Text(_) => translated.next().unwrap_or_default(),
                    };
                    if !text.is_empty() && !piece.is_empty() && !text.ends_with(' ') && !piece.starts_with(' ') {
                        text.push(' ');
                    }
                    text.push_str(piece.trim());
                }
                out[i] = text;
            }
        }
        Ok(out)
    }

    /// The cache key of a sentence: everything its translation depends on.
    fn segment_key(&self, sentence: &str, (source_id, target_id): (u32, u32), beams: usize) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let o = &self.options;
        let mut hasher = Sha256::new();
        hasher.update(format!(
            "karavan-translation-1\0{}\0{source_id}\0{target_id}\0{beams} {} {:?} {}\0",
            self.name, o.length_penalty, o.early_stopping, o.no_repeat_ngram_size
        ));
        hasher.update(sentence.as_bytes());
        hasher.finalize().into()
    }

    /// [`Translator::run`] for the sentences `cache` does not have.
    fn run_cached(
        &self,
        sentences: &[String],
        pair: (u32, u32),
        cache: Option<&dyn SegmentCache>,
        beams: usize,
    ) -> Result<Vec<String>, ModelError> {
        let Some(cache) = cache else {
            let rows: Vec<Row<'_>> = sentences.iter().map(|sentence| (sentence.as_str(), pair)).collect();
            return self.run(&rows, beams);
        };
        let keys: Vec<[u8; 32]> = sentences.iter().map(|s| self.segment_key(s, pair, beams)).collect();
        let mut out = cache.get(&keys);
        out.resize(sentences.len(), None);
        let missing: Vec<usize> = (0..sentences.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let todo: Vec<Row<'_>> = missing.iter().map(|&i| (sentences[i].as_str(), pair)).collect();
            let done = self.run(&todo, beams)?;
            cache.put(missing.iter().zip(&done).map(|(&i, text)| (keys[i], text.clone())).collect());
            for (i, text) in missing.into_iter().zip(done) {
                out[i] = Some(text);
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// The model over sentences, shortest first in batches of about `BATCH_TOKENS` tokens.
    /// Each row is a sentence and its (source, target) language tokens: rows into different
    /// languages share batches.
    fn run(&self, rows: &[Row<'_>], beams: usize) -> Result<Vec<String>, ModelError> {
        let mut sources: Vec<(usize, Vec<u32>, u32)> = Vec::with_capacity(rows.len());
        for (i, (sentence, (source_id, target_id))) in rows.iter().enumerate() {
            let mut ids = vec![*source_id];
            ids.extend(self.tokenizer.encode(sentence));
            ids.push(self.tokenizer.eos);
            sources.push((i, ids, *target_id));
        }
        sources.sort_by_key(|(_, ids, _)| ids.len());
        let mut out = vec![String::new(); rows.len()];
        let lengths: Vec<usize> = sources.iter().map(|(_, ids, _)| ids.len()).collect();
        for range in crate::encoder::token_batches(&lengths, BATCH_TOKENS) {
            let batch: Vec<Vec<u32>> = sources[range.clone()].iter().map(|(_, ids, _)| ids.clone()).collect();
            let targets: Vec<u32> = sources[range.clone()].iter().map(|(_, _, target)| *target).collect();
            let longest = batch.iter().map(Vec::len).max().unwrap_or(0);
            let options = Options {
                num_beams: beams.max(1),
                max_length: self.options.max_length.min(2 * longest + 10).max(4),
                ..self.options.clone()
            };
            let generated = generate(&self.model, &batch, &targets, &options)?;
            for ((i, _, _), ids) in sources[range].iter().zip(generated) {
                out[*i] = self.tokenizer.decode(&ids);
            }
        }
        Ok(out)
    }
}

/// Every text cut into segments: whitespace and line breaks kept as they are, sentences (and the parts
/// of a sentence around glossary terms, where needed) to translate; the sentences, in order. A source
/// written in a script the model does not read is converted first.
fn plan_texts(texts: &[&str], source_script: Option<karavan_script::Language>) -> (Vec<Vec<Slot>>, Vec<String>) {
    let mut plans: Vec<Vec<Slot>> = Vec::with_capacity(texts.len());
    let mut sentences: Vec<String> = Vec::new();
    for text in texts {
        let text = match source_script {
            Some(language) => karavan_script::convert(language, text, karavan_script::Script::Latin),
            None => text.to_string(),
        };
        let mut plan = Vec::new();
        for piece in split_sentences(&text) {
            match piece {
                Piece::Keep(s) => plan.push(Slot::Keep(s)),
                Piece::Translate(s) => {
                    plan.push(Slot::Sentence(sentences.len()));
                    sentences.push(s);
                }
            }
        }
        plans.push(plan);
    }
    (plans, sentences)
}

/// The plain pieces of a text the model translates: itself, or its HTML text nodes.
fn text_pieces(text: &Text<'_>) -> Vec<String> {
    if text.html {
        split_html(text.value)
            .iter()
            .filter_map(|p| if let HtmlPart::Text(t) = p { Some(unescape(t)) } else { None })
            .collect()
    } else {
        vec![text.value.to_string()]
    }
}

/// The sentences one [`Translator::translate_requests`] call made, in front of the caller's cache.
struct Made<'a> {
    cache: Option<&'a dyn SegmentCache>,
    made: std::sync::Mutex<std::collections::HashMap<[u8; 32], String>>,
}

impl SegmentCache for Made<'_> {
    fn get(&self, keys: &[[u8; 32]]) -> Vec<Option<String>> {
        let made = self.made.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut found: Vec<Option<String>> = keys.iter().map(|key| made.get(key).cloned()).collect();
        drop(made);
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        if let (Some(cache), false) = (self.cache, missing.is_empty()) {
            let keys: Vec<[u8; 32]> = missing.iter().map(|&i| keys[i]).collect();
            for (i, text) in missing.into_iter().zip(cache.get(&keys)) {
                found[i] = text;
            }
        }
        found
    }

    fn put(&self, entries: Vec<([u8; 32], String)>) {
        if let Some(cache) = self.cache {
            cache.put(entries.clone());
        }
        self.made.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(entries);
    }
}

/// A sentence for the model and its (source, target) language tokens.
type Row<'a> = (&'a str, (u32, u32));

/// A part of a translated text: kept as it was, or the translation of sentence N.
enum Slot {
    Keep(String),
    Sentence(usize),
}

/// A part of a sentence for glossary handling.
#[derive(Debug, Clone, PartialEq)]
enum Unit {
    Text(String),
    /// A glossary term's target rendering.
    Term(String),
}

/// `text` with every glossary term found in it (whole words, case-insensitive, longest first) replaced
/// by its rendering: what the translator does before translating, for backends that only take text.
pub fn apply_glossary(text: &str, glossary: &[Term]) -> String {
    units_text(&glossary_units(text, glossary))
}

fn units_text(units: &[Unit]) -> String {
    units
        .iter()
        .map(|u| match u {
            Unit::Text(t) | Unit::Term(t) => t.as_str(),
        })
        .collect()
}

/// The sentence cut at glossary terms (longest first, case-insensitive, whole words where the
/// term starts or ends with a letter), each term replaced by its target rendering.
fn glossary_units(sentence: &str, glossary: &[Term]) -> Vec<Unit> {
    let mut terms: Vec<(String, &Term)> =
        glossary.iter().filter(|t| !t.source.trim().is_empty()).map(|t| (fold(&t.source), t)).collect();
    terms.sort_by_key(|(folded, _)| std::cmp::Reverse(folded.len()));
    let folded = fold(sentence);
    let mut units = Vec::new();
    let mut at = 0;
    'scan: while at < sentence.len() {
        for (needle, term) in &terms {
            if folded[at..].starts_with(needle.as_str()) && word_bounded(sentence, at, at + needle.len()) {
                units.push(Unit::Term(term.target.clone()));
                at += needle.len();
                continue 'scan;
            }
        }
        let c = sentence[at..].chars().next().map_or(1, char::len_utf8);
        match units.last_mut() {
            Some(Unit::Text(text)) => text.push_str(&sentence[at..at + c]),
            _ => units.push(Unit::Text(sentence[at..at + c].to_string())),
        }
        at += c;
    }
    units
}

/// Lowercase, character by character where that keeps the character's length (so that byte
/// positions in the folded text are positions in the original).
fn fold(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) if l.len_utf8() == c.len_utf8() => l,
                _ => c,
            }
        })
        .collect()
}

/// Whether `sentence[start..end]` is not part of a longer word (for terms of letters; Chinese and
/// other unspaced scripts match anywhere).
fn word_bounded(sentence: &str, start: usize, end: usize) -> bool {
    let spaced = |c: char| c.is_alphanumeric() && !is_unspaced(c);
    let before = sentence[..start].chars().next_back();
    let after = sentence[end..].chars().next();
    let first = sentence[start..end].chars().next();
    let last = sentence[start..end].chars().next_back();
    let joined_before = before.is_some_and(spaced) && first.is_some_and(spaced);
    let joined_after = after.is_some_and(spaced) && last.is_some_and(spaced);
    !joined_before && !joined_after
}

/// Scripts written without spaces between words (Han, kana, Thai, …).
fn is_unspaced(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xf900..=0xfaff | 0x0e00..=0x0e7f | 0x20000..=0x2fa1f)
}

/// A part of a text: kept as it is (whitespace, line breaks), or a sentence to translate.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Keep(String),
    Translate(String),
}

/// Cuts text into sentences (after `.`, `!`, `?`, `…`, `。`, `！`, `？`, `；` and their closing
/// quotes, at line breaks), keeping the whitespace between them, and cuts overlong sentences at
/// commas or spaces so that none is longer than the model takes.
fn split_sentences(text: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let flush = |current: &mut String, pieces: &mut Vec<Piece>| {
        if current.is_empty() {
            return;
        }
        let trimmed_end = current.trim_end().len();
        let trailing = current[trimmed_end..].to_string();
        let body = &current[..trimmed_end];
        if !body.is_empty() {
            for chunk in cut_long(body) {
                pieces.push(chunk);
            }
        }
        if !trailing.is_empty() {
            pieces.push(Piece::Keep(trailing));
        }
        current.clear();
    };
    while let Some(c) = chars.next() {
        if current.trim().is_empty() && c.is_whitespace() {
            // Leading whitespace of a sentence is kept as it is.
            match pieces.last_mut() {
                Some(Piece::Keep(k)) if current.is_empty() => k.push(c),
                _ if current.is_empty() => pieces.push(Piece::Keep(c.to_string())),
                _ => current.push(c),
            }
            continue;
        }
        if c == '\n' {
            flush(&mut current, &mut pieces);
            pieces.push(Piece::Keep("\n".into()));
            continue;
        }
        current.push(c);
        let ends = matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？' | '；');
        if ends {
            while let Some(&next) = chars.peek() {
                if matches!(next, '"' | '\'' | '»' | '”' | '’' | ')' | '」' | '』' | '）' | '.' | '!' | '?') {
                    current.push(next);
                    chars.next();
                } else {
                    break;
                }
            }
            let unspaced = matches!(c, '。' | '！' | '？' | '；');
            if unspaced || chars.peek().is_none_or(|n| n.is_whitespace()) {
                flush(&mut current, &mut pieces);
            }
        }
    }
    flush(&mut current, &mut pieces);
    // Merge neighbouring kept parts.
    let mut merged: Vec<Piece> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match (merged.last_mut(), piece) {
            (Some(Piece::Keep(a)), Piece::Keep(b)) => a.push_str(&b),
            (_, piece) => merged.push(piece),
        }
    }
    merged
}

/// The most characters of one sentence translated at once (about `MAX_SENTENCE_TOKENS` tokens
/// for any script).
const MAX_SENTENCE_CHARS: usize = 400;

/// A sentence longer than `MAX_SENTENCE_CHARS`, cut at commas, semicolons or spaces.
fn cut_long(sentence: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = sentence;
    while rest.chars().count() > MAX_SENTENCE_CHARS {
        let limit = rest.char_indices().nth(MAX_SENTENCE_CHARS).map_or(rest.len(), |(i, _)| i);
        let window = &rest[..limit];
        let cut = window
            .rfind([',', ';', '，', '、', ':'])
            .map(|i| i + window[i..].chars().next().map_or(1, char::len_utf8))
            .or_else(|| window.rfind(' '))
            .filter(|&i| i > 0)
            .unwrap_or(limit);
        let (head, tail) = rest.split_at(cut);
        out.push(Piece::Translate(head.trim_end().to_string()));
        let tail_trimmed = tail.trim_start();
        out.push(Piece::Keep(" ".into()));
        rest = tail_trimmed;
    }
    if !rest.is_empty() {
        out.push(Piece::Translate(rest.to_string()));
    } else if matches!(out.last(), Some(Piece::Keep(_))) {
        out.pop();
    }
    out
}

#[derive(Debug, PartialEq)]
enum HtmlPart<'a> {
    Markup(&'a str),
    Text(&'a str),
}

/// An HTML fragment cut into markup (tags, comments, and whitespace-only text) and text nodes.
fn split_html(html: &str) -> Vec<HtmlPart<'_>> {
    let mut parts = Vec::new();
    let mut at = 0;
    while at < html.len() {
        if html[at..].starts_with('<') {
            let end = if html[at..].starts_with("<!--") {
                html[at..].find("-->").map_or(html.len(), |i| at + i + 3)
            } else {
                html[at..].find('>').map_or(html.len(), |i| at + i + 1)
            };
            parts.push(HtmlPart::Markup(&html[at..end]));
            at = end;
        } else {
            let end = html[at..].find('<').map_or(html.len(), |i| at + i);
            let text = &html[at..end];
            if text.trim().is_empty() {
                parts.push(HtmlPart::Markup(text));
            } else {
                // Leading and trailing whitespace stays outside the translation.
                let start = text.len() - text.trim_start().len();
                let finish = text.trim_end().len();
                if start > 0 {
                    parts.push(HtmlPart::Markup(&text[..start]));
                }
                parts.push(HtmlPart::Text(&text[start..finish]));
                if finish < text.len() {
                    parts.push(HtmlPart::Markup(&text[finish..]));
                }
            }
            at = end;
        }
    }
    parts
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let entity = rest.find(';').filter(|&j| j <= 10).map(|j| &rest[1..j]);
        let decoded = entity.and_then(|e| match e {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => e
                .strip_prefix("#x")
                .or_else(|| e.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        });
        match (entity, decoded) {
            (Some(e), Some(c)) => {
                out.push(c);
                rest = &rest[e.len() + 2..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// For fuzzing: cuts `text` into sentences and HTML parts and checks that nothing is lost.
#[doc(hidden)]
pub fn check_segmentation(text: &str) {
    let pieces = split_sentences(text);
    let mut rebuilt = String::new();
    for piece in &pieces {
        match piece {
            Piece::Keep(t) => rebuilt.push_str(t),
            Piece::Translate(t) => {
                assert!(!t.trim().is_empty() && t.chars().count() <= MAX_SENTENCE_CHARS, "{t:?}");
                rebuilt.push_str(t);
            }
        }
    }
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    assert_eq!(squeeze(&rebuilt), squeeze(text), "no text is lost");
    let html: String = split_html(text)
        .iter()
        .map(|p| match p {
            HtmlPart::Markup(t) | HtmlPart::Text(t) => *t,
        })
        .collect();
    assert_eq!(html, text, "HTML parts rebuild the fragment");
    let _ = glossary_units(text, &[Term { source: "a".into(), target: "б".into() }]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(pieces: &[Piece]) -> Vec<&str> {
        pieces.iter().filter_map(|p| if let Piece::Translate(t) = p { Some(t.as_str()) } else { None }).collect()
    }

    fn joined(pieces: &[Piece]) -> String {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Keep(t) | Piece::Translate(t) => t.as_str(),
            })
            .collect()
    }

    #[test]
    fn sentences_are_cut_and_whitespace_kept() {
        let text = "  The train left. It arrived (on time).\n\nПоезд прибыл!  Дальше?\n列车抵达。旅客下车！end";
        let pieces = split_sentences(text);
        assert_eq!(
            texts(&pieces),
            ["The train left.", "It arrived (on time).", "Поезд прибыл!", "Дальше?", "列车抵达。", "旅客下车！", "end"]
        );
        assert_eq!(joined(&pieces), text, "nothing is lost between the sentences");
        assert!(split_sentences("").is_empty());
        assert_eq!(texts(&split_sentences("v1.2 is out")), ["v1.2 is out"]);
    }

    #[test]
    fn segmentation_loses_nothing_on_odd_input() {
        for text in
            ["", " ", "\n\n", "...", "a.b.c. d", "。。。", "<p>x</p", "&;&#;&#x;", "«Да?» — «Нет!»", "\u{2581}▁ x"]
        {
            check_segmentation(text);
        }
        check_segmentation(&"x".repeat(2000));
        check_segmentation(&"中".repeat(900));
    }

    #[test]
    fn an_overlong_sentence_is_cut_not_truncated() {
        let long = (0..200).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ");
        let pieces = split_sentences(&long);
        let parts = texts(&pieces);
        assert!(parts.len() > 1 && parts.iter().all(|p| p.chars().count() <= MAX_SENTENCE_CHARS));
        assert_eq!(parts.join(" "), long);
    }

    #[test]
    fn html_keeps_its_markup() {
        let html = "<p class=\"lead\">Tokayev &amp; Mirziyoyev met.</p>\n<p><b>Astana</b> hosted <!-- x --> it.</p>";
        let parts = split_html(html);
        let text: Vec<&str> =
            parts.iter().filter_map(|p| if let HtmlPart::Text(t) = p { Some(*t) } else { None }).collect();
        assert_eq!(text, ["Tokayev &amp; Mirziyoyev met.", "Astana", "hosted", "it."]);
        let rebuilt: String = parts
            .iter()
            .map(|p| match p {
                HtmlPart::Markup(t) | HtmlPart::Text(t) => *t,
            })
            .collect();
        assert_eq!(rebuilt, html);
        assert_eq!(unescape("a &amp; b &lt;c&gt; &#1090; &#x4e2d; &bogus; &"), "a & b <c> т 中 &bogus; &");
        assert_eq!(escape("a & <b>"), "a &amp; &lt;b&gt;");
    }

    #[test]
    fn glossary_terms_are_found_whole_and_longest_first() {
        let glossary = vec![
            Term { source: "Tokayev".into(), target: "Тоқаев".into() },
            Term { source: "Kassym-Jomart Tokayev".into(), target: "Қасым-Жомарт Тоқаев".into() },
            Term { source: "托卡耶夫".into(), target: "Тоқаев".into() },
        ];
        let units = glossary_units("President Kassym-Jomart Tokayev met tokayev, not Tokayevs.", &glossary);
        assert_eq!(
            units,
            [
                Unit::Text("President ".into()),
                Unit::Term("Қасым-Жомарт Тоқаев".into()),
                Unit::Text(" met ".into()),
                Unit::Term("Тоқаев".into()),
                Unit::Text(", not Tokayevs.".into()),
            ]
        );
        let units = glossary_units("托卡耶夫总统", &glossary);
        assert_eq!(units, [Unit::Term("Тоқаев".into()), Unit::Text("总统".into())]);
    }

    #[test]
    fn many_texts_at_once_are_what_each_makes_alone() {
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/m2m100/nllb-2x2");
        let translator = Translator::load(&fixture).unwrap();
        let terms = [Term { source: "托卡耶夫".into(), target: "Тоқаев".into() }];
        let (headline, body) = ("托卡耶夫会见代表团", "<p>双方讨论了贸易。<b>铁路</b>运输增长。</p><p>下次会议。</p>");
        let texts = [
            Text { value: headline, html: false },
            Text { value: body, html: true },
            Text { value: "", html: true },
            Text { value: "下次会议在塔什干举行。", html: false },
        ];
        let many = translator.translate_many_cached(&texts, "zh", "kk", &terms, None).unwrap();
        assert_eq!(many.len(), 4);
        assert_eq!(many[0], translator.translate(&[headline], "zh", "kk", &terms).unwrap()[0]);
        assert_eq!(many[1], translator.translate_html(body, "zh", "kk", &terms).unwrap());
        assert_eq!(many[2], "");
        assert_eq!(many[3], translator.translate(&["下次会议在塔什干举行。"], "zh", "kk", &terms).unwrap()[0]);
    }
}
