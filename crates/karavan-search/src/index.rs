//! The search index: schema, near-real-time updates, and queries with the caller's visibility inside.
//!
//! The index holds one document per item: its current version. It is derived data: the commit payload
//! records the highest store sequence number indexed, so that a restart can catch up from the store.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use tantivy::aggregation::AggregationCollector;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::collector::{Collector, Count, DocSetCollector, SegmentCollector};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TantivyDocument, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal, SegmentReader, Term,
};

use crate::analysis::{self, Analyzer};

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query text is over the limits ([`MAX_QUERY_TERMS`], [`MAX_QUERY_CHARS`]); the message says
    /// which. (Text whose syntax does not parse is read as plain words, never refused.)
    #[error("q: {0}")]
    BadQuery(String),
    #[error("search index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory error: {0}")]
    Directory(String),
    #[error("search index io error: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, SearchError>;

/// What the index stores of an item's current version.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDoc {
    pub item_id: String,
    pub seq: i64,
    pub owner: String,
    pub country: Option<String>,
    pub language: Option<String>,
    pub item_type: Option<String>,
    pub urgency: Option<u8>,
    /// `versionCreated`, or when the version was stored (µs since the epoch).
    pub dated_at: i64,
    /// When others may first see it, before agreement delays (µs).
    pub available_at: i64,
    pub pub_status: String,
    /// Subject keys (codes and URIs), for filters, facets and subject-limited agreements.
    pub subjects: Vec<String>,
    pub genres: Vec<String>,
    pub headline: String,
    /// Plain text of the bodies and descriptions.
    pub body: String,
    /// Machine translations of the headline and text: (language tag, text), each indexed with its
    /// language's analyzer, so a search in that language finds the item.
    pub translations: Vec<(String, String)>,
}

/// One agreement, as the search needs it.
#[derive(Debug, Clone)]
pub struct Grant {
    pub grantor: String,
    pub delay_minutes: u32,
    /// Empty: all of the grantor's items.
    pub subjects: Vec<String>,
}

/// Who is searching, and what they may see: the visibility rule of `karavan_domain::visibility_for`,
/// as index queries.
#[derive(Debug, Clone)]
pub struct Audience {
    pub viewer: String,
    pub grants: Vec<Grant>,
    /// Now, in µs since the epoch.
    pub now: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    Newest,
}

/// A search request, already validated by the caller.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The query text in the query language (phrases, AND / OR, -exclusion); `None` matches all.
    pub text: Option<String>,
    /// The language to analyse the query in; `None`: detected from the script, else every language.
    pub query_language: Option<String>,
    pub members: Vec<String>,
    pub countries: Vec<String>,
    /// Language tags; `uz` matches `uz-Latn` and `uz-Cyrl`.
    pub languages: Vec<String>,
    pub subjects: Vec<String>,
    pub genres: Vec<String>,
    pub types: Vec<String>,
    pub urgency: Option<(u8, u8)>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub sort: Sort,
    pub offset: usize,
    /// Keyword search only: the page starts after the hit with this key (a cursor from an earlier
    /// page), after which `offset` still skips. Reaches every hit, however deep.
    pub after: Option<After>,
    pub limit: usize,
}

/// Where a hit stands in a keyword ranking: the key a cursor carries to start the next page after
/// it. Relevance ranks by score, then by store sequence (older first); date by `dated_at`, then by
/// sequence (newer first). The sequence is unique per indexed item, so the order is total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum After {
    Relevance { score: f32, seq: i64 },
    Newest { dated_at: i64, seq: i64 },
}

impl After {
    /// The key as a sortable pair: a hit ranks before another when its pair is larger.
    fn rank(self) -> (i64, i64) {
        match self {
            After::Relevance { score, seq } => (ordered_score(score), seq.saturating_neg()),
            After::Newest { dated_at, seq } => (dated_at, seq),
        }
    }

    pub fn sort(self) -> Sort {
        match self {
            After::Relevance { .. } => Sort::Relevance,
            After::Newest { .. } => Sort::Newest,
        }
    }

    /// The key as a cursor token: `r<score bits in hex>.<seq>` or `d<dated_at>.<seq>`.
    pub fn token(self) -> String {
        match self {
            After::Relevance { score, seq } => format!("r{:08x}.{seq}", score.to_bits()),
            After::Newest { dated_at, seq } => format!("d{dated_at}.{seq}"),
        }
    }

    /// Reads a token written by [`After::token`]; `None` for anything else.
    pub fn parse(token: &str) -> Option<After> {
        let (kind, rest) = token.split_at_checked(1)?;
        let (first, seq) = rest.split_once('.')?;
        let seq: i64 = seq.parse().ok()?;
        match kind {
            "r" if first.len() == 8 => {
                let score = f32::from_bits(u32::from_str_radix(first, 16).ok()?);
                score.is_finite().then_some(After::Relevance { score, seq })
            }
            "d" => Some(After::Newest { dated_at: first.parse().ok()?, seq }),
            _ => None,
        }
    }
}

