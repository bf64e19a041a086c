//! [`HubClient`]: the hub's file protocol on the workspace's `reqwest`, as `huggingface_hub`'s
//! `hf_hub_download` speaks it.
//!
//! For each file not already in the cache:
//!
//! 1. `HEAD {endpoint}/{repo}/resolve/{revision}/{path}` without following redirects. The
//!    answer (a 200 for small files, a 302 to a CDN for LFS files) carries the commit the
//!    revision points at (`X-Repo-Commit`), the blob's id (`X-Linked-Etag` for LFS files,
//!    the sha256 of the contents; else `ETag`) and its size (`X-Linked-Size`, else
//!    `Content-Length`). A redirect without `X-Repo-Commit` is a renamed repo and is
//!    followed.
//! 2. When `blobs/{etag}` is missing, `GET` the redirect target (or the resolve URL) into
//!    `blobs/{etag}.incomplete`, resuming a partial file with a `Range` request, then check
//!    the size (and the sha256 for LFS files) and rename it into place.
//! 3. Link `snapshots/{commit}/{path}` to the blob and write `refs/{revision}`.
//!
//! A file whose revision already resolves in the cache (`refs/{revision}` names a snapshot
//! that holds it, or the revision is a cached commit) is used without any request, so a
//! server restart never waits on the network; remove the `refs` file to look for updates.
//! The token is sent only to the endpoint's own origin, never to the CDN a redirect names.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{self, HeaderMap};
use reqwest::{StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cache::HubCache;
use crate::error::{Error, Result};
use crate::file::{HubFile, is_commit_hash};

/// The public Hugging Face hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Relative redirects (renamed repos) followed while resolving metadata.
const MAX_METADATA_REDIRECTS: usize = 5;

/// Where the hub is, how to reach it, and where files go.
#[derive(Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// The hub's base URL ([`DEFAULT_ENDPOINT`]; a mirror or a test server otherwise).
    pub endpoint: String,
    /// The cache folder (`HF_HUB_CACHE`, `$HF_HOME/hub` or `~/.cache/huggingface/hub`).
    pub cache_dir: PathBuf,
    /// A Hugging Face access token, sent as `Authorization: Bearer` to the endpoint.
    pub token: Option<String>,
    /// Never contact the hub: files must be in the cache already.
    pub offline: bool,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole metadata request (`HEAD`).
    pub request_timeout: Duration,
    /// Time between two reads of a download (a whole download may take hours).
    pub read_timeout: Duration,
}

impl HubConfig {
    /// The public hub, caching into `cache_dir`, with no token and default timeouts
    /// (connect 10 s, metadata 30 s, 60 s without data during a download).
    #[must_use]
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            cache_dir: cache_dir.into(),
            token: None,
            offline: false,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("offline", &self.offline)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

/// How far a download has come, handed to the progress callback after every chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    /// The file being transferred (the last one once everything is done).
    pub file: &'a HubFile,
    /// Bytes of this file on disk.
    pub file_bytes: u64,
    /// This file's size (0 when the hub did not say).
    pub file_total: u64,
    /// Bytes of all requested files on disk, cached ones included.
    pub bytes: u64,
    /// The summed size of all requested files.
    pub total: u64,
}

impl Progress<'_> {
    /// Overall progress, 0 to 100 (100 when there is nothing to transfer).
    #[must_use]
    pub fn percent(&self) -> u8 {
        if self.total == 0 || self.bytes >= self.total {
            return 100;
        }
        u8::try_from(self.bytes * 100 / self.total).unwrap_or(100)
    }
}

/// What a download reports progress to.
pub type ProgressFn<'a> = &'a (dyn Fn(&Progress<'_>) + Send + Sync);

/// What the hub says about one file.
#[derive(Debug, Clone)]
struct Metadata {
    /// The commit the revision points at.
    commit: String,
    /// The blob's name in the cache.
    etag: String,
    /// The size, when announced.
    size: Option<u64>,
    /// The sha256 to check the contents against (LFS files).
    sha256: Option<String>,
    /// Where to `GET` the contents.
    url: Url,
}

/// What to do for one requested file.
#[derive(Debug)]
enum Plan {
    /// Already in the snapshot the revision names.
    Cached(PathBuf),
    /// Resolved on the hub; the blob may already be in the cache.
    Remote(Metadata),
}

/// Downloads hub files into a [`HubCache`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HubClient {
    config: HubConfig,
    endpoint: Url,
    cache: HubCache,
    metadata_http: reqwest::Client,
    download_http: reqwest::Client,
}

/// The files of a hub repo at one commit ([`HubClient::list_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoListing {
    /// The commit the revision named.
    pub commit: String,
    /// Every file's path in the repo.
    pub files: Vec<String>,
}

