//! Model discovery on the local disk, without any network access.
//!
//! [`ModelRegistry::scan`] lists the models found in three places:
//!
//! - a local models folder: `*.gguf` files at its top level and one folder deep, and
//!   Hugging Face style folders (a `config.json` next to `*.safetensors` or `*.gguf` files);
//! - the Hugging Face hub cache, in the layout `huggingface-cli download` writes
//!   (`models--{org}--{name}/refs/main` naming the current snapshot under `snapshots/`);
//! - bundled model files named by the caller.
//!
//! Unreadable folders and files are skipped (logged at debug level): a scan never fails.
//! [`hf_cache_dir`] resolves where the hub cache is; the binary feeds it the environment.

use std::fs;
use std::path::{Path, PathBuf};

/// Where the registry looks for models.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// A folder of local models (GGUF files and Hugging Face style folders).
    pub models_dir: Option<PathBuf>,
    /// The Hugging Face hub cache (see [`hf_cache_dir`]): where downloads go, listed first.
    pub hf_cache_dir: Option<PathBuf>,
    /// Other Hugging Face caches to list (see [`hf_cache_dirs`]): a model found in several
    /// is listed from the first.
    pub other_hf_cache_dirs: Vec<PathBuf>,
    /// Model files shipped with ragd (the asset directory's chat model).
    pub bundled: Vec<PathBuf>,
}

/// Where a model was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelSource {
    /// The local models folder.
    Local,
    /// The Hugging Face hub cache.
    HfCache,
    /// A file shipped with ragd.
    Bundled,
}

/// How a model is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelFormat {
    /// One GGUF file (llama.cpp).
    Gguf,
    /// A Hugging Face model folder (`config.json` and weights).
    HfFolder,
}

/// One model the registry found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// A stable name: the path below the models folder (`sub/model.gguf`), the repo id for
    /// hub folders (`org/name`) or the repo id and file for hub GGUF files
    /// (`org/name/file.gguf`), and the file name for bundled models.
    pub id: String,
    /// Where it was found.
    pub source: ModelSource,
    /// The GGUF file or the model folder.
    pub path: PathBuf,
    /// How it is stored.
    pub format: ModelFormat,
    /// The file size, or the summed size of the folder's top-level files.
    pub size_bytes: u64,
    /// The hub snapshot (commit hash) for models from the hub cache.
    pub revision: Option<String>,
    /// Why the local backend cannot run it (a Hugging Face folder that cannot be imported:
    /// PyTorch `.bin` weights only, an unsupported architecture); `None` when it can.
    pub unsupported: Option<String>,
}

/// Lists the models available on this machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModelRegistry;

impl ModelRegistry {
    /// Scans every configured place; entries are ordered by source, then id.
    #[must_use]
    pub fn scan(config: &RegistryConfig) -> Vec<ModelEntry> {
        let mut entries = Vec::new();
        if let Some(dir) = &config.models_dir {
            scan_local(dir, &mut entries);
        }
        if let Some(dir) = &config.hf_cache_dir {
            scan_hf_cache(dir, &mut entries);
        }
        for dir in &config.other_hf_cache_dirs {
            let mut found = Vec::new();
            scan_hf_cache(dir, &mut found);
            for entry in found {
                if !entries.iter().any(|e| e.source == ModelSource::HfCache && e.id == entry.id) {
                    entries.push(entry);
                }
            }
        }
        for path in &config.bundled {
            match fs::metadata(path) {
                Ok(meta) if meta.is_file() => entries.push(ModelEntry {
                    id: file_name(path),
                    source: ModelSource::Bundled,
                    path: path.clone(),
                    format: ModelFormat::Gguf,
                    size_bytes: meta.len(),
                    revision: None,
                    unsupported: None,
                }),
                Ok(_) | Err(_) => {
                    tracing::debug!(path = %path.display(), "bundled model is missing");
                }
            }
        }
        entries.sort_by(|a, b| (a.source, &a.id).cmp(&(b.source, &b.id)));
        entries
    }
}

