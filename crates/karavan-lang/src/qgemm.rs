//! The int8 product of the linear layers: weights quantised once, at load, to 8 bits per value
//! with one scale per output column; each row of `x` quantised when it comes, with one scale per
//! row (dynamic quantisation); sums of 8-bit products in 32-bit integers, exact, and one multiply
//! by the two scales at the end.
//!
//! Layout: panels of 16 output columns, as in the float product; in a panel, one 64-byte line per
//! group of 4 inner steps: columns 0–7 then 8–15, each column's 4 values side by side. The AVX2
//! kernel broadcasts a row's 4 values of a group to all eight columns and multiplies with
//! `vpmaddubsw`, which takes one unsigned and one signed operand: the row's absolute values, and
//! the weights with the row's signs moved onto them (`vpsignb`), so that both keep all 8 bits and
//! no pair of products can saturate (127 · 127 · 2 < 2¹⁵). `vpmaddwd` with ones then sums the
//! pairs into 32 bits. Both sides are quantised to ±127 (never −128, whose absolute value does not
//! fit).
//!
//! On this machine's processors (AVX2, no VNNI) an 8-bit multiply–add is no cheaper in
//! instructions than a float one per value, but the weights are a quarter of the bytes: the
//! decoder, which reads every weight for a handful of rows per step, is bound by memory and gains
//! most. Without AVX2 the same sums run on plain integers (same results, exactly).

use pulp::i8x32;
#[cfg(target_arch = "x86_64")]
use pulp::x86::V3;

/// Output columns per panel.
const NR: usize = 16;
/// Rows per tile: 4 rows × 2 sums in registers, with the panel's line and the broadcasts beside.
const MR: usize = 4;
/// Inner steps per group (one 32-bit broadcast).
const GROUP: usize = 4;
/// Groups per inner block: a panel's block is `KG × 64` bytes (16 KiB), half of L1, read once per
/// tile of rows; the partial sums wait in a small buffer between blocks.
const KG: usize = 256;
/// Rows of `x` per block when threads split rows: a block's quantised rows stay in L2.
const MC: usize = 64;
/// From this many rows on, threads split the rows; below it, the columns.
const ROW_SPLIT: usize = 2 * MC;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct QLine([i8x32; 2]);

const ZERO: QLine =
    QLine([i8x32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0); 2]);

/// A `[k, n]` weight quantised to 8 bits and packed for `x · W`.
pub(crate) struct QPacked {
    k: usize,
    n: usize,
    /// Groups of 4 inner steps (`k` rounded up).
    groups: usize,
    /// Panel `p`, group `g` is `lines[p * groups + g]`.
    lines: Vec<QLine>,
    /// One scale per column, panels wide (zero past `n`).
    scales: Vec<f32>,
}

impl std::fmt::Debug for QPacked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QPacked").field("k", &self.k).field("n", &self.n).finish_non_exhaustive()
    }
}

/// `value / scale` rounded to the nearest of −127 … 127 (ties to even, as the vector conversion
/// rounds).
#[inline(always)]
fn quantize(value: f32, inverse: f32) -> i8 {
    (value * inverse).round_ties_even().clamp(-127.0, 127.0) as i8
}

/// The scale of a row or column whose largest magnitude is `max`, and its inverse (0 for a row of
/// zeros, so that every value quantises to 0).
fn scale_of(max: f32) -> (f32, f32) {
    if max > 0.0 && max.is_finite() { (max / 127.0, 127.0 / max) } else { (0.0, 0.0) }
}

impl QPacked {
    /// Quantises and packs `rows`, the weight as PyTorch stores a linear layer: `[n, k]`.
    pub(crate) fn from_rows(rows: &[f32], n: usize, k: usize) -> QPacked {
        assert_eq!(rows.len(), n * k, "a [{n}, {k}] matrix");
        let panels = n.div_ceil(NR);
        let groups = k.div_ceil(GROUP);
        let mut lines = vec![ZERO; panels * groups];
        let mut scales = vec![0f32; panels * NR];
        for (j, row) in rows.chunks_exact(k.max(1)).enumerate().take(n) {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let (scale, inverse) = scale_of(max);
            scales[j] = scale;
            let (p, c) = (j / NR, j % NR);
            for (g, values) in row.chunks(GROUP).enumerate() {
                let line = &mut lines[p * groups + g];
                let mut bytes: [i8; 64] = pulp::cast(line.0);
                for (i, &v) in values.iter().enumerate() {
                    bytes[c * GROUP + i] = quantize(v, inverse);
                }
                line.0 = pulp::cast(bytes);
            }
        }
        QPacked { k, n, groups, lines, scales }
    }

