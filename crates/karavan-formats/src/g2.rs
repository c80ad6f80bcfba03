//! NewsML-G2 to ninjs 3.1: `newsItem`, `packageItem` (a composite item whose group members become
//! associations) and `newsMessage` (each item of its `itemSet`). The mapping is tabled in README.md
//! ("NewsML-G2 mapping"); this module is that table in code.

use roxmltree::Node;
use serde_json::{Map, Value, json};

use crate::html::{clean, inner_html, text_to_html};
use crate::xml::{G2_NS, attr, child, children, descendant, elements, lang, name, text};
use crate::{FormatError, Imported, iptc_uri};

/// Reads a NewsML-G2 document whose root element is `root`.
pub fn import(root: Node<'_, '_>) -> Result<Vec<Imported>, FormatError> {
    let root_name = name(&root);
    if !matches!(root_name, "newsItem" | "packageItem" | "newsMessage") && !NOT_NEWS.contains(&root_name) {
        return Err(FormatError::new(format!(
            "<{root_name}> is not a NewsML-G2 item; expected newsItem, packageItem or newsMessage"
        )));
    }
    if root.tag_name().namespace() != Some(G2_NS) {
        return Err(FormatError::new(format!(
            "<{root_name}> is not in the NewsML-G2 namespace ({G2_NS}); found {:?}",
            root.tag_name().namespace().unwrap_or("no namespace")
        )));
    }
    check_uris(root)?;
    match root_name {
        "newsItem" | "packageItem" => Ok(vec![item(root)?]),
        "newsMessage" => message(root),
        other => Err(not_news(other)),
    }
}

/// URI-typed attributes (`uri`, `…uri`, `href`) of NewsML-G2 elements must be URI references: no
/// control characters, and every `%` starts an escape of two hex digits. Links inside bodies (XHTML,
/// NITF: other namespaces) are the body's business, not the item's.
fn check_uris(root: Node<'_, '_>) -> Result<(), FormatError> {
    for node in root.descendants().filter(|n| n.is_element() && n.tag_name().namespace() == Some(G2_NS)) {
        for attribute in node.attributes() {
            let local = attribute.name();
            if !(local == "href" || local.ends_with("uri")) {
                continue;
            }
            let value = attribute.value();
            let bytes = value.as_bytes();
            let bad_escape = bytes.iter().enumerate().any(|(i, b)| {
                *b == b'%'
                    && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                        && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            });
            if bad_escape || value.chars().any(char::is_control) {
                return Err(FormatError::new(format!("<{}> {local}={value:?} is not a URI reference", name(&node))));
            }
        }
    }
    Ok(())
}

/// The minor version of a `standardversion` such as "2.29".
fn standard_minor(node: &Node<'_, '_>) -> Option<u32> {
    attr(node, "standardversion")?.strip_prefix("2.")?.split('.').next()?.parse().ok()
}

/// NewsML-G2 items that carry no news content.
const NOT_NEWS: [&str; 4] = ["conceptItem", "knowledgeItem", "planningItem", "catalogItem"];

fn not_news(kind: &str) -> FormatError {
    FormatError::new(format!("a {kind} carries no news content; Karavan imports newsItem, packageItem and newsMessage"))
}

fn message(root: Node<'_, '_>) -> Result<Vec<Imported>, FormatError> {
    let Some(set) = child(root, "itemSet") else {
        return Err(FormatError::new("newsMessage: the itemSet is missing"));
    };
    let mut out = Vec::new();
    for (index, node) in elements(set).enumerate() {
        let imported = match name(&node) {
            "newsItem" | "packageItem" => item(node),
            other if NOT_NEWS.contains(&other) => Err(not_news(other)),
            other => Err(FormatError::new(format!("<{other}> is not a NewsML-G2 item"))),
        };
        out.push(imported.map_err(|e| FormatError::new(format!("newsMessage item {index}: {}", e.message)))?);
    }
    if out.is_empty() {
        return Err(FormatError::new("newsMessage: the itemSet carries no items"));
    }
    Ok(out)
}

