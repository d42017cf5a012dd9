//! An `io::Error` that says what we were doing, keeping the kind and the cause.

use std::fmt;
use std::io;

/// The OS error plus the operation and path it happened on.
#[derive(Debug)]
struct WithContext {
    what: String,
    cause: io::Error,
}

impl fmt::Display for WithContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.cause)
    }
}

impl std::error::Error for WithContext {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// Wraps `cause` with a description, keeping its [`io::ErrorKind`] so callers
/// can still match on it; the original error (with its errno) is the `source`.
pub(crate) fn with_context(cause: io::Error, what: impl Into<String>) -> io::Error {
    io::Error::new(
        cause.kind(),
        WithContext {
            what: what.into(),
            cause,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_kind_errno_and_message() {
        let cause = io::Error::from_raw_os_error(rustix::io::Errno::NOENT.raw_os_error());
        let error = with_context(cause, "opening /nowhere");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        let source = std::error::Error::source(error.get_ref().unwrap()).unwrap();
        let source = source.downcast_ref::<io::Error>().unwrap();
        assert_eq!(
            source.raw_os_error(),
            Some(rustix::io::Errno::NOENT.raw_os_error())
        );
        let message = error.to_string();
        assert!(message.starts_with("opening /nowhere: "), "{message}");
    }
}
