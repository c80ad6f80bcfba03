//! Formats other than ninjs, to and from Karavan's ninjs 3.1 model. This crate does no IO.
//!
//! - [`import`] reads a document in any format Karavan takes in (NewsML-G2 `newsItem`, `packageItem` or
//!   `newsMessage`; NewsML 1.x; RSS 2.0; Atom 1.0) into ninjs 3.1 documents, one per item.
//! - [`export_g2`] writes a ninjs 3.1 document as a NewsML-G2 `newsItem` (or `packageItem` for a composite).
//! - [`feed::parse`] reads an RSS or Atom feed into entries, for the feed ingest providers.
//!
//! All XML goes through [`xml`], which refuses DTDs (so XML bombs and external entities never expand)
//! and caps size, node count and depth ([`markup`] measures nesting without recursion before any parser
//! or renderer walks a tree). All HTML from outside goes through [`html::clean`].

pub mod feed;
mod g2;
mod g2_export;
pub mod html;
pub mod markup;
mod newsml1;
pub mod xml;

pub use g2::date_time;
pub use g2_export::{G2_VERSION, Provider, export_g2, media_type as g2_media_type, xhtml};

use serde_json::{Map, Value};

/// Why a document could not be read: a message naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub message: String,
}

impl FormatError {
    pub fn new(message: impl Into<String>) -> FormatError {
        FormatError { message: message.into() }
    }
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FormatError {}

/// One item read from a document: its ninjs 3.1 form and what it came as ("NewsML-G2 2.35", "RSS 2.0"…).
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub document: Map<String, Value>,
    pub source_format: String,
}

/// The formats [`detect`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ninjs,
    NewsMlG2,
    NewsMl1,
    Rss,
    Atom,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Ninjs => "ninjs",
            Format::NewsMlG2 => "NewsML-G2",
            Format::NewsMl1 => "NewsML 1",
            Format::Rss => "RSS",
            Format::Atom => "Atom",
        }
    }
}

/// Guesses a document's format from its first bytes and root element; None when it is none of them.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return Some(Format::Ninjs);
    }
    let root = root_name(trimmed)?;
    let local = root.rsplit(':').next().unwrap_or(root);
    match local {
        "newsItem" | "packageItem" | "newsMessage" | "conceptItem" | "knowledgeItem" | "planningItem"
        | "catalogItem" => Some(Format::NewsMlG2),
        "NewsML" => Some(Format::NewsMl1),
        "rss" | "RDF" => Some(Format::Rss),
        "feed" => Some(Format::Atom),
        _ => None,
    }
}

/// The name of the first element of an XML text, skipping the prolog.
fn root_name(text: &str) -> Option<&str> {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("<?") {
            rest = &after[after.find("?>")? + 2..];
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = &after[after.find("-->")? + 3..];
        } else if let Some(after) = rest.strip_prefix("<!") {
            rest = &after[after.find('>')? + 1..];
        } else if let Some(after) = rest.strip_prefix('<') {
            let end = after.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
            return Some(&after[..end]);
        } else {
            return None;
        }
    }
}

/// Reads an XML document (NewsML-G2, NewsML 1.x, RSS or Atom) into ninjs 3.1 items. Every item is
/// read before any is returned: one bad item refuses the document.
pub fn import(bytes: &[u8]) -> Result<Vec<Imported>, FormatError> {
    let text = xml::text_of(bytes)?;
    let document = xml::parse(&text)?;
    let root = document.root_element();
    match root.tag_name().name() {
        "NewsML" if root.tag_name().namespace().is_none() => newsml1::import(root),
        "rss" | "RDF" | "feed" => {
            let parsed = feed::read(root)?;
            parsed.entries.iter().map(|entry| entry.to_ninjs(&feed::Defaults::default(), &parsed)).collect()
        }
        _ => g2::import(root),
    }
}

/// IPTC NewsCodes schemes by their usual catalog alias.
const IPTC_SCHEMES: [(&str, &str); 4] =
    [("medtop", "mediatopic"), ("subj", "subjectcode"), ("genre", "genre"), ("scene", "scene")];

/// The NewsCodes URI of an IPTC QCode (`medtop:04000000` → `http://cv.iptc.org/newscodes/mediatopic/04000000`).
pub fn iptc_uri(qcode: &str) -> Option<String> {
    let (alias, code) = qcode.split_once(':')?;
    let (_, scheme) = IPTC_SCHEMES.iter().find(|(a, _)| *a == alias)?;
    (!code.is_empty() && !code.contains('/')).then(|| format!("http://cv.iptc.org/newscodes/{scheme}/{code}"))
}

/// The QCode of an IPTC NewsCodes URI (the reverse of [`iptc_uri`]).
pub fn iptc_qcode(uri: &str) -> Option<String> {
    let rest = uri
        .strip_prefix("http://cv.iptc.org/newscodes/")
        .or_else(|| uri.strip_prefix("https://cv.iptc.org/newscodes/"))?;
    let (scheme, code) = rest.trim_end_matches('/').split_once('/')?;
    let (alias, _) = IPTC_SCHEMES.iter().find(|(_, s)| *s == scheme)?;
    (!code.is_empty() && !code.contains('/')).then(|| format!("{alias}:{code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_root_element() {
        assert_eq!(detect(br#"<?xml version="1.0"?><!-- c --><newsItem xmlns="x"/>"#), Some(Format::NewsMlG2));
        assert_eq!(detect(b"<g2:newsMessage/>"), Some(Format::NewsMlG2));
        assert_eq!(detect(b"\n<rss version=\"2.0\">"), Some(Format::Rss));
        assert_eq!(detect(b"<feed xmlns=\"http://www.w3.org/2005/Atom\">"), Some(Format::Atom));
        assert_eq!(detect(b"<NewsML Version=\"1.2\">"), Some(Format::NewsMl1));
        assert_eq!(detect(b" {\"uri\":1}"), Some(Format::Ninjs));
        assert_eq!(detect(b"hello"), None);
    }

    #[test]
    fn qcodes_and_uris_round_trip() {
        let uri = iptc_uri("medtop:04000000").unwrap();
        assert_eq!(uri, "http://cv.iptc.org/newscodes/mediatopic/04000000");
        assert_eq!(iptc_qcode(&uri).as_deref(), Some("medtop:04000000"));
        assert_eq!(iptc_uri("example:1"), None);
    }
}
