//! Project tasks: `cargo xtask bench`, `cargo xtask fuzz`.

fn main() {}
