//! NewsML 1.x (the predecessor of NewsML-G2, still sent by press-release wires such as Business Wire)
//! to ninjs 3.1. Each `NewsItem` becomes one item: identification and management give uri, version,
//! dates and status; the news lines give headline, slugline and copyright; keyword `Property` values
//! and IPTC subject codes become subjects; the component in the role "Body" gives the body; and
//! components holding linked media (logos, photos, video) become associations with their renditions.

use roxmltree::Node;
use serde_json::{Map, Value, json};

use crate::html::{inner_html, text_to_html};
use crate::xml::{attr, child, children, descendant, name, text};
use crate::{FormatError, Imported};

pub fn import(root: Node<'_, '_>) -> Result<Vec<Imported>, FormatError> {
    let items: Vec<Node> = children(root, "NewsItem").collect();
    if items.is_empty() {
        return Err(FormatError::new("NewsML: no NewsItem in the document"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| news_item(item).map_err(|e| FormatError::new(format!("NewsItem {index}: {}", e.message))))
        .collect()
}

/// NewsML 1 dates are ISO 8601 basic: `20130605T210000+0000`.
fn basic_date(field: &str, value: &str) -> Result<String, FormatError> {
    let v = value.trim();
    let bad = || FormatError::new(format!("{field}: {v:?} is not a NewsML date (YYYYMMDDTHHMMSS±HHMM)"));
    if !v.is_ascii() || v.len() < 15 || v.as_bytes()[8] != b'T' || !v[..8].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let time = &v[9..15];
    if !time.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let zone = match &v[15..] {
        "" | "Z" => "Z".to_string(),
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => format!("{}:{}", &z[..3], &z[3..]),
        _ => return Err(bad()),
    };
    let rfc = format!("{}-{}-{}T{}:{}:{}{zone}", &v[..4], &v[4..6], &v[6..8], &time[..2], &time[2..4], &time[4..6]);
    crate::date_time(field, &rfc).map_err(|_| bad())
}

fn formal<'a>(node: Option<Node<'a, '_>>) -> Option<&'a str> {
    node.and_then(|n| attr(&n, "FormalName"))
}

fn news_item(item: Node<'_, '_>) -> Result<Imported, FormatError> {
    let identifier = child(item, "Identification")
        .and_then(|i| child(i, "NewsIdentifier"))
        .ok_or_else(|| FormatError::new("Identification/NewsIdentifier is missing"))?;
    let part = |local: &'static str| child(identifier, local).and_then(text);
    let uri = match part("PublicIdentifier") {
        Some(uri) => uri,
        None => match (part("ProviderId"), part("DateId"), part("NewsItemId")) {
            (Some(provider), Some(date), Some(id)) => format!("urn:newsml:{provider}:{date}:{id}"),
            _ => {
                return Err(FormatError::new(
                    "NewsIdentifier: no PublicIdentifier, nor ProviderId, DateId and NewsItemId",
                ));
            }
        },
    };
    let mut doc = Map::new();
    doc.insert("uri".into(), uri.into());
    if let Some(revision) = part("RevisionId").filter(|r| r.parse::<u64>().is_ok()) {
        doc.insert("version".into(), revision.into());
    }
    let management = child(item, "NewsManagement").ok_or_else(|| FormatError::new("NewsManagement is missing"))?;
    let created = child(management, "ThisRevisionCreated")
        .and_then(text)
        .ok_or_else(|| FormatError::new("NewsManagement: ThisRevisionCreated is missing"))?;
    doc.insert("versionCreated".into(), basic_date("ThisRevisionCreated", &created)?.into());
    if let Some(first) = child(management, "FirstCreated").and_then(text) {
        doc.insert("firstCreated".into(), basic_date("FirstCreated", &first)?.into());
    }
    match formal(child(management, "Status")).map(str::to_ascii_lowercase).as_deref() {
        None | Some("usable") => {}
        Some("withheld") | Some("embargoed") => {
            doc.insert("pubStatus".into(), "withheld".into());
        }
        Some("canceled") | Some("cancelled") => {
            doc.insert("pubStatus".into(), "canceled".into());
        }
        Some(other) => return Err(FormatError::new(format!("Status: {other:?} is not Usable, Withheld or Canceled"))),
    }
    let top = child(item, "NewsComponent").ok_or_else(|| FormatError::new("the NewsComponent is missing"))?;
    let language =
        top.descendants().filter(|n| n.is_element() && name(n) == "Language").find_map(|n| attr(&n, "FormalName"));
    if let Some(language) = language {
        doc.insert("language".into(), language.into());
    }
    if let Some(headline) = descendant(top, "HeadLine").and_then(text) {
        doc.insert("headlines".into(), json!([{ "role": "main", "value": headline }]));
    }
    if let Some(sub) = descendant(top, "SubHeadLine").and_then(text) {
        doc.insert("descriptions".into(), json!([{ "role": "summary", "value": sub }]));
    }
    if let Some(slug) = descendant(top, "SlugLine").and_then(text) {
        doc.insert("slugline".into(), slug.into());
    }
    if let Some(by) = descendant(top, "ByLine").and_then(text) {
        doc.insert("by".into(), by.into());
    }
    if let Some(copyright) = descendant(top, "CopyrightLine").and_then(text) {
        doc.insert("copyrightNotice".into(), copyright.into());
    }
    let subjects = subjects(top);
    if !subjects.is_empty() {
        doc.insert("subjects".into(), Value::Array(subjects));
    }
    if let Some(html) = body(top) {
        doc.insert("bodies".into(), json!([{ "role": "main", "contentType": "text/html", "value": html }]));
    }
    let associations = media(top, doc.get("versionCreated").cloned());
    doc.insert("type".into(), if associations.is_empty() { "text" } else { "composite" }.into());
    if !associations.is_empty() {
        doc.insert("associations".into(), Value::Array(associations));
    }
    Ok(Imported {
        document: doc,
        source_format: format!("NewsML {}", attr(&item.parent_element().unwrap_or(item), "Version").unwrap_or("1.x")),
    })
}

/// Keywords carried as `Metadata/Property` values and IPTC subject codes, in document order, once each.
fn subjects(top: Node<'_, '_>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for node in top.descendants().filter(Node::is_element) {
        let entry = match name(&node) {
            "Property" if node.parent_element().is_some_and(keyword_metadata) => {
                attr(&node, "Value").map(|value| json!({ "name": value, "rel": "about" }))
            }
            "SubjectMatter" | "SubjectDetail" | "Subject" => attr(&node, "FormalName").map(
                |code| json!({ "uri": format!("http://cv.iptc.org/newscodes/subjectcode/{code}"), "rel": "about" }),
            ),
            _ => None,
        };
        if let Some(entry) = entry {
            let key = entry.to_string();
            if !seen.contains(&key) {
                seen.push(key);
                out.push(entry);
            }
        }
    }
    out
}

/// A `Metadata` block of keywords (`MetadataType FormalName="BWKeywords"`, …), not of identifiers.
fn keyword_metadata(metadata: Node<'_, '_>) -> bool {
    name(&metadata) == "Metadata"
        && formal(child(metadata, "MetadataType")).is_some_and(|t| t.to_ascii_lowercase().contains("keyword"))
}

fn role_of<'a>(component: Node<'a, '_>) -> Option<&'a str> {
    formal(child(component, "Role"))
}

fn body(top: Node<'_, '_>) -> Option<String> {
    let components: Vec<Node> = top.descendants().filter(|n| n.is_element() && name(n) == "NewsComponent").collect();
    let chosen =
        components.iter().find(|c| role_of(**c).is_some_and(|r| r.eq_ignore_ascii_case("body"))).or_else(|| {
            components.iter().find(|c| child(**c, "ContentItem").and_then(|i| child(i, "DataContent")).is_some())
        })?;
    let content = child(*chosen, "ContentItem").and_then(|i| child(i, "DataContent"))?;
    let html = match descendant(content, "body") {
        Some(body) => inner_html(body),
        None if crate::xml::elements(content).next().is_some() => inner_html(content),
        None => text_to_html(content.text().unwrap_or_default()),
    };
    (!html.is_empty()).then_some(html)
}

/// Components whose content items link to media files, as associations with one rendition per file.
fn media(top: Node<'_, '_>, version_created: Option<Value>) -> Vec<Value> {
    let mut out = Vec::new();
    for component in top.descendants().filter(|n| n.is_element() && name(n) == "NewsComponent") {
        let files: Vec<Node> = children(component, "ContentItem").filter(|i| attr(i, "Href").is_some()).collect();
        if files.is_empty() {
            continue;
        }
        let role = role_of(component).unwrap_or("media");
        let renditions: Vec<Value> = files.iter().enumerate().map(|(i, file)| rendition(*file, i)).collect();
        let kind = match role.to_ascii_lowercase().as_str() {
            "logo" => "graphic",
            "video" => "video",
            "audio" => "audio",
            _ => "picture",
        };
        // The association points at its "view image" (the wire's screen-size picture), else at the
        // largest picture it carries, else at its first file.
        let uri = files
            .iter()
            .find(|f| property(**f, "ImageUse").is_some_and(|u| u.eq_ignore_ascii_case("viewimage")))
            .or_else(|| {
                files.iter().filter(|f| mime(**f).is_some_and(|m| m.starts_with("image/"))).max_by_key(|f| pixels(**f))
            })
            .or(files.first())
            .and_then(|f| attr(f, "Href"))
            .unwrap_or_default();
        let mut association = Map::new();
        association.insert("name".into(), role.to_ascii_lowercase().into());
        association.insert("uri".into(), uri.into());
        association.insert("type".into(), kind.into());
        if let Some(created) = &version_created {
            association.insert("versionCreated".into(), created.clone());
        }
        if let Some(headline) = child(component, "NewsLines").and_then(|l| child(l, "HeadLine")).and_then(text) {
            association.insert("headlines".into(), json!([{ "role": "main", "value": headline }]));
        }
        association.insert("renditions".into(), Value::Array(renditions));
        out.push(Value::Object(association));
    }
    out
}

fn mime<'a>(file: Node<'a, '_>) -> Option<&'a str> {
    formal(child(file, "MimeType"))
}

fn property<'a>(file: Node<'a, '_>, key: &str) -> Option<&'a str> {
    child(file, "Characteristics")
        .into_iter()
        .flat_map(|c| children(c, "Property"))
        .find(|p| attr(p, "FormalName") == Some(key))
        .and_then(|p| attr(&p, "Value"))
}

fn pixels(file: Node<'_, '_>) -> u64 {
    let n = |key| property(file, key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n("PixelWidth") * n("PixelHeight")
}

fn rendition(file: Node<'_, '_>, index: usize) -> Value {
    let mut out = Map::new();
    let name = property(file, "ImageUse")
        .map(str::to_ascii_lowercase)
        .or_else(|| formal(child(file, "Format")).map(str::to_ascii_lowercase))
        .unwrap_or_else(|| format!("rendition{}", index + 1));
    out.insert("name".into(), name.into());
    out.insert("href".into(), attr(&file, "Href").unwrap_or_default().into());
    if let Some(kind) = mime(file) {
        out.insert("contentType".into(), kind.into());
    }
    for (from, to) in [("PixelWidth", "width"), ("PixelHeight", "height")] {
        if let Some(n) = property(file, from).and_then(|v| v.parse::<u64>().ok()) {
            out.insert(to.into(), n.into());
        }
    }
    if let Some(size) = child(file, "Characteristics").and_then(|c| child(c, "SizeInBytes")).and_then(text)
        && let Ok(size) = size.parse::<u64>()
    {
        out.insert("sizeInBytes".into(), size.into());
    }
    Value::Object(out)
}
