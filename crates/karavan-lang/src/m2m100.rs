//! The M2M100 encoder–decoder (NLLB-200's architecture), on candle, from a Hugging Face checkpoint
//! directory (`config.json` and `model.safetensors` or its shards).
//!
//! Pre-norm transformer layers with sinusoidal positions (counted from the padding id + 1), word
//! embeddings scaled by √d, and the output projection tied to the embeddings. As in the encoder of
//! [`crate::encoder`], sequences are concatenated without padding and every linear layer is one
//! matrix product over all their tokens, weights kept as `[in, out]`; attention runs per sequence.
//!
//! Decoding is incremental: each hypothesis keeps its self-attention keys and values (the KV cache)
//! and reads the cross-attention keys and values of its source, computed once for every decoder
//! layer in one product when the source is encoded and shared by all the source's beams.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::encoder::{Dense, Norm, Weights, candle_error, in_place, parallel_rows, read, softmax, threads};
use crate::gemm::{Precision, Weight};
use crate::models::ModelError;

/// The activation between a layer's two feed-forward products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Gelu,
}

/// What `config.json` says about the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_heads: usize,
    pub decoder_heads: usize,
    pub encoder_ffn: usize,
    pub decoder_ffn: usize,
    pub max_positions: usize,
    pub scale_embedding: bool,
    pub activation: Activation,
    pub pad: u32,
    pub eos: u32,
    pub decoder_start: u32,
    /// Whether generation forces `</s>` as the last token when the length runs out.
    pub forced_eos: bool,
}

fn invalid(message: impl std::fmt::Display) -> ModelError {
    ModelError::Invalid(format!("translation model: {message}"))
}

impl Config {
    pub fn from_json(json: &Value) -> Result<Config, ModelError> {
        let model_type = json.get("model_type").and_then(Value::as_str).unwrap_or("");
        if model_type != "m2m_100" {
            return Err(invalid(format!("config.json: model_type {model_type:?} is not m2m_100 (NLLB-200 or M2M100)")));
        }
        let int = |name: &str, default: Option<u64>| -> Result<usize, ModelError> {
            json.get(name)
                .and_then(Value::as_u64)
                .or(default)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| invalid(format!("config.json: no {name}")))
        };
        let activation = match json.get("activation_function").and_then(Value::as_str).unwrap_or("relu") {
            "relu" => Activation::Relu,
            "gelu" => Activation::Gelu,
            other => return Err(invalid(format!("config.json: activation {other:?} is not supported"))),
        };
        let token = |name: &str, default: u64| -> Result<u32, ModelError> {
            match json.get(name) {
                None | Some(Value::Null) => Ok(default as u32),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_array().and_then(|a| a.first()).and_then(Value::as_u64))
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| invalid(format!("config.json: {name} is not a token id"))),
            }
        };
        let config = Config {
            vocab_size: int("vocab_size", None)?,
            d_model: int("d_model", None)?,
            encoder_layers: int("encoder_layers", None)?,
            decoder_layers: int("decoder_layers", None)?,
            encoder_heads: int("encoder_attention_heads", None)?,
            decoder_heads: int("decoder_attention_heads", None)?,
            encoder_ffn: int("encoder_ffn_dim", None)?,
            decoder_ffn: int("decoder_ffn_dim", None)?,
            max_positions: int("max_position_embeddings", Some(1024))?,
            scale_embedding: json.get("scale_embedding").and_then(Value::as_bool).unwrap_or(true),
            activation,
            pad: token("pad_token_id", 1)?,
            eos: token("eos_token_id", 2)?,
            decoder_start: token("decoder_start_token_id", 2)?,
            forced_eos: json.get("forced_eos_token_id").is_some_and(|v| !v.is_null()),
        };
        let c = &config;
        if c.d_model < 4 || !c.d_model.is_multiple_of(2) || c.vocab_size == 0 || c.max_positions < 4 {
            return Err(invalid(
                "config.json: d_model must be even and at least 4, the vocabulary not empty, max_position_embeddings at least 4",
            ));
        }
        if c.encoder_heads == 0
            || c.decoder_heads == 0
            || !c.d_model.is_multiple_of(c.encoder_heads)
            || !c.d_model.is_multiple_of(c.decoder_heads)
        {
            return Err(invalid("config.json: d_model is not a multiple of the attention heads"));
        }
        if c.d_model > 65536
            || c.vocab_size > 4 << 20
            || c.max_positions > 1 << 20
            || c.encoder_layers + c.decoder_layers > 512
        {
            return Err(invalid("config.json: dimensions beyond any published model"));
        }
        if [c.pad, c.eos, c.decoder_start].iter().any(|&t| t as usize >= c.vocab_size) {
            return Err(invalid("config.json: a special token id is outside the vocabulary"));
        }
        Ok(config)
    }
}

