//! Greedy and beam-search decoding for [`M2m100`], following Hugging Face transformers'
//! `generate` step for step (the same logits processors, the same beam bookkeeping, the same
//! length penalty and stopping rules), so that the same checkpoint gives the same tokens.
//!
//! Every source in a batch decodes at once: one decoder pass per step over all live hypotheses.
//! A source whose search is over leaves the batch.

use crate::m2m100::{DecoderState, Encoded, M2m100};
use crate::models::ModelError;

/// When beam search may stop before the length runs out (transformers' `early_stopping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyStopping {
    /// `false`: when no running beam can beat the finished ones at the current length.
    Heuristic,
    /// `true`: as soon as there are as many finished hypotheses as beams.
    Done,
    /// `"never"`: only when no running beam could beat them at the longest length.
    Never,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// 1 for greedy decoding.
    pub num_beams: usize,
    /// The longest output in tokens, the decoder start token included (transformers' `max_length`).
    pub max_length: usize,
    /// `</s>` is not allowed before this many tokens, the decoder start token included
    /// (transformers' `min_length`; benchmarks use it to force one output length).
    pub min_length: usize,
    /// Finished beams score `sum of log-probabilities / length ^ length_penalty`.
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    /// No n-gram of this size occurs twice in an output (0: no limit).
    pub no_repeat_ngram_size: usize,
    /// `</s>` is forced as the last token when the length runs out.
    pub forced_eos: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            num_beams: 4,
            max_length: 200,
            min_length: 0,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            no_repeat_ngram_size: 0,
            forced_eos: false,
        }
    }
}

/// transformers' "minus infinity" for beams that must not win.
const NEG: f32 = -1.0e9;

/// For each source (token ids, language code and `</s>` included), the generated tokens: the
/// decoder start token, `target` (the forced language token), the translation and `</s>` (absent
/// when the length ran out first).
pub fn generate(
    model: &M2m100,
    sources: &[Vec<u32>],
    targets: &[u32],
    options: &Options,
) -> Result<Vec<Vec<u32>>, ModelError> {
    if sources.len() != targets.len() {
        return Err(ModelError::Invalid("one target language per source".into()));
    }
    let requests: Vec<(usize, u32)> = targets.iter().copied().enumerate().collect();
    generate_many(model, sources, &requests, options)
}

/// Translations of sources into several languages each: `requests` are (source index, target
/// language token) pairs, answered in their order. Each source is encoded once, whatever the number
/// of languages it goes into (the encoder does not depend on the target), and every request decodes
/// in one batch. Each answer is what [`generate`] gives for that source and target alone.
pub fn generate_many(
    model: &M2m100,
    sources: &[Vec<u32>],
    requests: &[(usize, u32)],
    options: &Options,
) -> Result<Vec<Vec<u32>>, ModelError> {
    crate::encoder::in_pool(|| generate_in_pool(model, sources, requests, options))
}

/// [`generate_many`] on a thread of the shared pool.
fn generate_in_pool(
    model: &M2m100,
    sources: &[Vec<u32>],
    requests: &[(usize, u32)],
    options: &Options,
) -> Result<Vec<Vec<u32>>, ModelError> {
    if options.num_beams == 0 || options.max_length < 2 {
        return Err(ModelError::Invalid("generation needs at least one beam and a max_length of 2".into()));
    }
    if let Some(&(_, bad)) = requests.iter().find(|&&(_, t)| t as usize >= model.config.vocab_size) {
        return Err(ModelError::Invalid(format!("target token {bad} is outside the vocabulary")));
    }
    if let Some(&(bad, _)) = requests.iter().find(|&&(s, _)| s >= sources.len()) {
        return Err(ModelError::Invalid(format!("request for source {bad} of {}", sources.len())));
    }
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    // Only the sources some request reads are encoded.
    let mut used: Vec<usize> = requests.iter().map(|&(s, _)| s).collect();
    used.sort_unstable();
    used.dedup();
    let encoded = model.encode(&used.iter().map(|&s| sources[s].clone()).collect::<Vec<_>>())?;
    let requests: Vec<(usize, u32)> =
        requests.iter().map(|&(s, t)| (used.binary_search(&s).expect("a used source"), t)).collect();
    if options.num_beams == 1 {
        greedy(model, &encoded, &requests, options)
    } else {
        beam_search(model, &encoded, &requests, options)
    }
}

