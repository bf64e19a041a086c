//! [`UploadStore`]: where uploaded files are kept beyond this process's disk.
//!
//! One ragd keeps uploads in `uploads/` under its data directory. Replicas sharing a
//! catalog must share the files too, since any of them may process a document another one
//! received: the pipeline then copies each upload into an [`UploadStore`] (an object-store
//! bucket, in the engine) before recording it, and a replica that lacks a file fetches it
//! from there before extraction. Files are named by their sha256, like the local ones.

use std::path::Path;

use async_trait::async_trait;

/// A shared store of uploaded files, named by their sha256.
#[async_trait]
pub trait UploadStore: Send + Sync + std::fmt::Debug {
    /// Copies the local file `from` into the store as `name`. Names are sha256s of the
    /// bytes, so a store that holds `name` already may skip the copy.
    ///
    /// # Errors
    /// When the store cannot be written (`Unavailable`).
    async fn put(&self, name: &str, from: &Path) -> ragd_core::Result<()>;

    /// Copies `name` from the store into the local file `to`, atomically: `to` appears
    /// complete or not at all. A partial file written beside `to` should be named
    /// `.upload-*`, which the pipeline removes at start, in case the process dies mid-copy.
    ///
    /// # Errors
    /// `NotFound` when the store has no such file; `Unavailable` when it cannot be read.
    async fn get(&self, name: &str, to: &Path) -> ragd_core::Result<()>;

    /// Removes `name` from the store; a missing file is not an error.
    ///
    /// # Errors
    /// When the store cannot be written (`Unavailable`).
    async fn delete(&self, name: &str) -> ragd_core::Result<()>;
}
