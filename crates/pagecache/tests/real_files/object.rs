//! The real files, uploaded to an S3 server on 127.0.0.1 (testsupport's, in
//! this process, or the one the environment names), read by the examples
//! through an object URL: what they print must be what they print for the
//! local file.

use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use objectdev::object_store::ObjectStoreExt;
use objectdev::object_store::path::Path as ObjectPath;
use testsupport::s3::S3Server;

/// The server every object-URL test of this process uses; it serves until
/// the process ends.
fn server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = S3Server::start();
        if !server.is_external() {
            // The examples open URLs with `ObjectDevice::open`, which takes
            // the store's options from the environment, as a user's run does.
            for (key, value) in server.url_options() {
                // SAFETY: std's own environment lock orders this with every
                // std read of the environment in this process; nothing here
                // reads it from C while a test runs (the endpoint is an IP
                // address, so no resolver runs).
                unsafe { std::env::set_var(key.to_ascii_uppercase(), value) };
            }
        }
        server
    })
}

/// An uploaded file: its `s3://` URL (as a `&str`), deleted from the
/// bucket on drop, since the server lives as long as the process.
pub(crate) struct Uploaded {
    url: String,
    key: ObjectPath,
}

impl Deref for Uploaded {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for Uploaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl Drop for Uploaded {
    fn drop(&mut self) {
        let _ = testsupport::block_on(server().store().delete(&self.key));
    }
}

/// Uploads `file` to the test bucket.
pub(crate) fn upload(file: &Path) -> Option<Uploaded> {
    let server = server();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = file.file_name().expect("a file name").to_string_lossy();
    let key = ObjectPath::from(format!(
        "real-files/{}-{}/{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let bytes = std::fs::read(file).expect("read the file to upload");
    testsupport::s3::upload(&server.store(), &key, &bytes);
    Some(Uploaded {
        url: server.url(key.as_ref()),
        key,
    })
}