/// A G2 date-time as RFC 3339: a value without a time zone is taken as UTC.
pub fn date_time(field: &str, value: &str) -> Result<String, FormatError> {
    let value = value.trim();
    let bad = || FormatError::new(format!("{field}: {value:?} is not a date-time"));
    let with_zone = if value.is_ascii() && value.len() >= 19 && value.as_bytes().get(10) == Some(&b'T') {
        let tail = &value[19..];
        let zoned = tail.ends_with('Z') || tail.contains('+') || tail.contains('-');
        if zoned { value.to_string() } else { format!("{value}Z") }
    } else {
        return Err(bad());
    };
    karavan_domain::Timestamp::parse_rfc3339("date-time", &with_zone).map_err(|_| bad())?;
    Ok(with_zone)
}

/// The local part of a QCode (`stat:usable` → `usable`).
fn code(qcode: &str) -> &str {
    qcode.rsplit_once(':').map_or(qcode, |(_, code)| code)
}

/// The name of a concept, in `language` where it has one.
fn concept_name(node: Node<'_, '_>, language: Option<&str>) -> Option<String> {
    let names: Vec<Node> = children(node, "name").collect();
    let preferred = language.and_then(|language| {
        names.iter().find(|n| lang(n).is_some_and(|l| l.eq_ignore_ascii_case(language) || l.starts_with(language)))
    });
    preferred.or(names.first()).and_then(|n| text(*n))
}

/// A concept reference as ninjs `{name, uri, literal}`: IPTC QCodes become their NewsCodes URI, other
/// QCodes are kept as `literal`.
fn concept(node: Node<'_, '_>, language: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(name) = concept_name(node, language) {
        out.insert("name".into(), name.into());
    }
    let uri = attr(&node, "uri");
    let qcode = attr(&node, "qcode");
    match (qcode.and_then(iptc_uri), uri) {
        (Some(expanded), _) => {
            out.insert("uri".into(), expanded.into());
        }
        (None, Some(uri)) => {
            out.insert("uri".into(), uri.into());
            if let Some(qcode) = qcode {
                out.insert("literal".into(), qcode.into());
            }
        }
        (None, None) => {
            if let Some(literal) = qcode.or_else(|| attr(&node, "literal")) {
                out.insert("literal".into(), literal.into());
            }
        }
    }
    out
}

fn ninjs_type(class: Option<&str>, package: bool) -> &'static str {
    let local = class.map(|c| code(c.trim_end_matches('/')).rsplit('/').next().unwrap_or_default());
    match local {
        Some("text") => "text",
        Some("picture") => "picture",
        Some("graphic") => "graphic",
        Some("audio") => "audio",
        Some("video") => "video",
        Some("composite") => "composite",
        Some("event") => "event",
        Some("planning") => "planning",
        _ if package => "composite",
        _ => "text",
    }
}