/// A score as an integer with the same order (for finite scores, and -0.0 below 0.0).
fn ordered_score(score: f32) -> i64 {
    let bits = score.to_bits() as i32;
    i64::from(if bits < 0 { !(bits & i32::MAX) } else { bits })
}

impl SearchRequest {
    pub fn text(text: &str) -> SearchRequest {
        SearchRequest {
            text: Some(text.to_string()),
            query_language: None,
            members: Vec::new(),
            countries: Vec::new(),
            languages: Vec::new(),
            subjects: Vec::new(),
            genres: Vec::new(),
            types: Vec::new(),
            urgency: None,
            from: None,
            to: None,
            sort: Sort::Relevance,
            offset: 0,
            after: None,
            limit: 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub item_id: String,
    pub seq: i64,
    pub score: f32,
    /// HTML: the text escaped, the matched words in `<b>`.
    pub snippet: String,
    /// Its place in a keyword ranking (the next page's cursor is the last hit's); `None` in
    /// rankings made elsewhere (semantic, hybrid), which page by offset.
    pub key: Option<After>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facets {
    pub members: Vec<(String, u64)>,
    pub languages: Vec<(String, u64)>,
    pub subjects: Vec<(String, u64)>,
    /// Start of each day (µs) with at least one hit, and the count.
    pub days: Vec<(i64, u64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    pub total: usize,
    /// How many hits rank after the request's cursor (all of them without one): there is a next page
    /// when this exceeds `offset` plus the hits returned.
    pub remaining: usize,
    pub facets: Facets,
}

struct Fields {
    item_id: Field,
    seq: Field,
    owner: Field,
    country: Field,
    language: Field,
    language_match: Field,
    item_type: Field,
    urgency: Field,
    dated_at: Field,
    available_at: Field,
    pub_status: Field,
    subjects: Field,
    genres: Field,
    analyzer: Field,
    text: HashMap<Analyzer, Field>,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let mut text = HashMap::new();
    for analyzer in Analyzer::ALL {
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(&analyzer.tokenizer_name())
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let options = TextOptions::default().set_indexing_options(indexing).set_stored();
        text.insert(analyzer, builder.add_text_field(&format!("text_{}", analyzer.name()), options));
    }
    let fields = Fields {
        item_id: builder.add_text_field("item_id", STRING | STORED | FAST),
        seq: builder.add_i64_field("seq", STORED | FAST),
        owner: builder.add_text_field("owner", STRING | FAST),
        country: builder.add_text_field("country", STRING | FAST),
        language: builder.add_text_field("language", STRING | FAST),
        language_match: builder.add_text_field("language_match", STRING),
        item_type: builder.add_text_field("type", STRING),
        urgency: builder.add_u64_field("urgency", INDEXED | FAST),
        dated_at: builder.add_i64_field("dated_at", INDEXED | FAST),
        available_at: builder.add_i64_field("available_at", INDEXED | FAST),
        pub_status: builder.add_text_field("pub_status", STRING),
        subjects: builder.add_text_field("subjects", STRING | FAST),
        genres: builder.add_text_field("genres", STRING),
        analyzer: builder.add_text_field("analyzer", STRING | STORED),
        text,
    };
    (builder.build(), fields)
}

/// The index, its single writer and its reader.
pub struct SearchIndex {
    index: Index,
    fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    /// Highest store sequence number added since the last commit, if any.
    pending: Mutex<Option<i64>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").finish_non_exhaustive()
    }
}

/// The writer's indexing threads by default: one per core, up to four. One thread halves bulk indexing
/// (`benches/compare.rs`, measured 2026-12-03: 10,322 items/s with one, 19,163 with two, BENCHMARKS.md);
/// the server opens its index with fewer ([`SearchIndex::open_with_threads`]) to leave the cores to
/// requests while it indexes publishes one by one.
fn default_writer_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4)
}

/// The writer's arena, shared by its threads (tantivy wants at least 15 MB per thread).
const WRITER_MEMORY: usize = 64 * 1024 * 1024;
/// The arena of the in-memory index a percolation builds (tantivy's minimum).
const PERCOLATE_MEMORY: usize = 15_000_000;

/// A search request's query and filters, compiled (see [`SearchIndex::matcher`]).
pub struct Matcher {
    query: Box<dyn Query>,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher").finish_non_exhaustive()
    }
}

/// The version of the text analysis (tokenizers, script fold, stemming) the index was built with;
/// changed whenever analysis changes, so an index built by another is rebuilt from the store.
const ANALYSIS_VERSION: &str = "3";
const ANALYSIS_MARKER: &str = "karavan-analysis-version";

impl SearchIndex {
    /// Opens the index in `dir`, creating it (empty) if needed. An index whose schema differs from this
    /// version's is recreated empty: it is derived data, and the caller catches up from the store.
    pub fn open(dir: &Path) -> Result<SearchIndex> {
        SearchIndex::open_with_threads(dir, default_writer_threads())
    }

