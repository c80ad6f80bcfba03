//! The publish path: read a body as ninjs of some version, normalise it to 3.1, and extract the facts
//! the store reasons about (status, embargo, urgency, language, subjects, …).

use karavan_domain::{LanguageTag, MemberId, PubStatus, Timestamp, Urgency};
use karavan_ninjs::{NinjsError, NinjsVersion};
use karavan_store::NewVersion;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ErrorCode};

/// Parses a JSON body with an error that says where it broke.
pub fn parse_json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(ErrorCode::InvalidJson, "the request body is empty; send a JSON document"));
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {error} (line {}, column {})", error.line(), error.column()),
        )
    })
}

/// Turns a ninjs error into the API's 422 naming the failing property.
pub fn ninjs_error(error: NinjsError) -> ApiError {
    match error {
        NinjsError::Invalid { version, violations } => {
            let first = violations
                .first()
                .map(|v| format!("{} (at {})", v.message, v.pointer))
                .unwrap_or_else(|| "the document is invalid".to_string());
            let details: Vec<Value> =
                violations.iter().map(|v| json!({ "pointer": v.pointer, "message": v.message })).collect();
            ApiError::new(ErrorCode::InvalidNinjs, format!("not valid ninjs {version}: {first}"))
                .with("violations", Value::Array(details))
        }
        NinjsError::UnknownVersion(_) => ApiError::invalid(format!("ninjs: {error}")),
        NinjsError::NotAnObject => ApiError::new(ErrorCode::InvalidNinjs, error.to_string()),
    }
}

fn text<'a>(document: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    document.get(key).and_then(Value::as_str)
}

fn time_field(document: &Map<String, Value>, key: &'static str) -> Result<Option<Timestamp>, ApiError> {
    match text(document, key) {
        None => Ok(None),
        Some(value) => Timestamp::parse_rfc3339(key, value)
            .map(Some)
            .map_err(|e| ApiError::new(ErrorCode::InvalidNinjs, format!("{}: {} (at /{key})", e.field, e.message))),
    }
}

/// The keys an agreement limited to subjects matches against: each subject's `literal` and `uri`, and
/// for IPTC NewsCodes URIs the QCode too (`http://cv.iptc.org/newscodes/mediatopic/04000000` is also
/// `medtop:04000000`), so agreements may name subjects either way.
pub fn subject_keys(document: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let mut add = |key: String| {
        if !key.is_empty() && !keys.contains(&key) {
            keys.push(key);
        }
    };
    for subject in document.get("subjects").and_then(Value::as_array).into_iter().flatten() {
        if let Some(literal) = subject.get("literal").and_then(Value::as_str) {
            add(literal.trim().to_string());
        }
        if let Some(uri) = subject.get("uri").and_then(Value::as_str) {
            add(uri.trim().to_string());
            if let Some(qcode) = newscodes_qcode(uri.trim()) {
                add(qcode);
            }
        }
    }
    keys
}

fn newscodes_qcode(uri: &str) -> Option<String> {
    let rest = uri
        .strip_prefix("http://cv.iptc.org/newscodes/")
        .or_else(|| uri.strip_prefix("https://cv.iptc.org/newscodes/"))?;
    let (scheme, code) = rest.trim_end_matches('/').split_once('/')?;
    let alias = match scheme {
        "mediatopic" => "medtop",
        "subjectcode" => "subj",
        other => other,
    };
    (!code.is_empty() && !code.contains('/')).then(|| format!("{alias}:{code}"))
}

/// Reads an XML document (NewsML-G2 `newsItem`, `packageItem` or `newsMessage`; NewsML 1.x; RSS or
/// Atom) into the store's input, one version per item; any bad item refuses the whole document.
pub fn new_versions_from_xml(owner: &MemberId, body: &[u8]) -> Result<Vec<NewVersion>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(ErrorCode::InvalidDocument, "the request body is empty; send an XML document"));
    }
    let items = karavan_formats::import(body).map_err(|e| ApiError::new(ErrorCode::InvalidDocument, e.message))?;
    let original = String::from_utf8_lossy(body).into_owned();
    let many = items.len() > 1;
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let value = Value::Object(item.document);
            let mut version =
                new_version(owner, &value, original.clone(), Some(NinjsVersion::V3_1)).map_err(|mut e| {
                    e.message = format!("{} mapped to ninjs: {}", item.source_format, e.message);
                    if many {
                        e.message = format!("item {index}: {}", e.message);
                    }
                    e
                })?;
            version.source_format = item.source_format;
            Ok(version)
        })
        .collect()
}

/// Builds the store's input from a body already parsed as JSON.
pub fn new_version(
    owner: &MemberId,
    body: &Value,
    original: String,
    client_says: Option<NinjsVersion>,
) -> Result<NewVersion, ApiError> {
    let normalized = karavan_ninjs::read(body, client_says).map_err(ninjs_error)?;
    let document = normalized.document;
    let uri = text(&document, "uri")
        .filter(|uri| !uri.trim().is_empty())
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidNinjs, "uri: a ninjs item needs a non-empty uri (at /uri)"))?
        .to_string();
    let pub_status = match text(&document, "pubStatus") {
        None => PubStatus::Usable,
        Some(status) => PubStatus::parse(status).map_err(|e| {
            ApiError::new(ErrorCode::InvalidNinjs, format!("{}: {} (at /pubStatus)", e.field, e.message))
        })?,
    };
    let urgency = match document.get("urgency").and_then(Value::as_i64) {
        None => None,
        Some(value) => Some(Urgency::new(value).map_err(|e| {
            ApiError::new(ErrorCode::InvalidNinjs, format!("{}: {} (at /urgency)", e.field, e.message))
        })?),
    };
    // ninjs allows any string as a language; canonicalise well-formed BCP 47 tags, keep others as sent.
    let language = text(&document, "language").map(|language| {
        LanguageTag::parse(language).map(|tag| tag.as_str().to_string()).unwrap_or(language.to_string())
    });
    let subjects = subject_keys(&document);
    Ok(NewVersion {
        owner: owner.clone(),
        version: text(&document, "version").map(str::to_string),
        embargoed_until: time_field(&document, "embargoedUntil")?,
        version_created: time_field(&document, "versionCreated")?,
        item_type: text(&document, "type").map(str::to_string),
        uri,
        pub_status,
        urgency,
        language,
        subjects,
        source_format: format!("ninjs {}", normalized.source_version.as_str()),
        extensions: normalized.extensions,
        document,
        original,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_keys_include_qcodes_of_newscodes_uris() {
        let document = json!({ "subjects": [
            { "name": "economy", "uri": "http://cv.iptc.org/newscodes/mediatopic/04000000" },
            { "literal": "sport" },
            { "uri": "http://example.com/topics/rail" },
        ]});
        let keys = subject_keys(document.as_object().unwrap());
        assert_eq!(
            keys,
            [
                "http://cv.iptc.org/newscodes/mediatopic/04000000",
                "medtop:04000000",
                "sport",
                "http://example.com/topics/rail"
            ]
        );
    }
}
