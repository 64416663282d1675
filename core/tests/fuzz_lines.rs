//! A property-based fuzz test of the line parser and the node (issue 11):
//! lines mutated from `tests/fuzz/corpus.jsonl` (or arbitrary bytes) are
//! fed to `protocol::parse_line` and, in sequences, to a fresh [`Node`].
//! Whatever the input:
//!
//! - nothing panics;
//! - a line that is a request naming its sender and `msg_id` (a JSON
//!   object with a string `src` and a `body` with an integer `msg_id` and
//!   no `in_reply_to`, not an `error`), from a client, gets exactly one
//!   reply, to that sender, answering that id; no line gets more than one;
//! - every message the node sends is one well-formed line: an object of
//!   exactly `src`, `dest` and `body`, a string `type`, integer ids, and
//!   `code` and `text` on errors.
//!
//! Seeded, so `cargo test` runs the same cases every time, in a second or
//! two; a failure prints the shrunk input. `GCOUNTER_FUZZ_CASES=100000`
//! (and `GCOUNTER_FUZZ_SEED=N` for other inputs) fuzzes for longer.

use gcounter_core::{protocol, Config, Input, Node, Output, Time};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;

const CORPUS: &str = include_str!("fuzz/corpus.jsonl");

/// The servers of the fuzzed node's cluster: a message from one of them
/// may be a peer's (`gossip` is not a request), so only clients are owed
/// replies.
const SERVERS: [&str; 2] = ["n1", "n2"];

