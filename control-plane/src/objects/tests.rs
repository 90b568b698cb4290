//! The payload store on a local directory: layout, verification on read, deleting a run's objects.

use super::{ObjectError, ObjectRef, PayloadStore, sha256_hex};
use bytes::Bytes;
use uuid::Uuid;

fn local() -> (tempfile::TempDir, PayloadStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = PayloadStore::open(&format!("file://{}", dir.path().display())).expect("open local store");
    (dir, store)
}

fn file_of(dir: &tempfile::TempDir, r: &ObjectRef) -> std::path::PathBuf {
    dir.path().join(&r.key)
}

#[tokio::test]
async fn an_object_is_kept_under_its_run_by_checksum_and_read_back_verified() {
    let (dir, store) = local();
    let run = Uuid::now_v7();
    let body = Bytes::from(format!("\"{}\"", "x".repeat(300_000)));
    let r = store.put_run_payload("acme", run, body.clone()).await.unwrap();
    assert_eq!(r.size, body.len() as u64);
    assert_eq!(r.sha256, sha256_hex(&body));
    assert_eq!(r.key, format!("acme/runs/{run}/{}", r.sha256));
    assert_eq!(std::fs::read(file_of(&dir, &r)).unwrap(), body.to_vec(), "the object is a plain file");
    assert_eq!(store.get_verified(&r).await.unwrap(), body);
    // The same document again is the same object.
    assert_eq!(store.put_run_payload("acme", run, body).await.unwrap(), r);
}

#[tokio::test]
async fn a_changed_size_a_changed_byte_or_a_missing_object_is_refused_with_the_reason() {
    let (dir, store) = local();
    let r = store.put_run_payload("acme", Uuid::now_v7(), Bytes::from_static(b"{\"a\":\"hello\"}")).await.unwrap();
    let path = file_of(&dir, &r);

    std::fs::write(&path, b"{\"a\":\"hello!\"}").unwrap();
    let err = store.get_verified(&r).await.unwrap_err();
    assert_eq!(err, ObjectError::SizeMismatch { key: r.key.clone(), expected: 13, actual: 14 });
    assert!(err.is_data_loss());

    std::fs::write(&path, b"{\"a\":\"jello\"}").unwrap();
    let err = store.get_verified(&r).await.unwrap_err();
    let actual = sha256_hex(b"{\"a\":\"jello\"}");
    assert_eq!(
        err.to_string(),
        format!("object {} has sha256 {actual}, but its reference says {}", r.key, r.sha256),
        "the error names the object and both checksums"
    );
    assert!(err.is_data_loss());

    std::fs::remove_file(&path).unwrap();
    let err = store.get_verified(&r).await.unwrap_err();
    assert_eq!(err, ObjectError::Missing { key: r.key.clone() });
    assert!(err.is_data_loss());
}

#[tokio::test]
async fn deleting_a_run_deletes_its_objects_and_only_its_own() {
    let (dir, store) = local();
    let (gone, kept) = (Uuid::now_v7(), Uuid::now_v7());
    let a = store.put_run_payload("acme", gone, Bytes::from_static(b"1")).await.unwrap();
    let b = store.put_run_payload("acme", gone, Bytes::from_static(b"2")).await.unwrap();
    let other = store.put_run_payload("acme", kept, Bytes::from_static(b"1")).await.unwrap();
    let foreign = store.put_run_payload("bravo", gone, Bytes::from_static(b"1")).await.unwrap();

    assert_eq!(store.delete_run("acme", gone).await.unwrap(), 2);
    for r in [&a, &b] {
        assert_eq!(store.get_verified(r).await.unwrap_err(), ObjectError::Missing { key: r.key.clone() });
    }
    assert!(!dir.path().join(format!("acme/runs/{gone}")).exists(), "the emptied run directory goes too");
    assert_eq!(store.get_verified(&other).await.unwrap(), Bytes::from_static(b"1"));
    assert_eq!(store.get_verified(&foreign).await.unwrap(), Bytes::from_static(b"1"), "another tenant's run");
    // Nothing (left) to delete is not an error.
    assert_eq!(store.delete_run("acme", gone).await.unwrap(), 0);
    assert_eq!(store.delete_run("acme", Uuid::now_v7()).await.unwrap(), 0);
}

#[tokio::test]
async fn nothing_is_created_before_the_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    let store = PayloadStore::open(root.to_str().unwrap()).unwrap();
    assert_eq!(store.location(), format!("file://{}", root.display()));
    assert!(!root.exists());
    assert_eq!(store.delete_run("acme", Uuid::now_v7()).await.unwrap(), 0);
    store.put_run_payload("acme", Uuid::now_v7(), Bytes::from_static(b"{}")).await.unwrap();
    assert!(root.join("acme/runs").is_dir());
}

#[tokio::test]
async fn memory_store_round_trips() {
    let store = PayloadStore::open("memory://").unwrap();
    let r = store.put_run_payload("t", Uuid::now_v7(), Bytes::from_static(b"[1,2]")).await.unwrap();
    assert_eq!(store.get_verified(&r).await.unwrap(), Bytes::from_static(b"[1,2]"));
}

#[test]
fn urls_are_checked() {
    let err = |url: &str| PayloadStore::open(url).unwrap_err().to_string();
    assert!(err("file://relative/dir").contains("is not an absolute path"), "{}", err("file://relative/dir"));
    assert!(err("ftp://x").contains("is not an object store URL"));
    assert!(err("s3://").contains("needs a bucket") || err("s3://").contains("without S3 support"));
}

#[cfg(feature = "s3")]
#[test]
fn an_s3_url_opens_without_contacting_anything() {
    let store = PayloadStore::open("s3://braid-payloads/prod/eu").unwrap();
    assert_eq!(store.location(), "s3://braid-payloads/prod/eu");
}
