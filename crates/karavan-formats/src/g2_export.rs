//! ninjs 3.1 to NewsML-G2 2.35 (power conformance): a `newsItem`, or a `packageItem` for a composite
//! item whose associations become the `itemRef`s of one group. The output validates against the IPTC
//! schema (the conformance tests check every listing with `xmllint --schema`).

use serde_json::{Map, Value};

use crate::html::clean;
use crate::xml::escape;

/// The NewsML-G2 version Karavan writes.
pub const G2_VERSION: &str = "2.35";
const CATALOG: &str = "http://www.iptc.org/std/catalog/catalog.IPTC-G2-Standards_40.xml";

/// Who provides the item (the owning member), written as itemMeta/provider.
#[derive(Debug, Clone, Copy)]
pub struct Provider<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

/// A composite item is a `packageItem`, unless it has a body of its own (a press release with its
/// pictures): a package cannot carry one, so that is a `newsItem` whose members are `itemMeta/link`s.
fn is_package(document: &Map<String, Value>) -> bool {
    let has_body = document.get("bodies").and_then(Value::as_array).is_some_and(|b| !b.is_empty());
    document.get("type").and_then(Value::as_str) == Some("composite") && !has_body
}

/// The media type of the export of `document`.
pub fn media_type(document: &Map<String, Value>) -> &'static str {
    if is_package(document) {
        "application/vnd.iptc.g2.packageitem+xml"
    } else {
        "application/vnd.iptc.g2.newsitem+xml"
    }
}

fn s<'a>(document: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    document.get(key).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty())
}

fn list<'a>(document: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a Map<String, Value>> {
    document.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

fn element(out: &mut String, indent: usize, name: &str, attributes: &[(&str, &str)], text: Option<&str>) {
    out.push_str(&"  ".repeat(indent));
    out.push('<');
    out.push_str(name);
    for (key, value) in attributes {
        out.push_str(&format!(" {key}=\"{}\"", escape(value)));
    }
    match text {
        Some(text) => out.push_str(&format!(">{}</{name}>\n", escape(text))),
        None => out.push_str("/>\n"),
    }
}

/// A QCode-shaped string: `alias:code` with no spaces or slashes in the alias.
fn looks_like_qcode(text: &str) -> bool {
    match text.split_once(':') {
        Some((alias, code)) => {
            !alias.is_empty()
                && !code.is_empty()
                && alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                && !text.contains(char::is_whitespace)
                && !code.starts_with("//")
        }
        None => false,
    }
}

/// A ninjs concept (`name`, `uri`, `literal`) as a G2 concept element with its identifying attribute.
fn concept(out: &mut String, indent: usize, name: &str, concept: &Map<String, Value>, extra: &[(&str, &str)]) {
    let mut attributes: Vec<(&str, String)> = extra.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let uri = s(concept, "uri");
    let literal = s(concept, "literal");
    if let Some(qcode) = uri.and_then(crate::iptc_qcode) {
        attributes.push(("qcode", qcode));
    } else if let Some(uri) = uri {
        attributes.push(("uri", uri.to_string()));
    } else if let Some(literal) = literal.filter(|l| looks_like_qcode(l)) {
        attributes.push(("qcode", literal.to_string()));
    } else if let Some(literal) = literal {
        attributes.push(("literal", literal.to_string()));
    }
    let attributes: Vec<(&str, &str)> = attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let Some(label) = s(concept, "name") else {
        return element(out, indent, name, &attributes, None);
    };
    let pad = "  ".repeat(indent);
    out.push_str(&format!("{pad}<{name}"));
    for (key, value) in &attributes {
        out.push_str(&format!(" {key}=\"{}\"", escape(value)));
    }
    out.push_str(">\n");
    element(out, indent + 1, "name", &[], Some(label));
    out.push_str(&format!("{pad}</{name}>\n"));
}

/// The elements the export puts around an inline body (newsItem, contentSet, inlineXML, html, body).
const EXPORT_WRAPPING: usize = 5;

/// HTML as well-formed XHTML for inlineXML: sanitised, void elements closed, HTML-only entities
/// written as numeric references. Anything that still does not parse as XML is sent as paragraphs of text.
pub fn xhtml(html: &str) -> String {
    let cleaned = clean(html);
    let converted = to_xml(&cleaned);
    let wrapped = format!("<body xmlns=\"http://www.w3.org/1999/xhtml\">{converted}</body>");
    // The export nests the body in newsItem, contentSet, inlineXML, html and body: what it writes must
    // stay within the depth that its own reader (and ours) accepts, or the export would not read back.
    // `xml::parse` checks the depth first (the parser recurses).
    let fits = crate::markup::nesting_depth(&converted, crate::markup::Markup::Xml) + EXPORT_WRAPPING
        <= crate::markup::MAX_XML_DEPTH;
    if fits && crate::xml::parse(&wrapped).is_ok() {
        converted
    } else {
        crate::html::text_to_html(&crate::html::html_text(&cleaned))
    }
}

