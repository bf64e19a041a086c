//! Uploads in an object store (`ingest.uploads_uri = "s3://bucket/prefix"`), so that every
//! replica can process a document any of them received: [`ObjectUploads`], the engine's
//! [`UploadStore`].
//!
//! The store is reached like the vector store's bucket: the usual `AWS_*` environment
//! variables (credentials, `AWS_ENDPOINT`, `AWS_REGION`, `AWS_ALLOW_HTTP`), overlaid with
//! `vector_store.storage_options`. Files are named by their sha256 under the prefix, so an
//! upload whose bytes the store holds already is not sent again. Files stream in both
//! directions (multipart uploads above the buffer's size), never held whole in memory. Only
//! `s3://` is supported (the object-store client is built with S3 alone).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt as _;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::buffered::BufWriter;
use object_store::{ObjectStore, ObjectStoreExt as _, path::Path as ObjectPath};
use ragd_core::ErrorKind;
use ragd_ingest::UploadStore;
use tokio::io::AsyncWriteExt as _;

use crate::error::{Error, Result};

/// Uploaded files in an object-store bucket.
#[derive(Debug)]
pub struct ObjectUploads {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    uri: String,
}

impl ObjectUploads {
    /// Opens `uri` (`s3://bucket/prefix`) with `options` (object_store's S3 keys:
    /// `aws_endpoint`, `aws_region`, `aws_allow_http`, ...) over what the `AWS_*`
    /// environment variables say (object_store reads them, as LanceDB does).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a malformed URI or another scheme than `s3://`.
    pub fn open<'o>(
        uri: &str,
        options: impl IntoIterator<Item = (&'o String, &'o String)>,
    ) -> Result<Self> {
        let invalid =
            |reason: String| Error::InvalidConfig(format!("ingest.uploads_uri {uri:?}: {reason}"));
        let url = url::Url::parse(uri).map_err(|err| invalid(err.to_string()))?;
        if url.scheme() != "s3" {
            return Err(invalid(
                "only s3:// (AWS S3 or an S3-compatible store) is supported".to_owned(),
            ));
        }
        let mut builder = AmazonS3Builder::from_env().with_url(uri);
        for (key, value) in options {
            // Keys object_store does not know (LanceDB's own) are for the vector store.
            if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let store = builder.build().map_err(|err| invalid(err.to_string()))?;
        let prefix = ObjectPath::parse(url.path().trim_start_matches('/'))
            .map_err(|err| invalid(err.to_string()))?;
        Ok(Self { store: Arc::new(store), prefix, uri: uri.to_owned() })
    }

    fn path(&self, name: &str) -> ObjectPath {
        self.prefix.clone().join(name)
    }

    fn error(&self, what: &str, name: &str, err: &object_store::Error) -> ragd_core::Error {
        let kind = if matches!(err, object_store::Error::NotFound { .. }) {
            ErrorKind::NotFound
        } else {
            ErrorKind::Unavailable
        };
        ragd_core::Error::new(kind, format!("{what} upload {name} in {}: {err}", self.uri))
    }
}

#[async_trait]
impl UploadStore for ObjectUploads {
    async fn put(&self, name: &str, from: &Path) -> ragd_core::Result<()> {
        let path = self.path(name);
        // Named by content: an object under this name holds these bytes already.
        match self.store.head(&path).await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(err) => return Err(self.error("storing", name, &err)),
        }
        let reading = |err: std::io::Error| {
            ragd_core::Error::new(ErrorKind::Internal, format!("reading {}: {err}", from.display()))
        };
        let mut file = tokio::fs::File::open(from).await.map_err(reading)?;
        // One PUT for a small file, a multipart upload in buffer-sized parts for a large one.
        let mut writer = BufWriter::new(Arc::clone(&self.store), path);
        let failed = |err: std::io::Error| {
            ragd_core::Error::new(
                ErrorKind::Unavailable,
                format!("storing upload {name} in {}: {err}", self.uri),
            )
        };
        if let Err(err) = tokio::io::copy(&mut file, &mut writer).await {
            // Nothing half-written stays behind: a multipart upload begun is aborted.
            if let Err(abort) = writer.abort().await {
                tracing::warn!(upload = name, %abort, "cannot abort a failed upload");
            }
            return Err(failed(err));
        }
        // Sends the PUT, or completes the multipart upload (which aborts it on failure);
        // the writer cannot be aborted after this, whatever it returns.
        writer.shutdown().await.map_err(failed)
    }

    async fn get(&self, name: &str, to: &Path) -> ragd_core::Result<()> {
        let mut stream = self
            .store
            .get(&self.path(name))
            .await
            .map_err(|err| self.error("fetching", name, &err))?
            .into_stream();
        // Written beside and renamed, so `to` appears whole or not at all; named like the
        // pipeline's partial uploads (`.upload-*`), which a start sweeps away should the
        // process die mid-download.
        let partial = to.with_file_name(format!(".upload-fetch-{}", uuid::Uuid::now_v7()));
        let written = async {
            let local = |err: std::io::Error| {
                ragd_core::Error::new(
                    ErrorKind::Internal,
                    format!("writing {}: {err}", to.display()),
                )
            };
            let mut file = tokio::fs::File::create(&partial).await.map_err(local)?;
            while let Some(piece) = stream.next().await {
                let piece = piece.map_err(|err| self.error("fetching", name, &err))?;
                file.write_all(&piece).await.map_err(local)?;
            }
            file.flush().await.map_err(local)?;
            drop(file);
            tokio::fs::rename(&partial, to).await.map_err(local)
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        written
    }

    async fn delete(&self, name: &str) -> ragd_core::Result<()> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(self.error("deleting", name, &err)),
        }
    }
}
