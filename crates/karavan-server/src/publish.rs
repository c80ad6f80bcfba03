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

/// Refuses a top-level `null` in a request body of the API's own shapes (subscriptions, keys,
/// agreements, feeds, saved searches, …): the documented schemas have no null anywhere, and leaving a
/// field out is how to take its default. (ninjs documents follow ninjs's own rules instead.)
pub fn refuse_nulls(object: &Map<String, Value>) -> Result<(), ApiError> {
    match object.iter().find(|(_, value)| value.is_null()) {
        Some((key, _)) => {
            Err(ApiError::invalid(format!("{key}: null is not accepted; leave the field out for its default")))
        }
        None => Ok(()),
    }
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
    refuse_unreadable_visibility(&normalized.extensions)?;
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
    let mut document = document;
    sanitize_document(&mut document)?;
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

/// Fails closed on the fields that decide who may see an item. ninjs lets a document carry an embargo
/// that is no date-time ("tomorrow", ""), and normalisation sets such a value aside as an extension,
/// where it would decide nothing: the story would be released at once. Karavan refuses the document.
fn refuse_unreadable_visibility(extensions: &Map<String, Value>) -> Result<(), ApiError> {
    for (key, value) in extensions {
        // Top-level leftovers are keyed by their property name (deeper ones by a JSON pointer).
        let wants = match key.to_ascii_lowercase().as_str() {
            "embargoed" | "embargoeduntil" => "a date-time (RFC 3339, such as 2026-12-03T10:00:00Z)",
            "pubstatus" => "usable, withheld or canceled",
            _ => continue,
        };
        return Err(ApiError::new(
            ErrorCode::InvalidNinjs,
            format!(
                "{key}: {value} cannot be read as {wants}; a field that controls who may see the item must be readable (at /{key})"
            ),
        ));
    }
    Ok(())
}

/// URL schemes a link in a stored document may not have: those a browser runs as script or as a
/// document of its own making, and those naming the reader's own machine. (An allow-list would refuse
/// the streaming protocols of renditions: `srt:`, `rtmp:`, `rtsp:`.)
const UNSAFE_LINK_SCHEMES: [&str; 10] =
    ["javascript", "vbscript", "livescript", "mocha", "data", "file", "blob", "filesystem", "jar", "view-source"];

/// The one rule for what members send, whatever format it came in (JSON, NewsML-G2, NewsML 1, feeds):
/// every HTML text in the document (a headline, description or body whose `contentType` is HTML) is
/// sanitised, HTML nested too deep is refused, a link (`href`) may not use a scheme that runs script
/// (`javascript:`, `data:`, `vbscript:`, …), and the exchange's own identifiers (`altIds` with
/// role `karavan`) are never taken from input. The document as received stays in `original`, which
/// only its owner reads. Walks the document with a stack, not recursion (its depth is bounded anyway).
pub fn sanitize_document(document: &mut Map<String, Value>) -> Result<(), ApiError> {
    if let Some(Value::Array(alt_ids)) = document.get_mut("altIds") {
        alt_ids.retain(|alt| {
            alt.get("role").and_then(Value::as_str).is_none_or(|r| !r.eq_ignore_ascii_case(crate::wire::ALT_ID_ROLE))
        });
        if alt_ids.is_empty() {
            document.shift_remove("altIds");
        }
    }
    let mut stack: Vec<(String, &mut Value)> = document.iter_mut().map(|(k, v)| (format!("/{k}"), v)).collect();
    while let Some((pointer, value)) = stack.pop() {
        match value {
            Value::Object(object) => {
                let html = object
                    .get("contentType")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.to_ascii_lowercase().contains("html"));
                for (key, member) in object.iter_mut() {
                    let at = format!("{pointer}/{key}");
                    match (key.as_str(), member) {
                        ("value", Value::String(text)) if html => {
                            *text = karavan_formats::html::clean_checked(text).map_err(|e| {
                                ApiError::new(ErrorCode::InvalidNinjs, format!("{} (at {at})", e.message))
                            })?;
                        }
                        ("href", Value::String(link)) => check_link(link, &at)?,
                        (_, member @ (Value::Object(_) | Value::Array(_))) => stack.push((at, member)),
                        _ => {}
                    }
                }
            }
            Value::Array(items) => {
                stack.extend(items.iter_mut().enumerate().map(|(index, item)| (format!("{pointer}/{index}"), item)))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a link whose scheme could run script in a reader's browser.
fn check_link(link: &str, at: &str) -> Result<(), ApiError> {
    // Browsers drop ASCII whitespace and control characters inside a scheme ("java\tscript:").
    let squeezed: String = link.chars().filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control()).collect();
    let scheme = squeezed.split_once(':').map(|(scheme, _)| scheme).filter(|scheme| {
        scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    match scheme {
        Some(scheme) if UNSAFE_LINK_SCHEMES.iter().any(|unsafe_| unsafe_.eq_ignore_ascii_case(scheme)) => {
            Err(ApiError::new(
                ErrorCode::InvalidNinjs,
                format!("a link may not use the {:?} scheme (at {at})", scheme.to_ascii_lowercase()),
            ))
        }
        _ => Ok(()),
    }
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

    #[test]
    fn an_unreadable_embargo_refuses_the_document_in_every_ninjs_version() {
        let owner = MemberId::new(karavan_domain::Ulid::decode("01HZZZZZZZZZZZZZZZZZZZZZZZ").unwrap());
        for (version, document, field) in [
            ("1.2", json!({"uri": "urn:a", "embargoed": "Next Monday"}), "embargoed"),
            ("2.1", json!({"uri": "urn:a", "embargoed": ""}), "embargoed"),
            ("3.0", json!({"uri": "urn:a", "embargoedUntil": "tomorrow"}), "embargoedUntil"),
            ("3.1", json!({"uri": "urn:a", "embargoedUntil": ""}), "embargoedUntil"),
            ("3.1", json!({"uri": "urn:a", "embargoedUntil": "2026-13-45T99:00:00Z"}), "embargoedUntil"),
        ] {
            let version = NinjsVersion::parse(version).unwrap();
            let error = new_version(&owner, &document, document.to_string(), Some(version)).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidNinjs, "{document}");
            assert!(error.message.ends_with(&format!("must be readable (at /{field})")), "{}", error.message);
        }
        let readable = json!({"uri": "urn:a", "embargoedUntil": "2030-01-01T00:00:00Z"});
        let stored = new_version(&owner, &readable, readable.to_string(), None).unwrap();
        assert!(stored.embargoed_until.is_some());
    }

    #[test]
    fn html_is_sanitised_and_script_links_refused_everywhere_in_a_document() {
        let mut document = json!({
            "uri": "urn:a",
            "altIds": [{"role": "karavan", "value": "itm_forged"}, {"role": "KARAVAN", "value": "x"}, {"role": "isbn", "value": "1"}],
            "headlines": [{"value": "<b>plain text stays</b>"}],
            "bodies": [{"contentType": "text/html", "value": "<p onclick=\"x()\">Hi<script>alert(1)</script></p><a href=\"javascript:alert(1)\">l</a>"}],
            "associations": [{"name": "a", "bodies": [{"contentType": "application/xhtml+xml", "value": "<img src=x onerror=alert(1)>"}]}],
            "renditions": [{"href": "https://example.org/p.jpg"}, {"href": "relative/p.jpg"}]
        });
        sanitize_document(document.as_object_mut().unwrap()).unwrap();
        assert_eq!(document["altIds"], json!([{"role": "isbn", "value": "1"}]));
        assert_eq!(document["headlines"][0]["value"], "<b>plain text stays</b>");
        assert_eq!(document["bodies"][0]["value"], "<p>Hi</p><a rel=\"noopener noreferrer\">l</a>");
        assert_eq!(document["associations"][0]["bodies"][0]["value"], "<img src=\"x\">");
        for href in
            ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:x", "data:text/html,<script>", "vbscript:x"]
        {
            let mut document = json!({"renditions": [{"href": "https://ok"}, {"href": href}]});
            let error = sanitize_document(document.as_object_mut().unwrap()).unwrap_err();
            assert!(error.message.ends_with("(at /renditions/1/href)"), "{href}: {}", error.message);
        }
        let deep = format!("{}x{}", "<div>".repeat(300), "</div>".repeat(300));
        let mut document = json!({"bodies": [{"contentType": "text/html", "value": deep}]});
        let error = sanitize_document(document.as_object_mut().unwrap()).unwrap_err();
        assert!(error.message.contains("more than 256 deep (at /bodies/0/value)"), "{}", error.message);
    }
}
