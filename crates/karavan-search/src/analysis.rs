//! Analysis that is right for each member language: Chinese word segmentation with traditional
//! characters folded to simplified, Snowball stemming for Russian, English and Turkish, and for the
//! Turkic and Persian languages written in two scripts, the `karavan-script` fold (Cyrillic and Latin
//! meet) plus a light suffix stripper.

use std::sync::Arc;

use jieba_rs::Jieba;
use karavan_script::Language as ScriptLanguage;
use tantivy::tokenizer::{
    Language as StemLanguage, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer, Token, TokenStream,
    Tokenizer, TokenizerManager,
};

/// The analyzers, one per text field of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Analyzer {
    Chinese,
    Russian,
    English,
    Turkish,
    Script(ScriptLanguage),
    /// Any other language: lower-cased words.
    Other,
}

impl Analyzer {
    pub const ALL: [Analyzer; 10] = [
        Analyzer::Chinese,
        Analyzer::Russian,
        Analyzer::English,
        Analyzer::Turkish,
        Analyzer::Script(ScriptLanguage::Uzbek),
        Analyzer::Script(ScriptLanguage::Kazakh),
        Analyzer::Script(ScriptLanguage::Kyrgyz),
        Analyzer::Script(ScriptLanguage::Turkmen),
        Analyzer::Script(ScriptLanguage::Tajik),
        Analyzer::Other,
    ];

    /// The analyzer for an item or query language (a BCP 47 tag); `None` gives `Other`.
    pub fn for_language(tag: Option<&str>) -> Analyzer {
        let Some(tag) = tag else { return Analyzer::Other };
        if let Some(language) = ScriptLanguage::from_tag(tag) {
            return Analyzer::Script(language);
        }
        match tag.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase().as_str() {
            "zh" | "zho" | "cmn" => Analyzer::Chinese,
            "ru" | "rus" => Analyzer::Russian,
            "en" | "eng" => Analyzer::English,
            "tr" | "tur" => Analyzer::Turkish,
            _ => Analyzer::Other,
        }
    }

    /// The name of its tokenizer and the suffix of its text field.
    pub fn name(self) -> &'static str {
        match self {
            Analyzer::Chinese => "zh",
            Analyzer::Russian => "ru",
            Analyzer::English => "en",
            Analyzer::Turkish => "tr",
            Analyzer::Script(ScriptLanguage::Uzbek) => "uz",
            Analyzer::Script(ScriptLanguage::Kazakh) => "kk",
            Analyzer::Script(ScriptLanguage::Kyrgyz) => "ky",
            Analyzer::Script(ScriptLanguage::Turkmen) => "tk",
            Analyzer::Script(ScriptLanguage::Tajik) => "tg",
            Analyzer::Other => "other",
        }
    }

    pub fn tokenizer_name(self) -> String {
        format!("karavan_{}", self.name())
    }

    fn text_analyzer(self, jieba: &Arc<Jieba>) -> TextAnalyzer {
        let stemmed = |language| {
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(64))
                .filter(LowerCaser)
                .filter(Stemmer::new(language))
                .build()
        };
        match self {
            Analyzer::Chinese => TextAnalyzer::builder(ChineseTokenizer { jieba: Arc::clone(jieba) })
                .filter(RemoveLongFilter::limit(64))
                .filter(LowerCaser)
                .build(),
            Analyzer::Russian => stemmed(StemLanguage::Russian),
            Analyzer::English => stemmed(StemLanguage::English),
            Analyzer::Turkish => stemmed(StemLanguage::Turkish),
            Analyzer::Script(language) => {
                TextAnalyzer::builder(FoldingTokenizer { language }).filter(RemoveLongFilter::limit(64)).build()
            }
            Analyzer::Other => TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(64))
                .filter(LowerCaser)
                .build(),
        }
    }
}

/// The words of a text as the keyword index files them for its language (segmented, stemmed or
/// folded), for other uses of the same words (story clustering). Jieba's dictionary loads once.
pub fn terms(language: Option<&str>, text: &str) -> Vec<String> {
    static JIEBA: std::sync::OnceLock<Arc<Jieba>> = std::sync::OnceLock::new();
    thread_local! {
        static ANALYZERS: std::cell::RefCell<Vec<(Analyzer, TextAnalyzer)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let analyzer = Analyzer::for_language(language);
    ANALYZERS.with(|cached| {
        let mut cached = cached.borrow_mut();
        let position = match cached.iter().position(|(a, _)| *a == analyzer) {
            Some(position) => position,
            None => {
                let jieba = JIEBA.get_or_init(|| Arc::new(Jieba::new()));
                cached.push((analyzer, analyzer.text_analyzer(jieba)));
                cached.len() - 1
            }
        };
        let mut stream = cached[position].1.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    })
}

/// Registers every analyzer's tokenizer with an index's tokenizer manager.
pub fn register(manager: &TokenizerManager) {
    let jieba = Arc::new(Jieba::new());
    for analyzer in Analyzer::ALL {
        manager.register(&analyzer.tokenizer_name(), analyzer.text_analyzer(&jieba));
    }
}

/// Chinese: jieba's search segmentation (words, and the shorter words inside long compounds, so that a
/// query for 铁路 finds 中吉乌铁路), run on the text with traditional characters folded to simplified.
#[derive(Clone)]
struct ChineseTokenizer {
    jieba: Arc<Jieba>,
}

struct VecTokenStream {
    tokens: Vec<Token>,
    index: usize,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        if self.index < self.tokens.len() {
            self.index += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.index - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.index - 1]
    }
}