/// The logits processors, in transformers' order: the minimum length, no repeated n-gram, the
/// forced first token, the forced last token. `sequence` is the hypothesis so far (its length is
/// `cur_len`). `zero` is the value that stands for a log-probability of 0 (a forced token's): the
/// beam search leaves its rows unshifted, so its `zero` is the row's shift.
#[inline(always)]
fn process(scores: &mut [f32], sequence: &[u32], target: u32, eos: u32, options: &Options, zero: f32) {
    let cur_len = sequence.len();
    if cur_len < options.min_length {
        scores[eos as usize] = f32::NEG_INFINITY;
    }
    let n = options.no_repeat_ngram_size;
    if n > 0 && cur_len + 1 >= n {
        let prefix = &sequence[cur_len + 1 - n..];
        for window in sequence.windows(n) {
            if &window[..n - 1] == prefix {
                scores[window[n - 1] as usize] = f32::NEG_INFINITY;
            }
        }
    }
    let mut force = |token: u32| {
        scores.fill(f32::NEG_INFINITY);
        scores[token as usize] = zero;
    };
    if cur_len == 1 {
        force(target);
    }
    if options.forced_eos && cur_len == options.max_length - 1 {
        force(eos);
    }
}

fn greedy(
    model: &M2m100,
    encoded: &[Encoded],
    requests: &[(usize, u32)],
    options: &Options,
) -> Result<Vec<Vec<u32>>, ModelError> {
    let c = &model.config;
    let vocab = c.vocab_size;
    let mut sequences: Vec<Vec<u32>> = vec![vec![c.decoder_start]; requests.len()];
    let mut live: Vec<usize> = (0..requests.len()).collect();
    let reads: Vec<usize> = requests.iter().map(|&(s, _)| s).collect();
    let mut state = DecoderState::new(model, &reads);
    let mut logits = Vec::new();
    let mut next = Vec::new();
    while !live.is_empty() && sequences[live[0]].len() < options.max_length {
        let tokens: Vec<u32> = live.iter().map(|&s| *sequences[s].last().unwrap_or(&c.decoder_start)).collect();
        next.clear();
        if let Some(forced) = forced_token(sequences[live[0]].len(), options) {
            // Every row's next token is forced: the logits would be thrown away.
            model.advance(encoded, &mut state, &tokens)?;
            next.extend(live.iter().map(|&s| forced.unwrap_or(requests[s].1, c.eos)));
        } else {
            model.decode_step_into(encoded, &mut state, &tokens, &mut logits)?;
            // The processors and the choice, row by row on all threads.
            next.resize(live.len(), 0u32);
            for_each_row(
                &mut logits,
                vocab,
                &mut next,
                #[inline(always)]
                |row, scores, next| {
                    let s = live[row];
                    process(scores, &sequences[s], requests[s].1, c.eos, options, 0.0);
                    *next = on_row(ArgMax(scores));
                },
            );
        }
        let mut keep = Vec::with_capacity(live.len());
        for (row, (&s, &next)) in live.iter().zip(&next).enumerate() {
            sequences[s].push(next);
            if next != c.eos {
                keep.push(row);
            }
        }
        if keep.len() < live.len() {
            live = keep.iter().map(|&row| live[row]).collect();
            state.reorder(&keep);
        }
    }
    Ok(sequences)
}

