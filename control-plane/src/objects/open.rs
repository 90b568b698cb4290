//! Opening a payload store: `file:///dir` (or an absolute path), `s3://bucket/prefix` (the `s3` feature, `AWS_*` environment), `memory://`.

use super::{ObjectError, PayloadStore};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use std::sync::Arc;

impl PayloadStore {
    /// Opens the store `url` names: `file:///abs/dir` or `/abs/dir` (a local directory, made on
    /// the first write), `s3://bucket[/prefix]` (credentials, region and endpoint from the usual
    /// `AWS_*` variables; needs the `s3` feature) or `memory://` (this process only).
    pub fn open(url: &str) -> Result<Self, ObjectError> {
        if let Some(path) = url.strip_prefix("file://") {
            return Self::local(std::path::Path::new(path));
        }
        if url.starts_with('/') {
            return Self::local(std::path::Path::new(url));
        }
        if url == "memory://" || url == "memory:" {
            return Ok(Self::memory());
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            return s3(rest);
        }
        Err(ObjectError::Config(format!(
            "{url:?} is not an object store URL (file:///dir, s3://bucket/prefix or memory://)"
        )))
    }

    /// Objects as files under the absolute directory `dir` (created on the first write). Writes
    /// are synced to disk before they return: the row that references an object commits after it.
    pub fn local(dir: &std::path::Path) -> Result<Self, ObjectError> {
        if !dir.is_absolute() {
            return Err(ObjectError::Config(format!("directory {} is not an absolute path", dir.display())));
        }
        let prefix = Path::from_absolute_path(dir)
            .map_err(|e| ObjectError::Config(format!("directory {}: {e}", dir.display())))?;
        // Rooted at `/` with the directory as a prefix, so nothing is created before it is needed.
        let fs = LocalFileSystem::new().with_fsync(true);
        Ok(Self::new(Arc::new(fs), prefix, format!("file://{}", dir.display()), Some(dir)))
    }
}

#[cfg(feature = "s3")]
fn s3(rest: &str) -> Result<PayloadStore, ObjectError> {
    use object_store::aws::AmazonS3Builder;
    // reqwest is built without a bundled crypto provider: use ring, like the gRPC port.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(ObjectError::Config("s3:// needs a bucket: s3://bucket/prefix".into()));
    }
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| ObjectError::Config(format!("s3://{rest}: {e}")))?;
    let prefix = Path::parse(prefix.trim_end_matches('/'))
        .map_err(|e| ObjectError::Config(format!("s3://{rest}: prefix: {e}")))?;
    Ok(PayloadStore::new(Arc::new(store), prefix, format!("s3://{rest}"), None))
}

#[cfg(not(feature = "s3"))]
fn s3(rest: &str) -> Result<PayloadStore, ObjectError> {
    Err(ObjectError::Config(format!(
        "s3://{rest}: this braid was built without S3 support (cargo feature `s3` of braid-control-plane)"
    )))
}