    /// [`SearchIndex::open`] with `threads` indexing threads (1 to 4).
    pub fn open_with_threads(dir: &Path, threads: usize) -> Result<SearchIndex> {
        std::fs::create_dir_all(dir)?;
        // Text analysed by an older analysis (another script fold) would not match today's queries.
        let marker = dir.join(ANALYSIS_MARKER);
        let analysed_by = std::fs::read_to_string(&marker).unwrap_or_default();
        if analysed_by.trim() != ANALYSIS_VERSION {
            if std::fs::read_dir(dir)?.next().is_some() {
                tracing::warn!(dir = %dir.display(), "search index built by another text analysis; rebuilding it");
                std::fs::remove_dir_all(dir)?;
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&marker, ANALYSIS_VERSION)?;
        }
        let (schema, fields) = schema();
        let directory =
            tantivy::directory::MmapDirectory::open(dir).map_err(|e| SearchError::Directory(e.to_string()))?;
        let index = match Index::open_or_create(directory, schema.clone()) {
            Ok(index) => index,
            Err(error) => {
                tracing::warn!(%error, dir = %dir.display(), "search index unreadable or of another schema; recreating it");
                std::fs::remove_dir_all(dir)?;
                std::fs::create_dir_all(dir)?;
                let directory =
                    tantivy::directory::MmapDirectory::open(dir).map_err(|e| SearchError::Directory(e.to_string()))?;
                Index::create(directory, schema, tantivy::IndexSettings::default())?
            }
        };
        analysis::register(index.tokenizers());
        let writer = index.writer_with_num_threads(threads.clamp(1, 4), WRITER_MEMORY)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(SearchIndex { index, fields, writer: Mutex::new(writer), reader, pending: Mutex::new(None) })
    }

    /// The highest store sequence number that is committed in the index (0 for a new index).
    pub fn indexed_seq(&self) -> Result<i64> {
        let metas = self.index.load_metas()?;
        Ok(metas.payload.as_deref().and_then(|p| p.parse().ok()).unwrap_or(0))
    }

    fn document(&self, doc: &IndexDoc) -> TantivyDocument {
        let f = &self.fields;
        let analyzer = Analyzer::for_language(doc.language.as_deref());
        let mut document = TantivyDocument::default();
        document.add_text(f.item_id, &doc.item_id);
        document.add_i64(f.seq, doc.seq);
        document.add_text(f.owner, &doc.owner);
        if let Some(country) = &doc.country {
            document.add_text(f.country, country);
        }
        if let Some(language) = &doc.language {
            let lower = language.to_ascii_lowercase();
            document.add_text(f.language, &lower);
            let primary = lower.split('-').next().unwrap_or_default().to_string();
            document.add_text(f.language_match, &lower);
            if primary != lower {
                document.add_text(f.language_match, &primary);
            }
        }
        if let Some(item_type) = &doc.item_type {
            document.add_text(f.item_type, item_type);
        }
        if let Some(urgency) = doc.urgency {
            document.add_u64(f.urgency, u64::from(urgency));
        }
        document.add_i64(f.dated_at, doc.dated_at);
        document.add_i64(f.available_at, doc.available_at);
        document.add_text(f.pub_status, &doc.pub_status);
        for subject in &doc.subjects {
            document.add_text(f.subjects, subject);
        }
        for genre in &doc.genres {
            document.add_text(f.genres, genre);
        }
        document.add_text(f.analyzer, analyzer.name());
        document.add_text(f.text[&analyzer], format!("{}\n{}", doc.headline, doc.body));
        for (language, text) in &doc.translations {
            document.add_text(f.text[&Analyzer::for_language(Some(language))], text);
        }
        document
    }

    /// Adds or replaces an item's document. Visible to searches after the next [`SearchIndex::commit`].
    pub fn upsert(&self, doc: &IndexDoc) -> Result<()> {
        let f = &self.fields;
        let document = self.document(doc);
        let writer = self.writer.lock().map_err(|_| SearchError::Directory("writer lock poisoned".into()))?;
        writer.delete_term(Term::from_field_text(f.item_id, &doc.item_id));
        writer.add_document(document)?;
        let mut pending = self.pending.lock().map_err(|_| SearchError::Directory("lock poisoned".into()))?;
        *pending = Some(pending.map_or(doc.seq, |p| p.max(doc.seq)));
        Ok(())
    }

