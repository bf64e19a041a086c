//! [`HubFile`]: one file of a hub repo at a revision, checked so that it can never name a
//! path outside the cache.

use std::fmt;

use crate::error::Error;

/// The revision used when none is given.
pub const DEFAULT_REVISION: &str = "main";

/// One file of a Hugging Face model repo at a revision (branch, tag or commit hash).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HubFile {
    /// The repo id: `org/name`, or `name` for the few repos without an organisation.
    pub repo: String,
    /// The file's path inside the repo, `/`-separated (`onnx/model.onnx`).
    pub path: String,
    /// A branch, a tag or a commit hash; [`DEFAULT_REVISION`] unless given.
    pub revision: String,
}

impl HubFile {
    /// `path` of `repo` on the default branch, after checking both.
    ///
    /// # Errors
    /// `InvalidReference` for an empty or malformed repo id or path (absolute, `..`,
    /// backslashes, empty segments).
    pub fn new(repo: impl Into<String>, path: impl Into<String>) -> Result<Self, Error> {
        Self::at_revision(repo, path, DEFAULT_REVISION)
    }

    /// `path` of `repo` at `revision`, after checking all three.
    ///
    /// # Errors
    /// As [`HubFile::new`], and for an empty or malformed revision.
    pub fn at_revision(
        repo: impl Into<String>,
        path: impl Into<String>,
        revision: impl Into<String>,
    ) -> Result<Self, Error> {
        let file = Self { repo: repo.into(), path: path.into(), revision: revision.into() };
        file.check()?;
        Ok(file)
    }

    /// Splits a model reference `org/name/path/in/repo` into repo `org/name` and the path,
    /// on the default branch; `None` when it has fewer than three segments or is not valid.
    /// The registry's ids for cached hub GGUF files have this shape.
    #[must_use]
    pub fn parse(reference: &str) -> Option<Self> {
        let mut parts = reference.splitn(3, '/');
        let (org, name, path) = (parts.next()?, parts.next()?, parts.next()?);
        Self::new(format!("{org}/{name}"), path).ok()
    }

    /// Whether the revision is a full commit hash (40 lower-case hex digits).
    #[must_use]
    pub fn revision_is_commit(&self) -> bool {
        is_commit_hash(&self.revision)
    }

    fn check(&self) -> Result<(), Error> {
        let invalid = |reason: &'static str| Error::InvalidReference { file: self.clone(), reason };
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars().all(|c| !c.is_control() && c != '\\' && c != ':')
        };
        let repo_segments: Vec<&str> = self.repo.split('/').collect();
        if repo_segments.len() > 2
            || !repo_segments.iter().all(|s| {
                segment_ok(s) && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            })
        {
            return Err(invalid(
                "the repo id must be `org/name` of letters, digits, `-`, `_`, `.`",
            ));
        }
        if self.path.starts_with('/') || !self.path.split('/').all(segment_ok) {
            return Err(invalid(
                "the file path must be relative, without `..`, `.`, empty segments or `\\`",
            ));
        }
        if !self.revision.split('/').all(segment_ok) {
            return Err(invalid("the revision must be a branch, tag or commit hash"));
        }
        Ok(())
    }
}

impl fmt::Display for HubFile {
    /// `org/name/path`, with `@revision` unless it is the default branch.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.repo, self.path)?;
        if self.revision != DEFAULT_REVISION {
            write!(f, "@{}", self.revision)?;
        }
        Ok(())
    }
}

/// Whether `s` is a full git commit hash.
pub(crate) fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_after_the_repo_id() {
        let file = HubFile::parse("org/name/sub/model.gguf").unwrap();
        assert_eq!(file.repo, "org/name");
        assert_eq!(file.path, "sub/model.gguf");
        assert_eq!(file.revision, "main");
        assert_eq!(file.to_string(), "org/name/sub/model.gguf");
        assert_eq!(HubFile::parse("org/model.gguf"), None);
        assert_eq!(HubFile::parse("/abs/path/model.gguf"), None);
        assert_eq!(HubFile::parse("./models/x.gguf"), None);
    }

    #[test]
    fn paths_that_could_leave_the_cache_are_refused() {
        for (repo, path, revision) in [
            ("org/name", "../escape", "main"),
            ("org/name", "a/../../b", "main"),
            ("org/name", "/etc/passwd", "main"),
            ("org/name", "a//b", "main"),
            ("org/name", "a\\b", "main"),
            ("org/name", "", "main"),
            ("../x", "f", "main"),
            ("a/b/c", "f", "main"),
            ("org/na me", "f", "main"),
            ("org/name", "f", "../../x"),
            ("org/name", "f", ""),
        ] {
            assert!(
                HubFile::at_revision(repo, path, revision).is_err(),
                "{repo} {path} {revision}"
            );
        }
        let ok = HubFile::at_revision("gpt2", "onnx/model.onnx", "refs/pr/1").unwrap();
        assert_eq!(ok.to_string(), "gpt2/onnx/model.onnx@refs/pr/1");
    }

    #[test]
    fn commit_hashes_are_recognised() {
        assert!(is_commit_hash("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit_hash("main"));
        assert!(!is_commit_hash("0123456789ABCDEF0123456789abcdef01234567"));
    }
}
