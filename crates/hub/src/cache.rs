//! [`HubCache`]: the Hugging Face hub cache, in exactly the layout `huggingface-cli` (the
//! `huggingface_hub` Python library) writes, so either tool reuses the other's downloads:
//!
//! ```text
//! <cache>/models--{org}--{name}/
//!     blobs/{etag}                              file contents, named by the hub's ETag
//!                                               (the sha256 for LFS files)
//!     snapshots/{commit}/{path}                 symlink -> ../../blobs/{etag} (one more
//!                                               `../` per folder in {path})
//!     refs/{revision}                           the commit hash the branch or tag named
//!                                               when it was last resolved
//! ```
//!
//! A blob is written as `blobs/{etag}.incomplete` and renamed once complete and checked, so
//! a `blobs/{etag}` file is always whole; an interrupted download resumes from its
//! `.incomplete` file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::file::{HubFile, is_commit_hash};

/// The hub cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCache {
    dir: PathBuf,
}

/// The cache folder of a model repo: `models--{org}--{name}`.
#[must_use]
pub fn repo_folder_name(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

impl HubCache {
    /// The cache at `dir` (`HF_HUB_CACHE`, `$HF_HOME/hub` or `~/.cache/huggingface/hub`,
    /// as the caller resolved it). Nothing is created until a download.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder of `repo`.
    #[must_use]
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.dir.join(repo_folder_name(repo))
    }

    /// Where the contents with `etag` are stored.
    #[must_use]
    pub fn blob_path(&self, repo: &str, etag: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(etag)
    }

    /// Where `file` appears in the snapshot of `commit`.
    #[must_use]
    pub fn snapshot_path(&self, file: &HubFile, commit: &str) -> PathBuf {
        let mut path = self.repo_dir(&file.repo).join("snapshots").join(commit);
        path.extend(file.path.split('/'));
        path
    }

    /// The commit `file.revision` names in the cache: the revision itself when it is a
    /// commit hash, else the content of `refs/{revision}`.
    #[must_use]
    pub fn commit(&self, file: &HubFile) -> Option<String> {
        if file.revision_is_commit() {
            return Some(file.revision.clone());
        }
        let mut ref_path = self.repo_dir(&file.repo).join("refs");
        ref_path.extend(file.revision.split('/'));
        let commit = std::fs::read_to_string(ref_path).ok()?;
        let commit = commit.trim();
        is_commit_hash(commit).then(|| commit.to_owned())
    }

    /// The cached copy of `file`, without any network access: its path in the snapshot
    /// the revision names, when that exists and resolves to a file.
    #[must_use]
    pub fn get(&self, file: &HubFile) -> Option<PathBuf> {
        let commit = self.commit(file)?;
        let path = self.snapshot_path(file, &commit);
        path.is_file().then_some(path)
    }

    /// Records that `file.revision` names `commit` (`refs/{revision}`), unless the revision
    /// is a commit hash itself.
    pub(crate) fn write_ref(&self, file: &HubFile, commit: &str) -> Result<()> {
        if file.revision_is_commit() {
            return Ok(());
        }
        let mut ref_path = self.repo_dir(&file.repo).join("refs");
        ref_path.extend(file.revision.split('/'));
        if std::fs::read_to_string(&ref_path).is_ok_and(|current| current.trim() == commit) {
            return Ok(());
        }
        write_atomically(&ref_path, commit.as_bytes())
    }

    /// Points `snapshots/{commit}/{path}` at `blobs/{etag}` with a relative symlink (a copy
    /// where symlinks do not exist), replacing whatever was there.
    pub(crate) fn link(&self, file: &HubFile, commit: &str, etag: &str) -> Result<PathBuf> {
        let pointer = self.snapshot_path(file, commit);
        let parent = pointer.parent().unwrap_or(&self.dir).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(Error::io(&parent))?;
        // From the pointer's folder up to the repo folder: `snapshots`, `{commit}`, and one
        // level per folder in the file's path.
        let mut target = PathBuf::new();
        for _ in 0..=file.path.split('/').count() {
            target.push("..");
        }
        target.push("blobs");
        target.push(etag);
        let temp = parent.join(format!(".{etag}.link"));
        let _ = std::fs::remove_file(&temp);
        make_link(&target, &self.blob_path(&file.repo, etag), &temp).map_err(Error::io(&temp))?;
        std::fs::rename(&temp, &pointer).map_err(Error::io(&pointer))?;
        Ok(pointer)
    }
}

#[cfg(unix)]
fn make_link(relative_target: &Path, _blob: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(relative_target, link)
}

#[cfg(not(unix))]
fn make_link(_relative_target: &Path, blob: &Path, link: &Path) -> std::io::Result<()> {
    std::fs::copy(blob, link).map(|_| ())
}

/// Writes `bytes` to `path` through a temporary file and a rename, creating folders.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, bytes).map_err(Error::io(&temp))?;
    std::fs::rename(&temp, path).map_err(Error::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn links_are_relative_and_refs_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HubCache::new(dir.path());
        let file = HubFile::new("org/my--model", "sub/dir/w.gguf").unwrap();
        let blob = cache.blob_path(&file.repo, "abc");
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, b"weights").unwrap();
        assert_eq!(cache.get(&file), None);

        let pointer = cache.link(&file, COMMIT, "abc").unwrap();
        cache.write_ref(&file, COMMIT).unwrap();
        assert_eq!(
            pointer,
            dir.path().join("models--org--my--model/snapshots").join(COMMIT).join("sub/dir/w.gguf")
        );
        #[cfg(unix)]
        assert_eq!(std::fs::read_link(&pointer).unwrap(), PathBuf::from("../../../../blobs/abc"));
        assert_eq!(std::fs::read(&pointer).unwrap(), b"weights");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("models--org--my--model/refs/main")).unwrap(),
            COMMIT
        );
        assert_eq!(cache.get(&file), Some(pointer.clone()));
        let pinned = HubFile::at_revision("org/my--model", "sub/dir/w.gguf", COMMIT).unwrap();
        assert_eq!(cache.get(&pinned), Some(pointer));
    }
}
