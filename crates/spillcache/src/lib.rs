//! A secure spill cache over one anonymous file (work in progress).
