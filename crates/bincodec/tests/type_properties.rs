//! Compile-time properties users rely on: error types are plain thread-safe
//! values, the source and sink traits make trait objects, and which types
//! are sources or sinks.

use core::error::Error;
use core::fmt::{Debug, Display};
use core::hash::Hash;

use bincodec::varint::{EncodedVarint, ReadVarintError, VarintError};
use bincodec::{ByteSink, ByteSinkExt, ByteSource, ByteSourceExt, OutOfBounds};
use static_assertions::{assert_impl_all, assert_not_impl_any, assert_obj_safe};

// Errors can cross threads, be boxed into `Box<dyn Error + Send + Sync>`,
// be copied out of a loop and compared in tests.
assert_impl_all!(OutOfBounds: Send, Sync, Copy, Eq, Hash, Debug, Display, Error);
assert_impl_all!(VarintError: Send, Sync, Copy, Eq, Hash, Debug, Display, Error);
assert_impl_all!(ReadVarintError<OutOfBounds>: Send, Sync, Copy, Eq, Debug, Display, Error);
assert_impl_all!(EncodedVarint: Send, Sync, Copy, Eq, Hash, Debug, AsRef<[u8]>);

// A page cache or device can be handed around as `&dyn ByteSource`.
assert_obj_safe!(
    ByteSource<Error = OutOfBounds>,
    ByteSink<Error = OutOfBounds>
);
assert_impl_all!(dyn ByteSource<Error = OutOfBounds>: ByteSourceExt);
assert_impl_all!(dyn ByteSink<Error = OutOfBounds>: ByteSinkExt);
assert_impl_all!(dyn ByteSource<Error = OutOfBounds> + Send + Sync: ByteSourceExt);

// Which types are sources and sinks.
assert_impl_all!([u8]: ByteSource, ByteSink);
assert_impl_all!([u8; 16]: ByteSource, ByteSink);
assert_impl_all!(&[u8]: ByteSource);
assert_impl_all!(&mut [u8]: ByteSource, ByteSink);
#[cfg(feature = "alloc")]
assert_impl_all!(Vec<u8>: ByteSource, ByteSink);
// A shared reference must not be writable.
assert_not_impl_any!(&[u8]: ByteSink);
assert_not_impl_any!(&[u8; 4]: ByteSink);

#[test]
fn errors_box_into_send_sync_dyn_error() {
    let boxed: Box<dyn Error + Send + Sync> = Box::new(OutOfBounds {
        pos: 1,
        len: 2,
        size: 2,
    });
    assert!(boxed.to_string().contains("position 1"));
    let boxed: Box<dyn Error + Send + Sync> = Box::new(VarintError::Truncated { len: 3 });
    assert!(boxed.to_string().contains("3 bytes"));
}
