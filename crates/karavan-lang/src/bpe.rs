//! The SentencePiece BPE tokenizers of NLLB-200 and M2M100, from any of the files their checkpoints
//! ship:
//!
//! - `tokenizer.json` (Hugging Face tokenizers: a BPE model with its merges, a precompiled
//!   SentencePiece normaliser, the metaspace pre-tokenizer, the language codes as added tokens);
//! - `sentencepiece.bpe.model` alone (NLLB): the same tokenizer derived from the SentencePiece model
//!   the way transformers derives it (ids shifted by one behind `<s> <pad> </s> <unk>`, merges ranked
//!   by the merged piece, the 202 language codes and `<mask>` after the pieces);
//! - `sentencepiece.bpe.model` with `vocab.json` (M2M100): SentencePiece's own segmentation
//!   (whitespace trimmed and collapsed, merges by score, one `<unk>` per run of unknown characters), its
//!   pieces numbered by `vocab.json`, the 100 language tokens `__xx__` after them.
//!
//! Text from outside is always text: a `</s>` or `eng_Latn` inside it is not a special token.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::models::ModelError;
use crate::sentencepiece::{PieceType, SentencePieceModel};

/// U+2581, which SentencePiece writes for a space.
const METASPACE: char = '\u{2581}';

/// NLLB-200's language codes, in the order of their token ids.
pub const NLLB_LANGUAGES: &str = "ace_Arab ace_Latn acm_Arab acq_Arab aeb_Arab afr_Latn ajp_Arab aka_Latn amh_Ethi \
apc_Arab arb_Arab ars_Arab ary_Arab arz_Arab asm_Beng ast_Latn awa_Deva ayr_Latn azb_Arab azj_Latn bak_Cyrl bam_Latn \
ban_Latn bel_Cyrl bem_Latn ben_Beng bho_Deva bjn_Arab bjn_Latn bod_Tibt bos_Latn bug_Latn bul_Cyrl cat_Latn ceb_Latn \
ces_Latn cjk_Latn ckb_Arab crh_Latn cym_Latn dan_Latn deu_Latn dik_Latn dyu_Latn dzo_Tibt ell_Grek eng_Latn epo_Latn \
est_Latn eus_Latn ewe_Latn fao_Latn pes_Arab fij_Latn fin_Latn fon_Latn fra_Latn fur_Latn fuv_Latn gla_Latn gle_Latn \
glg_Latn grn_Latn guj_Gujr hat_Latn hau_Latn heb_Hebr hin_Deva hne_Deva hrv_Latn hun_Latn hye_Armn ibo_Latn ilo_Latn \
ind_Latn isl_Latn ita_Latn jav_Latn jpn_Jpan kab_Latn kac_Latn kam_Latn kan_Knda kas_Arab kas_Deva kat_Geor knc_Arab \
knc_Latn kaz_Cyrl kbp_Latn kea_Latn khm_Khmr kik_Latn kin_Latn kir_Cyrl kmb_Latn kon_Latn kor_Hang kmr_Latn lao_Laoo \
lvs_Latn lij_Latn lim_Latn lin_Latn lit_Latn lmo_Latn ltg_Latn ltz_Latn lua_Latn lug_Latn luo_Latn lus_Latn mag_Deva \
mai_Deva mal_Mlym mar_Deva min_Latn mkd_Cyrl plt_Latn mlt_Latn mni_Beng khk_Cyrl mos_Latn mri_Latn zsm_Latn mya_Mymr \
nld_Latn nno_Latn nob_Latn npi_Deva nso_Latn nus_Latn nya_Latn oci_Latn gaz_Latn ory_Orya pag_Latn pan_Guru pap_Latn \
pol_Latn por_Latn prs_Arab pbt_Arab quy_Latn ron_Latn run_Latn rus_Cyrl sag_Latn san_Deva sat_Beng scn_Latn shn_Mymr \
sin_Sinh slk_Latn slv_Latn smo_Latn sna_Latn snd_Arab som_Latn sot_Latn spa_Latn als_Latn srd_Latn srp_Cyrl ssw_Latn \
sun_Latn swe_Latn swh_Latn szl_Latn tam_Taml tat_Cyrl tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi taq_Latn taq_Tfng \
tpi_Latn tsn_Latn tso_Latn tuk_Latn tum_Latn tur_Latn twi_Latn tzm_Tfng uig_Arab ukr_Cyrl umb_Latn urd_Arab uzn_Latn \
vec_Latn vie_Latn war_Latn wol_Latn xho_Latn ydd_Hebr yor_Latn yue_Hant zho_Hans zho_Hant zul_Latn";

