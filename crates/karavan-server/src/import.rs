//! Reading a whole document of any format Karavan takes in (for bulk import and feed files): ninjs
//! JSON (one item or an array), NewsML-G2, NewsML 1.x, RSS and Atom. A document is read completely
//! before anything is stored, so one bad item refuses the whole document.

use karavan_domain::MemberId;
use karavan_formats::Format;
use karavan_store::NewVersion;
use serde_json::Value;

use crate::error::ApiError;
use crate::publish::{new_version, new_versions_from_xml, parse_json_body};

/// The largest document read (bytes).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// The store's input for every item of a document, or why the document is refused.
pub fn read_document(owner: &MemberId, bytes: &[u8]) -> Result<Vec<NewVersion>, ApiError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::invalid(format!("the document is larger than {MAX_DOCUMENT_BYTES} bytes")));
    }
    match karavan_formats::detect(bytes) {
        Some(Format::Ninjs) => {
            let value = parse_json_body(bytes)?;
            match value {
                Value::Array(elements) => crate::items::read_batch(owner, &elements, None),
                other => {
                    let original = String::from_utf8_lossy(bytes).into_owned();
                    Ok(vec![new_version(owner, &other, original, None)?])
                }
            }
        }
        Some(_) => new_versions_from_xml(owner, bytes),
        // Other XML gets the XML reader's own, precise refusal (a DTD, an unknown root element, …).
        None if String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).trim_start().starts_with('<') => {
            new_versions_from_xml(owner, bytes)
        }
        None => Err(ApiError::invalid(
            "not a format Karavan reads: expected ninjs (JSON), NewsML-G2, NewsML 1, RSS or Atom",
        )),
    }
}
