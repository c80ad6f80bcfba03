//! Approximate nearest neighbours over item embeddings, for semantic search: a hierarchical navigable
//! small world graph (HNSW; Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search
//! using Hierarchical Navigable Small World graphs", IEEE TPAMI 2020) in safe Rust.
//!
//! Vectors are expected L2-normalised, so that cosine similarity is the dot product; scores returned are
//! dot products (higher is better). Like the text index this is derived data: the caller records in
//! [`VectorIndex::set_seq`] the highest store sequence number the index reflects, and it is saved with it.
//!
//! The graph: every node gets a random top layer `l = floor(-ln(u) / ln(M))`; on each layer up to its own
//! a node has at most `M` neighbours (`M0 = 2M` on layer 0). An insertion descends greedily from the entry
//! point to the node's top layer, then on each lower layer searches with `ef_construction` candidates and
//! links to `M` of them chosen by the paper's diversity heuristic (algorithm 4: a candidate is kept only if
//! it is closer to the new node than to every neighbour already kept); a neighbour whose list overflows is
//! pruned with the same heuristic.
//!
//! Removal is a tombstone: the node stays in the graph (searches walk through it) but is never returned.
//! Replacing a key's vector tombstones the old node and inserts a new one. When more than a quarter of the
//! nodes are tombstones, [`VectorIndex::compact_if_needed`] rebuilds the graph from the live vectors.
//!
//! Filtered search walks the graph exactly as unfiltered search does, through rejected and deleted nodes,
//! but only collects live nodes that the filter accepts, and keeps going until it holds `ef` of them (or
//! the graph is exhausted) and its best remaining candidate is worse than the worst kept. Such a walk
//! reads about `1 / share` times the vectors of an unfiltered one, so the filter is first tried on a
//! sample of 64 nodes: when it accepts half of them or fewer, `ef` is doubled, and when the accepted
//! nodes are then estimated at no more than `8 * ef * M0` (about 49,000 at the defaults), the search is
//! answered by brute force ([`VectorIndex::exact`]), which reads keys and vectors in order and is then
//! the cheaper of the two (measured at 200,000 × 384, clustered, one thread: a 10 % filter took 13 ms
//! walking and 3 ms brute force, a 25 % one about 11 ms either way, a 50 % one 2 ms walking).
//!
//! File format (little-endian; written to `<path>.tmp`, fsynced, renamed over `path`):
//!
//! ```text
//! magic "KVIX" | version u32 (1) | dim u32 | seq i64
//! | m u32 | m0 u32 | ef_construction u32 | ef_search u32 | rng state u64
//! | entry point u32 (u32::MAX when empty) | top layer u32 | node count u32
//! | per node: key length u32, key UTF-8 | deleted u8 | top layer u8 | dim × f32
//! |           per layer 0..=top layer: neighbour count u32, neighbour ids u32…
//! | checksum u64 over everything before it
//! ```
//!
//! Loading checks every length against the bytes left, every neighbour id against the node count and the
//! neighbour's own top layer, the entry point, key uniqueness and the checksum, and refuses the file with
//! an error saying what is wrong; it never panics on bad bytes.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"KVIX";
const VERSION: u32 = 1;
/// The highest layer a node may have (with M = 16 the chance of reaching it is 16^-16).
const MAX_LEVEL: usize = 16;
/// Bounds that a loaded file must respect (the index never writes more).
const MAX_M: usize = 256;
const MAX_EF: usize = 1 << 20;
const MAX_KEY_LEN: usize = 1 << 16;
/// How many live nodes `search` asks the filter about to estimate the share it accepts.
const FILTER_SAMPLE: usize = 64;
/// A selective filter's search is brute force when the accepted nodes are estimated at no more than
/// `EXACT_FACTOR * ef * M0`: the walk reads some `ef * M0 / share` vectors at random, brute force every
/// key and the accepted vectors in order, at memory bandwidth. Calibrated at 200,000 × 384 (clustered),
/// where both took about 11 ms for a filter accepting a quarter of the keys.
const EXACT_FACTOR: usize = 8;
const NO_ENTRY: u32 = u32::MAX;
const DEFAULT_SEED: u64 = 0x4b41_5241_5641_4e31; // "KARAVAN1"

#[derive(Debug, thiserror::Error)]
pub enum AnnError {
    #[error("vector has {got} dimensions, the index has {expected}")]
    Dimension { expected: usize, got: usize },
    #[error("vector has a component that is NaN or infinite")]
    NonFinite,
    #[error("key is {0} bytes long, at most 65,536 allowed")]
    KeyTooLong(usize),
    #[error("vector index is full ({0} nodes)")]
    Full(usize),
    #[error("vector index file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("vector index file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Graph parameters. `m` is the neighbour count on layers above 0 (layer 0 has `2 * m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnParams {
    pub m: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
}

impl Default for AnnParams {
    fn default() -> Self {
        AnnParams { m: 16, ef_construction: 128, ef_search: 96 }
    }
}

/// An HNSW index of unit vectors keyed by item id. Plain owned data: `Send + Sync`, so a caller can share
/// it behind a `RwLock` (searches take `&self`, updates `&mut self`).
#[derive(Debug, Clone)]
pub struct VectorIndex {
    dim: usize,
    m: usize,
    m0: usize,
    ef_construction: usize,
    ef_search: usize,
    level_mult: f64,
    rng: u64,
    seq: i64,
    /// Per node (node id = position): key, tombstone, top layer, vector.
    keys: Vec<String>,
    deleted: Vec<bool>,
    levels: Vec<u8>,
    vectors: Vec<f32>,
    /// Layer 0 neighbours, `m0 + 1` slots per node: the count, then the ids.
    links0: Vec<u32>,
    /// Layers 1..=top of each node: `upper[node][layer - 1]`.
    upper: Vec<Vec<Vec<u32>>>,
    /// Live key → node.
    live: HashMap<String, u32>,
    deleted_count: usize,
    entry: Option<u32>,
    max_level: usize,
}

/// A node with its similarity to the query; ordered by similarity, then by lower id.
#[derive(Debug, Clone, Copy)]
struct Cand {
    sim: f32,
    id: u32,
}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sim.total_cmp(&other.sim).then_with(|| other.id.cmp(&self.id))
    }
}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Cand {}

