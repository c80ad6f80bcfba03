//! Translation speed: Karavan's NLLB-200 implementation against Hugging Face transformers and
//! CTranslate2, on the same checkpoint, the same 200 sentences (token ids) and the same thread count,
//! every output forced to the same length (a random-weight checkpoint would otherwise stop at random
//! points), greedy and beam 4: Karavan float32 against transformers and CTranslate2 float32, Karavan
//! int8 against CTranslate2 int8. Prints generated tokens per second and the ratios, and how often
//! Karavan's int8 outputs equal its float32 ones; Karavan runs before and after the peers (the
//! machine's speed drifts) and the ratios use the mean of its two runs.
//!
//! The checkpoint is `KARAVAN_BENCH_NLLB`: a directory with NLLB-200-distilled-600M's shape, made by
//! `reference/make_m2m100_fixtures.py --full-size DIR` (random weights; or a real checkpoint). The
//! peers run in `benches/translate_peers.py` with the Python `KARAVAN_BENCH_PYTHON` (one with torch,
//! transformers and ctranslate2); without it only Karavan is measured. `KARAVAN_BENCH_THREADS` (2),
//! `KARAVAN_BENCH_TOKENS` (32 generated tokens per sentence), `KARAVAN_BENCH_BATCH` (16 sentences),
//! `KARAVAN_BENCH_SENTENCES` (all 200, or that many taken evenly), `KARAVAN_BENCH_PRECISION`
//! (`float32,int8`), `KARAVAN_BENCH_BEAMS` (`1,4`).
//!
//! `cargo bench -p karavan-lang --bench translate`

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use karavan_lang::Precision;
use karavan_lang::bpe::BpeTokenizer;
use karavan_lang::generate::{EarlyStopping, Options, generate};
use karavan_lang::m2m100::M2m100;

/// The dev set's columns used, with their NLLB codes: 40 sentences each, 200 in all.
const COLUMNS: [(&str, &str); 5] =
    [("en", "eng_Latn"), ("ru", "rus_Cyrl"), ("kk", "kaz_Cyrl"), ("zh", "zho_Hans"), ("ky", "kir_Cyrl")];

