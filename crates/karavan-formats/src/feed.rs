//! RSS 2.0 (and RSS 1.0 / RDF) and Atom 1.0 feeds: entries with their identity (guid, id or link), a
//! content hash for de-duplication, sanitised HTML, and their ninjs 3.1 form.

use roxmltree::Node;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::html::{clean, html_text, inner_html, text_to_html};
use crate::xml::{attr, child, children, elements, lang, name, text};
use crate::{FormatError, Imported};

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
const CONTENT_NS: &str = "http://purl.org/rss/1.0/modules/content/";
const DC_NS: &str = "http://purl.org/dc/elements/1.1/";

/// The most entries read from one feed.
pub const MAX_ENTRIES: usize = 1000;

/// A feed as read: its title and language, and its entries in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feed {
    /// "RSS 2.0", "RSS 1.0" or "Atom 1.0".
    pub format: String,
    pub title: Option<String>,
    pub language: Option<String>,
    pub entries: Vec<Entry>,
}

/// One feed entry. HTML fields are already sanitised; dates are RFC 3339.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// The guid (RSS) or id (Atom), as the publisher wrote it.
    pub id: Option<String>,
    pub link: Option<String>,
    pub title: Option<String>,
    pub summary_html: Option<String>,
    pub content_html: Option<String>,
    pub published: Option<String>,
    pub updated: Option<String>,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    pub language: Option<String>,
    /// Enclosures and media links: (url, media type, length in bytes).
    pub enclosures: Vec<(String, Option<String>, Option<u64>)>,
}

/// What a provider adds to every item of its feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Defaults {
    /// The language of entries that do not say theirs (the feed's own language comes first).
    pub language: Option<String>,
    /// Subjects added to every entry (QCodes, URIs or plain names).
    pub subjects: Vec<String>,
}

/// Reads a feed document.
pub fn parse(bytes: &[u8]) -> Result<Feed, FormatError> {
    let text = crate::xml::text_of(bytes)?;
    let document = crate::xml::parse(&text)?;
    read(document.root_element())
}

/// Reads a feed from its root element (`rss`, `rdf:RDF` or `feed`).
pub fn read(root: Node<'_, '_>) -> Result<Feed, FormatError> {
    match name(&root) {
        "rss" => {
            let channel = child(root, "channel").ok_or_else(|| FormatError::new("rss: the channel is missing"))?;
            let version = attr(&root, "version").unwrap_or("2.0");
            rss(channel, children(channel, "item"), &format!("RSS {version}"))
        }
        "RDF" => {
            let channel = child(root, "channel").ok_or_else(|| FormatError::new("RDF: the channel is missing"))?;
            rss(channel, children(root, "item"), "RSS 1.0")
        }
        "feed" if root.tag_name().namespace() == Some(ATOM_NS) => atom(root),
        "feed" => Err(FormatError::new(format!("feed: not in the Atom namespace ({ATOM_NS})"))),
        other => Err(FormatError::new(format!("<{other}> is not an RSS or Atom feed"))),
    }
}

fn limit<'a, 'i>(items: impl Iterator<Item = Node<'a, 'i>>) -> Result<Vec<Node<'a, 'i>>, FormatError> {
    let items: Vec<Node> = items.take(MAX_ENTRIES + 1).collect();
    if items.len() > MAX_ENTRIES {
        return Err(FormatError::new(format!("the feed has more than {MAX_ENTRIES} entries")));
    }
    Ok(items)
}

fn ns_child<'a, 'i>(node: Node<'a, 'i>, ns: &str, local: &str) -> Option<Node<'a, 'i>> {
    elements(node).find(|n| n.tag_name().namespace() == Some(ns) && n.tag_name().name() == local)
}

