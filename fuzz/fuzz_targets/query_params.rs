//! Query strings: the strict parameter reader never panics, and percent-encoded pairs round-trip.
#![no_main]

use arbitrary::Arbitrary;
use axum::extract::RawQuery;
use karavan_server::params::Params;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    raw: String,
    value: String,
}

fn encode(text: &str) -> String {
    text.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fuzz_target!(|input: Input| {
    // Anything: an answer, never a panic.
    if let Ok(mut params) = Params::parse(RawQuery(Some(input.raw.clone()))) {
        let _ = params.one("q");
        let _ = params.all("lang");
        let _ = params.time("from");
        let _ = params.flag("include");
        let _ = params.finish();
    }
    // A value encoded as a client would is read back exactly.
    let query = format!("q={}", encode(&input.value));
    let mut params = Params::parse(RawQuery(Some(query))).expect("an encoded query parses");
    assert_eq!(params.one("q").expect("one value").as_deref(), Some(input.value.as_str()));
    params.finish().expect("no unknown parameters");
});
