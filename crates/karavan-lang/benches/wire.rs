//! Translation on the wire: how soon a story's headline and description are readable in seven
//! languages, and how many whole stories (headline, description and a 500-word body into seven
//! languages) the machine translates per hour, with NLLB-200-distilled-600M's shape, float32 and
//! int8.
//!
//! Each story is made from the dev set (`devset/parallel.tsv`): its source language cycles through
//! en, ru, kk, zh and ky; its headline is the first 10 words of a sentence, its description the
//! next sentence, its body 22 consecutive sentences (about 500 English words). It is translated
//! into the seven of en, ru, kk, ky, zh, uz, tg and tk that it is not written in, as the server's
//! workers do: the head part first (the headline and the description into all seven languages in
//! one batch), then the body (all its sentences into all seven languages, in batches of 16 of
//! similar length), beam 4.
//!
//! The checkpoint has random weights (there are none on any registry, see PRODUCT.md), which never
//! choose `</s>` on their own, so every output is forced to its source's length in tokens (a batch
//! to its longest source's): about what a translation between these languages takes. Its
//! tokenizer is the fixtures' small one, so each source is cut to the length NLLB's tokenizer
//! would give it (1.5 tokens per word, 0.75 per Chinese character: an assumption, see `encode`).
//!
//! Prints, per precision: the head part's latency (p50, p90 over the stories), the body's time per
//! story, tokens per second, and stories per hour on this machine.
//!
//! `KARAVAN_BENCH_NLLB` (the checkpoint, as for the translate bench), `KARAVAN_BENCH_THREADS` (2),
//! `KARAVAN_BENCH_PRECISION` (`float32,int8`), `KARAVAN_BENCH_STORIES` (8: head parts measured),
//! `KARAVAN_BENCH_BODIES` (2: bodies measured), `KARAVAN_BENCH_HEAD_BEAMS` (4: the head part's beams; 1
//! measures a greedy head).
//!
//! `cargo bench -p karavan-lang --bench wire`

use std::path::PathBuf;
use std::time::Instant;

use karavan_lang::Precision;
use karavan_lang::bpe::BpeTokenizer;
use karavan_lang::generate::{EarlyStopping, Options, generate_many};
use karavan_lang::m2m100::M2m100;

/// The dev set's columns and their NLLB codes.
const LANGUAGES: [(&str, &str); 8] = [
    ("en", "eng_Latn"),
    ("ru", "rus_Cyrl"),
    ("kk", "kaz_Cyrl"),
    ("ky", "kir_Cyrl"),
    ("zh", "zho_Hans"),
    ("uz", "uzn_Latn"),
    ("tg", "tgk_Cyrl"),
    ("tk", "tuk_Latn"),
];
/// Story sources cycle through these.
const SOURCES: [&str; 5] = ["en", "ru", "kk", "zh", "ky"];
const BODY_SENTENCES: usize = 22;
const BATCH: usize = 16;

struct Story {
    /// Token ids (language code, text, `</s>`) of the headline and the description.
    head: Vec<Vec<u32>>,
    body: Vec<Vec<u32>>,
    /// The seven target language tokens.
    targets: Vec<u32>,
}