    /// Commits what was added, records the highest sequence number seen, and makes it searchable.
    /// Returns whether there was anything to commit.
    pub fn commit(&self) -> Result<bool> {
        let Some(seq) = self.pending.lock().map_err(|_| SearchError::Directory("lock poisoned".into()))?.take() else {
            return Ok(false);
        };
        let seq = seq.max(self.indexed_seq()?);
        {
            let mut writer = self.writer.lock().map_err(|_| SearchError::Directory("writer lock poisoned".into()))?;
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&seq.to_string());
            prepared.commit()?;
        }
        self.reader.reload()?;
        Ok(true)
    }

    /// Removes every document (before a rebuild).
    pub fn clear(&self) -> Result<()> {
        let mut writer = self.writer.lock().map_err(|_| SearchError::Directory("writer lock poisoned".into()))?;
        writer.delete_all_documents()?;
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload("0");
        prepared.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn term(&self, field: Field, text: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic))
    }

    fn any_of(&self, field: Field, values: &[String]) -> Box<dyn Query> {
        Box::new(BooleanQuery::new(values.iter().map(|v| (Occur::Should, self.term(field, v))).collect()))
    }

    /// The visibility rule as a query: the viewer's own items, and the items an agreement covers once
    /// their embargo and the agreement's delay have passed; killed items never.
    fn visibility(&self, audience: &Audience) -> Box<dyn Query> {
        let f = &self.fields;
        let mut allowed: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, self.term(f.owner, &audience.viewer))];
        for grant in &audience.grants {
            let until = audience.now.saturating_sub(i64::from(grant.delay_minutes) * 60_000_000);
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
                (Occur::Must, self.term(f.owner, &grant.grantor)),
                (
                    Occur::Must,
                    Box::new(RangeQuery::new(
                        Bound::Unbounded,
                        Bound::Included(Term::from_field_i64(f.available_at, until)),
                    )),
                ),
            ];
            if !grant.subjects.is_empty() {
                clauses.push((Occur::Must, self.any_of(f.subjects, &grant.subjects)));
            }
            allowed.push((Occur::Should, Box::new(BooleanQuery::new(clauses))));
        }
        Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(BooleanQuery::new(allowed))),
            (Occur::MustNot, self.term(f.pub_status, "canceled")),
        ]))
    }

    fn text_fields_for(&self, request: &SearchRequest) -> Vec<Analyzer> {
        let language = request.query_language.as_deref().or(match request.languages.as_slice() {
            [only] => Some(only.as_str()),
            _ => None,
        });
        if let Some(language) = language {
            return vec![Analyzer::for_language(Some(language))];
        }
        // Han characters can only be Chinese; other scripts are shared by several member languages.
        let text = request.text.as_deref().unwrap_or_default();
        if text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)) {
            return vec![Analyzer::Chinese];
        }
        Analyzer::ALL.to_vec()
    }

    /// Any text a person types is a query: the query syntax where it parses (`"phrases"`, `-not`,
    /// `a OR b`), and otherwise the same words as plain terms, never an error. Apostrophes inside
    /// words (Uzbek `yo'l`, `` ko`rgazma ``, `koʻrgazma`; English `Xi's`) are part of the word, as
    /// the analyzers read them, not quotes.
    fn text_query(&self, fields: Vec<Field>, text: &str) -> Box<dyn Query> {
        let escaped = apostrophes_as_letters(text);
        let mut parser = QueryParser::for_index(&self.index, fields);
        parser.set_conjunction_by_default();
        if let Ok(query) = parser.parse_query(&escaped) {
            return query;
        }
        // Only excluded terms (`-word`): everything but them.
        if let Ok(query) = parser.parse_query(&format!("* {escaped}")) {
            return query;
        }
        let plain = plain_terms(text);
        if plain.trim().is_empty() {
            return Box::new(AllQuery);
        }
        parser.parse_query(&plain).unwrap_or_else(|_| parser.parse_query_lenient(&plain).0)
    }

    /// The query text and filters of a request as query clauses (everything but visibility).
    fn request_clauses(&self, request: &SearchRequest) -> Result<Vec<(Occur, Box<dyn Query>)>> {
        let f = &self.fields;
        let analyzers = self.text_fields_for(request);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        match request.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(text) => {
                check_query_text(text)?;
                let fields = analyzers.iter().map(|a| f.text[a]).collect();
                clauses.push((Occur::Must, self.text_query(fields, text)));
            }
            None => clauses.push((Occur::Must, Box::new(AllQuery))),
        }
        let filters: [(Field, &[String]); 6] = [
            (f.owner, &request.members),
            (f.country, &request.countries),
            (f.language_match, &request.languages),
            (f.subjects, &request.subjects),
            (f.genres, &request.genres),
            (f.item_type, &request.types),
        ];
        for (field, values) in filters {
            if !values.is_empty() {
                let values: Vec<String> = if field == f.language_match {
                    values.iter().map(|v| v.to_ascii_lowercase()).collect()
                } else {
                    values.to_vec()
                };
                clauses.push((Occur::Must, self.any_of(field, &values)));
            }
        }
        if let Some((low, high)) = request.urgency {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_u64(f.urgency, u64::from(low))),
                    Bound::Included(Term::from_field_u64(f.urgency, u64::from(high))),
                )),
            ));
        }
        if request.from.is_some() || request.to.is_some() {
            let bound =
                |v: Option<i64>| v.map_or(Bound::Unbounded, |v| Bound::Included(Term::from_field_i64(f.dated_at, v)));
            clauses.push((Occur::Must, Box::new(RangeQuery::new(bound(request.from), bound(request.to)))));
        }
        Ok(clauses)
    }

    /// Compiles a request's query and filters once, to test item documents against (subscriptions).
    pub fn matcher(&self, request: &SearchRequest) -> Result<Matcher> {
        Ok(Matcher { query: Box::new(BooleanQuery::new(self.request_clauses(request)?)) })
    }

    /// Tests documents against matchers with exactly the analysis and query semantics of a search:
    /// the documents go into a small index in memory, and each matcher runs over it once. Returns, per
    /// matcher, the positions of the documents it matches (ascending).
    pub fn percolate(&self, docs: &[IndexDoc], matchers: &[&Matcher]) -> Result<Vec<Vec<usize>>> {
        if docs.is_empty() {
            return Ok(vec![Vec::new(); matchers.len()]);
        }
        // A single-segment writer starts no threads; documents keep their order as doc ids.
        let mut writer = Index::builder()
            .schema(self.index.schema())
            .tokenizers(self.index.tokenizers().clone())
            .single_segment_index_writer(tantivy::directory::RamDirectory::create(), PERCOLATE_MEMORY)?;
        for doc in docs {
            writer.add_document(self.document(doc))?;
        }
        let index = writer.finalize()?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let searcher: tantivy::Searcher = reader.searcher();
        matchers
            .iter()
            .map(|matcher| {
                let found = searcher.search(matcher.query.as_ref(), &DocSetCollector)?;
                let mut positions: Vec<usize> = found.into_iter().map(|address| address.doc_id as usize).collect();
                positions.sort_unstable();
                Ok(positions)
            })
            .collect()
    }

    /// Runs a search as `audience`.
    pub fn search(&self, request: &SearchRequest, audience: &Audience) -> Result<SearchResults> {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, self.visibility(audience))];
        clauses.extend(self.request_clauses(request)?);
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();

        let facets_collector = AggregationCollector::from_aggs(facet_aggregations()?, Default::default());
        let limit = request.limit.clamp(1, 200);
        if let Some(after) = request.after
            && after.sort() != request.sort
        {
            return Err(SearchError::BadQuery("cursor: it belongs to a search sorted another way".into()));
        }
        // One pass over the matches: the top hits, the total and the facets together.
        let keyset = KeysetTop { sort: request.sort, after: request.after, keep: request.offset.saturating_add(limit) };
        let ((ranked, remaining), total, facet_results) =
            searcher.search(&query, &(keyset, Count, facets_collector))?;
        let top: Vec<(Score, After, DocAddress)> = ranked.into_iter().skip(request.offset).collect();
        let facets = read_facets(&serde_json::to_value(&facet_results).unwrap_or_default());

        let mut snippets = Snippets::new(
            request.text.as_deref().is_some_and(|t| !t.trim().is_empty()).then_some(&query as &dyn Query),
        );
        let mut hits = Vec::with_capacity(top.len());
        for (score, key, address) in top {
            let document: TantivyDocument = searcher.doc(address)?;
            let text =
                |field: Field| document.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let snippet = snippets.highlight(&searcher, f, &document)?;
            let seq = document.get_first(f.seq).and_then(|v| v.as_i64()).unwrap_or_default();
            hits.push(SearchHit { item_id: text(f.item_id), seq, score, snippet, key: Some(key) });
        }
        Ok(SearchResults { hits, total, remaining, facets })
    }

    /// The query of everything `audience` may see that passes the request's filters, ignoring its text.
    fn filter_query(&self, request: &SearchRequest, audience: &Audience) -> Result<BooleanQuery> {
        let unfiltered_text = SearchRequest { text: None, ..request.clone() };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, self.visibility(audience))];
        clauses.extend(self.request_clauses(&unfiltered_text)?);
        Ok(BooleanQuery::new(clauses))
    }

    /// The indexed language of each of `ids` that is in the index and has one.
    pub fn languages_of(&self, ids: &[String]) -> Result<HashMap<String, String>> {
        let mut languages = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(languages);
        }
        let searcher = self.reader.searcher();
        let found = searcher.search(&self.any_of(self.fields.item_id, ids), &DocSetCollector)?;
        let (mut id, mut language) = (String::new(), String::new());
        for address in found {
            let fast = searcher.segment_reader(address.segment_ord).fast_fields();
            let (Some(ids_column), Some(languages_column)) = (fast.str("item_id")?, fast.str("language")?) else {
                continue;
            };
            let id_ord = ids_column.term_ords(address.doc_id).next();
            let language_ord = languages_column.term_ords(address.doc_id).next();
            if let (Some(id_ord), Some(language_ord)) = (id_ord, language_ord)
                && ids_column.ord_to_str(id_ord, &mut id)?
                && languages_column.ord_to_str(language_ord, &mut language)?
            {
                languages.insert(id.clone(), language.clone());
            }
        }
        Ok(languages)
    }

    /// The ids of the items matching `query`, if there are at most `limit` of them.
    fn ids_matching(&self, query: &dyn Query, limit: usize) -> Result<Option<HashSet<String>>> {
        let searcher = self.reader.searcher();
        if searcher.search(query, &Count)? > limit {
            return Ok(None);
        }
        let found = searcher.search(query, &DocSetCollector)?;
        let mut ids = HashSet::with_capacity(found.len());
        let mut columns = HashMap::new();
        let mut text = String::new();
        for address in found {
            let column = match columns.entry(address.segment_ord) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(searcher.segment_reader(address.segment_ord).fast_fields().str("item_id")?)
                }
            };
            let Some(column) = column else { continue };
            for ord in column.term_ords(address.doc_id) {
                if column.ord_to_str(ord, &mut text)? {
                    ids.insert(text.clone());
                }
            }
        }
        Ok(Some(ids))
    }

    /// The ids of every item `audience` may see that passes the request's filters (its text
    /// ignored), if there are at most `limit`; `None` when there are more.
    pub fn allowed_ids(
        &self,
        request: &SearchRequest,
        audience: &Audience,
        limit: usize,
    ) -> Result<Option<HashSet<String>>> {
        self.ids_matching(&self.filter_query(request, audience)?, limit)
    }

    /// Which of `candidates` `audience` may see and pass the request's filters (its text ignored).
    pub fn filter_candidates(
        &self,
        request: &SearchRequest,
        audience: &Audience,
        candidates: &[String],
    ) -> Result<HashSet<String>> {
        if candidates.is_empty() {
            return Ok(HashSet::new());
        }
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(self.filter_query(request, audience)?)),
            (Occur::Must, self.any_of(self.fields.item_id, candidates)),
        ]);
        Ok(self.ids_matching(&query, candidates.len())?.unwrap_or_default())
    }

    /// Results in a ranking made elsewhere (vector similarity, or a fusion of rankings): the page
    /// `request.offset .. + limit` of `ranked`, facets over all of `ranked`, snippets from the
    /// request's text when it has one (else the start of the text). Every id must already have
    /// passed `filter_candidates`; ids no longer in the index are dropped.
    pub fn ranked_results(
        &self,
        request: &SearchRequest,
        audience: &Audience,
        ranked: &[(String, f32)],
    ) -> Result<SearchResults> {
        let f = &self.fields;
        let ids: Vec<String> = ranked.iter().map(|(id, _)| id.clone()).collect();
        let pool = BooleanQuery::new(vec![
            (Occur::Must, Box::new(self.filter_query(request, audience)?)),
            (Occur::Must, self.any_of(f.item_id, &ids)),
        ]);
        let searcher = self.reader.searcher();
        let facets_collector = AggregationCollector::from_aggs(facet_aggregations()?, Default::default());
        let (found, facet_results) = searcher.search(&pool, &(DocSetCollector, facets_collector))?;
        let facets = read_facets(&serde_json::to_value(&facet_results).unwrap_or_default());
        // Each pooled item's address, by id.
        let mut addresses = HashMap::with_capacity(found.len());
        for address in found {
            let document: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = document.get_first(f.item_id).and_then(|v| v.as_str()) {
                addresses.insert(id.to_string(), (address, document));
            }
        }
        let present: Vec<&(String, f32)> = ranked.iter().filter(|(id, _)| addresses.contains_key(id)).collect();
        let total = present.len();
        let text_query = match request.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(_) => Some(BooleanQuery::new(self.request_clauses(request)?)),
            None => None,
        };
        let mut snippets = Snippets::new(text_query.as_ref().map(|q| q as &dyn Query));
        let mut hits = Vec::new();
        for (id, score) in present.into_iter().skip(request.offset).take(request.limit.clamp(1, 200)) {
            let (_, document) = &addresses[id];
            let highlighted = snippets.highlight(&searcher, f, document)?;
            let snippet = if highlighted.is_empty() {
                let field = f.text[&document_analyzer(f, document)];
                let text = document.get_first(field).and_then(|v| v.as_str()).unwrap_or_default();
                escape_html(&text.chars().take(240).collect::<String>())
            } else {
                highlighted
            };
            let seq = document.get_first(f.seq).and_then(|v| v.as_i64()).unwrap_or_default();
            hits.push(SearchHit { item_id: id.clone(), seq, score: *score, snippet, key: None });
        }
        Ok(SearchResults { hits, total, remaining: total, facets })
    }
}

