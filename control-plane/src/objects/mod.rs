//! Object storage for large payloads: content-addressed objects under their run, written with a SHA-256 and read back verified.
//!
//! Object I/O lives here and nowhere else; this layer knows nothing of runs' rows or rules. An
//! object's key is `{tenant}/runs/{run_id}/{sha256}`: content-addressed under its run, so writing
//! the same document twice (a resent result) writes the same object, an object written for a
//! result that fencing then turned away is harmless, and deleting a run's prefix deletes every
//! object the run ever had. Callers write an object *before* the transaction that references it.

mod open;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use uuid::Uuid;

/// Why an object could not be written, read or deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// The object a reference names is not in the store.
    #[error("object {key} is missing from the object store")]
    Missing { key: String },
    /// The object's length differs from the reference's.
    #[error("object {key} is {actual} bytes, but its reference says {expected} bytes")]
    SizeMismatch { key: String, expected: u64, actual: u64 },
    /// The object's SHA-256 differs from the reference's.
    #[error("object {key} has sha256 {actual}, but its reference says {expected}")]
    ChecksumMismatch { key: String, expected: String, actual: String },
    /// The store did not answer as it should (network, permissions, disk): trying again may work.
    #[error("object store {op} of {key} failed: {message}")]
    Unavailable { op: &'static str, key: String, message: String },
    /// The store cannot be opened as configured.
    #[error("object store {0}")]
    Config(String),
}

impl ObjectError {
    /// The object is gone or not what was written: retrying cannot help.
    pub fn is_data_loss(&self) -> bool {
        match self {
            Self::Missing { .. } | Self::SizeMismatch { .. } | Self::ChecksumMismatch { .. } => true,
            Self::Unavailable { .. } | Self::Config(_) => false,
        }
    }
}

/// Where an object is and what it holds: enough to find it and to check it when read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub key: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
}

/// Large payloads in an object store (a local directory, S3-compatible, or memory for tests).
#[derive(Clone)]
pub struct PayloadStore {
    inner: Arc<dyn ObjectStore>,
    /// Where the objects are, for logs and the start-up banner (`file:///…`, `s3://…`, `memory`).
    location: Arc<str>,
    /// The directory of a local store, whose emptied run directories are removed too.
    local_dir: Option<Arc<std::path::Path>>,
}

impl std::fmt::Debug for PayloadStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadStore").field("location", &self.location).finish()
    }
}

impl Default for PayloadStore {
    fn default() -> Self {
        Self::memory()
    }
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl PayloadStore {
    /// Objects in this process's memory (tests; an engine built without a store).
    pub fn memory() -> Self {
        Self { inner: Arc::new(InMemory::new()), location: "memory".into(), local_dir: None }
    }

    /// Objects under `store` at `prefix` (empty for its root), described as `location`.
    fn new(store: Arc<dyn ObjectStore>, prefix: Path, location: String, local_dir: Option<&std::path::Path>) -> Self {
        let inner: Arc<dyn ObjectStore> =
            if prefix.as_ref().is_empty() { store } else { Arc::new(PrefixStore::new(store, prefix)) };
        Self { inner, location: location.into(), local_dir: local_dir.map(Arc::from) }
    }

    /// Where the objects are (`file:///…`, `s3://bucket/prefix`, `memory`).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The key of the object holding `sha256` for run `run_id` of `tenant`.
    pub fn run_key(tenant: &str, run_id: Uuid, sha256: &str) -> String {
        format!("{tenant}/runs/{run_id}/{sha256}")
    }

    /// Writes `body` as an object of run `run_id` and returns its reference.
    pub async fn put_run_payload(&self, tenant: &str, run_id: Uuid, body: Bytes) -> Result<ObjectRef, ObjectError> {
        let sha256 = sha256_hex(&body);
        let key = Self::run_key(tenant, run_id, &sha256);
        let size = body.len() as u64;
        self.inner
            .put(&Path::from(key.as_str()), PutPayload::from_bytes(body))
            .await
            .map_err(|e| unavailable("put", &key, &e))?;
        Ok(ObjectRef { key, size, sha256 })
    }

    /// Reads the object `r` names and checks its size and SHA-256 against `r`: corrupt or missing
    /// data is an error, never returned.
    pub async fn get_verified(&self, r: &ObjectRef) -> Result<Bytes, ObjectError> {
        let path = Path::from(r.key.as_str());
        let got = match self.inner.get(&path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Err(ObjectError::Missing { key: r.key.clone() }),
            Err(e) => return Err(unavailable("get", &r.key, &e)),
        };
        let bytes = got.bytes().await.map_err(|e| unavailable("get", &r.key, &e))?;
        let actual = bytes.len() as u64;
        if actual != r.size {
            return Err(ObjectError::SizeMismatch { key: r.key.clone(), expected: r.size, actual });
        }
        let sha256 = sha256_hex(&bytes);
        if sha256 != r.sha256 {
            return Err(ObjectError::ChecksumMismatch {
                key: r.key.clone(),
                expected: r.sha256.clone(),
                actual: sha256,
            });
        }
        Ok(bytes)
    }

    /// Deletes every object of run `run_id` of `tenant`; returns how many there were.
    pub async fn delete_run(&self, tenant: &str, run_id: Uuid) -> Result<usize, ObjectError> {
        let prefix = Path::from(format!("{tenant}/runs/{run_id}"));
        let key = prefix.to_string();
        let listed = self.inner.list(Some(&prefix)).map_ok(|m| m.location).boxed();
        let deleted: Vec<Path> = match self.inner.delete_stream(listed).try_collect().await {
            Ok(deleted) => deleted,
            // A run that never had an object may have no directory to list.
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(unavailable("delete", &key, &e)),
        };
        if let Some(dir) = &self.local_dir {
            // Files are gone; their run's directory would stay behind (empty) without this.
            let _ = tokio::fs::remove_dir(dir.join(tenant).join("runs").join(run_id.to_string())).await;
        }
        Ok(deleted.len())
    }
}

fn unavailable(op: &'static str, key: &str, e: &object_store::Error) -> ObjectError {
    ObjectError::Unavailable { op, key: key.to_owned(), message: e.to_string() }
}

#[cfg(test)]
mod tests;