    pub(crate) fn inputs(&self) -> usize {
        self.k
    }

    pub(crate) fn outputs(&self) -> usize {
        self.n
    }

    /// Row `j` of the matrix it was packed from, as quantised (an embedding table's lookup).
    pub(crate) fn row(&self, j: usize, out: &mut [f32]) -> Option<()> {
        if j >= self.n || out.len() != self.k {
            return None;
        }
        let (p, c) = (j / NR, j % NR);
        let scale = self.scales[j];
        for (g, out) in out.chunks_mut(GROUP).enumerate() {
            let bytes: [i8; 64] = pulp::cast(self.lines[p * self.groups + g].0);
            for (i, o) in out.iter_mut().enumerate() {
                *o = bytes[c * GROUP + i] as f32 * scale;
            }
        }
        Some(())
    }

    /// The bytes the packed weight takes.
    pub(crate) fn bytes(&self) -> usize {
        self.lines.len() * std::mem::size_of::<QLine>() + self.scales.len() * 4
    }

    /// `x · W` for `x` of `m` rows of `k` values: `[m, n]`, on up to `threads` threads.
    pub(crate) fn product(&self, x: &[f32], threads: usize) -> Vec<f32> {
        let mut out = vec![0f32; x.len().checked_div(self.k).unwrap_or(0) * self.n];
        self.product_into(x, &mut out, threads);
        out
    }

    /// `x · W` into `out` (`[m, n]`, every value written).
    pub(crate) fn product_into(&self, x: &[f32], out: &mut [f32], threads: usize) {
        let (k, n) = (self.k, self.n);
        assert_eq!(x.len() % k.max(1), 0, "rows of {k} values");
        let m = x.len().checked_div(k).unwrap_or(0);
        assert_eq!(out.len(), m * n, "an output of [{m}, {n}]");
        if m == 0 || n == 0 {
            return;
        }
        let kernel = Kernel::detect();
        let panels = n.div_ceil(NR);
        let threads = threads.clamp(1, (m * n * k / (1 << 20)).max(1));
        if threads == 1 || m >= ROW_SPLIT {
            let per = if threads == 1 { m } else { m.div_ceil(threads).next_multiple_of(MR) };
            std::thread::scope(|s| {
                let mut parts = out.chunks_mut(per * n).zip(x.chunks(per * k));
                let first = parts.next();
                for (part, x) in parts {
                    s.spawn(move || self.rows(kernel, x, part));
                }
                if let Some((part, x)) = first {
                    self.rows(kernel, x, part);
                }
            });
        } else {
            // Few rows (the decoder): quantised once, each thread a range of panels.
            let rows = Rows::quantize(x, k, self.groups);
            let per = panels.div_ceil(threads);
            let parts = crate::gemm::column_parts(out, n, per * NR, threads);
            std::thread::scope(|s| {
                let rows = &rows;
                let mut jobs = parts.into_iter().enumerate().filter_map(|(t, out)| {
                    let range = t * per..((t + 1) * per).min(panels);
                    (!range.is_empty()).then_some((range, out))
                });
                let first = jobs.next();
                for (range, mut out) in jobs {
                    s.spawn(move || self.panels(kernel, rows, &mut out, range));
                }
                if let Some((range, mut out)) = first {
                    self.panels(kernel, rows, &mut out, range);
                }
            });
        }
    }

    /// All columns for the rows `x`, block by block of rows.
    fn rows(&self, kernel: Kernel, x: &[f32], out: &mut [f32]) {
        let (k, n) = (self.k, self.n);
        for (x, out) in x.chunks(MC * k).zip(out.chunks_mut(MC * n)) {
            let rows = Rows::quantize(x, k, self.groups);
            let mut out: Vec<&mut [f32]> = out.chunks_exact_mut(n).collect();
            self.panels(kernel, &rows, &mut out, 0..n.div_ceil(NR));
        }
    }

