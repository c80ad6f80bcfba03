//! Deep and huge markup through every reader and renderer of this crate, as generated input
//! (proptest): nestings of up to 30,000 elements, closed or not, of HTML, NITF and XHTML names, with
//! text, comments and CDATA between, inside a NewsML-G2 item, an RSS description, an Atom entry and a
//! bare HTML body. Each case runs on a thread with a 1 MiB stack (half of what the server's blocking
//! threads have), so any recursion that the depth checks let through would overflow it and abort the
//! test binary. And what comes out holds: XML that parses is within the depth limit, clean HTML is
//! within its limit and cleaning it again changes nothing, XHTML for NewsML-G2 is well-formed.

use karavan_formats::markup::{MAX_HTML_DEPTH, MAX_XML_DEPTH, Markup, nesting_depth};
use karavan_formats::{Provider, export_g2, feed, html, import, xhtml, xml};
use proptest::prelude::*;
use serde_json::json;

const NAMES: [&str; 10] = ["div", "p", "b", "span", "table", "li", "block", "hl2", "a", "em"];

/// A nesting: element names, how deep, whether the end tags are written, and what sits inside.
#[derive(Debug, Clone)]
struct Nesting {
    names: Vec<usize>,
    depth: usize,
    closed: bool,
    filler: u8,
}

fn nesting() -> impl Strategy<Value = Nesting> {
    (
        proptest::collection::vec(0..NAMES.len(), 1..4),
        prop_oneof![0usize..300, 200usize..1_100, 1_000usize..30_000],
        any::<bool>(),
        0u8..4,
    )
        .prop_map(|(names, depth, closed, filler)| Nesting { names, depth, closed, filler })
}

impl Nesting {
    fn markup(&self) -> String {
        let mut out = String::with_capacity(self.depth * 12);
        for level in 0..self.depth {
            out.push('<');
            out.push_str(NAMES[self.names[level % self.names.len()]]);
            out.push('>');
            match (self.filler, level % 97) {
                (1, 0) => out.push_str("words "),
                (2, 0) => out.push_str("<!-- a < comment -->"),
                (3, 0) => out.push_str("<br>"),
                _ => {}
            }
        }
        out.push_str("deepest words");
        if self.closed {
            for level in (0..self.depth).rev() {
                out.push_str("</");
                out.push_str(NAMES[self.names[level % self.names.len()]]);
                out.push('>');
            }
        }
        out
    }
}

/// Runs `work` on a thread with a small stack; a stack overflow there aborts the whole test.
fn on_small_stack(work: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(1024 * 1024).spawn(work).unwrap().join().unwrap();
}

fn g2(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="urn:deep:1" version="1" standard="NewsML-G2" standardversion="2.35">
<itemMeta><itemClass qcode="ninat:text"/><provider literal="x"/><versionCreated>2026-01-01T00:00:00Z</versionCreated></itemMeta>
<contentMeta><headline>Deep</headline></contentMeta>
<contentSet><inlineXML contenttype="application/xhtml+xml"><html xmlns="http://www.w3.org/1999/xhtml"><body>{body}</body></html></inlineXML></contentSet></newsItem>"#
    )
}

fn rss(body: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><guid>g1</guid><title>Deep</title><description><![CDATA[{body}]]></description></item></channel></rss>"#
    )
}

fn atom(body: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:f</id><updated>2026-01-01T00:00:00Z</updated><entry><id>urn:e</id><title>Deep</title><updated>2026-01-01T00:00:00Z</updated><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">{body}</div></content></entry></feed>"#
    )
}

fn check_clean_html(html_in: &str) {
    let cleaned = html::clean(html_in);
    assert!(nesting_depth(&cleaned, Markup::Html) <= MAX_HTML_DEPTH, "clean HTML nests too deep");
    let again = html::clean(&cleaned);
    if again != cleaned {
        let at = again.chars().zip(cleaned.chars()).take_while(|(a, b)| a == b).count();
        let near: String = cleaned.chars().skip(at.saturating_sub(60)).take(160).collect();
        panic!("cleaning clean HTML changes it ({} → {} bytes), near {near:?}", cleaned.len(), again.len());
    }
    if let Ok(checked) = html::clean_checked(html_in) {
        assert_eq!(checked, cleaned);
    }
    let converted = xhtml(html_in);
    let wrapped = format!("<body xmlns=\"http://www.w3.org/1999/xhtml\">{converted}</body>");
    assert!(xml::parse(&wrapped).is_ok(), "the XHTML for NewsML-G2 is not well-formed");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn deep_markup_never_reaches_recursion_unchecked(nesting in nesting()) {
        on_small_stack(move || {
            let body = nesting.markup();
            // Bare HTML: the sanitiser, the checked sanitiser, the XHTML conversion.
            check_clean_html(&body);
            // XML: whatever parses is within the limit; every reader refuses or reads, never aborts.
            for document in [g2(&body), rss(&body), atom(&body)] {
                if let Ok(parsed) = xml::parse(&document) {
                    let deepest = parsed.descendants().map(|n| n.ancestors().count()).max().unwrap_or(0);
                    assert!(deepest <= MAX_XML_DEPTH + 2, "parsed {deepest} deep");
                }
                if let Ok(items) = import(document.as_bytes()) {
                    for item in items {
                        let document = item.document;
                        for body in document.get("bodies").and_then(|b| b.as_array()).into_iter().flatten() {
                            if let Some(value) = body.get("value").and_then(|v| v.as_str()) {
                                assert!(nesting_depth(value, Markup::Html) <= MAX_HTML_DEPTH);
                            }
                        }
                        let _ = export_g2(&document, Provider { id: "m", name: "Member" });
                    }
                }
                let _ = feed::parse(document.as_bytes());
            }
            // A stored ninjs body of any depth (an older server may have stored one) is exported.
            let stored = json!({
                "uri": "urn:deep:2", "type": "text",
                "headlines": [{"value": "Deep"}],
                "bodies": [{"contentType": "text/html", "value": body}],
            });
            let exported = export_g2(stored.as_object().unwrap(), Provider { id: "m", name: "Member" });
            assert!(xml::parse(&exported).is_ok(), "the export is not well-formed XML");
        });
    }
}
