//! Online clustering of items into stories, after Miranda et al. (2018): each item, in the order the
//! store took it, is compared with the pool of active stories by its words (as the keyword index
//! analyses its language), by its names and numbers (which meet across the Cyrillic and Latin
//! spellings of the member languages, and numbers across every script), by its multilingual
//! embedding where a model is installed, and by time; it joins the best story above a threshold or
//! starts a new one. A story leaves the pool when nothing has joined it for a while (so that an
//! anniversary article a year later is not last year's story). When an item fits two stories of the
//! pool about equally well and the two stories fit each other, they are merged.
//!
//! Pure: no IO and no clock. The story engine feeds it what the store holds, in order, and records
//! what it decides; the evaluation on the development set drives it the same way.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// What the clusterer is told about an item.
#[derive(Debug, Clone)]
pub struct ItemInput<'a> {
    pub item: &'a str,
    /// Its language tag, for the analysis of its words.
    pub language: Option<&'a str>,
    pub headline: &'a str,
    /// Description and body, as plain text.
    pub text: &'a str,
    /// When it happened on the wire (`versionCreated`), µs since the epoch.
    pub at: i64,
    /// Its embedding (normalised), where the embedding model has made one.
    pub dense: Option<&'a [f32]>,
}

/// The clusterer's settings (see [`Params::default`] for how they were chosen).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// The share of the score that comes from the embeddings when both sides have one.
    pub dense_weight: f32,
    /// Embedding cosines at or below this count as nothing (multilingual-e5's cosines of unrelated
    /// news texts sit around 0.75-0.8).
    pub dense_floor: f32,
    /// The score an item needs to join a story.
    pub threshold: f32,
    /// The score needed when the item or the story has no embedding (words, names and numbers only).
    pub threshold_words: f32,
    /// How names and numbers weigh against the item's words.
    pub name_weight: f32,
    /// A story leaves the pool this long after its last item.
    pub window_micros: i64,
    /// The score falls by e for every this much time between the item and the story's items.
    pub time_scale_micros: i64,
    /// Two stories an item fits both at least this well, which fit each other as well, are merged.
    pub merge_threshold: f32,
    /// An item is compared with a story's nearest this many items (words and embeddings); 0 compares
    /// its words with the story's centre.
    pub nearest: usize,
    /// Taken from the embedding cosine of two items in one language: one language's texts are closer
    /// to each other than the same story told in two languages (e5: the same event's pairs have a
    /// median cosine of 0.91 within a language and 0.83 across).
    pub same_language_penalty: f32,
}

const HOUR: i64 = 3_600_000_000;

impl Default for Params {
    /// Chosen on the development set (`devset/stories.jsonl`, BENCHMARKS.md) from a coarse grid by the
    /// worst of four scores (across and within languages, on the set as written and on a busy wire of
    /// the same items with an event every four hours), not by the set as written alone: lower
    /// thresholds score better there and collapse a busy wire into a few stories.
    fn default() -> Params {
        Params {
            dense_weight: 0.7,
            dense_floor: 0.70,
            threshold: 0.30,
            threshold_words: 0.10,
            name_weight: 4.0,
            window_micros: 72 * HOUR,
            time_scale_micros: 96 * HOUR,
            merge_threshold: 0.45,
            nearest: 3,
            same_language_penalty: 0.08,
        }
    }
}

/// Where an item went.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub story: String,
    /// Whether it started the story.
    pub started: bool,
    /// How well it fitted the story it joined (0 for a new one).
    pub score: f32,
    /// How close it is to its story's centre after joining (1 alone): the story's title is its most
    /// central item's headline.
    pub centrality: f32,
    /// Stories merged into `story` because of this item (their ids redirect to it).
    pub merged: Vec<String>,
}

/// A sparse vector: term keys and weights, normalised, sorted by key.
type Sparse = Vec<(u64, f32)>;

/// The dot product of two sparse vectors sorted by key.
fn sparse_dot(a: &Sparse, b: &Sparse) -> f32 {
    let (mut i, mut j, mut dot) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                dot += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    dot
}