fn item(node: Node<'_, '_>) -> Result<Imported, FormatError> {
    let kind = name(&node);
    let package = kind == "packageItem";
    let guid = attr(&node, "guid").ok_or_else(|| FormatError::new(format!("{kind}: the guid attribute is missing")))?;
    let here = |message: String| FormatError::new(format!("{kind} {guid}: {message}"));
    // Until NewsML-G2 2.30 every item had to name its catalog (2.30 made it optional).
    let needs_catalog = standard_minor(&node).is_some_and(|minor| minor < 30);
    if needs_catalog && child(node, "catalogRef").is_none() && child(node, "catalog").is_none() {
        return Err(here("no catalogRef or catalog, which NewsML-G2 before 2.30 requires".into()));
    }
    let item_meta = child(node, "itemMeta").ok_or_else(|| here("itemMeta is missing".into()))?;
    let mut doc = Map::new();
    doc.insert("uri".into(), guid.into());
    if let Some(version) = attr(&node, "version") {
        if version.parse::<u64>().is_err() {
            return Err(here(format!("version: {version:?} is not a non-negative integer")));
        }
        doc.insert("version".into(), version.into());
    }
    let class = child(item_meta, "itemClass").ok_or_else(|| here("itemMeta: itemClass is missing".into()))?;
    doc.insert("type".into(), ninjs_type(attr(&class, "qcode").or(attr(&class, "uri")), package).into());
    child(item_meta, "provider").ok_or_else(|| here("itemMeta: provider is missing".into()))?;
    let created = child(item_meta, "versionCreated")
        .and_then(text)
        .ok_or_else(|| here("itemMeta: versionCreated is missing".into()))?;
    doc.insert("versionCreated".into(), date_time("versionCreated", &created).map_err(|e| here(e.message))?.into());
    if let Some(first) = child(item_meta, "firstCreated").and_then(text) {
        doc.insert("firstCreated".into(), date_time("firstCreated", &first).map_err(|e| here(e.message))?.into());
    }
    let mut withheld = false;
    if let Some(embargoed) = child(item_meta, "embargoed") {
        match text(embargoed) {
            Some(until) => {
                let until = date_time("embargoed", &until).map_err(|e| here(e.message))?;
                doc.insert("embargoedUntil".into(), until.into());
            }
            // An empty embargoed means "until further notice": nothing may be used yet.
            None => withheld = true,
        }
    }
    let status = child(item_meta, "pubStatus").and_then(|s| attr(&s, "qcode").or(attr(&s, "uri")));
    match status.map(|s| code(s.rsplit('/').next().unwrap_or(s))) {
        None | Some("usable") => {
            if withheld {
                doc.insert("pubStatus".into(), "withheld".into());
            }
        }
        Some(s @ ("withheld" | "canceled")) => {
            doc.insert("pubStatus".into(), s.into());
        }
        Some(other) => return Err(here(format!("pubStatus: {other:?} is not usable, withheld or canceled"))),
    }
    if let Some(profile) = child(item_meta, "profile").and_then(text) {
        doc.insert("profile".into(), profile.into());
    }
    if let Some(title) = child(item_meta, "title").and_then(text) {
        doc.insert("title".into(), title.into());
    }
    let notes: Vec<String> = children(item_meta, "edNote").filter_map(text).collect();
    if !notes.is_empty() {
        doc.insert("edNote".into(), notes.join("\n").into());
    }
    rights(node, &mut doc);
    let content_meta = child(node, "contentMeta");
    let language = content_meta
        .and_then(|meta| child(meta, "language"))
        .and_then(|l| attr(&l, "tag"))
        .or_else(|| lang(&node))
        .map(str::to_string);
    if let Some(language) = &language {
        doc.insert("language".into(), language.clone().into());
    }
    if let Some(meta) = content_meta {
        content(meta, language.as_deref(), &mut doc).map_err(|e| here(e.message))?;
    }
    let associations = if package { groups(node) } else { associated_links(item_meta) };
    if !associations.is_empty() {
        doc.insert("associations".into(), Value::Array(associations));
    }
    if !package && let Some(set) = child(node, "contentSet") {
        content_set(set, &mut doc);
    }
    Ok(Imported {
        document: doc,
        source_format: format!("NewsML-G2 {}", attr(&node, "standardversion").unwrap_or("2.x")),
    })
}

fn rights(node: Node<'_, '_>, doc: &mut Map<String, Value>) {
    let Some(info) = child(node, "rightsInfo") else { return };
    if let Some(holder) = child(info, "copyrightHolder").and_then(|h| concept_name(h, None)) {
        doc.insert("copyrightHolder".into(), holder.into());
    }
    let notices: Vec<String> = children(info, "copyrightNotice").filter_map(text).collect();
    if !notices.is_empty() {
        doc.insert("copyrightNotice".into(), notices.join(" ").into());
    }
    let terms: Vec<String> = children(info, "usageTerms").filter_map(text).collect();
    if !terms.is_empty() {
        doc.insert("usageTerms".into(), terms.join(" ").into());
    }
    if let Some(href) = attr(&info, "href") {
        doc.insert("rightsInfo".into(), json!({ "linkedRights": href }));
    }
}

