//! The `gcounter` binary.
fn main() {}