/// The Hugging Face hub cache folder, with the precedence `huggingface_hub` uses:
/// `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$HOME/.cache/huggingface/hub`.
///
/// The caller passes the environment values in (libraries do not read the environment);
/// `None` when none of them is set.
#[must_use]
pub fn hf_cache_dir(
    hf_hub_cache: Option<&Path>,
    hf_home: Option<&Path>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    if let Some(cache) = hf_hub_cache {
        return Some(cache.to_path_buf());
    }
    if let Some(hf_home) = hf_home {
        return Some(hf_home.join("hub"));
    }
    home.map(|home| home.join(".cache").join("huggingface").join("hub"))
}

/// Every Hugging Face cache location, in [`hf_cache_dir`]'s precedence and without
/// repeats: `HF_HUB_CACHE`, `$HF_HOME/hub`, `$HOME/.cache/huggingface/hub` (each when its
/// variable is set). A machine where tools were run with different settings has models in
/// several.
#[must_use]
pub fn hf_cache_dirs(
    hf_hub_cache: Option<&Path>,
    hf_home: Option<&Path>,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let candidates = [
        hf_hub_cache.map(Path::to_path_buf),
        hf_home.map(|h| h.join("hub")),
        home.map(|h| h.join(".cache").join("huggingface").join("hub")),
    ];
    for dir in candidates.into_iter().flatten() {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// The Hugging Face repo id of a hub cache folder name, or `None` for other folders
/// (`datasets--…`, `spaces--…`, lock and temp folders).
///
/// The folder is `models--{org}--{name}` with `/` replaced by `--`. Organisation and user
/// names cannot contain `--`, but repo names can, so the name is split at the FIRST `--`
/// after `models--`: `models--some-org--my--model` is `some-org/my--model`. A folder without
/// a second `--` is a repo without an organisation (`models--gpt2` is `gpt2`).
#[must_use]
pub fn hf_repo_id(folder_name: &str) -> Option<String> {
    let rest = folder_name.strip_prefix("models--")?;
    if rest.is_empty() {
        return None;
    }
    Some(match rest.split_once("--") {
        Some((org, name)) if !org.is_empty() && !name.is_empty() => format!("{org}/{name}"),
        Some(_) => return None,
        None => rest.to_owned(),
    })
}

/// Adds the GGUF files and model folders of a local models folder.
fn scan_local(dir: &Path, entries: &mut Vec<ModelEntry>) {
    for path in read_dir(dir) {
        if path.is_dir() {
            if is_hf_folder(&path) {
                entries.push(ModelEntry {
                    id: file_name(&path),
                    source: ModelSource::Local,
                    size_bytes: folder_size(&path),
                    path: path.clone(),
                    format: ModelFormat::HfFolder,
                    revision: None,
                    unsupported: crate::import::unsupported_reason(&path),
                });
            }
            for inner in read_dir(&path) {
                if let Some(size) = gguf_size(&inner) {
                    let id = format!("{}/{}", file_name(&path), file_name(&inner));
                    entries.push(local_gguf(id, inner, size));
                }
            }
        } else if let Some(size) = gguf_size(&path) {
            entries.push(local_gguf(file_name(&path), path, size));
        }
    }
}

/// A GGUF entry from the local models folder.
fn local_gguf(id: String, path: PathBuf, size_bytes: u64) -> ModelEntry {
    ModelEntry {
        id,
        source: ModelSource::Local,
        path,
        format: ModelFormat::Gguf,
        size_bytes,
        revision: None,
        unsupported: None,
    }
}

/// Adds the models of a Hugging Face hub cache: for each repo the GGUF files of its current
/// snapshot (top level and one folder deep) and the snapshot itself when it is a model
/// folder.
fn scan_hf_cache(cache: &Path, entries: &mut Vec<ModelEntry>) {
    for repo_dir in read_dir(cache) {
        let Some(repo_id) = hf_repo_id(&file_name(&repo_dir)) else {
            continue;
        };
        let Some(revision) = current_revision(&repo_dir) else {
            tracing::debug!(repo = %repo_id, "hub cache entry has no current snapshot");
            continue;
        };
        let snapshot = repo_dir.join("snapshots").join(&revision);
        if !snapshot.is_dir() {
            tracing::debug!(repo = %repo_id, %revision, "hub cache snapshot is missing");
            continue;
        }
        let hub_entry = |id: String, path: PathBuf, format, size_bytes| ModelEntry {
            unsupported: if format == ModelFormat::HfFolder {
                crate::import::unsupported_reason(&path)
            } else {
                None
            },
            id,
            source: ModelSource::HfCache,
            path,
            format,
            size_bytes,
            revision: Some(revision.clone()),
        };
        if is_hf_folder(&snapshot) {
            entries.push(hub_entry(
                repo_id.clone(),
                snapshot.clone(),
                ModelFormat::HfFolder,
                folder_size(&snapshot),
            ));
        }
        for path in read_dir(&snapshot) {
            if path.is_dir() {
                for inner in read_dir(&path) {
                    if let Some(size) = gguf_size(&inner) {
                        let id = format!("{repo_id}/{}/{}", file_name(&path), file_name(&inner));
                        entries.push(hub_entry(id, inner, ModelFormat::Gguf, size));
                    }
                }
            } else if let Some(size) = gguf_size(&path) {
                let id = format!("{repo_id}/{}", file_name(&path));
                entries.push(hub_entry(id, path, ModelFormat::Gguf, size));
            }
        }
    }
}

/// The snapshot `refs/main` names, or the only snapshot when there is no `refs/main`.
fn current_revision(repo_dir: &Path) -> Option<String> {
    if let Ok(main) = fs::read_to_string(repo_dir.join("refs").join("main")) {
        let revision = main.trim();
        if !revision.is_empty() {
            return Some(revision.to_owned());
        }
    }
    let snapshots = read_dir(&repo_dir.join("snapshots"));
    match snapshots.as_slice() {
        [only] if only.is_dir() => Some(file_name(only)),
        _ => None,
    }
}

/// Whether `dir` is a Hugging Face model folder: `config.json` plus weights (safetensors,
/// or PyTorch pickles, listed as not importable).
fn is_hf_folder(dir: &Path) -> bool {
    dir.join("config.json").is_file()
        && read_dir(dir).iter().any(|path| {
            path.is_file()
                && matches!(extension(path).as_deref(), Some("safetensors" | "bin" | "pt" | "pth"))
        })
}

/// The size of `path` when it is a `.gguf` file (following symlinks, as the hub cache
/// links snapshot files to blobs).
fn gguf_size(path: &Path) -> Option<u64> {
    if extension(path).as_deref() != Some("gguf") {
        return None;
    }
    fs::metadata(path).ok().filter(fs::Metadata::is_file).map(|meta| meta.len())
}

/// The summed size of the files directly inside `dir`.
fn folder_size(dir: &Path) -> u64 {
    read_dir(dir)
        .iter()
        .filter_map(|path| fs::metadata(path).ok())
        .filter(fs::Metadata::is_file)
        .map(|meta| meta.len())
        .sum()
}

/// The lower-cased extension of `path`.
fn extension(path: &Path) -> Option<String> {
    path.extension().map(|ext| ext.to_string_lossy().to_ascii_lowercase())
}

/// The last component of `path` as a string.
fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The entries of `dir`, sorted; empty when it cannot be read.
fn read_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(iter) = fs::read_dir(dir) else {
        tracing::debug!(dir = %dir.display(), "cannot read model folder");
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = iter.filter_map(|entry| entry.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_split_at_the_first_double_dash() {
        assert_eq!(hf_repo_id("models--org--name").as_deref(), Some("org/name"));
        assert_eq!(
            hf_repo_id("models--some-org--my--model").as_deref(),
            Some("some-org/my--model")
        );
        assert_eq!(hf_repo_id("models--gpt2").as_deref(), Some("gpt2"));
        assert_eq!(hf_repo_id("datasets--x--y"), None);
        assert_eq!(hf_repo_id("spaces--x--y"), None);
        assert_eq!(hf_repo_id("models--"), None);
        assert_eq!(hf_repo_id("models----x"), None);
    }
}
