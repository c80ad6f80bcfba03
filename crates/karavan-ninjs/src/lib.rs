//! IPTC ninjs (News in JSON): reading documents of every published version (1.0 – 3.1),
//! validating them against the rules of the version they follow, and normalising them to ninjs 3.1.
//!
//! This crate does no IO. The rest of Karavan only ever sees normalised 3.1 documents.
//!
//! - [`read`] is the publish path's entry point: it decides the version (the client's word, the
//!   document's declaration, or a guess from its property names) and normalises.
//! - [`validate`] checks a document against exactly one version's rules, which `rules.rs` writes
//!   down as data (the IPTC schema files are not needed at run time).
//! - [`normalize`] validates and converts to ninjs 3.1; `normalize.rs` lists every mapping and repair.
//! - [`declared_version`] and [`extension_schema`] read what a document says about itself.

mod detect;
mod formats;
mod geojson;
mod normalize;
mod read;
mod rules;
mod validate;

pub use detect::{declared_version, extension_schema};
pub use normalize::{NINJS_3_1_SCHEMA, normalize};
pub use read::{MAX_JSON_DEPTH, json_depth, read};
pub use validate::{MAX_ASSOCIATION_DEPTH, validate};

use serde_json::{Map, Value};

/// A published ninjs schema version that Karavan accepts as input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NinjsVersion {
    V1_0,
    V1_1,
    V1_2,
    V1_3,
    V1_4,
    V1_5,
    V1_6,
    V2_0,
    V2_1,
    V2_2,
    V3_0,
    V3_1,
}

impl NinjsVersion {
    pub const ALL: [NinjsVersion; 12] = [
        NinjsVersion::V1_0,
        NinjsVersion::V1_1,
        NinjsVersion::V1_2,
        NinjsVersion::V1_3,
        NinjsVersion::V1_4,
        NinjsVersion::V1_5,
        NinjsVersion::V1_6,
        NinjsVersion::V2_0,
        NinjsVersion::V2_1,
        NinjsVersion::V2_2,
        NinjsVersion::V3_0,
        NinjsVersion::V3_1,
    ];

    /// Parses "1.0" … "3.1"; a bare major ("1", "2", "3", "1.x") means the newest version of that line.
    pub fn parse(text: &str) -> Result<NinjsVersion, NinjsError> {
        let text = text.trim();
        let found = match text {
            "1.0" => NinjsVersion::V1_0,
            "1.1" => NinjsVersion::V1_1,
            "1.2" => NinjsVersion::V1_2,
            "1.3" => NinjsVersion::V1_3,
            "1.4" => NinjsVersion::V1_4,
            "1.5" => NinjsVersion::V1_5,
            "1.6" | "1" | "1.x" => NinjsVersion::V1_6,
            "2.0" => NinjsVersion::V2_0,
            "2.1" => NinjsVersion::V2_1,
            "2.2" | "2" | "2.x" => NinjsVersion::V2_2,
            "3.0" => NinjsVersion::V3_0,
            "3.1" | "3" | "3.x" => NinjsVersion::V3_1,
            _ => return Err(NinjsError::UnknownVersion(text.to_string())),
        };
        Ok(found)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NinjsVersion::V1_0 => "1.0",
            NinjsVersion::V1_1 => "1.1",
            NinjsVersion::V1_2 => "1.2",
            NinjsVersion::V1_3 => "1.3",
            NinjsVersion::V1_4 => "1.4",
            NinjsVersion::V1_5 => "1.5",
            NinjsVersion::V1_6 => "1.6",
            NinjsVersion::V2_0 => "2.0",
            NinjsVersion::V2_1 => "2.1",
            NinjsVersion::V2_2 => "2.2",
            NinjsVersion::V3_0 => "3.0",
            NinjsVersion::V3_1 => "3.1",
        }
    }

    /// The major line: 1, 2 or 3.
    pub fn line(self) -> u8 {
        match self {
            NinjsVersion::V1_0
            | NinjsVersion::V1_1
            | NinjsVersion::V1_2
            | NinjsVersion::V1_3
            | NinjsVersion::V1_4
            | NinjsVersion::V1_5
            | NinjsVersion::V1_6 => 1,
            NinjsVersion::V2_0 | NinjsVersion::V2_1 | NinjsVersion::V2_2 => 2,
            NinjsVersion::V3_0 | NinjsVersion::V3_1 => 3,
        }
    }
}

/// One reason a document is not valid ninjs of the version it was read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer of the offending value, e.g. `/headlines/0/value`, or `/` for the document itself.
    /// A missing required property is named by the pointer it would have (`/uri`).
    pub pointer: String,
    /// Lowercase message without a trailing period, naming the property and what is wrong with it.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NinjsError {
    #[error("unknown ninjs version {0:?}, expected one of 1.0 – 1.6, 2.0 – 2.2, 3.0, 3.1")]
    UnknownVersion(String),
    #[error("a ninjs document must be a json object")]
    NotAnObject,
    #[error("not valid ninjs {version}: {}", .violations.first().map(|v| format!("{} at {}", v.message, v.pointer)).unwrap_or_default())]
    Invalid { version: &'static str, violations: Vec<Violation> },
}

/// A document read as ninjs of some version and normalised to ninjs 3.1.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The version the input was read as.
    pub source_version: NinjsVersion,
    /// The document as ninjs 3.1; it validates against the IPTC 3.1 schema.
    pub document: Map<String, Value>,
    /// Properties of the input that ninjs 3.1 has no place for (extension properties of documents that
    /// declare a non-IPTC extension schema, and version-specific properties without a 3.1 equivalent).
    /// They are kept by the store, not dropped.
    pub extensions: Map<String, Value>,
}