/// The safetensors files of a checkpoint: `model.safetensors`, or the shards its index names.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(invalid(format!(
            "{}: no model.safetensors or model.safetensors.index.json (a PyTorch .bin checkpoint must be \
             converted to safetensors first)",
            dir.display()
        )));
    }
    let json: Value = serde_json::from_slice(&std::fs::read(&index).map_err(invalid)?)
        .map_err(|e| invalid(format!("model.safetensors.index.json: {e}")))?;
    let map = json
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("model.safetensors.index.json: no weight_map"))?;
    let mut files: Vec<String> = map.values().filter_map(Value::as_str).map(String::from).collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(invalid("model.safetensors.index.json: the weight map is empty"));
    }
    let mut paths = Vec::with_capacity(files.len());
    for file in files {
        // A shard is a file beside the index, never a path elsewhere.
        if file.contains('/') || file.contains('\\') || file.starts_with('.') {
            return Err(invalid(format!("model.safetensors.index.json: shard {file:?} is not a file name")));
        }
        paths.push(dir.join(file));
    }
    Ok(paths)
}

/// Every tensor of the checkpoint by name, without the `model.` prefix, in f32.
fn load_tensors(dir: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    let mut tensors = HashMap::new();
    for path in weight_files(dir)? {
        let loaded = candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        for (name, tensor) in loaded {
            let name = name.strip_prefix("model.").map(String::from).unwrap_or(name);
            tensors.insert(name, tensor);
        }
    }
    Ok(tensors)
}

struct Attention {
    /// Query, key and value side by side, `[d, 3d]` (self-attention); or the query alone, `[d, d]`
    /// (cross-attention, whose keys and values are in the model's `cross_kv`).
    input: Dense,
    out: Dense,
    norm: Norm,
}

struct FeedForward {
    fc1: Dense,
    fc2: Dense,
    norm: Norm,
}

struct EncoderLayer {
    attention: Attention,
    ffn: FeedForward,
}

struct DecoderLayer {
    attention: Attention,
    cross: Attention,
    ffn: FeedForward,
}

/// An M2M100 / NLLB-200 model, ready to translate.
pub struct M2m100 {
    pub config: Config,
    /// The output projection (`[vocab, d]` as stored), packed: with tied weights, as most
    /// checkpoints have, also the word-embedding table, read back row by row.
    head: Weight,
    /// The word embeddings `[vocab, d]`, for checkpoints whose output projection is not tied to them.
    untied_embeddings: Option<Vec<f32>>,
    embed_scale: f32,
    /// The sinusoidal position table, `[max_positions + 2, d]`.
    positions: Vec<f32>,
    encoder: Vec<EncoderLayer>,
    encoder_norm: Norm,
    decoder: Vec<DecoderLayer>,
    decoder_norm: Norm,
    /// Every decoder layer's cross-attention keys and values, `[d, layers × 2d]`.
    cross_kv: Dense,
}

impl std::fmt::Debug for M2m100 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("M2m100").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The sinusoidal position embeddings, computed in f32 as transformers computes them; row
/// `padding` is zero.
fn sinusoids(rows: usize, d: usize, padding: usize) -> Vec<f32> {
    let half = d / 2;
    let step = (10000f64.ln() / (half as f64 - 1.0)) as f32;
    let frequencies: Vec<f32> = (0..half).map(|i| (i as f32 * -step).exp()).collect();
    let mut table = vec![0f32; rows * d];
    for (p, row) in table.chunks_exact_mut(d).enumerate() {
        if p == padding {
            continue;
        }
        for (i, &f) in frequencies.iter().enumerate() {
            let angle = p as f32 * f;
            row[i] = angle.sin();
            row[half + i] = angle.cos();
        }
    }
    table
}

/// Where a sequence's tokens are in a concatenated batch.
type Bounds = [(usize, usize)];

/// What the encoder leaves for the decoder: per source, every decoder layer's cross-attention keys
/// and values, `[tokens, layers × 2d]`.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub tokens: usize,
    cross: Vec<f32>,
}

