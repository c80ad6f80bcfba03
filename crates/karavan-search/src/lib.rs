//! Karavan's full-text search: one tantivy index (derived data, rebuilt from the store) over the
//! current version of every item, with per-language analysis, facets, snippets and the visibility rule
//! applied inside the query, so that no hit, snippet or facet count reveals what a caller may not see.

pub mod analysis;
pub mod ann;
mod index;

pub use ann::{AnnError, AnnParams, VectorIndex};
pub use index::{
    After, Audience, Facets, Grant, IndexDoc, MAX_QUERY_CHARS, MAX_QUERY_TERMS, Matcher, Result, SearchError,
    SearchHit, SearchIndex, SearchRequest, SearchResults, Sort, check_query_text,
};