impl Tokenizer for ChineseTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let simplified = fast2s::convert(text);
        // The conversion is character for character; offsets into the original text (for snippets)
        // are found through character positions. Should it ever change the length, fall back to the
        // original text.
        let same_shape = simplified.chars().count() == text.chars().count();
        let source: &str = if same_shape { &simplified } else { text };
        let original_offsets: Vec<usize> =
            text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len())).collect();
        // Search mode also emits the shorter words inside a long one, after it and overlapping it.
        // Each token takes the position of the whole word that contains it (so phrases still work),
        // and tokens are ordered by offset: highlighting needs offsets that never go back.
        let words: Vec<usize> = self.jieba.cut(source, true).iter().map(|w| w.start).collect();
        let mut tokens = Vec::new();
        for word in self.jieba.cut_for_search(source, true) {
            if !word.word.chars().any(char::is_alphanumeric) {
                continue;
            }
            let position = words.partition_point(|&start| start <= word.start).saturating_sub(1);
            let (from, to) = if same_shape {
                (original_offsets[word.start], original_offsets[word.end.min(original_offsets.len() - 1)])
            } else {
                (word.byte_start, word.byte_start + word.word.len())
            };
            tokens.push(Token {
                offset_from: from,
                offset_to: to,
                position,
                text: word.word.to_string(),
                position_length: 1,
            });
        }
        tokens.sort_by_key(|t| (t.offset_from, t.offset_to));
        VecTokenStream { tokens, index: 0 }
    }
}

/// Words of a language written in Cyrillic or Latin: split on what is not a letter or digit (keeping
/// the apostrophe letters of Uzbek, o‘ and g‘, inside words), fold to the shared skeleton, and strip
/// the commonest case and plural suffixes.
#[derive(Clone)]
struct FoldingTokenizer {
    language: ScriptLanguage,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '‘' | '’' | 'ʻ' | 'ʼ' | '\'' | '`')
}

impl Tokenizer for FoldingTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let mut tokens = Vec::new();
        let mut start: Option<usize> = None;
        let push = |from: usize, to: usize, tokens: &mut Vec<Token>| {
            let word = text[from..to].trim_matches(|c: char| !c.is_alphanumeric());
            if word.is_empty() {
                return;
            }
            let folded = karavan_script::fold(self.language, word);
            let stem = karavan_script::strip_suffixes(self.language, &folded).to_string();
            let position = tokens.len();
            tokens.push(Token { offset_from: from, offset_to: to, position, text: stem, position_length: 1 });
        };
        for (index, c) in text.char_indices() {
            match (is_word_char(c), start) {
                (true, None) => start = Some(index),
                (false, Some(from)) => {
                    push(from, index, &mut tokens);
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(from) = start {
            push(from, text.len(), &mut tokens);
        }
        VecTokenStream { tokens, index: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(analyzer: Analyzer, text: &str) -> Vec<String> {
        let manager = TokenizerManager::default();
        register(&manager);
        let mut tokenizer = manager.get(&analyzer.tokenizer_name()).unwrap();
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn chinese_segments_compounds_and_folds_traditional() {
        let words = tokens(Analyzer::Chinese, "中吉乌铁路项目正式开工");
        assert!(words.contains(&"铁路".to_string()), "{words:?}");
        let traditional = tokens(Analyzer::Chinese, "中吉烏鐵路項目");
        assert!(traditional.contains(&"铁路".to_string()), "traditional folds to simplified: {traditional:?}");
    }

    #[test]
    fn chinese_tokens_never_go_back_in_offset_or_position() {
        let manager = TokenizerManager::default();
        register(&manager);
        let mut tokenizer = manager.get(&Analyzer::Chinese.tokenizer_name()).unwrap();
        let mut stream = tokenizer.token_stream("中国—中亚媒体在哈萨克斯坦首都阿斯塔纳举行联合采访成果分享会");
        let (mut last_offset, mut last_position) = (0, 0);
        while stream.advance() {
            let token = stream.token();
            assert!(token.offset_from >= last_offset && token.position >= last_position, "{token:?}");
            (last_offset, last_position) = (token.offset_from, token.position);
        }
    }

    #[test]
    fn russian_is_stemmed() {
        assert_eq!(tokens(Analyzer::Russian, "железной дороги"), tokens(Analyzer::Russian, "железная дорога"));
    }

    #[test]
    fn uzbek_scripts_meet() {
        assert_eq!(tokens(Analyzer::Script(ScriptLanguage::Uzbek), "Тошкентга"), ["toshkent"]);
        assert_eq!(tokens(Analyzer::Script(ScriptLanguage::Uzbek), "Toshkentda"), ["toshkent"]);
        assert_eq!(tokens(Analyzer::Script(ScriptLanguage::Uzbek), "O‘zbekiston"), ["ozbekiston"]);
        assert_eq!(tokens(Analyzer::Script(ScriptLanguage::Uzbek), "Ўзбекистон"), ["ozbekiston"]);
    }
}
