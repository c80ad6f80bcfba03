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

/// The set with its events brought close together: each event starts `spacing_hours` after the one
/// before (in the order they first happened), its items keeping their times relative to its first.
/// The set as written has about one event a week; a wire has many at once, which this makes (and
/// the same-topic events then overlap in time).
fn compressed(items: &[Labelled], spacing_hours: i64) -> Vec<Labelled> {
    let mut starts: Vec<(i64, &str)> = Vec::new();
    for item in items {
        match starts.iter_mut().find(|(_, e)| *e == item.event) {
            Some((start, _)) => *start = (*start).min(item.at),
            None => starts.push((item.at, &item.event)),
        }
    }
    starts.sort();
    let base = starts.first().map_or(0, |(at, _)| *at);
    let mut out: Vec<Labelled> = items
        .iter()
        .map(|item| {
            let index = starts.iter().position(|(_, e)| *e == item.event).unwrap_or(0) as i64;
            let start = starts[index as usize].0;
            let mut moved = item.clone();
            moved.at = base + index * spacing_hours * 3_600_000_000 + (item.at - start);
            moved
        })
        .collect();
    out.sort_by_key(|i| i.at);
    out
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
        q.bcubed_precision,
        q.bcubed_recall,
        q.bcubed_f1,
        q.pairwise_precision,
        q.pairwise_recall,
        q.pairwise_f1,
        scores.within
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
    // Many events at once: an event every 4 hours (about six a day, each lasting up to two days).
    let dense_of: HashMap<String, Vec<f32>> = items.iter().zip(&dense).map(|(i, d)| (text_of(i), d.clone())).collect();
    let busy = compressed(&items, 4);
    let busy_dense: Vec<Vec<f32>> = busy.iter().map(|i| dense_of[&text_of(i)].clone()).collect();
    let busy_words = cluster(&busy, None, params);
    report("busy wire (an event every 4 hours), words, names and numbers", &score(&busy, &busy_words));
    failures(&busy, &busy_words);
    let busy_both = cluster(&busy, Some(&busy_dense), params);
    report("busy wire (an event every 4 hours), with embeddings", &score(&busy, &busy_both));
    failures(&busy, &busy_both);

    if std::env::var("KARAVAN_STORY_DIAG").is_ok_and(|v| v == "1") {
        // Embedding cosines of pairs: same event (same language, other language), other events.
        let mut groups: [Vec<f32>; 4] = Default::default();
        for i in 0..items.len() {
            for j in i + 1..items.len() {
                let cosine: f32 = dense[i].iter().zip(&dense[j]).map(|(a, b)| a * b).sum();
                let same_event = items[i].event == items[j].event;
                let same_language = items[i].language == items[j].language;
                let near = (items[i].at - items[j].at).abs() < 72 * 3_600_000_000;
                let group = match (same_event, same_language) {
                    (true, true) => 0,
                    (true, false) => 1,
                    (false, _) if near => 2,
                    (false, _) => 3,
                };
                groups[group].push(cosine);
            }
        }
        for (name, mut values) in [
            "same event, same language",
            "same event, other language",
            "other event within 3 days",
            "other event, further apart",
        ]
        .into_iter()
        .zip(groups)
        {
            values.sort_by(f32::total_cmp);
            let at = |p: f64| values[((values.len() - 1) as f64 * p) as usize];
            println!(
                "  cosine, {name} ({}): p5 {:.3} p25 {:.3} p50 {:.3} p75 {:.3} p95 {:.3} max {:.3}",
                values.len(),
                at(0.05),
                at(0.25),
                at(0.5),
                at(0.75),
                at(0.95),
                at(1.0)
            );
        }
    }

    if std::env::var("KARAVAN_STORY_GRID").is_ok_and(|v| v == "1") {
        let mut results = Vec::new();
        for threshold in [0.25, 0.3] {
            for dense_weight in [0.6, 0.7] {
                for (dense_floor, same_language_penalty, merge_threshold) in [
                    (0.7, 0.08, 0.45),
                    (0.7, 0.08, 0.35),
                    (0.7, 0.08, 0.3),
                    (0.7, 0.08, 0.25),
                    (0.7, 0.1, 0.3),
                    (0.72, 0.08, 0.3),
                ] {
                    let p = Params {
                        threshold,
                        dense_weight,
                        dense_floor,
                        same_language_penalty,
                        merge_threshold,
                        ..params
                    };
                    let s = score(&items, &cluster(&items, Some(&dense), p));
                    let b = score(&busy, &cluster(&busy, Some(&busy_dense), p));
                    let worst = s.across.bcubed_f1.min(s.within).min(b.across.bcubed_f1).min(b.within);
                    results.push((
                        worst,
                        threshold,
                        dense_weight,
                        (dense_floor, same_language_penalty, merge_threshold),
                        s,
                        b,
                    ));
                }
            }
        }
        results.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("grid with embeddings (threshold, dense weight, floor, same-language penalty): across F1 / within F1");
        for (_, t, w, (f, n, m), s, b) in results.iter().take(12) {
            println!(
                "  {t:.2} {w:.2} {f:.2} {n} merge {m}: {:.3} / {:.3}, busy {:.3} / {:.3}",
                s.across.bcubed_f1, s.within, b.across.bcubed_f1, b.within
            );
        }
        let mut results = Vec::new();
        for threshold_words in [0.06, 0.08, 0.1, 0.14, 0.18, 0.24, 0.3] {
            for name_weight in [1.0, 2.0, 3.0, 4.0] {
                for nearest in [3, 1, 0] {
                    let p = Params { threshold_words, name_weight, nearest, ..params };
                    let s = score(&items, &cluster(&items, None, p));
                    let b = score(&busy, &cluster(&busy, None, p));
                    let worst = s.across.bcubed_f1.min(s.within).min(b.across.bcubed_f1).min(b.within);
                    results.push((worst, threshold_words, (name_weight, nearest), s, b));
                }
            }
        }
        results.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("grid without embeddings (threshold, name weight, nearest): across F1 / within F1");
        for (_, t, (n, k), s, b) in results.iter().take(12) {
            println!(
                "  {t:.2} {n:.1} {k}: {:.3} / {:.3}, busy {:.3} / {:.3}",
                s.across.bcubed_f1, s.within, b.across.bcubed_f1, b.within
            );
        }
    }

    // Speed: copies of the set, each 30 days later than the one before.
    let copies: usize = std::env::var("KARAVAN_STORY_COPIES").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
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
    // In time order, as a wire would bring them: copies overlap, so the pool holds several copies'
    // stories at once (more concurrent events than the set itself has).
    let mut order: Vec<usize> = (0..many.len()).collect();
    order.sort_by_key(|&i| many[i].at);
    let many: Vec<Labelled> = order.iter().map(|&i| many[i].clone()).collect();
    let many_dense: Vec<Vec<f32>> = order.iter().map(|&i| many_dense[i].clone()).collect();
    for (name, dense) in [("words, names and numbers", None), ("with embeddings", Some(many_dense.as_slice()))] {
        let started = Instant::now();
        let clusters = cluster(&many, dense, params);
        let seconds = started.elapsed().as_secs_f64();
        let q = score(&many, &clusters).across;
        let mut sizes: HashMap<&str, usize> = HashMap::new();
        for c in &clusters {
            *sizes.entry(c.as_str()).or_default() += 1;
        }
        let mut sizes: Vec<usize> = sizes.into_values().collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        println!("  largest stories: {:?} of {}", &sizes[..sizes.len().min(8)], sizes.len());
        if let Some((biggest, _)) = {
            let mut by: HashMap<&str, usize> = HashMap::new();
            for c in &clusters {
                *by.entry(c.as_str()).or_default() += 1;
            }
            by.into_iter().max_by_key(|(_, n)| *n)
        } {
            let mut labels: Vec<&str> = many
                .iter()
                .zip(&clusters)
                .filter(|(_, c)| c.as_str() == biggest)
                .map(|(i, _)| i.event.as_str())
                .collect();
            labels.sort();
            labels.dedup();
            println!("  the largest holds {} events: {:?}", labels.len(), &labels[..labels.len().min(10)]);
        }
        if std::env::var("KARAVAN_STORY_DIAG").is_ok_and(|v| v == "1") {
            let unmerged = cluster(&many, dense, Params { merge_threshold: 10.0, ..params });
            println!("  without merges: BCubed F1 {:.3}", score(&many, &unmerged).across.bcubed_f1);
        }
        println!(
            "clustering speed, {name}: {} items in {seconds:.2} s, {:.0} items/s (one thread; BCubed F1 {:.3})",
            many.len(),
            many.len() as f64 / seconds,
            q.bcubed_f1
        );
    }
    match embed_rate {
        Some(rate) => {
            println!("the embedder on these items: {rate:.1} items/s (2 threads; this is where the time goes)")
        }
        None => println!("the embedder: embeddings read from the cache (delete it to time the model)"),
    }
}
