//! `gcounter test --nemesis partition,kill,pause` through the binary:
//! node processes killed with SIGKILL and started again, paused with
//! SIGSTOP and resumed, on stdio and on the TCP cluster. The seeds are
//! chosen so that the schedule (which the seed fixes, unlike process
//! timing) kills, pauses and partitions real nodes: `gcounter sim` with
//! the same flags prints the same nemesis log.

use crate::common::{self, describe, Store};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

/// Seed 4 at one event a second: kill n0, start it, pause n2, partition,
/// heal, resume n2, kill n2, start it.
const ALL_FAULTS: [&str; 10] = [
    "--nemesis",
    "partition,kill,pause",
    "--nemesis-interval",
    "1",
    "--time-limit",
    "6",
    "--recovery",
    "3",
    "--seed",
    "4",
];

fn run(name: &str, extra: &[&str]) -> (Store, Output) {
    let store = Store::new(name);
    let mut args = ALL_FAULTS.to_vec();
    args.extend_from_slice(extra);
    let out = common::gcounter_test(&store, &args, Duration::from_secs(90));
    (store, out)
}

/// The nemesis log's events of type `f` that took at least one node.
fn took_nodes(results: &Value, f: &str) -> usize {
    results["nemesis"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["f"] == f && e["nodes"].as_array().is_some_and(|n| !n.is_empty()))
        .count()
}

fn assert_valid_under_every_fault(name: &str, extra: &[&str]) -> Value {
    let (store, out) = run(name, extra);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let results = store.results();
    assert_eq!(results["verdict"], "valid", "{results}");
    for f in ["kill", "start", "pause", "resume"] {
        assert!(
            took_nodes(&results, f) > 0,
            "no {f} in {}",
            results["nemesis"]
        );
    }
    let windows = results["faults"]["windows"].as_array().map_or(0, Vec::len);
    assert!(windows >= 4, "{}", results["faults"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The summary counts the faults, then lists each window.
    assert!(stdout.contains("  faults: "), "{stdout}");
    assert!(stdout.contains("kill n0 ("), "{stdout}");
    // The page shades them.
    let page = std::fs::read_to_string(store.latest().join("index.html")).expect("index.html");
    assert!(
        page.contains("<title>kill n0"),
        "no kill shaded on the page"
    );
    results
}

#[test]
fn per_node_survives_kills_and_pauses() {
    assert_valid_under_every_fault("faults-per-node", &["--strategy", "per-node"]);
}

#[test]
fn cas_survives_kills_and_pauses() {
    assert_valid_under_every_fault("faults-cas", &["--strategy", "cas"]);
}

#[test]
fn gossip_on_tcp_survives_kills_and_pauses() {
    // The cluster gives every node a state directory.
    assert_valid_under_every_fault(
        "faults-tcp-gossip",
        &["--transport", "tcp", "--strategy", "gossip"],
    );
}

/// Seed 1: four kills in 8 s, each taking a node that acknowledges about
/// 30 adds a second.
const KILLS: [&str; 12] = [
    "--strategy",
    "gossip",
    "--nemesis",
    "kill",
    "--nemesis-interval",
    "1",
    "--time-limit",
    "8",
    "--rate",
    "300",
    "--seed",
    "1",
];

#[test]
fn gossip_without_state_loses_what_it_acknowledged_before_a_kill() {
    // What a killed node had not gossiped dies with it.
    let store = Store::new("faults-gossip-amnesia");
    let out = common::gcounter_test(&store, &KILLS, Duration::from_secs(90));
    common::assert_reports_lost_updates(&store, &out);
    let results = store.results();
    let kills = results["faults"]["kills"].as_array().expect("kills");
    assert!(kills.len() >= 3, "{}", results["faults"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(" killed at ") && stdout.contains("--state-dir"),
        "the summary does not name the kills and the fix:\n{stdout}"
    );
}

#[test]
fn gossip_with_a_state_dir_in_its_working_directory_survives_the_same_kills() {
    // Each node runs in <run>/nodes/<id>/, so `.` is a directory of its
    // own, kept across kills.
    let store = Store::new("faults-gossip-state");
    let env = [("GCOUNTER_STATE_DIR", ".")];
    let out = common::gcounter_test_with_env(&store, &KILLS, &env, Duration::from_secs(90));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    for node in ["n0", "n1", "n2"] {
        let state = store.latest().join(format!("nodes/{node}/{node}.state"));
        assert!(state.is_file(), "{} missing", state.display());
    }
}