fn rss<'a, 'i>(
    channel: Node<'a, 'i>,
    items: impl Iterator<Item = Node<'a, 'i>>,
    format: &str,
) -> Result<Feed, FormatError> {
    let language =
        child(channel, "language").and_then(text).or_else(|| ns_child(channel, DC_NS, "language").and_then(text));
    let mut entries = Vec::new();
    for (index, item) in limit(items)?.into_iter().enumerate() {
        let here = |e: FormatError| FormatError::new(format!("item {index}: {}", e.message));
        let date = |local: &'static str, parse: fn(&str) -> Result<String, FormatError>| {
            child(item, local).and_then(text).map(|d| parse(&d)).transpose()
        };
        let published = match date("pubDate", rfc822).map_err(here)? {
            Some(date) => Some(date),
            None => ns_child(item, DC_NS, "date")
                .and_then(text)
                .map(|d| crate::date_time("dc:date", &d))
                .transpose()
                .map_err(here)?,
        };
        let description = child(item, "description").and_then(|d| d.text().map(str::to_string));
        let encoded = ns_child(item, CONTENT_NS, "encoded").and_then(|d| d.text().map(str::to_string));
        let mut authors: Vec<String> = children(item, "author").filter_map(text).collect();
        authors.extend(
            elements(item).filter(|n| n.tag_name().namespace() == Some(DC_NS) && name(n) == "creator").filter_map(text),
        );
        let enclosures = children(item, "enclosure")
            .filter_map(|e| {
                Some((
                    attr(&e, "url")?.to_string(),
                    attr(&e, "type").map(str::to_string),
                    attr(&e, "length").and_then(|l| l.parse().ok()),
                ))
            })
            .collect();
        let entry = Entry {
            id: child(item, "guid").and_then(text).or_else(|| attr(&item, "about").map(str::to_string)),
            link: child(item, "link").and_then(text),
            title: child(item, "title").and_then(text).map(|t| html_text(&t)).filter(|t| !t.is_empty()),
            summary_html: description.as_deref().map(clean).filter(|h| !h.is_empty()),
            content_html: encoded.as_deref().map(clean).filter(|h| !h.is_empty()),
            published,
            updated: None,
            authors,
            categories: children(item, "category").filter_map(text).collect(),
            language: None,
            enclosures,
        };
        if entry.title.is_none() && entry.summary_html.is_none() && entry.content_html.is_none() {
            return Err(FormatError::new(format!("item {index}: neither a title nor a description")));
        }
        entries.push(entry);
    }
    Ok(Feed { format: format.to_string(), title: child(channel, "title").and_then(text), language, entries })
}

/// Atom text constructs: `type="text"` (default), `"html"` or `"xhtml"`, as sanitised HTML.
fn atom_html(node: Node<'_, '_>) -> Option<String> {
    let html = match attr(&node, "type").unwrap_or("text") {
        "html" | "text/html" => clean(node.text().unwrap_or_default()),
        "xhtml" | "application/xhtml+xml" => match child(node, "div") {
            Some(div) => inner_html(div),
            None => inner_html(node),
        },
        kind if kind == "text" || kind.starts_with("text/") => text_to_html(node.text().unwrap_or_default()),
        // Other media types (base64 data, XML) carry no readable body.
        _ => String::new(),
    };
    (!html.is_empty()).then_some(html)
}

fn atom(root: Node<'_, '_>) -> Result<Feed, FormatError> {
    let mut entries = Vec::new();
    for (index, node) in limit(children(root, "entry"))?.into_iter().enumerate() {
        let here = |e: FormatError| FormatError::new(format!("entry {index}: {}", e.message));
        let date =
            |local: &'static str| child(node, local).and_then(text).map(|d| crate::date_time(local, &d)).transpose();
        let links: Vec<Node> = children(node, "link").collect();
        let link = links
            .iter()
            .find(|l| matches!(attr(l, "rel"), None | Some("alternate")))
            .and_then(|l| attr(l, "href"))
            .map(str::to_string);
        let enclosures = links
            .iter()
            .filter(|l| attr(l, "rel") == Some("enclosure"))
            .filter_map(|l| {
                Some((
                    attr(l, "href")?.to_string(),
                    attr(l, "type").map(str::to_string),
                    attr(l, "length").and_then(|n| n.parse().ok()),
                ))
            })
            .collect();
        let categories = children(node, "category")
            .filter_map(|c| attr(&c, "label").or(attr(&c, "term")).map(str::to_string))
            .collect();
        let entry = Entry {
            id: child(node, "id").and_then(text),
            link,
            title: child(node, "title").and_then(atom_html).map(|t| html_text(&t)).filter(|t| !t.is_empty()),
            summary_html: child(node, "summary").and_then(atom_html),
            content_html: child(node, "content").and_then(atom_html),
            published: date("published").map_err(here)?,
            updated: date("updated").map_err(here)?,
            authors: children(node, "author").filter_map(|a| child(a, "name")).filter_map(text).collect(),
            categories,
            language: lang(&node).map(str::to_string),
            enclosures,
        };
        if entry.id.is_none() && entry.link.is_none() {
            return Err(here(FormatError::new("neither an id nor a link")));
        }
        if entry.title.is_none() && entry.summary_html.is_none() && entry.content_html.is_none() {
            return Err(here(FormatError::new("neither a title, a summary nor content")));
        }
        entries.push(entry);
    }
    Ok(Feed {
        format: "Atom 1.0".into(),
        title: child(root, "title").and_then(atom_html).map(|t| html_text(&t)),
        language: lang(&root).map(str::to_string),
        entries,
    })
}

