//! Meaning-based search on real multilingual embeddings (issue 17, findings 12, 13 and 15), with the
//! installed multilingual-e5-small. Three phases (`KARAVAN_SEMANTIC_BENCH_PHASES`, default all):
//!
//! - `api`: starts the real binary, publishes the parallel dev set (40 stories × 9 language forms, 360
//!   items), and for every (query language A, target language B) asks `GET /v1/search` with each of A's
//!   40 sentences, `lang=B` and `limit=1`, in `mode=semantic` and `mode=hybrid`: top-1 accuracy (the
//!   hit is the same story in B). The matrix, its average over all 81 pairs and its weakest pair.
//! - `floor`: cosines of the model itself (no server) for the similarity floor: the dev set's
//!   sentences as queries against its 360 passages (the 8 translations of each are relevant), and the
//!   81 typed queries of `devset/queries.tsv` (36 about dev-set stories, 45 about nothing in it). For
//!   each candidate floor: the share of relevant items kept, the unrelated items kept per query, and
//!   how many off-topic queries still find something.
//! - `graph`: recall of Karavan's HNSW graph against exact search on a multilingual corpus of real
//!   embeddings: the 360 sentences plus, in each language, pairs of its sentences joined (story i then
//!   story i + k, k = 1 … `KARAVAN_SEMANTIC_BENCH_PAIRS`, default 39: 14,400 texts in all), embedded
//!   once and cached in `.cache/bench/`; queries are the 360 sentences and the 36 typed in-domain
//!   queries. At several corpus sizes: build time, recall@10 and recall@100 at the default settings,
//!   graph and exact latencies (the crossover where exact search is faster), and a language filter.
//!
//! Run: `cargo bench -p karavan --bench semantic`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use karavan_lang::testing;
use karavan_lang::{Embedder, ModelKind, Role};
use karavan_search::VectorIndex;
use serde_json::{Value, json};
use support::{Server, devset, member_with_key, urlencoding};

/// The language forms of the dev set's columns, and the tags the items are published with.
const COLUMNS: [&str; 9] = ["en", "zh", "ru", "kk", "ky", "tg", "tk", "uz", "uz-Cyrl"];
const TAGS: [&str; 9] = ["en", "zh", "ru", "kk", "ky", "tg", "tk", "uz-Latn", "uz-Cyrl"];

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A typed query: its language column, the stories it is about (empty: off-topic), the text.
struct Typed {
    column: usize,
    relevant: Vec<usize>,
    text: String,
}

