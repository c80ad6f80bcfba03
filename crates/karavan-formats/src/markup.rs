//! How deep XML or HTML text nests its elements, read without building a tree and without recursion.
//!
//! The XML parser (roxmltree's tokenizer) and every renderer that walks a tree recurse once per level
//! of nesting, and a stack overflow aborts the whole process (it cannot be caught). So every piece of
//! markup from outside, and every stored body before it is rendered, is measured here first, and only
//! markup within the limits below reaches recursive code.

/// The deepest element nesting accepted in an XML document.
pub const MAX_XML_DEPTH: usize = 256;
/// The deepest element nesting accepted in an HTML body.
pub const MAX_HTML_DEPTH: usize = 256;
/// The deepest nesting of HTML as written ([`Markup::HtmlSource`]) handed to the HTML parser at all.
pub const MAX_HTML_SOURCE_DEPTH: usize = 1024;

/// Which rules of tag syntax apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    Xml,
    /// HTML: void elements (`<br>`, `<img>`) never open a level.
    Html,
    /// HTML as authors write it, before a parser has closed anything: elements whose end tag may be
    /// left out (`<p>`, `<li>`, `<td>`, …) are counted as void too, so that a body of ten thousand
    /// unclosed paragraphs is not mistaken for deep nesting. A bound on what the HTML parser will
    /// hold open, used to refuse pathological input before the parser (whose scope checks take time
    /// in proportion to the open elements, so deep input costs it quadratic time) sees it.
    HtmlSource,
}

/// Elements whose end tag HTML lets authors leave out.
const OPTIONAL_END: [&[u8]; 20] = [
    b"p",
    b"li",
    b"dt",
    b"dd",
    b"tr",
    b"td",
    b"th",
    b"option",
    b"optgroup",
    b"thead",
    b"tbody",
    b"tfoot",
    b"colgroup",
    b"caption",
    b"rb",
    b"rt",
    b"rtc",
    b"rp",
    b"head",
    b"body",
];

const VOID_ELEMENTS: [&[u8]; 16] = [
    b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta", b"param", b"source",
    b"track", b"wbr", b"keygen", b"frame",
];

/// The deepest nesting of elements in `text`. Comments, CDATA sections, processing instructions and
/// declarations are skipped as the XML tokenizer skips them, quoted attribute values may hold `>`.
/// An element left open counts as open until the end: for HTML whose end tags are implied this is an
/// upper bound, and for the sanitiser's output (every non-void element closed) it is exact.
pub fn nesting_depth(text: &str, markup: Markup) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut at = 0usize;
    while let Some(offset) = bytes[at..].iter().position(|b| *b == b'<') {
        let start = at + offset;
        let rest = &bytes[start..];
        let skip_to = |end: &[u8]| find(rest, end).map_or(bytes.len(), |found| start + found + end.len());
        if rest.starts_with(b"<!--") {
            at = skip_to(b"-->");
        } else if rest.starts_with(b"<![CDATA[") {
            at = skip_to(b"]]>");
        } else if rest.starts_with(b"<?") {
            at = skip_to(b"?>");
        } else if rest.starts_with(b"<!") {
            at = skip_to(b">");
        } else if rest.starts_with(b"</") {
            let name = &rest[2..rest.iter().position(|b| *b == b'>' || b.is_ascii_whitespace()).unwrap_or(rest.len())];
            let uncounted = markup == Markup::HtmlSource
                && VOID_ELEMENTS.iter().chain(OPTIONAL_END.iter()).any(|v| v.eq_ignore_ascii_case(name));
            if !uncounted {
                depth = depth.saturating_sub(1);
            }
            at = skip_to(b">");
        } else if rest.get(1).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_' || *b == b':' || *b >= 0x80) {
            let Some(end) = tag_end(rest) else {
                // An unterminated tag: the parser will refuse it; nothing after it nests deeper.
                break;
            };
            let tag = &rest[1..end];
            let name_length = tag.iter().position(|b| b.is_ascii_whitespace() || *b == b'/').unwrap_or(tag.len());
            let name = &tag[..name_length];
            let self_closing = tag.last() == Some(&b'/');
            let void = match markup {
                Markup::Xml => false,
                Markup::Html => VOID_ELEMENTS.iter().any(|v| v.eq_ignore_ascii_case(name)),
                Markup::HtmlSource => {
                    VOID_ELEMENTS.iter().chain(OPTIONAL_END.iter()).any(|v| v.eq_ignore_ascii_case(name))
                }
            };
            // An empty element is a level of the tree too, though nothing nests inside it.
            deepest = deepest.max(depth + 1);
            if !self_closing && !void {
                depth += 1;
            }
            at = start + end + 1;
        } else {
            at = start + 1;
        }
    }
    deepest
}

/// The offset of the `>` that ends the tag at the start of `rest`, skipping quoted attribute values.
fn tag_end(rest: &[u8]) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (index, byte) in rest.iter().enumerate().skip(1) {
        match (quote, *byte) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(*byte),
            (None, b'>') => return Some(index),
            _ => {}
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, markup: Markup, expected: usize) {
        assert_eq!(nesting_depth(text, markup), expected, "{text}");
    }

    #[test]
    fn counts_elements_not_other_markup() {
        check("", Markup::Xml, 0);
        check("plain text < 3", Markup::Xml, 0);
        check("<a><b/><c><d></d></c></a>", Markup::Xml, 3);
        check("<a><b><c/></b></a>", Markup::Xml, 3);
        check("<a x='>' y=\"<\"><b></b></a>", Markup::Xml, 2);
        check("<?xml version='1.0'?><!-- <a><a><a> --><a><![CDATA[<b><b>]]></a>", Markup::Xml, 1);
        check("<a><a><a></a></a></a><a></a>", Markup::Xml, 3);
        // In HTML, void elements open nothing; in XML an unclosed one would stay open.
        check("<p>one<br>two<img src=x></p>", Markup::Html, 2);
        check("<p>one<br><br>two</p>", Markup::Xml, 3);
        check("<P><BR><Div></div></p>", Markup::Html, 2);
        check("<br><br><br>", Markup::Html, 1);
        // As written: unclosed paragraphs and list items are no depth, unclosed divs are.
        check(&"<p>para".repeat(1000), Markup::HtmlSource, 1);
        check("<ul><li>a<li>b</ul><p>x</p>", Markup::HtmlSource, 2);
        check(&"<div>".repeat(1000), Markup::HtmlSource, 1000);
        // An unterminated tag ends the count.
        check("<a><b x='", Markup::Xml, 1);
    }

    #[test]
    fn deep_documents_are_measured_without_recursion() {
        let depth = 200_000;
        let deep = format!("{}{}", "<div>".repeat(depth), "</div>".repeat(depth));
        check(&deep, Markup::Html, depth);
        check(&"<a>".repeat(depth), Markup::Xml, depth);
    }

    #[test]
    fn agrees_with_the_parser_on_well_formed_xml() {
        // A naive count over roxmltree's tree (shallow documents only) against the scanner.
        for text in ["<a/>", "<a><b><c/></b><b/></a>", "<r><!--<x>--><x a='&gt;'><y><z/></y></x></r>"] {
            let document = roxmltree::Document::parse(text).unwrap();
            let deepest = document.descendants().filter(|n| n.is_element()).map(|n| n.ancestors().count() - 1).max();
            assert_eq!(nesting_depth(text, Markup::Xml), deepest.unwrap(), "{text}");
        }
    }
}
