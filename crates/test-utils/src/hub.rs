//! [`FakeHub`]: the Hugging Face hub's file API on loopback, for download tests without
//! the internet.
//!
//! It answers `HEAD` and `GET {endpoint}/{org}/{name}/resolve/{revision}/{path}`, and the
//! model API's file listing `GET {endpoint}/api/models/{org}/{name}/revision/{revision}`
//! (`sha` and `siblings`), the way huggingface.co does:
//!
//! - small ("git") files: 200 with `X-Repo-Commit`, a quoted `ETag` and `Content-Length`;
//! - LFS files: 302 to a blob URL on a second loopback server (another origin, like the
//!   hub's CDN) with `X-Repo-Commit`, `X-Linked-Etag` (the sha256) and `X-Linked-Size`. The
//!   blob server refuses requests that carry an `Authorization` header, as presigned CDN
//!   URLs do, and honours `Range: bytes=N-`;
//! - gated repos: 401 with `X-Error-Code: GatedRepo` unless `Authorization: Bearer {token}`;
//! - 404 with `X-Error-Code` `RepoNotFound`, `RevisionNotFound` or `EntryNotFound`.
//!
//! Every request is logged ([`FakeHub::requests`]) so tests can assert that a cached file
//! costs none, and bodies can be slowed down ([`FakeHub::set_chunk_delay`]) so a download
//! can be watched while it runs.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use tokio::task::JoinHandle;

/// Bytes per body chunk when a chunk delay is set.
const CHUNK: usize = 64 * 1024;

/// A fake hub on two loopback ports (the hub and its "CDN"). Stops when dropped.
#[derive(Debug)]
pub struct FakeHub {
    endpoint: String,
    state: Arc<HubState>,
    servers: Vec<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct HubState {
    repos: Mutex<BTreeMap<String, FakeRepo>>,
    requests: Mutex<Vec<String>>,
    chunk_delay: Mutex<Option<Duration>>,
    cdn: Mutex<String>,
}

#[derive(Debug, Clone, Default)]
struct FakeRepo {
    commit: String,
    token: Option<String>,
    files: BTreeMap<String, FakeFile>,
}

#[derive(Debug, Clone)]
struct FakeFile {
    content: Bytes,
    lfs: bool,
    sha256: String,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().fold(
        String::with_capacity(64),
        |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        },
    )
}

impl FakeHub {
    /// Starts the hub and its blob server on ephemeral loopback ports.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> Self {
        let state = Arc::new(HubState::default());
        let hub = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake hub");
        let cdn = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake CDN");
        let endpoint = format!("http://{}", hub.local_addr().expect("hub address"));
        *lock(&state.cdn) = format!("http://{}", cdn.local_addr().expect("CDN address"));
        let hub_app = Router::new().fallback(resolve).with_state(state.clone());
        let cdn_app = Router::new().fallback(blob).with_state(state.clone());
        let servers = vec![
            tokio::spawn(async move {
                let _ = axum::serve(hub, hub_app).await;
            }),
            tokio::spawn(async move {
                let _ = axum::serve(cdn, cdn_app).await;
            }),
        ];
        Self { endpoint, state, servers }
    }

    /// The base URL to configure as the hub endpoint.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Adds (or replaces) `path` in `repo` (`org/name`), creating the repo; `lfs` files are
    /// served through a redirect to the blob server. Each change makes a new commit.
    pub fn add_file(&self, repo: &str, path: &str, content: impl Into<Bytes>, lfs: bool) {
        let content = content.into();
        let sha256 = sha256_hex(&content);
        let mut repos = lock(&self.state.repos);
        let entry = repos.entry(repo.to_owned()).or_default();
        entry.files.insert(path.to_owned(), FakeFile { content, lfs, sha256 });
        let listing: String =
            entry.files.iter().map(|(p, f)| format!("{p}:{}\n", f.sha256)).collect();
        entry.commit = sha256_hex(format!("{repo}\n{listing}").as_bytes())[..40].to_owned();
    }

    /// Makes `repo` gated: only `Authorization: Bearer {token}` gets its files.
    pub fn gate(&self, repo: &str, token: &str) {
        lock(&self.state.repos).entry(repo.to_owned()).or_default().token = Some(token.to_owned());
    }

    /// The commit `main` of `repo` points at (empty for an unknown repo).
    #[must_use]
    pub fn commit(&self, repo: &str) -> String {
        lock(&self.state.repos).get(repo).map(|r| r.commit.clone()).unwrap_or_default()
    }

    /// The sha256 of `path` in `repo`: the blob name of LFS files in the cache.
    #[must_use]
    pub fn sha256(&self, repo: &str, path: &str) -> Option<String> {
        lock(&self.state.repos).get(repo)?.files.get(path).map(|f| f.sha256.clone())
    }

    /// Sends bodies in 64 KiB chunks with `delay` between them (`None`: all at once).
    pub fn set_chunk_delay(&self, delay: Option<Duration>) {
        *lock(&self.state.chunk_delay) = delay;
    }

    /// Requests received so far, as `METHOD path` (`GET cdn /blobs/...` for the blob
    /// server), with a `range=` suffix for range requests.
    #[must_use]
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state.requests).clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

/// Decodes `%XX` escapes (the client encodes each path segment).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn error(status: StatusCode, code: &str, commit: Option<&str>) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header("x-error-code", code)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(commit) = commit {
        builder = builder.header("x-repo-commit", commit);
    }
    builder.body(Body::from(format!("{{\"error\":\"{code}\"}}"))).unwrap_or_default()
}

