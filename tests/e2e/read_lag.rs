//! Read lag through the binary, for a node in another language and for
//! ours: how far behind the acknowledged adds each read was.

use crate::common::{self, describe, Store};
use std::time::Duration;

/// A short run without faults: lag comes from the node alone.
fn run(store: &Store, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--rate", "100", "--time-limit", "5", "--recovery", "3"];
    args.extend_from_slice(extra);
    let out = common::gcounter_test_exact(store, &args, Duration::from_secs(90));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("  read lag: p50 "),
        "{}",
        describe(&out)
    );
    let results = store.results();
    assert!(
        results["read_lag"]["reads"].as_u64() > Some(100),
        "{results}"
    );
    results["read_lag"].clone()
}

#[test]
fn a_node_that_reads_a_snapshot_taken_every_second_lags_by_about_a_second() {
    let store = Store::new("read-lag-snapshot");
    let node = common::node_script("reads_a_snapshot_every_second");
    let lag = run(&store, &["--node-count", "3", "--bin", "python3", &node]);
    // Reads just before a refresh lack the adds of most of a second: the
    // oldest of them was acknowledged about a second before. (Bounds
    // loose enough for a loaded machine: a stalled node only adds lag.)
    let p99 = lag["age_ms"]["0.99"].as_f64().unwrap_or(0.0);
    assert!((700.0..5000.0).contains(&p99), "{lag}");
    assert!(lag["increments"]["0.99"].as_f64() > Some(10.0), "{lag}");
}

#[test]
fn one_gossip_node_reads_every_acknowledged_add() {
    // One node holds every add it acknowledged: a read sent after an
    // acknowledgement sees it, so no read lags.
    let store = Store::new("read-lag-one-node");
    let lag = run(&store, &["--node-count", "1", "--strategy", "gossip"]);
    assert_eq!(lag["increments"]["1"], 0.0, "{lag}");
    assert_eq!(lag["age_ms"]["1"], 0.0, "{lag}");
}