/// A token `process` forces on every row at this length, whatever the logits.
#[derive(Clone, Copy)]
enum Forced {
    Target,
    Eos,
}

impl Forced {
    fn unwrap_or(self, target: u32, eos: u32) -> u32 {
        match self {
            Forced::Target => target,
            Forced::Eos => eos,
        }
    }
}

/// Which token `process` forces at `cur_len` (the same for every row of a step), if any. At the
/// minimum length's `</s>` ban nothing is forced; `process` forces the last token last, so it wins.
fn forced_token(cur_len: usize, options: &Options) -> Option<Forced> {
    if options.forced_eos && cur_len == options.max_length - 1 {
        Some(Forced::Eos)
    } else if cur_len == 1 {
        Some(Forced::Target)
    } else {
        None
    }
}

/// `f(row index, row, that row's result)` for every row of `values` (rows of `width`), the rows
/// split between the threads, each part compiled for AVX2 where the processor has it.
fn for_each_row<T: Send>(
    values: &mut [f32],
    width: usize,
    results: &mut [T],
    f: impl Fn(usize, &mut [f32], &mut T) + Sync,
) {
    let rows = results.len();
    debug_assert_eq!(values.len(), rows * width);
    // As `parallel_rows`: small work (a small model's rows) is not worth a thread.
    let parts = crate::encoder::threads().min(values.len() / crate::encoder::MIN_PARALLEL_VALUES).min(rows).max(1);
    let per = rows.div_ceil(parts).max(1);
    let run = |first: usize, values: &mut [f32], results: &mut [T]| {
        crate::encoder::fast(
            #[inline(always)]
            || {
                for (i, (row, result)) in values.chunks_exact_mut(width).zip(results.iter_mut()).enumerate() {
                    f(first + i, row, result);
                }
            },
        )
    };
    if parts == 1 {
        run(0, values, results);
        return;
    }
    rayon::scope(|s| {
        let mut parts = values.chunks_mut(per * width).zip(results.chunks_mut(per)).enumerate();
        let first = parts.next();
        for (p, (values, results)) in parts {
            let run = &run;
            s.spawn(move |_| run(p * per, values, results));
        }
        if let Some((_, (values, results))) = first {
            run(0, values, results);
        }
    });
}

/// Runs a pass over a row compiled for the processor's widest vectors (pulp's x86-64-v4, then v3),
/// in safe code. Each pass is a struct whose `call` and everything under it is
/// `#[inline(always)]`, so that it is compiled inside pulp's target-feature function: a closure
/// handed over may stay out of line and run as plain SSE.
#[inline(always)]
fn on_row<P: pulp::NullaryFnOnce>(pass: P) -> P::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(simd) = pulp::x86::V4::try_new() {
            return simd.vectorize(pass);
        }
        if let Some(simd) = pulp::x86::V3::try_new() {
            return simd.vectorize(pass);
        }
    }
    pass.call()
}

/// Values a vectorised pass takes at once (lanes of its running maximum and sum).
const LANES: usize = 16;

/// The largest value (minus infinity for none; NaN is passed over).
#[inline(always)]
fn max_of(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for chunk in chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = if v > *m { v } else { *m };
        }
    }
    lanes.iter().fold(rest, |m, &v| if v > m { v } else { m })
}

/// Values per block of the one-pass selections: a block whose largest value cannot enter is
/// passed over after one vectorised maximum.
const BLOCK: usize = 64;

/// The index of the first largest value (0 for an empty row).
struct ArgMax<'a>(&'a [f32]);

impl pulp::NullaryFnOnce for ArgMax<'_> {
    type Output = u32;

    #[inline(always)]
    fn call(self) -> u32 {
        let values = self.0;
        let Some(&first) = values.first() else { return 0 };
        let (mut best, mut top) = (0, first);
        for (b, block) in values.chunks(BLOCK).enumerate() {
            if max_of(block) <= top {
                continue;
            }
            for (i, &v) in block.iter().enumerate() {
                if v > top {
                    (best, top) = (b * BLOCK + i, v);
                }
            }
        }
        best as u32
    }
}

