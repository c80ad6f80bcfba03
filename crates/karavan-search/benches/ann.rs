//! ANN bench: Karavan's HNSW vector index (`karavan_search::ann`) on two generated sets of unit vectors.
//!
//! - `uniform`: KARAVAN_ANN_BENCH_N (200,000) vectors of KARAVAN_ANN_BENCH_DIM (384) standard normal
//!   components, normalised: uniform on the sphere, the worst case for a graph index (no structure, all
//!   pairwise similarities near 0).
//! - `clustered`: 2,000 centres uniform on the sphere; each vector is a random centre plus gaussian noise
//!   of total norm about 0.75, normalised (similarity to its centre ≈ 0.8, within a cluster ≈ 0.64), which
//!   resembles real sentence embeddings more.
//!
//! For each set: the single-threaded build time with the default parameters (M = 16, M0 = 32,
//! ef_construction = 128; KARAVAN_ANN_BENCH_M and KARAVAN_ANN_BENCH_EF_C override them), then
//! KARAVAN_ANN_BENCH_QUERIES (1,000) queries drawn like the data but not in it: recall@10 against brute
//! force and single-threaded latency p50/p99/mean at ef_search 64, 96 (the default) and 160
//! (KARAVAN_ANN_BENCH_EFS, comma-separated, overrides them), then at the default ef with filters that
//! accept 50 %, 10 % and 1 % of the keys (KARAVAN_ANN_BENCH_FILTERS, percentages), recall measured
//! against brute force under the same filter (at 200,000 vectors `search` walks the graph for the first
//! and answers the other two by brute force); and the save/load time and file size.
//! KARAVAN_ANN_BENCH_SETS (`clustered,uniform`) picks the sets.
//! Run: `cargo bench -p karavan-search --bench ann`.

use std::time::{Duration, Instant};

use karavan_search::{AnnParams, VectorIndex};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    fn gaussian(&mut self) -> f32 {
        let (u1, u2) = (self.unit(), self.unit());
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

fn random_unit(rng: &mut Rng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.gaussian()).collect();
    normalise(&mut v);
    v
}

/// Draws vectors of one set: uniform, or around the given centres.
struct Generator {
    dim: usize,
    centres: Vec<Vec<f32>>,
    noise: f32,
}

