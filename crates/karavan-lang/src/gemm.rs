//! The matrix product of the linear layers, `x · W`, with the weight packed once, at load time,
//! for it.
//!
//! A general GEMM (candle's) packs the weight into cache-sized panels on every call. For the
//! decoder, which multiplies a handful of rows (one per hypothesis) by each weight, that repacking
//! costs as much as the product itself. Here the weight is stored already packed: panels of 16
//! output columns, each panel `k` rows of 16 values (one 64-byte cache line) in order of the inner
//! dimension. The product walks the inner dimension in blocks that keep a panel's block in L1 and
//! the block of `x` (copied so that the 6 rows of a tile lie side by side) in L2, and computes
//! 6 × 16 tiles of the output in 12 AVX2 registers with fused multiply-adds.
//!
//! With AVX-512 the kernel takes two panels at once: 6 × 32 tiles in 12 registers of 16 lanes, each
//! broadcast value feeding two multiply-adds. Every kernel adds the products of a sum in the same
//! order, one fused multiply-add per step, so AVX2 and AVX-512 give the same values exactly.
//!
//! The vector code is `pulp`'s: safe, with the CPU's features checked at run time. Without AVX2
//! and FMA the same loops run on plain arrays (slower, same results to rounding).

use pulp::f32x8;
#[cfg(target_arch = "x86_64")]
use pulp::x86::{V3, V4};

/// Output columns per panel.
const NR: usize = 16;
/// Output rows per tile.
const MR: usize = 6;
/// Inner-dimension block: a panel's block is `KC × 64` bytes (16 KiB), half of L1.
const KC: usize = 256;
/// Rows of `x` per block: `MC × KC × 4` bytes (72 KiB) stays in L2.
const MC: usize = 72;
/// From this many rows on, threads split the rows (each reading the whole weight); below it,
/// they split the columns (each reading its part of the weight once).
const ROW_SPLIT: usize = 2 * MC;

/// One inner-dimension step of a panel: 16 values, one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32x8; 2]);

const ZERO: Line = Line([f32x8(0., 0., 0., 0., 0., 0., 0., 0.); 2]);

/// A `[k, n]` weight (k inputs, n outputs) packed for `x · W`.
pub(crate) struct Packed {
    k: usize,
    n: usize,
    /// Panel `p`, step `i` is `lines[p * k + i]`: columns `16p .. 16p + 16` of row `i`, zero
    /// past `n`.
    lines: Vec<Line>,
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packed").field("k", &self.k).field("n", &self.n).finish_non_exhaustive()
    }
}

impl Packed {
    /// Packs `rows`, the weight as PyTorch stores a linear layer or an embedding table: `[n, k]`,
    /// one row of `k` values per output.
    pub(crate) fn from_rows(rows: &[f32], n: usize, k: usize) -> Packed {
        assert_eq!(rows.len(), n * k, "a [{n}, {k}] matrix");
        let panels = n.div_ceil(NR);
        let mut lines = vec![ZERO; panels * k];
        for (p, panel) in lines.chunks_exact_mut(k.max(1)).enumerate() {
            let first = p * NR;
            let block = &rows[first * k..(first + NR).min(n) * k];
            for (i, line) in panel.iter_mut().enumerate() {
                let mut values = [0f32; NR];
                for (v, row) in values.iter_mut().zip(block.chunks_exact(k)) {
                    *v = row[i];
                }
                *line = Line(pulp::cast(values));
            }
        }
        Packed { k, n, lines }
    }

    /// The inner dimension.
    pub(crate) fn inputs(&self) -> usize {
        self.k
    }

    /// The output dimension.
    pub(crate) fn outputs(&self) -> usize {
        self.n
    }

