//! What a test needs beyond Rust, git and python3: etcd, Chromium and,
//! for the README's secrets, openssl.
//!
//! `cargo test --workspace --locked` must pass on a machine with Rust, git
//! and python3 only (the README's second command), so a test whose
//! component is missing prints one line naming what it skipped and the
//! Debian package that brings it, and passes. CI must never skip: under
//! [`REQUIRE_ALL`]`=1` (`.ci/run` sets it) a missing component fails the
//! test instead. Every test that needs etcd or Chromium asks here, so the
//! rule is decided in one place.
//!
//! transport-tcp's own etcd test includes this file by path (it cannot
//! depend on the e2e tests' crate), hence std only and no `crate::` paths.

// Each includer uses its own subset of these.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Set to `1` (anything but empty or `0`): a missing component fails the
/// test instead of skipping it.
pub const REQUIRE_ALL: &str = "GCOUNTER_TEST_REQUIRE_ALL";
/// The Chromium to use when it is not `chromium` or `chromium-browser`
/// on PATH (a browser installed elsewhere).
pub const CHROMIUM_VAR: &str = "GCOUNTER_CHROMIUM";

/// The `etcd` binary on PATH, where `gcounter` looks for it (the etcd
/// tests run `gcounter`, which starts its members from PATH); `None` when
/// the test is to be skipped.
pub fn etcd() -> Option<PathBuf> {
    match on_path(OsStr::new("etcd")) {
        Some(etcd) => Some(etcd),
        None => missing("etcd", "etcd-server", "no `etcd` on PATH"),
    }
}

/// The `openssl` binary on PATH, with which the README's examples make a
/// cluster's secret (`tests/e2e/readme.rs`); `None` when the test is to be
/// skipped.
pub fn openssl() -> Option<PathBuf> {
    match on_path(OsStr::new("openssl")) {
        Some(openssl) => Some(openssl),
        None => missing("openssl", "openssl", "no `openssl` on PATH"),
    }
}

/// A headless-capable Chromium: [`CHROMIUM_VAR`] if set, else `chromium`
/// or `chromium-browser` on PATH (Debian's package installs
/// /usr/bin/chromium); `None` when the test is to be skipped.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CHROMIUM_VAR) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Some(path)
        } else {
            let why = format!(
                "{CHROMIUM_VAR}={} is not an executable file",
                path.display()
            );
            missing("chromium", "chromium", &why)
        };
    }
    let found = [OsStr::new("chromium"), OsStr::new("chromium-browser")]
        .into_iter()
        .find_map(on_path);
    match found {
        Some(chromium) => Some(chromium),
        None => missing(
            "chromium",
            "chromium",
            &format!("no `chromium` or `chromium-browser` on PATH, and {CHROMIUM_VAR} is not set"),
        ),
    }
}

/// Whether a missing component fails the test rather than skipping it.
pub fn require_all() -> bool {
    std::env::var_os(REQUIRE_ALL).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Skips (one line, `None`) or, under [`REQUIRE_ALL`], fails the running
/// test for want of `what`.
fn missing(what: &str, package: &str, why: &str) -> Option<PathBuf> {
    // libtest names each test's thread after the test.
    let current = std::thread::current();
    let test = current.name().unwrap_or("a test");
    let install = format!("on Debian: apt-get install {package}");
    if require_all() {
        panic!("{test} needs {what}: {why} ({install}); {REQUIRE_ALL} forbids skipping it");
    }
    // Straight to the process's stderr: eprintln! would be captured by
    // libtest and shown only if the test failed, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs {what}, {why} ({install}; {REQUIRE_ALL}=1 fails instead)"
    );
    None
}

/// The first `name` in a directory of PATH, as a shell would find it.
fn on_path(name: &OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}
