//! One version of an object, pinned by `?versionId=` or the builder,
//! against an S3 server that keeps versions (testsupport's versioned
//! server, in this process): the device reads that version's bytes after
//! the object is overwritten or deleted, refresh finds nothing to change,
//! and a version the server does not have fails the open.

mod support;

use std::io;
use std::sync::Arc;

use blockdev::ReadAt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use objectdev::{Error, MIN_PART_SIZE, ObjectDevice};
use pagecache::PageCache;
use support::{noise, unique_key};
use testsupport::block_on;
use testsupport::s3::S3Server;

/// Four parts of the smallest size, so reads and read-ahead make several
/// ranged GETs, each of which must name the version.
const SIZE: usize = 4 * MIN_PART_SIZE as usize;

/// Uploads `bytes` to `key` (one PUT); the version id the server gave it.
fn put(store: &dyn ObjectStore, key: &ObjectPath, bytes: &[u8]) -> String {
    block_on(store.put(key, PutPayload::from(bytes.to_vec())))
        .expect("upload to the versioned server")
        .version
        .expect("the versioned server names every version")
}

/// `s3://bucket/key?versionId=<version>`, the version percent-encoded as a
/// URL's query must be (the server's ids hold a `+`, as S3's may).
fn version_url(server: &S3Server, key: &ObjectPath, version: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(version.as_bytes()).collect();
    format!("{}?versionId={encoded}", server.url(key.as_ref()))
}

/// The whole object as `device` reads it.
fn read_all(device: &impl ReadAt) -> Vec<u8> {
    let mut bytes = vec![0u8; device.size().unwrap() as usize];
    device.read_exact_at(0, &mut bytes).unwrap();
    bytes
}

/// A server, a key written twice (`old`, then `new`), and the old version's id.
struct Overwritten {
    server: S3Server,
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    old: Vec<u8>,
    new: Vec<u8>,
    old_version: String,
}

impl Overwritten {
    fn new(label: &str) -> Self {
        let server = S3Server::start_versioned();
        let store: Arc<dyn ObjectStore> = Arc::new(server.store());
        let key = unique_key(label);
        let (old, new) = (noise(1, SIZE), noise(2, SIZE + 1000));
        let old_version = put(store.as_ref(), &key, &old);
        put(store.as_ref(), &key, &new);
        Overwritten {
            server,
            store,
            key,
            old,
            new,
            old_version,
        }
    }

    /// The old version, opened by URL as a user would.
    fn open_old(&self) -> ObjectDevice {
        ObjectDevice::builder()
            .part_size(MIN_PART_SIZE)
            .options(self.server.url_options())
            .unwrap()
            .open(&version_url(&self.server, &self.key, &self.old_version))
            .unwrap()
    }
}

#[test]
fn a_url_with_a_version_id_reads_that_version_after_an_overwrite() {
    let case = Overwritten::new("url-version");
    let old = case.open_old();
    assert_eq!(old.version(), Some(case.old_version.as_str()));
    assert_eq!(old.size().unwrap(), case.old.len() as u64);
    assert!(read_all(&old) == case.old, "the old version's bytes");

    let latest = ObjectDevice::open_with_options(
        &case.server.url(case.key.as_ref()),
        case.server.url_options(),
    )
    .unwrap();
    assert_eq!(latest.version(), None);
    assert!(read_all(&latest) == case.new, "the latest version's bytes");
}

#[test]
fn a_builder_with_a_version_reads_that_version_after_an_overwrite() {
    let case = Overwritten::new("builder-version");
    let old = ObjectDevice::builder()
        .version(case.old_version.clone())
        .part_size(MIN_PART_SIZE)
        .build(Arc::clone(&case.store), case.key.clone())
        .unwrap();
    assert!(read_all(&old) == case.old, "the old version's bytes");

    let latest = ObjectDevice::new(Arc::clone(&case.store), case.key.clone()).unwrap();
    assert!(read_all(&latest) == case.new, "the latest version's bytes");
}