fn content(meta: Node<'_, '_>, language: Option<&str>, doc: &mut Map<String, Value>) -> Result<(), FormatError> {
    if let Some(urgency) = child(meta, "urgency").and_then(text) {
        let value: i64 = urgency
            .parse()
            .ok()
            .filter(|u| (1..=9).contains(u))
            .ok_or_else(|| FormatError::new(format!("urgency: {urgency:?} is not 1-9")))?;
        doc.insert("urgency".into(), value.into());
    }
    // ninjs wants a full date-time; a truncated one (a year, a month, a day) is left out.
    if let Some(created) = child(meta, "contentCreated").and_then(text)
        && let Ok(created) = date_time("contentCreated", &created)
    {
        doc.insert("contentCreated".into(), created.into());
    }
    let mut places = Vec::new();
    for located in children(meta, "located") {
        let mut place = concept(located, language);
        if !doc.contains_key("located")
            && let Some(name) = place.get("name").cloned()
        {
            doc.insert("located".into(), name);
        }
        place.insert("rel".into(), "located".into());
        places.push(Value::Object(place));
    }
    let sources: Vec<Value> = children(meta, "infoSource")
        .map(|source| {
            let mut entry = concept(source, language);
            if let Some(role) = attr(&source, "role") {
                entry.insert("role".into(), code(role).into());
            }
            Value::Object(entry)
        })
        .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        .collect();
    if !sources.is_empty() {
        doc.insert("infoSources".into(), Value::Array(sources));
    }
    let creators: Vec<String> = children(meta, "creator").filter_map(|c| concept_name(c, language)).collect();
    let by = child(meta, "by").and_then(text);
    if let Some(by) = by.or_else(|| (!creators.is_empty()).then(|| creators.join(", "))) {
        doc.insert("by".into(), by.into());
    }
    let alt_ids: Vec<Value> = children(meta, "altId")
        .filter_map(|alt| {
            let value = text(alt)?;
            let mut entry = Map::new();
            if let Some(role) = attr(&alt, "type") {
                entry.insert("role".into(), role.into());
            }
            entry.insert("value".into(), value.into());
            Some(Value::Object(entry))
        })
        .collect();
    if !alt_ids.is_empty() {
        doc.insert("altIds".into(), Value::Array(alt_ids));
    }
    let genres: Vec<Value> =
        children(meta, "genre").map(|g| concept(g, language)).filter(|g| !g.is_empty()).map(Value::Object).collect();
    if !genres.is_empty() {
        doc.insert("genres".into(), Value::Array(genres));
    }
    let subjects: Vec<Value> = children(meta, "subject")
        .map(|s| concept(s, language))
        .filter(|s| !s.is_empty())
        .map(|mut s| {
            s.insert("rel".into(), "about".into());
            Value::Object(s)
        })
        .collect();
    if !subjects.is_empty() {
        doc.insert("subjects".into(), Value::Array(subjects));
    }
    if !places.is_empty() {
        doc.insert("places".into(), Value::Array(places));
    }
    if let Some(slug) = child(meta, "slugline").and_then(text) {
        doc.insert("slugline".into(), slug.into());
    }
    let headlines: Vec<Value> = children(meta, "headline").filter_map(|h| labelled(h, "main")).collect();
    if !headlines.is_empty() {
        doc.insert("headlines".into(), Value::Array(headlines));
    }
    let descriptions: Vec<Value> = children(meta, "description").filter_map(|d| labelled(d, "summary")).collect();
    if !descriptions.is_empty() {
        doc.insert("descriptions".into(), Value::Array(descriptions));
    }
    Ok(())
}

/// A headline or description as `{role, value}`; the first without a role gets `default_role`.
fn labelled(node: Node<'_, '_>, default_role: &str) -> Option<Value> {
    let value = text(node)?;
    let role = attr(&node, "role").map(code).unwrap_or(default_role);
    Some(json!({ "role": role, "value": value }))
}