    /// Row `j` of the `[n, k]` matrix it was packed from (an embedding table's lookup), or `None`
    /// past `n`.
    pub(crate) fn row(&self, j: usize, out: &mut [f32]) -> Option<()> {
        if j >= self.n || out.len() != self.k {
            return None;
        }
        let panel = &self.lines[(j / NR) * self.k..(j / NR + 1) * self.k];
        let (half, lane) = ((j % NR) / 8, j % 8);
        for (o, line) in out.iter_mut().zip(panel) {
            let values: [f32; 8] = pulp::cast(line.0[half]);
            *o = values[lane];
        }
        Some(())
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
        let work = m * n * k;
        let threads = threads.clamp(1, (work / (1 << 20)).max(1));
        if threads == 1 {
            let mut rows: Vec<&mut [f32]> = out.chunks_exact_mut(n).collect();
            self.block(kernel, x, &mut rows, 0..panels);
        } else if m >= ROW_SPLIT {
            let per = m.div_ceil(threads).next_multiple_of(MR);
            let block = |part: &mut [f32], x: &[f32]| {
                let mut rows: Vec<&mut [f32]> = part.chunks_exact_mut(n).collect();
                self.block(kernel, x, &mut rows, 0..panels);
            };
            rayon::scope(|s| {
                let block = &block;
                let mut parts = out.chunks_mut(per * n).zip(x.chunks(per * k));
                let first = parts.next();
                for (part, x) in parts {
                    s.spawn(move |_| block(part, x));
                }
                if let Some((part, x)) = first {
                    block(part, x);
                }
            });
        } else {
            // Each thread owns a range of panels, that is, a range of columns of every row; all
            // read the same rows of x, packed once.
            let tiles = pack_rows(x, k, 0..m, 0..k);
            let per = panels.div_ceil(threads);
            let parts = crate::gemm::column_parts(out, n, per * NR, threads);
            rayon::scope(|s| {
                let tiles = &tiles;
                let mut jobs = parts.into_iter().enumerate().filter_map(|(t, rows)| {
                    let range = t * per..((t + 1) * per).min(panels);
                    (!range.is_empty()).then_some((range, rows))
                });
                let first = jobs.next();
                for (range, mut rows) in jobs {
                    s.spawn(move |_| self.few_rows(kernel, tiles, &mut rows, range));
                }
                if let Some((range, mut rows)) = first {
                    self.few_rows(kernel, tiles, &mut rows, range);
                }
            });
        }
    }

    /// Rows `x` times the panels `panels`, into `out` (one slice per row, holding those panels'
    /// columns).
    fn block(&self, kernel: Kernel, x: &[f32], out: &mut [&mut [f32]], panels: std::ops::Range<usize>) {
        let (k, m) = (self.k, out.len());
        if m < ROW_SPLIT {
            self.few_rows(kernel, &pack_rows(x, k, 0..m, 0..k), out, panels);
            return;
        }
        // Many rows (the encoder): blocks of rows in L2, each inner block of a panel in L1.
        for k0 in (0..k).step_by(KC) {
            let kl = KC.min(k - k0);
            for r0 in (0..m).step_by(MC) {
                let r1 = (r0 + MC).min(m);
                let tiles = pack_rows(x, k, r0..r1, k0..k0 + kl);
                for p in panels.clone().step_by(kernel.panels()) {
                    let count = kernel.panels().min(panels.end - p);
                    self.panel(kernel, &tiles, &mut out[r0..r1], p..p + count, panels.start, k0..k0 + kl);
                }
            }
        }
    }

    /// Few rows (the decoder's hypotheses), already packed by `pack_rows` (all rows, all steps):
    /// they stay in cache, and each panel is finished before the next, its sums in L1 between inner
    /// blocks, so the output (a whole vocabulary wide for the last layer) is written once.
    fn few_rows(&self, kernel: Kernel, tiles: &[f32], out: &mut [&mut [f32]], panels: std::ops::Range<usize>) {
        let (k, m) = (self.k, out.len());
        for p in panels.clone().step_by(kernel.panels()) {
            let count = kernel.panels().min(panels.end - p);
            for k0 in (0..k).step_by(KC) {
                let kl = KC.min(k - k0);
                self.panel(kernel, &tiles[k0 * m..(k0 + kl) * m], out, p..p + count, panels.start, k0..k0 + kl);
            }
        }
    }