/// How a search is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Walk the graph, keeping `ef` accepted nodes.
    Walk { ef: usize },
    /// Brute force over the accepted nodes.
    Exact,
}

/// A visited set over node ids.
#[derive(Debug, Clone, Default)]
struct Visited {
    bits: Vec<u64>,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        self.bits.clear();
        self.bits.resize(n.div_ceil(64), 0);
    }

    /// Marks `id`; true when it was not marked before.
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        let fresh = self.bits[word] & bit == 0;
        self.bits[word] |= bit;
        fresh
    }
}

/// The dot product of two vectors: [`dot_n`] for one vector, so that a score does not depend on how
/// many vectors were scored together.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_n(a, [b])[0]
}

/// Dot products of `q` with `N` vectors at once. Random reads of vectors from a large index are bound
/// by memory latency, not arithmetic: reading `N` vectors side by side keeps `N` cache misses in flight
/// (measured on the bench machine over 300 MB of vectors: about 750 ns a vector one at a time, 320 ns
/// four at a time, 250 ns eight at a time). Each vector's sum is taken in the same order whatever `N`
/// (four lanes, then `(l0 + l1) + (l2 + l3)`, then the tail), so its score is the same bit for bit.
#[inline]
#[allow(clippy::needless_range_loop)]
fn dot_n<const N: usize>(q: &[f32], vs: [&[f32]; N]) -> [f32; N] {
    let n = q.len();
    let vs = vs.map(|v| &v[..n]);
    let mut acc = [[0f32; 4]; N];
    let body = n / 4 * 4;
    let mut i = 0;
    while i < body {
        let qs: [f32; 4] = q[i..i + 4].try_into().unwrap();
        for k in 0..N {
            let ys: [f32; 4] = vs[k][i..i + 4].try_into().unwrap();
            let p = [qs[0] * ys[0], qs[1] * ys[1], qs[2] * ys[2], qs[3] * ys[3]];
            acc[k] = [acc[k][0] + p[0], acc[k][1] + p[1], acc[k][2] + p[2], acc[k][3] + p[3]];
        }
        i += 4;
    }
    let mut out = [0f32; N];
    for k in 0..N {
        let mut sum = (acc[k][0] + acc[k][1]) + (acc[k][2] + acc[k][3]);
        for j in body..n {
            sum += q[j] * vs[k][j];
        }
        out[k] = sum;
    }
    out
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl VectorIndex {
    /// An empty index of `dim`-dimensional vectors with the default parameters.
    pub fn new(dim: usize) -> VectorIndex {
        VectorIndex::with_params(dim, AnnParams::default())
    }

    /// An empty index with the given parameters (`m` is clamped to 2..=256, the efs to at least 1).
    pub fn with_params(dim: usize, params: AnnParams) -> VectorIndex {
        let m = params.m.clamp(2, MAX_M);
        VectorIndex {
            dim,
            m,
            m0: 2 * m,
            ef_construction: params.ef_construction.clamp(1, MAX_EF),
            ef_search: params.ef_search.clamp(1, MAX_EF),
            level_mult: 1.0 / (m as f64).ln(),
            rng: DEFAULT_SEED,
            seq: 0,
            keys: Vec::new(),
            deleted: Vec::new(),
            levels: Vec::new(),
            vectors: Vec::new(),
            links0: Vec::new(),
            upper: Vec::new(),
            live: HashMap::new(),
            deleted_count: 0,
            entry: None,
            max_level: 0,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Live (not removed) keys.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Graph nodes, tombstones included.
    pub fn node_count(&self) -> usize {
        self.keys.len()
    }

    /// Tombstoned nodes still in the graph.
    pub fn tombstones(&self) -> usize {
        self.deleted_count
    }

    pub fn params(&self) -> AnnParams {
        AnnParams { m: self.m, ef_construction: self.ef_construction, ef_search: self.ef_search }
    }

    pub fn ef_search(&self) -> usize {
        self.ef_search
    }

    /// Sets the search breadth (at least 1); a search uses `max(ef_search, k)`.
    pub fn set_ef_search(&mut self, ef: usize) {
        self.ef_search = ef.clamp(1, MAX_EF);
    }

    /// The highest store sequence number the index reflects.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    pub fn set_seq(&mut self, seq: i64) {
        self.seq = seq;
    }

    /// Inserts or replaces the vector of `key`. Replacing tombstones the old node and inserts a new one;
    /// upserting the vector a key already has changes nothing.
    pub fn upsert(&mut self, key: &str, vector: &[f32]) -> Result<(), AnnError> {
        if vector.len() != self.dim {
            return Err(AnnError::Dimension { expected: self.dim, got: vector.len() });
        }
        if vector.iter().any(|x| !x.is_finite()) {
            return Err(AnnError::NonFinite);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(AnnError::KeyTooLong(key.len()));
        }
        if let Some(&old) = self.live.get(key) {
            let same = self.vector(old).iter().zip(vector).all(|(a, b)| a.to_bits() == b.to_bits());
            if same {
                return Ok(());
            }
        }
        if self.keys.len() >= NO_ENTRY as usize {
            return Err(AnnError::Full(self.keys.len()));
        }
        if let Some(old) = self.live.remove(key) {
            self.deleted[old as usize] = true;
            self.deleted_count += 1;
        }
        let id = self.insert_node(key.to_owned(), vector);
        self.live.insert(key.to_owned(), id);
        Ok(())
    }

    /// Tombstones `key`; false when it was not there.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.live.remove(key) {
            Some(id) => {
                self.deleted[id as usize] = true;
                self.deleted_count += 1;
                true
            }
            None => false,
        }
    }

    pub fn get(&self, key: &str) -> Option<&[f32]> {
        self.live.get(key).map(|&id| self.vector(id))
    }

    /// The `k` nearest live keys by dot product, best first, among those `allow` accepts.
    ///
    /// The graph walk keeps `ef = max(ef_search, k)` accepted nodes. `allow` is first asked about 64 live
    /// nodes spread over the index: when it accepts half of them or fewer, ef is doubled, and when the
    /// accepted nodes are then estimated at no more than `8 * ef * M0` (the walk would cost more than
    /// brute force, which reads in order), the answer is [`VectorIndex::exact`]'s. A query of the
    /// wrong dimension finds nothing.
    pub fn search(&self, query: &[f32], k: usize, allow: &dyn Fn(&str) -> bool) -> Vec<(String, f32)> {
        if k == 0 || query.len() != self.dim || self.live.is_empty() {
            return Vec::new();
        }
        match self.plan(k, allow) {
            Plan::Exact => self.exact(query, k, allow),
            Plan::Walk { ef } => self.walk(query, k, ef, allow),
        }
    }

    /// The graph search proper: greedy descent to layer 1, then a walk on layer 0 keeping `ef` live
    /// nodes that `allow` accepts.
    fn walk(&self, query: &[f32], k: usize, ef: usize, allow: &dyn Fn(&str) -> bool) -> Vec<(String, f32)> {
        let Some(entry) = self.entry else { return Vec::new() };
        let mut cur = Cand { sim: dot(query, self.vector(entry)), id: entry };
        for layer in (1..=self.max_level).rev() {
            cur = self.greedy(query, cur, layer);
        }
        let mut visited = Visited::default();
        visited.reset(self.keys.len());
        let accept = |id: u32| !self.deleted[id as usize] && allow(&self.keys[id as usize]);
        let found = self.search_layer(query, &[cur], ef, 0, accept, &mut visited);
        found.into_iter().take(k).map(|c| (self.keys[c.id as usize].clone(), c.sim)).collect()
    }

    /// The exact top `k` live keys by dot product among those `allow` accepts (brute force), best first.
    pub fn exact(&self, query: &[f32], k: usize, allow: &dyn Fn(&str) -> bool) -> Vec<(String, f32)> {
        if k == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let mut best: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(k + 1);
        let (mut batch, mut sims) = (Vec::with_capacity(8), Vec::with_capacity(8));
        let mut score = |batch: &mut Vec<u32>, sims: &mut Vec<f32>| {
            sims.clear();
            self.similarities(query, batch, sims);
            for (&id, &sim) in batch.iter().zip(sims.iter()) {
                let cand = Cand { sim, id };
                if best.len() < k {
                    best.push(Reverse(cand));
                } else if best.peek().is_some_and(|worst| cand > worst.0) {
                    best.pop();
                    best.push(Reverse(cand));
                }
            }
            batch.clear();
        };
        for (id, key) in self.keys.iter().enumerate() {
            if !self.deleted[id] && allow(key) {
                batch.push(id as u32);
                if batch.len() == 8 {
                    score(&mut batch, &mut sims);
                }
            }
        }
        score(&mut batch, &mut sims);
        let mut out: Vec<Cand> = best.into_iter().map(|r| r.0).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out.into_iter().map(|c| (self.keys[c.id as usize].clone(), c.sim)).collect()
    }

    /// Rebuilds the graph from the live nodes when more than a quarter of the nodes are tombstones
    /// (call after removals); keys, vectors, parameters and `seq` are kept. True when it rebuilt.
    pub fn compact_if_needed(&mut self) -> bool {
        if self.deleted_count * 4 <= self.keys.len() {
            return false;
        }
        let fresh = VectorIndex::with_params(self.dim, self.params());
        let old = std::mem::replace(self, fresh);
        self.seq = old.seq;
        self.rng = old.rng;
        for (id, key) in old.keys.iter().enumerate() {
            if !old.deleted[id] {
                let new_id = self.insert_node(key.clone(), old.vector(id as u32));
                self.live.insert(key.clone(), new_id);
            }
        }
        true
    }

    #[inline]
    fn vector(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        &self.vectors[start..start + self.dim]
    }

    #[inline]
    fn neighbours(&self, id: u32, layer: usize) -> &[u32] {
        if layer == 0 {
            let base = id as usize * (self.m0 + 1);
            let count = self.links0[base] as usize;
            &self.links0[base + 1..base + 1 + count]
        } else {
            &self.upper[id as usize][layer - 1]
        }
    }

    fn set_neighbours(&mut self, id: u32, layer: usize, ids: &[u32]) {
        if layer == 0 {
            let base = id as usize * (self.m0 + 1);
            self.links0[base] = ids.len() as u32;
            self.links0[base + 1..base + 1 + ids.len()].copy_from_slice(ids);
        } else {
            let list = &mut self.upper[id as usize][layer - 1];
            list.clear();
            list.extend_from_slice(ids);
        }
    }

    fn random_level(&mut self) -> usize {
        let r = splitmix64(&mut self.rng);
        let u = ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // (0, 1]
        ((-u.ln() * self.level_mult) as usize).min(MAX_LEVEL)
    }

    /// Chooses how to answer a search for `k` keys that `allow` accepts. `allow` is asked about up to
    /// `FILTER_SAMPLE` nodes: one at a pseudo-random place in each of `FILTER_SAMPLE` equal slices of the
    /// node ids, so that a filter on recency (which follows insertion order) is sampled fairly and a
    /// filter on a regular pattern of ids is not aliased by a fixed stride.
    fn plan(&self, k: usize, allow: &dyn Fn(&str) -> bool) -> Plan {
        let ef = self.ef_search.max(k);
        let n = self.keys.len();
        let slices = FILTER_SAMPLE.min(n);
        let (mut asked, mut accepted) = (0usize, 0usize);
        let mut state = 0x5a4d_504c_4553_0000u64; // fixed: a search is deterministic
        for slice in 0..slices {
            let (start, end) = (slice * n / slices, (slice + 1) * n / slices);
            let id = start + (splitmix64(&mut state) % (end - start) as u64) as usize;
            if self.deleted[id] {
                continue;
            }
            asked += 1;
            accepted += usize::from(allow(&self.keys[id]));
        }
        if asked == 0 || accepted * 2 > asked {
            return Plan::Walk { ef };
        }
        let ef = ef * 2;
        let estimate = self.live.len().saturating_mul(accepted) / asked;
        if estimate <= EXACT_FACTOR.saturating_mul(ef).saturating_mul(self.m0) {
            Plan::Exact
        } else {
            Plan::Walk { ef }
        }
    }

    /// The similarities of `query` to the nodes `ids`, in order, appended to `out` (eight, then four
    /// vectors at a time; see [`dot_n`]).
    fn similarities(&self, query: &[f32], ids: &[u32], out: &mut Vec<f32>) {
        let mut chunks = ids.chunks_exact(8);
        for c in chunks.by_ref() {
            out.extend(dot_n(query, std::array::from_fn::<_, 8, _>(|j| self.vector(c[j]))));
        }
        let mut rest = chunks.remainder().chunks_exact(4);
        for c in rest.by_ref() {
            out.extend(dot_n(query, std::array::from_fn::<_, 4, _>(|j| self.vector(c[j]))));
        }
        out.extend(rest.remainder().iter().map(|&id| dot(query, self.vector(id))));
    }

    /// Greedy walk on one layer towards the query (ef = 1).
    fn greedy(&self, query: &[f32], mut cur: Cand, layer: usize) -> Cand {
        let mut sims = Vec::new();
        loop {
            let list = self.neighbours(cur.id, layer);
            sims.clear();
            self.similarities(query, list, &mut sims);
            let best = list.iter().zip(&sims).map(|(&id, &sim)| Cand { sim, id }).max();
            match best {
                Some(b) if b.sim > cur.sim => cur = b,
                _ => return cur,
            }
        }
    }

    /// The paper's algorithm 2 on one layer: best first from `entries`, keeping the `ef` best nodes that
    /// `accept` takes, walking through the others too. Returns the kept nodes, best first.
    fn search_layer<F: FnMut(u32) -> bool>(
        &self,
        query: &[f32],
        entries: &[Cand],
        ef: usize,
        layer: usize,
        mut accept: F,
        visited: &mut Visited,
    ) -> Vec<Cand> {
        let mut candidates: BinaryHeap<Cand> = BinaryHeap::new();
        let mut kept: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(ef + 1);
        for &e in entries {
            if visited.insert(e.id) {
                candidates.push(e);
                if accept(e.id) {
                    kept.push(Reverse(e));
                    if kept.len() > ef {
                        kept.pop();
                    }
                }
            }
        }
        let (mut fresh, mut sims) = (Vec::with_capacity(self.m0), Vec::with_capacity(self.m0));
        while let Some(c) = candidates.pop() {
            if kept.len() >= ef && kept.peek().is_some_and(|worst| c.sim < worst.0.sim) {
                break;
            }
            fresh.clear();
            fresh.extend(self.neighbours(c.id, layer).iter().copied().filter(|&n| visited.insert(n)));
            sims.clear();
            self.similarities(query, &fresh, &mut sims);
            for (&n, &sim) in fresh.iter().zip(&sims) {
                if kept.len() < ef || kept.peek().is_some_and(|worst| sim > worst.0.sim) {
                    let cand = Cand { sim, id: n };
                    candidates.push(cand);
                    if accept(n) {
                        kept.push(Reverse(cand));
                        if kept.len() > ef {
                            kept.pop();
                        }
                    }
                }
            }
        }
        let mut out: Vec<Cand> = kept.into_iter().map(|r| r.0).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out
    }

    /// The paper's algorithm 4 (without extending candidates or keeping pruned ones): from `candidates`
    /// (best first, similarities to the base node), keep up to `m`, each closer to the base node than
    /// to every one kept before it.
    fn select_neighbours(&self, candidates: &[Cand], m: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(m);
        let mut sims = Vec::with_capacity(8);
        'candidates: for c in candidates {
            if kept.len() >= m {
                break;
            }
            let v = self.vector(c.id);
            for group in kept.chunks(8) {
                sims.clear();
                self.similarities(v, group, &mut sims);
                if sims.iter().any(|&s| s >= c.sim) {
                    continue 'candidates;
                }
            }
            kept.push(c.id);
        }
        kept
    }

    /// Appends a node and links it into the graph (the paper's algorithm 1); returns its id.
    fn insert_node(&mut self, key: String, vector: &[f32]) -> u32 {
        let id = self.keys.len() as u32;
        let level = self.random_level();
        self.keys.push(key);
        self.deleted.push(false);
        self.levels.push(level as u8);
        self.vectors.extend_from_slice(vector);
        self.links0.resize(self.links0.len() + self.m0 + 1, 0);
        self.upper.push(vec![Vec::new(); level]);
        let Some(entry) = self.entry else {
            self.entry = Some(id);
            self.max_level = level;
            return id;
        };
        let mut cur = Cand { sim: dot(vector, self.vector(entry)), id: entry };
        for layer in (level + 1..=self.max_level).rev() {
            cur = self.greedy(vector, cur, layer);
        }
        let mut entries = vec![cur];
        let mut visited = Visited::default();
        for layer in (0..=level.min(self.max_level)).rev() {
            visited.reset(self.keys.len());
            let found = self.search_layer(vector, &entries, self.ef_construction, layer, |_| true, &mut visited);
            let chosen = self.select_neighbours(&found, self.m);
            self.set_neighbours(id, layer, &chosen);
            for &n in &chosen {
                self.link_back(n, id, layer);
            }
            entries = found;
        }
        if level > self.max_level {
            self.max_level = level;
            self.entry = Some(id);
        }
        id
    }

    /// Adds `new` to the neighbours of `node` on `layer`, pruning with the heuristic when full.
    fn link_back(&mut self, node: u32, new: u32, layer: usize) {
        let max = if layer == 0 { self.m0 } else { self.m };
        let current = self.neighbours(node, layer);
        if current.len() < max {
            let mut ids = current.to_vec();
            ids.push(new);
            self.set_neighbours(node, layer, &ids);
            return;
        }
        let mut ids = current.to_vec();
        ids.push(new);
        let mut sims = Vec::with_capacity(ids.len());
        self.similarities(self.vector(node), &ids, &mut sims);
        let mut candidates: Vec<Cand> = ids.iter().zip(&sims).map(|(&id, &sim)| Cand { sim, id }).collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let chosen = self.select_neighbours(&candidates, max);
        self.set_neighbours(node, layer, &chosen);
    }

    /// Writes the index to `path` atomically: `<path>.tmp`, fsync, rename, fsync of the directory.
    pub fn save(&self, path: &Path) -> Result<(), AnnError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        if let Err(source) = self.write_to(&tmp) {
            let _ = fs::remove_file(&tmp);
            return Err(AnnError::Io { path: tmp, source });
        }
        fs::rename(&tmp, path).map_err(|source| AnnError::Io { path: path.to_owned(), source })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn write_to(&self, path: &Path) -> io::Result<()> {
        let file = File::create(path)?;
        let mut w = ChecksumWriter { inner: BufWriter::with_capacity(1 << 20, file), sum: Checksum::default() };
        let mut buf: Vec<u8> = Vec::with_capacity(256);
        buf.extend_from_slice(MAGIC);
        for v in [VERSION, self.dim as u32] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        buf.extend_from_slice(&self.seq.to_le_bytes());
        for v in [self.m, self.m0, self.ef_construction, self.ef_search] {
            buf.extend_from_slice(&(v as u32).to_le_bytes());
        }
        buf.extend_from_slice(&self.rng.to_le_bytes());
        for v in [self.entry.unwrap_or(NO_ENTRY), self.max_level as u32, self.keys.len() as u32] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf)?;
        for (id, key) in self.keys.iter().enumerate() {
            buf.clear();
            buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
            buf.extend_from_slice(key.as_bytes());
            buf.push(u8::from(self.deleted[id]));
            buf.push(self.levels[id]);
            for x in self.vector(id as u32) {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            for layer in 0..=self.levels[id] as usize {
                let list = self.neighbours(id as u32, layer);
                buf.extend_from_slice(&(list.len() as u32).to_le_bytes());
                for n in list {
                    buf.extend_from_slice(&n.to_le_bytes());
                }
            }
            w.write_all(&buf)?;
        }
        let sum = w.sum.finish();
        let mut inner = w.inner;
        inner.write_all(&sum.to_le_bytes())?;
        let file = inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }

    /// Reads an index written by [`VectorIndex::save`], refusing a corrupt or truncated file.
    pub fn load(path: &Path) -> Result<VectorIndex, AnnError> {
        let bytes = fs::read(path).map_err(|source| AnnError::Io { path: path.to_owned(), source })?;
        VectorIndex::from_bytes(&bytes).map_err(|reason| AnnError::Corrupt { path: path.to_owned(), reason })
    }

    fn from_bytes(bytes: &[u8]) -> Result<VectorIndex, String> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4, "magic")? != MAGIC {
            return Err("not a Karavan vector index (bad magic)".into());
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(format!("unsupported version {version} (this build reads {VERSION})"));
        }
        let dim = r.u32("dim")? as usize;
        let seq = r.i64("seq")?;
        let m = r.u32("m")? as usize;
        let m0 = r.u32("m0")? as usize;
        let ef_construction = r.u32("ef_construction")? as usize;
        let ef_search = r.u32("ef_search")? as usize;
        if !(2..=MAX_M).contains(&m) || m0 != 2 * m {
            return Err(format!("bad graph parameters m = {m}, m0 = {m0}"));
        }
        if !(1..=MAX_EF).contains(&ef_construction) || !(1..=MAX_EF).contains(&ef_search) {
            return Err(format!("bad ef parameters {ef_construction}, {ef_search}"));
        }
        let rng = r.u64("rng state")?;
        let entry = r.u32("entry point")?;
        let max_level = r.u32("top layer")? as usize;
        let n = r.u32("node count")? as usize;
        if max_level > MAX_LEVEL {
            return Err(format!("top layer {max_level} is over {MAX_LEVEL}"));
        }
        // Each node takes at least: key length, flags, vector, layer-0 count; plus the checksum at the end.
        let min_node = dim.saturating_mul(4).saturating_add(10);
        if n >= NO_ENTRY as usize || n.saturating_mul(min_node).saturating_add(8) > r.left() {
            return Err(format!("node count {n} does not fit in the {} bytes left", r.left()));
        }
        let mut index = VectorIndex::with_params(dim, AnnParams { m, ef_construction, ef_search });
        index.seq = seq;
        index.rng = rng;
        index.keys.reserve(n);
        index.vectors.reserve(n * dim);
        index.links0.reserve(n * (m0 + 1));
        for id in 0..n {
            let len = r.u32("key length")? as usize;
            if len > MAX_KEY_LEN {
                return Err(format!("node {id}: key length {len} is over {MAX_KEY_LEN}"));
            }
            let key = std::str::from_utf8(r.take(len, "key")?)
                .map_err(|_| format!("node {id}: key is not UTF-8"))?
                .to_owned();
            let deleted = match r.u8("deleted flag")? {
                0 => false,
                1 => true,
                f => return Err(format!("node {id}: bad deleted flag {f}")),
            };
            let level = r.u8("top layer")? as usize;
            if level > max_level {
                return Err(format!("node {id}: top layer {level} is over the index's {max_level}"));
            }
            for chunk in r.take(dim.saturating_mul(4), "vector")?.chunks_exact(4) {
                let x = f32::from_le_bytes(chunk.try_into().unwrap());
                if !x.is_finite() {
                    return Err(format!("node {id}: vector has a non-finite component"));
                }
                index.vectors.push(x);
            }
            index.links0.resize(index.links0.len() + m0 + 1, 0);
            let mut upper = Vec::with_capacity(level);
            for layer in 0..=level {
                let max = if layer == 0 { m0 } else { m };
                let count = r.u32("neighbour count")? as usize;
                if count > max {
                    return Err(format!("node {id}: {count} neighbours on layer {layer}, at most {max} allowed"));
                }
                let ids: Vec<u32> = r
                    .take(4 * count, "neighbour ids")?
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                if let Some(bad) = ids.iter().find(|&&x| x as usize >= n) {
                    return Err(format!("node {id}: neighbour id {bad} on layer {layer} is not below {n}"));
                }
                if layer == 0 {
                    let base = id * (m0 + 1);
                    index.links0[base] = count as u32;
                    index.links0[base + 1..base + 1 + count].copy_from_slice(&ids);
                } else {
                    upper.push(ids);
                }
            }
            if !deleted && index.live.insert(key.clone(), id as u32).is_some() {
                return Err(format!("node {id}: key {key:?} is live twice"));
            }
            index.deleted_count += usize::from(deleted);
            index.keys.push(key);
            index.deleted.push(deleted);
            index.levels.push(level as u8);
            index.upper.push(upper);
        }
        let body_len = r.pos;
        let stored = r.u64("checksum")?;
        if r.left() != 0 {
            return Err(format!("{} unexpected bytes after the checksum", r.left()));
        }
        let mut sum = Checksum::default();
        sum.update(&bytes[..body_len]);
        if sum.finish() != stored {
            return Err("checksum mismatch".into());
        }
        // Every neighbour on a layer must itself reach that layer.
        for id in 0..n {
            for layer in 0..=index.levels[id] as usize {
                if let Some(&bad) =
                    index.neighbours(id as u32, layer).iter().find(|&&x| (index.levels[x as usize] as usize) < layer)
                {
                    return Err(format!("node {id}: neighbour {bad} on layer {layer} does not reach that layer"));
                }
            }
        }
        if n == 0 {
            if entry != NO_ENTRY || max_level != 0 {
                return Err("empty index with an entry point".into());
            }
        } else {
            let e = entry as usize;
            if e >= n || index.levels[e] as usize != max_level {
                return Err(format!("bad entry point {entry} (top layer {max_level}, {n} nodes)"));
            }
            index.entry = Some(entry);
            index.max_level = max_level;
        }
        Ok(index)
    }
}