/// The decoder's state for a set of hypotheses: each one's source and self-attention cache.
#[derive(Debug, Clone)]
pub struct DecoderState {
    hypotheses: Vec<Hypothesis>,
    /// The number of tokens each hypothesis has been fed.
    step: usize,
}

#[derive(Debug, Clone)]
struct Hypothesis {
    source: usize,
    /// Per layer, the keys and values so far, each `[step, d]`.
    cache: Vec<(Vec<f32>, Vec<f32>)>,
}

impl DecoderState {
    /// A state for hypotheses reading the sources `sources` (indices into the encoded batch).
    pub fn new(model: &M2m100, sources: &[usize]) -> DecoderState {
        let layers = model.config.decoder_layers;
        DecoderState {
            hypotheses: sources
                .iter()
                .map(|&source| Hypothesis { source, cache: vec![(Vec::new(), Vec::new()); layers] })
                .collect(),
            step: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.hypotheses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hypotheses.is_empty()
    }

    /// Keeps hypotheses `indices` of the current ones, in that order (an index may repeat: a beam
    /// that continues in two ways).
    pub fn reorder(&mut self, indices: &[usize]) {
        let mut last_use = vec![usize::MAX; self.hypotheses.len()];
        for (k, &i) in indices.iter().enumerate() {
            last_use[i] = k;
        }
        let mut old: Vec<Option<Hypothesis>> = std::mem::take(&mut self.hypotheses).into_iter().map(Some).collect();
        // Every use but the last clones; the last takes.
        self.hypotheses = indices
            .iter()
            .enumerate()
            .filter_map(|(k, &i)| if last_use[i] == k { old[i].take() } else { old[i].clone() })
            .collect();
    }
}

impl M2m100 {
    /// Loads a checkpoint directory.
    pub fn load(dir: &Path) -> Result<M2m100, ModelError> {
        M2m100::load_with(dir, Precision::Float32)
    }

    /// Loads a checkpoint directory with its linear layers (and output projection) in `precision`.
    pub fn load_with(dir: &Path, precision: Precision) -> Result<M2m100, ModelError> {
        let json: Value = serde_json::from_slice(
            &std::fs::read(dir.join("config.json")).map_err(|e| invalid(format!("config.json: {e}")))?,
        )
        .map_err(|e| invalid(format!("config.json: {e}")))?;
        let config = Config::from_json(&json)?;
        M2m100::new_with(config, load_tensors(dir)?, precision)
    }

    /// A model from its configuration and its tensors by Hugging Face name (without `model.`).
    pub fn new(config: Config, tensors: HashMap<String, Tensor>) -> Result<M2m100, ModelError> {
        M2m100::new_with(config, tensors, Precision::Float32)
    }