/// The best `keep` matches ranked after a cursor, by the request's sort (see [`After`]), and how many
/// matches rank after the cursor. Unlike an offset, the cursor costs nothing however deep it is.
struct KeysetTop {
    sort: Sort,
    after: Option<After>,
    keep: usize,
}

/// A ranked match: its key as a sortable pair, the key, the score and where it is.
type Ranked = ((i64, i64), After, Score, DocAddress);
/// A segment's best matches so far, the worst on top: (key as a pair, document, score bits).
type Best = std::collections::BinaryHeap<std::cmp::Reverse<((i64, i64), DocId, u32)>>;

struct KeysetSegment {
    sort: Sort,
    bound: Option<(i64, i64)>,
    keep: usize,
    segment: SegmentOrdinal,
    seq: tantivy::columnar::Column<i64>,
    dated_at: tantivy::columnar::Column<i64>,
    /// The best `keep` so far, the worst on top.
    best: Best,
    after_count: usize,
}

impl Collector for KeysetTop {
    type Fruit = (Vec<(Score, After, DocAddress)>, usize);
    type Child = KeysetSegment;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<KeysetSegment> {
        let fast = reader.fast_fields();
        Ok(KeysetSegment {
            sort: self.sort,
            bound: self.after.map(After::rank),
            keep: self.keep,
            segment,
            seq: fast.i64("seq")?,
            dated_at: fast.i64("dated_at")?,
            best: Best::with_capacity(self.keep.min(1024) + 1),
            after_count: 0,
        })
    }