fn typed_queries() -> Vec<Typed> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../karavan-lang/devset/queries.tsv");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let column = COLUMNS.iter().position(|c| *c == fields[0]).expect("a dev-set language");
            let relevant = match fields[1] {
                "-" => Vec::new(),
                ids => ids.split(',').map(|id| id.parse::<usize>().unwrap() - 1).collect(),
            };
            Typed { column, relevant, text: fields[2].to_string() }
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn main() {
    let phases = std::env::var("KARAVAN_SEMANTIC_BENCH_PHASES").unwrap_or_else(|_| "api,floor,graph".into());
    let model = testing::model_path(ModelKind::Embedding);
    println!("semantic bench; model {}", model.display());
    println!(
        "machine: {} logical CPUs; load average before: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );
    let stories = devset();
    for phase in phases.split(',') {
        match phase.trim() {
            "api" => api_matrix(&stories),
            "floor" => floor(&model, &stories),
            "graph" => graph(&model, &stories),
            other => eprintln!("unknown phase {other:?} (api, floor, graph)"),
        }
    }
    println!("load average after: {}", load_average());
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn print_matrix(title: &str, cells: &[[usize; 9]; 9], of: usize) {
    println!("{title}");
    print!("  {:<9}", "A \\ B");
    for column in COLUMNS {
        print!("{column:>8}");
    }
    println!();
    let (mut sum, mut weakest) = (0.0, (101.0, 0, 0));
    for (a, row) in cells.iter().enumerate() {
        print!("  {:<9}", COLUMNS[a]);
        for (b, &right) in row.iter().enumerate() {
            let pct = 100.0 * right as f64 / of as f64;
            sum += pct;
            if pct < weakest.0 {
                weakest = (pct, a, b);
            }
            print!("{pct:>8.1}");
        }
        println!();
    }
    println!(
        "  average over all 81 pairs: {:.1}%; weakest pair {} → {}: {:.1}%",
        sum / 81.0,
        COLUMNS[weakest.1],
        COLUMNS[weakest.2],
        weakest.0
    );
}

/// Phase `api`: the 9 × 9 top-1 matrix through `GET /v1/search` with the target-language filter.
fn api_matrix(stories: &[Vec<String>]) {
    let models = testing::models();
    let models_dir = models.root().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (_member, key) = member_with_key(dir.path(), "Multilingual Wire", "editor");
    // The ranking itself is measured: no floor.
    let server = Server::start(
        dir.path(),
        &["--models-dir", &models_dir, "--translation-workers", "0", "--semantic-floor", "0"],
    );
    let base = server.base.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for (row, story) in stories.iter().enumerate() {
            for (tag, text) in TAGS.iter().zip(story) {
                let item = json!({
                    "uri": format!("urn:dev:{row}:{tag}"), "type": "text", "language": tag,
                    "headlines": [{"value": text}],
                });
                let response = client.post(format!("{base}/v1/items")).bearer_auth(&key).json(&item).send().await;
                assert_eq!(response.unwrap().status().as_u16(), 201);
            }
        }
        let probe = urlencoding(&stories[0][0]);
        let started = Instant::now();
        loop {
            let url = format!("{base}/v1/search?mode=semantic&q={probe}&limit=1&cursor=o359");
            let body: Value = client.get(&url).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
            if body["hits"].as_array().is_some_and(|hits| !hits.is_empty()) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(600), "the items were not embedded in time");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        println!();
        println!("api: 360 items embedded {:.1} s after the last publish", started.elapsed().as_secs_f64());
        for mode in ["semantic", "hybrid"] {
            let started = Instant::now();
            let mut cells = [[0usize; 9]; 9];
            let mut misses = Vec::new();
            for a in 0..9 {
                for b in 0..9 {
                    for (row, story) in stories.iter().enumerate() {
                        let url = format!(
                            "{base}/v1/search?mode={mode}&lang={}&limit=1&q={}",
                            TAGS[b],
                            urlencoding(&story[a])
                        );
                        let body: Value =
                            client.get(&url).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
                        let top = body["hits"][0]["item"]["uri"].as_str().unwrap_or_default().to_string();
                        if top == format!("urn:dev:{row}:{}", TAGS[b]) {
                            cells[a][b] += 1;
                        } else if misses.len() < 12 && a != b {
                            misses.push(format!("{} → {}: story {} found {top}", COLUMNS[a], COLUMNS[b], row + 1));
                        }
                    }
                }
            }
            println!();
            print_matrix(
                &format!(
                    "api, mode={mode}: top-1 accuracy (%) of GET /v1/search?lang=B&limit=1 with A's sentence as q \
                     ({} queries, {:.1} s)",
                    81 * stories.len(),
                    started.elapsed().as_secs_f64()
                ),
                &cells,
                stories.len(),
            );
            for miss in misses {
                println!("    miss: {miss}");
            }
        }
    });
}

