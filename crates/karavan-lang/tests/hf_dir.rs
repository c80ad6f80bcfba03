//! The Hugging Face loader and the 4-bit loader are one encoder: a tiny model written in both formats
//! from the same numbers gives the same embeddings either way; an imported directory is recorded and
//! found; directories that cannot be used are refused with the reason.

use karavan_lang::{Embedder, ModelDir, ModelKind, Role, cosine};

const TEXTS: [&str; 4] = ["news site", "a tiny test of the loader", "сот мекен", "▁ mixed теst"];

#[test]
fn both_formats_give_the_same_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let (hf, file) = karavan_lang::testing::tiny_model(dir.path(), 7);
    let from_hf = Embedder::load(&hf).unwrap();
    let from_file = Embedder::load(&file).unwrap();
    assert_eq!(from_hf.dim(), 32);
    for role in [Role::Query, Role::Passage] {
        assert_eq!(from_hf.tokens(TEXTS[1], role), from_file.tokens(TEXTS[1], role));
        let a = from_hf.embed(&TEXTS, role).unwrap();
        let b = from_file.embed(&TEXTS, role).unwrap();
        for (x, y) in a.iter().zip(&b) {
            let norm: f32 = x.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "normalised: {norm}");
            assert!(cosine(x, y) > 0.99999, "same weights, same embedding: {}", cosine(x, y));
        }
    }
    // The prefix matters, and so do the weights.
    let query = from_hf.embed(&TEXTS[..1], Role::Query).unwrap();
    let passage = from_hf.embed(&TEXTS[..1], Role::Passage).unwrap();
    assert!(cosine(&query[0], &passage[0]) < 0.9999);
    let (other, _) = karavan_lang::testing::tiny_model(&dir.path().join("other"), 8);
    let other = Embedder::load(&other).unwrap().embed(&TEXTS[..1], Role::Query).unwrap();
    assert!(cosine(&query[0], &other[0]) < 0.99);
}

#[test]
fn positions_follow_the_model_type() {
    let dir = tempfile::tempdir().unwrap();
    let (hf, _) = karavan_lang::testing::tiny_model(dir.path(), 7);
    let roberta = Embedder::load(&hf).unwrap().embed(&TEXTS[1..2], Role::Passage).unwrap();
    // As a BERT model, positions count from 0, not from the padding id + 1.
    let config_path = hf.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["model_type"] = "bert".into();
    std::fs::write(&config_path, config.to_string()).unwrap();
    let bert = Embedder::load(&hf).unwrap().embed(&TEXTS[1..2], Role::Passage).unwrap();
    assert!(cosine(&roberta[0], &bert[0]) < 0.9999);
}

#[test]
fn an_imported_directory_becomes_the_embedding_model() {
    let dir = tempfile::tempdir().unwrap();
    let (hf, _) = karavan_lang::testing::tiny_model(dir.path(), 7);
    let models = ModelDir::new(dir.path().join("models"));
    let imported = models.import(&hf).unwrap();
    assert_eq!(imported.name, "hf-tiny-e5");
    let (found, path) = models.find(ModelKind::Embedding).unwrap();
    assert_eq!(found, imported);
    let a = Embedder::load(&path).unwrap().embed(&TEXTS, Role::Query).unwrap();
    let b = Embedder::load(&hf).unwrap().embed(&TEXTS, Role::Query).unwrap();
    assert_eq!(a, b);
}

#[test]
fn unusable_directories_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (hf, _) = karavan_lang::testing::tiny_model(dir.path(), 7);
    let refuse = |edit: &dyn Fn(&std::path::Path), expected: &str| {
        let copy = dir.path().join(format!("copy-{}", expected.len()));
        std::fs::create_dir_all(&copy).unwrap();
        for file in ["config.json", "model.safetensors", "tokenizer.json"] {
            std::fs::copy(hf.join(file), copy.join(file)).unwrap();
        }
        edit(&copy);
        let error = Embedder::load(&copy).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
        let models = ModelDir::new(dir.path().join("refused"));
        assert!(models.import(&copy).is_err());
        assert!(models.installed().unwrap().is_empty(), "nothing recorded");
    };
    refuse(&|d| std::fs::remove_file(d.join("model.safetensors")).unwrap(), "no model.safetensors");
    refuse(
        &|d| std::fs::write(d.join("tokenizer.json"), r#"{"model": {"type": "WordPiece", "vocab": {}}}"#).unwrap(),
        "SentencePiece Unigram only",
    );
    refuse(
        &|d| std::fs::write(d.join("config.json"), r#"{"model_type": "gpt2", "hidden_size": 32}"#).unwrap(),
        "not an xlm-roberta or bert encoder",
    );
    refuse(&|d| std::fs::write(d.join("model.safetensors"), b"not safetensors").unwrap(), "model.safetensors");
}