    fn requires_scoring(&self) -> bool {
        self.sort == Sort::Relevance
    }

    fn merge_fruits(&self, fruits: Vec<(Vec<Ranked>, usize)>) -> tantivy::Result<Self::Fruit> {
        let remaining = fruits.iter().map(|(_, count)| count).sum();
        let mut all: Vec<Ranked> = fruits.into_iter().flat_map(|(ranked, _)| ranked).collect();
        all.sort_by_key(|ranked| std::cmp::Reverse(ranked.0));
        all.truncate(self.keep);
        Ok((all.into_iter().map(|(_, key, score, address)| (score, key, address)).collect(), remaining))
    }
}

impl SegmentCollector for KeysetSegment {
    type Fruit = (Vec<Ranked>, usize);

    fn collect(&mut self, doc: DocId, score: Score) {
        let seq = self.seq.first(doc).unwrap_or_default();
        let key = match self.sort {
            Sort::Relevance => After::Relevance { score, seq },
            Sort::Newest => After::Newest { dated_at: self.dated_at.first(doc).unwrap_or(i64::MIN), seq },
        };
        let rank = key.rank();
        if self.bound.is_some_and(|bound| rank >= bound) {
            return;
        }
        self.after_count += 1;
        if self.best.len() >= self.keep {
            match self.best.peek() {
                Some(std::cmp::Reverse((worst, _, _))) if *worst < rank => {
                    self.best.pop();
                }
                _ => return,
            }
        }
        self.best.push(std::cmp::Reverse((rank, doc, score.to_bits())));
    }