#[test]
fn a_version_the_server_does_not_have_fails_the_open_and_names_it() {
    let case = Overwritten::new("absent-version");
    let absent = "no-such-version";
    let by_url = ObjectDevice::open_with_options(
        &version_url(&case.server, &case.key, absent),
        case.server.url_options(),
    )
    .unwrap_err();
    let by_builder = ObjectDevice::builder()
        .version(absent)
        .build(Arc::clone(&case.store), case.key.clone())
        .unwrap_err();
    for err in [by_url, by_builder] {
        assert!(
            matches!(err, Error::VersionNotFound { ref version, .. } if version == absent),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(absent) && text.contains(case.key.as_ref()),
            "{text}"
        );
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
    }
}

#[test]
fn a_version_id_with_a_plus_must_be_percent_encoded_in_a_url() {
    let case = Overwritten::new("plus-version");
    assert!(case.old_version.contains('+'), "{}", case.old_version);
    // A URL's query decodes `+` as a space, so the version asked for is not
    // the one given; the error shows the one asked for.
    let raw = format!(
        "{}?versionId={}",
        case.server.url(case.key.as_ref()),
        case.old_version
    );
    let err = ObjectDevice::open_with_options(&raw, case.server.url_options()).unwrap_err();
    let decoded = case.old_version.replace('+', " ");
    assert!(
        matches!(err, Error::VersionNotFound { ref version, .. } if *version == decoded),
        "{err}"
    );
    assert!(err.to_string().contains("percent-encode"), "{err}");
}

#[test]
fn refresh_of_a_pinned_version_reports_unchanged_after_an_overwrite() {
    let case = Overwritten::new("refresh-version");
    let old = case.open_old();
    let identity = old.identity();
    put(case.store.as_ref(), &case.key, &noise(3, 500));

    assert!(!old.refresh().unwrap(), "a pinned version never changes");
    assert_eq!(old.identity(), identity);
    assert!(read_all(&old) == case.old);

    // The same through a page cache: its refresh keeps its pages.
    let cache = PageCache::with_geometry(old, 4096, 1024).unwrap();
    assert_eq!(cache.get_bytes(0, 4096).unwrap(), &case.old[..4096]);
    assert!(!cache.refresh().unwrap());
    let hits = cache.stats().hits;
    assert_eq!(cache.get_bytes(0, 4096).unwrap(), &case.old[..4096]);
    assert_eq!(cache.stats().hits, hits + 1, "the page stayed cached");

    // Unpinned, the same overwrite is a change.
    let latest = ObjectDevice::new(Arc::clone(&case.store), case.key.clone()).unwrap();
    put(case.store.as_ref(), &case.key, &noise(4, 700));
    assert!(latest.refresh().unwrap());
    assert_eq!(latest.size().unwrap(), 700);
}

#[test]
fn read_ahead_on_a_pinned_version_fetches_that_version() {
    let case = Overwritten::new("read-ahead-version");
    let old = case.open_old();
    // Hinted after the overwrite: every part fetched ahead must be the
    // old version's, or the reads below would see the new bytes.
    old.will_need(0, SIZE as u64);
    assert!(read_all(&old) == case.old);
    let stats = old.read_ahead_stats();
    assert_eq!((stats.gets, stats.failed), (4, 0), "{stats:?}");
    assert_eq!(stats.used_bytes, SIZE as u64, "{stats:?}");

    // After a refresh (nothing changed), read-ahead goes on as before.
    assert!(!old.refresh().unwrap());
    old.will_need(0, SIZE as u64);
    assert!(read_all(&old) == case.old);
    let stats = old.read_ahead_stats();
    assert_eq!((stats.gets, stats.failed), (8, 0), "{stats:?}");
    assert_eq!(stats.used_bytes, 2 * SIZE as u64, "{stats:?}");
}

#[test]
fn a_pinned_version_outlives_the_deletion_of_the_object() {
    let case = Overwritten::new("deleted-version");
    let old = case.open_old();
    let latest = ObjectDevice::new(Arc::clone(&case.store), case.key.clone()).unwrap();
    block_on(case.store.delete(&case.key)).unwrap();

    assert!(!old.refresh().unwrap());
    assert!(read_all(&old) == case.old);
    let err = latest.refresh().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    assert!(read_all(&case.open_old()) == case.old, "and opens again");
}
