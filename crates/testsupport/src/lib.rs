//! Helpers the workspace's tests and benches share: an S3 server started in
//! the test's own process ([`s3::S3Server`], also one whose bucket keeps
//! every version of an object), scratch directories
//! ([`TempDir`]) and reproducible bytes ([`noise`]).
//!
//! Unpublished: only dev-dependencies name it. It depends on no crate of
//! this workspace, so any of them may use it.
//!
//! ```
//! let bytes = testsupport::noise(7, 16);
//! assert_eq!(bytes, testsupport::noise(7, 16));
//! assert_ne!(bytes, testsupport::noise(8, 16));
//! ```

pub mod s3;
mod temp;

pub use temp::TempDir;

/// `len` bytes of xorshift noise from `seed`: the same for the same seed.
///
/// ```
/// assert_eq!(testsupport::noise(1, 1000).len(), 1000);
/// ```
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Runs `future` to completion on a throwaway current-thread runtime (for
/// uploads and replacements from a plain test thread).
///
/// ```
/// assert_eq!(testsupport::block_on(async { 2 + 2 }), 4);
/// ```
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}
