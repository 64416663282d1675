//! Explanations of small hand-built runs: a history and the message trace
//! that goes with it, each KV reply marked with the state that served it,
//! as the test core records them.

use super::explain;
use crate::checker::{check, Verdict};
use crate::history::{History, Invocation, Outcome};
use crate::testcore::trace::{Fate, KvServed};
use crate::testcore::{Trace, TraceEntry};
use serde_json::{json, Value};
use std::time::Duration;

/// A run being written down: client operations and KV calls, at times in
/// milliseconds.
#[derive(Default)]
struct Run {
    history: History,
    trace: Trace,
    msg_id: u64,
}

/// How a KV store served a request: from `state` while `newest` was the
/// newest, or (`changed`) by making `state` out of `newest`.
fn served(state: u64, newest: u64) -> KvServed {
    KvServed {
        state,
        newest,
        behind: newest - state,
        changed: false,
    }
}

fn changed(state: u64) -> KvServed {
    KvServed {
        state,
        newest: state - 1,
        behind: 0,
        changed: true,
    }
}

fn ms(t: u64) -> Duration {
    Duration::from_millis(t)
}

impl Run {
    fn message(&mut self, src: &str, dest: &str, body: Value, at: u64, kv: Option<KvServed>) {
        let id = self.trace.entries.len() as u64;
        self.trace.entries.push(TraceEntry {
            id,
            src: src.into(),
            dest: dest.into(),
            sent: ms(at),
            delivered: Some(ms(at)),
            arrived: None,
            fate: Fate::Delivered,
            body,
            kv,
        });
    }

    /// `node` asks `seq-kv` `request` at `at` and gets `reply` a
    /// millisecond later.
    fn kv(&mut self, node: &str, mut request: Value, mut reply: Value, how: KvServed, at: u64) {
        self.msg_id += 1;
        request["msg_id"] = json!(self.msg_id);
        reply["in_reply_to"] = json!(self.msg_id);
        self.message(node, "seq-kv", request, at, None);
        self.message("seq-kv", node, reply, at + 1, Some(how));
    }

    fn add(&mut self, client: &str, node: &str, delta: i64, at: u64) {
        let i = self
            .history
            .invoke(Invocation::add(client, node, delta, ms(at)));
        self.history
            .complete(i, Outcome::Ok, None, None, ms(at + 5));
    }

    /// A final read on `node` from `from` to `to` ms that answered `value`.
    fn final_read(&mut self, client: &str, node: &str, value: i64, from: u64, to: u64) {
        let i = self
            .history
            .invoke(Invocation::read(client, node, true, ms(from)));
        self.history
            .complete(i, Outcome::Ok, Some(value), None, ms(to));
    }

    fn lines(&self) -> Vec<String> {
        let c = check(&self.history);
        assert_eq!(c.verdict, Verdict::Invalid);
        explain(&self.history, &c, &self.trace, &[])
            .expect("an invalid run is explained")
            .lines()
    }
}

fn read(key: &str) -> Value {
    json!({"type": "read", "key": key})
}

fn read_ok(value: i64) -> Value {
    json!({"type": "read_ok", "value": value})
}

/// n0 and n1 share `counter` by cas: n0 adds 5, n1 adds 3 (states 1 and
/// 2). Then n0's final read, after a "sync" of `sync`'s choosing, is
/// served from state 1 and misses n1's 3.
fn shared_counter(sync: impl FnOnce(&mut Run)) -> Run {
    let mut run = Run::default();
    run.add("c1", "n0", 5, 10);
    run.kv(
        "n0",
        json!({"type": "cas", "key": "counter", "from": 0, "to": 5, "create_if_not_exists": true}),
        json!({"type": "cas_ok"}),
        changed(1),
        11,
    );
    run.add("c2", "n1", 3, 20);
    run.kv("n1", read("counter"), read_ok(5), served(1, 1), 21);
    run.kv(
        "n1",
        json!({"type": "cas", "key": "counter", "from": 5, "to": 8}),
        json!({"type": "cas_ok"}),
        changed(2),
        23,
    );
    sync(&mut run);
    run.kv("n0", read("counter"), read_ok(5), served(1, 2), 104);
    run.final_read("c1", "n0", 5, 100, 110);
    run.kv("n1", read("counter"), read_ok(8), served(2, 2), 101);
    run.final_read("c2", "n1", 8, 100, 110);
    run
}

