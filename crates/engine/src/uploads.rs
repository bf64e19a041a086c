//! Uploads in an object store (`ingest.uploads_uri = "s3://bucket/prefix"`), so that every
//! replica can process a document any of them received: [`ObjectUploads`], the engine's
//! [`UploadStore`].
//!
//! The store is reached like the vector store's bucket: the usual `AWS_*` environment
//! variables (credentials, `AWS_ENDPOINT`, `AWS_REGION`, `AWS_ALLOW_HTTP`), overlaid with
//! `vector_store.storage_options`. Files are named by their sha256 under the prefix. Only
//! `s3://` is supported (the object-store client is built with S3 alone).

use std::path::Path;

use async_trait::async_trait;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt as _, PutOptions, PutPayload, path::Path as ObjectPath,
};
use ragd_core::ErrorKind;
use ragd_ingest::UploadStore;

use crate::error::{Error, Result};

/// Uploaded files in an object-store bucket.
#[derive(Debug)]
pub struct ObjectUploads {
    store: Box<dyn ObjectStore>,
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
        Ok(Self { store: Box::new(store), prefix, uri: uri.to_owned() })
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
        let bytes = tokio::fs::read(from).await.map_err(|err| {
            ragd_core::Error::new(ErrorKind::Internal, format!("reading {}: {err}", from.display()))
        })?;
        self.store
            .put_opts(&self.path(name), PutPayload::from(bytes), PutOptions::default())
            .await
            .map_err(|err| self.error("storing", name, &err))?;
        Ok(())
    }

    async fn get(&self, name: &str, to: &Path) -> ragd_core::Result<()> {
        let bytes = self
            .store
            .get_opts(&self.path(name), GetOptions::default())
            .await
            .map_err(|err| self.error("fetching", name, &err))?
            .bytes()
            .await
            .map_err(|err| self.error("fetching", name, &err))?;
        // Written beside and renamed, so `to` appears whole or not at all.
        let partial = to.with_extension(format!("fetch-{}", uuid::Uuid::now_v7()));
        let local = |err: std::io::Error| {
            ragd_core::Error::new(ErrorKind::Internal, format!("writing {}: {err}", to.display()))
        };
        tokio::fs::write(&partial, &bytes).await.map_err(local)?;
        if let Err(err) = tokio::fs::rename(&partial, to).await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(local(err));
        }
        Ok(())
    }

    async fn delete(&self, name: &str) -> ragd_core::Result<()> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(self.error("deleting", name, &err)),
        }
    }
}