const VOID: [&str; 14] =
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"];

fn to_xml(html: &str) -> String {
    let html = html.replace("&nbsp;", "&#160;");
    let mut out = String::with_capacity(html.len() + 16);
    let mut rest = html.as_str();
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        // Find the end of the tag, skipping quoted attribute values (which may hold '>').
        let mut end = None;
        let mut quote: Option<char> = None;
        for (i, c) in rest.char_indices().skip(1) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '>') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            out.push_str(&rest.replace('<', "&lt;"));
            return out;
        };
        let tag = &rest[1..end];
        let tag_name: String =
            tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        let mut fixed = String::with_capacity(tag.len());
        let mut inside: Option<char> = None;
        for c in tag.chars() {
            match (inside, c) {
                (Some(q), c) if c == q => {
                    inside = None;
                    fixed.push(c);
                }
                (Some(_), '<') => fixed.push_str("&lt;"),
                (Some(_), '>') => fixed.push_str("&gt;"),
                (None, '"' | '\'') => {
                    inside = Some(c);
                    fixed.push(c);
                }
                _ => fixed.push(c),
            }
        }
        out.push('<');
        if VOID.contains(&tag_name.as_str()) && !fixed.ends_with('/') {
            out.push_str(&fixed);
            out.push('/');
        } else {
            out.push_str(&fixed);
        }
        out.push('>');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn item_class(kind: &str) -> &'static str {
    match kind {
        "picture" => "ninat:picture",
        "graphic" => "ninat:graphic",
        "audio" => "ninat:audio",
        "video" => "ninat:video",
        "composite" => "ninat:composite",
        "event" => "ninat:event",
        "planning" => "ninat:planning",
        _ => "ninat:text",
    }
}

/// Writes `document` (normalised ninjs 3.1) as a NewsML-G2 item provided by `provider`.
pub fn export_g2(document: &Map<String, Value>, provider: Provider<'_>) -> String {
    let package = is_package(document);
    let root = if package { "packageItem" } else { "newsItem" };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let guid = s(document, "uri").unwrap_or("urn:karavan:unknown");
    let version = s(document, "version").filter(|v| v.parse::<u64>().is_ok()).unwrap_or("1");
    let language = s(document, "language");
    out.push_str(&format!(
        "<{root} xmlns=\"http://iptc.org/std/nar/2006-10-01/\" guid=\"{}\" version=\"{}\" standard=\"NewsML-G2\" standardversion=\"{G2_VERSION}\" conformance=\"power\"",
        escape(guid),
        escape(version)
    ));
    if let Some(language) = language {
        out.push_str(&format!(" xml:lang=\"{}\"", escape(language)));
    }
    out.push_str(">\n");
    element(&mut out, 1, "catalogRef", &[("href", CATALOG)], None);
    rights(document, &mut out);
    item_meta(document, provider, package, &mut out);
    content_meta(document, &mut out);
    if package {
        group_set(document, &mut out);
    } else {
        content_set(document, &mut out);
    }
    out.push_str(&format!("</{root}>\n"));
    out
}

fn rights(document: &Map<String, Value>, out: &mut String) {
    let holder = s(document, "copyrightHolder");
    let notice = s(document, "copyrightNotice");
    let terms = s(document, "usageTerms");
    let linked = document.get("rightsInfo").and_then(Value::as_object).and_then(|r| s(r, "linkedRights"));
    if holder.is_none() && notice.is_none() && terms.is_none() && linked.is_none() {
        return;
    }
    let attributes: Vec<(&str, &str)> = linked.map(|href| ("href", href)).into_iter().collect();
    out.push_str("  <rightsInfo");
    for (key, value) in attributes {
        out.push_str(&format!(" {key}=\"{}\"", escape(value)));
    }
    out.push_str(">\n");
    if let Some(holder) = holder {
        out.push_str("    <copyrightHolder>\n");
        element(out, 3, "name", &[], Some(holder));
        out.push_str("    </copyrightHolder>\n");
    }
    if let Some(notice) = notice {
        element(out, 2, "copyrightNotice", &[], Some(notice));
    }
    if let Some(terms) = terms {
        element(out, 2, "usageTerms", &[], Some(terms));
    }
    out.push_str("  </rightsInfo>\n");
}