/// M2M100's language codes, in the order of their token ids (the tokens are `__xx__`).
pub const M2M100_LANGUAGES: &str = "af am ar ast az ba be bg bn br bs ca ceb cs cy da de el en es et fa ff fi fr fy \
ga gd gl gu ha he hi hr ht hu hy id ig ilo is it ja jv ka kk km kn ko lb lg ln lo lt lv mg mk ml mn mr ms my ne nl \
no ns oc or pa pl ps pt ro ru sd si sk sl so sq sr ss su sv sw ta th tl tn tr uk ur uz vi wo xh yi yo zh zu";

/// How a text becomes words before the merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// Hugging Face tokenizers: runs of spaces collapsed, `▁` prepended unless there, unknown
    /// characters fused into one `<unk>` when the model says so.
    Tokenizers { fuse_unk: bool, prepend: bool, collapse: bool },
    /// SentencePiece: leading and trailing spaces trimmed, runs collapsed, a dummy `▁` prefix, one
    /// `<unk>` per run of unknown characters.
    SentencePiece { trim: bool, dummy_prefix: bool },
}

/// Which family's conventions the tokens follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Nllb,
    M2m100,
}

#[derive(Debug)]
pub struct BpeTokenizer {
    /// Segmentation pieces by text.
    index: HashMap<String, u32>,
    /// `(left, right)` → `(rank, merged)`, by segmentation piece; the lowest rank merges first.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// The token id of each segmentation piece (`None`: the model does not know it).
    ids: Vec<Option<u32>>,
    flavour: Flavour,
    normalizer: Option<spm_precompiled::Precompiled>,
    /// Each token id's text, for decoding ("" where none).
    tokens: Vec<String>,
    /// Token ids decoding leaves out (control tokens, language codes).
    special: Vec<bool>,
    languages: HashMap<String, u32>,
    pub family: Family,
    pub bos: u32,
    pub pad: u32,
    pub eos: u32,
    pub unk: u32,
}

fn invalid(file: &str, message: impl std::fmt::Display) -> ModelError {
    ModelError::Invalid(format!("{file}: {message}"))
}

/// The files a tokenizer can be read from, in the order they are tried.
pub const TOKENIZER_FILES: [&str; 3] = ["tokenizer.json", "vocab.json", "sentencepiece.bpe.model"];