#[derive(Debug, Clone)]
struct Story {
    id: String,
    items: Vec<String>,
    first_at: i64,
    last_at: i64,
    /// The sum of its items' word vectors and its squared norm.
    words: HashMap<u64, f32>,
    words_norm_sq: f32,
    /// The sum of its items' embeddings and how many there are.
    dense: Option<Vec<f32>>,
    dense_count: u32,
    /// The assignment that last touched it (stories are kept while recently touched, whatever their
    /// time: a backfill of old items clusters among itself).
    touched: u64,
}

impl Story {
    /// A story with no item yet, started at `at`.
    fn empty(id: &str, at: i64, touched: u64) -> Story {
        Story {
            id: id.to_string(),
            items: Vec::new(),
            first_at: at,
            last_at: at,
            words: HashMap::new(),
            words_norm_sq: 0.0,
            dense: None,
            dense_count: 0,
            touched,
        }
    }
}

#[derive(Debug, Clone)]
struct Member {
    story: String,
    words: Sparse,
    dense: Option<Vec<f32>>,
    at: i64,
    /// Its language's primary subtag (`uz` for `uz-Cyrl`).
    language: String,
}

/// A language tag's primary subtag, lowercased.
fn primary(language: Option<&str>) -> String {
    language.unwrap_or_default().split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase()
}

/// The clusterer's state: document frequencies, the pool of active stories and their items.
#[derive(Debug, Clone, Default)]
pub struct Clusterer {
    params: Params,
    document_frequency: HashMap<u64, u32>,
    documents: u32,
    stories: HashMap<String, Story>,
    /// Stories by the terms that weigh most in their items: where candidates come from.
    postings: HashMap<u64, Vec<String>>,
    members: HashMap<String, Member>,
    /// The latest time seen: stories older than the window before it leave the pool.
    watermark: i64,
    /// Assignments made so far.
    assignments: u64,
}

/// A story old by the clock stays in the pool while one of the last this many assignments touched it.
const RECENTLY_TOUCHED: u64 = 2000;

/// The most stories a term leads to (its latest).
const POSTED_STORIES: usize = 64;
/// How many of a story's latest items an item's words are compared with.
const WORDS_COMPARED: usize = 30;
/// Terms of an item that index its story for candidates.
const POSTED_TERMS: usize = 12;
/// At most this many characters of an item's text are read (the lead carries the event).
const TEXT_CHARS: usize = 4000;

fn key(kind: u8, text: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    kind.hash(&mut hasher);
    text.hash(&mut hasher);
    hasher.finish()
}

/// The consonant skeleton of a name, the same for its Cyrillic and Latin spellings in the member
/// languages (Тоқаев, Токаев, Tokayev, Toʻqayev: `tkv`): folded to Latin, the first letter kept, then
/// only consonants, with the letters the alphabets write differently made one, doubled ones single.
/// `None` for names too short to tell apart.
pub fn name_key(word: &str) -> Option<String> {
    let latin = karavan_script::fold(karavan_script::Language::Kazakh, word);
    let mut out = String::new();
    let mut previous = None;
    for (index, c) in latin.chars().enumerate() {
        if !c.is_ascii_alphabetic() {
            continue;
        }
        let mapped = match c {
            'q' | 'c' => 'k',
            'w' => 'v',
            'j' => 'z',
            other => other,
        };
        let keep = index == 0 || !matches!(mapped, 'a' | 'e' | 'i' | 'o' | 'u' | 'y' | 'h');
        if keep && previous != Some(mapped) {
            out.push(mapped);
        }
        previous = Some(mapped);
    }
    (out.chars().count() >= 3).then_some(out)
}

/// Names (capitalised words in Cyrillic or Latin that do not open a sentence) and numbers (runs of
/// digits, a decimal point or comma kept: 5,8 and 5.8 meet) of a text, as cross-language keys.
fn names_and_numbers(text: &str) -> Vec<u64> {
    let chars: Vec<char> = text.chars().collect();
    let apostrophe = |c: char| matches!(c, 'ʻ' | 'ʼ' | '‘' | '’' | '\'');
    let mut keys = Vec::new();
    let mut sentence_start = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let mut number = String::new();
            while i < chars.len() {
                let d = chars[i];
                let separator =
                    matches!(d, '.' | ',') && chars.get(i + 1).is_some_and(char::is_ascii_digit) && !number.is_empty();
                if d.is_ascii_digit() {
                    number.push(d);
                } else if separator {
                    number.push('.');
                } else {
                    break;
                }
                i += 1;
            }
            if number.len() >= 2 {
                keys.push(key(b'd', &number));
            }
            sentence_start = false;
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i].is_alphabetic() || apostrophe(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if !sentence_start
                && c.is_uppercase()
                && let Some(name) = name_key(&word)
            {
                keys.push(key(b'n', &name));
            }
            sentence_start = false;
        } else {
            if matches!(c, '.' | '!' | '?' | '\n' | '。' | '！' | '？' | ':' | '«' | '"' | '“' | '—') {
                sentence_start = true;
            }
            i += 1;
        }
    }
    keys
}

