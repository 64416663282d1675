//! The explanation is right for nodes unlike ours: a node whose final
//! reads are above every acceptable value, one that keeps an object under
//! its key, one that crashes as a Go program does, and one whose final
//! reads go unanswered. Each is a wrong node from `tests/nodes/`.

use crate::common::{self, describe, Store};
use serde_json::Value;
use std::time::Duration;

/// `gcounter test` of `tests/nodes/<node>.py` with the short run and
/// `extra` flags.
fn test_node(store: &Store, node: &str, extra: &[&str]) -> std::process::Output {
    let script = common::node_script(node);
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--seed", "1", "--bin", "python3", &script]);
    common::gcounter_test(store, &args, Duration::from_secs(120))
}

#[test]
fn an_over_count_is_named_and_explained_from_the_trace() {
    let store = Store::new("explain-over");
    let out = test_node(
        &store,
        "over_count_max_into_neighbour",
        &["--latency", "20"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results = store.results();
    let over = &results["explanation"]["over_count"];
    let above = over["above"].as_u64().expect("an over-count");
    assert!(above > 0, "{over}");
    // The final reads are current (the node syncs): the keys' lineage
    // accounts for all of it.
    assert_eq!(over["explained"].as_u64(), Some(above), "{over}");
    assert!(stdout.contains(&format!("  over: {above} (")), "{stdout}");
    assert!(
        stdout.contains("why: over-count: ")
            && stdout.contains(&format!(
                " increment(s) over; {above} explained, 0 unexplained"
            )),
        "{stdout}"
    );
    assert!(!stdout.contains("why: 0 acknowledged"), "{stdout}");
    // Which keys the read summed, who wrote them, and who added too much.
    assert!(stdout.contains("counter-n1 = "), "{stdout}");
    assert!(
        stdout.contains("increment(s) to the keys read (counter-") && stdout.contains("too many"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: count each add in one place"),
        "{stdout}"
    );
    // The node has no buffer: no fix for one.
    assert!(!stdout.contains("buffer"), "{stdout}");
}

#[test]
fn object_values_are_followed_through_their_counter_field() {
    let store = Store::new("explain-object");
    let out = test_node(&store, "object_value_blind_write", &["--latency", "20"]);
    common::assert_reports_lost_updates(&store, &out);
    let results = store.results();
    let e = &results["explanation"];
    let lost = results["workload"]["lost"].as_u64().unwrap();
    assert_eq!(results["workload"]["indeterminate_adds"], 0, "{results}");
    assert_eq!(
        (e["explained"].as_u64(), e["unexplained"].as_u64()),
        (Some(lost), Some(0)),
        "{e}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "why: {lost} acknowledged increment(s) lost; {lost} explained, 0 unexplained"
        )),
        "{stdout}"
    );
    // The overwrites' erased increments are the `counter` fields'.
    let erased: i64 = e["overwrites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lost"].as_i64().unwrap())
        .sum();
    assert!(erased > 0, "{e}");
    assert!(stdout.contains("fix: a blind write erases"), "{stdout}");
    assert!(!stdout.contains("buffer"), "{stdout}");
}

#[test]
fn a_crashed_node_shows_why_above_its_goroutine_dump() {
    let store = Store::new("explain-panic");
    let out = test_node(&store, "panics_like_go", &[]);
    assert_eq!(out.status.code(), Some(255), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.ends_with("'s stderr ends:"))
        .skip(1)
        .take_while(|l| l.starts_with("  | "))
        .collect();
    assert_eq!(
        shown.first(),
        Some(&"  | panic: runtime error: index out of range [3] with length 3"),
        "{stderr}"
    );
    assert_eq!(shown.get(1), Some(&"  | ..."), "{stderr}");
    assert_eq!(shown.last(), Some(&"  | exit status 2"), "{stderr}");
    // The page and results.json have the reason too.
    let results = store.results();
    let tails: Vec<&Value> = results["stderr_tails"]
        .as_object()
        .unwrap()
        .values()
        .collect();
    assert!(
        tails.iter().any(|t| t
            .as_str()
            .is_some_and(|t| t.starts_with("panic: runtime error"))),
        "{results}"
    );
}

#[test]
fn an_unknown_run_says_what_maelstrom_would_call_it() {
    let store = Store::new("explain-unknown");
    let out = test_node(
        &store,
        "silent_when_idle",
        &[
            "--node-count",
            "1",
            "--runs",
            "1",
            "--time-limit",
            "2",
            "--recovery",
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = stdout
        .lines()
        .find(|l| l.contains(" unknown "))
        .unwrap_or_else(|| panic!("no unknown row in:\n{stdout}"));
    assert!(
        row.contains("no successful final read from c1")
            && row.contains("Maelstrom's checker looks only at the final reads that answered")
            && row.contains("Maelstrom would call this run valid"),
        "{row}"
    );
}