impl BpeTokenizer {
    /// The tokenizer of a checkpoint directory: `tokenizer.json` if there is one, else
    /// `sentencepiece.bpe.model` with `vocab.json` (M2M100) or alone (NLLB).
    pub fn load(dir: &Path) -> Result<BpeTokenizer, ModelError> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| invalid(name, e));
        if dir.join("tokenizer.json").is_file() {
            let json: Value =
                serde_json::from_slice(&read("tokenizer.json")?).map_err(|e| invalid("tokenizer.json", e))?;
            return BpeTokenizer::from_tokenizer_json(&json);
        }
        if !dir.join("sentencepiece.bpe.model").is_file() {
            return Err(ModelError::Invalid(format!(
                "{}: no tokenizer.json or sentencepiece.bpe.model",
                dir.display()
            )));
        }
        let model = SentencePieceModel::parse(&read("sentencepiece.bpe.model")?)?;
        if dir.join("vocab.json").is_file() {
            let vocab: Value = serde_json::from_slice(&read("vocab.json")?).map_err(|e| invalid("vocab.json", e))?;
            BpeTokenizer::m2m100(&model, &vocab)
        } else {
            BpeTokenizer::nllb(&model)
        }
    }

    /// From a Hugging Face `tokenizer.json` with a BPE model.
    pub fn from_tokenizer_json(json: &Value) -> Result<BpeTokenizer, ModelError> {
        let bad = |m: String| invalid("tokenizer.json", m);
        let model = json.get("model").ok_or_else(|| bad("no model".into()))?;
        let kind = model.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "BPE" {
            return Err(bad(format!("model type {kind:?} is not supported here (BPE only)")));
        }
        for unsupported in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if model.get(unsupported).is_some_and(|v| !v.is_null()) {
                return Err(bad(format!("{unsupported} is not supported")));
            }
        }
        if model.get("byte_fallback").and_then(Value::as_bool) == Some(true) {
            return Err(bad("byte_fallback is not supported".into()));
        }
        let vocab = model.get("vocab").and_then(Value::as_object).ok_or_else(|| bad("no vocab".into()))?;
        let mut entries = Vec::with_capacity(vocab.len());
        for (piece, id) in vocab {
            let id = id.as_u64().and_then(|id| u32::try_from(id).ok()).ok_or_else(|| bad(format!("{piece}: no id")))?;
            entries.push((piece.clone(), id));
        }
        let mut added = Vec::new();
        for token in json.get("added_tokens").and_then(Value::as_array).into_iter().flatten() {
            let content = token.get("content").and_then(Value::as_str);
            let id = token.get("id").and_then(Value::as_u64).and_then(|id| u32::try_from(id).ok());
            let (Some(content), Some(id)) = (content, id) else {
                return Err(bad("an added token has no content or id".into()));
            };
            added.push((content.to_string(), id, token.get("special").and_then(Value::as_bool).unwrap_or(false)));
        }
        let size =
            entries.iter().map(|e| e.1).chain(added.iter().map(|a| a.1)).map(|id| id as usize + 1).max().unwrap_or(0);
        if size > 16 << 20 {
            return Err(bad(format!("a token id of {size} is beyond any vocabulary")));
        }
        let mut tokens = vec![String::new(); size];
        let mut special = vec![false; size];
        let mut index = HashMap::with_capacity(entries.len());
        let mut ids = vec![None; size];
        for (piece, id) in &entries {
            tokens[*id as usize] = piece.clone();
            index.insert(piece.clone(), *id);
            ids[*id as usize] = Some(*id);
        }
        let mut languages = HashMap::new();
        for (content, id, is_special) in &added {
            tokens[*id as usize] = content.clone();
            special[*id as usize] |= *is_special;
            languages.insert(content.clone(), *id);
        }
        let mut merges = HashMap::new();
        for (rank, merge) in model.get("merges").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let (left, right) = match merge {
                Value::String(pair) => pair.split_once(' ').ok_or_else(|| bad(format!("merge {pair:?}")))?,
                Value::Array(pair) if pair.len() == 2 => match (pair[0].as_str(), pair[1].as_str()) {
                    (Some(l), Some(r)) => (l, r),
                    _ => return Err(bad(format!("merge {merge}"))),
                },
                _ => return Err(bad(format!("merge {merge}"))),
            };
            let (Some(&l), Some(&r)) = (index.get(left), index.get(right)) else {
                return Err(bad(format!("merge {left} {right}: a piece not in the vocabulary")));
            };
            let Some(&merged) = index.get(&format!("{left}{right}")) else {
                return Err(bad(format!("merge {left} {right}: the merged piece is not in the vocabulary")));
            };
            merges.entry((l, r)).or_insert((rank as u32, merged));
        }
        let named = |name: &str, default: &str| {
            let token = json.get("model").and_then(|m| m.get(name)).and_then(Value::as_str).unwrap_or(default);
            languages.get(token).or_else(|| index.get(token)).copied()
        };
        let (Some(bos), Some(pad), Some(eos), Some(unk)) = (
            named("bos_token", "<s>"),
            named("pad_token", "<pad>"),
            named("eos_token", "</s>"),
            named("unk_token", "<unk>"),
        ) else {
            return Err(bad("the vocabulary lacks one of <s>, <pad>, </s>, <unk>".into()));
        };
        let fuse_unk = model.get("fuse_unk").and_then(Value::as_bool).unwrap_or(false);
        let (normalizer, collapse) = tokenizers_normalizer(json.get("normalizer"))?;
        let prepend = metaspace(json.get("pre_tokenizer"))?;
        let family = if languages.keys().any(|l| l.starts_with("__") && l.ends_with("__"))
            && !languages.contains_key("eng_Latn")
        {
            Family::M2m100
        } else {
            Family::Nllb
        };
        for id in [bos, pad, eos, unk] {
            special[id as usize] = true;
        }
        Ok(BpeTokenizer {
            index,
            merges,
            ids,
            flavour: Flavour::Tokenizers { fuse_unk, prepend, collapse },
            normalizer,
            tokens,
            special,
            languages,
            family,
            bos,
            pad,
            eos,
            unk,
        })
    }

    /// NLLB's tokenizer from its SentencePiece model alone, as transformers builds it.
    pub fn nllb(model: &SentencePieceModel) -> Result<BpeTokenizer, ModelError> {
        let file = "sentencepiece.bpe.model";
        if model.model_type != crate::sentencepiece::ModelType::Bpe {
            return Err(invalid(file, "not a BPE model"));
        }
        if model.pieces.len() < 4 {
            return Err(invalid(file, "fewer than four pieces"));
        }
        // <s> <pad> </s> <unk>, then SentencePiece's pieces from its id 3 on at their id + 1.
        let mut tokens: Vec<String> = ["<s>", "<pad>", "</s>", "<unk>"].map(String::from).to_vec();
        tokens.extend(model.pieces[3..].iter().map(|p| p.piece.clone()));
        let pieces = tokens.len();
        let mut special = vec![false; pieces];
        special[..4].fill(true);
        let mut languages = HashMap::new();
        for code in NLLB_LANGUAGES.split(' ') {
            languages.insert(code.to_string(), tokens.len() as u32);
            tokens.push(code.to_string());
            special.push(true);
        }
        tokens.push("<mask>".into());
        special.push(true);
        let mut index = HashMap::with_capacity(pieces);
        for (id, piece) in tokens[..pieces].iter().enumerate() {
            let kind = if id < 4 { PieceType::Control } else { model.pieces[id - 1].kind };
            if matches!(kind, PieceType::Normal | PieceType::UserDefined) {
                index.entry(piece.clone()).or_insert(id as u32);
            }
        }
        let ids = (0..pieces as u32).map(Some).collect();
        let merges = ranked_merges(&index, |merged| merged);
        let normalizer = precompiled(&model.precompiled_charsmap)?;
        Ok(BpeTokenizer {
            index,
            merges,
            ids,
            flavour: Flavour::Tokenizers { fuse_unk: true, prepend: true, collapse: true },
            normalizer,
            tokens,
            special,
            languages,
            family: Family::Nllb,
            bos: 0,
            pad: 1,
            eos: 2,
            unk: 3,
        })
    }

    /// M2M100's tokenizer: SentencePiece segments, `vocab.json` numbers the pieces.
    pub fn m2m100(model: &SentencePieceModel, vocab: &Value) -> Result<BpeTokenizer, ModelError> {
        let file = "vocab.json";
        if model.model_type != crate::sentencepiece::ModelType::Bpe {
            return Err(invalid("sentencepiece.bpe.model", "not a BPE model"));
        }
        let vocab = vocab.as_object().ok_or_else(|| invalid(file, "not an object"))?;
        let mut numbered = HashMap::with_capacity(vocab.len());
        for (piece, id) in vocab {
            let id = id
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| invalid(file, format!("{piece}: no id")))?;
            numbered.insert(piece.as_str(), id);
        }
        let size = vocab.len();
        if numbered.values().any(|&id| id as usize >= size) {
            return Err(invalid(file, "the ids are not 0 to the number of pieces"));
        }
        let mut tokens = vec![String::new(); size];
        for (piece, &id) in &numbered {
            tokens[id as usize] = piece.to_string();
        }
        let mut special = vec![false; size];
        let mut languages = HashMap::new();
        for code in M2M100_LANGUAGES.split(' ') {
            let token = format!("__{code}__");
            languages.insert(token.clone(), tokens.len() as u32);
            tokens.push(token);
            special.push(true);
        }
        let get = |name: &str| numbered.get(name).copied().ok_or_else(|| invalid(file, format!("no {name}")));
        let (bos, pad, eos, unk) = (get("<s>")?, get("<pad>")?, get("</s>")?, get("<unk>")?);
        for id in [bos, pad, eos, unk] {
            special[id as usize] = true;
        }
        // Segmentation by SentencePiece's pieces; merges by the merged piece's score.
        let mut index = HashMap::with_capacity(model.pieces.len());
        let mut ids = Vec::with_capacity(model.pieces.len());
        for (i, piece) in model.pieces.iter().enumerate() {
            if matches!(piece.kind, PieceType::Normal | PieceType::UserDefined) {
                index.entry(piece.piece.clone()).or_insert(i as u32);
            }
            ids.push(numbered.get(piece.piece.as_str()).copied());
        }
        let mut by_score: Vec<u32> = (0..model.pieces.len() as u32).collect();
        by_score.sort_by(|&a, &b| {
            model.pieces[b as usize].score.total_cmp(&model.pieces[a as usize].score).then(a.cmp(&b))
        });
        let mut rank = vec![0u32; model.pieces.len()];
        for (r, &piece) in by_score.iter().enumerate() {
            rank[piece as usize] = r as u32;
        }
        let merges = ranked_merges(&index, |merged| rank[merged as usize]);
        let normalizer = precompiled(&model.precompiled_charsmap)?;
        Ok(BpeTokenizer {
            index,
            merges,
            ids,
            flavour: Flavour::SentencePiece {
                trim: model.remove_extra_whitespaces,
                dummy_prefix: model.add_dummy_prefix,
            },
            normalizer,
            tokens,
            special,
            languages,
            family: Family::M2m100,
            bos,
            pad,
            eos,
            unk,
        })
    }

    /// The number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The token id of a language code as the model writes it (`kaz_Cyrl`; `__kk__` or `kk` for M2M100).
    pub fn language(&self, code: &str) -> Option<u32> {
        match self.family {
            Family::Nllb => self.languages.get(code).copied(),
            Family::M2m100 => self.languages.get(&format!("__{code}__")).or_else(|| self.languages.get(code)).copied(),
        }
    }

    /// Every language code the tokenizer has a token for, as the model writes it.
    pub fn languages(&self) -> Vec<String> {
        let mut codes: Vec<String> = self
            .languages
            .keys()
            .filter_map(|token| match self.family {
                Family::Nllb => is_nllb_code(token).then(|| token.clone()),
                Family::M2m100 => token.strip_prefix("__").and_then(|t| t.strip_suffix("__")).map(String::from),
            })
            .collect();
        codes.sort();
        codes
    }

    /// The words of `text` after normalisation, each starting with `▁` where a space was.
    fn words(&self, text: &str) -> Vec<String> {
        let normalized = match &self.normalizer {
            Some(map) => map.normalize_string(text),
            None => text.to_string(),
        };
        let (collapse, trim, prefix, always) = match self.flavour {
            Flavour::Tokenizers { prepend, collapse, .. } => (collapse, false, prepend, false),
            Flavour::SentencePiece { trim, dummy_prefix } => (trim, trim, dummy_prefix, true),
        };
        let mut out = String::with_capacity(normalized.len() + 3);
        let mut last_space = false;
        for c in normalized.chars() {
            if c == ' ' {
                if !(collapse && last_space) {
                    out.push(METASPACE);
                }
                last_space = true;
            } else {
                out.push(c);
                last_space = false;
            }
        }
        if trim {
            out = out.trim_matches(METASPACE).to_string();
        }
        if out.is_empty() {
            return Vec::new();
        }
        if prefix && (always || !out.starts_with(METASPACE)) {
            out.insert(0, METASPACE);
        }
        let mut words = Vec::new();
        for c in out.chars() {
            if c == METASPACE || words.is_empty() {
                words.push(String::new());
            }
            if let Some(word) = words.last_mut() {
                word.push(c);
            }
        }
        words
    }

    /// The token ids of `text`, without the language code and `</s>`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for word in self.words(text) {
            self.encode_word(&word, &mut ids);
        }
        ids
    }

    fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        // Each symbol: its segmentation piece, or None for a run of unknown characters.
        let mut symbols: Vec<Option<u32>> = Vec::with_capacity(word.len());
        // SentencePiece, like tokenizers with `fuse_unk`, makes one `<unk>` of a run of unknown characters.
        let fuse = matches!(self.flavour, Flavour::Tokenizers { fuse_unk: true, .. } | Flavour::SentencePiece { .. });
        let mut buffer = [0u8; 4];
        for c in word.chars() {
            let piece = self.index.get(c.encode_utf8(&mut buffer) as &str).copied();
            if piece.is_none() && fuse && symbols.last() == Some(&None) {
                continue;
            }
            symbols.push(piece);
        }
        loop {
            let mut best: Option<(u32, usize, u32)> = None;
            for (i, pair) in symbols.windows(2).enumerate() {
                if let [Some(l), Some(r)] = pair
                    && let Some(&(rank, merged)) = self.merges.get(&(*l, *r))
                    && best.is_none_or(|(b, _, _)| rank < b)
                {
                    best = Some((rank, i, merged));
                }
            }
            let Some((_, i, merged)) = best else { break };
            symbols[i] = Some(merged);
            symbols.remove(i + 1);
        }
        out.extend(symbols.into_iter().map(|s| s.and_then(|p| self.ids[p as usize]).unwrap_or(self.unk)));
    }

    /// The text of token ids, leaving out control tokens and language codes.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut text = String::new();
        for &id in ids {
            let id = id as usize;
            if id < self.tokens.len() && !self.special[id] {
                text.push_str(&self.tokens[id]);
            }
        }
        let text = text.replace(METASPACE, " ");
        text.strip_prefix(' ').map(str::to_string).unwrap_or(text)
    }
}

