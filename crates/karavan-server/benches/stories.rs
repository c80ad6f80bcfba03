//! Story clustering, measured: quality on the labelled development set (`devset/stories.jsonl`,
//! written for Karavan: items about distinct events in the member languages, with same-topic events
//! that are different stories) and the clustering step's speed, with and without embeddings.
//!
//! Quality: BCubed precision, recall and F1 and pairwise F1, across languages (all items) and within a
//! language (each language's items alone, averaged weighted by items). Embeddings are multilingual-e5's
//! (the packaged model, installed as the tests install it), of the text the embedder engine embeds;
//! they are cached in `.cache/stories-devset-embeddings.json`.
//! Speed: the development set repeated with its times shifted (so that copies do not meet) through one
//! clusterer, items per second, then the embedder's own speed on the same texts (where the time goes).
//! `KARAVAN_STORY_GRID=1` also prints a coarse grid of the parameters (how `Params::default` was chosen).
//! Run: `cargo bench -p karavan-server --bench stories`.

use std::collections::HashMap;
use std::time::Instant;

use karavan_server::stories::cluster::{Clusterer, ItemInput, Params, Quality, quality};

#[derive(Debug, Clone)]
struct Labelled {
    event: String,
    language: String,
    headline: String,
    body: String,
    at: i64,
}

fn devset() -> Vec<Labelled> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("devset/stories.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut items: Vec<Labelled> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let at = karavan_domain::Timestamp::parse_rfc3339("at", &s("at")).expect("an RFC 3339 time").micros();
            Labelled { event: s("event"), language: s("language"), headline: s("headline"), body: s("body"), at }
        })
        .collect();
    items.sort_by_key(|i| i.at);
    items
}

fn text_of(item: &Labelled) -> String {
    format!("{}\n{}", item.headline, item.body)
}

/// The items' embeddings, from the cache or the model.
fn embeddings(items: &[Labelled]) -> (Vec<Vec<f32>>, Option<f64>) {
    let cache = karavan_lang::testing::cache_dir().join("stories-devset-embeddings.json");
    let texts: Vec<String> = items.iter().map(text_of).collect();
    if let Ok(saved) = std::fs::read_to_string(&cache)
        && let Ok(map) = serde_json::from_str::<HashMap<String, Vec<f32>>>(&saved)
        && texts.iter().all(|t| map.contains_key(t))
    {
        return (texts.iter().map(|t| map[t].clone()).collect(), None);
    }
    let models = karavan_lang::testing::models();
    let (_, path) = models.find(karavan_lang::ModelKind::Embedding).expect("the embedding model");
    let embedder = karavan_lang::Embedder::load(&path).expect("the embedder loads");
    let started = Instant::now();
    let mut out = Vec::new();
    for chunk in texts.chunks(16) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        out.extend(embedder.embed(&refs, karavan_lang::Role::Passage).expect("embedded"));
    }
    let rate = texts.len() as f64 / started.elapsed().as_secs_f64();
    let map: HashMap<&String, &Vec<f32>> = texts.iter().zip(&out).collect();
    let _ = std::fs::write(&cache, serde_json::to_string(&map).unwrap());
    (out, Some(rate))
}

fn cluster(items: &[Labelled], dense: Option<&[Vec<f32>]>, params: Params) -> Vec<String> {
    let mut clusterer = Clusterer::new(params);
    let mut next = 0u64;
    let mut assigned: Vec<(String, String)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let id = format!("i{index}");
        let input = ItemInput {
            item: &id,
            language: Some(&item.language),
            headline: &item.headline,
            text: &item.body,
            at: item.at,
            dense: dense.map(|d| d[index].as_slice()),
        };
        let assignment = clusterer.assign(&input, || {
            next += 1;
            format!("s{next}")
        });
        for merged in &assignment.merged {
            for (_, story) in assigned.iter_mut() {
                if story == merged {
                    *story = assignment.story.clone();
                }
            }
        }
        assigned.push((id, assignment.story));
    }
    assigned.into_iter().map(|(_, story)| story).collect()
}

struct Scores {
    across: Quality,
    within: f64,
    per_language: Vec<(String, usize, Quality)>,
}

fn score(items: &[Labelled], clusters: &[String]) -> Scores {
    let labels: Vec<&str> = items.iter().map(|i| i.event.as_str()).collect();
    let cluster_refs: Vec<&str> = clusters.iter().map(String::as_str).collect();
    let across = quality(&cluster_refs, &labels);
    let mut languages: Vec<String> = items.iter().map(|i| i.language.clone()).collect();
    languages.sort();
    languages.dedup();
    let mut per_language = Vec::new();
    let mut weighted = 0.0;
    for language in languages {
        let picked: Vec<usize> = (0..items.len()).filter(|&i| items[i].language == language).collect();
        let c: Vec<&str> = picked.iter().map(|&i| clusters[i].as_str()).collect();
        let l: Vec<&str> = picked.iter().map(|&i| labels[i]).collect();
        let q = quality(&c, &l);
        weighted += q.bcubed_f1 * picked.len() as f64;
        per_language.push((language, picked.len(), q));
    }
    Scores { across, within: weighted / items.len() as f64, per_language }
}