impl Clusterer {
    pub fn new(params: Params) -> Clusterer {
        Clusterer { params, ..Clusterer::default() }
    }

    pub fn params(&self) -> Params {
        self.params
    }

    /// How many stories are in the pool.
    pub fn active_stories(&self) -> usize {
        self.stories.len()
    }

    /// The story an item of the pool is in.
    pub fn story_of(&self, item: &str) -> Option<&str> {
        self.members.get(item).map(|m| m.story.as_str())
    }

    /// The raw term counts of an item: its words (the headline's twice), names and numbers.
    fn counts(&self, input: &ItemInput<'_>) -> HashMap<u64, f32> {
        let text: String = input.text.chars().take(TEXT_CHARS).collect();
        let mut counts: HashMap<u64, f32> = HashMap::new();
        for (part, weight) in [(input.headline, 2.0), (text.as_str(), 1.0)] {
            for term in karavan_search::analysis::terms(input.language, part) {
                if term.chars().count() >= 2 {
                    *counts.entry(key(b'w', &term)).or_default() += weight;
                }
            }
            for name in names_and_numbers(part) {
                *counts.entry(name).or_default() += weight * self.params.name_weight;
            }
        }
        counts
    }

    /// The item's weighted, normalised vector: (1 + ln tf) · idf, with the document frequencies
    /// counted so far (this item included).
    fn weigh(&mut self, counts: HashMap<u64, f32>) -> Sparse {
        self.documents += 1;
        for term in counts.keys() {
            *self.document_frequency.entry(*term).or_default() += 1;
        }
        let n = self.documents as f32;
        let mut vector: Sparse = counts
            .into_iter()
            .map(|(term, count)| {
                let df = self.document_frequency.get(&term).copied().unwrap_or(1) as f32;
                let idf = (1.0 + (n + 1.0) / (df + 1.0)).ln();
                (term, (1.0 + count.ln().max(0.0)) * idf)
            })
            .collect();
        let norm = vector.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, w) in &mut vector {
                *w /= norm;
            }
        }
        vector.sort_unstable_by_key(|(term, _)| *term);
        vector
    }

    fn word_cosine(words: &Sparse, story: &Story) -> f32 {
        if story.words_norm_sq <= 0.0 {
            return 0.0;
        }
        let dot: f32 = words.iter().filter_map(|(term, w)| story.words.get(term).map(|s| s * w)).sum();
        dot / story.words_norm_sq.sqrt()
    }

    /// How close an item's words are to a story's items': the mean of its cosines with the story's
    /// nearest (up to) three of its latest items (the centre of a story's words grows with every item,
    /// and would draw in more and more on a busy wire).
    fn word_similarity(&self, words: &Sparse, story: &Story, except: Option<&str>) -> f32 {
        let mut cosines: Vec<f32> = story
            .items
            .iter()
            .rev()
            .filter(|item| Some(item.as_str()) != except)
            .take(WORDS_COMPARED)
            .filter_map(|item| self.members.get(item))
            .map(|other| sparse_dot(words, &other.words))
            .collect();
        if cosines.is_empty() {
            return 0.0;
        }
        cosines.sort_by(|a, b| b.total_cmp(a));
        let top = &cosines[..cosines.len().min(self.params.nearest.max(1))];
        top.iter().sum::<f32>() / top.len() as f32
    }

    /// How close an embedding is to a story's: the mean of its cosines with the story's nearest (up to)
    /// three embedded items. Not the story's centre: the mean of many news embeddings is close to
    /// every news text, and a growing story would draw in everything on a busy wire.
    fn dense_similarity(&self, dense: &[f32], language: &str, story: &Story, except: Option<&str>) -> Option<f32> {
        let penalty = self.params.same_language_penalty;
        let mut cosines: Vec<f32> = story
            .items
            .iter()
            .filter(|item| Some(item.as_str()) != except)
            .filter_map(|item| self.members.get(item))
            .filter_map(|member| Some((member.dense.as_ref()?, member.language == language)))
            .filter(|(other, _)| other.len() == dense.len())
            .map(|(other, same)| {
                // Texts in one language are closer than the same story told in two: one bar for both.
                dense.iter().zip(other).map(|(a, b)| a * b).sum::<f32>() - if same { penalty } else { 0.0 }
            })
            .collect();
        if cosines.is_empty() {
            return None;
        }
        cosines.sort_by(|a, b| b.total_cmp(a));
        let top = &cosines[..cosines.len().min(self.params.nearest.max(1))];
        Some(top.iter().sum::<f32>() / top.len() as f32)
    }

    /// How well an item fits a story, time included.
    fn score(
        &self,
        words: &Sparse,
        dense: Option<(&[f32], &str)>,
        at: i64,
        story: &Story,
        except: Option<&str>,
    ) -> (f32, bool) {
        let p = &self.params;
        let lexical =
            if p.nearest == 0 { Self::word_cosine(words, story) } else { self.word_similarity(words, story, except) };
        let (mixed, with_dense) =
            match dense.and_then(|(d, language)| self.dense_similarity(d, language, story, except)) {
                Some(cosine) => {
                    let semantic = ((cosine - p.dense_floor) / (1.0 - p.dense_floor)).clamp(0.0, 1.0);
                    ((1.0 - p.dense_weight) * lexical + p.dense_weight * semantic, true)
                }
                None => (lexical, false),
            };
        let gap = if at < story.first_at {
            story.first_at - at
        } else if at > story.last_at {
            at - story.last_at
        } else {
            0
        };
        let decay = (-(gap as f64) / p.time_scale_micros.max(1) as f64).exp() as f32;
        (mixed * decay, with_dense)
    }

    fn passes(&self, score: f32, with_dense: bool) -> bool {
        score >= if with_dense { self.params.threshold } else { self.params.threshold_words }
    }

    /// Stories that share a weighty term with the item, or (with embeddings) any story of the pool
    /// whose items were embedded, within the window of the item's time.
    fn candidates(&self, words: &Sparse, dense: Option<&[f32]>, at: i64) -> Vec<String> {
        let window = self.params.window_micros;
        let in_window = |story: &Story| at <= story.last_at + window && at + window >= story.first_at;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut top: Vec<&(u64, f32)> = words.iter().collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (term, _) in top.into_iter().take(POSTED_TERMS * 2) {
            for story in self.postings.get(term).into_iter().flatten() {
                if seen.insert(story.clone()) && self.stories.get(story).is_some_and(in_window) {
                    out.push(story.clone());
                }
            }
        }
        if dense.is_some() {
            for (id, story) in &self.stories {
                if story.dense.is_some() && in_window(story) && seen.insert(id.clone()) {
                    out.push(id.clone());
                }
            }
        }
        out
    }

    fn add_to(&mut self, story_id: &str, item: &str, member: Member) {
        let story = self.stories.get_mut(story_id).expect("story in the pool");
        for (term, w) in &member.words {
            let entry = story.words.entry(*term).or_default();
            story.words_norm_sq += 2.0 * *entry * w + w * w;
            *entry += w;
        }
        if let Some(dense) = &member.dense {
            let sum = story.dense.get_or_insert_with(|| vec![0.0; dense.len()]);
            if sum.len() == dense.len() {
                for (s, x) in sum.iter_mut().zip(dense) {
                    *s += x;
                }
                story.dense_count += 1;
            }
        }
        story.first_at = story.first_at.min(member.at);
        story.last_at = story.last_at.max(member.at);
        story.touched = self.assignments;
        story.items.push(item.to_string());
        let mut top = member.words.clone();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (term, _) in top.into_iter().take(POSTED_TERMS) {
            let posted = self.postings.entry(term).or_default();
            if !posted.iter().any(|s| s == story_id) {
                posted.push(story_id.to_string());
                // A term common to many stories names none of them: only its latest stories are kept.
                if posted.len() > POSTED_STORIES {
                    posted.remove(0);
                }
            }
        }
        self.members.insert(item.to_string(), member);
    }

    /// Takes an item out of its story (a kill, or before a correction is placed again); the story
    /// it was in.
    pub fn remove(&mut self, item: &str) -> Option<String> {
        let member = self.members.remove(item)?;
        if let Some(story) = self.stories.get_mut(&member.story) {
            for (term, w) in &member.words {
                if let Some(entry) = story.words.get_mut(term) {
                    story.words_norm_sq -= 2.0 * *entry * w - w * w;
                    *entry -= w;
                    if entry.abs() < 1e-6 {
                        story.words.remove(term);
                    }
                }
            }
            story.words_norm_sq = story.words_norm_sq.max(0.0);
            if let (Some(dense), Some(sum)) = (&member.dense, story.dense.as_mut())
                && sum.len() == dense.len()
            {
                for (s, x) in sum.iter_mut().zip(dense) {
                    *s -= x;
                }
                story.dense_count = story.dense_count.saturating_sub(1);
                if story.dense_count == 0 {
                    story.dense = None;
                }
            }
            story.items.retain(|i| i != item);
        }
        Some(member.story)
    }

    /// Puts an item back into the story it was placed in before (rebuilding the pool from the store
    /// when the engine starts): no decision, the same bookkeeping.
    pub fn restore(&mut self, input: &ItemInput<'_>, story: &str) {
        self.remove(input.item);
        let counts = self.counts(input);
        let words = self.weigh(counts);
        self.watermark = self.watermark.max(input.at);
        let touched = self.assignments;
        self.stories.entry(story.to_string()).or_insert_with(|| Story::empty(story, input.at, touched));
        let dense = input.dense.map(<[f32]>::to_vec);
        let language = primary(input.language);
        self.add_to(story, input.item, Member { story: story.to_string(), words, dense, at: input.at, language });
    }

    /// The items of a story of the pool with their centrality now.
    pub fn centralities(&self, story: &str) -> Vec<(String, f32)> {
        self.items_of(story)
            .into_iter()
            .map(|item| {
                let centrality = self.centrality(&item);
                (item, centrality)
            })
            .collect()
    }

    /// Places an item (a new one, or a correction of one placed before): into the story it fits best,
    /// or a new story named by `new_id`.
    pub fn assign(&mut self, input: &ItemInput<'_>, new_id: impl FnOnce() -> String) -> Assignment {
        let previous = self.remove(input.item);
        self.assignments += 1;
        let counts = self.counts(input);
        let words = self.weigh(counts);
        let dense = input.dense.map(<[f32]>::to_vec);
        let language = primary(input.language);
        self.watermark = self.watermark.max(input.at);
        if self.assignments.is_multiple_of(64) {
            self.evict();
        }

        let mut scored: Vec<(f32, bool, String)> = self
            .candidates(&words, dense.as_deref(), input.at)
            .into_iter()
            .filter_map(|id| {
                let story = self.stories.get(&id)?;
                let with = dense.as_deref().map(|d| (d, language.as_str()));
                let (score, with_dense) = self.score(&words, with, input.at, story, None);
                Some((score, with_dense, id))
            })
            .collect();
        // Best first; a correction keeps its story on a tie.
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0).then_with(|| (Some(&b.2) == previous.as_ref()).cmp(&(Some(&a.2) == previous.as_ref())))
        });
        let member =
            Member { story: String::new(), words: words.clone(), dense: dense.clone(), at: input.at, language };
        let best = scored.first().filter(|(score, with_dense, _)| self.passes(*score, *with_dense)).cloned();
        let Some((score, _, story_id)) = best else {
            let id = new_id();
            self.stories.insert(id.clone(), Story::empty(&id, input.at, self.assignments));
            self.add_to(&id, input.item, Member { story: id.clone(), ..member });
            return Assignment { story: id, started: true, score: 0.0, centrality: 1.0, merged: Vec::new() };
        };
        self.add_to(&story_id, input.item, Member { story: story_id.clone(), ..member });
        // Other stories the item fits about as well, which fit this one: the same story, found twice.
        let mut merged = Vec::new();
        for (other_score, _, other) in scored.iter().skip(1) {
            if *other_score < self.params.merge_threshold {
                break;
            }
            if self.stories_fit(&story_id, other) {
                self.merge(other, &story_id);
                merged.push(other.clone());
            }
        }
        let centrality = self.centrality(input.item);
        Assignment { story: story_id, started: false, score, centrality, merged }
    }

    /// Whether two stories of the pool fit each other (their centres, as an item fits a story).
    fn stories_fit(&self, a: &str, b: &str) -> bool {
        let (Some(a), Some(b)) = (self.stories.get(a), self.stories.get(b)) else { return false };
        if a.words_norm_sq <= 0.0 || b.words_norm_sq <= 0.0 {
            return false;
        }
        let norm = a.words_norm_sq.sqrt();
        let words: Sparse = a.words.iter().map(|(t, w)| (*t, w / norm)).collect();
        let dense = a.dense.as_ref().map(|sum| {
            let n = sum.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            sum.iter().map(|x| x / n).collect::<Vec<f32>>()
        });
        let at = a.last_at.clamp(b.first_at, b.last_at);
        let (score, _) = self.score(&words, dense.as_deref().map(|d| (d, "")), at, b, None);
        score >= self.params.merge_threshold
    }

    /// Moves every item of `from` into `into`; `from` leaves the pool (its id redirects to `into`).
    fn merge(&mut self, from: &str, into: &str) {
        let Some(story) = self.stories.remove(from) else { return };
        for item in story.items {
            if let Some(mut member) = self.members.remove(&item) {
                member.story = into.to_string();
                self.add_to(into, &item, member);
            }
        }
        // Its postings were re-made for `into` as its items moved.
        for posted in self.postings.values_mut() {
            posted.retain(|s| s != from);
        }
    }

    /// How close an item of the pool is to its story's centre (its cosine with the story's sum).
    pub fn centrality(&self, item: &str) -> f32 {
        let Some(member) = self.members.get(item) else { return 0.0 };
        let Some(story) = self.stories.get(&member.story) else { return 0.0 };
        if story.items.len() <= 1 {
            return 1.0;
        }
        let with = member.dense.as_deref().map(|d| (d, member.language.as_str()));
        let (score, _) = self.score(&member.words, with, member.at, story, Some(item));
        score
    }

    /// The items of a story of the pool.
    pub fn items_of(&self, story: &str) -> Vec<String> {
        self.stories.get(story).map(|s| s.items.clone()).unwrap_or_default()
    }

    /// Stories whose last item is more than twice the window before the newest time seen, and that no
    /// recent assignment touched, leave the pool with their items (they are done; an item that would
    /// have joined one starts anew).
    fn evict(&mut self) {
        let horizon = self.watermark - 2 * self.params.window_micros;
        let recent = self.assignments.saturating_sub(RECENTLY_TOUCHED);
        let old: Vec<String> =
            self.stories.values().filter(|s| s.last_at < horizon && s.touched < recent).map(|s| s.id.clone()).collect();
        if old.is_empty() {
            return;
        }
        for id in &old {
            if let Some(story) = self.stories.remove(id) {
                for item in story.items {
                    self.members.remove(&item);
                }
            }
        }
        let gone: HashSet<&String> = old.iter().collect();
        self.postings.retain(|_, posted| {
            posted.retain(|s| !gone.contains(s));
            !posted.is_empty()
        });
    }
}

