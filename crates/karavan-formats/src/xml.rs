//! The one way this crate reads XML: UTF-8 only, no DTD (so no entity expansion and no external
//! entities: billion-laughs and XXE documents are refused), and a cap on size and node count.

use roxmltree::{Document, Node, ParsingOptions};

use crate::FormatError;
use crate::markup::{self, Markup};

/// The largest XML document read (bytes).
pub const MAX_XML_BYTES: usize = 16 * 1024 * 1024;
/// The most nodes (elements, attributes, text) one document may hold.
pub const MAX_XML_NODES: u32 = 1_000_000;
pub use crate::markup::MAX_XML_DEPTH;

/// The NewsML-G2 namespace.
pub const G2_NS: &str = "http://iptc.org/std/nar/2006-10-01/";
/// The XML namespace (`xml:lang`).
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The text of a document, or why it cannot be XML this crate reads.
pub fn text_of(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, FormatError> {
    if bytes.len() > MAX_XML_BYTES {
        return Err(FormatError::new(format!("the document is larger than {MAX_XML_BYTES} bytes")));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(FormatError::new("the document is UTF-16; send UTF-8"));
    }
    // The declaration is ASCII, so it can be read before the encoding is known.
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    let encoding = declared_encoding(&head).map(str::to_ascii_lowercase);
    match encoding.as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => {
            let text = std::str::from_utf8(bytes).map_err(|error| {
                FormatError::new(format!("the document is not UTF-8 (invalid byte at offset {})", error.valid_up_to()))
            })?;
            Ok(std::borrow::Cow::Borrowed(text))
        }
        // Latin-1 maps each byte to the code point of the same number.
        Some("iso-8859-1" | "latin1" | "latin-1" | "iso_8859-1") => {
            Ok(std::borrow::Cow::Owned(bytes.iter().map(|b| char::from(*b)).collect()))
        }
        Some(other) => {
            Err(FormatError::new(format!("the document declares encoding {other:?}; UTF-8 and ISO-8859-1 are read")))
        }
    }
}

fn declared_encoding(text: &str) -> Option<&str> {
    let declaration = text.trim_start().strip_prefix("<?xml")?;
    let declaration = &declaration[..declaration.find("?>")?];
    let at = declaration.find("encoding")?;
    let rest = declaration[at + "encoding".len()..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    Some(&rest[..rest.find(quote)?])
}

/// Parses a document with the safety settings above.
pub fn parse(text: &str) -> Result<Document<'_>, FormatError> {
    if has_doctype(text) {
        return Err(FormatError::new(
            "the document has a DOCTYPE declaration; DTDs and entity declarations are refused (they allow XML bombs and external entities)",
        ));
    }
    // The parser recurses once per level: measure the nesting first, without recursion.
    if markup::nesting_depth(text, Markup::Xml) > MAX_XML_DEPTH {
        return Err(FormatError::new(format!("elements are nested more than {MAX_XML_DEPTH} deep")));
    }
    let options = ParsingOptions { allow_dtd: false, nodes_limit: MAX_XML_NODES };
    let document = Document::parse_with_options(text, options).map_err(|error| match error {
        roxmltree::Error::DtdDetected => FormatError::new("the document has a DOCTYPE declaration; DTDs are refused"),
        roxmltree::Error::NodesLimitReached => {
            FormatError::new(format!("the document has more than {MAX_XML_NODES} nodes"))
        }
        other => FormatError::new(format!("not well-formed XML: {other}")),
    })?;
    Ok(document)
}

fn has_doctype(text: &str) -> bool {
    // A DOCTYPE may only come before the root element; look at the prolog, skipping comments and PIs.
    let mut rest = text.trim_start_matches('\u{feff}');
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("<!--") {
            match after.find("-->") {
                Some(end) => rest = &after[end + 3..],
                None => return false,
            }
        } else if let Some(after) = rest.strip_prefix("<?") {
            match after.find("?>") {
                Some(end) => rest = &after[end + 2..],
                None => return false,
            }
        } else {
            return rest.as_bytes().get(..9).is_some_and(|head| head.eq_ignore_ascii_case(b"<!DOCTYPE"));
        }
    }
}