/// RFC 822 / 2822 dates as RSS writes them (`Tue, 10 Jun 2003 04:00:00 GMT`), as RFC 3339.
pub fn rfc822(value: &str) -> Result<String, FormatError> {
    let bad = || FormatError::new(format!("pubDate: {value:?} is not an RFC 822 date"));
    let rest = value.trim();
    let rest = rest.split_once(',').map_or(rest, |(_, after)| after).trim();
    let parts: Vec<&str> = rest.split_whitespace().collect();
    if parts.len() < 4 {
        return Err(bad());
    }
    let day: u32 = parts[0].parse().map_err(|_| bad())?;
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let month_name = parts[1].get(..3).map(str::to_ascii_lowercase).ok_or_else(bad)?;
    let month = MONTHS.iter().position(|m| *m == month_name).ok_or_else(bad)? + 1;
    let mut year: i32 = parts[2].parse().map_err(|_| bad())?;
    if parts[2].len() == 2 {
        year += if year < 50 { 2000 } else { 1900 };
    }
    let clock: Vec<&str> = parts[3].split(':').collect();
    if clock.len() < 2 || clock.len() > 3 {
        return Err(bad());
    }
    let number = |text: &str| text.parse::<u32>().map_err(|_| bad());
    let (hour, minute) = (number(clock[0])?, number(clock[1])?);
    let second = if clock.len() == 3 { number(clock[2])? } else { 0 };
    let zone = match parts.get(4).copied().unwrap_or("GMT") {
        "GMT" | "UT" | "UTC" | "Z" | "z" => "Z".to_string(),
        "EST" => "-05:00".into(),
        "EDT" => "-04:00".into(),
        "CST" => "-06:00".into(),
        "CDT" => "-05:00".into(),
        "MST" => "-07:00".into(),
        "MDT" => "-06:00".into(),
        "PST" => "-08:00".into(),
        "PDT" => "-07:00".into(),
        z if z.len() == 5
            && (z.starts_with('+') || z.starts_with('-'))
            && z[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{}:{}", &z[..3], &z[3..])
        }
        _ => return Err(bad()),
    };
    let rfc = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{zone}");
    crate::date_time("pubDate", &rfc).map_err(|_| bad())
}

impl Entry {
    /// The entry's identity across polls: its guid or id, else its link.
    pub fn key(&self) -> Option<&str> {
        self.id.as_deref().or(self.link.as_deref())
    }

