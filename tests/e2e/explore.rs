//! `gcounter explore` through the binary: bounds first, the exit status,
//! the diagram of a failing schedule.

use crate::common::gcounter;
use std::process::Command;

fn explore(args: &[&str], dir: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(gcounter())
        .arg("explore")
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("gcounter explore runs");
    (
        out.status.code(),
        String::from_utf8(out.stdout).expect("utf-8 report"),
        String::from_utf8(out.stderr).expect("utf-8 errors"),
    )
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gcounter-e2e-explore-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

#[test]
fn explore_finds_naive_losing_an_add_says_which_write_erased_it_and_draws_it_under_store() {
    let dir = scratch("naive");
    let (code, out, err) = explore(
        &["--strategy", "naive", "--adds", "1", "--timers", "0"],
        &dir,
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.starts_with("gcounter explore"), "{out}");
    assert!(out.contains("bounds:"), "{out}");
    assert!(out.contains("1. c1 -> n0 add 1"), "{out}");
    assert!(out.contains("invalid: "), "{out}");
    // Which write erased which add, and the read it was computed from.
    assert!(out.contains("why: step "), "{out}");
    assert!(out.contains("erasing acknowledged add"), "{out}");
    assert!(out.contains("computed it from what it last heard"), "{out}");
    // End-state counts of many digits are grouped (the default search,
    // with sleep sets, counts end states, not schedules).
    assert!(out.contains(" end states in all fail"), "{out}");
    assert!(out.contains(','), "{out}");
    let svg = std::fs::read_to_string(dir.join("store/explore/naive-seq-kv.svg"))
        .expect("the default SVG, under store/");
    assert!(svg.contains("<svg") && svg.contains("seq-kv"));
    // The erasing write is drawn in red, with what it erased.
    assert!(svg.contains(">erases +"), "{svg}");
    assert!(!dir.join("explore-failure.svg").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explore_exits_0_for_a_correct_strategy_64_for_a_usage_error_and_2_for_no_time() {
    let dir = scratch("ok");
    let (code, out, err) = explore(
        &["--strategy", "cas", "--kv", "lin-kv", "--adds", "1"],
        &dir,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("complete within bounds"), "{out}");
    assert!(!dir.join("store").exists());
    // gossip's bounds mention no KV service.
    let (code, out, err) = explore(&["--strategy", "gossip", "--adds", "1"], &dir);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!out.contains("seq-kv"), "{out}");

    let (code, _, err) = explore(&["--strategy", "paxos"], &dir);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("paxos"), "{err}");

    let (code, out, err) = explore(&["--budget", "0.000001"], &dir);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.contains("incomplete"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
