//! The gallery of wrong nodes (`tests/nodes/`, one per bug class that
//! public solutions of Fly.io's challenge 4 have): `gcounter test --runs 4`
//! with default settings calls each one invalid, and our correct Python
//! node valid. Each test takes four default runs (about 30 s each), so they
//! are slow; they run in parallel with the rest of this binary.

use crate::common::{describe, gcounter_test_exact, node_script, Store};
use std::time::Duration;

/// Four default runs with margin for a loaded machine.
const LIMIT: Duration = Duration::from_secs(900);

/// `gcounter test --runs 4 [extra...] --bin python3 tests/nodes/<node>.py`
/// exits with `code`.
fn runs_exit(node: &str, extra: &[&str], code: i32) {
    let store = Store::new(&format!("gallery-{node}"));
    let script = node_script(node);
    let mut args = vec!["--runs", "4"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--bin", "python3", &script]);
    let out = gcounter_test_exact(&store, &args, LIMIT);
    assert_eq!(out.status.code(), Some(code), "{node}: {}", describe(&out));
}

fn caught(node: &str) {
    runs_exit(node, &[], 1);
}

/// Single short runs of `tests/nodes/<node>.py` under `adversary`, one per
/// seed: each must be invalid. The seeds are ones that a run without the
/// adversary's holds (`harness/src/testcore/holds.rs`) called valid.
fn caught_in_every_run(node: &str, adversary: &str, latency: &[&str], seeds: &[u64]) {
    let script = node_script(node);
    for seed in seeds {
        let store = Store::new(&format!("gallery-one-{node}-{seed}"));
        let seed = seed.to_string();
        let mut args = vec!["--time-limit", "2", "--recovery", "1", "--seed", &seed];
        args.extend_from_slice(latency);
        args.extend_from_slice(&["--adversary", adversary, "--bin", "python3", &script]);
        let out = gcounter_test_exact(&store, &args, Duration::from_secs(120));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{node}, seed {seed}: {}",
            describe(&out)
        );
    }
}

/// `slow-kv` holds the flush's cas until the node has acknowledged an add
/// (which its client is given next): the add is wiped in every run. Without
/// the hold, 4 of 8 such runs (seeds 1, 2, 7, 8) were valid.
#[test]
fn one_run_under_slow_kv_catches_a_cas_buffer_zeroed_on_cas_ok() {
    caught_in_every_run("cas_zero_on_ok", "slow-kv", &[], &[1, 2, 7, 8]);
}

/// `adds-first` holds the other nodes' first requests until the opening
/// node's add is acknowledged, so their stale "missing" erases it. Without
/// the hold, at `--runs`' timing for it (5 ms exponential), seed 2 was
/// valid, and on a loaded CI machine all four runs of a series were.
#[test]
fn one_run_under_stale_adds_first_catches_a_blind_write_0() {
    let latency = ["--latency", "5", "--latency-dist", "exponential"];
    caught_in_every_run("blind_write_zero", "stale,adds-first", &latency, &[1, 2, 3]);
}

#[test]
fn gallery_per_node_keys_summed_without_a_sync_write() {
    caught("per_node_no_sync");
}

#[test]
fn gallery_cas_counter_with_a_plain_seq_kv_read() {
    caught("cas_unsynced_read");
}

#[test]
fn gallery_cas_counter_synced_by_a_cas_from_v_to_v() {
    caught("cas_noop_sync");
}

#[test]
fn gallery_buffered_cas_zeroed_on_cas_ok() {
    caught("cas_zero_on_ok");
}

/// The bug fires only when a node's FIRST request to `seq-kv` is an
/// add's read served from before the counter existed, after another
/// node's add was acknowledged: `stale` alone catches it only when two
/// nodes' first operations are adds (7 of 20 single runs), so `--runs`
/// pairs it with `adds-first` (each client's first operation an add, the
/// other nodes' first requests held until one is acknowledged).
#[test]
fn gallery_blind_write_0_when_the_key_is_missing() {
    caught("blind_write_zero");
}

#[test]
fn gallery_gossip_keeping_the_last_count_received() {
    caught("gossip_last_count");
}

#[test]
fn gallery_add_ok_sent_before_the_add_is_stored() {
    caught("ack_before_store");
}

/// Its class needs kills, and a loss needs an add taken just before one:
/// `--runs`' fourth run times a kill so (`kill-after-ack`, 19 of 20 single
/// runs), and the kills come every ~2 s, not ~10 (5 of 6 single runs
/// invalid without an adversary), so the other three runs catch it too.
#[test]
fn gallery_count_only_in_memory_under_kill() {
    runs_exit(
        "memory_only_gossip",
        &["--nemesis", "kill", "--nemesis-interval", "2"],
        1,
    );
}

#[test]
fn gallery_no_false_alarm_in_a_correct_python_node() {
    runs_exit("gossip_counter", &[], 0);
}
