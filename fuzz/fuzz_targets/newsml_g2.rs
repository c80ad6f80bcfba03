//! Any bytes as an XML document (NewsML-G2, NewsML 1, RSS, Atom): the reader never panics, and what it
//! accepts is valid ninjs 3.1 whose NewsML-G2 export reads back to the same headlines, body text,
//! subjects, language and embargo.
#![no_main]

use karavan_formats::html::html_text;
use karavan_formats::{Provider, export_g2, import};
use karavan_ninjs::{NinjsVersion, read};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn field(document: &Map<String, Value>, list: &str, key: &str) -> Vec<String> {
    document
        .get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| v.get(key).and_then(Value::as_str).unwrap_or_default().to_string())
        .collect()
}

fn body(document: &Map<String, Value>) -> String {
    field(document, "bodies", "value").first().map(|b| html_text(b)).unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let Ok(items) = import(data) else { return };
    for item in items {
        let document = Value::Object(item.document.clone());
        if let Err(error) = read(&document, Some(NinjsVersion::V3_1)) {
            panic!("the import is not valid ninjs 3.1: {error:?}\n{document:#}");
        }
        let xml = export_g2(&item.document, Provider { id: "mbr_fuzz", name: "Fuzz" });
        let again = import(xml.as_bytes()).unwrap_or_else(|e| panic!("the export does not read back: {e}\n{xml}"));
        let again = &again[0].document;
        let original = &item.document;
        assert_eq!(field(again, "headlines", "value").len(), field(original, "headlines", "value").len(), "{xml}");
        assert_eq!(field(again, "subjects", "uri"), field(original, "subjects", "uri"), "{xml}");
        assert_eq!(again.get("language"), original.get("language"), "{xml}");
        assert_eq!(again.get("uri"), original.get("uri"), "{xml}");
        assert_eq!(body(again), body(original), "{xml}");
    }
});
