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
//! With AVX2 only, an 8-bit multiply–add is no cheaper in instructions than a float one per value,
//! but the weights are a quarter of the bytes: the decoder, which reads every weight for a handful
//! of rows per step, is bound by memory and gains most.
//!
//! With AVX-512 (BW) the kernel widens a line's 64 weights to 16 bits (two `vpmovsxbw`, once per
//! tile of up to 8 rows) and multiplies them with `vpmaddwd` by the row's 4 values of the group,
//! also 16 bits, broadcast as one 64-bit word: each 32-bit lane then holds one column's sum over
//! two of the 4 inner steps, and the two halves are added once per block. With AVX-512 VNNI the
//! same code is compiled with that feature on, and the compiler fuses each `vpmaddwd` and its add
//! into one `vpdpwssd` (32 products per instruction, safe code: no intrinsic outside what pulp
//! wraps). Without AVX2 the same sums run on plain integers. Every kernel gives the same sums,
//! exactly.

use pulp::i8x32;
#[cfg(target_arch = "x86_64")]
use pulp::x86::{V3, V4};

#[cfg(target_arch = "x86_64")]
pulp::simd_type! {
    /// x86-64-v4 (AVX-512 F, BW, CD, DQ, VL) with AVX-512 VNNI: the kernel compiled with it gets
    /// `vpdpwssd` for each multiply–add pair.
    struct V4Vnni {
        sse: "sse",
        sse2: "sse2",
        fxsr: "fxsr",
        sse3: "sse3",
        ssse3: "ssse3",
        sse4_1: "sse4.1",
        sse4_2: "sse4.2",
        popcnt: "popcnt",
        avx: "avx",
        avx2: "avx2",
        bmi1: "bmi1",
        bmi2: "bmi2",
        fma: "fma",
        lzcnt: "lzcnt",
        avx512f: "avx512f",
        avx512bw: "avx512bw",
        avx512cd: "avx512cd",
        avx512dq: "avx512dq",
        avx512vl: "avx512vl",
        avx512vnni: "avx512vnni",
    }
}

