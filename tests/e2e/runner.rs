//! `gcounter test` through the binary: real node processes under the
//! workload, partitions and checker, and the results a person opens.

use crate::common::gcounter;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A results store of its own for each test, removed afterwards.
struct Store(PathBuf);

impl Store {
    fn new(name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("gcounter-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Store(dir)
    }

    fn latest(&self) -> PathBuf {
        self.0.join("latest")
    }

    fn results(&self) -> Value {
        let text =
            std::fs::read_to_string(self.latest().join("results.json")).expect("results.json");
        serde_json::from_str(&text).expect("results.json is JSON")
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `gcounter test` with a short evaluation (5 s with partitions every
/// ~2 s, then 3 s of recovery) and `extra` flags; kills it after a minute.
fn gcounter_test(store: &Store, extra: &[&str]) -> Output {
    let mut cmd = Command::new(gcounter());
    cmd.args([
        "test",
        "--node-count",
        "3",
        "--rate",
        "100",
        "--time-limit",
        "5",
    ])
    .args([
        "--recovery",
        "3",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "2",
    ])
    .arg("--store")
    .arg(&store.0)
    .args(extra)
    .env_remove("GCOUNTER_STRATEGY")
    .env_remove("RUST_LOG")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().expect("gcounter test starts");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let watchdog = std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    });
    let out = child.wait_with_output().expect("gcounter test finishes");
    let _ = watchdog.join();
    out
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
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
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let results = store.results();
    assert_eq!(results["verdict"], "invalid");
    let lost = results["workload"]["lost"]
        .as_u64()
        .expect("lost is a number");
    assert!(lost > 0, "{results}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("lost: {lost}")));
}

fn python() -> &'static str {
    "python3"
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/nodes")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_correct_node_in_another_language_passes() {
    let store = Store::new("python");
    let out = gcounter_test(&store, &["--bin", python(), &script("gossip_counter.py")]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(store.results()["verdict"], "valid");
}

#[test]
fn a_node_that_prints_garbage_fails_the_test_naming_node_and_line() {
    let store = Store::new("garbage");
    let out = gcounter_test(&store, &["--bin", python(), &script("prints_garbage.py")]);
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

/// The page a person opens, rendered by a real browser.
#[test]
fn index_html_shows_the_verdict_in_a_browser() {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("SKIPPED: no chromium at /usr/bin/chromium; .ci/run installs it (apt-get install chromium)");
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
