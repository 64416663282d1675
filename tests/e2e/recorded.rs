//! What a run records of itself: the strategy however it was chosen, a
//! replay line that reproduces the configuration, node commands with dash
//! arguments, and the results a run interrupted by Ctrl-C leaves behind.

use crate::common::{self, describe, Store};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

/// A short run: 2 s of adds and reads, 1 s of recovery, no faults.
const QUICK: [&str; 6] = ["--time-limit", "2", "--recovery", "1", "--seed", "7"];

/// The parts of `settings` that say what ran (not where or when).
fn configuration(settings: &Value) -> Value {
    let mut c = serde_json::Map::new();
    for key in [
        "strategy",
        "strategy_from",
        "kv",
        "kv_from",
        "node_count",
        "concurrency",
        "workload_config",
        "nemesis",
        "latency",
        "seed",
        "transport",
    ] {
        c.insert(key.into(), settings[key].clone());
    }
    Value::Object(c)
}

/// Runs the stored replay line as a shell would, with this build's
/// binary for `gcounter` and the results in `store`.
fn run_replay(line: &str, store: &Store) -> std::process::Output {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "gcounter")
        .unwrap_or_else(|| panic!("no `gcounter` in the replay line {line:?}"));
    let mut cmd = Command::new(common::gcounter());
    for assignment in &words[..at] {
        let (k, v) = assignment
            .split_once('=')
            .unwrap_or_else(|| panic!("{assignment:?} in {line:?}"));
        cmd.env(k, v);
    }
    cmd.args(&words[at + 1..])
        .arg("--store")
        .arg(&store.0)
        .env_remove("GCOUNTER_STRATEGY")
        .env_remove("GCOUNTER_STATE_DIR")
        .output()
        .expect("the replay runs")
}

fn strategy_of(settings: &Value) -> &str {
    settings["strategy"].as_str().unwrap_or("?")
}

#[test]
fn a_strategy_set_by_flag_or_environment_is_recorded_and_replayed() {
    for (how, flags, env) in [
        ("flag", &["--strategy", "naive"][..], &[][..]),
        (
            "environment",
            &[][..],
            &[("GCOUNTER_STRATEGY", "naive")][..],
        ),
    ] {
        let store = Store::new(&format!("recorded-{how}"));
        let mut args = QUICK.to_vec();
        args.extend_from_slice(flags);
        let out = common::gcounter_test_with_env(&store, &args, env, LIMIT);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{how}: {}",
            describe(&out)
        );
        let settings = store.results()["settings"].clone();
        assert_eq!(strategy_of(&settings), "naive", "{how}: {settings}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("strategy naive"),
            "{how}: the summary does not name the strategy:\n{stdout}"
        );
        let line = settings["replay"].as_str().expect("a replay line");
        assert!(line.contains("--strategy naive"), "{how}: {line}");

        let again = Store::new(&format!("recorded-{how}-again"));
        let out = run_replay(line, &again);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{how}, replayed: {}",
            describe(&out)
        );
        let replayed = again.results()["settings"].clone();
        let mut want = configuration(&settings);
        // The replay names the strategy as a flag, whatever set it first.
        want["strategy_from"] = "--strategy".into();
        assert_eq!(configuration(&replayed), want, "{how}: replayed {line}");
    }
}

#[test]
fn the_kv_choice_is_recorded_and_replayed() {
    for (how, flags, env, replayed_as) in [
        (
            "environment",
            &[][..],
            &[("GCOUNTER_KV", "lin-kv")][..],
            "GCOUNTER_KV=lin-kv gcounter test",
        ),
        ("flag", &["--kv", "lin-kv"][..], &[][..], "--kv lin-kv"),
    ] {
        let store = Store::new(&format!("recorded-kv-{how}"));
        let args = [&QUICK[..], &["--strategy", "cas"], flags].concat();
        let out = common::gcounter_test_with_env(&store, &args, env, LIMIT);
        assert_eq!(out.status.code(), Some(0), "{how}: {}", describe(&out));
        let settings = store.results()["settings"].clone();
        assert_eq!(settings["kv"], "lin-kv", "{how}: {settings}");
        let line = settings["replay"].as_str().expect("a replay line");
        assert!(line.contains(replayed_as), "{how}: {line}");
        let again = Store::new(&format!("recorded-kv-{how}-again"));
        let out = run_replay(line, &again);
        assert_eq!(out.status.code(), Some(0), "{how}: {}", describe(&out));
        assert_eq!(
            configuration(&again.results()["settings"]),
            configuration(&settings),
            "{how}: replayed {line}"
        );
    }
}

