//! Why did it fail, and was it luck: the explanation of an invalid run in
//! `gcounter sim --store` and `gcounter test`, and `gcounter test --runs`
//! through the binary.

use crate::common::{self, describe, gcounter, Store};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn json(path: std::path::PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON")
}

/// A results directory whose explanation accounts for every lost increment.
fn assert_explained(dir: &std::path::Path) -> Value {
    let results = json(dir.join("results.json"));
    assert_eq!(results["verdict"], "invalid", "{results}");
    let e = &results["explanation"];
    let lost = results["workload"]["lost"].as_u64().expect("lost");
    assert!(lost > 0);
    if results["workload"]["indeterminate_adds"] == 0 {
        assert_eq!(e["explained"].as_u64(), Some(lost), "{e}");
        assert_eq!(e["unexplained"], 0);
    }
    let overwrites = e["overwrites"].as_array().expect("overwrites");
    assert!(
        overwrites.iter().all(|o| o["cause"].is_string()) && !overwrites.is_empty()
            || e["stale_final_reads"]
                .as_array()
                .is_some_and(|s| !s.is_empty()),
        "{e}"
    );
    let messages = std::fs::read_to_string(dir.join("messages.jsonl")).expect("messages.jsonl");
    assert!(messages.lines().count() > 100);
    assert_eq!(results["trace"]["cut"], 0);
    let page = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    assert!(page.contains("Why it is invalid") && page.contains("marker-end"));
    results
}

#[test]
fn sim_store_writes_a_run_directory_that_explains_the_loss() {
    let store = Store::new("why-sim");
    let out = Command::new(gcounter())
        .args([
            "sim",
            "--strategy",
            "naive",
            "--nemesis",
            "partition",
            "--seed",
            "7",
        ])
        .arg("--store")
        .arg(&store.0)
        .output()
        .expect("gcounter sim runs");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let results = assert_explained(&store.latest());
    assert_eq!(results["workload"]["lost"], 417);
    assert_eq!(results["settings"]["transport"], "simulator");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("why: 417 acknowledged increment(s) lost; 417 explained"),
        "{stdout}"
    );
}

#[test]
fn a_naive_run_of_real_processes_is_explained() {
    let store = Store::new("why-test");
    let out = common::gcounter_test(
        &store,
        &["--strategy", "naive", "--seed", "3"],
        Duration::from_secs(60),
    );
    common::assert_reports_lost_updates(&store, &out);
    assert_explained(&store.latest());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("e.g. ") && stdout.contains("fix: "),
        "{stdout}"
    );
}

#[test]
fn runs_call_naive_invalid_with_a_cause_and_index_them() {
    let store = Store::new("why-runs");
    let out = common::gcounter_test(
        &store,
        &[
            "--strategy",
            "naive",
            "--runs",
            "2",
            "--keep-going",
            "--time-limit",
            "2",
            "--recovery",
            "1",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 runs: 0 valid, 2 invalid"), "{stdout}");
    assert!(stdout.contains("overwrites"), "{stdout}");
    let runs = json(store.latest().join("runs.json"));
    let runs = runs.as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    // Each run has its seed, its own timing and its own page.
    assert_ne!(runs[0]["latency"], runs[1]["latency"]);
    // Maelstrom's random choices first, then the first adversary; each
    // replay line says which.
    assert_eq!(runs[0]["adversary"], "none");
    assert_eq!(runs[1]["adversary"], "stale,adds-first");
    assert!(stdout.contains("adversary"), "{stdout}");
    assert!(runs[1]["replay"]
        .as_str()
        .is_some_and(|c| c.contains("--adversary stale")));
    assert_ne!(runs[0]["seed"], runs[1]["seed"]);
    for r in runs {
        let dir = store.latest().join(r["dir"].as_str().expect("dir"));
        assert!(dir.join("index.html").is_file());
        assert!(r["replay"]
            .as_str()
            .is_some_and(|c| c.contains("--strategy naive")));
    }
    let index = std::fs::read_to_string(store.latest().join("index.html")).expect("index");
    assert!(index.contains(r#"href="run-01/index.html""#));
    // Issue 20, item 5: the loss against what was acknowledged, the
    // operations completed, a summary line, and replay lines that wrap
    // between flags only.
    for r in runs {
        let (lost, acked) = (r["lost"].as_u64(), r["acknowledged"].as_u64());
        assert!(lost.is_some_and(|l| acked.is_some_and(|a| l <= a)), "{r}");
        assert!(r["completed"].as_u64().is_some_and(|c| c > 0), "{r}");
        let shown = format!("{} of {}", lost.unwrap(), acked.unwrap());
        assert!(stdout.contains(&shown), "{stdout}");
    }
    assert!(index.contains("2 runs: 0 valid, 2 invalid"), "{index}");
    assert!(
        index.contains(r#"<span class="flag">--strategy naive</span>"#),
        "{index}"
    );
    // Without --keep-going the hunt ends at the first invalid run.
    let hunt = Store::new("why-runs-hunt");
    let out = common::gcounter_test(
        &hunt,
        &[
            "--strategy",
            "naive",
            "--runs",
            "3",
            "--time-limit",
            "2",
            "--recovery",
            "1",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 runs: 0 valid, 1 invalid"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the hunt stops here"), "{stderr}");
}

/// No false alarm: eight short runs under varied timing and partitions.
fn no_false_alarm(strategy: &str) {
    let store = Store::new(&format!("why-runs-{strategy}"));
    let args = [
        "--strategy",
        strategy,
        "--runs",
        "8",
        "--time-limit",
        "3",
        "--recovery",
        "2",
        "--nemesis-interval",
        "1",
    ];
    let out = common::gcounter_test(&store, &args, Duration::from_secs(240));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("8 runs: 8 valid"), "{stdout}");
}

#[test]
fn runs_find_no_false_alarm_in_per_node() {
    no_false_alarm("per-node");
}

#[test]
fn runs_find_no_false_alarm_in_cas() {
    no_false_alarm("cas");
}

#[test]
fn runs_find_no_false_alarm_in_gossip() {
    no_false_alarm("gossip");
}

/// A wrong node, from `tests/nodes/`, that often passes a single run on
/// Maelstrom's random choices: `--runs 4`, which tries each adversary
/// once, calls it invalid and names the cause. (Before the adversaries it
/// took 16 runs for the per-node keys, each passing about 65 % of the
/// time.)
fn caught(node: &str, runs: &str, cause: &str) {
    let store = Store::new(&format!("why-{node}"));
    let script = common::node_script(node);
    let args = [
        "--runs",
        runs,
        "--time-limit",
        "2",
        "--recovery",
        "1",
        "--nemesis-interval",
        "1",
        "--seed",
        "1",
        "--bin",
        "python3",
        &script,
    ];
    let out = common::gcounter_test(&store, &args, Duration::from_secs(400));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(cause), "no `{cause}` in:\n{stdout}");
}

#[test]
fn runs_catch_per_node_keys_summed_without_a_sync_write() {
    caught("per_node_no_sync", "4", "stale final reads");
}

#[test]
fn runs_catch_a_cas_buffer_zeroed_on_cas_ok() {
    caught("cas_zero_on_ok", "4", "acknowledged adds never written");
}