    /// A model from its configuration and tensors, its linear layers in `precision`.
    pub fn new_with(
        config: Config,
        mut tensors: HashMap<String, Tensor>,
        precision: Precision,
    ) -> Result<M2m100, ModelError> {
        let c = &config;
        let d = c.d_model;
        let embeddings = ["shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"]
            .iter()
            .find_map(|name| tensors.remove(*name))
            .or_else(|| tensors.get("lm_head.weight").cloned())
            .ok_or_else(|| invalid("no shared.weight (the word embeddings)"))?;
        if embeddings.dims() != [c.vocab_size, d] {
            return Err(invalid(format!(
                "the word embeddings are {:?}, not [{}, {d}]",
                embeddings.dims(),
                c.vocab_size
            )));
        }
        let flat =
            |t: Tensor| t.to_dtype(DType::F32).and_then(|t| t.flatten_all()?.to_vec1::<f32>()).map_err(candle_error);
        let embeddings = flat(embeddings)?;
        let (head, untied_embeddings) = match tensors.remove("lm_head.weight") {
            Some(head) if head.dims() != [c.vocab_size, d] => {
                return Err(invalid("lm_head.weight has the wrong shape"));
            }
            Some(head) => {
                let head = flat(head)?;
                let untied = (head != embeddings).then_some(embeddings);
                (Weight::from_rows(&head, c.vocab_size, d, precision), untied)
            }
            None => (Weight::from_rows(&embeddings, c.vocab_size, d, precision), None),
        };
        let mut weights = Weights { tensors, precision, ..Default::default() };
        let eps = 1e-5;
        // A layer's `self_attn` (query, key and value in one product) or `encoder_attn` (the query
        // alone; its keys and values go into `cross_kv`), with its layer norm.
        let attention = |w: &mut Weights, p: &str, module: &str| -> Result<Attention, ModelError> {
            let projections: &[&str] =
                if module == "self_attn" { &["q_proj", "k_proj", "v_proj"] } else { &["q_proj"] };
            let names: Vec<String> = projections.iter().map(|n| format!("{p}.{module}.{n}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            Ok(Attention {
                input: w.dense(&names, d, d)?,
                out: w.dense(&[&format!("{p}.{module}.out_proj")], d, d)?,
                norm: w.norm(&format!("{p}.{module}_layer_norm"), d, eps)?,
            })
        };
        let ffn = |w: &mut Weights, p: &str, inner: usize| -> Result<FeedForward, ModelError> {
            Ok(FeedForward {
                fc1: w.dense(&[&format!("{p}.fc1")], d, inner)?,
                fc2: w.dense(&[&format!("{p}.fc2")], inner, d)?,
                norm: w.norm(&format!("{p}.final_layer_norm"), d, eps)?,
            })
        };
        let mut encoder = Vec::with_capacity(c.encoder_layers);
        for l in 0..c.encoder_layers {
            let p = format!("encoder.layers.{l}");
            encoder.push(EncoderLayer {
                attention: attention(&mut weights, &p, "self_attn")?,
                ffn: ffn(&mut weights, &p, c.encoder_ffn)?,
            });
        }
        let mut decoder = Vec::with_capacity(c.decoder_layers);
        let mut cross_names = Vec::with_capacity(2 * c.decoder_layers);
        for l in 0..c.decoder_layers {
            let p = format!("decoder.layers.{l}");
            decoder.push(DecoderLayer {
                attention: attention(&mut weights, &p, "self_attn")?,
                cross: attention(&mut weights, &p, "encoder_attn")?,
                ffn: ffn(&mut weights, &p, c.decoder_ffn)?,
            });
            cross_names.push(format!("{p}.encoder_attn.k_proj"));
            cross_names.push(format!("{p}.encoder_attn.v_proj"));
        }
        let cross_names: Vec<&str> = cross_names.iter().map(String::as_str).collect();
        let cross_kv = weights.dense(&cross_names, d, d)?;
        let encoder_norm = weights.norm("encoder.layer_norm", d, eps)?;
        let decoder_norm = weights.norm("decoder.layer_norm", d, eps)?;
        let embed_scale = if c.scale_embedding { (d as f64).sqrt() as f32 } else { 1.0 };
        let positions = sinusoids(c.max_positions + 2, d, c.pad as usize);
        Ok(M2m100 {
            config,
            head,
            untied_embeddings,
            embed_scale,
            positions,
            encoder,
            encoder_norm,
            decoder,
            decoder_norm,
            cross_kv,
        })
    }

    /// The longest sequence, in tokens, the position table covers.
    pub fn max_tokens(&self) -> usize {
        self.config.max_positions - 1
    }

    /// `[ids, d]`: the scaled word embeddings of `ids` plus the embeddings of `positions`.
    fn embed(&self, ids: &[u32], positions: impl Iterator<Item = usize>) -> Result<Tensor, ModelError> {
        let d = self.config.d_model;
        let mut x = vec![0f32; ids.len() * d];
        let rows = self.positions.len() / d;
        for ((row, &id), p) in x.chunks_exact_mut(d).zip(ids).zip(positions) {
            let outside = || invalid(format!("token id {id} is outside the vocabulary"));
            match &self.untied_embeddings {
                Some(table) => {
                    let start = id as usize * d;
                    row.copy_from_slice(table.get(start..start + d).ok_or_else(outside)?);
                }
                None => self.head.row(id as usize, row).ok_or_else(outside)?,
            }
            if p >= rows {
                return Err(invalid("a sequence longer than the model's positions"));
            }
            let position = &self.positions[p * d..(p + 1) * d];
            for (v, q) in row.iter_mut().zip(position) {
                *v = *v * self.embed_scale + q;
            }
        }
        Tensor::from_vec(x, (ids.len(), d), &Device::Cpu).map_err(candle_error)
    }