/// Translates `sources` into every target, each source encoded once: requests sorted by length
/// and decoded `batch` at a time, each output forced to its batch's longest source; returns the
/// tokens generated.
fn translate(model: &M2m100, sources: &[Vec<u32>], targets: &[u32], batch: usize, beams: usize) -> usize {
    let mut requests: Vec<(usize, u32)> =
        (0..sources.len()).flat_map(|s| targets.iter().map(move |&t| (s, t))).collect();
    requests.sort_by_key(|&(s, _)| sources[s].len());
    let mut generated = 0;
    for chunk in requests.chunks(batch) {
        let longest = chunk.iter().map(|&(s, _)| sources[s].len()).max().unwrap_or(1);
        // The start token and the language token, then as many tokens as the source's text.
        let length = longest + 1;
        let options = Options {
            num_beams: beams,
            max_length: length,
            min_length: length,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            no_repeat_ngram_size: 0,
            forced_eos: false,
        };
        let out = generate_many(model, sources, chunk, &options).expect("generation");
        generated += out.iter().map(|o| o.len() - 1).sum::<usize>();
    }
    generated
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let Some(dir) = std::env::var_os("KARAVAN_BENCH_NLLB").map(PathBuf::from) else {
        eprintln!(
            "wire bench: set KARAVAN_BENCH_NLLB to a checkpoint directory (see the translate bench); nothing measured"
        );
        return;
    };
    let threads = karavan_lang::testing::bench_threads();
    let stories_measured = karavan_lang::testing::bench_setting("KARAVAN_BENCH_STORIES", 8);
    let bodies_measured = karavan_lang::testing::bench_setting("KARAVAN_BENCH_BODIES", 2).min(stories_measured);
    let head_beams = karavan_lang::testing::bench_setting("KARAVAN_BENCH_HEAD_BEAMS", 4).max(1);
    let tokenizer = BpeTokenizer::load(&dir).expect("the checkpoint's tokenizer");
    let devset = karavan_lang::testing::devset();
    let column = |name: &str| devset.languages.iter().position(|l| l == name).expect("a dev set column");
    let rows = devset.sentences[0].len();
    let encode = |language: &str, text: &str| -> Vec<u32> {
        let code = LANGUAGES.iter().find(|(l, _)| *l == language).expect("a story language").1;
        let mut ids = vec![tokenizer.language(code).expect("an NLLB code")];
        // The random checkpoint carries the fixtures' small SentencePiece model, which cuts words
        // into 2–3 times as many pieces as NLLB's 256k-piece vocabulary: each text is cut to the
        // length NLLB's own tokenizer would give it, taken as 1.5 tokens per word (0.75 per
        // Chinese character). An assumption, not a measurement: NLLB's tokenizer is not here.
        let tokens = if language == "zh" {
            (text.chars().filter(|c| !c.is_whitespace()).count() as f64 * 0.75).ceil() as usize
        } else {
            (text.split_whitespace().count() as f64 * 1.5).ceil() as usize
        };
        ids.extend(tokenizer.encode(text).into_iter().cycle().take(tokens.max(1)));
        ids.push(tokenizer.eos);
        ids
    };
    let stories: Vec<Story> = (0..stories_measured)
        .map(|i| {
            let language = SOURCES[i % SOURCES.len()];
            let sentences = &devset.sentences[column(language)];
            // A headline is short: the first 10 words, or for Chinese (no spaces) 20 characters.
            let first = &sentences[(3 * i) % rows];
            let headline: String = if language == "zh" {
                first.chars().take(20).collect()
            } else {
                first.split_whitespace().take(10).collect::<Vec<_>>().join(" ")
            };
            let description = &sentences[(3 * i + 1) % rows];
            let body = (0..BODY_SENTENCES).map(|j| encode(language, &sentences[(5 * i + j) % rows])).collect();
            let targets = LANGUAGES
                .iter()
                .filter(|(l, _)| *l != language)
                .map(|(_, code)| tokenizer.language(code).expect("an NLLB code"))
                .collect();
            Story { head: vec![encode(language, &headline), encode(language, description)], body, targets }
        })
        .collect();
    let body_tokens: usize =
        stories.iter().take(bodies_measured).map(|s| s.body.iter().map(Vec::len).sum::<usize>()).sum();
    println!(
        "{stories_measured} stories (head parts), {bodies_measured} bodies of {BODY_SENTENCES} sentences ({} source tokens each on average), 7 target languages, head beam {head_beams}, body beam 4, {threads} threads",
        body_tokens / bodies_measured.max(1)
    );
    let precisions: Vec<Precision> = std::env::var("KARAVAN_BENCH_PRECISION")
        .unwrap_or_else(|_| "float32,int8".into())
        .split(',')
        .map(|p| Precision::parse(p).expect("KARAVAN_BENCH_PRECISION: float32 and/or int8"))
        .collect();
    for precision in precisions {
        let started = Instant::now();
        let model = M2m100::load_with(&dir, precision).expect("the checkpoint");
        println!("{}: loaded in {:.1} s", precision.as_str(), started.elapsed().as_secs_f64());
        let mut head_seconds = Vec::new();
        let mut head_tokens = 0;
        for story in &stories {
            let started = Instant::now();
            // The headline and the description into all seven languages, each encoded once; the
            // seven headlines decode together, then the seven descriptions (in one batch, the
            // headlines would leave it at their end; forced lengths cannot show that).
            head_tokens += translate(&model, &story.head, &story.targets, story.targets.len(), head_beams);
            head_seconds.push(started.elapsed().as_secs_f64());
        }
        let mut sorted = head_seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let head_mean = head_seconds.iter().sum::<f64>() / head_seconds.len() as f64;
        println!(
            "{}: headline + description into 7 languages: p50 {:.1} s, p90 {:.1} s, mean {:.1} s ({:.1} tokens/s)",
            precision.as_str(),
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.9),
            head_mean,
            head_tokens as f64 / head_seconds.iter().sum::<f64>()
        );
        let started = Instant::now();
        let mut tokens = 0;
        for story in stories.iter().take(bodies_measured) {
            tokens += translate(&model, &story.body, &story.targets, BATCH, 4);
        }
        let body_seconds = started.elapsed().as_secs_f64() / bodies_measured as f64;
        println!(
            "{}: a 500-word body into 7 languages: {body_seconds:.0} s ({:.1} tokens/s); stories per hour on this machine: {:.1}",
            precision.as_str(),
            tokens as f64 / (body_seconds * bodies_measured as f64),
            3600.0 / (head_mean + body_seconds)
        );
    }
}