impl Generator {
    fn draw(&self, rng: &mut Rng) -> Vec<f32> {
        if self.centres.is_empty() {
            return random_unit(rng, self.dim);
        }
        let centre = &self.centres[rng.below(self.centres.len())];
        let sigma = self.noise / (self.dim as f32).sqrt();
        let mut v: Vec<f32> = centre.iter().map(|c| c + sigma * rng.gaussian()).collect();
        normalise(&mut v);
        v
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

struct Row {
    set: &'static str,
    n: usize,
    build_s: f64,
    label: String,
    recall: f64,
    p50: f64,
    p99: f64,
    mean: f64,
}

/// Exact top 10 of every query, on all cores.
fn ground_truth(index: &VectorIndex, queries: &[Vec<f32>], allow: &(dyn Fn(&str) -> bool + Sync)) -> Vec<Vec<String>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = queries.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .chunks(chunk)
            .map(|qs| {
                s.spawn(move || {
                    qs.iter()
                        .map(|q| index.exact(q, 10, allow).into_iter().map(|(k, _)| k).collect::<Vec<_>>())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

fn measure(
    index: &VectorIndex,
    queries: &[Vec<f32>],
    truth: &[Vec<String>],
    allow: &dyn Fn(&str) -> bool,
) -> (f64, f64, f64, f64) {
    let mut times = Vec::with_capacity(queries.len());
    let (mut found, mut total) = (0usize, 0usize);
    for (q, t) in queries.iter().zip(truth) {
        let start = Instant::now();
        let hits = index.search(q, 10, allow);
        times.push(start.elapsed());
        total += t.len();
        found += t.iter().filter(|k| hits.iter().any(|(h, _)| h == *k)).count();
    }
    times.sort();
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e3 / times.len() as f64;
    (found as f64 / total.max(1) as f64, percentile(&times, 0.5), percentile(&times, 0.99), mean)
}

fn run_set(set: &'static str, generator: &Generator, n: usize, nq: usize, params: AnnParams, rows: &mut Vec<Row>) {
    let dim = generator.dim;
    let mut rng = Rng(0x5eed_0000 + set.len() as u64);
    eprintln!("{set}: building {n} × {dim} (M {}, ef_construction {}) …", params.m, params.ef_construction);
    let mut index = VectorIndex::with_params(dim, params);
    let start = Instant::now();
    for i in 0..n {
        let v = generator.draw(&mut rng);
        index.upsert(&format!("itm_{i:08}"), &v).unwrap();
        if (i + 1) % 20_000 == 0 {
            eprintln!("  {} inserted, {:.1} s", i + 1, start.elapsed().as_secs_f64());
        }
    }
    let build_s = start.elapsed().as_secs_f64();
    let mut qrng = Rng(0x9e7_0000 + set.len() as u64);
    let queries: Vec<Vec<f32>> = (0..nq).map(|_| generator.draw(&mut qrng)).collect();
    eprintln!("{set}: built in {build_s:.1} s; brute-force ground truth for {nq} queries …");
    let all = |_: &str| true;
    let truth = ground_truth(&index, &queries, &all);
    // Warm up caches and branch predictors.
    for q in queries.iter().take(50) {
        index.search(q, 10, &all);
    }
    let default_ef = params.ef_search;
    let efs = std::env::var("KARAVAN_ANN_BENCH_EFS").unwrap_or_else(|_| "64,96,160".into());
    for ef in efs.split(',').filter_map(|e| e.trim().parse::<usize>().ok()) {
        index.set_ef_search(ef);
        let (recall, p50, p99, mean) = measure(&index, &queries, &truth, &all);
        let label = if ef == default_ef { format!("ef {ef} (default)") } else { format!("ef {ef}") };
        rows.push(Row { set, n, build_s, label, recall, p50, p99, mean });
    }
    index.set_ef_search(default_ef);
    // Filters that accept a given share of the keys (by the id's number).
    let filters = std::env::var("KARAVAN_ANN_BENCH_FILTERS").unwrap_or_else(|_| "50,10,1".into());
    for pct in filters.split(',').filter_map(|p| p.trim().parse::<usize>().ok()) {
        let allow = move |k: &str| k.get(4..).and_then(|d| d.parse::<usize>().ok()).is_some_and(|i| i % 100 < pct);
        let truth = ground_truth(&index, &queries, &allow);
        let (recall, p50, p99, mean) = measure(&index, &queries, &truth, &allow);
        rows.push(Row { set, n, build_s, label: format!("ef {default_ef}, filter {pct}%"), recall, p50, p99, mean });
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vectors.kvix");
    let start = Instant::now();
    index.save(&path).unwrap();
    let save_s = start.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).unwrap().len();
    let start = Instant::now();
    let loaded = VectorIndex::load(&path).unwrap();
    let load_s = start.elapsed().as_secs_f64();
    assert_eq!(loaded.search(&queries[0], 10, &all), index.search(&queries[0], 10, &all));
    eprintln!("{set}: file {:.1} MiB, save {save_s:.2} s, load {load_s:.2} s", size as f64 / (1 << 20) as f64);
}

/// The machine's one-minute load average, to judge how much the latencies were disturbed.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let n = env_usize("KARAVAN_ANN_BENCH_N", 200_000);
    let dim = env_usize("KARAVAN_ANN_BENCH_DIM", 384);
    let nq = env_usize("KARAVAN_ANN_BENCH_QUERIES", 1_000);
    let defaults = AnnParams::default();
    let params = AnnParams {
        m: env_usize("KARAVAN_ANN_BENCH_M", defaults.m),
        ef_construction: env_usize("KARAVAN_ANN_BENCH_EF_C", defaults.ef_construction),
        ef_search: defaults.ef_search,
    };
    let sets = std::env::var("KARAVAN_ANN_BENCH_SETS").unwrap_or_else(|_| "clustered,uniform".into());
    let load_before = load_average();
    let mut rows = Vec::new();
    for set in sets.split(',') {
        match set.trim() {
            "uniform" => {
                let generator = Generator { dim, centres: Vec::new(), noise: 0.0 };
                run_set("uniform", &generator, n, nq, params, &mut rows);
            }
            "clustered" => {
                let mut rng = Rng(0xc105_7e25);
                let centres = (0..2_000).map(|_| random_unit(&mut rng, dim)).collect();
                let generator = Generator { dim, centres, noise: 0.75 };
                run_set("clustered", &generator, n, nq, params, &mut rows);
            }
            other => eprintln!("unknown set {other:?} (uniform, clustered)"),
        }
    }
    println!();
    println!(
        "HNSW, {dim} dimensions, M {} (M0 {}), ef_construction {}, {nq} queries, k = 10, single-threaded",
        params.m,
        2 * params.m,
        params.ef_construction
    );
    println!("load average (1 min) before: {load_before}, after: {}", load_average());
    println!(
        "| {:<9} | {:>7} | {:>7} | {:<20} | {:>9} | {:>7} | {:>7} | {:>7} |",
        "set", "vectors", "build s", "search", "recall@10", "p50 ms", "p99 ms", "mean ms"
    );
    println!("|{:-<11}|{:->9}|{:->9}|{:-<22}|{:->11}|{:->9}|{:->9}|{:->9}|", "", "", "", "", "", "", "", "");
    for r in rows {
        println!(
            "| {:<9} | {:>7} | {:>7.1} | {:<20} | {:>9.4} | {:>7.3} | {:>7.3} | {:>7.3} |",
            r.set, r.n, r.build_s, r.label, r.recall, r.p50, r.p99, r.mean
        );
    }
}