/// `{org}/{name}/resolve/{revision}/{path}` on the hub.
async fn resolve(
    State(state): State<Arc<HubState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    lock(&state.requests).push(format!("{method} {}", uri.path()));
    let segments: Vec<String> =
        uri.path().trim_start_matches('/').split('/').map(percent_decode).collect();
    if let [api, models, org, name, rev, revision] = segments.as_slice()
        && api == "api"
        && models == "models"
        && rev == "revision"
    {
        return listing(&state, &format!("{org}/{name}"), revision, &headers);
    }
    let [org, name, resolve, revision, path @ ..] = segments.as_slice() else {
        return error(StatusCode::NOT_FOUND, "RepoNotFound", None);
    };
    if resolve != "resolve" || path.is_empty() {
        return error(StatusCode::NOT_FOUND, "RepoNotFound", None);
    }
    let repo_id = format!("{org}/{name}");
    let Some(repo) = lock(&state.repos).get(&repo_id).cloned() else {
        return error(StatusCode::NOT_FOUND, "RepoNotFound", None);
    };
    if let Some(token) = &repo.token {
        let sent = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if sent != Some(format!("Bearer {token}").as_str()) {
            return error(StatusCode::UNAUTHORIZED, "GatedRepo", None);
        }
    }
    if revision != "main" && *revision != repo.commit {
        return error(StatusCode::NOT_FOUND, "RevisionNotFound", None);
    }
    let Some(file) = repo.files.get(&path.join("/")) else {
        return error(StatusCode::NOT_FOUND, "EntryNotFound", Some(&repo.commit));
    };
    // A git blob id stands in for the ETag of small files (40 hex digits, not a sha256).
    let git_etag = &sha256_hex(format!("blob {}", file.sha256).as_bytes())[..40];
    let builder = Response::builder()
        .header("x-repo-commit", &repo.commit)
        .header(header::ETAG, format!("\"{git_etag}\""));
    let response = if file.lfs {
        let cdn = lock(&state.cdn).clone();
        builder
            .status(StatusCode::FOUND)
            .header(header::LOCATION, format!("{cdn}/blobs/{}?signature=fake", file.sha256))
            .header("x-linked-etag", format!("\"{}\"", file.sha256))
            .header("x-linked-size", file.content.len())
            .body(Body::empty())
    } else {
        let builder =
            builder.status(StatusCode::OK).header(header::CONTENT_LENGTH, file.content.len());
        if method == Method::HEAD {
            builder.body(Body::empty())
        } else {
            builder.body(body(&state, file.content.clone()))
        }
    };
    response.unwrap_or_default()
}

/// `api/models/{org}/{name}/revision/{revision}`: the commit and the files.
fn listing(state: &HubState, repo_id: &str, revision: &str, headers: &HeaderMap) -> Response {
    let Some(repo) = lock(&state.repos).get(repo_id).cloned() else {
        return error(StatusCode::NOT_FOUND, "RepoNotFound", None);
    };
    if let Some(token) = &repo.token {
        let sent = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if sent != Some(format!("Bearer {token}").as_str()) {
            return error(StatusCode::UNAUTHORIZED, "GatedRepo", None);
        }
    }
    if revision != "main" && revision != repo.commit {
        return error(StatusCode::NOT_FOUND, "RevisionNotFound", None);
    }
    let siblings: Vec<serde_json::Value> =
        repo.files.keys().map(|path| serde_json::json!({ "rfilename": path })).collect();
    let body = serde_json::json!({ "id": repo_id, "sha": repo.commit, "siblings": siblings });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

/// `/blobs/{sha256}` on the "CDN", with `Range: bytes=N-`.
async fn blob(
    State(state): State<Arc<HubState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let logged = match &range {
        Some(range) => format!("{method} cdn {} range={range}", uri.path()),
        None => format!("{method} cdn {}", uri.path()),
    };
    lock(&state.requests).push(logged);
    if headers.contains_key(header::AUTHORIZATION) {
        return error(StatusCode::BAD_REQUEST, "AuthorizationSentToCdn", None);
    }
    let Some(sha) = uri.path().strip_prefix("/blobs/") else {
        return error(StatusCode::NOT_FOUND, "NoSuchKey", None);
    };
    let content = lock(&state.repos)
        .values()
        .flat_map(|repo| repo.files.values())
        .find(|file| file.sha256 == sha)
        .map(|file| file.content.clone());
    let Some(content) = content else {
        return error(StatusCode::NOT_FOUND, "NoSuchKey", None);
    };
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < content.len());
    let len = content.len();
    let response = match start {
        Some(start) => Response::builder()
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{}/{len}", len - 1))
            .header(header::CONTENT_LENGTH, len - start)
            .body(body(&state, content.slice(start..))),
        None => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, len)
            .body(body(&state, content)),
    };
    response.unwrap_or_default()
}

/// `content` as a body, in delayed chunks when a chunk delay is set.
fn body(state: &HubState, content: Bytes) -> Body {
    let Some(delay) = *lock(&state.chunk_delay) else {
        return Body::from(content);
    };
    let stream = futures::stream::unfold(content, move |mut rest| async move {
        if rest.is_empty() {
            return None;
        }
        tokio::time::sleep(delay).await;
        let chunk = rest.split_to(rest.len().min(CHUNK));
        Some((Ok::<_, Infallible>(chunk), rest))
    });
    Body::from_stream(stream)
}