impl HubClient {
    /// A client for `config`'s endpoint and cache.
    ///
    /// # Errors
    /// `InvalidEndpoint` when the endpoint is not an http(s) URL; `Client` when the HTTP
    /// client cannot be built.
    pub fn new(config: HubConfig) -> Result<Self> {
        let invalid =
            |reason: String| Error::InvalidEndpoint { endpoint: config.endpoint.clone(), reason };
        let endpoint =
            Url::parse(config.endpoint.trim()).map_err(|err| invalid(err.to_string()))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.cannot_be_a_base() {
            return Err(invalid("not an http(s) URL".to_owned()));
        }
        let user_agent = concat!("ragd-hub/", env!("CARGO_PKG_VERSION"));
        let metadata_http = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::Client)?;
        // reqwest drops the Authorization header when a redirect leaves the origin.
        let download_http = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(Error::Client)?;
        let cache = HubCache::new(config.cache_dir.clone());
        Ok(Self { config, endpoint, cache, metadata_http, download_http })
    }

    /// The cache this client writes.
    #[must_use]
    pub fn cache(&self) -> &HubCache {
        &self.cache
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Fetches one file; see [`HubClient::download`].
    ///
    /// # Errors
    /// As [`HubClient::download`].
    pub async fn download_file(&self, file: &HubFile, progress: ProgressFn<'_>) -> Result<PathBuf> {
        let mut paths = self.download(std::slice::from_ref(file), progress).await?;
        paths.pop().ok_or_else(|| Error::NotFound { file: file.clone(), code: None })
    }

    /// Makes every file of `files` available in the cache and returns their snapshot paths,
    /// in order. Cached files cost no request; the others are resolved first (so the
    /// overall total is known), then transferred one after the other, reporting progress
    /// after every chunk and once more when all are done.
    ///
    /// # Errors
    /// `Offline` for a missing file in offline mode; `Unauthorized` (401/403),
    /// `NotFound` (404) and `Status` for hub answers; `Connect`/`Timeout` for the network;
    /// `SizeMismatch`/`HashMismatch` for a corrupt transfer; `Io` for the cache folder.
    pub async fn download(
        &self,
        files: &[HubFile],
        progress: ProgressFn<'_>,
    ) -> Result<Vec<PathBuf>> {
        let mut plans = Vec::with_capacity(files.len());
        for file in files {
            if let Some(path) = self.cache.get(file) {
                tracing::debug!(%file, path = %path.display(), "hub file is cached");
                plans.push(Plan::Cached(path));
            } else if self.config.offline {
                return Err(Error::Offline {
                    file: file.clone(),
                    cache_dir: self.cache.dir().to_path_buf(),
                });
            } else {
                plans.push(Plan::Remote(self.metadata(file).await?));
            }
        }
        let sizes: Vec<u64> = plans
            .iter()
            .map(|plan| match plan {
                Plan::Cached(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
                Plan::Remote(meta) => meta.size.unwrap_or(0),
            })
            .collect();
        let total = sizes.iter().sum();
        let last_size = sizes.last().copied().unwrap_or(0);
        let mut done = 0;
        let mut paths = Vec::with_capacity(files.len());
        for ((file, plan), size) in files.iter().zip(plans).zip(sizes) {
            match plan {
                Plan::Cached(path) => paths.push(path),
                Plan::Remote(meta) => {
                    let blob = self.cache.blob_path(&file.repo, &meta.etag);
                    let complete = std::fs::metadata(&blob)
                        .is_ok_and(|m| m.is_file() && meta.size.is_none_or(|s| s == m.len()));
                    if complete {
                        tracing::debug!(%file, "hub blob is cached; linking it");
                    } else {
                        let transfer = Transfer { file, meta: &meta, done, total, progress };
                        self.fetch(&transfer).await?;
                    }
                    let path = self.cache.link(file, &meta.commit, &meta.etag)?;
                    self.cache.write_ref(file, &meta.commit)?;
                    tracing::info!(%file, commit = %meta.commit, path = %path.display(), "hub file ready");
                    paths.push(path);
                }
            }
            done += size;
        }
        if let Some(last) = files.last() {
            progress(&Progress {
                file: last,
                file_bytes: last_size,
                file_total: last_size,
                bytes: total,
                total,
            });
        }
        Ok(paths)
    }

    /// The files of `repo` at `revision` and the commit the revision names, from the hub's
    /// model API (`GET {endpoint}/api/models/{repo}/revision/{revision}`, its `sha` and
    /// `siblings`).
    ///
    /// # Errors
    /// `Offline` in offline mode; `Unauthorized`, `NotFound` and `Status` for hub answers
    /// (naming the repo's `config.json`); `Connect`/`Timeout` for the network;
    /// `InvalidHeader` for an answer that is not the hub's JSON.
    pub async fn list_files(&self, repo: &str, revision: &str) -> Result<RepoListing> {
        let reference = HubFile::at_revision(repo, "config.json", revision)?;
        if self.config.offline {
            return Err(Error::Offline {
                file: reference,
                cache_dir: self.cache.dir().to_path_buf(),
            });
        }
        let mut url = self.endpoint.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.extend(["api", "models"]);
            segments.extend(repo.split('/'));
            segments.push("revision");
            segments.push(revision);
        }
        let response = self
            .authorized(self.metadata_http.get(url.clone()), &url)
            .send()
            .await
            .map_err(|err| Error::transport(&url, err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(&reference, &url, status, response.headers()));
        }
        #[derive(serde::Deserialize)]
        struct Sibling {
            rfilename: String,
        }
        #[derive(serde::Deserialize)]
        struct Listing {
            sha: String,
            #[serde(default)]
            siblings: Vec<Sibling>,
        }
        let invalid =
            |value: String| Error::InvalidHeader { url: url.to_string(), header: "body", value };
        let body = response.bytes().await.map_err(|err| Error::transport(&url, err))?;
        let listing: Listing = serde_json::from_slice(&body)
            .map_err(|err| invalid(format!("not the hub's model JSON: {err}")))?;
        if !crate::file::is_commit_hash(&listing.sha) {
            return Err(invalid(format!("sha {:?} is not a commit hash", listing.sha)));
        }
        Ok(RepoListing {
            commit: listing.sha,
            files: listing.siblings.into_iter().map(|s| s.rfilename).collect(),
        })
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{path}`, each segment percent-encoded (a
    /// revision such as `refs/pr/1` becomes one segment).
    fn resolve_url(&self, file: &HubFile) -> Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.extend(file.repo.split('/'));
            segments.push("resolve");
            segments.push(&file.revision);
            segments.extend(file.path.split('/'));
        }
        url
    }

    /// `request` with the token, when there is one and `url` is on the endpoint's origin.
    fn authorized(&self, request: reqwest::RequestBuilder, url: &Url) -> reqwest::RequestBuilder {
        match &self.config.token {
            Some(token) if url.origin() == self.endpoint.origin() => request.bearer_auth(token),
            Some(_) | None => request,
        }
    }

    /// Resolves `file` on the hub with `HEAD` (step 1 of the module docs).
    async fn metadata(&self, file: &HubFile) -> Result<Metadata> {
        let mut url = self.resolve_url(file);
        for _ in 0..=MAX_METADATA_REDIRECTS {
            let request =
                self.metadata_http.head(url.clone()).header(header::ACCEPT_ENCODING, "identity");
            let response = self
                .authorized(request, &url)
                .send()
                .await
                .map_err(|err| Error::transport(&url, err))?;
            let status = response.status();
            let headers = response.headers();
            if status.is_redirection() {
                let location = header_str(headers, header::LOCATION.as_str()).ok_or_else(|| {
                    Error::MissingHeader { url: url.to_string(), header: "Location" }
                })?;
                let next = url.join(location).map_err(|_| Error::InvalidHeader {
                    url: url.to_string(),
                    header: "Location",
                    value: location.to_owned(),
                })?;
                if headers.contains_key(X_REPO_COMMIT) {
                    return parse_metadata(&url, headers, next);
                }
                tracing::debug!(from = %url, to = %next, "hub redirect (renamed repo)");
                url = next;
            } else if status.is_success() {
                return parse_metadata(&url, headers, url.clone());
            } else {
                return Err(self.status_error(file, &url, status, headers));
            }
        }
        Err(Error::Status { url: url.to_string(), status: StatusCode::LOOP_DETECTED.as_u16() })
    }

    /// Classifies an error status of the hub.
    fn status_error(
        &self,
        file: &HubFile,
        url: &Url,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Error {
        let code = header_str(headers, X_ERROR_CODE).map(str::to_owned);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized {
                file: file.clone(),
                status: status.as_u16(),
                code,
                token_sent: self.config.token.is_some() && url.origin() == self.endpoint.origin(),
            },
            StatusCode::NOT_FOUND => Error::NotFound { file: file.clone(), code },
            _ => Error::Status { url: url.to_string(), status: status.as_u16() },
        }
    }

    /// Downloads one blob into `blobs/{etag}` (step 2 of the module docs).
    async fn fetch(&self, transfer: &Transfer<'_>) -> Result<()> {
        let Transfer { file, meta, .. } = *transfer;
        let blob = self.cache.blob_path(&file.repo, &meta.etag);
        let blobs = blob.parent().unwrap_or(self.cache.dir()).to_path_buf();
        tokio::fs::create_dir_all(&blobs).await.map_err(Error::io(&blobs))?;
        let partial = blobs.join(format!("{}.incomplete", meta.etag));
        let mut resume_from = tokio::fs::metadata(&partial).await.map_or(0, |m| m.len());
        if meta.size.is_some_and(|size| resume_from >= size) {
            resume_from = 0;
        }

        let mut request = self.download_http.get(meta.url.clone());
        if resume_from > 0 {
            request = request.header(header::RANGE, format!("bytes={resume_from}-"));
        }
        let response = self
            .authorized(request, &meta.url)
            .send()
            .await
            .map_err(|err| Error::transport(&meta.url, err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(file, response.url(), status, response.headers()));
        }
        if status != StatusCode::PARTIAL_CONTENT {
            resume_from = 0;
        }
        tracing::info!(%file, size = ?meta.size, resume_from, "downloading from the hub");

        let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
        if resume_from > 0 && meta.sha256.is_some() {
            hash_prefix(&partial, &mut hasher).await?;
        }
        let out = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(resume_from > 0)
            .truncate(resume_from == 0)
            .open(&partial)
            .await
            .map_err(Error::io(&partial))?;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, out);
        let mut received = resume_from;
        let file_total = meta.size.unwrap_or(0);
        let report = |file_bytes: u64| {
            (transfer.progress)(&Progress {
                file,
                file_bytes,
                file_total,
                bytes: transfer.done + file_bytes,
                total: transfer.total,
            });
        };
        report(received);
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|err| Error::transport(&meta.url, err))?;
            if meta.sha256.is_some() {
                hasher.update(&chunk);
            }
            out.write_all(&chunk).await.map_err(Error::io(&partial))?;
            received += chunk.len() as u64;
            report(received);
        }
        out.flush().await.map_err(Error::io(&partial))?;
        out.get_ref().sync_all().await.map_err(Error::io(&partial))?;
        drop(out);

        if let Some(expected) = meta.size
            && expected != received
        {
            // A short file may be resumed; a long one is garbage.
            if received > expected {
                let _ = tokio::fs::remove_file(&partial).await;
            }
            return Err(Error::SizeMismatch { file: file.clone(), expected, actual: received });
        }
        if let Some(expected) = &meta.sha256 {
            let actual = hex(hasher.finish().as_ref());
            if &actual != expected {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(Error::HashMismatch {
                    file: file.clone(),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        tokio::fs::rename(&partial, &blob).await.map_err(Error::io(&blob))
    }
}

/// One file's transfer and where it stands in the whole download.
struct Transfer<'a> {
    file: &'a HubFile,
    meta: &'a Metadata,
    /// Bytes of the files before this one.
    done: u64,
    total: u64,
    progress: ProgressFn<'a>,
}

const X_REPO_COMMIT: &str = "x-repo-commit";
const X_LINKED_ETAG: &str = "x-linked-etag";
const X_LINKED_SIZE: &str = "x-linked-size";
const X_ERROR_CODE: &str = "x-error-code";

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// Reads commit, blob id and size from a metadata answer; `url` is where to `GET`.
fn parse_metadata(answered: &Url, headers: &HeaderMap, url: Url) -> Result<Metadata> {
    let at = answered.to_string();
    let missing = |header| Error::MissingHeader { url: at.clone(), header };
    let invalid = |header, value: &str| Error::InvalidHeader {
        url: at.clone(),
        header,
        value: value.to_owned(),
    };
    let commit = header_str(headers, X_REPO_COMMIT).ok_or_else(|| missing("X-Repo-Commit"))?;
    if !is_commit_hash(commit) {
        return Err(invalid("X-Repo-Commit", commit));
    }
    let linked = header_str(headers, X_LINKED_ETAG);
    let raw_etag = linked
        .or_else(|| header_str(headers, header::ETAG.as_str()))
        .ok_or_else(|| missing("ETag"))?;
    let etag = raw_etag.trim_start_matches("W/").trim_matches('"');
    // The ETag becomes a file name: only plain ids are accepted.
    if etag.is_empty()
        || etag.len() > 128
        || !etag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid("ETag", raw_etag));
    }
    let size = header_str(headers, X_LINKED_SIZE)
        .or_else(|| header_str(headers, header::CONTENT_LENGTH.as_str()))
        .map(|v| v.parse::<u64>().map_err(|_| invalid("X-Linked-Size", v)))
        .transpose()?;
    let sha256 = linked
        .is_some()
        .then(|| etag.to_ascii_lowercase())
        .filter(|e| e.len() == 64 && e.bytes().all(|b| b.is_ascii_hexdigit()));
    Ok(Metadata { commit: commit.to_owned(), etag: etag.to_owned(), size, sha256, url })
}

/// Feeds the bytes already in `path` to `hasher` (resuming a download).
async fn hash_prefix(path: &std::path::Path, hasher: &mut ring::digest::Context) -> Result<()> {
    let mut file = tokio::fs::File::open(path).await.map_err(Error::io(path))?;
    let mut buffer = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buffer).await.map_err(Error::io(path))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buffer[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str) -> HubClient {
        HubClient::new(HubConfig { endpoint: endpoint.to_owned(), ..HubConfig::new("/tmp/x") })
            .unwrap()
    }

    #[test]
    fn resolve_urls_encode_each_segment() {
        let file = HubFile::at_revision("org/name", "sub dir/f#1.gguf", "refs/pr/1").unwrap();
        assert_eq!(
            client("https://hub.example/mirror/").resolve_url(&file).as_str(),
            "https://hub.example/mirror/org/name/resolve/refs%2Fpr%2F1/sub%20dir/f%231.gguf"
        );
        assert_eq!(
            client("https://huggingface.co")
                .resolve_url(&HubFile::new("gpt2", "a").unwrap())
                .as_str(),
            "https://huggingface.co/gpt2/resolve/main/a"
        );
    }

    #[test]
    fn bad_endpoints_are_refused() {
        for endpoint in ["", "huggingface.co", "ftp://x", "mailto:a@b"] {
            let config = HubConfig { endpoint: endpoint.to_owned(), ..HubConfig::new("/tmp") };
            let err = HubClient::new(config).unwrap_err();
            assert_eq!(err.kind(), ragd_core::ErrorKind::InvalidInput, "{endpoint}");
        }
    }

    #[test]
    fn etags_must_be_safe_file_names() {
        let url = Url::parse("http://h/x").unwrap();
        let headers = |etag: &str| {
            let mut h = HeaderMap::new();
            h.insert(X_REPO_COMMIT, "0123456789abcdef0123456789abcdef01234567".parse().unwrap());
            h.insert(header::ETAG, etag.parse().unwrap());
            h
        };
        assert!(parse_metadata(&url, &headers("\"../../x\""), url.clone()).is_err());
        assert!(parse_metadata(&url, &headers("\"a/b\""), url.clone()).is_err());
        let meta = parse_metadata(&url, &headers("W/\"abc-123\""), url.clone()).unwrap();
        assert_eq!(meta.etag, "abc-123");
        assert_eq!(meta.sha256, None, "only X-Linked-Etag is a sha256");
    }

    #[test]
    fn percent_is_bounded() {
        let file = HubFile::new("a/b", "c").unwrap();
        let p = |bytes, total| Progress { file: &file, file_bytes: 0, file_total: 0, bytes, total };
        assert_eq!(p(0, 0).percent(), 100);
        assert_eq!(p(0, 10).percent(), 0);
        assert_eq!(p(5, 10).percent(), 50);
        assert_eq!(p(11, 10).percent(), 100);
    }
}
