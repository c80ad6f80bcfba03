//! Any bytes as an RSS or Atom feed: the reader never panics, every entry it accepts has a stable
//! content hash and becomes valid ninjs 3.1, and its HTML is already clean (cleaning again is a no-op).
#![no_main]

use karavan_formats::feed::{Defaults, parse};
use karavan_formats::html::clean;
use karavan_ninjs::{NinjsVersion, read};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(feed) = parse(data) else { return };
    let defaults = Defaults { language: Some("kk".into()), subjects: vec!["medtop:04000000".into()] };
    for entry in &feed.entries {
        assert_eq!(entry.content_hash(), entry.clone().content_hash());
        for html in [&entry.summary_html, &entry.content_html].into_iter().flatten() {
            assert_eq!(&clean(html), html, "HTML from a feed is not clean");
        }
        let item = entry.to_ninjs(&defaults, &feed).expect("an accepted entry maps to ninjs");
        let document = Value::Object(item.document);
        if let Err(error) = read(&document, Some(NinjsVersion::V3_1)) {
            panic!("the entry is not valid ninjs 3.1: {error:?}\n{document:#}");
        }
    }
});