#[test]
fn a_cas_from_v_to_v_before_a_stale_final_read_is_named_a_no_op_sync() {
    // As a real node did it: read (stale), cas from what it read to the
    // same (answered from the same stale state), read again (still stale).
    let run = shared_counter(|run| {
        run.kv("n0", read("counter"), read_ok(5), served(1, 2), 101);
        run.kv(
            "n0",
            json!({"type": "cas", "key": "counter", "from": 5, "to": 5}),
            json!({"type": "cas_ok"}),
            served(1, 2),
            102,
        );
    });
    let lines = run.lines();
    let text = lines.join("\n");
    // Short by n1's 3 once: the answer is the last read's, not the sum
    // over both stale reads.
    assert!(
        text.contains("final read of c1 on n0 was 3 increment(s) short"),
        "{text}"
    );
    assert!(
        text.contains("n0 synced with a cas of counter from 5 to 5, which changes nothing: seq-kv answered it from state 1, 1 state(s) behind the newest (state 2)"),
        "{text}"
    );
    assert!(text.contains("fix: a sync must change the store"), "{text}");
    // The generic advice would tell the node to do what it believes it
    // does already.
    assert!(
        !text.contains("write a fresh value to a key of your own before reading (it brings"),
        "{text}"
    );
}

#[test]
fn a_write_of_the_value_already_there_before_a_stale_final_read_is_named_a_no_op_sync() {
    let run = shared_counter(|run| {
        run.kv(
            "n0",
            json!({"type": "write", "key": "counter", "value": 5}),
            json!({"type": "write_ok"}),
            served(1, 2),
            102,
        );
    });
    let text = run.lines().join("\n");
    assert!(
        text.contains("n0 synced with a write of 5 to counter, the value state 1 already held, which changes nothing: seq-kv answered it from state 1, 1 state(s) behind the newest (state 2)"),
        "{text}"
    );
    assert!(text.contains("fix: a sync must change the store"), "{text}");
    // A write that meant to add nothing lost nothing: no blind-write fix.
    assert!(!text.contains("a blind write erases"), "{text}");
}

#[test]
fn a_stale_final_read_without_a_sync_gets_the_generic_fix() {
    let text = shared_counter(|_| {}).lines().join("\n");
    assert!(
        text.contains("final read of c1 on n0 was 3 increment(s) short"),
        "{text}"
    );
    assert!(!text.contains("synced with"), "{text}");
    assert!(
        text.contains("write a fresh value to a key of your own"),
        "{text}"
    );
    // No cas was in flight when an add was acknowledged: no buffer fix.
    assert!(!text.contains("buffer"), "{text}");
}

#[test]
fn a_sync_that_changed_the_store_is_not_blamed() {
    // n0's sync write landed (state 3), yet its read came from state 1: a
    // trace like that is not a no-op sync, whatever else it is.
    let run = shared_counter(|run| {
        run.kv(
            "n0",
            json!({"type": "write", "key": "sync-n0", "value": 77}),
            json!({"type": "write_ok"}),
            changed(3),
            102,
        );
    });
    let text = run.lines().join("\n");
    assert!(!text.contains("synced with"), "{text}");
}

#[test]
fn a_count_written_into_another_nodes_key_is_named_an_over_count() {
    let mut run = Run::default();
    let cas = |key: &str, from: i64, to: i64| json!({"type": "cas", "key": key, "from": from, "to": to, "create_if_not_exists": true});
    run.add("c1", "n0", 5, 10);
    run.kv(
        "n0",
        cas("counter-n0", 0, 5),
        json!({"type": "cas_ok"}),
        changed(1),
        11,
    );
    run.add("c2", "n1", 2, 20);
    run.kv(
        "n1",
        cas("counter-n1", 0, 2),
        json!({"type": "cas_ok"}),
        changed(2),
        21,
    );
    // n0 raises n1's key to its own count.
    run.kv("n0", read("counter-n1"), read_ok(2), served(2, 2), 30);
    run.kv(
        "n0",
        cas("counter-n1", 2, 5),
        json!({"type": "cas_ok"}),
        changed(3),
        32,
    );
    for (client, node, at) in [("c1", "n0", 100), ("c2", "n1", 120)] {
        run.kv(node, read("counter-n0"), read_ok(5), served(3, 3), at + 1);
        run.kv(node, read("counter-n1"), read_ok(5), served(3, 3), at + 3);
        run.final_read(client, node, 10, at, at + 10);
    }
    let text = run.lines().join("\n");
    assert!(!text.contains("why: 0 acknowledged"), "{text}");
    for expected in [
        "why: over-count: 2 final read(s) above every acceptable value (at most 7), the highest c1's 10 on n0, 3 increment(s) over; 3 explained, 0 unexplained",
        "n0's final read of 10 read counter-n0 = 5 (written by n0), counter-n1 = 5 (written by n0)",
        "n0's changes added 8 increment(s) to the keys read (counter-n0 +5, counter-n1 +3), more than the 5 it acknowledged: 3 too many",
        "fix: count each add in one place: n0 put its count into 2 keys",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    // n1 acknowledged 2 and its change added 2: nothing never written.
    assert!(!text.contains("never reached the store"), "{text}");
}