    /// The panels `panels` for the quantised rows: `out` holds, per row, those panels' columns.
    fn panels(&self, kernel: Kernel, rows: &Rows, out: &mut [&mut [f32]], panels: std::ops::Range<usize>) {
        let m = out.len();
        let mut sums = vec![[0i32; NR]; m];
        for p in panels.clone() {
            let lines = &self.lines[p * self.groups..(p + 1) * self.groups];
            for g0 in (0..self.groups).step_by(KG) {
                let g1 = (g0 + KG).min(self.groups);
                for (t, t0) in (0..m).step_by(MR).enumerate() {
                    let count = MR.min(m - t0);
                    let (words, magnitudes) = rows.tile(t, count, g0..g1);
                    kernel.tile(words, magnitudes, &lines[g0..g1], &mut sums[t0..t0 + count], g0 == 0);
                }
            }
            let scales = &self.scales[p * NR..(p + 1) * NR];
            let (column, width) = ((p - panels.start) * NR, NR.min(self.n - p * NR));
            for ((row, sums), &row_scale) in out.iter_mut().zip(&sums).zip(&rows.scales) {
                let row = &mut row[column..column + width];
                for ((o, &s), &c) in row.iter_mut().zip(sums).zip(scales) {
                    *o = s as f32 * (row_scale * c);
                }
            }
        }
    }
}

/// Rows of `x` quantised, tile by tile: for each tile of up to 4 rows, group by group, each row's
/// 4 values of the group as one 32-bit word, and beside them the same words of absolute values
/// (loaded, not computed, in the kernel).
struct Rows {
    groups: usize,
    words: Vec<i32>,
    magnitudes: Vec<i32>,
    scales: Vec<f32>,
}

impl Rows {
    fn quantize(x: &[f32], k: usize, groups: usize) -> Rows {
        let m = x.len() / k;
        let mut scales = Vec::with_capacity(m);
        let mut quantized = vec![0i8; groups * GROUP];
        let mut words = vec![0i32; m * groups];
        let mut magnitudes = vec![0i32; m * groups];
        for (r, row) in x.chunks_exact(k).enumerate() {
            scales.push(quantize_row(row, &mut quantized[..k]));
            let (t0, count) = (r - r % MR, MR.min(m - (r - r % MR)));
            for (g, bytes) in quantized.chunks_exact(GROUP).enumerate() {
                let bytes: [i8; GROUP] = bytes.try_into().expect("a group");
                let at = t0 * groups + g * count + r % MR;
                words[at] = i32::from_le_bytes(bytes.map(|b| b as u8));
                magnitudes[at] = i32::from_le_bytes(bytes.map(|b| b.unsigned_abs()));
            }
        }
        Rows { groups, words, magnitudes, scales }
    }

    /// Tile `t` (of `count` rows), groups `range`: `range.len() × count` words and as many
    /// magnitudes.
    fn tile(&self, t: usize, count: usize, range: std::ops::Range<usize>) -> (&[i32], &[i32]) {
        let start = t * MR * self.groups;
        let span = start + range.start * count..start + range.end * count;
        (&self.words[span.clone()], &self.magnitudes[span])
    }
}

/// Quantises one row into `out` (±127, its largest magnitude at 127); returns its scale.
fn quantize_row(row: &[f32], out: &mut [i8]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = V3::try_new() {
        return simd.vectorize(QuantizeRow { simd, row, out });
    }
    let (scale, inverse) = scale_of(row.iter().fold(0f32, |m, v| m.max(v.abs())));
    for (q, &v) in out.iter_mut().zip(row) {
        *q = quantize(v, inverse);
    }
    scale
}

#[cfg(target_arch = "x86_64")]
struct QuantizeRow<'a> {
    simd: V3,
    row: &'a [f32],
    out: &'a mut [i8],
}

#[cfg(target_arch = "x86_64")]
impl pulp::NullaryFnOnce for QuantizeRow<'_> {
    type Output = f32;

    #[inline(always)]
    fn call(self) -> f32 {
        let QuantizeRow { simd, row, out } = self;
        let avx = simd.avx;
        let (head, tail) = pulp::as_arrays::<8, f32>(row);
        let mut lanes = avx._mm256_setzero_ps();
        for chunk in head {
            lanes = avx._mm256_max_ps(lanes, pulp::cast(simd.abs_f32x8(pulp::cast(*chunk))));
        }
        let lanes: [f32; 8] = pulp::cast(lanes);
        let max = tail.iter().fold(lanes.iter().fold(0f32, |m, &v| m.max(v)), |m, v| m.max(v.abs()));
        let (scale, inverse) = scale_of(max);
        let factor = avx._mm256_set1_ps(inverse);
        let (out_head, out_tail) = out.split_at_mut(head.len() * 8);
        for (chunk, out) in head.iter().zip(out_head.chunks_exact_mut(8)) {
            // Ties to even, as `quantize`; the clamp only matters for rounding at the very top.
            let rounded: [i32; 8] = pulp::cast(avx._mm256_cvtps_epi32(avx._mm256_mul_ps(pulp::cast(*chunk), factor)));
            for (o, r) in out.iter_mut().zip(rounded) {
                *o = r.clamp(-127, 127) as i8;
            }
        }
        for (o, &v) in out_tail.iter_mut().zip(tail) {
            *o = quantize(v, inverse);
        }
        scale
    }
}