#[test]
fn a_node_command_may_have_dash_arguments() {
    let store = Store::new("recorded-dash");
    let script = common::node_script("gossip_counter");
    let args = [&QUICK[..], &["--bin", "python3", "-u", "-B", &script]].concat();
    let out = common::gcounter_test(&store, &args, LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let bin = &store.results()["settings"]["bin"];
    assert_eq!(bin[1], "-u", "{bin}");
    assert_eq!(bin[2], "-B", "{bin}");
}

#[test]
fn a_usage_error_is_not_a_verdict() {
    let store = Store::new("recorded-usage");
    for bad in [
        &["--concurrency", "zero"][..],
        &["--no-such-flag"][..],
        &["--strategy", "paxos"][..],
    ] {
        let out = common::gcounter_test(&store, bad, LIMIT);
        assert_eq!(out.status.code(), Some(64), "{bad:?}: {}", describe(&out));
    }
    let out =
        common::gcounter_test_with_env(&store, &QUICK, &[("GCOUNTER_STRATEGY", "paxos")], LIMIT);
    assert_eq!(out.status.code(), Some(64), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("paxos"));
}

#[test]
fn ctrl_c_leaves_the_results_so_far() {
    let store = Store::new("recorded-sigint");
    let mut child = Command::new(common::gcounter())
        .args(["test", "--time-limit", "60", "--recovery", "1", "--store"])
        .arg(&store.0)
        .env_remove("GCOUNTER_STRATEGY")
        .env_remove("GCOUNTER_STATE_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gcounter test starts");
    // Wait until the run has a directory and its nodes have answered some
    // requests; no fixed sleep.
    let deadline = Instant::now() + LIMIT;
    let latest = store.0.join("latest");
    while !latest.join("node-logs").exists() {
        assert!(Instant::now() < deadline, "no run directory appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let start = Instant::now();
    let out = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "gcounter test went on after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("its output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(out.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let results = store.results();
    assert_eq!(results["verdict"], "unknown", "{results}");
    assert_eq!(results["interrupted"], true, "{results}");
    let history = std::fs::read_to_string(latest.join("history.jsonl")).expect("a history");
    assert!(history.lines().count() > 10, "{history}");
    assert!(stderr.contains(latest.to_str().unwrap_or("?")) || stderr.contains("results"));
}

#[test]
fn a_run_that_breaks_shows_what_the_nodes_said_last() {
    let store = Store::new("recorded-stderr-tail");
    let script = store.0.join("dies.py");
    std::fs::create_dir_all(&store.0).expect("a store");
    std::fs::write(
        &script,
        "import sys\nsys.stderr.write('starting\\ncannot open config.toml\\n')\nsys.exit(3)\n",
    )
    .expect("a script");
    let args = [
        &QUICK[..],
        &["--bin", "python3", script.to_str().expect("UTF-8")],
    ]
    .concat();
    let out = common::gcounter_test(&store, &args, LIMIT);
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("n0's stderr ends:"), "{stderr}");
    assert!(stderr.contains("  | cannot open config.toml"), "{stderr}");
    let results = store.results();
    let tail = results["stderr_tails"]["n0"].as_str().unwrap_or_default();
    assert!(tail.ends_with("cannot open config.toml"), "{results}");
    let page = std::fs::read_to_string(store.latest().join("index.html")).expect("index.html");
    assert!(page.contains("cannot open config.toml"));
}