/// Bounds-checked little-endian reads; every failure is an error message, never a panic.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], String> {
        if len > self.left() {
            return Err(format!("truncated: {what} needs {len} bytes at offset {}, {} left", self.pos, self.left()));
        }
        let out = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }

    fn i64(&mut self, what: &str) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
}

/// A 64-bit checksum over 8-byte little-endian words: `h = (rotl(h, 5) ^ w) * K` per word (each step a
/// bijection of `h`, so any change confined to one word is always detected), length and a final mix.
#[derive(Debug, Clone, Copy)]
struct Checksum {
    h: u64,
    pending: [u8; 8],
    pending_len: usize,
    total: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Checksum { h: 0x6b76_6978_0000_0001, pending: [0; 8], pending_len: 0, total: 0 }
    }
}

impl Checksum {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    #[inline]
    fn word(&mut self, w: u64) {
        self.h = (self.h.rotate_left(5) ^ w).wrapping_mul(Self::K);
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.pending_len > 0 {
            let take = (8 - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.pending));
            self.pending_len = 0;
        }
        let chunks = bytes.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap()));
        }
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    fn finish(mut self) -> u64 {
        if self.pending_len > 0 {
            self.pending[self.pending_len..].fill(0);
            self.word(u64::from_le_bytes(self.pending));
        }
        self.word(self.total);
        let mut state = self.h;
        splitmix64(&mut state)
    }
}