    /// The encoder's last hidden states of each source (`[tokens, d]` each), for inspection.
    pub fn encoder_states(&self, sources: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, ModelError> {
        let (states, bounds) = self.run_encoder(sources)?;
        let d = self.config.d_model;
        read(&states, |x| bounds.iter().map(|&(start, len)| x[start * d..(start + len) * d].to_vec()).collect())
            .map_err(candle_error)
    }

    /// Encodes sources (token ids, language code and `</s>` included) for decoding.
    pub fn encode(&self, sources: &[Vec<u32>]) -> Result<Vec<Encoded>, ModelError> {
        let (states, bounds) = self.run_encoder(sources)?;
        let width = 2 * self.config.d_model * self.config.decoder_layers;
        let cross = self.cross_kv.product(&states).map_err(candle_error)?;
        in_place(&cross, |values| {
            parallel_rows(
                values,
                width,
                threads(),
                #[inline(always)]
                |_, rows| add_bias(rows, &self.cross_kv.bias),
            );
            Ok(())
        })
        .map_err(candle_error)?;
        read(&cross, |values| {
            bounds
                .iter()
                .map(|&(start, len)| Encoded {
                    tokens: len,
                    cross: values[start * width..(start + len) * width].to_vec(),
                })
                .collect()
        })
        .map_err(candle_error)
    }

    fn run_encoder(&self, sources: &[Vec<u32>]) -> Result<(Tensor, Vec<(usize, usize)>), ModelError> {
        let c = &self.config;
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut bounds = Vec::with_capacity(sources.len());
        for source in sources {
            if source.is_empty() || source.len() > self.max_tokens() {
                return Err(invalid(format!(
                    "a source of {} tokens (1 to {} can be encoded)",
                    source.len(),
                    self.max_tokens()
                )));
            }
            bounds.push((ids.len(), source.len()));
            ids.extend_from_slice(source);
            positions.extend((0..source.len()).map(|i| c.pad as usize + 1 + i));
        }
        if ids.is_empty() {
            return Ok((Tensor::zeros((0, c.d_model), DType::F32, &Device::Cpu).map_err(candle_error)?, bounds));
        }
        let mut x = self.embed(&ids, positions.into_iter())?;
        let threads = threads();
        for layer in &self.encoder {
            let h = normalized(&x, &layer.attention.norm, threads)?;
            let qkv = layer.attention.input.product(&h).map_err(candle_error)?;
            let context = read(&qkv, |qkv| {
                self_attention(qkv, &layer.attention.input.bias, &bounds, c.d_model, c.encoder_heads, threads)
            })
            .map_err(candle_error)??;
            let context = Tensor::from_vec(context, (ids.len(), c.d_model), &Device::Cpu).map_err(candle_error)?;
            x = residual(&x, &layer.attention.out, &context, threads)?;
            x = self.feed_forward(x, &layer.ffn, threads)?;
        }
        Ok((normalized(&x, &self.encoder_norm, threads)?, bounds))
    }

    fn feed_forward(&self, x: Tensor, ffn: &FeedForward, threads: usize) -> Result<Tensor, ModelError> {
        let h = normalized(&x, &ffn.norm, threads)?;
        let middle = ffn.fc1.product(&h).map_err(candle_error)?;
        let width = ffn.fc1.bias.len();
        let activation = self.config.activation;
        in_place(&middle, |values| {
            parallel_rows(
                values,
                width,
                threads,
                #[inline(always)]
                |_, rows| bias_activation(rows, &ffn.fc1.bias, activation),
            );
            Ok(())
        })
        .map_err(candle_error)?;
        residual(&x, &ffn.fc2, &middle, threads)
    }

    /// Feeds one token to each hypothesis and returns the next-token logits, `[hypotheses, vocab]`.
    /// `sources` is the encoded batch the hypotheses read.
    pub fn decode_step(
        &self,
        sources: &[Encoded],
        state: &mut DecoderState,
        tokens: &[u32],
    ) -> Result<Vec<f32>, ModelError> {
        let mut logits = Vec::new();
        self.decode_step_into(sources, state, tokens, &mut logits)?;
        Ok(logits)
    }

    /// [`M2m100::decode_step`] into `logits`, which a decoding loop keeps from step to step: the
    /// `[hypotheses, vocab]` buffer (a quarter of a gigabyte at beam 4 over 16 sources) is then
    /// allocated once, not once per step.
    pub fn decode_step_into(
        &self,
        sources: &[Encoded],
        state: &mut DecoderState,
        tokens: &[u32],
        logits: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        self.step(sources, state, tokens, logits, true)
    }

    /// Feeds one token to each hypothesis without computing the next-token logits: for a step
    /// whose next token is forced (the target language after the start token), where the output
    /// projection (a quarter of a step's work at d_model 1024 and a 256k vocabulary) would be
    /// thrown away.
    pub fn advance(&self, sources: &[Encoded], state: &mut DecoderState, tokens: &[u32]) -> Result<(), ModelError> {
        self.step(sources, state, tokens, &mut Vec::new(), false)
    }

    fn step(
        &self,
        sources: &[Encoded],
        state: &mut DecoderState,
        tokens: &[u32],
        logits: &mut Vec<f32>,
        want_logits: bool,
    ) -> Result<(), ModelError> {
        let c = &self.config;
        let d = c.d_model;
        let n = tokens.len();
        if n != state.hypotheses.len() {
            return Err(invalid("one token per hypothesis"));
        }
        if state.hypotheses.iter().any(|h| h.source >= sources.len()) {
            return Err(invalid("a hypothesis reads a source that is not encoded"));
        }
        if n == 0 {
            logits.clear();
            return Ok(());
        }
        let position = c.pad as usize + 1 + state.step;
        let mut x = self.embed(tokens, std::iter::repeat(position))?;
        let threads = threads();
        let heads = c.decoder_heads;
        let layers = c.decoder_layers;
        for (l, layer) in self.decoder.iter().enumerate() {
            // Self-attention over each hypothesis's tokens so far.
            let h = normalized(&x, &layer.attention.norm, threads)?;
            let qkv = layer.attention.input.product(&h).map_err(candle_error)?;
            let bias = &layer.attention.input.bias;
            let mut queries = vec![0f32; n * d];
            read(&qkv, |qkv| {
                for ((row, hypothesis), query) in
                    qkv.chunks_exact(3 * d).zip(&mut state.hypotheses).zip(queries.chunks_exact_mut(d))
                {
                    let (keys, values) = &mut hypothesis.cache[l];
                    keys.extend(row[d..2 * d].iter().zip(&bias[d..2 * d]).map(|(v, b)| v + b));
                    values.extend(row[2 * d..].iter().zip(&bias[2 * d..]).map(|(v, b)| v + b));
                    query.iter_mut().zip(&row[..d]).zip(&bias[..d]).for_each(|((q, v), b)| *q = v + b);
                }
            })
            .map_err(candle_error)?;
            let mut context = vec![0f32; n * d];
            let hypotheses = &state.hypotheses;
            parallel_rows(
                &mut context,
                d,
                threads,
                #[inline(always)]
                |first, rows| {
                    for (i, out) in rows.chunks_exact_mut(d).enumerate() {
                        let b = first + i;
                        let (keys, values) = &hypotheses[b].cache[l];
                        attend_one(&queries[b * d..(b + 1) * d], keys, values, d, 0, 0, heads, out);
                    }
                },
            );
            let context = Tensor::from_vec(context, (n, d), &Device::Cpu).map_err(candle_error)?;
            x = residual(&x, &layer.attention.out, &context, threads)?;

            // Cross-attention over the hypothesis's source.
            let h = normalized(&x, &layer.cross.norm, threads)?;
            let q = layer.cross.input.product(&h).map_err(candle_error)?;
            let mut context = vec![0f32; n * d];
            read(&q, |q| {
                parallel_rows(
                    &mut context,
                    d,
                    threads,
                    #[inline(always)]
                    |first, rows| {
                        let mut query = vec![0f32; d];
                        for (i, out) in rows.chunks_exact_mut(d).enumerate() {
                            let b = first + i;
                            query
                                .iter_mut()
                                .zip(&q[b * d..(b + 1) * d])
                                .zip(&layer.cross.input.bias)
                                .for_each(|((q, v), bias)| *q = v + bias);
                            let source = &sources[hypotheses[b].source];
                            let width = 2 * d * layers;
                            attend_one(
                                &query,
                                &source.cross,
                                &source.cross,
                                width,
                                l * 2 * d,
                                l * 2 * d + d,
                                heads,
                                out,
                            );
                        }
                    },
                );
            })
            .map_err(candle_error)?;
            let context = Tensor::from_vec(context, (n, d), &Device::Cpu).map_err(candle_error)?;
            x = residual(&x, &layer.cross.out, &context, threads)?;
            x = self.feed_forward(x, &layer.ffn, threads)?;
        }
        state.step += 1;
        if !want_logits {
            logits.clear();
            return Ok(());
        }
        let x = normalized(&x, &self.decoder_norm, threads)?;
        // Every value is written by the product: only a longer buffer needs new (zeroed) values.
        logits.resize(n * c.vocab_size, 0.0);
        read(&x, |x| self.head.product_into(x, logits, threads)).map_err(candle_error)
    }
}

/// A copy of `x` with each row layer-normalised.
fn normalized(x: &Tensor, norm: &Norm, threads: usize) -> Result<Tensor, ModelError> {
    let h = x.copy().map_err(candle_error)?;
    let width = x.dim(1).map_err(candle_error)?;
    in_place(&h, |values| {
        parallel_rows(
            values,
            width,
            threads,
            #[inline(always)]
            |_, rows| rows.chunks_exact_mut(width).for_each(|row| norm.apply(row)),
        );
        Ok(())
    })
    .map_err(candle_error)?;
    Ok(h)
}

/// `x + input · dense + bias`, in place in the product, which it returns.
fn residual(x: &Tensor, dense: &Dense, input: &Tensor, threads: usize) -> Result<Tensor, ModelError> {
    let out = dense.product(input).map_err(candle_error)?;
    let width = dense.bias.len();
    read(x, |x| {
        in_place(&out, |values| {
            parallel_rows(
                values,
                width,
                threads,
                #[inline(always)]
                |first, rows| {
                    for (row, input) in rows.chunks_exact_mut(width).zip(x[first * width..].chunks_exact(width)) {
                        for ((v, b), r) in row.iter_mut().zip(&dense.bias).zip(input) {
                            *v += b + r;
                        }
                    }
                },
            );
            Ok(())
        })
    })
    .map_err(candle_error)?
    .map_err(candle_error)?;
    Ok(out)
}

#[inline(always)]
fn add_bias(values: &mut [f32], bias: &[f32]) {
    for row in values.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
}

#[inline(always)]
fn bias_activation(values: &mut [f32], bias: &[f32], activation: Activation) {
    for row in values.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            let x = *v + b;
            *v = match activation {
                Activation::Relu => x.max(0.0),
                Activation::Gelu => 0.5 * x * (1.0 + crate::encoder::erf(x * std::f32::consts::FRAC_1_SQRT_2)),
            };
        }
    }
}

