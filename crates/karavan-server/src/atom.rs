//! Atom 1.0 (RFC 4287) feeds of subscriptions. Item text goes out as plain text (`type="text"`), so no
//! member's HTML reaches a feed reader unsanitised.

use karavan_store::{Change, StoredVersion, Subscription};
use serde_json::Value;

/// What one feed entry shows.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub title: String,
    pub updated: String,
    pub published: Option<String>,
    pub author: String,
    pub summary: Option<String>,
    pub content: Option<String>,
    pub categories: Vec<String>,
    pub language: Option<String>,
    pub item_id: String,
}

/// Plain text of a ninjs text array, each entry's whitespace collapsed.
fn texts(document: &serde_json::Map<String, Value>, key: &str) -> Vec<String> {
    crate::search::texts(document, key)
        .into_iter()
        .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|text| !text.is_empty())
        .collect()
}

impl Entry {
    pub fn of(version: &StoredVersion, change: &Change, author: &str, killed: bool) -> Entry {
        let document = &version.document;
        let text = |key: &str| document.get(key).and_then(Value::as_str).map(str::to_string);
        let headline = texts(document, "headlines").into_iter().next().unwrap_or_else(|| version.uri.clone());
        let title = if killed { format!("KILL: {headline}") } else { headline };
        let updated = text("versionCreated").unwrap_or_else(|| change.cursor.at.to_rfc3339());
        let categories = document
            .get("subjects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("uri").or_else(|| s.get("name")).or_else(|| s.get("literal"))?.as_str())
            .map(str::to_string)
            .collect();
        Entry {
            id: format!("urn:karavan:item:{}", version.item_id),
            title,
            updated,
            published: text("firstCreated"),
            author: if author.is_empty() { version.owner.to_string() } else { author.to_string() },
            summary: if killed {
                Some(text("edNote").unwrap_or_else(|| "This item was withdrawn. Do not use it.".to_string()))
            } else {
                texts(document, "descriptions").into_iter().next()
            },
            // Atom wants content (or an alternate link) in every entry; a kill notice says it was withdrawn.
            content: if killed {
                Some("This item was withdrawn by its publisher. Do not use it.".to_string())
            } else {
                Some(texts(document, "bodies").join("\n\n")).filter(|b| !b.is_empty())
            },
            categories,
            language: text("language"),
            item_id: version.item_id.to_string(),
        }
    }
}

pub use karavan_formats::xml::escape;

/// The feed document.
pub fn feed(subscription: &Subscription, entries: &[Entry], public_url: &str, token: &str) -> String {
    let base = public_url.trim_end_matches('/');
    let updated =
        entries.iter().map(|e| e.updated.clone()).max().unwrap_or_else(|| subscription.updated_at.to_rfc3339());
    let mut xml =
        String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    xml.push_str(&format!("  <id>urn:karavan:subscription:{}</id>\n", subscription.id));
    xml.push_str(&format!("  <title>{}</title>\n", escape(&format!("Karavan: {}", subscription.spec.name))));
    xml.push_str(&format!("  <updated>{}</updated>\n", escape(&updated)));
    xml.push_str("  <generator>Karavan</generator>\n");
    if !base.is_empty() {
        xml.push_str(&format!(
            "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n",
            escape(&format!("{base}/feeds/{token}"))
        ));
    }
    xml.push_str("  <author><name>Karavan</name></author>\n");
    for entry in entries {
        match &entry.language {
            Some(language) => xml.push_str(&format!("  <entry xml:lang=\"{}\">\n", escape(language))),
            None => xml.push_str("  <entry>\n"),
        }
        xml.push_str(&format!("    <id>{}</id>\n", escape(&entry.id)));
        xml.push_str(&format!("    <title type=\"text\">{}</title>\n", escape(&entry.title)));
        xml.push_str(&format!("    <updated>{}</updated>\n", escape(&entry.updated)));
        if let Some(published) = &entry.published {
            xml.push_str(&format!("    <published>{}</published>\n", escape(published)));
        }
        xml.push_str(&format!("    <author><name>{}</name></author>\n", escape(&entry.author)));
        if !base.is_empty() {
            xml.push_str(&format!(
                "    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
                escape(&format!("{base}/items/{}", entry.item_id))
            ));
        }
        for category in &entry.categories {
            xml.push_str(&format!("    <category term=\"{}\"/>\n", escape(category)));
        }
        if let Some(summary) = &entry.summary {
            xml.push_str(&format!("    <summary type=\"text\">{}</summary>\n", escape(summary)));
        }
        if let Some(content) = &entry.content {
            xml.push_str(&format!("    <content type=\"text\">{}</content>\n", escape(content)));
        }
        xml.push_str("  </entry>\n");
    }
    xml.push_str("</feed>\n");
    xml
}
