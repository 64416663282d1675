//! `gcounter test` through the binary: real node processes under the
//! workload, partitions and checker, and the results a person opens.

use crate::common::{self, assert_reports_lost_updates, describe, requires, Store};
use std::process::{Command, Output};
use std::time::Duration;

/// Runs `gcounter test` with the short evaluation and `extra` flags;
/// kills it after a minute.
fn gcounter_test(store: &Store, extra: &[&str]) -> Output {
    common::gcounter_test(store, extra, Duration::from_secs(60))
}

fn assert_valid_with(strategy: &str) {
    let store = Store::new(strategy);
    let out = gcounter_test(&store, &["--strategy", strategy]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let results = store.results();
    assert_eq!(results["verdict"], "valid", "{results}");
    assert_eq!(results["workload"]["lost"], 0);
    for file in [
        "history.jsonl",
        "index.html",
        "latency-raw.svg",
        "latency-quantiles.svg",
        "rate.svg",
    ] {
        assert!(store.latest().join(file).is_file(), "{file} missing");
    }
    for node in ["n0", "n1", "n2"] {
        assert!(store
            .latest()
            .join(format!("node-logs/{node}.log"))
            .is_file());
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("verdict: valid"));
}

#[test]
fn per_node_is_valid_under_partitions() {
    assert_valid_with("per-node");
}

#[test]
fn cas_is_valid_under_partitions() {
    assert_valid_with("cas");
}

#[test]
fn gossip_is_valid_under_partitions() {
    assert_valid_with("gossip");
}

#[test]
fn naive_loses_updates_and_the_test_says_so() {
    let store = Store::new("naive");
    let out = gcounter_test(&store, &["--strategy", "naive"]);
    assert_reports_lost_updates(&store, &out);
}

fn python() -> &'static str {
    "python3"
}

#[test]
fn a_correct_node_in_another_language_passes() {
    let store = Store::new("python");
    let out = gcounter_test(
        &store,
        &["--bin", python(), &common::node_script("gossip_counter")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(store.results()["verdict"], "valid");
}

#[test]
fn a_node_that_prints_garbage_fails_the_test_naming_node_and_line() {
    let store = Store::new("garbage");
    let out = gcounter_test(
        &store,
        &["--bin", python(), &common::node_script("prints_garbage")],
    );
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("node n"), "{stderr}");
    assert!(
        stderr.contains("hello from a node that forgot stdout is for messages"),
        "{stderr}"
    );
    assert!(stderr.contains("not a JSON message"), "{stderr}");
    assert!(store.results()["error"]
        .as_str()
        .is_some_and(|e| e.contains("not a JSON message")));
}

#[test]
fn a_node_that_exits_early_fails_the_test_naming_it() {
    let store = Store::new("exits");
    let out = gcounter_test(&store, &["--bin", "true"]);
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exited before the test ended"), "{stderr}");
}

#[test]
fn a_node_that_stops_reading_its_input_fails_the_test_naming_it() {
    // Issue 11, item 3: the runner blocked on the node's full stdin pipe
    // and never ended. The outer limit turns a hang into a failure.
    let store = Store::new("stops-reading");
    let started = std::time::Instant::now();
    let out = common::gcounter_test(
        &store,
        &[
            "--node-count",
            "1",
            "--bin",
            python(),
            &common::node_script("stops_reading"),
        ],
        Duration::from_secs(90),
    );
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("node n0"), "{stderr}");
    assert!(stderr.contains("does not read its input"), "{stderr}");
    assert!(store.results()["error"]
        .as_str()
        .is_some_and(|e| e.contains("does not read its input")));
}

#[test]
fn log_stderr_survives_bytes_that_are_not_utf8_and_cuts_huge_lines() {
    // Issue 11, item 8: the first byte that is not UTF-8 closed the node's
    // stderr pipe, so the node died on its next log line and was blamed
    // with an empty log; a huge line was held whole in the runner.
    let store = Store::new("stderr-noise");
    let out = gcounter_test(
        &store,
        &[
            "--node-count",
            "1",
            "--log-stderr",
            "--bin",
            python(),
            &common::node_script("stderr_noise"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", short(&out));
    assert_eq!(store.results()["verdict"], "valid");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[n0] starting \u{FFFD}\u{FFFD} not UTF-8"),
        "{}",
        short(&out)
    );
    assert!(
        stderr.contains("[truncated 3934464 bytes]"),
        "{}",
        short(&out)
    );
    assert!(stderr.contains("[n0] served read"), "{}", short(&out));
    let longest = stderr.lines().map(str::len).max().unwrap_or_default();
    assert!(
        longest < 70_000,
        "a line of {longest} bytes on the terminal"
    );
    // The log keeps every byte, as it does without --log-stderr.
    let log = std::fs::read(store.latest().join("node-logs/n0.log")).expect("n0.log");
    assert!(log.starts_with(b"starting \xff\xfe not UTF-8\n"));
    assert!(log.len() > 4_000_000, "{} bytes", log.len());
    assert!(String::from_utf8_lossy(&log).contains("served read"));
}

#[test]
fn duplicate_and_unsolicited_replies_are_counted_and_shown_as_warnings() {
    // Issue 11, item 9: the runner dropped both silently, as Maelstrom's
    // client does, so a node that answers twice looked correct.
    let store = Store::new("duplicates");
    let out = gcounter_test(
        &store,
        &[
            "--node-count",
            "1",
            "--bin",
            python(),
            &common::node_script("duplicate_replies"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let results = store.results();
    assert_eq!(results["verdict"], "valid", "{results}");
    assert_eq!(results["replies"]["duplicate"], 5, "{}", results["replies"]);
    assert_eq!(
        results["replies"]["unsolicited"], 1,
        "{}",
        results["replies"]
    );
    let warnings = results["warnings"].to_string();
    assert!(warnings.contains("5 duplicate replies"), "{warnings}");
    assert!(warnings.contains("1 unsolicited reply"), "{warnings}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("warning: 5 duplicate replies"), "{stdout}");
    assert!(stdout.contains("warning: 1 unsolicited reply"), "{stdout}");
    assert!(stdout.contains("1000000"), "an example is shown: {stdout}");
    let page = std::fs::read_to_string(store.latest().join("index.html")).expect("index.html");
    assert!(
        page.contains(r#"<tr id="warnings" class="warning">"#),
        "no warnings row"
    );
    assert!(page.contains("5 duplicate replies"));
}

#[test]
fn a_correct_node_gets_no_reply_warnings() {
    let store = Store::new("no-warnings");
    let out = gcounter_test(&store, &["--node-count", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let results = store.results();
    assert_eq!(results["replies"]["duplicate"], 0, "{results}");
    assert_eq!(results["replies"]["unsolicited"], 0, "{results}");
    assert_eq!(results["warnings"], serde_json::json!([]));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning:"));
}

/// [`describe`] without the megabytes a noisy node prints.
fn short(out: &Output) -> String {
    let text = describe(out);
    let cut: String = text.chars().take(20_000).collect();
    cut
}

/// The page a person opens, rendered by a real browser.
#[test]
fn index_html_shows_the_verdict_in_a_browser() {
    let Some(chromium) = requires::chromium() else {
        return;
    };
    let store = Store::new("browser");
    let out = gcounter_test(&store, &["--strategy", "gossip"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let page = std::fs::canonicalize(store.latest().join("index.html")).expect("index.html");
    let profile = store.0.join("chromium-profile");
    let dom = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains(r#"<span id="verdict">valid</span>"#), "{dom}");
    assert!(dom.contains("<svg"), "the plots are in the page");
}