/// `kaz_Cyrl`: three lowercase letters, `_`, a script code.
fn is_nllb_code(token: &str) -> bool {
    let bytes = token.as_bytes();
    bytes.len() == 8
        && bytes[..3].iter().all(u8::is_ascii_lowercase)
        && bytes[3] == b'_'
        && bytes[4].is_ascii_uppercase()
        && bytes[5..].iter().all(u8::is_ascii_lowercase)
}

/// The merges of a SentencePiece BPE vocabulary: every split of a piece into two pieces, ranked by
/// `rank(merged)`, then by the left part's length in characters (as transformers orders them).
fn ranked_merges(index: &HashMap<String, u32>, rank: impl Fn(u32) -> u32) -> HashMap<(u32, u32), (u32, u32)> {
    let mut candidates = Vec::new();
    for (piece, &merged) in index {
        for (chars, (at, _)) in piece.char_indices().enumerate().skip(1) {
            if let (Some(&l), Some(&r)) = (index.get(&piece[..at]), index.get(&piece[at..])) {
                candidates.push((rank(merged), chars, l, r, merged));
            }
        }
    }
    candidates.sort_unstable();
    let mut merges = HashMap::with_capacity(candidates.len());
    for (rank, (_, _, l, r, merged)) in candidates.into_iter().enumerate() {
        merges.entry((l, r)).or_insert((rank as u32, merged));
    }
    merges
}