/// The largest value of a row (see [`max_of`]).
struct Max<'a>(&'a [f32]);

impl pulp::NullaryFnOnce for Max<'_> {
    type Output = f32;

    #[inline(always)]
    fn call(self) -> f32 {
        max_of(self.0)
    }
}

/// The row's log-softmax shift, `max + ln Σ e^(v − max)`: the log-probabilities are `v − shift`. A
/// beam search takes one per hypothesis and step, over the whole vocabulary, so the loops are
/// written to vectorise: lanes for the maximum and the sum, `exp` by `exp_nonpositive`, and the sum
/// flushed to f64 every 1,024 values so that its rounding stays far below the differences the
/// search compares. The row itself is not written: the selection subtracts the shift as it reads.
struct Shift<'a>(&'a [f32]);

impl pulp::NullaryFnOnce for Shift<'_> {
    type Output = f32;

    #[inline(always)]
    fn call(self) -> f32 {
        let row = self.0;
        let max = max_of(row);
        let mut total = 0f64;
        for block in row.chunks(1024) {
            let mut sums = [0f32; LANES];
            let chunks = block.chunks_exact(LANES);
            total += chunks.remainder().iter().map(|&v| f64::from(exp_nonpositive(v - max))).sum::<f64>();
            for chunk in chunks {
                for (s, &v) in sums.iter_mut().zip(chunk) {
                    *s += exp_nonpositive(v - max);
                }
            }
            total += sums.iter().map(|&s| f64::from(s)).sum::<f64>();
        }
        max + total.ln() as f32
    }
}

/// The row's log-probabilities, in place (the tests' reference for [`Shift`]).
#[cfg(test)]
fn log_softmax(row: &mut [f32]) {
    let shift = on_row(Shift(row));
    row.iter_mut().for_each(|v| *v -= shift);
}

/// `e^x` for `x ≤ 0` (and NaN-free input), within about 2 units in the last place, branch-free so
/// that it vectorises: `x = n ln 2 + r` with `|r| ≤ ln 2 / 2`, `e^r` by its Taylor polynomial to
/// degree 7, and `2^n` built in the exponent bits. Below -87 it returns 0.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and removing 1.5 × 2^23 rounds to the nearest integer without a rounding instruction.
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    let value = p * scale;
    if x <= -87.0 { 0.0 } else { value }
}

/// The beam search of one source.
struct Search {
    source: usize,
    /// The running beams: sequence and summed log-probability.
    running: Vec<(Vec<u32>, f32)>,
    /// The finished slots: sequence, score, and whether the slot holds a finished hypothesis.
    finished: Vec<(Vec<u32>, f32, bool)>,
    improvable: bool,
    done: bool,
}

/// The `k` best of `(row[i] − shift) + score` (a hypothesis's log-probabilities plus its running
/// score), as (value, index), by [`top_k`]'s order (value, then the lower index), without writing
/// the row. One pass keeping the best `k` so far; a block whose largest value cannot enter is
/// passed over (the value is monotone in `row[i]`, so its maximum bounds the block's).
struct TopK<'a> {
    row: &'a [f32],
    shift: f32,
    score: f32,
    k: usize,
}

impl pulp::NullaryFnOnce for TopK<'_> {
    type Output = Vec<(f32, usize)>;

    #[inline(always)]
    fn call(self) -> Vec<(f32, usize)> {
        use std::cmp::Ordering;
        let TopK { row, shift, score, k } = self;
        let k = k.min(row.len());
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        if k == 0 {
            return best;
        }
        for (b, block) in row.chunks(BLOCK).enumerate() {
            if best.len() == k && ((max_of(block) - shift) + score).total_cmp(&best[k - 1].0) != Ordering::Greater {
                continue;
            }
            for (i, &v) in block.iter().enumerate() {
                let value = (v - shift) + score;
                if best.len() == k && value.total_cmp(&best[k - 1].0) != Ordering::Greater {
                    continue;
                }
                let at = best.partition_point(|&(b, _)| b.total_cmp(&value) != Ordering::Less);
                best.insert(at, (value, b * BLOCK + i));
                best.truncate(k);
            }
        }
        best
    }
}

