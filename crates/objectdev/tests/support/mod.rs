//! What objectdev's tests add to `testsupport`: a counting store over the
//! test server.
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::sync::Arc;

use objectdev::CountingStore;
use testsupport::s3::S3Server;

pub use testsupport::s3::{unique_key, upload};
pub use testsupport::{TempDir, noise};

/// A counting store over `server`'s bucket (one quick retry).
pub fn counting(server: &S3Server) -> Arc<CountingStore> {
    Arc::new(CountingStore::new(Arc::new(server.store())))
}