#[derive(Clone, Copy)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx2(V3),
    Portable,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = V3::try_new() {
            return Kernel::Avx2(simd);
        }
        Kernel::Portable
    }

    /// One tile: `words` and `magnitudes` hold, group by group, one word per row; the sums are
    /// written into `sums` (`first`) or added to them.
    fn tile(self, words: &[i32], magnitudes: &[i32], lines: &[QLine], sums: &mut [[i32; NR]], first: bool) {
        match (self, sums.len()) {
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(simd), 4) => simd.vectorize(Avx2Tile::<4> { simd, words, magnitudes, lines, sums, first }),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(simd), 3) => simd.vectorize(Avx2Tile::<3> { simd, words, magnitudes, lines, sums, first }),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(simd), 2) => simd.vectorize(Avx2Tile::<2> { simd, words, magnitudes, lines, sums, first }),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(simd), _) => simd.vectorize(Avx2Tile::<1> { simd, words, magnitudes, lines, sums, first }),
            (Kernel::Portable, _) => portable_tile(words, lines, sums, first),
        }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx2Tile<'a, const R: usize> {
    simd: V3,
    words: &'a [i32],
    magnitudes: &'a [i32],
    lines: &'a [QLine],
    sums: &'a mut [[i32; NR]],
    first: bool,
}

#[cfg(target_arch = "x86_64")]
impl<const R: usize> pulp::NullaryFnOnce for Avx2Tile<'_, R> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        use std::arch::x86_64::__m256i;
        let Avx2Tile { simd, words, magnitudes, lines, sums: out, first } = self;
        let (avx, avx2) = (simd.avx, simd.avx2);
        let ones = avx._mm256_set1_epi32(0x0001_0001);
        let zero = avx._mm256_setzero_si256();
        let mut sums = [[zero; 2]; R];
        for ((line, x), a) in lines.iter().zip(words.chunks_exact(R)).zip(magnitudes.chunks_exact(R)) {
            let w: [__m256i; 2] = pulp::cast(line.0);
            for r in 0..R {
                let x = avx._mm256_set1_epi32(x[r]);
                let magnitude = avx._mm256_set1_epi32(a[r]);
                for (sum, &w) in sums[r].iter_mut().zip(&w) {
                    let pairs = avx2._mm256_maddubs_epi16(magnitude, avx2._mm256_sign_epi8(w, x));
                    *sum = avx2._mm256_add_epi32(*sum, avx2._mm256_madd_epi16(pairs, ones));
                }
            }
        }
        for (out, sums) in out.iter_mut().zip(sums) {
            let sums: [i32; NR] = pulp::cast(sums);
            if first {
                *out = sums;
            } else {
                out.iter_mut().zip(sums).for_each(|(o, s)| *o += s);
            }
        }
    }
}