/// Clustering quality against labels: BCubed precision, recall and F1 (Amigó et al. 2009), and
/// pairwise precision, recall and F1. `clusters` and `labels` give, for each item in the same order,
/// its cluster and its true story.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    pub bcubed_precision: f64,
    pub bcubed_recall: f64,
    pub bcubed_f1: f64,
    pub pairwise_precision: f64,
    pub pairwise_recall: f64,
    pub pairwise_f1: f64,
}

pub fn quality(clusters: &[&str], labels: &[&str]) -> Quality {
    let n = clusters.len().min(labels.len());
    let f1 = |p: f64, r: f64| if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
    let (mut precision, mut recall) = (0.0, 0.0);
    let (mut together, mut same_label, mut both) = (0u64, 0u64, 0u64);
    for i in 0..n {
        let (mut same_cluster, mut same_story, mut correct) = (0u64, 0u64, 0u64);
        for j in 0..n {
            let c = clusters[i] == clusters[j];
            let l = labels[i] == labels[j];
            same_cluster += u64::from(c);
            same_story += u64::from(l);
            correct += u64::from(c && l);
            if j > i {
                together += u64::from(c);
                same_label += u64::from(l);
                both += u64::from(c && l);
            }
        }
        precision += correct as f64 / same_cluster.max(1) as f64;
        recall += correct as f64 / same_story.max(1) as f64;
    }
    let (bp, br) = if n > 0 { (precision / n as f64, recall / n as f64) } else { (0.0, 0.0) };
    let pp = if together > 0 { both as f64 / together as f64 } else { 1.0 };
    let pr = if same_label > 0 { both as f64 / same_label as f64 } else { 1.0 };
    Quality {
        bcubed_precision: bp,
        bcubed_recall: br,
        bcubed_f1: f1(bp, br),
        pairwise_precision: pp,
        pairwise_recall: pr,
        pairwise_f1: f1(pp, pr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_meet_across_scripts_and_alphabets() {
        let keys: Vec<_> = ["Тоқаев", "Токаев", "Tokayev", "Toʻqayev"].iter().map(|w| name_key(w)).collect();
        assert!(keys.iter().all(|k| k == &keys[0]) && keys[0].is_some(), "{keys:?}");
        let keys: Vec<_> = ["Ташкент", "Тошкент", "Toshkent", "Tashkent"].iter().map(|w| name_key(w)).collect();
        assert!(keys.iter().all(|k| k == &keys[0]), "{keys:?}");
        assert_ne!(name_key("Бишкек"), name_key("Ташкент"));
        assert_eq!(name_key("Ли"), None, "too short to tell apart");
    }

    #[test]
    fn quality_is_bcubed_and_pairwise() {
        let perfect = quality(&["a", "a", "b"], &["x", "x", "y"]);
        assert_eq!((perfect.bcubed_f1, perfect.pairwise_f1), (1.0, 1.0));
        // Everything in one cluster: recall 1, precision (2/3·2 + 1/3) / 3.
        let lumped = quality(&["a", "a", "a"], &["x", "x", "y"]);
        assert!((lumped.bcubed_precision - 5.0 / 9.0).abs() < 1e-9 && lumped.bcubed_recall == 1.0);
        assert!((lumped.pairwise_precision - 1.0 / 3.0).abs() < 1e-9);
    }

    fn item<'a>(item: &'a str, language: &'a str, headline: &'a str, text: &'a str, hours: i64) -> ItemInput<'a> {
        ItemInput {
            item,
            language: Some(language),
            headline,
            text,
            at: 1_800_000_000_000_000 + hours * HOUR,
            dense: None,
        }
    }

    #[test]
    fn items_of_one_event_meet_and_other_events_stay_apart() {
        // The mechanics, not the calibration: three items make no document frequencies to speak of.
        let mut clusterer = Clusterer::new(Params { threshold_words: 0.05, ..Params::default() });
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("s{n}")
        };
        let a = clusterer.assign(
            &item("1", "ru", "Токаев прибыл в Ташкент с государственным визитом",
                  "Президент Казахстана Касым-Жомарт Токаев прибыл в Ташкент. Переговоры с Мирзиёевым пройдут во вторник.", 0),
            &mut next,
        );
        let b = clusterer.assign(
            &item(
                "2",
                "kk",
                "Тоқаев Ташкентке мемлекеттік сапармен барды",
                "Мемлекет басшысы Қасым-Жомарт Тоқаев Ташкентке келді. Мирзиёевпен келіссөздер сейсенбіде өтеді.",
                2,
            ),
            &mut next,
        );
        let c = clusterer.assign(
            &item(
                "3",
                "ru",
                "Землетрясение магнитудой 5,8 произошло в Таджикистане",
                "Подземные толчки ощущались в Душанбе. Пострадавших нет, сообщили в КЧС.",
                3,
            ),
            &mut next,
        );
        assert!(a.started && !b.started && b.story == a.story, "{a:?} {b:?}");
        assert!(c.started && c.story != a.story, "{c:?}");
        // Killed, the item leaves its story.
        assert_eq!(clusterer.remove("2").as_deref(), Some(a.story.as_str()));
        assert_eq!(clusterer.items_of(&a.story), ["1"]);
        // A year later the same words start a new story: the old one has left the pool.
        let later = clusterer.assign(
            &item(
                "4",
                "ru",
                "Токаев прибыл в Ташкент с государственным визитом",
                "Президент Казахстана Касым-Жомарт Токаев прибыл в Ташкент.",
                24 * 365,
            ),
            &mut next,
        );
        assert!(later.started, "{later:?}");
    }
}