    /// One inner block `steps` of the panels `panels` (one, or two for AVX-512) times the packed
    /// rows `tiles`, into `out`; `first` is the first panel `out` holds.
    fn panel(
        &self,
        kernel: Kernel,
        tiles: &[f32],
        out: &mut [&mut [f32]],
        panels: std::ops::Range<usize>,
        first: usize,
        steps: std::ops::Range<usize>,
    ) {
        let p = panels.start;
        let lines = |p: usize| &self.lines[p * self.k + steps.start..p * self.k + steps.end];
        let lines = [lines(p), if panels.len() > 1 { lines(p + 1) } else { &[] }];
        let (column, width, kl) = ((p - first) * NR, (panels.len() * NR).min(self.n - p * NR), steps.len());
        let m = out.len();
        for t0 in (0..m).step_by(MR) {
            let rows = MR.min(m - t0);
            let a = &tiles[t0 * kl..(t0 + rows) * kl];
            kernel.tile(a, lines, Tile { out: &mut out[t0..t0 + rows], column, width, first: steps.start == 0 });
        }
    }
}

/// The rows of `out` (rows of `n`), each cut into `parts` consecutive ranges of `width` columns (the
/// last ones shorter or empty): part `t` holds range `t` of every row, for the thread that computes
/// those columns.
pub(crate) fn column_parts(out: &mut [f32], n: usize, width: usize, parts: usize) -> Vec<Vec<&mut [f32]>> {
    let mut split: Vec<Vec<&mut [f32]>> = (0..parts).map(|_| Vec::with_capacity(out.len() / n.max(1))).collect();
    for row in out.chunks_exact_mut(n) {
        let mut rest = row;
        for part in split.iter_mut() {
            let (mine, others) = rest.split_at_mut(width.min(rest.len()));
            part.push(mine);
            rest = others;
        }
    }
    split
}

/// How a model's linear layers are stored and multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats: exactly the reference implementation's arithmetic (to rounding).
    #[default]
    Float32,
    /// 8-bit weights (one scale per output) and rows quantised as they come (one scale per row),
    /// integer sums (`qgemm.rs`): a quarter of the memory, faster where the product waits on memory.
    Int8,
}

impl Precision {
    /// `float32` / `int8` (and `f32`, `fp32`, `i8`).
    pub fn parse(text: &str) -> Option<Precision> {
        match text.trim().to_ascii_lowercase().as_str() {
            "float32" | "f32" | "fp32" => Some(Precision::Float32),
            "int8" | "i8" => Some(Precision::Int8),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::Int8 => "int8",
        }
    }
}

/// A packed weight in either precision.
#[derive(Debug)]
pub(crate) enum Weight {
    Float32(Packed),
    Int8(crate::qgemm::QPacked),
}

impl Weight {
    /// Packs `rows` (`[n, k]`, as PyTorch stores a linear layer) in `precision`.
    pub(crate) fn from_rows(rows: &[f32], n: usize, k: usize, precision: Precision) -> Weight {
        match precision {
            Precision::Float32 => Weight::Float32(Packed::from_rows(rows, n, k)),
            Precision::Int8 => Weight::Int8(crate::qgemm::QPacked::from_rows(rows, n, k)),
        }
    }

    pub(crate) fn inputs(&self) -> usize {
        match self {
            Weight::Float32(w) => w.inputs(),
            Weight::Int8(w) => w.inputs(),
        }
    }

    pub(crate) fn outputs(&self) -> usize {
        match self {
            Weight::Float32(w) => w.outputs(),
            Weight::Int8(w) => w.outputs(),
        }
    }