fn main() {
    let Some(dir) = std::env::var_os("KARAVAN_BENCH_NLLB").map(PathBuf::from) else {
        eprintln!(
            "translate bench: set KARAVAN_BENCH_NLLB to a checkpoint directory (make one with \
             `python crates/karavan-lang/reference/make_m2m100_fixtures.py --full-size DIR`); nothing measured"
        );
        return;
    };
    let threads = karavan_lang::testing::bench_threads();
    let new_tokens = karavan_lang::testing::bench_setting("KARAVAN_BENCH_TOKENS", 32);
    let batch = karavan_lang::testing::bench_setting("KARAVAN_BENCH_BATCH", 16);
    let tokenizer = BpeTokenizer::load(&dir).expect("the checkpoint's tokenizer");
    let precisions: Vec<Precision> = std::env::var("KARAVAN_BENCH_PRECISION")
        .unwrap_or_else(|_| "float32,int8".into())
        .split(',')
        .map(|p| Precision::parse(p).expect("KARAVAN_BENCH_PRECISION: float32 and/or int8"))
        .collect();
    let models: Vec<(Precision, M2m100)> = precisions
        .iter()
        .map(|&precision| {
            let started = Instant::now();
            let model = M2m100::load_with(&dir, precision).expect("the checkpoint");
            println!(
                "loaded {} ({}) in {:.1} s ({threads} threads)",
                dir.display(),
                precision.as_str(),
                started.elapsed().as_secs_f64()
            );
            (precision, model)
        })
        .collect();
    let devset = karavan_lang::testing::devset();
    let mut sources: Vec<Vec<u32>> = Vec::new();
    for (column, code) in COLUMNS {
        let c = devset.languages.iter().position(|l| l == column).expect("the dev set's column");
        let language = tokenizer.language(code).expect("an NLLB language code");
        for sentence in &devset.sentences[c] {
            let mut ids = vec![language];
            ids.extend(tokenizer.encode(sentence));
            ids.push(tokenizer.eos);
            sources.push(ids);
        }
    }
    let target = tokenizer.language("kaz_Cyrl").expect("kaz_Cyrl");
    // Fewer sentences (`KARAVAN_BENCH_SENTENCES`) are taken evenly from all five languages.
    let limit = karavan_lang::testing::bench_setting("KARAVAN_BENCH_SENTENCES", sources.len()).min(sources.len());
    let total = sources.len();
    sources = (0..limit).map(|i| sources[i * total / limit].clone()).collect();
    let source_tokens: usize = sources.iter().map(Vec::len).sum();
    println!(
        "{} sentences, {source_tokens} source tokens, {new_tokens} generated tokens each, batches of {batch}; int8 kernel {}",
        sources.len(),
        karavan_lang::testing::int8_kernels()[0]
    );

    // Karavan runs before the peers and again after them: the machine's speed drifts (other
    // tenants), and the two runs show by how much. The ratios use their mean.
    let beam_sizes: Vec<usize> = std::env::var("KARAVAN_BENCH_BEAMS")
        .unwrap_or_else(|_| "1,4".into())
        .split(',')
        .map(|b| b.trim().parse().expect("KARAVAN_BENCH_BEAMS: beam sizes such as 1,4"))
        .collect();
    let measure = |run: &str, outputs: &mut Vec<Vec<Vec<u32>>>| -> Vec<(Precision, usize, f64)> {
        let mut rates = Vec::new();
        for (precision, model) in &models {
            for &beams in &beam_sizes {
                let options = Options {
                    num_beams: beams,
                    max_length: new_tokens + 1,
                    min_length: new_tokens + 1,
                    length_penalty: 1.0,
                    early_stopping: EarlyStopping::Heuristic,
                    no_repeat_ngram_size: 0,
                    forced_eos: false,
                };
                let started = Instant::now();
                let mut generated = 0;
                let mut all = Vec::new();
                for chunk in sources.chunks(batch) {
                    let out = generate(model, chunk, &vec![target; chunk.len()], &options).expect("generation");
                    generated += out.iter().map(|o| o.len() - 1).sum::<usize>();
                    all.extend(out);
                }
                let rate = generated as f64 / started.elapsed().as_secs_f64();
                println!("karavan {:<8} beam {beams}: {rate:>8.1} tokens/s   ({run})", precision.as_str());
                rates.push((*precision, beams, rate));
                outputs.push(all);
            }
        }
        rates
    };
    let mut outputs = Vec::new();
    let before = measure("before the peers", &mut outputs);
    if models.len() == 2 && beam_sizes == [1, 4] {
        // The same runs in both precisions: how often int8 chose float32's tokens.
        for (b, beams) in [1, 4].into_iter().enumerate() {
            let (float, int8) = (&outputs[b], &outputs[2 + b]);
            let same = float.iter().zip(int8).filter(|(a, b)| a == b).count();
            let tokens: usize = float.iter().map(Vec::len).sum();
            let agreeing: usize =
                float.iter().zip(int8).map(|(a, b)| a.iter().zip(b).take_while(|(x, y)| x == y).count()).sum();
            println!(
                "int8 against float32, beam {beams}: {same} of {} outputs identical ({:.1} %); {:.1} % of tokens before the first difference",
                float.len(),
                100.0 * same as f64 / float.len() as f64,
                100.0 * agreeing as f64 / tokens as f64
            );
        }
    }

    let Some(python) = std::env::var_os("KARAVAN_BENCH_PYTHON") else {
        println!("(set KARAVAN_BENCH_PYTHON to a Python with torch, transformers and ctranslate2 to compare)");
        return;
    };
    let request = serde_json::json!({"sources": sources, "target": target, "new_tokens": new_tokens,
        "batch": batch, "threads": threads.parse::<usize>().unwrap_or(2)});
    let request_path = std::env::temp_dir().join(format!("karavan-bench-translate-{}.json", std::process::id()));
    std::fs::write(&request_path, request.to_string()).expect("the request file");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/translate_peers.py");
    let output = Command::new(python)
        .arg(script)
        .arg(&dir)
        .arg(&request_path)
        .env("OMP_NUM_THREADS", &threads)
        .output()
        .expect("the peers' script runs");
    let _ = std::fs::remove_file(&request_path);
    if !output.status.success() {
        eprintln!("the peers failed: {}", String::from_utf8_lossy(&output.stderr));
        std::process::exit(1);
    }
    let peers: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the peers' JSON");
    let after = measure("after the peers", &mut Vec::new());
    let peer = |name: &str, beams: usize| {
        peers.get(format!("{name}_beam{beams}")).and_then(|v| v.as_f64()).unwrap_or(f64::NAN)
    };
    if let Some(versions) = peers.get("versions") {
        println!("peers: {versions}");
    }
    for ((precision, beams, first), (_, _, second)) in before.into_iter().zip(after) {
        let rate = (first + second) / 2.0;
        let name = precision.as_str();
        println!("karavan {name:<8} beam {beams}: {rate:>8.1} tokens/s   (mean of the two runs)");
        let (hf, ct2) = (peer("transformers", beams), peer(&format!("ct2_{name}"), beams));
        if precision == Precision::Float32 {
            println!("transformers     beam {beams}: {hf:>8.1} tokens/s   karavan / transformers = {:.2}", rate / hf);
        }
        println!("ct2 {name:<12} beam {beams}: {ct2:>8.1} tokens/s   karavan / ct2 = {:.2}", rate / ct2);
    }
}