/// The local name of an element.
pub fn name<'a>(node: &Node<'a, '_>) -> &'a str {
    node.tag_name().name()
}

/// Element children of a node.
pub fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

/// Element children with a local name.
pub fn children<'a, 'i>(node: Node<'a, 'i>, local: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    elements(node).filter(move |child| child.tag_name().name() == local)
}

/// The first element child with a local name.
pub fn child<'a, 'i>(node: Node<'a, 'i>, local: &'static str) -> Option<Node<'a, 'i>> {
    children(node, local).next()
}

/// The first element below a node (at any depth) with a local name.
pub fn descendant<'a, 'i>(node: Node<'a, 'i>, local: &str) -> Option<Node<'a, 'i>> {
    node.descendants().find(|n| n.is_element() && n.tag_name().name() == local)
}

/// All text below a node, whitespace collapsed; None when that leaves nothing.
pub fn text(node: Node<'_, '_>) -> Option<String> {
    let mut out = String::new();
    for piece in node.descendants().filter(Node::is_text).filter_map(|n| n.text()) {
        out.push_str(piece);
        out.push(' ');
    }
    let collapsed = collapse(&out);
    (!collapsed.is_empty()).then_some(collapsed)
}

/// Collapses runs of whitespace into single spaces and trims.
pub fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A non-empty, trimmed attribute.
pub fn attr<'a>(node: &Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attribute(name).map(str::trim).filter(|value| !value.is_empty())
}

/// `xml:lang` of a node or its nearest ancestor that has one.
pub fn lang<'a>(node: &Node<'a, '_>) -> Option<&'a str> {
    node.ancestors().find_map(|n| n.attribute((XML_NS, "lang"))).map(str::trim).filter(|l| !l.is_empty())
}

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are dropped.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billion_laughs_and_external_entities_are_refused() {
        let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<newsItem>&lol2;</newsItem>"#;
        assert!(parse(bomb).unwrap_err().message.contains("DOCTYPE"));
        let xxe = r#"<!-- x --><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>"#;
        assert!(parse(xxe).unwrap_err().message.contains("DOCTYPE"));
        // An undeclared entity is simply not well-formed.
        assert!(parse("<foo>&xxe;</foo>").unwrap_err().message.contains("not well-formed"));
    }

    #[test]
    fn encodings_other_than_utf8_are_named() {
        let latin = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>caf\xe9</a>";
        assert!(text_of(latin).unwrap().ends_with("<a>caf\u{e9}</a>"));
        let koi = b"<?xml version=\"1.0\" encoding=\"KOI8-R\"?><a/>";
        assert!(text_of(koi).unwrap_err().message.contains("koi8-r"));
        assert!(text_of(b"<a>\xff</a>").unwrap_err().message.contains("not UTF-8"));
        assert_eq!(text_of(b"\xEF\xBB\xBF<a/>").unwrap(), "<a/>");
    }

    #[test]
    fn deep_nesting_is_refused() {
        for depth in [MAX_XML_DEPTH + 1, 3_000, 10_000, 1_000_000] {
            let deep = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
            assert!(parse(&deep).unwrap_err().message.contains("nested more than"), "{depth}");
        }
        let at_limit = format!("{}{}", "<a>".repeat(MAX_XML_DEPTH), "</a>".repeat(MAX_XML_DEPTH));
        assert!(parse(&at_limit).is_ok());
        // Found by fuzzing: a multi-byte character where a DOCTYPE could start.
        assert!(parse("<!DOCTY\u{88}PE x>").is_err());
        assert!(has_doctype("  <!doctype html>") && !has_doctype("<!DOCTY\u{88}"));
    }

    #[test]
    fn text_collapses_whitespace() {
        let document = parse("<a> one <b>two\n\n three</b> </a>").unwrap();
        assert_eq!(text(document.root_element()).as_deref(), Some("one two three"));
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