    /// Row `j` of the matrix it was packed from (as quantised, for int8).
    pub(crate) fn row(&self, j: usize, out: &mut [f32]) -> Option<()> {
        match self {
            Weight::Float32(w) => w.row(j, out),
            Weight::Int8(w) => w.row(j, out),
        }
    }

    pub(crate) fn product(&self, x: &[f32], threads: usize) -> Vec<f32> {
        match self {
            Weight::Float32(w) => w.product(x, threads),
            Weight::Int8(w) => w.product(x, threads),
        }
    }

    /// `x · W` into `out`, reused from call to call (`[m, n]`, every value written).
    pub(crate) fn product_into(&self, x: &[f32], out: &mut [f32], threads: usize) {
        match self {
            Weight::Float32(w) => w.product_into(x, out, threads),
            Weight::Int8(w) => w.product_into(x, out, threads),
        }
    }

    /// The bytes the packed weight takes.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Weight::Float32(w) => w.lines.len() * std::mem::size_of::<Line>(),
            Weight::Int8(w) => w.bytes(),
        }
    }
}

/// Rows `rows` of `x` (rows of `k`), columns `steps`, tile by tile: each tile's (up to 6) rows
/// side by side at each step, so that the kernel reads them in order.
fn pack_rows(x: &[f32], k: usize, rows: std::ops::Range<usize>, steps: std::ops::Range<usize>) -> Vec<f32> {
    let mut tiles = Vec::with_capacity(rows.len() * steps.len());
    for s0 in steps.clone().step_by(KC) {
        let s1 = (s0 + KC).min(steps.end);
        for t0 in rows.clone().step_by(MR) {
            let t1 = (t0 + MR).min(rows.end);
            for i in s0..s1 {
                tiles.extend((t0..t1).map(|r| x[r * k + i]));
            }
        }
    }
    tiles
}

/// Where a tile's sums go: `width` columns from `column` of each row of `out`, written (the first
/// inner block) or added.
struct Tile<'a, 'b> {
    out: &'a mut [&'b mut [f32]],
    column: usize,
    width: usize,
    first: bool,
}

impl Tile<'_, '_> {
    /// Stores `W` columns per row (`width` of them kept).
    #[inline(always)]
    fn store<const W: usize>(self, sums: &[[f32; W]]) {
        for (row, sums) in self.out.iter_mut().zip(sums) {
            let row = &mut row[self.column..self.column + self.width];
            if let Ok(row) = <&mut [f32; W]>::try_from(&mut *row) {
                // A whole panel: fixed-size, so the compiler writes two vector stores.
                if self.first {
                    *row = *sums;
                } else {
                    row.iter_mut().zip(sums).for_each(|(o, s)| *o += s);
                }
            } else if self.first {
                row.copy_from_slice(&sums[..self.width]);
            } else {
                row.iter_mut().zip(sums).for_each(|(o, s)| *o += s);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512(V4),
    #[cfg(target_arch = "x86_64")]
    Avx2(V3),
    Portable,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = V4::try_new() {
            return Kernel::Avx512(simd);
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = V3::try_new() {
            return Kernel::Avx2(simd);
        }
        Kernel::Portable
    }

    /// Panels per tile.
    fn panels(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512(_) => 2,
            _ => 1,
        }
    }

    /// One tile: `a` is `rows` rows of `lines[0].len()` steps, interleaved step by step; `lines`
    /// the tile's panels (the second empty where there is one).
    fn tile(self, a: &[f32], lines: [&[Line]; 2], out: Tile) {
        #[cfg(target_arch = "x86_64")]
        if let Kernel::Avx512(simd) = self {
            if !lines[1].is_empty() {
                match out.out.len() {
                    6 => simd.vectorize(Avx512Tile::<6> { simd, a, lines, out }),
                    5 => simd.vectorize(Avx512Tile::<5> { simd, a, lines, out }),
                    4 => simd.vectorize(Avx512Tile::<4> { simd, a, lines, out }),
                    3 => simd.vectorize(Avx512Tile::<3> { simd, a, lines, out }),
                    2 => simd.vectorize(Avx512Tile::<2> { simd, a, lines, out }),
                    _ => simd.vectorize(Avx512Tile::<1> { simd, a, lines, out }),
                }
                return;
            }
            // A last lone panel: the AVX2 kernel (AVX-512 includes it).
            return Kernel::Avx2(*simd).tile(a, lines, out);
        }
        let lines = lines[0];
        match (self, out.out.len()) {
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(simd), 6) => simd.vectorize(Avx2Tile::<6> { simd, a, lines, out }),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(simd), 5) => simd.vectorize(Avx2Tile::<5> { simd, a, lines, out }),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(simd), 4) => simd.vectorize(Avx2Tile::<4> { simd, a, lines, out }),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(simd), 3) => simd.vectorize(Avx2Tile::<3> { simd, a, lines, out }),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(simd), 2) => simd.vectorize(Avx2Tile::<2> { simd, a, lines, out }),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2(simd), _) => simd.vectorize(Avx2Tile::<1> { simd, a, lines, out }),
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx512(_), _) => unreachable!("taken above"),
            (Kernel::Portable, rows) => portable_tile(a, lines, out, rows),
        }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx512Tile<'a, 'b, 'c, const R: usize> {
    simd: V4,
    a: &'a [f32],
    lines: [&'a [Line]; 2],
    out: Tile<'b, 'c>,
}