fn portable_tile(words: &[i32], lines: &[QLine], out: &mut [[i32; NR]], first: bool) {
    let rows = out.len();
    let mut sums = [[0i32; NR]; MR];
    for (line, a) in lines.iter().zip(words.chunks_exact(rows)) {
        let w: [i8; 64] = pulp::cast(line.0);
        for (sum, &word) in sums.iter_mut().zip(a) {
            let x = word.to_le_bytes().map(|b| b as i8 as i32);
            for (c, s) in sum.iter_mut().enumerate() {
                let w = &w[c * GROUP..(c + 1) * GROUP];
                *s += x.iter().zip(w).map(|(x, &w)| x * w as i32).sum::<i32>();
            }
        }
    }
    for (out, sums) in out.iter_mut().zip(sums) {
        if first {
            *out = sums;
        } else {
            out.iter_mut().zip(sums).for_each(|(o, s)| *o += s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    /// The product of the quantised operands, in f64: what the int8 product must give exactly (to
    /// the final float rounding).
    fn quantized_reference(x: &[f32], rows: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let q = |v: &[f32]| {
            let (scale, inverse) = scale_of(v.iter().fold(0f32, |m, v| m.max(v.abs())));
            (v.iter().map(|&v| quantize(v, inverse) as f64).collect::<Vec<_>>(), scale as f64)
        };
        let xs: Vec<_> = x.chunks_exact(k).map(q).collect();
        let ws: Vec<_> = rows.chunks_exact(k).map(q).collect();
        let mut out = vec![0f32; m * n];
        for (i, (xq, xs)) in xs.iter().enumerate() {
            for (j, (wq, ws)) in ws.iter().enumerate() {
                out[i * n + j] =
                    (xq.iter().zip(wq).map(|(a, b)| a * b).sum::<f64>() * (*xs as f32 * *ws as f32) as f64) as f32;
            }
        }
        out
    }

    #[test]
    fn products_are_the_exact_products_of_the_quantised_values_at_every_edge() {
        let kernels = [Kernel::detect(), Kernel::Portable];
        for &(m, n, k) in &[
            (1, 1, 1),
            (1, 17, 3),
            (3, 16, 5),
            (4, 15, 64),
            (5, 33, 257),
            (13, 40, 513),
            (70, 31, 300),
            (150, 49, 260),
            (16, 1000, 64),
            (6, 20, 4 * KG * 2 + 5),
            (130, 20, 4 * KG + 3),
        ] {
            let x = values(m * k, 1);
            let rows = values(n * k, 2);
            let want = quantized_reference(&x, &rows, m, n, k);
            let packed = QPacked::from_rows(&rows, n, k);
            for kernel in kernels {
                let mut got = vec![f32::NAN; m * n];
                packed.rows(kernel, &x, &mut got);
                let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(worst < 1e-5, "{m}×{n}×{k}: off by {worst}");
            }
            for threads in 1..=3 {
                let got = packed.product(&x, threads);
                let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(worst < 1e-5, "{m}×{n}×{k} on {threads} threads: off by {worst}");
            }
        }
    }

    #[test]
    fn extreme_values_neither_saturate_nor_wrap() {
        // Every value at ±full scale, signs mixed: the pairs of products reach 2 · 127 · 127.
        let (m, n, k) = (5, 20, 64);
        let x: Vec<f32> = (0..m * k).map(|i| if i % 3 == 0 { -1.0 } else { 1.0 }).collect();
        let rows: Vec<f32> = (0..n * k).map(|i| if i % 5 == 0 { -2.0 } else { 2.0 }).collect();
        let want = quantized_reference(&x, &rows, m, n, k);
        let got = QPacked::from_rows(&rows, n, k).product(&x, 2);
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} against {b}");
        }
        // Zero rows and columns stay zero (no division by a zero scale).
        let zeros = QPacked::from_rows(&vec![0.0; n * k], n, k).product(&vec![0.0; m * k], 1);
        assert!(zeros.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn products_stay_close_to_the_float_product() {
        let (m, n, k) = (16, 256, 1024);
        let x = values(m * k, 7);
        let rows = values(n * k, 8);
        let got = QPacked::from_rows(&rows, n, k).product(&x, 2);
        let exact = crate::gemm::Packed::from_rows(&rows, n, k).product(&x, 1);
        // Uniform values: the relative error of a sum of 1024 products is a few tenths of a percent
        // of its spread.
        let spread = (exact.iter().map(|v| v * v).sum::<f32>() / exact.len() as f32).sqrt();
        let worst = got.iter().zip(&exact).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 0.02 * spread, "worst {worst} against a spread of {spread}");
    }

    #[test]
    fn rows_come_back_as_quantised() {
        let (n, k) = (37, 9);
        let rows = values(n * k, 5);
        let packed = QPacked::from_rows(&rows, n, k);
        let mut row = vec![0f32; k];
        for j in 0..n {
            packed.row(j, &mut row).unwrap();
            let max = rows[j * k..(j + 1) * k].iter().fold(0f32, |m, v| m.max(v.abs()));
            for (a, b) in row.iter().zip(&rows[j * k..(j + 1) * k]) {
                assert!((a - b).abs() <= max / 254.0 + 1e-7);
            }
        }
        assert!(packed.row(n, &mut row).is_none());
    }
}