    fn harvest(self) -> Self::Fruit {
        let (sort, segment) = (self.sort, self.segment);
        let ranked = self
            .best
            .into_iter()
            .map(|std::cmp::Reverse((rank, doc, bits))| {
                let score = f32::from_bits(bits);
                let seq = self.seq.first(doc).unwrap_or_default();
                let key = match sort {
                    Sort::Relevance => After::Relevance { score, seq },
                    Sort::Newest => After::Newest { dated_at: self.dated_at.first(doc).unwrap_or(i64::MIN), seq },
                };
                (rank, key, if sort == Sort::Relevance { score } else { 0.0 }, DocAddress::new(segment, doc))
            })
            .collect();
        (ranked, self.after_count)
    }
}

/// The analyzer a stored document's text was indexed with.
fn document_analyzer(f: &Fields, document: &TantivyDocument) -> Analyzer {
    let name = document.get_first(f.analyzer).and_then(|v| v.as_str()).unwrap_or_default();
    Analyzer::ALL.into_iter().find(|a| a.name() == name).unwrap_or(Analyzer::Other)
}

/// Snippets of hits for a query, with one generator per analyzer (building one reads term
/// statistics, so it is done once per search, not per hit). No query: no snippets.
struct Snippets<'q> {
    query: Option<&'q dyn Query>,
    generators: HashMap<Analyzer, SnippetGenerator>,
}

impl<'q> Snippets<'q> {
    fn new(query: Option<&'q dyn Query>) -> Snippets<'q> {
        Snippets { query, generators: HashMap::new() }
    }

    /// HTML: the document's text escaped, the matched words in `<b>`; empty without a query.
    fn highlight(&mut self, searcher: &tantivy::Searcher, f: &Fields, document: &TantivyDocument) -> Result<String> {
        let Some(query) = self.query else { return Ok(String::new()) };
        let analyzer = document_analyzer(f, document);
        let generator = match self.generators.entry(analyzer) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let mut generator = SnippetGenerator::create(searcher, query, f.text[&analyzer])?;
                generator.set_max_num_chars(240);
                entry.insert(generator)
            }
        };
        Ok(generator.snippet_from_doc(document).to_html())
    }
}

