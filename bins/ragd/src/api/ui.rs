//! The web page: `GET /` and its assets under `/ui/`.
//!
//! The page is plain HTML, CSS and ES modules (`bins/ragd/ui/`), embedded in the binary with
//! `include_bytes!`, so it works with no internet and no build step; it talks to the server
//! only through the public REST API (the API stays the one interface). `GET /` answers the
//! page to clients that accept `text/html` and a small JSON status to the others.
//!
//! Document text shown by the page is untrusted, so the page never turns API strings into
//! HTML, and every page response carries a Content-Security-Policy that allows scripts,
//! styles and connections from this origin only: an injected `<img onerror>` or inline
//! script could not run even if a bug let one into the DOM.
//!
//! `server.ui_dir` serves the files from a directory instead of the embedded copies, so the
//! page can be developed (or customised) without rebuilding the binary.

use std::path::Path;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::{ApiError, ApiJson};
use crate::state::AppState;

/// Where the page's assets are served.
pub const UI_PATH: &str = "/ui";

/// The Content-Security-Policy of the page and its assets: this origin only, no inline
/// script, no plugins, no framing. `data:` images are allowed for the favicon.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// One embedded file of the page.
struct Asset {
    /// The path under `ui/` (and under [`UI_PATH`]).
    path: &'static str,
    /// Its `Content-Type`.
    mime: &'static str,
    /// The bytes compiled into the binary.
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $mime:expr) => {
        Asset {
            path: $path,
            mime: $mime,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $path)),
        }
    };
}

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Every file of `bins/ragd/ui/` (a test checks that none is missing).
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", CSS),
    asset!("documents.css", CSS),
    asset!("chat.css", CSS),
    asset!("models.css", CSS),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("documents.js", JS),
    asset!("search.js", JS),
    asset!("chat.js", JS),
    asset!("models.js", JS),
    asset!("system.js", JS),
];

/// `GET /` body for clients that do not ask for HTML.
#[derive(Debug, Serialize, ToSchema)]
pub struct Root {
    /// Always `ragd`.
    #[schema(example = "ragd")]
    pub name: &'static str,
    /// The server's version.
    #[schema(example = "0.1.0")]
    pub version: &'static str,
    /// `ok` or `degraded`, as in `GET /health`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The web page to browsers (`Accept: text/html`), `{name, version, status}` to other
/// clients. Open without an API key: the page asks for one when the API needs it.
#[utoipa::path(
    get,
    path = "/",
    tag = "system",
    responses(
        (status = 200, description = "The page (`text/html`) when the client accepts HTML, else the server's name, version and health", body = Root),
    )
)]
pub async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if accepts_html(&headers) {
        return serve(&state, "index.html").await;
    }
    let health = state.engine.health().borrow().status;
    ApiJson(Root {
        name: "ragd",
        version: env!("CARGO_PKG_VERSION"),
        status: crate::api::system::health_status(health),
    })
    .into_response()
}

/// `GET /ui/{path}`: one file of the page.
pub async fn asset(State(state): State<AppState>, UrlPath(path): UrlPath<String>) -> Response {
    serve(&state, &path).await
}

/// Whether the `Accept` header names `text/html` (browsers navigating to a page do).
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| range.split(';').next().is_some_and(|mime| mime.trim() == "text/html"))
}

async fn serve(state: &AppState, path: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.path == path) else {
        return ApiError::not_found(format!("no page asset {path:?}")).into_response();
    };
    let bytes = match &state.config.server.ui_dir {
        None => asset.bytes.to_vec(),
        Some(dir) => match read_override(dir, asset.path).await {
            Ok(bytes) => bytes,
            Err(err) => return err.into_response(),
        },
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Small files, and a new binary may change them: revalidate every time.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A page file from `server.ui_dir`; only names of the embedded table are ever read, so a
/// request cannot reach another file.
async fn read_override(dir: &Path, name: &str) -> Result<Vec<u8>, ApiError> {
    tokio::fs::read(dir.join(name)).await.map_err(|err| {
        ApiError::new(
            ragd_core::ErrorKind::Unavailable,
            format!("page file {name} is not readable from the configured directory: {err}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_ui_folder_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn html_is_recognised_in_browser_accept_headers() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            accepts_html(&headers)
        };
        assert!(with("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
        assert!(!with("application/json"));
        assert!(!with("*/*"));
        assert!(!with("text/htmlx"));
        assert!(!accepts_html(&HeaderMap::new()));
    }
}