#[cfg(target_arch = "x86_64")]
impl<const R: usize> pulp::NullaryFnOnce for Avx512Tile<'_, '_, '_, R> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let Avx512Tile { simd, a, lines: [l0, l1], out } = self;
        for row in out.out.iter() {
            let row = &row[out.column..out.column + out.width];
            simd.sse._mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(row.as_ptr().cast());
            simd.sse._mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(row[row.len() - 1..].as_ptr().cast());
        }
        let zero = simd.splat_f32x16(0.0);
        let mut sums = [[zero; 2]; R];
        for ((line0, line1), a) in l0.iter().zip(l1).zip(a.chunks_exact(R)) {
            let (b0, b1): (pulp::f32x16, pulp::f32x16) = (pulp::cast(line0.0), pulp::cast(line1.0));
            for r in 0..R {
                let v = simd.splat_f32x16(a[r]);
                sums[r][0] = simd.mul_add_f32x16(v, b0, sums[r][0]);
                sums[r][1] = simd.mul_add_f32x16(v, b1, sums[r][1]);
            }
        }
        let sums: [[f32; 2 * NR]; R] = sums.map(pulp::cast);
        out.store(&sums);
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx2Tile<'a, 'b, 'c, const R: usize> {
    simd: V3,
    a: &'a [f32],
    lines: &'a [Line],
    out: Tile<'b, 'c>,
}

#[cfg(target_arch = "x86_64")]
impl<const R: usize> pulp::NullaryFnOnce for Avx2Tile<'_, '_, '_, R> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        let Avx2Tile { simd, a, lines, out } = self;
        // The tile's output lines, fetched while the sums are computed (they come last).
        for row in out.out.iter() {
            let row = &row[out.column..out.column + out.width];
            simd.sse._mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(row.as_ptr().cast());
            simd.sse._mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(row[row.len() - 1..].as_ptr().cast());
        }
        let zero = simd.splat_f32x8(0.0);
        let mut sums = [[zero; 2]; R];
        for (line, a) in lines.iter().zip(a.chunks_exact(R)) {
            let [b0, b1] = line.0;
            for r in 0..R {
                let v = simd.splat_f32x8(a[r]);
                sums[r][0] = simd.mul_add_f32x8(v, b0, sums[r][0]);
                sums[r][1] = simd.mul_add_f32x8(v, b1, sums[r][1]);
            }
        }
        let sums: [[f32; NR]; R] = sums.map(pulp::cast);
        out.store(&sums);
    }
}