fn precompiled(charsmap: &[u8]) -> Result<Option<spm_precompiled::Precompiled>, ModelError> {
    if charsmap.is_empty() {
        return Ok(None);
    }
    spm_precompiled::Precompiled::from(charsmap)
        .map(Some)
        .map_err(|e| invalid("sentencepiece.bpe.model", format!("precompiled charsmap: {e}")))
}

/// The normaliser of a `tokenizer.json`: a precompiled charsmap and collapsing runs of spaces, the
/// steps NLLB's has. Anything else is refused rather than silently skipped.
fn tokenizers_normalizer(
    normalizer: Option<&Value>,
) -> Result<(Option<spm_precompiled::Precompiled>, bool), ModelError> {
    let Some(normalizer) = normalizer.filter(|n| !n.is_null()) else { return Ok((None, false)) };
    let steps: Vec<&Value> = match normalizer.get("type").and_then(Value::as_str) {
        Some("Sequence") => normalizer.get("normalizers").and_then(Value::as_array).into_iter().flatten().collect(),
        _ => vec![normalizer],
    };
    let mut map = None;
    let mut collapse = false;
    for step in steps {
        match step.get("type").and_then(Value::as_str) {
            Some("Precompiled") => map = Some(precompiled_step(step)?),
            Some("Replace")
                if step.pointer("/pattern/Regex").and_then(Value::as_str) == Some(" {2,}")
                    && step.get("content").and_then(Value::as_str) == Some(" ") =>
            {
                collapse = true;
            }
            other => return Err(invalid("tokenizer.json", format!("normalizer {other:?} is not supported"))),
        }
    }
    Ok((map, collapse))
}

