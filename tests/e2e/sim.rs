//! `gcounter sim` through the binary: flags, report and exit status.

use crate::common::gcounter;
use serde_json::Value;
use std::process::Command;

fn sim(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(gcounter())
        .arg("sim")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("gcounter sim runs");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 report");
    (out.status.code(), stdout)
}

#[test]
fn sim_summarizes_many_seeds_as_json_and_exits_0_when_all_are_valid() {
    let (code, out) = sim(&[
        "--nemesis",
        "partition",
        "--time-limit",
        "3",
        "--recovery",
        "1",
        "--seeds",
        "4",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    for key in [
        "runs",
        "valid",
        "invalid",
        "unknown",
        "lost",
        "server_msgs_per_op",
        "latency_ms",
    ] {
        assert!(v.get(key).is_some(), "no `{key}` in {v}");
    }
    assert_eq!(
        (v["runs"].as_u64(), v["valid"].as_u64()),
        (Some(4), Some(4))
    );
}

#[test]
fn sim_exits_1_on_lost_updates_and_reports_them() {
    let args = [
        "--strategy",
        "naive",
        "--nemesis",
        "partition",
        "--time-limit",
        "5",
        "--recovery",
        "1",
        "--seed",
        "3",
    ];
    let (code, out) = sim(&args);
    assert_eq!(code, Some(1), "{out}");
    // `gcounter test`'s words (issue 20, item 6).
    assert!(out.contains("verdict: invalid"), "{out}");
    assert!(out.contains("acknowledged sum "), "{out}");
    assert!(!out.contains("definite sum"), "{out}");
}