/// Output columns per panel.
const NR: usize = 16;
/// Rows per tile, at most (the AVX-512 kernels' 8 rows × 2 sums in registers; AVX2's 4 rows).
const MR: usize = 8;
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
            let per = if threads == 1 { m } else { m.div_ceil(threads).next_multiple_of(kernel.height()) };
            rayon::scope(|s| {
                let mut parts = out.chunks_mut(per * n).zip(x.chunks(per * k));
                let first = parts.next();
                for (part, x) in parts {
                    s.spawn(move |_| self.rows(kernel, x, part));
                }
                if let Some((part, x)) = first {
                    self.rows(kernel, x, part);
                }
            });
        } else {
            // Few rows (the decoder): quantised once, each thread a range of panels.
            let rows = Rows::quantize(x, k, self.groups, kernel);
            let per = panels.div_ceil(threads);
            let parts = crate::gemm::column_parts(out, n, per * NR, threads);
            rayon::scope(|s| {
                let rows = &rows;
                let mut jobs = parts.into_iter().enumerate().filter_map(|(t, out)| {
                    let range = t * per..((t + 1) * per).min(panels);
                    (!range.is_empty()).then_some((range, out))
                });
                let first = jobs.next();
                for (range, mut out) in jobs {
                    s.spawn(move |_| self.panels(kernel, rows, &mut out, range));
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
            let rows = Rows::quantize(x, k, self.groups, kernel);
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
                for (t, t0) in (0..m).step_by(rows.height).enumerate() {
                    let count = rows.height.min(m - t0);
                    let span = rows.span(t, count, g0..g1);
                    kernel.tile(rows, span, &lines[g0..g1], &mut sums[t0..t0 + count], g0 == 0);
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

/// Rows of `x` quantised, tile by tile: for each tile of up to `height` rows, group by group, each
/// row's 4 values of the group, in the form its kernel reads: one 32-bit word (and beside it the
/// same word of absolute values, for AVX2), or the 4 values widened to 16 bits in one 64-bit word
/// (AVX-512).
struct Rows {
    groups: usize,
    height: usize,
    words: Vec<i32>,
    magnitudes: Vec<i32>,
    wide: Vec<i64>,
    scales: Vec<f32>,
}

impl Rows {
    fn quantize(x: &[f32], k: usize, groups: usize, kernel: Kernel) -> Rows {
        let m = x.len() / k;
        let height = kernel.height();
        let (narrow, signs, widened) = match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2(_) => (true, true, false),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512(_) | Kernel::Vnni(_) => (false, false, true),
            Kernel::Portable => (true, false, false),
        };
        let sized = |on: bool| if on { m * groups } else { 0 };
        let mut scales = Vec::with_capacity(m);
        let mut quantized = vec![0i8; groups * GROUP];
        let (mut words, mut magnitudes, mut wide) =
            (vec![0i32; sized(narrow)], vec![0i32; sized(signs)], vec![0i64; sized(widened)]);
        for (r, row) in x.chunks_exact(k).enumerate() {
            scales.push(quantize_row(row, &mut quantized[..k]));
            let (t0, count) = (r - r % height, height.min(m - (r - r % height)));
            for (g, bytes) in quantized.chunks_exact(GROUP).enumerate() {
                let bytes: [i8; GROUP] = bytes.try_into().expect("a group");
                let at = t0 * groups + g * count + r % height;
                if narrow {
                    words[at] = i32::from_le_bytes(bytes.map(|b| b as u8));
                }
                if signs {
                    magnitudes[at] = i32::from_le_bytes(bytes.map(|b| b.unsigned_abs()));
                }
                if widened {
                    let [a, b, c, d] = bytes.map(|b| (b as i16).to_le_bytes());
                    wide[at] = i64::from_le_bytes([a[0], a[1], b[0], b[1], c[0], c[1], d[0], d[1]]);
                }
            }
        }
        Rows { groups, height, words, magnitudes, wide, scales }
    }

    /// Where tile `t` (of `count` rows), groups `range`, lies in the kernel's words:
    /// `range.len() × count` of them.
    fn span(&self, t: usize, count: usize, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let start = t * self.height * self.groups;
        start + range.start * count..start + range.end * count
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

#[derive(Clone, Copy, Debug)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx2(V3),
    #[cfg(target_arch = "x86_64")]
    Avx512(V4),
    #[cfg(target_arch = "x86_64")]
    Vnni(V4Vnni),
    Portable,
}

/// The kernels' names, the best first.
pub(crate) const KERNELS: [&str; 4] = ["avx512-vnni", "avx512", "avx2", "portable"];

/// The best kernel the products may use (an index into [`KERNELS`]; benchmarks lower it to compare).
static CEILING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Makes the products use the kernel `name` or a lesser one (benchmarks); false if `name` is none
/// of [`KERNELS`].
pub(crate) fn limit_kernel(name: &str) -> bool {
    let Some(rank) = KERNELS.iter().position(|&k| k == name) else { return false };
    CEILING.store(rank, std::sync::atomic::Ordering::Relaxed);
    true
}

/// The name of the kernel the products use now.
pub(crate) fn kernel_name() -> &'static str {
    Kernel::detect().name()
}

impl Kernel {
    /// The best kernel this processor runs (within the ceiling).
    fn detect() -> Kernel {
        let ceiling = CEILING.load(std::sync::atomic::Ordering::Relaxed);
        Kernel::available().iter().copied().find(|k| k.rank() >= ceiling).unwrap_or(Kernel::Portable)
    }

    /// Every kernel this processor runs, the best first (the portable one last).
    fn available() -> &'static [Kernel] {
        static AVAILABLE: std::sync::OnceLock<Vec<Kernel>> = std::sync::OnceLock::new();
        AVAILABLE.get_or_init(|| {
            #[allow(unused_mut)]
            let mut kernels = Vec::new();
            #[cfg(target_arch = "x86_64")]
            {
                kernels.extend(V4Vnni::try_new().map(Kernel::Vnni));
                kernels.extend(V4::try_new().map(Kernel::Avx512));
                kernels.extend(V3::try_new().map(Kernel::Avx2));
            }
            kernels.push(Kernel::Portable);
            kernels
        })
    }

    /// Its place in [`KERNELS`].
    fn rank(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni(_) => 0,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512(_) => 1,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2(_) => 2,
            Kernel::Portable => 3,
        }
    }

    fn name(self) -> &'static str {
        KERNELS[self.rank()]
    }

    /// Rows per tile.
    fn height(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512(_) | Kernel::Vnni(_) => 8,
            _ => 4,
        }
    }

    /// One tile: `span` of the rows' words holds, group by group, one word per row; the sums are
    /// written into `sums` (`first`) or added to them.
    fn tile(self, rows: &Rows, span: std::ops::Range<usize>, lines: &[QLine], sums: &mut [[i32; NR]], first: bool) {
        #[cfg(target_arch = "x86_64")]
        macro_rules! by_height {
            ($simd:expr, $tile:ident { $($field:ident: $value:expr),* }) => {
                match sums.len() {
                    8 => $simd.vectorize($tile::<8> { $($field: $value,)* lines, sums, first }),
                    7 => $simd.vectorize($tile::<7> { $($field: $value,)* lines, sums, first }),
                    6 => $simd.vectorize($tile::<6> { $($field: $value,)* lines, sums, first }),
                    5 => $simd.vectorize($tile::<5> { $($field: $value,)* lines, sums, first }),
                    4 => $simd.vectorize($tile::<4> { $($field: $value,)* lines, sums, first }),
                    3 => $simd.vectorize($tile::<3> { $($field: $value,)* lines, sums, first }),
                    2 => $simd.vectorize($tile::<2> { $($field: $value,)* lines, sums, first }),
                    _ => $simd.vectorize($tile::<1> { $($field: $value,)* lines, sums, first }),
                }
            };
        }
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2(simd) => {
                let (words, magnitudes) = (&rows.words[span.clone()], &rows.magnitudes[span]);
                by_height!(simd, Avx2Tile { simd: simd, words: words, magnitudes: magnitudes })
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512(simd) => {
                let wide = &rows.wide[span];
                by_height!(simd, Avx512Tile { f: simd.avx512f, bw: simd.avx512bw, wide: wide })
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni(simd) => {
                let wide = &rows.wide[span];
                by_height!(simd, Avx512Tile { f: simd.avx512f, bw: simd.avx512bw, wide: wide })
            }
            Kernel::Portable => portable_tile(&rows.words[span], lines, sums, first),
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

#[cfg(target_arch = "x86_64")]
struct Avx512Tile<'a, const R: usize> {
    f: pulp::core_arch::x86::Avx512f,
    bw: pulp::core_arch::x86::Avx512bw,
    wide: &'a [i64],
    lines: &'a [QLine],
    sums: &'a mut [[i32; NR]],
    first: bool,
}

#[cfg(target_arch = "x86_64")]
impl<const R: usize> pulp::NullaryFnOnce for Avx512Tile<'_, R> {
    type Output = ();

    #[inline(always)]
    fn call(self) {
        use std::arch::x86_64::{__m256i, __m512i};
        let Avx512Tile { f, bw, wide, lines, sums: out, first } = self;
        let zero = f._mm512_setzero_si512();
        // Per row, columns 0–7 then 8–15; in each, lane 2c sums column c's inner steps 0–1 of
        // every group, lane 2c + 1 its steps 2–3.
        let mut sums = [[zero; 2]; R];
        for (line, x) in lines.iter().zip(wide.chunks_exact(R)) {
            let halves: [__m256i; 2] = pulp::cast(line.0);
            let w = halves.map(|h| bw._mm512_cvtepi8_epi16(h));
            for r in 0..R {
                let x = f._mm512_set1_epi64(x[r]);
                for (sum, &w) in sums[r].iter_mut().zip(&w) {
                    *sum = f._mm512_add_epi32(*sum, bw._mm512_madd_epi16(w, x));
                }
            }
        }
        for (out, sums) in out.iter_mut().zip(sums) {
            let lanes: [[i32; NR]; 2] = sums.map(|s: __m512i| pulp::cast(s));
            let mut sums = [0i32; NR];
            for (half, lanes) in lanes.iter().enumerate() {
                for c in 0..NR / 2 {
                    sums[half * NR / 2 + c] = lanes[2 * c] + lanes[2 * c + 1];
                }
            }
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
        let kernels = Kernel::available();
        for &(m, n, k) in &[
            (1, 1, 1),
            (1, 17, 3),
            (3, 16, 5),
            (4, 15, 64),
            (5, 33, 257),
            (13, 40, 513),
            (70, 31, 300),
            (150, 49, 260),
            (8, 16, 12),
            (16, 1000, 64),
            (6, 20, 4 * KG * 2 + 5),
            (130, 20, 4 * KG + 3),
        ] {
            let x = values(m * k, 1);
            let rows = values(n * k, 2);
            let want = quantized_reference(&x, &rows, m, n, k);
            let packed = QPacked::from_rows(&rows, n, k);
            for &kernel in kernels {
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
