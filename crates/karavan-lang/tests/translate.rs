//! The translator over the random NLLB fixture checkpoint: what it writes is what the model
//! generates for each sentence (the model is random, so the words are not a translation), and what
//! it promises holds whatever the model writes: sentences, line breaks and markup kept, glossary
//! terms rendered as the glossary says.

use std::path::Path;

use karavan_lang::bpe::BpeTokenizer;
use karavan_lang::generate::generate;
use karavan_lang::m2m100::M2m100;
use karavan_lang::translate::{Term, Translator};

fn fixture() -> &'static Path {
    Box::leak(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/m2m100/nllb-2x2").into_boxed_path())
}

fn translator() -> Translator {
    let mut translator = Translator::load(fixture()).unwrap();
    translator.options.num_beams = 1;
    translator.options.max_length = 12;
    translator
}

#[test]
fn each_sentence_is_what_the_model_generates_for_it() {
    let translator = translator();
    let tokenizer = BpeTokenizer::load(fixture()).unwrap();
    let model = M2m100::load(fixture()).unwrap();
    let sentences = ["The train left Almaty at noon.", "It reached Tashkent two days later."];
    let expected: Vec<String> = sentences
        .iter()
        .map(|s| {
            let mut ids = vec![tokenizer.language("eng_Latn").unwrap()];
            ids.extend(tokenizer.encode(s));
            ids.push(tokenizer.eos);
            let out =
                generate(&model, &[ids], &[tokenizer.language("kaz_Cyrl").unwrap()], &translator.options).unwrap();
            tokenizer.decode(&out[0])
        })
        .collect();
    let text = format!("{}  {}\n\n{}", sentences[0], sentences[1], sentences[0]);
    let out = translator.translate(&[&text], "en", "kk", &[]).unwrap();
    assert_eq!(out, [format!("{}  {}\n\n{}", expected[0], expected[1], expected[0])]);
    // Language tags and the model's own codes both work; an unknown language is refused.
    assert_eq!(translator.language_code("kk").as_deref(), Some("kaz_Cyrl"));
    assert_eq!(translator.language_code("zh-Hant").as_deref(), Some("zho_Hant"));
    assert_eq!(translator.language_code("uz-Cyrl").as_deref(), Some("uzn_Latn"));
    assert_eq!(translator.language_code("tgk_Cyrl").as_deref(), Some("tgk_Cyrl"));
    assert!(translator.translate(&["x"], "en", "xx-Klingon", &[]).is_err());
    assert!(translator.languages().contains(&"kir_Cyrl".to_string()));
}

#[test]
fn glossary_terms_come_out_as_the_glossary_says() {
    let translator = translator();
    let glossary = vec![
        Term { source: "Tokayev".into(), target: "Тоқаев".into() },
        Term { source: "托卡耶夫".into(), target: "Тоқаев".into() },
        Term {
            source: "Shanghai Cooperation Organisation".into(), target: "Шанхай ынтымақтастық ұйымы".into()
        },
    ];
    let out = translator
        .translate(
            &["President Tokayev spoke at the Shanghai Cooperation Organisation summit.", "托卡耶夫总统发表讲话。"],
            "en",
            "kk",
            &glossary,
        )
        .unwrap();
    assert!(out[0].contains("Тоқаев") && out[0].contains("Шанхай ынтымақтастық ұйымы"), "{}", out[0]);
    assert!(out[1].contains("Тоқаев"), "{}", out[1]);
    // Without the glossary the random model writes neither.
    let plain = translator.translate(&["President Tokayev spoke."], "en", "kk", &[]).unwrap();
    assert!(!plain[0].contains("Тоқаев"));
}

#[test]
fn html_is_translated_node_by_node_and_keeps_its_markup() {
    let translator = translator();
    let html = "<p class=\"lead\">Trains &amp; trucks.</p>\n<ul><li><a href=\"/x?a=1&amp;b=2\">Astana</a></li></ul>";
    let out = translator.translate_html(html, "en", "ru", &[]).unwrap();
    let nodes = translator.translate(&["Trains & trucks.", "Astana"], "en", "ru", &[]).unwrap();
    let escape = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    assert_eq!(
        out,
        format!(
            "<p class=\"lead\">{}</p>\n<ul><li><a href=\"/x?a=1&amp;b=2\">{}</a></li></ul>",
            escape(&nodes[0]),
            escape(&nodes[1])
        )
    );
}

/// A cache in memory that counts what it is asked for.
#[derive(Default)]
struct CountingCache {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], String>>,
    misses: std::sync::atomic::AtomicUsize,
}

impl karavan_lang::SegmentCache for CountingCache {
    fn get(&self, keys: &[[u8; 32]]) -> Vec<Option<String>> {
        let entries = self.entries.lock().unwrap();
        let found: Vec<Option<String>> = keys.iter().map(|k| entries.get(k).cloned()).collect();
        let missed = found.iter().filter(|f| f.is_none()).count();
        self.misses.fetch_add(missed, std::sync::atomic::Ordering::SeqCst);
        found
    }

    fn put(&self, entries: Vec<([u8; 32], String)>) {
        self.entries.lock().unwrap().extend(entries);
    }
}