/// Bits that often break parsers, spliced in by the mutations.
const TOKENS: [&str; 16] = [
    "1e400",
    "-1",
    "null",
    "18446744073709551616",
    "9223372036854775807",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "\"",
    "\\u0000",
    "\\ud800",
    "{}",
    "\"msg_id\":3,",
    "\"in_reply_to\":1,",
    "\"type\":\"add\",",
    "\"src\":\"c9\",",
    "\u{fffd}",
    "\r",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize, len: usize },
    Token { at: usize, token: usize },
    Repeat { at: usize, len: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        (at, 1..20usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at, 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Token { at, token }),
        (at, 1..40usize).prop_map(|(at, len)| Mutation::Repeat { at, len }),
        at.prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(line: &mut Vec<u8>, m: &Mutation) {
    let pos = |at: usize, line: &Vec<u8>| at % (line.len() + 1);
    match *m {
        Mutation::Flip { at, byte } if !line.is_empty() => {
            let i = at % line.len();
            line[i] = byte;
        }
        Mutation::Flip { .. } => {}
        Mutation::Insert { at, byte } => line.insert(pos(at, line), byte),
        Mutation::Delete { at, len } => {
            let i = pos(at, line);
            line.drain(i..(i + len).min(line.len()));
        }
        Mutation::Token { at, token } => {
            let i = pos(at, line);
            line.splice(i..i, TOKENS[token].bytes());
        }
        Mutation::Repeat { at, len } => {
            let i = pos(at, line);
            let chunk = line[i..(i + len).min(line.len())].to_vec();
            line.splice(i..i, chunk);
        }
        Mutation::Truncate { at } => line.truncate(pos(at, line)),
    }
}

/// One input line: a corpus line mutated a few times, or arbitrary bytes.
/// Newlines are taken out, as the transports split lines on them.
fn line() -> impl Strategy<Value = Vec<u8>> {
    let corpus: Vec<&'static str> = CORPUS.lines().collect();
    let mutated =
        (0..corpus.len(), proptest::collection::vec(mutation(), 0..5)).prop_map(move |(i, ms)| {
            let mut line = corpus[i].as_bytes().to_vec();
            for m in &ms {
                apply(&mut line, m);
            }
            line
        });
    prop_oneof![
        8 => mutated,
        1 => proptest::collection::vec(any::<u8>(), 0..120),
    ]
    .prop_map(|mut line| {
        line.retain(|&b| b != b'\n');
        line
    })
}

/// The sender and id of a request `line` is, read as plain JSON; `None`
/// for anything else (a reply, a peer's message, not JSON).
fn owed_reply(line: &[u8]) -> Option<(String, u64)> {
    let msg: Value = serde_json::from_slice(line).ok()?;
    let src = msg.get("src")?.as_str()?;
    let body = msg.get("body")?.as_object()?;
    let msg_id = body.get("msg_id")?.as_u64()?;
    let is_reply = body.get("in_reply_to").is_some_and(|v| !v.is_null());
    // An `error` is an answer whatever ids it carries: answering it with
    // another error could start two nodes erroring at each other forever.
    let is_error = body.get("type").and_then(Value::as_str) == Some("error");
    (!is_reply && !is_error && !SERVERS.contains(&src)).then(|| (src.to_string(), msg_id))
}

fn assert_well_formed(line: &str) -> Result<Value, TestCaseError> {
    prop_assert!(!line.contains('\n'), "a newline inside {line}");
    let msg: Value = serde_json::from_str(line)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {line}")))?;
    let obj = msg.as_object().expect("checked below");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    prop_assert_eq!(keys, ["body", "dest", "src"], "{}", line);
    prop_assert!(
        msg["src"].is_string() && msg["dest"].is_string(),
        "{}",
        line
    );
    let body = &msg["body"];
    prop_assert!(body["type"].is_string(), "{}", line);
    for id in ["msg_id", "in_reply_to"] {
        prop_assert!(body.get(id).is_none_or(Value::is_u64), "{}", line);
    }
    if body["type"] == "error" {
        prop_assert!(
            body["code"].is_u64() && body["text"].is_string(),
            "{}",
            line
        );
    }
    Ok(msg)
}

/// Feeds `lines` to a fresh node, `init` first when `init` is set.
fn check_node(init: bool, lines: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let mut node = Node::new(Config::default());
    let first = CORPUS.lines().next().expect("the corpus starts with init");
    let init = init.then(|| first.as_bytes().to_vec());
    let mut now = Time::ZERO;
    for line in init.iter().chain(lines) {
        // The parser alone, too: it must not panic either.
        let _ = protocol::parse_line(line);
        now += Time::from_millis(1);
        node.handle(Input::Line(line), now);
        let mut replies = Vec::new();
        loop {
            match node.poll_output() {
                Output::Send(msg) => {
                    let text = protocol::to_line(&msg);
                    let sent = assert_well_formed(&text)?;
                    if sent["body"].get("in_reply_to").is_some() {
                        replies.push(sent);
                    }
                }
                Output::Persist(_) => {}
                Output::Wait(_) => break,
            }
        }
        let shown = String::from_utf8_lossy(line);
        prop_assert!(replies.len() <= 1, "{} replies to {}", replies.len(), shown);
        if let Some((src, msg_id)) = owed_reply(line) {
            prop_assert_eq!(replies.len(), 1, "no reply to {}", shown);
            prop_assert_eq!(&replies[0]["dest"], &Value::from(src), "{}", shown);
            prop_assert_eq!(
                &replies[0]["body"]["in_reply_to"],
                &Value::from(msg_id),
                "{}",
                shown
            );
        }
    }
    Ok(())
}

fn env(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn mutated_lines_never_panic_and_every_request_gets_one_well_formed_reply() {
    let cases = env("GCOUNTER_FUZZ_CASES", 2000) as u32;
    let seed = env("GCOUNTER_FUZZ_SEED", 11);
    let mut bytes = [0; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let inputs = (any::<bool>(), proptest::collection::vec(line(), 1..24));
    let result = runner.run(&inputs, |(init, lines)| check_node(init, &lines));
    if let Err(e) = result {
        panic!("seed {seed}: {e}");
    }
}

#[test]
fn every_corpus_line_passes_unmutated() {
    let lines: Vec<Vec<u8>> = CORPUS.lines().map(|l| l.as_bytes().to_vec()).collect();
    check_node(false, &lines).expect("before init");
    check_node(true, &lines).expect("after init");
}
