//! `ragd-hub`: files of Hugging Face hub repos, downloaded into the cache `huggingface-cli`
//! writes and read back from it.
//!
//! - [`HubFile`]: one file of a repo at a revision (`org/name`, `onnx/model.onnx`, `main`),
//!   checked so it can never name a path outside the cache.
//! - [`HubCache`]: the cache layout (`models--org--name/{blobs,snapshots,refs}`), so files
//!   downloaded by ragd, `huggingface-cli` or Python's `huggingface_hub` serve all three.
//! - [`HubClient`]: resolves and downloads files over the hub's file protocol on the
//!   workspace's `reqwest`, with a progress callback ([`Progress`]), a token, a configurable
//!   endpoint (mirrors, test servers), timeouts and an offline mode ([`HubConfig`]).
//!
//! The `hf-hub` crate is not used: version 1.0 brings reqwest 0.13, aws-lc-rs and other
//! feature sets of tokio and rustls, which would rebuild the whole LanceDB tree. SHA-256
//! checks use `ring` (already in the tree through rustls), whose assembly runs at about
//! 900 MB/s even in the unoptimised dev profile where `sha2` manages about 16 MB/s.
//!
//! Like every library crate, this one reads no environment variable: the binary resolves
//! `HF_TOKEN`, `HF_ENDPOINT`, `HF_HUB_OFFLINE` and the cache folder and passes them in.
//!
//! ```no_run
//! # async fn demo() -> ragd_hub::Result<()> {
//! use ragd_hub::{HubClient, HubConfig, HubFile};
//!
//! let client = HubClient::new(HubConfig::new("/home/me/.cache/huggingface/hub"))?;
//! let file = HubFile::new("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", "smollm2-135m-instruct-q8_0.gguf")?;
//! let path = client
//!     .download_file(&file, &|p| tracing::info!(percent = p.percent(), "downloading"))
//!     .await?;
//! # let _ = path;
//! # Ok(())
//! # }
//! ```

mod cache;
mod client;
pub mod error;
mod file;

pub use cache::{HubCache, repo_folder_name};
pub use client::{DEFAULT_ENDPOINT, HubClient, HubConfig, Progress, ProgressFn, RepoListing};
pub use error::{Error, Result};
pub use file::{DEFAULT_REVISION, HubFile};