fn report(name: &str, scores: &Scores) {
    let q = scores.across;
    println!(
        "{name}: across languages BCubed P {:.3} R {:.3} F1 {:.3}, pairwise P {:.3} R {:.3} F1 {:.3}; within a language BCubed F1 {:.3}",
        q.bcubed_precision, q.bcubed_recall, q.bcubed_f1, q.pairwise_precision, q.pairwise_recall, q.pairwise_f1, scores.within
    );
    let per: Vec<String> =
        scores.per_language.iter().map(|(l, n, q)| format!("{l} ({n}) {:.3}", q.bcubed_f1)).collect();
    println!("  within each language, BCubed F1: {}", per.join(", "));
}

/// The events split or joined wrongly: what to look at.
fn failures(items: &[Labelled], clusters: &[String]) {
    let mut by_event: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut by_cluster: HashMap<&str, Vec<&str>> = HashMap::new();
    for (item, cluster) in items.iter().zip(clusters) {
        by_event.entry(&item.event).or_default().push(cluster);
        by_cluster.entry(cluster).or_default().push(&item.event);
    }
    let mut split: Vec<String> = by_event
        .iter()
        .filter_map(|(event, clusters)| {
            let mut distinct = clusters.clone();
            distinct.sort();
            distinct.dedup();
            (distinct.len() > 1).then(|| format!("{event} in {} stories", distinct.len()))
        })
        .collect();
    split.sort();
    let mut joined: Vec<String> = by_cluster
        .values()
        .filter_map(|events| {
            let mut distinct = events.clone();
            distinct.sort();
            distinct.dedup();
            (distinct.len() > 1).then(|| distinct.join("+"))
        })
        .collect();
    joined.sort();
    println!("  split: {}", if split.is_empty() { "none".into() } else { split.join(", ") });
    println!("  joined: {}", if joined.is_empty() { "none".into() } else { joined.join(", ") });
}

fn main() {
    let items = devset();
    let mut events: Vec<&str> = items.iter().map(|i| i.event.as_str()).collect();
    events.sort();
    events.dedup();
    println!("development set: {} items, {} events", items.len(), events.len());
    let params = Params::default();
    let words = cluster(&items, None, params);
    report("words, names and numbers", &score(&items, &words));
    failures(&items, &words);
    let (dense, embed_rate) = embeddings(&items);
    let with_dense = cluster(&items, Some(&dense), params);
    report("with multilingual-e5 embeddings", &score(&items, &with_dense));
    failures(&items, &with_dense);

    if std::env::var("KARAVAN_STORY_GRID").is_ok_and(|v| v == "1") {
        let mut results = Vec::new();
        for threshold in [0.2, 0.25, 0.3, 0.35, 0.4, 0.45] {
            for dense_weight in [0.4, 0.6, 0.8] {
                for dense_floor in [0.75, 0.8, 0.85] {
                    let p = Params { threshold, dense_weight, dense_floor, ..params };
                    let s = score(&items, &cluster(&items, Some(&dense), p));
                    results.push((s.across.bcubed_f1.min(s.within), threshold, dense_weight, dense_floor, s));
                }
            }
        }
        results.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("grid with embeddings (threshold, dense weight, floor): across F1 / within F1");
        for (_, t, w, f, s) in results.iter().take(12) {
            println!("  {t:.2} {w:.1} {f:.2}: {:.3} / {:.3}", s.across.bcubed_f1, s.within);
        }
        let mut results = Vec::new();
        for threshold_words in [0.1, 0.14, 0.18, 0.22, 0.26, 0.3, 0.35] {
            for name_weight in [1.0, 1.5, 2.0, 3.0] {
                let p = Params { threshold_words, name_weight, ..params };
                let s = score(&items, &cluster(&items, None, p));
                results.push((s.across.bcubed_f1.min(s.within), threshold_words, name_weight, s));
            }
        }
        results.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("grid without embeddings (threshold, name weight): across F1 / within F1");
        for (_, t, n, s) in results.iter().take(12) {
            println!("  {t:.2} {n:.1}: {:.3} / {:.3}", s.across.bcubed_f1, s.within);
        }
    }

    // Speed: copies of the set, each 30 days later than the one before.
    let copies = 40;
    let mut many = Vec::new();
    let mut many_dense = Vec::new();
    for copy in 0..copies {
        for (item, vector) in items.iter().zip(&dense) {
            let mut shifted = item.clone();
            shifted.at += copy as i64 * 30 * 24 * 3_600_000_000;
            shifted.event = format!("{copy}-{}", item.event);
            many.push(shifted);
            many_dense.push(vector.clone());
        }
    }
    for (name, dense) in [("words, names and numbers", None), ("with embeddings", Some(many_dense.as_slice()))] {
        let started = Instant::now();
        let clusters = cluster(&many, dense, params);
        let seconds = started.elapsed().as_secs_f64();
        let q = score(&many, &clusters).across;
        println!(
            "clustering speed, {name}: {} items in {seconds:.2} s, {:.0} items/s (one thread; BCubed F1 {:.3})",
            many.len(),
            many.len() as f64 / seconds,
            q.bcubed_f1
        );
    }
    match embed_rate {
        Some(rate) => println!("the embedder on these items: {rate:.1} items/s (2 threads; this is where the time goes)"),
        None => println!("the embedder: embeddings read from the cache (delete it to time the model)"),
    }
}
