//! `gcounter test --transport tcp` through the binary: the same workload,
//! partitions and checker against a TCP cluster the command starts itself,
//! and the same results directory.

use crate::common::{self, assert_reports_lost_updates, describe, Store};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

/// Runs `gcounter test --transport tcp` with the short evaluation and
/// `extra` flags; kills it (and so its cluster) after 90 s.
fn tcp_test(store: &Store, extra: &[&str]) -> Output {
    let mut args = vec!["--transport", "tcp"];
    args.extend_from_slice(extra);
    common::gcounter_test(store, &args, Duration::from_secs(90))
}

fn assert_valid_with(strategy: &str) {
    let store = Store::new(&format!("tcp-{strategy}"));
    let out = tcp_test(&store, &["--strategy", strategy]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let results = store.results();
    assert_eq!(results["verdict"], "valid", "{results}");
    assert_eq!(results["workload"]["lost"], 0);
    assert_eq!(results["settings"]["transport"], "tcp");
    assert_eq!(results["settings"]["strategy"], strategy);
    // Every final read came back, and the run did real work.
    assert_eq!(
        results["workload"]["final_reads"].as_array().map(Vec::len),
        Some(3)
    );
    let ok_adds = results["stats"]["add"]["ok"].as_u64().expect("ok adds");
    assert!(ok_adds > 50, "only {ok_adds} adds acknowledged: {results}");
    // The partitions were applied (the nemesis log is the nodes' cuts).
    assert!(
        results["nemesis"]
            .as_array()
            .is_some_and(|n| n.iter().any(|e| e["f"] == "start-partition")),
        "{results}"
    );
    // What the runner cannot see is said, not guessed.
    assert_eq!(results["net"]["observed"], "clients only");
    assert_eq!(results["net"]["servers"], Value::Null);
    assert_eq!(results["net"]["all"], Value::Null);
    assert_eq!(results["dropped_by_partitions"], Value::Null);
    assert!(results["net"]["clients"]["msg_count"].as_u64() > Some(0));
    for file in [
        "history.jsonl",
        "index.html",
        "latency-raw.svg",
        "latency-quantiles.svg",
        "rate.svg",
    ] {
        assert!(store.latest().join(file).is_file(), "{file} missing");
    }
    let mut cut_logged = false;
    for member in ["n0", "n1", "n2", "seq-kv"] {
        let log = store.latest().join(format!("node-logs/{member}.log"));
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{member}.log: {e}"));
        cut_logged |= text.contains("partition: cut off from");
    }
    // A partition that cut something reached the nodes ("minority-third"
    // of 3 nodes cuts nothing).
    let cut_something = results["nemesis"].as_array().is_some_and(|events| {
        events.iter().any(|e| {
            e["partition"]["grudge"].as_object().is_some_and(|g| {
                g.values()
                    .any(|srcs| srcs.as_array().is_some_and(|s| !s.is_empty()))
            })
        })
    });
    assert_eq!(cut_logged, cut_something, "{results}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("verdict: valid"), "{stdout}");
    assert!(stdout.contains("msgs-per-op: not observed"), "{stdout}");
}

#[test]
fn tcp_per_node_is_valid_under_partitions() {
    assert_valid_with("per-node");
}

#[test]
fn tcp_cas_is_valid_under_partitions() {
    assert_valid_with("cas");
}

#[test]
fn tcp_gossip_is_valid_under_partitions() {
    assert_valid_with("gossip");
}

/// `naive` read-modify-writes one shared key: on TCP at rate 100 every run
/// of 5 s seen so far lost dozens of adds (65 to 129 in the runs checked).
#[test]
fn tcp_naive_loses_updates_and_the_test_says_so() {
    let store = Store::new("tcp-naive");
    let out = tcp_test(&store, &["--strategy", "naive"]);
    assert_reports_lost_updates(&store, &out);
}

#[test]
fn tcp_refuses_what_a_real_network_cannot_do() {
    for (flags, says) in [
        (
            &["--bin", "true"][..],
            "--bin is not supported with --transport tcp",
        ),
        (
            &["--latency", "5"][..],
            "--latency cannot apply with --transport tcp",
        ),
        (&["--log-stderr"][..], "--log-stderr is not supported"),
    ] {
        let store = Store::new("tcp-refused");
        let out = tcp_test(&store, flags);
        assert_eq!(out.status.code(), Some(64), "{flags:?}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
    }
}

#[test]
fn tcp_concurrency_gives_each_client_its_own_connection() {
    let store = Store::new("tcp-concurrency");
    let flags = [
        "--concurrency",
        "2n",
        "--time-limit",
        "2",
        "--recovery",
        "1",
    ];
    let out = tcp_test(&store, &flags);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let results = store.results();
    assert_eq!(results["settings"]["concurrency"], 6);
    // One final read per client, each answered on its own connection.
    assert_eq!(
        results["workload"]["final_reads"].as_array().map(Vec::len),
        Some(6)
    );
}

/// The pids of `pid`'s children.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A node that dies mid-run ends the test with an error that names it.
#[test]
fn tcp_a_node_that_dies_fails_the_test_naming_it() {
    use std::process::{Command, Stdio};
    use std::time::Instant;
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("SKIPPED: needs /proc to find the cluster's node processes");
        return;
    }
    let store = Store::new("tcp-dies");
    let mut child = Command::new(common::gcounter())
        .args(["test", "--transport", "tcp", "--time-limit", "30"])
        .args(["--recovery", "1", "--store"])
        .arg(&store.0)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gcounter test starts");
    let is_n1 = |pid: &u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.windows(8).any(|w| w == b"--id\0n1\0"))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let n1 = loop {
        // Once the last node listens, the cluster is up and the run starts.
        let started = std::fs::read_to_string(store.latest().join("cluster/n2.log"))
            .is_ok_and(|l| l.contains("listening"));
        if let Some(pid) = children(child.id()).into_iter().find(is_n1) {
            if started {
                break pid;
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("node n1 of the test's cluster never showed up");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(1));
    Command::new("kill")
        .args(["-9", &n1.to_string()])
        .status()
        .expect("kill runs");
    let watchdog_pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if !std::path::Path::new(&format!("/proc/{watchdog_pid}")).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-9", &watchdog_pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().expect("gcounter test ends");
    let _ = watchdog.join();
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("node n1 exited before the test ended"),
        "{stderr}"
    );
    assert!(store.results()["error"]
        .as_str()
        .is_some_and(|e| e.contains("node n1")));
}