/// Self-attention of each sequence on its own tokens: the context vectors `[tokens, d]` from the
/// query, key and value projections `qkv` (`[tokens, 3d]`, before `bias`).
fn self_attention(
    qkv: &[f32],
    bias: &[f32],
    bounds: &Bounds,
    d: usize,
    heads: usize,
    threads: usize,
) -> Result<Vec<f32>, ModelError> {
    let tokens = qkv.len() / (3 * d);
    let mut context = vec![0f32; tokens * d];
    // Sequences start at known rows, so each thread takes whole rows and finds their sequence.
    let owner: Vec<usize> = bounds.iter().enumerate().flat_map(|(s, &(_, len))| std::iter::repeat_n(s, len)).collect();
    parallel_rows(
        &mut context,
        d,
        threads,
        #[inline(always)]
        |first, rows| {
            let mut keys = Vec::new();
            let mut values = Vec::new();
            let mut loaded = usize::MAX;
            let mut query = vec![0f32; d];
            for (i, out) in rows.chunks_exact_mut(d).enumerate() {
                let t = first + i;
                let s = owner[t];
                let (start, len) = bounds[s];
                if loaded != s {
                    keys.clear();
                    values.clear();
                    for row in qkv[start * 3 * d..(start + len) * 3 * d].chunks_exact(3 * d) {
                        keys.extend(row[d..2 * d].iter().zip(&bias[d..2 * d]).map(|(v, b)| v + b));
                        values.extend(row[2 * d..].iter().zip(&bias[2 * d..]).map(|(v, b)| v + b));
                    }
                    loaded = s;
                }
                let row = &qkv[t * 3 * d..t * 3 * d + d];
                query.iter_mut().zip(row).zip(&bias[..d]).for_each(|((q, v), b)| *q = v + b);
                attend_one(&query, &keys, &values, d, 0, 0, heads, out);
            }
        },
    );
    Ok(context)
}

