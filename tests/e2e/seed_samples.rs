//! The sample cases the counter was specified by (SPEC.md section 6): each
//! `.in` fed to one node must give exactly the `.out` bytes, with every
//! strategy and with no configuration at all.

use crate::common::{fixtures, run_node};
use std::fs;
use std::path::PathBuf;

/// Every `<name>.in` in `fixtures/seed-samples` with its `<name>.out`.
fn cases() -> Vec<(PathBuf, PathBuf)> {
    let dir = fixtures().join("seed-samples");
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut cases: Vec<(PathBuf, PathBuf)> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "in"))
        .map(|input| {
            let output = input.with_extension("out");
            assert!(output.exists(), "{} has no .out beside it", input.display());
            (input, output)
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no seed samples in {}", dir.display());
    cases
}

fn check(vars: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (input, output) in cases() {
        let name = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let run = run_node(vars, &fs::read(&input).expect("read .in"));
        let expected = fs::read(&output).expect("read .out");
        if !run.status.success() || run.stdout != expected {
            failures.push(format!(
                "{name} with {vars:?}: exit {}\n--- expected\n{}--- got\n{}--- stderr\n{}",
                run.status,
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&run.stdout),
                run.stderr,
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seed_samples_with_no_configuration() {
    check(&[]);
}

#[test]
fn seed_samples_with_gossip() {
    check(&[("GCOUNTER_STRATEGY", "gossip")]);
}

#[test]
fn seed_samples_with_per_node() {
    check(&[("GCOUNTER_STRATEGY", "per-node")]);
}

#[test]
fn seed_samples_with_cas() {
    check(&[("GCOUNTER_STRATEGY", "cas")]);
}

#[test]
fn seed_samples_with_naive() {
    check(&[("GCOUNTER_STRATEGY", "naive")]);
}