#[test]
fn a_correction_translates_only_the_sentences_that_changed() {
    let translator = translator();
    let cache = CountingCache::default();
    let misses = || cache.misses.load(std::sync::atomic::Ordering::SeqCst);
    let body = "<p>The train left Almaty at noon. It reached Tashkent two days later.</p><p>Trade grew.</p>";
    let plain = translator.translate_html(body, "en", "kk", &[]).unwrap();
    let first = translator.translate_html_cached(body, "en", "kk", &[], Some(&cache)).unwrap();
    assert_eq!(first, plain, "the cache changes nothing about the result");
    assert_eq!(misses(), 3);
    let again = translator.translate_html_cached(body, "en", "kk", &[], Some(&cache)).unwrap();
    assert_eq!((again, misses()), (plain, 3), "everything came from the cache");
    let corrected = body.replace("two days", "three days");
    let out = translator.translate_html_cached(&corrected, "en", "kk", &[], Some(&cache)).unwrap();
    assert_eq!(misses(), 4, "only the corrected sentence was translated again");
    assert_eq!(out, translator.translate_html(&corrected, "en", "kk", &[]).unwrap());
    // Another target language is another key.
    translator.translate_html_cached(body, "en", "ru", &[], Some(&cache)).unwrap();
    assert_eq!(misses(), 7);
}

#[test]
fn a_text_can_be_translated_with_other_beams_and_is_cached_apart() {
    use karavan_lang::translate::Text;
    let mut beam = Translator::load(fixture()).unwrap();
    beam.options.max_length = 12;
    assert_eq!(beam.options.num_beams, 4, "the translator's own search");
    let greedy = translator();
    let texts = ["The train left Almaty at noon.", "It reached Tashkent two days later."];
    let request: Vec<Text<'_>> = texts.iter().map(|value| Text { value, html: false }).collect();
    // One beam is the greedy search; the translator's own is beam search.
    let fast = beam.translate_many_beams(&request, "en", "kk", &[], None, 1).unwrap();
    assert_eq!(fast, greedy.translate(&texts, "en", "kk", &[]).unwrap());
    let own = beam.translate_many_cached(&request, "en", "kk", &[], None).unwrap();
    assert_eq!(own, beam.translate_many_beams(&request, "en", "kk", &[], None, 4).unwrap());
    // A sentence cached from one search is not taken for the other.
    let cache = CountingCache::default();
    let misses = || cache.misses.load(std::sync::atomic::Ordering::SeqCst);
    beam.translate_many_beams(&request, "en", "kk", &[], Some(&cache), 1).unwrap();
    assert_eq!(misses(), 2);
    let cached = beam.translate_many_cached(&request, "en", "kk", &[], Some(&cache)).unwrap();
    assert_eq!((cached, misses()), (own, 4), "beam search made its own");
    beam.translate_many_beams(&request, "en", "kk", &[], Some(&cache), 1).unwrap();
    assert_eq!(misses(), 4, "the greedy renderings came from the cache");
}

#[test]
fn requests_into_several_languages_share_batches_and_answer_as_alone() {
    use karavan_lang::translate::{Request, Text};
    let translator = translator();
    let headline = [Text { value: "Tokayev met the delegation.", html: false }];
    let body = [Text { value: "<p>The train left Almaty at noon. Trade grew.</p>", html: true }];
    let glossary = vec![Term { source: "Tokayev".into(), target: "Тоқаев".into() }];
    let requests = [
        Request { texts: &headline, to: "kk", glossary: &glossary },
        Request { texts: &headline, to: "ru", glossary: &[] },
        Request { texts: &body, to: "zh", glossary: &[] },
        Request { texts: &body, to: "kk", glossary: &[] },
    ];
    let alone: Vec<Vec<String>> = requests
        .iter()
        .map(|r| translator.translate_many_beams(r.texts, "en", r.to, r.glossary, None, 1).unwrap())
        .collect();
    assert_eq!(translator.translate_requests("en", &requests, None, 1).unwrap(), alone);
    assert!(alone[0][0].contains("Тоқаев"), "the glossary holds: {:?}", alone[0]);
    // Warmed together, each request's own call finds every sentence in the cache (those without a
    // glossary, whose fallback may translate the parts around a term the model lost).
    let cache = CountingCache::default();
    translator.warm("en", &requests[1..], &cache, 1).unwrap();
    let misses = cache.misses.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(misses, 1 + 2 + 2, "each language's sentences, looked up once");
    for (request, alone) in requests[1..].iter().zip(&alone[1..]) {
        let answer =
            translator.translate_many_beams(request.texts, "en", request.to, request.glossary, Some(&cache), 1);
        assert_eq!(&answer.unwrap(), alone);
    }
    assert_eq!(cache.misses.load(std::sync::atomic::Ordering::SeqCst), misses, "nothing was translated again");
    // An unknown language fails the whole call, and warms the others all the same.
    let bad = [Request { texts: &headline, to: "xx-Klingon", glossary: &[] }, requests[1]];
    assert!(translator.translate_requests("en", &bad, None, 1).is_err());
    let cache = CountingCache::default();
    translator.warm("en", &bad, &cache, 1).unwrap();
    assert_eq!(cache.entries.lock().unwrap().len(), 1, "the Russian headline");
}