/// Attention of one query (`[d]`, before scaling) on rows of keys and values: key `j` is
/// `keys[j * stride + key_at..][..d]`, value `j` is `values[j * stride + value_at..][..d]`. Writes
/// the context (`[d]`) into `out`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn attend_one(
    query: &[f32],
    keys: &[f32],
    values: &[f32],
    stride: usize,
    key_at: usize,
    value_at: usize,
    heads: usize,
    out: &mut [f32],
) {
    let d = query.len();
    let head = d / heads;
    let rows = keys.len() / stride;
    let scale = 1.0 / (head as f32).sqrt();
    let mut scores = vec![0f32; rows];
    out.fill(0.0);
    for h in 0..heads {
        let q = &query[h * head..(h + 1) * head];
        for (j, score) in scores.iter_mut().enumerate() {
            let k = &keys[j * stride + key_at + h * head..][..head];
            *score = dot(q, k) * scale;
        }
        softmax(&mut scores);
        let o = &mut out[h * head..(h + 1) * head];
        for (j, &p) in scores.iter().enumerate() {
            let v = &values[j * stride + value_at + h * head..][..head];
            o.iter_mut().zip(v).for_each(|(o, v)| *o += p * v);
        }
    }
}

/// `a · b` in eight running sums (so that it vectorises; a single running sum cannot be reordered).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (a, b) in a8.zip(b8) {
        for ((s, x), y) in sums.iter_mut().zip(a).zip(b) {
            *s += x * y;
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoids_match_the_definition() {
        let table = sinusoids(10, 8, 1);
        assert!(table[8..16].iter().all(|&v| v == 0.0), "the padding row is zero");
        // Row 3: sin(3 · 10000^(-i/3)) then cos.
        for i in 0..4 {
            let f = (-(i as f64) * 10000f64.ln() / 3.0).exp();
            assert!((table[3 * 8 + i] as f64 - (3.0 * f).sin()).abs() < 1e-5);
            assert!((table[3 * 8 + 4 + i] as f64 - (3.0 * f).cos()).abs() < 1e-5);
        }
    }

    #[test]
    fn dot_sums_every_product() {
        for len in [0, 1, 7, 8, 9, 64, 67] {
            let a: Vec<f32> = (0..len).map(|i| i as f32 * 0.5).collect();
            let b: Vec<f32> = (0..len).map(|i| 1.0 - i as f32).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()), "{len}");
        }
    }

    #[test]
    fn an_untied_output_projection_is_used_and_the_embeddings_kept() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/m2m100/nllb-2x2");
        let json: Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        let config = Config::from_json(&json).unwrap();
        let tensors = load_tensors(&dir).unwrap();
        let tied = M2m100::new(config.clone(), tensors.clone()).unwrap();
        assert!(tied.untied_embeddings.is_none(), "the fixture ties its output projection");
        // The same checkpoint with its own output projection, twice the embeddings: the decoder's
        // states are unchanged (they read the embeddings), so its logits are exactly doubled.
        let mut untied = tensors.clone();
        untied.insert("lm_head.weight".into(), (&tensors["shared.weight"] * 2.0).unwrap());
        let untied = M2m100::new(config, untied).unwrap();
        assert!(untied.untied_embeddings.is_some());
        let sources = vec![vec![tied.config.eos, 5, 6, 7, tied.config.eos]];
        let (a, b) = (tied.encode(&sources).unwrap(), untied.encode(&sources).unwrap());
        let (mut sa, mut sb) = (DecoderState::new(&tied, &[0]), DecoderState::new(&untied, &[0]));
        for token in [tied.config.eos, 9, 11] {
            let la = tied.decode_step(&a, &mut sa, &[token]).unwrap();
            let lb = untied.decode_step(&b, &mut sb, &[token]).unwrap();
            assert!(la.iter().zip(&lb).all(|(x, y)| (2.0 * x - y).abs() <= 1e-5 * (1.0 + y.abs())));
        }
    }

    #[test]
    fn config_refuses_what_is_not_m2m100() {
        let ok = serde_json::json!({"model_type": "m2m_100", "vocab_size": 10, "d_model": 8, "encoder_layers": 1,
            "decoder_layers": 1, "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 4,
            "decoder_ffn_dim": 4});
        assert!(Config::from_json(&ok).is_ok());
        for (key, value) in [
            ("model_type", serde_json::json!("marian")),
            ("d_model", serde_json::json!(7)),
            ("encoder_attention_heads", serde_json::json!(3)),
            ("activation_function", serde_json::json!("swish")),
            ("vocab_size", serde_json::json!(2)),
            ("d_model", serde_json::json!("eight")),
        ] {
            let mut bad = ok.clone();
            bad[key] = value;
            assert!(Config::from_json(&bad).is_err(), "{key}");
        }
    }
}
