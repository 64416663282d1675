//! `gcounter test` against node processes that break it in ways issue 24
//! found: a node whose forked child holds its stdout after it exits
//! (item 5), and reads whose value is not an integer (item 6).

use crate::common::{self, describe, Store};
use std::time::{Duration, Instant};

fn one_node(store: &Store, node: &str) -> std::process::Output {
    common::gcounter_test(
        store,
        &[
            "--node-count",
            "1",
            "--time-limit",
            "5",
            "--recovery",
            "1",
            "--bin",
            "python3",
            &common::node_script(node),
        ],
        Duration::from_secs(60),
    )
}

/// Whether process `pid` is gone (or a zombie no one has reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_node_that_exits_while_its_child_holds_stdout_fails_at_once_and_the_child_is_killed() {
    // Before: the runner waited for stdout to close, which the child
    // prevented: `unknown` after 14 s, no word of the exit, and the child
    // still running after the runner.
    let store = Store::new("forks");
    let started = Instant::now();
    let out = one_node(&store, "forks_and_exits");
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("node n0 exited before the test ended"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let log = std::fs::read_to_string(store.latest().join("node-logs/n0.log")).expect("n0's log");
    let pid: u32 = log
        .lines()
        .find_map(|l| l.strip_prefix("child pid "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no child pid in the log: {log}"));
    let deadline = Instant::now() + Duration::from_secs(2);
    while !gone(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(pid), "the forked child {pid} outlived the runner");
}

#[test]
fn reads_that_are_not_integers_are_taken_as_maelstroms_client_takes_them_with_a_warning() {
    // Before: every such read was indeterminate, the final read with
    // them, and the verdict `unknown` (exit 2) without a warning.
    let store = Store::new("non-integer");
    let out = one_node(&store, "non_integer_reads");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let results = store.results();
    assert_eq!(results["verdict"], "valid", "{results}");
    let reads = &results["replies"]["reads"];
    assert_eq!(reads["out_of_range"], 1, "{reads}");
    let truncated = reads["truncated"].as_u64().expect("a count");
    assert!(truncated > 1, "{reads}");
    let warnings = results["warnings"].to_string();
    assert!(
        warnings.contains(&format!("{truncated} read values truncated toward zero")),
        "{warnings}"
    );
    assert!(
        warnings.contains("1 read value outside the 64-bit range"),
        "{warnings}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("warning: ") && stdout.contains("1.8446744073709552e+19"),
        "{stdout}"
    );
    // The final read, 0.5 above the total, reads as the total.
    let history = std::fs::read_to_string(store.latest().join("history.jsonl")).expect("history");
    assert!(!history.contains("is not an integer"), "{history}");
}