/// Phase `floor`: how candidate similarity floors split relevant from unrelated results.
fn floor(model: &Path, stories: &[Vec<String>]) {
    let embedder = Embedder::load(model).expect("the embedding model loads");
    let mut passages: Vec<Vec<f32>> = Vec::new();
    let mut passage_story = Vec::new();
    let mut sentence_queries: Vec<(usize, usize, Vec<f32>)> = Vec::new();
    for column in 0..9 {
        let texts: Vec<&str> = stories.iter().map(|s| s[column].as_str()).collect();
        passages.extend(embedder.embed(&texts, Role::Passage).unwrap());
        passage_story.extend(0..stories.len());
        for (row, vector) in embedder.embed(&texts, Role::Query).unwrap().into_iter().enumerate() {
            sentence_queries.push((column, row, vector));
        }
    }
    let passage_column: Vec<usize> = (0..passages.len()).map(|i| i / stories.len()).collect();
    let typed = typed_queries();
    let texts: Vec<&str> = typed.iter().map(|t| t.text.as_str()).collect();
    let typed_vectors = embedder.embed(&texts, Role::Query).unwrap();

    println!();
    println!(
        "floor: {} passages; {} sentence queries (their 8 translations relevant); {} typed queries ({} about \
         dev-set stories, {} off-topic)",
        passages.len(),
        sentence_queries.len(),
        typed.len(),
        typed.iter().filter(|t| !t.relevant.is_empty()).count(),
        typed.iter().filter(|t| t.relevant.is_empty()).count()
    );
    println!(
        "| floor | sentences: translations kept | sentences: other stories kept per query | typed: relevant kept \
         | typed: unrelated kept per query | off-topic: items kept per query | off-topic queries finding nothing |"
    );
    println!("|---|---|---|---|---|---|---|");
    for step in 0..=20 {
        let floor = 0.70 + 0.01 * step as f32;
        let (mut kept, mut relevant, mut others) = (0usize, 0usize, 0usize);
        for (column, row, q) in &sentence_queries {
            for (i, p) in passages.iter().enumerate() {
                if passage_column[i] == *column {
                    continue;
                }
                let above = dot(q, p) >= floor;
                if passage_story[i] == *row {
                    relevant += 1;
                    kept += usize::from(above);
                } else {
                    others += usize::from(above);
                }
            }
        }
        let (mut typed_kept, mut typed_relevant, mut typed_others, mut in_domain) = (0usize, 0usize, 0usize, 0usize);
        let (mut off_kept, mut off_none, mut off_topic) = (0usize, 0usize, 0usize);
        for (t, q) in typed.iter().zip(&typed_vectors) {
            let above: Vec<usize> = (0..passages.len()).filter(|&i| dot(q, &passages[i]) >= floor).collect();
            if t.relevant.is_empty() {
                off_topic += 1;
                off_kept += above.len();
                off_none += usize::from(above.is_empty());
            } else {
                in_domain += 1;
                typed_relevant += t.relevant.len() * 9;
                typed_kept += above.iter().filter(|i| t.relevant.contains(&passage_story[**i])).count();
                typed_others += above.iter().filter(|i| !t.relevant.contains(&passage_story[**i])).count();
            }
        }
        println!(
            "| {floor:.2} | {:.3} | {:.1} | {:.3} | {:.1} | {:.1} | {off_none} / {off_topic} |",
            kept as f64 / relevant as f64,
            others as f64 / sentence_queries.len() as f64,
            typed_kept as f64 / typed_relevant as f64,
            typed_others as f64 / in_domain as f64,
            off_kept as f64 / off_topic as f64,
        );
    }
    // The typed in-domain queries' relevant items with the lowest similarity: what a floor would cut.
    let mut lowest: Vec<(f32, String)> = Vec::new();
    for (t, q) in typed.iter().zip(&typed_vectors) {
        for &story in &t.relevant {
            for (column, name) in COLUMNS.iter().enumerate() {
                let i = column * stories.len() + story;
                lowest.push((
                    dot(q, &passages[i]),
                    format!("{:?} ({}) → story {} in {name}", t.text, COLUMNS[t.column], story + 1),
                ));
            }
        }
    }
    lowest.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("  lowest relevant similarities of typed queries:");
    for (sim, what) in lowest.iter().take(8) {
        println!("    {sim:.3} {what}");
    }
    let mut best_off: Vec<(f32, String)> = typed
        .iter()
        .zip(&typed_vectors)
        .filter(|(t, _)| t.relevant.is_empty())
        .map(|(t, q)| {
            (
                passages.iter().map(|p| dot(q, p)).fold(f32::MIN, f32::max),
                format!("{:?} ({})", t.text, COLUMNS[t.column]),
            )
        })
        .collect();
    best_off.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("  highest best match of off-topic queries:");
    for (sim, what) in best_off.iter().take(8) {
        println!("    {sim:.3} {what}");
    }
}

/// The corpus of the `graph` phase: each language's sentences, then its pairs; (text, column).
fn corpus(stories: &[Vec<String>], pairs: usize) -> Vec<(String, usize)> {
    let mut texts = Vec::new();
    for column in 0..9 {
        for story in stories {
            texts.push((story[column].clone(), column));
        }
    }
    for k in 1..=pairs {
        for column in 0..9 {
            for (i, story) in stories.iter().enumerate() {
                let other = &stories[(i + k) % stories.len()];
                let joiner = if COLUMNS[column] == "zh" { "" } else { " " };
                texts.push((format!("{}{joiner}{}", story[column], other[column]), column));
            }
        }
    }
    texts
}

/// Embeds `texts` as passages, or reads them from the cache file written last time.
fn cached_embeddings(embedder: &Embedder, texts: &[(String, usize)], cache: &Path) -> Vec<Vec<f32>> {
    let dim = embedder.dim();
    if let Ok(mut file) = std::fs::File::open(cache) {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        if bytes.len() == texts.len() * dim * 4 {
            let floats: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            eprintln!("graph: {} embeddings read from {}", texts.len(), cache.display());
            return floats.chunks(dim).map(<[f32]>::to_vec).collect();
        }
    }
    let started = Instant::now();
    let mut vectors = Vec::with_capacity(texts.len());
    for (n, chunk) in texts.chunks(32).enumerate() {
        let refs: Vec<&str> = chunk.iter().map(|(t, _)| t.as_str()).collect();
        vectors.extend(embedder.embed(&refs, Role::Passage).unwrap());
        if n % 50 == 49 {
            eprintln!("  embedded {} of {} ({:.0} s)", vectors.len(), texts.len(), started.elapsed().as_secs_f64());
        }
    }
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    let mut file = std::fs::File::create(cache).unwrap();
    for v in &vectors {
        for x in v {
            file.write_all(&x.to_le_bytes()).unwrap();
        }
    }
    eprintln!("graph: embedded {} texts in {:.0} s", texts.len(), started.elapsed().as_secs_f64());
    vectors
}