    /// A hash of what a reader sees (title, summary, content), for telling an update from a repeat and
    /// catching the same story under another id.
    pub fn content_hash(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [&self.title, &self.summary_html, &self.content_html] {
            hasher.update(part.as_deref().map(html_text).unwrap_or_default().as_bytes());
            hasher.update([0]);
        }
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The entry as a ninjs 3.1 item.
    pub fn to_ninjs(&self, defaults: &Defaults, feed: &Feed) -> Result<Imported, FormatError> {
        let uri = self
            .id
            .as_deref()
            .filter(|id| id.contains(':'))
            .or(self.link.as_deref())
            .or(self.id.as_deref())
            .map(str::to_string)
            .unwrap_or_else(|| format!("urn:karavan:feed-entry:{}", self.content_hash()));
        let mut doc = Map::new();
        doc.insert("uri".into(), uri.into());
        doc.insert("type".into(), "text".into());
        if let Some(created) = self.updated.as_ref().or(self.published.as_ref()) {
            doc.insert("versionCreated".into(), created.clone().into());
        }
        if let Some(first) = &self.published {
            doc.insert("firstCreated".into(), first.clone().into());
        }
        if let Some(language) = self.language.as_ref().or(feed.language.as_ref()).or(defaults.language.as_ref()) {
            doc.insert("language".into(), language.clone().into());
        }
        if let Some(title) = &self.title {
            doc.insert("headlines".into(), json!([{ "role": "main", "value": title }]));
        }
        let body = self.content_html.as_ref().or(self.summary_html.as_ref());
        if let Some(body) = body {
            doc.insert("bodies".into(), json!([{ "role": "main", "contentType": "text/html", "value": body }]));
        }
        if self.content_html.is_some()
            && let Some(summary) = &self.summary_html
        {
            doc.insert("descriptions".into(), json!([{ "role": "summary", "value": html_text(summary) }]));
        }
        if !self.authors.is_empty() {
            doc.insert("by".into(), self.authors.join(", ").into());
        }
        let mut subjects: Vec<Value> = Vec::new();
        for subject in defaults.subjects.iter().chain(&self.categories) {
            let entry = subject_entry(subject);
            if !subjects.contains(&entry) {
                subjects.push(entry);
            }
        }
        if !subjects.is_empty() {
            doc.insert("subjects".into(), Value::Array(subjects));
        }
        if let Some(link) = &self.link {
            doc.insert("altIds".into(), json!([{ "role": "link", "value": link }]));
        }
        let renditions: Vec<Value> = self
            .enclosures
            .iter()
            .enumerate()
            .map(|(i, (url, kind, length))| {
                let mut r = Map::new();
                r.insert("name".into(), format!("enclosure{}", i + 1).into());
                r.insert("href".into(), url.clone().into());
                if let Some(kind) = kind {
                    r.insert("contentType".into(), kind.clone().into());
                }
                if let Some(length) = length {
                    r.insert("sizeInBytes".into(), (*length).into());
                }
                Value::Object(r)
            })
            .collect();
        if !renditions.is_empty() {
            doc.insert("renditions".into(), Value::Array(renditions));
        }
        Ok(Imported { document: doc, source_format: feed.format.clone() })
    }
}

/// A subject as ninjs: an IPTC QCode becomes its URI, a URI stays one, anything else is a name.
fn subject_entry(subject: &str) -> Value {
    let subject = subject.trim();
    if let Some(uri) = crate::iptc_uri(subject) {
        json!({ "uri": uri, "rel": "about" })
    } else if subject.starts_with("http://") || subject.starts_with("https://") {
        json!({ "uri": subject, "rel": "about" })
    } else {
        json!({ "name": subject, "rel": "about" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Partner</title><language>ru</language>
<item><title>Первая новость</title><link>https://partner.example/1</link><guid>p-1</guid>
<description>&lt;p&gt;Кратко &lt;script&gt;alert(1)&lt;/script&gt;&lt;/p&gt;</description>
<content:encoded><![CDATA[<p onclick="x()">Полный текст</p><img src="javascript:alert(1)">]]></content:encoded>
<pubDate>Tue, 10 Jun 2003 04:00:00 GMT</pubDate><dc:creator>Иванов</dc:creator><category>medtop:04000000</category>
<enclosure url="https://partner.example/1.jpg" type="image/jpeg" length="1234"/></item>
</channel></rss>"#;

    #[test]
    fn rss_entries_are_read_and_cleaned() {
        let feed = parse(RSS.as_bytes()).unwrap();
        assert_eq!(feed.format, "RSS 2.0");
        let entry = &feed.entries[0];
        assert_eq!(entry.key(), Some("p-1"));
        assert_eq!(entry.published.as_deref(), Some("2003-06-10T04:00:00Z"));
        assert_eq!(entry.summary_html.as_deref(), Some("<p>Кратко </p>"));
        assert_eq!(entry.content_html.as_deref(), Some("<p>Полный текст</p><img>"));
        let item = entry
            .to_ninjs(&Defaults { language: Some("kk".into()), subjects: vec!["agriculture".into()] }, &feed)
            .unwrap();
        let doc = item.document;
        assert_eq!(doc["uri"], "https://partner.example/1");
        assert_eq!(doc["language"], "ru");
        assert_eq!(doc["by"], "Иванов");
        assert_eq!(doc["subjects"][0]["name"], "agriculture");
        assert_eq!(doc["subjects"][1]["uri"], "http://cv.iptc.org/newscodes/mediatopic/04000000");
        assert_eq!(doc["renditions"][0]["sizeInBytes"], 1234);
    }

    #[test]
    fn atom_entries_are_read() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh"><title>Feed</title>
<entry><id>tag:x.example,2026:1</id><title type="html">&lt;b&gt;标题&lt;/b&gt;</title><updated>2026-11-20T10:00:00+08:00</updated>
<link href="https://x.example/1"/><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>正文</p></div></content></entry></feed>"#;
        let feed = parse(atom.as_bytes()).unwrap();
        let entry = &feed.entries[0];
        assert_eq!(entry.title.as_deref(), Some("标题"));
        assert_eq!(entry.content_html.as_deref(), Some("<p>正文</p>"));
        let doc = entry.to_ninjs(&Defaults::default(), &feed).unwrap().document;
        assert_eq!(doc["uri"], "tag:x.example,2026:1");
        assert_eq!(doc["language"], "zh");
        assert_eq!(doc["versionCreated"], "2026-11-20T10:00:00+08:00");
    }

    #[test]
    fn bad_feeds_get_clear_errors() {
        assert!(parse(b"<rss/>").unwrap_err().message.contains("channel"));
        assert!(parse(b"<html/>").unwrap_err().message.contains("not an RSS or Atom"));
        let bad_date = "<rss><channel><item><title>x</title><pubDate>yesterday</pubDate></item></channel></rss>";
        assert!(parse(bad_date.as_bytes()).unwrap_err().message.contains("item 0: pubDate"));
        assert!(rfc822("Tue, 10 Jun 2003 04:00:00 +0300").unwrap().ends_with("+03:00"));
        assert!(rfc822("10 Jun 03 04:00 EST").unwrap().starts_with("2003-06-10T04:00:00"));
    }
}
