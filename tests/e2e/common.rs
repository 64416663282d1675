//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};

/// The `gcounter` binary under test.
pub fn gcounter() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_gcounter"))
}

/// `../shared/fixtures`, read in place (never copied into the repo).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}