/// Phase `graph`: HNSW recall against exact search, and the crossover, on real multilingual vectors.
fn graph(model: &Path, stories: &[Vec<String>]) {
    let embedder = Embedder::load(model).expect("the embedding model loads");
    let pairs = setting("KARAVAN_SEMANTIC_BENCH_PAIRS", 39);
    let texts = corpus(stories, pairs);
    let cache: PathBuf = testing::cache_dir().join(format!("bench/semantic-corpus-{pairs}.f32"));
    let vectors = cached_embeddings(&embedder, &texts, &cache);
    // Queries: every sentence, and the typed queries about dev-set stories.
    let mut query_texts: Vec<(String, usize)> =
        (0..9).flat_map(|c| stories.iter().map(move |s| (s[c].clone(), c))).collect();
    query_texts.extend(typed_queries().into_iter().filter(|t| !t.relevant.is_empty()).map(|t| (t.text, t.column)));
    let refs: Vec<&str> = query_texts.iter().map(|(t, _)| t.as_str()).collect();
    let queries = embedder.embed(&refs, Role::Query).unwrap();
    // A fixed shuffle, so that every size holds every language.
    let mut order: Vec<usize> = (0..texts.len()).collect();
    let mut state = 0x5eed_u64;
    for i in (1..order.len()).rev() {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    let keys: Vec<String> = (0..texts.len()).map(|i| format!("itm_{i:06}")).collect();
    let column_of = |key: &str| key.get(4..).and_then(|n| n.parse::<usize>().ok()).map(|i| texts[i].1);

    println!();
    println!(
        "graph: {} texts in 9 language forms (the 360 sentences and {} joined pairs), {} queries; HNSW defaults \
         (M 16, M0 32, ef_construction 128, ef 96), k = 10, one thread",
        texts.len(),
        texts.len() - 360,
        queries.len()
    );
    println!(
        "| vectors | build s | recall@10 | recall@100 | graph p50 ms | graph p99 ms | exact p50 ms | exact p99 ms \
         | filtered recall@10 | filtered p50 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let sizes: Vec<usize> =
        [500, 1_000, 2_000, 4_000, 8_000, texts.len()].into_iter().filter(|&n| n <= texts.len()).collect();
    for n in sizes {
        let mut index = VectorIndex::new(embedder.dim());
        let started = Instant::now();
        for &i in &order[..n] {
            index.upsert(&keys[i], &vectors[i]).unwrap();
        }
        let build = started.elapsed().as_secs_f64();
        let all = |_: &str| true;
        let (mut found10, mut found100, mut want10, mut want100) = (0usize, 0usize, 0usize, 0usize);
        let (mut graph_times, mut exact_times) = (Vec::new(), Vec::new());
        for q in &queries {
            let started = Instant::now();
            let exact = index.exact(q, 10, &all);
            exact_times.push(started.elapsed());
            let started = Instant::now();
            let hits = index.search(q, 10, &all);
            graph_times.push(started.elapsed());
            let got: HashSet<&str> = hits.iter().map(|(k, _)| k.as_str()).collect();
            want10 += exact.len();
            found10 += exact.iter().filter(|(k, _)| got.contains(k.as_str())).count();
            let exact = index.exact(q, 100, &all);
            let got: HashSet<String> = index.search(q, 100, &all).into_iter().map(|(k, _)| k).collect();
            want100 += exact.len();
            found100 += exact.iter().filter(|(k, _)| got.contains(k)).count();
        }
        // A filter on one other language (about a ninth of the corpus), the case of a Kazakh query with
        // lang=ru: the index decides between its walk and brute force itself.
        let (mut found_f, mut want_f, mut filter_times) = (0usize, 0usize, Vec::new());
        for (qi, q) in queries.iter().enumerate() {
            let target = (query_texts[qi].1 + 1 + qi % 8) % 9;
            let allow = move |key: &str| column_of(key) == Some(target);
            let exact = index.exact(q, 10, &allow);
            let started = Instant::now();
            let hits = index.search(q, 10, &allow);
            filter_times.push(started.elapsed());
            let got: HashSet<&str> = hits.iter().map(|(k, _)| k.as_str()).collect();
            want_f += exact.len();
            found_f += exact.iter().filter(|(k, _)| got.contains(k.as_str())).count();
        }
        graph_times.sort();
        exact_times.sort();
        filter_times.sort();
        println!(
            "| {n} | {build:.1} | {:.4} | {:.4} | {:.3} | {:.3} | {:.3} | {:.3} | {:.4} | {:.3} |",
            found10 as f64 / want10 as f64,
            found100 as f64 / want100 as f64,
            percentile(&graph_times, 0.5),
            percentile(&graph_times, 0.99),
            percentile(&exact_times, 0.5),
            percentile(&exact_times, 0.99),
            found_f as f64 / want_f as f64,
            percentile(&filter_times, 0.5),
        );
    }
}
