//! A SentencePiece model file (`sentencepiece.bpe.model`, a `ModelProto` in protobuf): its pieces
//! with their scores and types, the trainer's model type and the normaliser's settings. Read with
//! a small protobuf reader of our own; a file that is not such a model is refused with a message,
//! never a panic.

use crate::models::ModelError;

/// The type of a piece (`SentencePiece.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Byte,
    Unused,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: PieceType,
}

/// The model type the trainer used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    Unigram,
    Bpe,
    Word,
    Char,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SentencePieceModel {
    pub pieces: Vec<Piece>,
    pub model_type: ModelType,
    /// The normaliser's precompiled character map (empty for identity).
    pub precompiled_charsmap: Vec<u8>,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub escape_whitespaces: bool,
}

fn invalid(message: impl std::fmt::Display) -> ModelError {
    ModelError::Invalid(format!("sentencepiece model: {message}"))
}

/// A protobuf field's value.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn varint(&mut self) -> Result<u64, ModelError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at).ok_or_else(|| invalid("truncated varint"))?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(invalid("a varint longer than ten bytes"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ModelError> {
        let end =
            self.at.checked_add(len).filter(|&end| end <= self.bytes.len()).ok_or_else(|| invalid("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// The next field's number and value, or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, ModelError> {
        if self.at == self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| invalid("a field longer than memory"))?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            other => return Err(invalid(format!("unsupported wire type {other}"))),
        };
        Ok(Some((key >> 3, value)))
    }
}

impl SentencePieceModel {
    pub fn parse(bytes: &[u8]) -> Result<SentencePieceModel, ModelError> {
        let mut model = SentencePieceModel {
            pieces: Vec::new(),
            model_type: ModelType::Unigram,
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        };
        let mut reader = Reader::new(bytes);
        while let Some((field, value)) = reader.field()? {
            match (field, value) {
                (1, Value::Bytes(piece)) => model.pieces.push(parse_piece(piece)?),
                (2, Value::Bytes(trainer)) => {
                    let mut reader = Reader::new(trainer);
                    while let Some((field, value)) = reader.field()? {
                        if let (3, Value::Varint(kind)) = (field, value) {
                            model.model_type = match kind {
                                1 => ModelType::Unigram,
                                2 => ModelType::Bpe,
                                3 => ModelType::Word,
                                4 => ModelType::Char,
                                other => return Err(invalid(format!("unknown model type {other}"))),
                            };
                        }
                    }
                }
                (3, Value::Bytes(normalizer)) => {
                    let mut reader = Reader::new(normalizer);
                    while let Some((field, value)) = reader.field()? {
                        match (field, value) {
                            (2, Value::Bytes(map)) => model.precompiled_charsmap = map.to_vec(),
                            (3, Value::Varint(v)) => model.add_dummy_prefix = v != 0,
                            (4, Value::Varint(v)) => model.remove_extra_whitespaces = v != 0,
                            (5, Value::Varint(v)) => model.escape_whitespaces = v != 0,
                            _ => {}
                        }
                    }
                }
                (1..=3, _) => return Err(invalid(format!("field {field} has the wrong wire type"))),
                _ => {}
            }
        }
        if model.pieces.is_empty() {
            return Err(invalid("no pieces (is this a SentencePiece model?)"));
        }
        Ok(model)
    }

    /// The id of the unknown piece.
    pub fn unk_id(&self) -> Option<usize> {
        self.pieces.iter().position(|p| p.kind == PieceType::Unknown)
    }
}

fn parse_piece(bytes: &[u8]) -> Result<Piece, ModelError> {
    let mut piece = Piece { piece: String::new(), score: 0.0, kind: PieceType::Normal };
    let mut reader = Reader::new(bytes);
    while let Some((field, value)) = reader.field()? {
        match (field, value) {
            (1, Value::Bytes(text)) => {
                piece.piece = String::from_utf8(text.to_vec()).map_err(|_| invalid("a piece is not UTF-8"))?;
            }
            (2, Value::Fixed32(bits)) => piece.score = f32::from_bits(bits),
            (3, Value::Varint(kind)) => {
                piece.kind = match kind {
                    1 => PieceType::Normal,
                    2 => PieceType::Unknown,
                    3 => PieceType::Control,
                    4 => PieceType::UserDefined,
                    5 => PieceType::Unused,
                    6 => PieceType::Byte,
                    other => return Err(invalid(format!("unknown piece type {other}"))),
                };
            }
            _ => {}
        }
    }
    Ok(piece)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes_field(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn piece(text: &str, score: f32, kind: u64) -> Vec<u8> {
        let mut out = Vec::new();
        bytes_field(1, text.as_bytes(), &mut out);
        varint(2 << 3 | 5, &mut out);
        out.extend_from_slice(&score.to_le_bytes());
        varint(3 << 3, &mut out);
        varint(kind, &mut out);
        out
    }

    #[test]
    fn reads_pieces_model_type_and_normalizer() {
        let mut model = Vec::new();
        bytes_field(1, &piece("<unk>", 0.0, 2), &mut model);
        bytes_field(1, &piece("▁a", -1.5, 1), &mut model);
        let mut trainer = Vec::new();
        varint(3 << 3, &mut trainer);
        varint(2, &mut trainer);
        bytes_field(2, &trainer, &mut model);
        let mut normalizer = Vec::new();
        bytes_field(1, b"nmt_nfkc", &mut normalizer);
        bytes_field(2, &[1, 2, 3], &mut normalizer);
        varint(4 << 3, &mut normalizer);
        varint(0, &mut normalizer);
        bytes_field(3, &normalizer, &mut model);
        let parsed = SentencePieceModel::parse(&model).unwrap();
        assert_eq!(parsed.pieces.len(), 2);
        assert_eq!(parsed.pieces[1], Piece { piece: "▁a".into(), score: -1.5, kind: PieceType::Normal });
        assert_eq!(parsed.unk_id(), Some(0));
        assert_eq!(parsed.model_type, ModelType::Bpe);
        assert_eq!(parsed.precompiled_charsmap, vec![1, 2, 3]);
        assert!(parsed.add_dummy_prefix && !parsed.remove_extra_whitespaces && parsed.escape_whitespaces);
    }

    #[test]
    fn refuses_what_is_not_a_model() {
        for bad in [&b""[..], b"\xff\xff", b"{\"model\": 1}", b"\x0a\x05ab", &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]] {
            assert!(SentencePieceModel::parse(bad).is_err(), "{bad:?}");
        }
    }
}