/// Indices of the `k` largest of `scores`, largest first; ties keep the lower index first. One pass
/// keeping the best `k` so far (`k` is a few beams; `scores` is beams × vocabulary).
#[inline(always)]
fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    use std::cmp::Ordering;
    let k = k.min(scores.len());
    let mut best: Vec<usize> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for (i, &value) in scores.iter().enumerate() {
        // Full: only a strictly larger value gets in (an equal one has a higher index than those kept).
        if best.len() == k && value.total_cmp(&scores[best[k - 1]]) != Ordering::Greater {
            continue;
        }
        let at = best.partition_point(|&j| scores[j].total_cmp(&value) != Ordering::Less);
        best.insert(at, i);
        best.truncate(k);
    }
    best
}

fn beam_search(
    model: &M2m100,
    encoded: &[Encoded],
    requests: &[(usize, u32)],
    options: &Options,
) -> Result<Vec<Vec<u32>>, ModelError> {
    let c = &model.config;
    let vocab = c.vocab_size;
    let beams = options.num_beams;
    let keep = 2 * beams;
    let lp = f64::from(options.length_penalty);
    let mut searches: Vec<Search> = (0..requests.len())
        .map(|source| Search {
            source,
            running: (0..beams).map(|b| (vec![c.decoder_start], if b == 0 { 0.0 } else { NEG })).collect(),
            finished: vec![(Vec::new(), NEG, false); beams],
            improvable: true,
            done: false,
        })
        .collect();
    // Until the first step whose next token is not forced, every search's beams hold the same
    // tokens (the start token, then the target language); they differ only in their scores (0 for
    // the first, "minus infinity" for the others). While so ("collapsed"), the decoder runs one row
    // per search, not one per beam, and the rows are copied out to the beams after that first
    // free step.
    let collapsed_sources: Vec<usize> = requests.iter().map(|&(s, _)| s).collect();
    let mut state = DecoderState::new(model, &collapsed_sources);
    let mut collapsed = true;
    let mut logits = Vec::new();
    let mut best: Vec<Vec<(f32, usize)>> = Vec::new();
    let mut cur_len = 1;
    while searches.iter().any(|s| !s.done) {
        let live: Vec<usize> = (0..searches.len()).filter(|&i| !searches[i].done).collect();
        let tokens: Vec<u32> = if collapsed {
            live.iter().map(|&i| *searches[i].running[0].0.last().unwrap_or(&0)).collect()
        } else {
            live.iter().flat_map(|&i| searches[i].running.iter().map(|(seq, _)| *seq.last().unwrap_or(&0))).collect()
        };
        // Each hypothesis's row: log-probabilities, the processors, plus its running score, and the
        // row's best `keep` candidates, (value, token) (rows on all threads). A search's best `keep`
        // over its beams' rows are among the union of its rows' best `keep`, in the same order
        // (value, then index).
        let rows: Vec<(&[u32], f32, u32)> = live
            .iter()
            .flat_map(|&i| {
                let search = &searches[i];
                search.running.iter().map(move |(seq, score)| (seq.as_slice(), *score, requests[search.source].1))
            })
            .collect();
        best.clear();
        best.resize_with(rows.len(), Vec::new);
        let forced = forced_token(cur_len, options);
        if let Some(forced) = forced {
            // Every row's next token is forced: the row would be minus infinity but for that token,
            // at the running score. Its best are that token, then the lowest others.
            model.advance(encoded, &mut state, &tokens)?;
            for (best, &(_, score, target)) in best.iter_mut().zip(&rows) {
                let token = forced.unwrap_or(target, c.eos) as usize;
                best.push((score, token));
                best.extend((0..vocab).filter(|&t| t != token).take(keep - 1).map(|t| (f32::NEG_INFINITY, t)));
            }
        } else if collapsed {
            // One row per search: its beams' rows are that row plus each beam's score. A beam whose
            // best value (the row's largest plus its score) is no better than the first beam's
            // `keep`-th cannot place a candidate in the search's best `keep` (on a tie its index is
            // higher): its best are not computed.
            model.decode_step_into(encoded, &mut state, &tokens, &mut logits)?;
            let mut per_search: Vec<Vec<Vec<(f32, usize)>>> = vec![Vec::new(); live.len()];
            for_each_row(
                &mut logits,
                vocab,
                &mut per_search,
                #[inline(always)]
                |slot, row, out| {
                    let (seq, score, target) = rows[slot * beams];
                    let shift = on_row(Shift(row));
                    process(row, seq, target, c.eos, options, shift);
                    let top = on_row(Max(row)) - shift;
                    let first = on_row(TopK { row, shift, score, k: keep });
                    let floor = if first.len() == keep { first[keep - 1].0 } else { f32::NEG_INFINITY };
                    let others: Vec<Vec<(f32, usize)>> = rows[slot * beams + 1..(slot + 1) * beams]
                        .iter()
                        .map(|&(_, score, _)| {
                            if first.len() == keep && (top + score).total_cmp(&floor) != std::cmp::Ordering::Greater {
                                Vec::new()
                            } else {
                                on_row(TopK { row, shift, score, k: keep })
                            }
                        })
                        .collect();
                    out.push(first);
                    out.extend(others);
                },
            );
            for (slot, beams_best) in per_search.into_iter().enumerate() {
                for (b, row_best) in beams_best.into_iter().enumerate() {
                    best[slot * beams + b] = row_best;
                }
            }
        } else {
            model.decode_step_into(encoded, &mut state, &tokens, &mut logits)?;
            for_each_row(
                &mut logits,
                vocab,
                &mut best,
                #[inline(always)]
                |r, row, best| {
                    let (seq, score, target) = rows[r];
                    let shift = on_row(Shift(row));
                    process(row, seq, target, c.eos, options, shift);
                    *best = on_row(TopK { row, shift, score, k: keep });
                },
            );
        }
        drop(rows);
        let mut order = Vec::with_capacity(tokens.len());
        let mut still = Vec::new();
        for (slot, &i) in live.iter().enumerate() {
            let search = &mut searches[i];
            let mut pooled: Vec<(f32, usize)> = best[slot * beams..(slot + 1) * beams]
                .iter()
                .enumerate()
                .flat_map(|(b, best)| best.iter().map(move |&(value, k)| (value, b * vocab + k)))
                .collect();
            pooled.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            pooled.truncate(keep);
            let candidates: Vec<usize> = pooled.iter().map(|&(_, k)| k).collect();
            let scores: Vec<f32> = pooled.iter().map(|&(value, _)| value).collect();
            let hits: Vec<bool> =
                candidates.iter().map(|&k| (k % vocab) as u32 == c.eos || cur_len + 1 >= options.max_length).collect();
            let extend = |k: usize| {
                let mut seq = search.running[k / vocab].0.clone();
                seq.push((k % vocab) as u32);
                seq
            };
            // The next running beams: the best candidates that did not just finish.
            let penalised: Vec<f32> = scores.iter().zip(&hits).map(|(s, &h)| if h { s + NEG } else { *s }).collect();
            let next = top_k(&penalised, beams);
            // The finished slots: the best of the old ones and the top `beams` candidates that finished.
            let length = (cur_len + 1 - 1) as f64;
            let full = search.finished.iter().all(|f| f.2) && options.early_stopping == EarlyStopping::Done;
            let mut merged: Vec<(Vec<u32>, f32, bool)> = std::mem::take(&mut search.finished);
            for (rank, ((&k, &score), &hit)) in candidates.iter().zip(&scores).zip(&hits).enumerate() {
                let just_finished = hit && rank < beams;
                let mut value = score / length.powf(lp) as f32;
                if full {
                    value += NEG;
                }
                if !search.improvable {
                    value += NEG;
                }
                if !just_finished {
                    value += NEG;
                }
                merged.push((extend(k), value, just_finished));
            }
            let merged_scores: Vec<f32> = merged.iter().map(|m| m.1).collect();
            search.finished = top_k(&merged_scores, beams).into_iter().map(|m| merged[m].clone()).collect();
            search.running = next.iter().map(|&n| (extend(candidates[n]), penalised[n])).collect();
            for &n in &next {
                order.push(slot * beams + candidates[n] / vocab);
            }
            // Whether a running beam could still beat the worst finished one.
            let best_length = if options.early_stopping == EarlyStopping::Never && lp > 0.0 {
                options.max_length - 1
            } else {
                cur_len
            };
            let best_running = search.running[0].1 / (best_length as f64).powf(lp) as f32;
            let all_finished = search.finished.iter().all(|f| f.2);
            let worst = search.finished.iter().map(|f| f.1).fold(f32::INFINITY, f32::min);
            search.improvable &= !all_finished || best_running > worst;
            search.done = !search.improvable
                || (all_finished && options.early_stopping == EarlyStopping::Done)
                || hits.iter().all(|&h| h);
            if !search.done {
                still.push(slot);
            }
        }
        // Hypotheses of searches that go on, in their new order.
        let reorder: Vec<usize> = if collapsed {
            // The state has a row per live search: a beam's row is its search's.
            if forced.is_some() {
                // The beams still hold the same tokens (the forced one).
                still.clone()
            } else {
                collapsed = false;
                still
                    .iter()
                    .flat_map(|&slot| order[slot * beams..(slot + 1) * beams].iter().map(|&o| o / beams))
                    .collect()
            }
        } else {
            still.iter().flat_map(|&slot| order[slot * beams..(slot + 1) * beams].iter().copied()).collect()
        };
        state.reorder(&reorder);
        cur_len += 1;
    }
    Ok(searches.into_iter().map(|s| s.finished.into_iter().next().map(|f| f.0).unwrap_or_default()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_log_softmax_are_accurate() {
        let mut x = 0.0f32;
        while x > -90.0 {
            let (ours, exact) = (exp_nonpositive(x) as f64, (x as f64).exp());
            let allowed = if x < -87.0 { 1e-37 } else { 3e-7 * exact };
            assert!((ours - exact).abs() <= allowed, "e^{x}: {ours} against {exact}");
            x -= 0.0137;
        }
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive(0.0), 1.0);
        let mut row: Vec<f32> = (0..5003).map(|i| ((i * 7919) % 1000) as f32 / 50.0 - 10.0).collect();
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let log_sum = row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
        let want: Vec<f64> = row.iter().map(|&v| v as f64 - log_sum).collect();
        log_softmax(&mut row);
        assert!(row.iter().zip(&want).all(|(a, b)| (*a as f64 - b).abs() < 1e-5));
    }

    #[test]
    fn top_k_is_sorted_and_stable() {
        assert_eq!(top_k(&[1.0, 3.0, 2.0, 3.0, -1.0], 3), vec![1, 3, 2]);
        assert_eq!(top_k(&[1.0, 2.0], 5), vec![1, 0]);
        assert_eq!(top_k(&[f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY], 2), vec![1, 0]);
        // The one-pass selection equals a full stable sort, ties and all.
        let mut state = 12345u32;
        for length in [1usize, 7, 100, 5000] {
            let values: Vec<f32> = (0..length)
                .map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    ((state >> 16) % 17) as f32 - 8.0
                })
                .collect();
            for k in [1, 3, 8, length] {
                let mut sorted: Vec<usize> = (0..length).collect();
                sorted.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
                sorted.truncate(k);
                assert_eq!(top_k(&values, k), sorted, "length {length}, k {k}");
            }
        }
    }

    #[test]
    fn top_k_is_top_k_of_the_shifted_row() {
        let mut state = 777u32;
        let row: Vec<f32> = (0..3000)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((state >> 16) % 23) as f32 * 0.37 - 4.0
            })
            .collect();
        for (shift, score) in [(0.0, 0.0), (1.25, -3.5), (-0.7, NEG), (2.0, f32::NEG_INFINITY)] {
            for (length, k) in [(3000, 8), (3000, 1), (63, 8), (130, 200), (0, 4)] {
                let row = &row[..length];
                let shifted: Vec<f32> = row.iter().map(|v| (v - shift) + score).collect();
                let want: Vec<(f32, usize)> = top_k(&shifted, k).into_iter().map(|k| (shifted[k], k)).collect();
                let got = on_row(TopK { row, shift, score, k });
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    assert_eq!((a.0.to_bits(), a.1), (b.0.to_bits(), b.1), "shift {shift}, score {score}");
                }
            }
        }
    }

    #[test]
    fn argmax_and_max_find_the_first_largest_in_every_block() {
        let mut state = 99u32;
        for length in [1usize, 5, 63, 64, 65, 1000, 4099] {
            let values: Vec<f32> = (0..length)
                .map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    ((state >> 16) % 9) as f32 - 4.0
                })
                .collect();
            let top = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let first = values.iter().position(|&v| v == top).unwrap();
            assert_eq!(on_row(ArgMax(&values)), first as u32, "length {length}");
            assert_eq!(on_row(Max(&values)), top);
        }
        assert_eq!(on_row(ArgMax(&[])), 0);
        assert_eq!(on_row(ArgMax(&[f32::NEG_INFINITY, f32::NEG_INFINITY])), 0);
        assert_eq!(on_row(Max(&[])), f32::NEG_INFINITY);
    }

    #[test]
    fn processors_ban_repeated_ngrams_and_force_tokens() {
        let options = Options { no_repeat_ngram_size: 2, max_length: 6, forced_eos: true, ..Options::default() };
        // Sequence 2 5 7 5: the bigram (5, 7) has occurred, so after 5 the token 7 is banned.
        let mut scores = vec![0.0; 10];
        process(&mut scores, &[2, 5, 7, 5], 9, 2, &options, 0.0);
        assert_eq!(scores[7], f32::NEG_INFINITY);
        assert!(scores.iter().enumerate().all(|(i, &s)| i == 7 || s == 0.0));
        let mut scores = vec![0.5; 10];
        process(&mut scores, &[2], 9, 2, &options, 1.5);
        assert_eq!(on_row(ArgMax(&scores)), 9);
        assert_eq!(scores[9], 1.5);
        let mut scores = vec![0.5; 10];
        process(&mut scores, &[2, 9, 3, 4, 6], 9, 2, &options, 0.0);
        assert_eq!(on_row(ArgMax(&scores)), 2);
        // Below the minimum length </s> is never chosen.
        let options = Options { min_length: 4, ..Options::default() };
        let mut scores = vec![0.0; 10];
        scores[2] = 5.0;
        process(&mut scores, &[2, 9, 3], 9, 2, &options, 0.0);
        assert_eq!(scores[2], f32::NEG_INFINITY);
        let mut scores = vec![0.0; 10];
        scores[2] = 5.0;
        process(&mut scores, &[2, 9, 3, 4], 9, 2, &options, 0.0);
        assert_eq!(on_row(ArgMax(&scores)), 2);
    }
}
