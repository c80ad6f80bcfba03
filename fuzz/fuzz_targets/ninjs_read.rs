//! Any bytes as a publish body: the ninjs reader never panics, and what it accepts round-trips —
//! its 3.1 output is itself valid 3.1 that normalises to exactly the same document, with no extensions.
#![no_main]

use karavan_ninjs::{NinjsVersion, read};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let Ok(document) = serde_json::from_slice::<Value>(body) else { return };
    // The first byte picks how the client declares the version: not at all, or one of the twelve.
    let client_says = match selector as usize % 13 {
        0 => None,
        n => Some(NinjsVersion::ALL[n - 1]),
    };
    let Ok(normalized) = read(&document, client_says) else { return };
    let output = Value::Object(normalized.document.clone());
    let again = read(&output, Some(NinjsVersion::V3_1))
        .unwrap_or_else(|error| panic!("the 3.1 output is not valid 3.1: {error}\n{output:#}"));
    assert_eq!(again.document, normalized.document, "normalising 3.1 output changed it");
    assert!(again.extensions.is_empty(), "3.1 output left extensions: {:?}", again.extensions);
});