fn facet_aggregations() -> Result<Aggregations> {
    serde_json::from_value(serde_json::json!({
        "members": { "terms": { "field": "owner", "size": 100 } },
        "languages": { "terms": { "field": "language", "size": 100 } },
        "subjects": { "terms": { "field": "subjects", "size": 50 } },
        "days": { "histogram": { "field": "dated_at", "interval": 86_400_000_000i64, "min_doc_count": 1 } },
    }))
    .map_err(|e| SearchError::Directory(format!("aggregation request: {e}")))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn read_facets(results: &serde_json::Value) -> Facets {
    let terms = |name: &str| -> Vec<(String, u64)> {
        results[name]["buckets"]
            .as_array()
            .map(|buckets| {
                buckets
                    .iter()
                    .filter_map(|b| Some((b["key"].as_str()?.to_string(), b["doc_count"].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let days = results["days"]["buckets"]
        .as_array()
        .map(|buckets| {
            buckets.iter().filter_map(|b| Some((b["key"].as_f64()? as i64, b["doc_count"].as_u64()?))).collect()
        })
        .unwrap_or_default();
    Facets { members: terms("members"), languages: terms("languages"), subjects: terms("subjects"), days }
}

/// The most terms (words) a query's text may have: beyond it a query costs every other reader (each
/// term is looked up in every language's field) more than it can help.
pub const MAX_QUERY_TERMS: usize = 64;
/// The longest query text, in characters.
pub const MAX_QUERY_CHARS: usize = 2_000;

/// Refuses a query text over [`MAX_QUERY_TERMS`] or [`MAX_QUERY_CHARS`], naming the limit.
pub fn check_query_text(text: &str) -> Result<()> {
    let characters = text.chars().count();
    if characters > MAX_QUERY_CHARS {
        return Err(SearchError::BadQuery(format!(
            "the query is {characters} characters long; at most {MAX_QUERY_CHARS} are accepted"
        )));
    }
    let terms = plain_terms(text).split_whitespace().count();
    if terms > MAX_QUERY_TERMS {
        return Err(SearchError::BadQuery(format!(
            "the query has {terms} terms; at most {MAX_QUERY_TERMS} are accepted"
        )));
    }
    Ok(())
}

/// Whether the character at `index` is one of the apostrophe family (' ` ‘ ’ ʼ ʻ) between two letters:
/// part of an Uzbek word (oʻ, gʻ, the tutuq belgisi), or of an English one (Xi's).
fn apostrophe_in_word(chars: &[char], index: usize) -> bool {
    matches!(chars[index], '\'' | '`' | '‘' | '’' | 'ʼ' | 'ʻ')
        && index > 0
        && chars[index - 1].is_alphabetic()
        && chars.get(index + 1).is_some_and(|next| next.is_alphabetic())
}

/// The query syntax reads the ASCII apostrophe and the backtick as quotes: inside words they are
/// escaped, so each field's analyzer reads the word as it reads the indexed text.
fn apostrophes_as_letters(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (index, c) in chars.iter().enumerate() {
        if matches!(c, '\'' | '`') && apostrophe_in_word(&chars, index) {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}

/// The words of a text (apostrophes inside words kept, escaped) with every other character a space:
/// what is left when its syntax is dropped.
fn plain_terms(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (index, c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            out.push(*c);
        } else if apostrophe_in_word(&chars, index) {
            if matches!(c, '\'' | '`') {
                out.push('\\');
            }
            out.push(*c);
        } else {
            out.push(' ');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_keys_round_trip_and_order_like_the_ranking() {
        for key in [
            After::Relevance { score: 3.25, seq: 17 },
            After::Relevance { score: -0.5, seq: i64::MAX },
            After::Relevance { score: 0.0, seq: 0 },
            After::Newest { dated_at: -1_000, seq: 5 },
            After::Newest { dated_at: 1_796_296_539_782_336, seq: 8 },
        ] {
            assert_eq!(After::parse(&key.token()), Some(key), "{}", key.token());
        }
        for bad in ["", "r", "r3f800000", "r3f80000.1", "r7fc00000.1", "x1.2", "d1.x", "d.1", "o100"] {
            assert_eq!(After::parse(bad), None, "{bad:?}");
        }
        // Higher scores first, then lower sequence numbers; later dates first, then higher sequences.
        let rank = |score, seq| After::Relevance { score, seq }.rank();
        assert!(rank(2.0, 9) > rank(1.5, 1) && rank(1.5, 1) > rank(1.5, 2) && rank(0.0, 1) > rank(-0.0, 1));
        assert!(rank(-1.0, 1) > rank(-2.0, 1) && rank(0.1, 1) > rank(-0.1, 1));
        let newest = |dated_at, seq| After::Newest { dated_at, seq }.rank();
        assert!(newest(10, 1) > newest(9, 5) && newest(9, 5) > newest(9, 4));
    }
}
