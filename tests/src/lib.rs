//! End-to-end tests of the `gcounter` binary live in `tests/`.