struct ChecksumWriter<W: Write> {
    inner: W,
    sum: Checksum,
}

impl<W: Write> ChecksumWriter<W> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sum.update(bytes);
        self.inner.write_all(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalise(v: &mut [f32]) {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
    }

    /// A normalised vector of standard normal components (uniform on the sphere).
    fn random_unit(state: &mut u64, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                let u1 = ((splitmix64(state) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                let u2 = (splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64;
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect();
        normalise(&mut v);
        v
    }

    fn key(i: usize) -> String {
        format!("itm_{i:05}")
    }

    fn build(n: usize, dim: usize, seed: u64) -> VectorIndex {
        let mut state = seed;
        let mut index = VectorIndex::new(dim);
        for i in 0..n {
            index.upsert(&key(i), &random_unit(&mut state, dim)).unwrap();
        }
        index
    }

    fn all(_: &str) -> bool {
        true
    }

    fn keys_of(hits: &[(String, f32)]) -> Vec<&str> {
        hits.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn recall(index: &VectorIndex, queries: &[Vec<f32>], allow: &dyn Fn(&str) -> bool) -> f64 {
        let (mut found, mut total) = (0usize, 0usize);
        for q in queries {
            let truth = index.exact(q, 10, allow);
            let got = index.search(q, 10, allow);
            assert!(got.iter().all(|(k, _)| allow(k)), "a result the filter rejects");
            assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "results not best first");
            total += truth.len();
            found += truth.iter().filter(|(k, _)| got.iter().any(|(g, _)| g == k)).count();
        }
        found as f64 / total.max(1) as f64
    }

    fn queries(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed;
        (0..n).map(|_| random_unit(&mut state, dim)).collect()
    }

    #[test]
    fn index_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<VectorIndex>();
        check::<std::sync::RwLock<VectorIndex>>();
    }

    #[test]
    fn dot_matches_naive_and_does_not_depend_on_batching() {
        let mut state = 7;
        for dim in [0, 1, 3, 4, 15, 16, 17, 64, 384, 385] {
            let q = random_unit(&mut state, dim);
            let vs: Vec<Vec<f32>> = (0..8).map(|_| random_unit(&mut state, dim)).collect();
            let eight = dot_n(&q, std::array::from_fn::<_, 8, _>(|j| &vs[j][..]));
            let four = dot_n(&q, std::array::from_fn::<_, 4, _>(|j| &vs[j + 2][..]));
            for (j, v) in vs.iter().enumerate() {
                let naive: f32 = q.iter().zip(v).map(|(x, y)| x * y).sum();
                assert!((dot(&q, v) - naive).abs() < 1e-5, "dim {dim}");
                assert_eq!(eight[j].to_bits(), dot(&q, v).to_bits());
            }
            assert_eq!(four[..], eight[2..6]);
        }
    }

    #[test]
    fn recall_at_10_on_5000_random_vectors() {
        let index = build(5000, 64, 1);
        assert_eq!(index.len(), 5000);
        let r = recall(&index, &queries(200, 64, 2), &all);
        assert!(r >= 0.95, "recall@10 {r}");
    }

    #[test]
    fn empty_index_and_bad_input() {
        let mut index = VectorIndex::new(8);
        assert!(index.is_empty());
        assert!(index.search(&[0.0; 8], 10, &all).is_empty());
        assert!(index.exact(&[0.0; 8], 10, &all).is_empty());
        assert!(matches!(index.upsert("a", &[1.0; 7]), Err(AnnError::Dimension { expected: 8, got: 7 })));
        let mut nan = [0.0; 8];
        nan[3] = f32::NAN;
        assert!(matches!(index.upsert("a", &nan), Err(AnnError::NonFinite)));
        assert!(matches!(index.upsert(&"x".repeat(70_000), &[0.0; 8]), Err(AnnError::KeyTooLong(70_000))));
        assert!(index.is_empty());
        let mut one = [0.0; 8];
        one[0] = 1.0;
        index.upsert("a", &one).unwrap();
        assert_eq!(index.search(&one, 10, &all), vec![("a".to_owned(), 1.0)]);
        assert!(index.search(&one, 0, &all).is_empty());
        assert!(index.search(&[1.0; 3], 10, &all).is_empty(), "wrong query dimension");
        assert!(!index.remove("b"));
    }

    #[test]
    fn upsert_replaces_a_keys_vector() {
        let mut index = build(500, 32, 3);
        let mut state = 99;
        let v = random_unit(&mut state, 32);
        assert_ne!(index.get(&key(10)).unwrap(), &v[..]);
        index.upsert(&key(10), &v).unwrap();
        assert_eq!(index.len(), 500);
        assert_eq!(index.node_count(), 501);
        assert_eq!(index.get(&key(10)).unwrap(), &v[..]);
        let hits = index.search(&v, 3, &all);
        assert_eq!(hits[0].0, key(10));
        assert!((hits[0].1 - 1.0).abs() < 1e-5);
        assert_eq!(hits.iter().filter(|(k, _)| *k == key(10)).count(), 1, "the old node is not returned");
        assert_eq!(index.exact(&v, 500, &all).iter().filter(|(k, _)| *k == key(10)).count(), 1);
        // The same vector again changes nothing.
        index.upsert(&key(10), &v).unwrap();
        assert_eq!(index.node_count(), 501);
    }

    #[test]
    fn remove_hides_a_key() {
        let mut index = build(500, 32, 4);
        let v = index.get(&key(42)).unwrap().to_vec();
        assert_eq!(index.search(&v, 1, &all)[0].0, key(42));
        assert!(index.remove(&key(42)));
        assert!(!index.remove(&key(42)));
        assert_eq!(index.len(), 499);
        assert!(index.get(&key(42)).is_none());
        assert!(index.search(&v, 50, &all).iter().all(|(k, _)| *k != key(42)));
        assert!(index.exact(&v, 500, &all).iter().all(|(k, _)| *k != key(42)));
        assert_eq!(index.exact(&v, 1000, &all).len(), 499);
    }

    #[test]
    fn filter_restricts_results() {
        let index = build(3000, 32, 5);
        let qs = queries(50, 32, 6);
        let thirds = |k: &str| k.ends_with(['0', '3', '6']);
        let twentieth = |k: &str| ["05", "25", "45", "65", "85"].iter().any(|end| k.ends_with(end));
        let few = |k: &str| k == key(7) || k == key(2500);
        // Through `search` (brute force for such a small index) ...
        assert_eq!(index.plan(10, &all), Plan::Walk { ef: 96 });
        assert_eq!(index.plan(200, &all), Plan::Walk { ef: 200 });
        for filter in [&thirds as &dyn Fn(&str) -> bool, &twentieth, &few] {
            assert_eq!(index.plan(10, filter), Plan::Exact);
            assert_eq!(index.search(&qs[0], 10, filter), index.exact(&qs[0], 10, filter));
        }
        assert_eq!(index.search(&qs[0], 10, &few).len(), 2);
        assert!(index.search(&qs[0], 10, &|_: &str| false).is_empty());
        // ... and through the graph walk, which goes through the rejected nodes.
        let walk_recall = |allow: &dyn Fn(&str) -> bool| {
            let (mut found, mut total) = (0, 0);
            for q in &qs {
                let truth = index.exact(q, 10, allow);
                let got = index.walk(q, 10, 192, allow);
                assert!(got.iter().all(|(k, _)| allow(k)));
                total += truth.len();
                // Scores do not depend on the path: the same pairs, bit for bit.
                found += truth.iter().filter(|t| got.contains(t)).count();
            }
            found as f64 / total as f64
        };
        assert!(walk_recall(&thirds) >= 0.95);
        assert!(walk_recall(&twentieth) >= 0.95);
        assert_eq!(index.walk(&qs[0], 10, 192, &few).len(), 2);
        assert!(index.walk(&qs[0], 10, 192, &|_: &str| false).is_empty());
    }

    #[test]
    fn selective_filters_walk_a_large_enough_index() {
        // With M = 2 and ef 1 the brute-force bound is 8 * 20 * 4 = 640 accepted nodes for k = 10.
        let mut state = 21;
        let mut index = VectorIndex::with_params(16, AnnParams { m: 2, ef_construction: 32, ef_search: 1 });
        for i in 0..3000 {
            index.upsert(&key(i), &random_unit(&mut state, 16)).unwrap();
        }
        let two_fifths = |k: &str| k.ends_with(['0', '3', '6', '9']);
        let twentieth = |k: &str| ["05", "25", "45", "65", "85"].iter().any(|end| k.ends_with(end));
        assert_eq!(index.plan(10, &all), Plan::Walk { ef: 10 });
        assert_eq!(index.plan(10, &two_fifths), Plan::Walk { ef: 20 });
        assert_eq!(index.plan(10, &twentieth), Plan::Exact);
        let q = random_unit(&mut state, 16);
        let hits = index.search(&q, 10, &two_fifths);
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|(k, _)| two_fifths(k)));
        // A filter on recency (the newest tenth) is sampled fairly.
        let newest = |k: &str| k.as_bytes() >= key(2700).as_bytes();
        assert_eq!(index.plan(10, &newest), Plan::Exact);
        let oldest_two_fifths = |k: &str| k.as_bytes() < key(1200).as_bytes();
        assert_eq!(index.plan(10, &oldest_two_fifths), Plan::Walk { ef: 20 });
    }

    fn temp_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("vectors.kvix")
    }

    #[test]
    fn save_and_load_round_trip() {
        let mut index = build(1000, 24, 8);
        for i in (0..1000).step_by(7) {
            index.remove(&key(i));
        }
        index.set_seq(12345);
        index.set_ef_search(40);
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir);
        index.save(&path).unwrap();
        assert!(!dir.path().join("vectors.kvix.tmp").exists());
        let loaded = VectorIndex::load(&path).unwrap();
        assert_eq!(loaded.seq(), 12345);
        assert_eq!(loaded.dim(), 24);
        assert_eq!(loaded.len(), index.len());
        assert_eq!(loaded.params(), index.params());
        assert_eq!(loaded.tombstones(), index.tombstones());
        for q in queries(30, 24, 9) {
            assert_eq!(loaded.search(&q, 10, &all), index.search(&q, 10, &all));
            assert_eq!(loaded.exact(&q, 10, &all), index.exact(&q, 10, &all));
        }
        // Saving again gives the same bytes; inserting after the load goes on the same way.
        let again = dir.path().join("again.kvix");
        loaded.save(&again).unwrap();
        assert_eq!(fs::read(&path).unwrap(), fs::read(&again).unwrap());
        let (mut a, mut b) = (index, loaded);
        let extra = queries(20, 24, 10);
        for (i, v) in extra.iter().enumerate() {
            a.upsert(&format!("new{i}"), v).unwrap();
            b.upsert(&format!("new{i}"), v).unwrap();
        }
        assert_eq!(a.search(&extra[3], 10, &all), b.search(&extra[3], 10, &all));
        // An empty index round-trips too.
        VectorIndex::new(5).save(&path).unwrap();
        assert!(VectorIndex::load(&path).unwrap().is_empty());
    }

    fn small_file() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let mut index = build(40, 4, 11);
        index.remove(&key(3));
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir);
        index.save(&path).unwrap();
        let bytes = fs::read(&path).unwrap();
        (dir, path, bytes)
    }

    fn load_bytes(path: &Path, bytes: &[u8]) -> Result<VectorIndex, AnnError> {
        fs::write(path, bytes).unwrap();
        VectorIndex::load(path)
    }

    fn reason(result: Result<VectorIndex, AnnError>) -> String {
        match result {
            Err(AnnError::Corrupt { reason, .. }) => reason,
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("a bad file was accepted"),
        }
    }

    /// Rewrites the trailing checksum so that only the structural checks can refuse the bytes.
    fn fix_checksum(bytes: &mut [u8]) {
        let body = bytes.len() - 8;
        let mut sum = Checksum::default();
        sum.update(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum.finish().to_le_bytes());
    }

    #[test]
    fn truncated_file_is_refused() {
        let (_dir, path, bytes) = small_file();
        let r = reason(load_bytes(&path, &bytes[..bytes.len() - 20]));
        assert!(r.contains("truncated"), "{r}");
        // Every prefix is refused, none panics.
        for len in 0..bytes.len() {
            assert!(VectorIndex::from_bytes(&bytes[..len]).is_err(), "prefix of {len} bytes accepted");
        }
        assert!(VectorIndex::from_bytes(&bytes).is_ok());
    }

    #[test]
    fn bad_neighbour_id_is_refused() {
        let (_dir, path, mut bytes) = small_file();
        // Header: magic, version, dim, seq, m, m0, efs, rng, entry, top layer, count.
        let header = 4 + 4 + 4 + 8 + 4 * 4 + 8 + 3 * 4;
        // Node 0: key length, key, flags, vector, layer-0 count, then its first neighbour id.
        let first_id = header + 4 + key(0).len() + 2 + 4 * 4 + 4;
        let count = u32::from_le_bytes(bytes[first_id - 4..first_id].try_into().unwrap());
        assert!(count > 0);
        bytes[first_id..first_id + 4].copy_from_slice(&40u32.to_le_bytes());
        fix_checksum(&mut bytes);
        let r = reason(load_bytes(&path, &bytes));
        assert!(r.contains("neighbour id 40"), "{r}");
        bytes[first_id..first_id + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        fix_checksum(&mut bytes);
        assert!(reason(load_bytes(&path, &bytes)).contains("neighbour id"));
    }

    #[test]
    fn corrupt_headers_and_bytes_are_refused() {
        let (_dir, path, bytes) = small_file();
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(reason(load_bytes(&path, &bad)).contains("magic"));
        let mut bad = bytes.clone();
        bad[4] = 9;
        assert!(reason(load_bytes(&path, &bad)).contains("version"));
        let mut bad = bytes.clone();
        bad[8..12].copy_from_slice(&5u32.to_le_bytes()); // dim 5 instead of 4
        fix_checksum(&mut bad);
        assert!(load_bytes(&path, &bad).is_err());
        let mut bad = bytes.clone();
        bad.push(0);
        assert!(reason(load_bytes(&path, &bad)).contains("unexpected bytes"));
        // Any single flipped bit is refused (by a structural check or the checksum), never a panic.
        for pos in 0..bytes.len() {
            for bit in [0, 3, 7] {
                let mut bad = bytes.clone();
                bad[pos] ^= 1 << bit;
                assert!(VectorIndex::from_bytes(&bad).is_err(), "flip at {pos} bit {bit} accepted");
            }
        }
        // And with the checksum fixed up, flips either load or are refused, but never panic.
        for pos in 0..bytes.len() - 8 {
            let mut bad = bytes.clone();
            bad[pos] ^= 0x80;
            fix_checksum(&mut bad);
            if let Ok(index) = VectorIndex::from_bytes(&bad) {
                let _ = index.search(&[0.5; 4], 5, &all);
            }
        }
        let missing = VectorIndex::load(&path.with_extension("nope"));
        assert!(matches!(missing, Err(AnnError::Io { .. })));
    }

    #[test]
    fn compact_keeps_results() {
        let mut index = build(2000, 32, 12);
        index.set_seq(77);
        assert!(!index.compact_if_needed());
        for i in 0..2000 {
            if i % 3 == 0 {
                index.remove(&key(i));
            }
        }
        let qs = queries(50, 32, 13);
        let before: Vec<_> = qs.iter().map(|q| index.exact(q, 10, &all)).collect();
        assert!(index.compact_if_needed());
        assert_eq!(index.tombstones(), 0);
        assert_eq!(index.node_count(), index.len());
        assert_eq!(index.len(), 2000 - 667);
        assert_eq!(index.seq(), 77);
        let after: Vec<_> = qs.iter().map(|q| index.exact(q, 10, &all)).collect();
        assert_eq!(before, after);
        assert!(recall(&index, &qs, &all) >= 0.95);
        for i in [1, 2, 4, 1999] {
            let v = index.get(&key(i)).unwrap().to_vec();
            assert_eq!(keys_of(&index.search(&v, 1, &all)), vec![key(i).as_str()]);
        }
        assert!(index.get(&key(0)).is_none());
        // Removing everything compacts to an empty index that still works.
        for i in 0..2000 {
            index.remove(&key(i));
        }
        assert!(index.compact_if_needed());
        assert!(index.is_empty());
        assert!(index.search(&qs[0], 10, &all).is_empty());
        index.upsert("again", &qs[0]).unwrap();
        assert_eq!(index.search(&qs[0], 10, &all)[0].0, "again");
    }
}