fn item_meta(document: &Map<String, Value>, provider: Provider<'_>, package: bool, out: &mut String) {
    out.push_str("  <itemMeta>\n");
    let kind = s(document, "type").unwrap_or(if package { "composite" } else { "text" });
    element(out, 2, "itemClass", &[("qcode", item_class(kind))], None);
    out.push_str(&format!("    <provider literal=\"{}\">\n", escape(provider.id)));
    element(out, 3, "name", &[], Some(provider.name));
    out.push_str("    </provider>\n");
    let created = s(document, "versionCreated").unwrap_or("1970-01-01T00:00:00Z");
    element(out, 2, "versionCreated", &[], Some(created));
    if let Some(first) = s(document, "firstCreated") {
        element(out, 2, "firstCreated", &[], Some(first));
    }
    if let Some(until) = s(document, "embargoedUntil") {
        element(out, 2, "embargoed", &[], Some(until));
    }
    let status = match s(document, "pubStatus") {
        Some("withheld") => "stat:withheld",
        Some("canceled") => "stat:canceled",
        _ => "stat:usable",
    };
    element(out, 2, "pubStatus", &[("qcode", status)], None);
    if let Some(profile) = s(document, "profile") {
        element(out, 2, "profile", &[], Some(profile));
    }
    if let Some(title) = s(document, "title") {
        element(out, 2, "title", &[], Some(title));
    }
    if let Some(note) = s(document, "edNote") {
        element(out, 2, "edNote", &[], Some(note));
    }
    if !package {
        // Associations of a news item (a package writes them as its groups).
        for member in list(document, "associations") {
            let Some(uri) = s(member, "uri") else { continue };
            let mut attributes = vec![("rel", "irel:associatedWith"), ("href", uri)];
            if let Some(title) = list(member, "headlines").find_map(|h| s(h, "value")) {
                attributes.push(("title", title));
            }
            element(out, 2, "link", &attributes, None);
        }
    }
    out.push_str("  </itemMeta>\n");
}

fn role_qcode(alias: &str, role: Option<&str>) -> Option<String> {
    role.filter(|r| !r.is_empty()).map(|r| if looks_like_qcode(r) { r.to_string() } else { format!("{alias}:{r}") })
}

fn content_meta(document: &Map<String, Value>, out: &mut String) {
    let mut body = String::new();
    if let Some(urgency) = document.get("urgency").and_then(Value::as_i64).filter(|u| (1..=9).contains(u)) {
        element(&mut body, 2, "urgency", &[], Some(&urgency.to_string()));
    }
    if let Some(created) = s(document, "contentCreated") {
        element(&mut body, 2, "contentCreated", &[], Some(created));
    }
    let located: Vec<&Map<String, Value>> =
        list(document, "places").filter(|p| s(p, "rel") == Some("located")).collect();
    if located.is_empty() {
        if let Some(name) = s(document, "located") {
            let mut place = Map::new();
            place.insert("name".into(), name.into());
            concept(&mut body, 2, "located", &place, &[]);
        }
    } else {
        for place in located {
            concept(&mut body, 2, "located", place, &[]);
        }
    }
    for source in list(document, "infoSources") {
        let role = role_qcode("isrol", s(source, "role"));
        let extra: Vec<(&str, &str)> = role.as_deref().map(|r| ("role", r)).into_iter().collect();
        concept(&mut body, 2, "infoSource", source, &extra);
    }
    for alt in list(document, "altIds") {
        if let Some(value) = s(alt, "value") {
            let role = s(alt, "role").filter(|r| looks_like_qcode(r));
            let attributes: Vec<(&str, &str)> = role.map(|r| ("type", r)).into_iter().collect();
            element(&mut body, 2, "altId", &attributes, Some(value));
        }
    }
    if let Some(language) = s(document, "language") {
        element(&mut body, 2, "language", &[("tag", language)], None);
    }
    for genre in list(document, "genres") {
        concept(&mut body, 2, "genre", genre, &[]);
    }
    for subject in list(document, "subjects") {
        concept(&mut body, 2, "subject", subject, &[]);
    }
    if let Some(slug) = s(document, "slugline") {
        element(&mut body, 2, "slugline", &[], Some(slug));
    }
    for headline in list(document, "headlines") {
        if let Some(value) = s(headline, "value") {
            let role = role_qcode("hltype", s(headline, "role").filter(|r| *r != "main"));
            let attributes: Vec<(&str, &str)> = role.as_deref().map(|r| ("role", r)).into_iter().collect();
            element(&mut body, 2, "headline", &attributes, Some(&crate::html::html_text(value)));
        }
    }
    if let Some(by) = s(document, "by") {
        element(&mut body, 2, "by", &[], Some(by));
    }
    for description in list(document, "descriptions") {
        if let Some(value) = s(description, "value") {
            let role = role_qcode("drol", s(description, "role"));
            let attributes: Vec<(&str, &str)> = role.as_deref().map(|r| ("role", r)).into_iter().collect();
            element(&mut body, 2, "description", &attributes, Some(&crate::html::html_text(value)));
        }
    }
    if !body.is_empty() {
        out.push_str("  <contentMeta>\n");
        out.push_str(&body);
        out.push_str("  </contentMeta>\n");
    }
}