/// A `tokenizer.json` normaliser step `{"type": "Precompiled", "precompiled_charsmap": base64}`.
pub(crate) fn precompiled_step(step: &Value) -> Result<spm_precompiled::Precompiled, ModelError> {
    let bad = || invalid("tokenizer.json", "the precompiled charsmap is not valid base64 of a charsmap");
    let text = step.get("precompiled_charsmap").and_then(Value::as_str).ok_or_else(bad)?;
    let bytes = base64_decode(text).ok_or_else(bad)?;
    spm_precompiled::Precompiled::from(&bytes).map_err(|_| bad())
}

/// Standard base64 (with or without padding), or `None`.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let body = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | value(c)?;
        }
        match chunk.len() {
            4 => out.extend_from_slice(&acc.to_be_bytes()[1..]),
            3 => out.extend_from_slice(&(acc << 6).to_be_bytes()[1..3]),
            2 => out.push((acc >> 4) as u8),
            _ => return None,
        }
    }
    Some(out)
}

/// Whether the `tokenizer.json` pre-tokenizer (a metaspace) prepends `▁`.
fn metaspace(pre: Option<&Value>) -> Result<bool, ModelError> {
    let bad = |m: &str| invalid("tokenizer.json", m);
    let pre = pre.filter(|p| !p.is_null()).ok_or_else(|| bad("no pre-tokenizer (a Metaspace is expected)"))?;
    let step = match pre.get("type").and_then(Value::as_str) {
        Some("Sequence") => match pre.get("pretokenizers").and_then(Value::as_array).map(Vec::as_slice) {
            Some([only]) => only,
            _ => return Err(bad("a pre-tokenizer sequence other than one Metaspace")),
        },
        _ => pre,
    };
    if step.get("type").and_then(Value::as_str) != Some("Metaspace") {
        return Err(bad("the pre-tokenizer is not a Metaspace"));
    }
    if step.get("replacement").and_then(Value::as_str).is_some_and(|r| r != "\u{2581}") {
        return Err(bad("a Metaspace replacement other than ▁"));
    }
    Ok(match step.get("prepend_scheme").and_then(Value::as_str) {
        Some("never") => false,
        Some("always") | Some("first") => true,
        Some(other) => return Err(invalid("tokenizer.json", format!("prepend_scheme {other:?}"))),
        None => step.get("add_prefix_space").and_then(Value::as_bool).unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("a").is_none() && base64_decode("a$b=").is_none());
    }

    #[test]
    fn language_codes_lists_are_complete() {
        assert_eq!(NLLB_LANGUAGES.split(' ').count(), 202);
        assert!(NLLB_LANGUAGES.split(' ').all(is_nllb_code));
        assert_eq!(M2M100_LANGUAGES.split(' ').count(), 100);
    }
}
