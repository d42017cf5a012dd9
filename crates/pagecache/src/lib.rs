//! A cache of 2^k-byte pages over a `blockdev` device (work in progress).