fn content_set(document: &Map<String, Value>, out: &mut String) {
    let mut set = String::new();
    let body = list(document, "bodies").find_map(|b| {
        let value = s(b, "value")?;
        let html = s(b, "contentType").is_none_or(|t| t.contains("html"));
        Some(if html { value.to_string() } else { crate::html::text_to_html(value) })
    });
    if let Some(html) = body {
        let title =
            list(document, "headlines").find_map(|h| s(h, "value")).map(crate::html::html_text).unwrap_or_default();
        set.push_str("    <inlineXML contenttype=\"application/xhtml+xml\">\n");
        set.push_str(&format!(
            "      <html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>{}</title></head><body>{}</body></html>\n",
            escape(&title),
            xhtml(&html)
        ));
        set.push_str("    </inlineXML>\n");
    }
    for rendition in list(document, "renditions") {
        let Some(href) = s(rendition, "href") else { continue };
        let mut attributes: Vec<(&str, String)> = vec![("href", href.to_string())];
        if let Some(name) = s(rendition, "name") {
            attributes
                .push(("rendition", if looks_like_qcode(name) { name.to_string() } else { format!("rnd:{name}") }));
        }
        if let Some(kind) = s(rendition, "contentType") {
            attributes.push(("contenttype", kind.to_string()));
        }
        for (from, to) in [("width", "width"), ("height", "height"), ("sizeInBytes", "size")] {
            if let Some(n) = rendition.get(from).and_then(Value::as_u64) {
                attributes.push((to, n.to_string()));
            }
        }
        if let Some(duration) = rendition.get("duration").and_then(Value::as_f64) {
            attributes.push(("duration", duration.to_string()));
            attributes.push(("durationunit", "timeunit:seconds".to_string()));
        }
        let attributes: Vec<(&str, &str)> = attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        element(&mut set, 2, "remoteContent", &attributes, None);
    }
    if !set.is_empty() {
        out.push_str("  <contentSet>\n");
        out.push_str(&set);
        out.push_str("  </contentSet>\n");
    }
}

fn group_set(document: &Map<String, Value>, out: &mut String) {
    let members: Vec<&Map<String, Value>> = list(document, "associations").filter(|a| s(a, "uri").is_some()).collect();
    if members.is_empty() {
        return;
    }
    out.push_str("  <groupSet root=\"G1\">\n    <group id=\"G1\" role=\"group:main\">\n");
    for member in members {
        let mut attributes: Vec<(&str, &str)> = vec![("residref", s(member, "uri").unwrap_or_default())];
        if let Some(version) = s(member, "version").filter(|v| v.parse::<u64>().is_ok()) {
            attributes.push(("version", version));
        }
        out.push_str("      <itemRef");
        for (key, value) in attributes {
            out.push_str(&format!(" {key}=\"{}\"", escape(value)));
        }
        out.push_str(">\n");
        if let Some(kind) = s(member, "type") {
            element(out, 4, "itemClass", &[("qcode", item_class(kind))], None);
        }
        if let Some(status) = s(member, "pubStatus") {
            element(out, 4, "pubStatus", &[("qcode", &format!("stat:{status}"))], None);
        }
        if let Some(title) = list(member, "headlines").find_map(|h| s(h, "value")) {
            element(out, 4, "title", &[], Some(title));
        }
        for description in list(member, "descriptions") {
            if let Some(value) = s(description, "value") {
                let role = role_qcode("drol", s(description, "role"));
                let attributes: Vec<(&str, &str)> = role.as_deref().map(|r| ("role", r)).into_iter().collect();
                element(out, 4, "description", &attributes, Some(value));
            }
        }
        out.push_str("      </itemRef>\n");
    }
    out.push_str("    </group>\n  </groupSet>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_well_formed_xhtml() {
        assert_eq!(
            xhtml("<p>a<br>b&nbsp;c</p><img src=\"x.png\" alt=\"1 > 0\">"),
            "<p>a<br/>b&#160;c</p><img src=\"x.png\" alt=\"1 &gt; 0\"/>"
        );
        assert_eq!(xhtml("<p>unclosed <b>bold"), "<p>unclosed <b>bold</b></p>");
    }
}
