//! The error type of opening and reading an object, and its `io::Error` form.

use std::fmt;
use std::io;

/// What went wrong opening or reading an object.
///
/// [`ReadAt`](blockdev::ReadAt) returns `io::Error`; the error inside it is
/// this type (see [`Error::from_io`]), so a caller can tell a replaced
/// object from a failed request.
///
/// ```
/// use objectdev::{Error, ObjectDevice};
///
/// let err = ObjectDevice::open("no scheme here").unwrap_err();
/// assert!(matches!(err, Error::InvalidUrl { .. }));
/// assert!(err.to_string().starts_with("invalid object URL \"no scheme here\""));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The URL does not parse, or names no store this build supports.
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// An option is out of range.
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The store refused or failed a request (after object_store's own
    /// retries); its message is kept.
    Store(object_store::Error),
    /// The store has no such version of the object (asked for by
    /// `?versionId=` or [`ObjectDeviceBuilder::version`](crate::ObjectDeviceBuilder::version)),
    /// or no such object.
    VersionNotFound {
        /// The object's location in its store.
        path: String,
        /// The version asked for.
        version: String,
        /// The store's answer.
        source: object_store::Error,
    },
    /// The object is not the one this device first saw: a response came with
    /// another ETag (or size), or the store refused `If-Match`. No bytes of
    /// the new object were returned. `refresh` on the top of the stack
    /// (`PageCache::refresh`, or [`ReadAt::refresh`](blockdev::ReadAt::refresh))
    /// moves it to the new version.
    ObjectChanged {
        /// The object's location in its store.
        path: String,
        /// The ETag remembered.
        expected: Option<String>,
        /// The ETag the store answered with (`None` when it only refused `If-Match`).
        found: Option<String>,
    },
    /// The store answered a ranged GET with fewer or more bytes than asked.
    ShortResponse {
        /// First byte asked for.
        start: u64,
        /// Bytes asked for.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// A blocking call was made from a thread that runs async tasks (a
    /// tokio worker, or inside `block_on`), where blocking would stall
    /// them: call it from `spawn_blocking` or `block_in_place`, or use the
    /// async face ([`ObjectDevice::read_at_async`](crate::ObjectDevice::read_at_async)).
    InsideRuntime,
    /// The device's own runtime could not start.
    Runtime(io::Error),
    /// The runtime handle given cannot run the device's requests.
    UnusableRuntime {
        /// Why.
        reason: String,
    },
    /// The runtime the device's requests run on is gone (the borrowed
    /// runtime was dropped), or a request's task failed on it (e.g. a
    /// runtime without I/O or timers).
    RuntimeGone {
        /// What happened to the task.
        reason: String,
    },
    /// A read (all its parts and retries) did not finish within the
    /// device's deadline.
    Deadline {
        /// The deadline.
        after: std::time::Duration,
    },
    /// A range asked of [`read_ranges`](crate::ObjectDevice::read_ranges)
    /// is reversed or ends past the object.
    InvalidRange {
        /// The range asked.
        range: std::ops::Range<u64>,
        /// The object's size.
        size: u64,
    },
}

impl Error {
    /// The [`Error`] inside an `io::Error` returned by this crate, if any.
    ///
    /// ```
    /// use objectdev::Error;
    ///
    /// let io: std::io::Error = Error::InsideRuntime.into();
    /// assert!(matches!(Error::from_io(&io), Some(Error::InsideRuntime)));
    /// assert!(Error::from_io(&std::io::Error::other("x")).is_none());
    /// ```
    pub fn from_io(error: &io::Error) -> Option<&Error> {
        error.get_ref()?.downcast_ref()
    }

    /// Whether this says the object was replaced.
    ///
    /// ```
    /// let err = objectdev::Error::ObjectChanged { path: "k".into(), expected: None, found: None };
    /// assert!(err.is_object_changed());
    /// ```
    pub fn is_object_changed(&self) -> bool {
        matches!(self, Error::ObjectChanged { .. })
    }

    fn io_kind(&self) -> io::ErrorKind {
        use object_store::Error as S;
        match self {
            Error::InvalidUrl { .. }
            | Error::InvalidOption { .. }
            | Error::UnusableRuntime { .. }
            | Error::InvalidRange { .. } => io::ErrorKind::InvalidInput,
            Error::Store(S::NotFound { .. }) | Error::VersionNotFound { .. } => {
                io::ErrorKind::NotFound
            }
            Error::Store(S::PermissionDenied { .. } | S::Unauthenticated { .. }) => {
                io::ErrorKind::PermissionDenied
            }
            Error::Store(_) | Error::Runtime(_) | Error::RuntimeGone { .. } => io::ErrorKind::Other,
            Error::Deadline { .. } => io::ErrorKind::TimedOut,
            Error::ObjectChanged { .. } => io::ErrorKind::StaleNetworkFileHandle,
            Error::ShortResponse { .. } => io::ErrorKind::UnexpectedEof,
            Error::InsideRuntime => io::ErrorKind::WouldBlock,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => write!(f, "invalid object URL {url:?}: {reason}"),
            Error::InvalidOption { option, reason } => write!(f, "invalid {option}: {reason}"),
            Error::Store(e) => write!(f, "object store: {e}"),
            Error::VersionNotFound {
                path,
                version,
                source,
            } => write!(
                f,
                "object {path} has no version {version:?} (or there is no such object); \
                 in a URL, percent-encode the version id: object store: {source}"
            ),
            Error::ObjectChanged {
                path,
                expected,
                found,
            } => write!(
                f,
                "object {path} changed under the device (ETag {} remembered, {} now); \
                 call refresh on the top of the stack (e.g. PageCache::refresh) \
                 to move all of it to the new version",
                expected.as_deref().unwrap_or("none"),
                found.as_deref().unwrap_or("refused by If-Match")
            ),
            Error::ShortResponse {
                start,
                expected,
                got,
            } => write!(
                f,
                "ranged GET at {start} returned {got} bytes instead of {expected}"
            ),
            Error::InsideRuntime => write!(
                f,
                "an ObjectDevice read blocks, so it cannot run on a thread that runs async \
                 tasks; call it from spawn_blocking, block_in_place or a plain thread, or \
                 await read_at_async / read_ranges"
            ),
            Error::Runtime(e) => write!(f, "cannot start the device's tokio runtime: {e}"),
            Error::UnusableRuntime { reason } => {
                write!(
                    f,
                    "the runtime handle cannot run the device's requests: {reason}"
                )
            }
            Error::RuntimeGone { reason } => {
                write!(f, "the device's requests cannot run: {reason}")
            }
            Error::Deadline { after } => write!(
                f,
                "the read did not finish within the device's deadline of {after:?} \
                 (objectdev_deadline)"
            ),
            Error::InvalidRange { range, size } => write!(
                f,
                "range {range:?} is not within the object of {size} bytes"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Store(e) | Error::VersionNotFound { source: e, .. } => Some(e),
            Error::Runtime(e) => Some(e),
            _ => None,
        }
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::Store(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::new(e.io_kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_message_and_kind() {
        let store = object_store::Error::NotFound {
            path: "bucket/key".into(),
            source: "404 from the server".into(),
        };
        let io: io::Error = Error::Store(store).into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert!(io.to_string().contains("bucket/key"), "{io}");
        assert!(matches!(Error::from_io(&io), Some(Error::Store(_))));
    }

    #[test]
    fn a_changed_object_names_both_etags() {
        let e = Error::ObjectChanged {
            path: "k".into(),
            expected: Some("\"a\"".into()),
            found: Some("\"b\"".into()),
        };
        let text = e.to_string();
        assert!(text.contains("\"a\"") && text.contains("\"b\""), "{text}");
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::StaleNetworkFileHandle);
    }
}
