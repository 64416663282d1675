//! Bad input, one test per row of issue 2's table. Each run sends good
//! requests around the bad line and checks that the node exits cleanly,
//! writes only well-formed messages, answers the bad request with the
//! right code when it can be answered, and loses no acknowledged add.

use crate::common::{assert_clean_exit, messages, run_node, Finished};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const MALFORMED: u64 = 12;
const NOT_SUPPORTED: u64 = 10;
const TEMPORARILY_UNAVAILABLE: u64 = 11;
const PRECONDITION_FAILED: u64 = 22;

/// The id of the bad request in every test.
const BAD: u64 = 7;

fn msg(body: &str) -> Vec<u8> {
    format!(r#"{{"src":"c1","dest":"n1","body":{body}}}"#).into_bytes()
}

fn init(id: u64) -> Vec<u8> {
    msg(&format!(
        r#"{{"type":"init","msg_id":{id},"node_id":"n1","node_ids":["n1"]}}"#
    ))
}

/// A conversation with one node: the lines sent and the adds among them.
#[derive(Default)]
struct Talk {
    lines: Vec<Vec<u8>>,
    /// Request id -> delta, for every `add` sent (bad ones included, so an
    /// add acknowledged by mistake shows up in the expected sum).
    adds: BTreeMap<u64, u64>,
    /// Requests whose reply we check; any other reply is a bug.
    ids: BTreeSet<u64>,
}

impl Talk {
    fn line(mut self, line: impl Into<Vec<u8>>) -> Self {
        self.lines.push(line.into());
        self
    }

    fn init(mut self, id: u64) -> Self {
        self.ids.insert(id);
        self.line(init(id))
    }

    fn add(mut self, id: u64, delta: u64) -> Self {
        self.ids.insert(id);
        self.adds.insert(id, delta);
        self.line(msg(&format!(
            r#"{{"type":"add","msg_id":{id},"delta":{delta}}}"#
        )))
    }

    fn read(mut self, id: u64) -> Self {
        self.ids.insert(id);
        self.line(msg(&format!(r#"{{"type":"read","msg_id":{id}}}"#)))
    }

    /// A bad line carrying request id [`BAD`] (if it carries any).
    fn bad(mut self, line: impl Into<Vec<u8>>) -> Self {
        self.ids.insert(BAD);
        self.line(line)
    }

    /// A bad `add` of `delta`, counted if the node wrongly acknowledges it.
    fn bad_add(mut self, id: u64, delta: u64, line: impl Into<Vec<u8>>) -> Self {
        self.ids.insert(id);
        self.adds.insert(id, delta);
        self.line(line)
    }

    fn run(self) -> Transcript {
        let mut input = Vec::new();
        for line in &self.lines {
            input.extend_from_slice(line);
            input.push(b'\n');
        }
        let finished = run_node(&[], &input);
        assert_clean_exit(&finished);
        let mut replies = BTreeMap::new();
        for m in messages(&finished.stdout) {
            assert_eq!(m["src"], "n1", "{m}");
            assert_eq!(m["dest"], "c1", "{m}");
            let to = m["body"]["in_reply_to"].as_u64();
            let to = to.unwrap_or_else(|| panic!("not a reply: {m}"));
            assert!(self.ids.contains(&to), "reply to a request never sent: {m}");
            let body = m["body"].clone();
            assert!(
                replies.insert(to, body).is_none(),
                "second reply to {to}: {m}"
            );
        }
        Transcript {
            finished,
            replies,
            adds: self.adds,
        }
    }
}

/// What came back.
struct Transcript {
    finished: Finished,
    replies: BTreeMap<u64, Value>,
    adds: BTreeMap<u64, u64>,
}

impl Transcript {
    fn reply(&self, id: u64) -> &Value {
        self.replies
            .get(&id)
            .unwrap_or_else(|| panic!("no reply to {id}: {:?}", self.replies))
    }

    fn assert_ok(&self, id: u64, ty: &str) -> &Self {
        assert_eq!(self.reply(id)["type"], ty, "{}", self.reply(id));
        self
    }

    fn assert_error(&self, id: u64, code: u64) -> &Self {
        let reply = self.reply(id);
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], code, "{reply}");
        self
    }

    fn assert_no_reply(&self, id: u64) -> &Self {
        assert!(
            !self.replies.contains_key(&id),
            "unexpected reply: {}",
            self.reply(id)
        );
        self
    }

    /// The read `id` saw exactly the adds that were acknowledged.
    fn assert_read_sums_acked_adds(&self, id: u64) -> &Self {
        let acked: u64 = self
            .adds
            .iter()
            .filter(|(add, _)| self.replies.get(add).is_some_and(|r| r["type"] == "add_ok"))
            .map(|(_, delta)| delta)
            .sum();
        self.assert_ok(id, "read_ok");
        assert_eq!(
            self.reply(id)["value"],
            acked,
            "read {id} against acked adds {:?}",
            self.adds
        );
        self
    }
}

/// The common shape: init, an acknowledged add, the bad line, then a good
/// add and a read that must both still work.
fn around(bad: impl Into<Vec<u8>>) -> Transcript {
    let t = Talk::default()
        .init(1)
        .add(2, 5)
        .bad(bad)
        .add(3, 3)
        .read(4)
        .run();
    t.assert_ok(1, "init_ok")
        .assert_ok(2, "add_ok")
        .assert_ok(3, "add_ok");
    t.assert_read_sums_acked_adds(4);
    t
}

#[test]
fn not_json() {
    around("this is not json {").assert_no_reply(BAD);
}

#[test]
fn json_but_not_an_object() {
    // A good message in an array must still be refused.
    let mut line = b"[".to_vec();
    line.extend(msg(r#"{"type":"add","msg_id":7,"delta":1}"#));
    line.push(b']');
    around(line).assert_no_reply(BAD);
}

#[test]
fn missing_src() {
    around(r#"{"dest":"n1","body":{"type":"add","msg_id":7,"delta":1}}"#).assert_no_reply(BAD);
}

#[test]
fn missing_dest() {
    around(r#"{"src":"c1","body":{"type":"add","msg_id":7,"delta":1}}"#)
        .assert_error(BAD, MALFORMED);
}

#[test]
fn missing_body() {
    around(r#"{"src":"c1","dest":"n1"}"#).assert_no_reply(BAD);
}

#[test]
fn missing_type() {
    around(msg(r#"{"msg_id":7,"delta":1}"#)).assert_error(BAD, MALFORMED);
}

#[test]
fn add_without_delta() {
    around(msg(r#"{"type":"add","msg_id":7}"#)).assert_error(BAD, MALFORMED);
}

#[test]
fn add_with_negative_delta_counts_down() {
    // Issue 22: Maelstrom's pn-counter sends negative deltas (its
    // g-counter never does), so every node takes them.
    let t = Talk::default()
        .init(1)
        .add(2, 5)
        .bad(msg(r#"{"type":"add","msg_id":7,"delta":-2}"#))
        .read(4)
        .run();
    t.assert_ok(BAD, "add_ok").assert_ok(4, "read_ok");
    assert_eq!(t.reply(4)["value"], 3);
}

#[test]
fn add_with_delta_below_the_lowest_total() {
    around(msg(
        r#"{"type":"add","msg_id":7,"delta":-9223372036854775808}"#,
    ))
    .assert_error(BAD, MALFORMED);
}

#[test]
fn add_with_fractional_delta() {
    around(msg(r#"{"type":"add","msg_id":7,"delta":1.5}"#)).assert_error(BAD, MALFORMED);
}

#[test]
fn add_with_string_delta() {
    around(msg(r#"{"type":"add","msg_id":7,"delta":"1"}"#)).assert_error(BAD, MALFORMED);
}

#[test]
fn add_overflowing_the_total() {
    let max = i64::MAX as u64;
    // 5 already counted, so this one goes one past the largest total.
    let over = max - 4;
    let line = msg(&format!(r#"{{"type":"add","msg_id":7,"delta":{over}}}"#));
    let t = Talk::default()
        .init(1)
        .add(2, 5)
        .bad_add(BAD, over, line)
        .add(3, 3)
        .read(4)
        .run();
    t.assert_error(BAD, MALFORMED)
        .assert_ok(3, "add_ok")
        .assert_read_sums_acked_adds(4);

    // Reaching the largest total exactly is fine; the same again is not.
    let line = msg(&format!(r#"{{"type":"add","msg_id":7,"delta":{max}}}"#));
    let t = Talk::default()
        .init(1)
        .add(2, max)
        .bad_add(BAD, max, line)
        .add(3, 0)
        .read(4)
        .run();
    t.assert_ok(2, "add_ok")
        .assert_error(BAD, MALFORMED)
        .assert_ok(3, "add_ok");
    t.assert_read_sums_acked_adds(4);
}

#[test]
fn add_with_delta_beyond_i64_and_u64() {
    let beyond_i64 = i64::MAX as u64 + 1;
    let line = msg(&format!(
        r#"{{"type":"add","msg_id":7,"delta":{beyond_i64}}}"#
    ));
    let beyond_u64 = msg(r#"{"type":"add","msg_id":8,"delta":18446744073709551616}"#);
    let t = Talk::default()
        .init(1)
        .add(2, 5)
        .bad_add(BAD, beyond_i64, line);
    let t = t.bad_add(8, 0, beyond_u64).add(3, 3).read(4).run();
    t.assert_error(BAD, MALFORMED).assert_error(8, MALFORMED);
    t.assert_ok(3, "add_ok").assert_read_sums_acked_adds(4);
}

#[test]
fn add_with_delta_beyond_every_float() {
    // Issue 11, item 4: no parser could read the number, so no reply.
    around(msg(r#"{"type":"add","msg_id":7,"delta":1e400}"#)).assert_error(BAD, MALFORMED);
}

#[test]
fn key_nested_past_the_recursion_limit() {
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    around(msg(&format!(
        r#"{{"type":"read","msg_id":7,"key":{deep}}}"#
    )))
    .assert_error(BAD, MALFORMED);
}

#[test]
fn null_in_reply_to_beside_a_bad_field() {
    // `null` is absence: this is a request, not a reply.
    around(msg(
        r#"{"type":"add","msg_id":7,"in_reply_to":null,"delta":1.5}"#,
    ))
    .assert_error(BAD, MALFORMED);
}

#[test]
fn unknown_type() {
    around(msg(r#"{"type":"echo","msg_id":7,"echo":"hello"}"#)).assert_error(BAD, NOT_SUPPORTED);
}

#[test]
fn message_before_init() {
    let add = msg(r#"{"type":"add","msg_id":7,"delta":1}"#);
    let t = Talk::default()
        .bad_add(BAD, 1, add)
        .read(8)
        .init(1)
        .add(2, 5)
        .add(3, 3)
        .read(4)
        .run();
    t.assert_error(BAD, TEMPORARILY_UNAVAILABLE)
        .assert_error(8, TEMPORARILY_UNAVAILABLE);
    t.assert_ok(1, "init_ok")
        .assert_ok(2, "add_ok")
        .assert_ok(3, "add_ok");
    t.assert_read_sums_acked_adds(4);
}

#[test]
fn second_init() {
    // A second init naming another node must not rename this one: every
    // reply keeps `src` n1 (checked for every message by `Talk::run`).
    let again = msg(r#"{"type":"init","msg_id":7,"node_id":"n2","node_ids":["n2"]}"#);
    around(again).assert_error(BAD, PRECONDITION_FAILED);
}

#[test]
fn line_of_several_megabytes() {
    let mut line =
        br#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":7,"delta":1,"pad":""#.to_vec();
    line.resize(3 * 1024 * 1024 - 3, b'x');
    line.extend_from_slice(br#""}}"#);
    let len = line.len();
    let t = around(line);
    t.assert_no_reply(BAD);
    assert!(
        t.finished.stderr.contains(&len.to_string()),
        "no warning naming the {len}-byte line:\n{}",
        t.finished.stderr
    );
}

#[test]
fn invalid_utf8() {
    let answerable =
        b"{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"a\xffd\",\"msg_id\":7}}";
    let t = Talk::default().init(1).add(2, 5).bad(&answerable[..]);
    let t = t
        .line(&b"\xfe\xff\x00 garbage \xc3"[..])
        .add(3, 3)
        .read(4)
        .run();
    t.assert_error(BAD, MALFORMED)
        .assert_ok(3, "add_ok")
        .assert_read_sums_acked_adds(4);
}

#[test]
fn invalid_utf8_in_a_field_the_node_ignores() {
    // serde_json does not check fields it skips, so a node that trusted it
    // would count this add.
    let line = b"{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"add\",\"msg_id\":7,\"delta\":1,\"note\":\"\xff\"}}";
    let t = Talk::default()
        .init(1)
        .add(2, 5)
        .bad(&line[..])
        .read(4)
        .run();
    t.assert_error(BAD, MALFORMED)
        .assert_read_sums_acked_adds(4);
}

#[test]
fn unknown_strategy_exits_2_naming_the_valid_ones() {
    let run = run_node(&[("GCOUNTER_STRATEGY", "paxos")], &init(1));
    assert_config_refused(
        &run,
        &[
            "GCOUNTER_STRATEGY",
            "paxos",
            "gossip",
            "per-node",
            "cas",
            "naive",
        ],
    );
}

#[test]
fn unknown_kv_exits_2_naming_the_valid_ones() {
    let run = run_node(&[("GCOUNTER_KV", "redis")], &init(1));
    assert_config_refused(&run, &["GCOUNTER_KV", "redis", "seq-kv", "lin-kv"]);
}

fn assert_config_refused(run: &Finished, words: &[&str]) {
    assert_eq!(run.status.code(), Some(2), "stderr: {}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&run.stdout)
    );
    assert_eq!(
        run.stderr.lines().count(),
        1,
        "not one line: {:?}",
        run.stderr
    );
    for word in words {
        assert!(
            run.stderr.contains(word),
            "{word:?} missing from {:?}",
            run.stderr
        );
    }
}

#[test]
fn a_flood_of_bad_lines_gets_every_reply_and_a_bounded_log() {
    // Issue 11, item 7: each bad line cost a warning of ~130 bytes, so
    // 400 KB of `x\n` became 26 MB of log. Every identifiable request must
    // still be answered, once.
    let mut input = init(0);
    input.push(b'\n');
    let mut owed = BTreeMap::new();
    for i in 1..=100_000u64 {
        let line: Vec<u8> = match i % 5 {
            0 => msg(&format!(r#"{{"type":"add","msg_id":{i},"delta":"x"}}"#)),
            1 => msg(&format!(r#"{{"type":"frobnicate","msg_id":{i}}}"#)),
            2 => b"x".to_vec(),
            3 => [&[0xff, 0x1b, b'['][..], &[b'y'; 300]].concat(),
            _ => format!(r#"{{"src":"c1","body":{{"type":"{}"}}}}"#, "t".repeat(500)).into_bytes(),
        };
        match i % 5 {
            0 => owed.insert(i, MALFORMED),
            1 => owed.insert(i, NOT_SUPPORTED),
            _ => None,
        };
        input.extend_from_slice(&line);
        input.push(b'\n');
    }
    let run = run_node(&[], &input);
    assert_clean_exit(&run);
    let mut answered = BTreeMap::new();
    for m in messages(&run.stdout) {
        let body = &m["body"];
        let id = body["in_reply_to"].as_u64().expect("only replies");
        if id == 0 {
            assert_eq!(body["type"], "init_ok");
            continue;
        }
        assert_eq!(body["type"], "error", "{m}");
        let before = answered.insert(id, body["code"].as_u64().expect("a code"));
        assert!(before.is_none(), "{id} answered twice");
    }
    assert_eq!(answered, owed);
    let log = run.stderr.len();
    assert!(log < 100_000, "{log} bytes of log for 100,000 bad lines");
    assert!(
        run.stderr
            .contains("more warnings about bad input not logged"),
        "{}",
        run.stderr
    );
    let longest = run.stderr.lines().map(str::len).max().unwrap_or_default();
    assert!(longest < 600, "a log line of {longest} bytes");
}