fn portable_tile(a: &[f32], lines: &[Line], out: Tile, rows: usize) {
    let mut sums = [[0f32; NR]; MR];
    for (line, a) in lines.iter().zip(a.chunks_exact(rows)) {
        let b: [f32; NR] = pulp::cast(line.0);
        for (sum, &v) in sums.iter_mut().zip(a) {
            for (s, w) in sum.iter_mut().zip(&b) {
                *s = v.mul_add(*w, *s);
            }
        }
    }
    out.store(&sums[..rows]);
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

    /// `x · rowsᵀ` in f64, the plain way.
    fn reference(x: &[f32], rows: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|l| x[i * k + l] as f64 * rows[j * k + l] as f64).sum::<f64>() as f32;
            }
        }
        out
    }

    #[test]
    fn products_match_the_plain_product_at_every_edge() {
        // Rows, columns and inner sizes around the tile (6 × 16), block (72, 256) and split
        // (144 rows) boundaries, on 1 to 3 threads, with both kernels.
        #[allow(unused_mut)]
        let mut kernels = vec![Kernel::detect(), Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        kernels.extend(V3::try_new().map(Kernel::Avx2));
        for &(m, n, k) in &[
            (1, 1, 1),
            (1, 17, 3),
            (2, 32, 9),
            (3, 47, 20),
            (5, 16, 255),
            (6, 15, 256),
            (7, 33, 257),
            (13, 40, 513),
            (73, 31, 300),
            (150, 49, 260),
            (16, 1000, 64),
        ] {
            let x = values(m * k, 1);
            let rows = values(n * k, 2);
            let want = reference(&x, &rows, m, n, k);
            let packed = Packed::from_rows(&rows, n, k);
            for threads in 1..=3 {
                let mut results = Vec::new();
                for &kernel in &kernels {
                    // The public entry point picks the kernel itself; exercise each directly.
                    let mut got = vec![f32::NAN; m * n];
                    let mut out: Vec<&mut [f32]> = got.chunks_exact_mut(n).collect();
                    packed.block(kernel, &x, &mut out, 0..n.div_ceil(NR));
                    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                    assert!(worst < 1e-4, "{m}×{n}×{k}: off by {worst}");
                    results.push(got);
                }
                // The vector kernels (the detected one, and AVX2) add in the same order: the same bits.
                if let [best, _, avx2] = &results[..] {
                    assert!(best.iter().zip(avx2).all(|(a, b)| a.to_bits() == b.to_bits()), "{m}×{n}×{k}");
                }
                let got = packed.product(&x, threads);
                let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(worst < 1e-4, "{m}×{n}×{k} on {threads} threads: off by {worst}");
            }
        }
    }

    #[test]
    fn large_products_split_across_threads_agree_with_one_thread() {
        // Big enough that 2 threads really split (by columns at 16 rows, by rows at 300).
        for m in [16, 300] {
            let (n, k) = (1040, 300);
            let x = values(m * k, 3);
            let packed = Packed::from_rows(&values(n * k, 4), n, k);
            assert_eq!(packed.product(&x, 1), packed.product(&x, 2));
        }
    }

    #[test]
    fn rows_come_back_as_they_were_packed() {
        let (n, k) = (37, 9);
        let rows = values(n * k, 5);
        let packed = Packed::from_rows(&rows, n, k);
        assert_eq!((packed.inputs(), packed.outputs()), (k, n));
        let mut row = vec![0f32; k];
        for j in 0..n {
            packed.row(j, &mut row).unwrap();
            assert_eq!(row, rows[j * k..(j + 1) * k]);
        }
        assert!(packed.row(n, &mut row).is_none());
        assert!(packed.row(0, &mut [0f32; 3]).is_none());
    }
}