fn content_set(set: Node<'_, '_>, doc: &mut Map<String, Value>) {
    let mut body: Option<String> = None;
    let mut renditions = Vec::new();
    for content in elements(set) {
        let content_type = attr(&content, "contenttype").unwrap_or_default().to_ascii_lowercase();
        match name(&content) {
            "inlineXML" if body.is_none() => {
                if let Some((html, headline)) = inline_xml(content, &content_type) {
                    if !html.is_empty() {
                        body = Some(html);
                    }
                    if !doc.contains_key("headlines")
                        && let Some(headline) = headline
                    {
                        doc.insert("headlines".into(), json!([{ "role": "main", "value": headline }]));
                    }
                }
            }
            "inlineData" if body.is_none() => {
                let raw = content.text().unwrap_or_default();
                let html = if content_type.contains("html") { clean(raw) } else { text_to_html(raw) };
                if !html.is_empty() {
                    body = Some(html);
                }
            }
            "remoteContent" => {
                if let Some(rendition) = remote(content, renditions.len()) {
                    renditions.push(rendition);
                }
            }
            _ => {}
        }
    }
    if let Some(html) = body {
        let words = crate::html::html_text(&html).split_whitespace().count();
        doc.insert(
            "bodies".into(),
            json!([{ "role": "main", "contentType": "text/html", "value": html, "wordCount": words }]),
        );
    }
    if !renditions.is_empty() {
        doc.insert("renditions".into(), Value::Array(renditions));
    }
}

/// The HTML body of an inlineXML (XHTML or NITF) and, for NITF, the headline its head carries.
fn inline_xml(content: Node<'_, '_>, content_type: &str) -> Option<(String, Option<String>)> {
    let top = elements(content).next()?;
    if content_type.contains("nitf") || name(&top) == "nitf" {
        let body = descendant(top, "body")?;
        let headline = descendant(body, "hedline").and_then(|h| child(h, "hl1")).and_then(text);
        let html = descendant(body, "body.content").map(inner_html).unwrap_or_default();
        return Some((html, headline));
    }
    if content_type.contains("html") || name(&top) == "html" {
        let html = match descendant(top, "body") {
            Some(body) => inner_html(body),
            None => inner_html(content),
        };
        return Some((html, None));
    }
    // Other XML (SportsML, …) has no body to show as HTML.
    None
}

fn remote(content: Node<'_, '_>, index: usize) -> Option<Value> {
    let href = attr(&content, "href").or(attr(&content, "residref"))?;
    let mut out = Map::new();
    let name =
        attr(&content, "rendition").map(code).map(str::to_string).unwrap_or_else(|| format!("rendition{}", index + 1));
    out.insert("name".into(), name.into());
    out.insert("href".into(), href.into());
    if let Some(kind) = attr(&content, "contenttype") {
        out.insert("contentType".into(), kind.into());
    }
    for (from, to) in [("width", "width"), ("height", "height"), ("size", "sizeInBytes")] {
        if let Some(n) = attr(&content, from).and_then(|v| v.parse::<u64>().ok()) {
            out.insert(to.into(), n.into());
        }
    }
    if let Some(duration) = attr(&content, "duration").and_then(|d| d.parse::<f64>().ok()) {
        let seconds = match attr(&content, "durationunit").map(code) {
            Some("timeUnit:frames") | Some("frames") => None,
            Some("milliseconds") | Some("timeUnit:milliseconds") => Some(duration / 1000.0),
            _ => Some(duration),
        };
        if let Some(seconds) = seconds.and_then(serde_json::Number::from_f64) {
            out.insert("duration".into(), Value::Number(seconds));
        }
    }
    if let Some(format) = attr(&content, "format") {
        out.insert("format".into(), format.into());
    }
    Some(Value::Object(out))
}

/// A news item's `itemMeta/link`s with the relation "associated with" (how a composite item with a body
/// of its own carries its members).
fn associated_links(item_meta: Node<'_, '_>) -> Vec<Value> {
    children(item_meta, "link")
        .filter(|link| attr(link, "rel").is_some_and(|rel| code(rel) == "associatedWith"))
        .filter_map(|link| {
            let uri = attr(&link, "href").or(attr(&link, "residref"))?;
            let mut out = Map::new();
            out.insert("name".into(), "associated".into());
            out.insert("uri".into(), uri.into());
            if let Some(title) = attr(&link, "title") {
                out.insert("headlines".into(), json!([{ "role": "main", "value": title }]));
            }
            Some(Value::Object(out))
        })
        .collect()
}

