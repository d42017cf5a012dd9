//! The real files, uploaded to an S3 server on 127.0.0.1 (testsupport's, in
//! this process, or the one the environment names), read by the examples
//! through an object URL: what they print must be what they print for the
//! local file.
//!
//! Each test starts its own server ([`Remote::start`]): starting one costs
//! a thread and a bind, and dropping it at the end of the test removes its
//! scratch directory, which a server kept for the whole process would
//! leave behind (statics are never dropped).

use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use objectdev::object_store::ObjectStoreExt;
use objectdev::object_store::path::Path as ObjectPath;
use testsupport::s3::S3Server;

use super::input::StoreOptions;

/// A test's S3 server and the store options that reach it.
pub(crate) struct Remote {
    server: S3Server,
}

impl Remote {
    /// The server the environment names, else a new one in this process.
    pub(crate) fn start() -> Self {
        Remote {
            server: S3Server::start(),
        }
    }

    /// The options the examples open this server's URLs with, given
    /// explicitly as a program that knows its endpoint would.
    pub(crate) fn options(&self) -> StoreOptions {
        StoreOptions::Given(self.server.url_options())
    }

    /// Uploads `file` to the test bucket.
    pub(crate) fn upload(&self, file: &Path) -> Uploaded<'_> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = file.file_name().expect("a file name").to_string_lossy();
        let key = ObjectPath::from(format!(
            "real-files/{}-{}/{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let bytes = std::fs::read(file).expect("read the file to upload");
        testsupport::s3::upload(&self.server.store(), &key, &bytes);
        Uploaded {
            url: self.server.url(key.as_ref()),
            key,
            server: &self.server,
        }
    }
}

/// An uploaded file: its `s3://` URL (as a `&str`), deleted from the
/// bucket on drop (an external server outlives the test).
pub(crate) struct Uploaded<'a> {
    url: String,
    key: ObjectPath,
    server: &'a S3Server,
}

impl Deref for Uploaded<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for Uploaded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl Drop for Uploaded<'_> {
    fn drop(&mut self) {
        let _ = testsupport::block_on(self.server.store().delete(&self.key));
    }
}