/// A package's groups, walked from the root group, as associations (one per itemRef).
fn groups(node: Node<'_, '_>) -> Vec<Value> {
    let Some(set) = child(node, "groupSet") else {
        // Without a groupSet (a bare package in a newsMessage), each top-level itemRef is a member.
        return children(node, "itemRef").enumerate().filter_map(|(i, r)| item_ref(r, "item", i)).collect();
    };
    let all: Vec<Node> = children(set, "group").collect();
    let by_id = |id: &str| all.iter().copied().find(|g| attr(g, "id") == Some(id));
    let start = attr(&set, "root").and_then(by_id).or_else(|| all.first().copied());
    let mut out = Vec::new();
    let mut seen: Vec<roxmltree::NodeId> = Vec::new();
    let mut stack: Vec<Node> = start.into_iter().collect();
    while let Some(group) = stack.pop() {
        if seen.contains(&group.id()) {
            continue;
        }
        seen.push(group.id());
        let role = attr(&group, "role").map(code).unwrap_or("item").to_string();
        let mut refs: Vec<Node> = Vec::new();
        for member in elements(group) {
            match name(&member) {
                "itemRef" => {
                    if let Some(association) = item_ref(member, &role, out.len()) {
                        out.push(association);
                    }
                }
                "groupRef" => {
                    if let Some(target) = attr(&member, "idref").and_then(by_id) {
                        refs.push(target);
                    }
                }
                _ => {}
            }
        }
        stack.extend(refs.into_iter().rev());
    }
    out
}

fn item_ref(node: Node<'_, '_>, role: &str, index: usize) -> Option<Value> {
    let uri = attr(&node, "residref").or(attr(&node, "href"))?;
    let mut out = Map::new();
    out.insert("name".into(), format!("{role}{}", index + 1).into());
    out.insert("uri".into(), uri.into());
    let class = child(node, "itemClass").and_then(|c| attr(&c, "qcode").or(attr(&c, "uri")));
    if class.is_some() {
        out.insert("type".into(), ninjs_type(class, false).into());
    }
    if let Some(version) = attr(&node, "version").filter(|v| v.parse::<u64>().is_ok()) {
        out.insert("version".into(), version.into());
    }
    if let Some(status) = child(node, "pubStatus").and_then(|s| attr(&s, "qcode")).map(code)
        && matches!(status, "usable" | "withheld" | "canceled")
    {
        out.insert("pubStatus".into(), status.into());
    }
    if let Some(title) = child(node, "title").and_then(text) {
        out.insert("headlines".into(), json!([{ "role": "main", "value": title }]));
    }
    let descriptions: Vec<Value> = children(node, "description").filter_map(|d| labelled(d, "summary")).collect();
    if !descriptions.is_empty() {
        out.insert("descriptions".into(), Value::Array(descriptions));
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_uris_are_refused_in_item_metadata_but_not_in_bodies() {
        let item = |body: &str, href: &str| {
            format!(
                r#"<newsItem xmlns="{G2_NS}" guid="g" standardversion="2.35"><itemMeta><itemClass qcode="ninat:text"/>
                <provider literal="p"/><versionCreated>2026-11-21T10:00:00Z</versionCreated>
                <link rel="irel:seeAlso" href="{href}"/></itemMeta><contentSet><inlineXML contenttype="application/xhtml+xml">
                <html xmlns="http://www.w3.org/1999/xhtml"><body><p><a href="{body}">x</a></p></body></html></inlineXML></contentSet></newsItem>"#
            )
        };
        let document = item("http://x.example/%zz", "http://x.example/ok");
        assert!(import(crate::xml::parse(&document).unwrap().root_element()).is_ok());
        let document = item("http://x.example/ok", "http://x.example/%zz");
        let error = import(crate::xml::parse(&document).unwrap().root_element()).unwrap_err();
        assert!(error.message.contains("not a URI reference"), "{error}");
    }

    #[test]
    fn date_times_with_multibyte_characters_are_refused_not_panicked_on() {
        assert!(date_time("t", "2026-11-21T10:00:00é").is_err());
        assert!(date_time("t", "2026-11-2ééT10:00:00").is_err());
        assert_eq!(date_time("t", "2026-11-21T10:00:00").unwrap(), "2026-11-21T10:00:00Z");
        assert_eq!(date_time("t", "2026-11-21T10:00:00+06:00").unwrap(), "2026-11-21T10:00:00+06:00");
    }
}
