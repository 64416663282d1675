use super::*;
use gcounter_core::Config;
use smol::io::AsyncReadExt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

const INIT1: &str = r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#;
const INIT2: &str = r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1","n2"]}}"#;
const INIT_OK: &str =
    r#"{"src":"n1","dest":"c0","body":{"type":"init_ok","in_reply_to":1,"msg_id":0}}"#;

fn run_bytes(config: Config, input: impl AsyncRead + Unpin) -> (io::Result<()>, Vec<String>) {
    let mut out = Vec::new();
    let result = smol::block_on(run(Node::new(config), input, &mut out));
    let text = String::from_utf8(out).expect("output is UTF-8");
    (result, text.lines().map(str::to_owned).collect())
}

/// Input that ends after a while, as a client that keeps stdin open.
struct EndsAfter(Option<Timer>);

impl AsyncRead for EndsAfter {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // A fired timer never fires again, and the end must stay the end.
        if let Some(timer) = &mut self.0 {
            if Pin::new(timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.0 = None;
        }
        Poll::Ready(Ok(0))
    }
}

/// Input that fails instead of ending.
struct Fails;

impl AsyncRead for Fails {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::Error::other("disk on fire")))
    }
}

#[test]
fn replies_come_out_in_order_with_exact_bytes() {
    let input = format!(
        "{INIT1}\n{}\n{}\n",
        r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":2,"delta":4}}"#,
        r#"{"src":"c2","dest":"n1","body":{"type":"read","msg_id":9}}"#,
    );
    let (result, lines) = run_bytes(Config::default(), input.as_bytes());
    result.expect("runs");
    assert_eq!(
        lines,
        [
            INIT_OK,
            r#"{"src":"n1","dest":"c1","body":{"type":"add_ok","in_reply_to":2,"msg_id":1}}"#,
            r#"{"src":"n1","dest":"c2","body":{"type":"read_ok","in_reply_to":9,"msg_id":2,"value":4}}"#,
        ]
    );
}

#[test]
fn crlf_blank_lines_and_a_last_line_without_newline_are_read() {
    let input = format!(
        "{INIT1}\r\n\n\r\n{}",
        r#"{"src":"c1","dest":"n1","body":{"type":"read","msg_id":2}}"#
    );
    let (result, lines) = run_bytes(Config::default(), input.as_bytes());
    result.expect("runs");
    assert_eq!(
        lines,
        [
            INIT_OK,
            r#"{"src":"n1","dest":"c1","body":{"type":"read_ok","in_reply_to":2,"msg_id":1,"value":0}}"#,
        ]
    );
}

#[test]
fn invalid_utf8_reaches_the_node_and_is_answered() {
    let mut input = format!("{INIT1}\n").into_bytes();
    input.extend_from_slice(
        b"{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"re\xffad\",\"msg_id\":2}}\n",
    );
    let (result, lines) = run_bytes(Config::default(), &input[..]);
    result.expect("runs");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].starts_with(r#"{"src":"n1","dest":"c1","body":{"type":"error","in_reply_to":2,"msg_id":1,"code":12,"#), "{}", lines[1]);
}

#[test]
fn every_request_naming_a_sender_and_msg_id_gets_one_reply() {
    // Issue 11, item 4: these got no reply at all.
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let bad = [
        r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":2,"delta":1e400}}"#.to_string(),
        format!(r#"{{"src":"c1","dest":"n1","body":{{"type":"read","msg_id":3,"key":{deep}}}}}"#),
        r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":4,"in_reply_to":null,"delta":1.5}}"#
            .to_string(),
    ];
    let input = format!("{INIT1}\n{}\n", bad.join("\n"));
    let (result, lines) = run_bytes(Config::default(), input.as_bytes());
    result.expect("runs");
    assert_eq!(lines.len(), 4, "{lines:?}");
    for (line, id) in lines[1..].iter().zip(2..) {
        let start = format!(
            r#"{{"src":"n1","dest":"c1","body":{{"type":"error","in_reply_to":{id},"msg_id":{},"code":12,"#,
            id - 1
        );
        assert!(line.starts_with(&start), "{line}");
    }
}

/// A `read` padded with a string field to exactly `len` bytes.
fn padded_read(msg_id: u64, len: usize) -> Vec<u8> {
    let head =
        format!(r#"{{"src":"c1","dest":"n1","body":{{"type":"read","msg_id":{msg_id},"pad":""#);
    let tail = r#""}}"#;
    let mut line = head.into_bytes();
    line.resize(len - tail.len(), b'x');
    line.extend_from_slice(tail.as_bytes());
    line
}

#[test]
fn a_line_over_the_limit_is_dropped_and_one_at_the_limit_is_kept() {
    let mut input = format!("{INIT1}\n").into_bytes();
    input.extend(padded_read(2, MAX_LINE + 1));
    input.push(b'\n');
    input.extend(padded_read(3, MAX_LINE));
    input.push(b'\n');
    let (result, lines) = run_bytes(Config::default(), &input[..]);
    result.expect("runs");
    assert_eq!(
        lines,
        [
            INIT_OK,
            r#"{"src":"n1","dest":"c1","body":{"type":"read_ok","in_reply_to":3,"msg_id":1,"value":0}}"#,
        ]
    );
}

#[test]
fn timers_fire_while_the_input_stays_open() {
    let config = Config {
        gossip_interval: Duration::from_millis(20),
        ..Config::default()
    };
    let input = format!(
        "{INIT2}\n{}\n",
        r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":2,"delta":5}}"#
    );
    let open = EndsAfter(Some(Timer::after(Duration::from_millis(200))));
    let (result, lines) = run_bytes(config, input.as_bytes().chain(open));
    result.expect("runs");
    let gossip = r#"{"src":"n1","dest":"n2","body":{"type":"gossip","counts":{"n1":5}}}"#;
    assert!(lines.len() >= 3, "{lines:?}");
    assert_eq!(
        lines[..2],
        [
            INIT_OK,
            r#"{"src":"n1","dest":"c1","body":{"type":"add_ok","in_reply_to":2,"msg_id":1}}"#
        ]
    );
    assert!(lines[2..].iter().all(|l| l == gossip), "{lines:?}");
}

#[test]
fn the_end_of_input_does_not_wait_for_timers() {
    let config = Config {
        gossip_interval: Duration::from_secs(30),
        ..Config::default()
    };
    let input = format!(
        "{INIT2}\n{}\n",
        r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":2,"delta":5}}"#
    );
    let started = Instant::now();
    let (result, lines) = run_bytes(config, input.as_bytes());
    result.expect("runs");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(lines.len(), 2, "{lines:?}");
}

#[test]
fn a_read_error_is_returned_after_the_ready_replies() {
    let input = format!("{INIT1}\n");
    let (result, lines) = run_bytes(Config::default(), input.as_bytes().chain(Fails));
    assert_eq!(result.expect_err("fails").to_string(), "disk on fire");
    assert_eq!(lines, [INIT_OK]);
}

#[test]
fn many_lines_keep_their_order_across_reads() {
    // More than one 64 KiB read, with a bad line inside.
    let n = 1300;
    let mut input = format!("{INIT1}\n");
    for id in 2..n + 2 {
        if id == n / 2 {
            input.push_str("not json\n");
        }
        input.push_str(&format!(
            r#"{{"src":"c1","dest":"n1","body":{{"type":"add","msg_id":{id},"delta":1}}}}"#
        ));
        input.push('\n');
    }
    input.push_str(r#"{"src":"c2","dest":"n1","body":{"type":"read","msg_id":1}}"#);
    let (result, lines) = run_bytes(Config::default(), input.as_bytes());
    result.expect("runs");
    assert_eq!(
        lines.len() as u64,
        n + 2,
        "the bad line has no msg_id to answer"
    );
    for (i, line) in lines[1..=n as usize].iter().enumerate() {
        let expected = format!(
            r#"{{"src":"n1","dest":"c1","body":{{"type":"add_ok","in_reply_to":{},"msg_id":{}}}}}"#,
            i + 2,
            i + 1
        );
        assert_eq!(line, &expected);
    }
    assert_eq!(
        lines.last().expect("a read_ok"),
        &format!(
            r#"{{"src":"n1","dest":"c2","body":{{"type":"read_ok","in_reply_to":1,"msg_id":{},"value":{n}}}}}"#,
            n + 1
        )
    );
}

// Restarts: n0 of a cluster whose n1 is absent, so gossip goes nowhere.

const INIT0: &str = r#"{"src":"c0","dest":"n0","body":{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0","n1"]}}"#;

fn add0(msg_id: u64, delta: u64) -> String {
    format!(
        r#"{{"src":"c1","dest":"n0","body":{{"type":"add","msg_id":{msg_id},"delta":{delta}}}}}"#
    )
}

fn read0(msg_id: u64) -> String {
    format!(r#"{{"src":"c1","dest":"n0","body":{{"type":"read","msg_id":{msg_id}}}}}"#)
}

/// A fresh directory of its own under the temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("gcounter-stdio-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_restarting(
    state_dir: Option<&std::path::Path>,
    config: Config,
    input: impl AsyncRead + Unpin,
) -> (Result<(), Error>, Vec<String>) {
    let mut out = Vec::new();
    let result = smol::block_on(run_restartable(
        Node::new(config),
        state_dir,
        input,
        &mut out,
    ));
    let text = String::from_utf8(out).expect("output is UTF-8");
    (result, text.lines().map(str::to_owned).collect())
}

/// Output that notes, at each write, what n0's state file then holds.
struct Watched<'a> {
    dir: &'a std::path::Path,
    writes: Vec<(String, Option<String>)>,
}

impl AsyncWrite for Watched<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let stored = gcounter_state::read_state(this.dir, "n0", |_| Ok(()))?;
        let text = String::from_utf8_lossy(buf).into_owned();
        this.writes.push((text, stored));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn stored_counts(n0: u64) -> String {
    format!(r#"{{"slot":"n0","counts":{{"n0":{n0}}}}}"#)
}

#[test]
fn with_a_state_dir_each_add_is_stored_before_its_add_ok_is_written() {
    let dir = TempDir::new("stored-first");
    // Two chunks, so two writes of the output.
    let first = format!("{INIT0}\n{}\n{}\n", add0(2, 3), add0(3, 4));
    let pause = EndsAfter(Some(Timer::after(Duration::from_millis(50))));
    let second = format!("{}\n{}\n", add0(4, 0), add0(5, 5));
    let input = first.as_bytes().chain(pause).chain(second.as_bytes());
    let mut out = Watched {
        dir: &dir.0,
        writes: Vec::new(),
    };
    let result = smol::block_on(run_restartable(
        Node::new(Config::default()),
        Some(&dir.0),
        input,
        &mut out,
    ));
    result.expect("runs");
    let deltas = [(2, 3), (3, 4), (4, 0), (5, 5)];
    let mut acked = 0;
    assert_eq!(out.writes.len(), 2, "{:?}", out.writes);
    for (text, stored) in &out.writes {
        for (msg_id, delta) in deltas {
            if text.contains(&format!(r#""add_ok","in_reply_to":{msg_id},"#)) {
                acked += delta;
            }
        }
        assert_eq!(stored.as_deref(), Some(&*stored_counts(acked)), "{text}");
    }
    assert_eq!(acked, 12);
    let path = gcounter_state::state_path(&dir.0, "n0");
    assert_eq!(
        std::fs::read_to_string(path).expect("state file"),
        format!("{}\n{}\n", stored_counts(7), stored_counts(12)),
        "one write per write of the output"
    );
    let incarnation = std::fs::read_to_string(dir.0.join("n0.incarnation"));
    assert_eq!(incarnation.expect("incarnation file"), "0\n");
}

#[test]
fn a_second_life_with_the_same_state_dir_counts_on() {
    let dir = TempDir::new("second-life");
    let first = format!("{INIT0}\n{}\n{}\n", add0(2, 3), add0(3, 4));
    let (result, _) = run_restarting(Some(&dir.0), Config::default(), first.as_bytes());
    result.expect("first life");
    let second = format!("{INIT0}\n{}\n{}\n{}\n", read0(2), add0(3, 1), read0(4));
    let (result, lines) = run_restarting(Some(&dir.0), Config::default(), second.as_bytes());
    result.expect("second life");
    assert_eq!(
        lines,
        [
            r#"{"src":"n0","dest":"c0","body":{"type":"init_ok","in_reply_to":1,"msg_id":0}}"#,
            r#"{"src":"n0","dest":"c1","body":{"type":"read_ok","in_reply_to":2,"msg_id":1,"value":7}}"#,
            r#"{"src":"n0","dest":"c1","body":{"type":"add_ok","in_reply_to":3,"msg_id":2}}"#,
            r#"{"src":"n0","dest":"c1","body":{"type":"read_ok","in_reply_to":4,"msg_id":3,"value":8}}"#,
        ]
    );
    // Counting on in the stored slot, under a new incarnation.
    let stored = gcounter_state::read_state(&dir.0, "n0", |_| Ok(())).expect("readable");
    assert_eq!(stored, Some(stored_counts(8)));
    let incarnation = std::fs::read_to_string(dir.0.join("n0.incarnation"));
    assert_eq!(incarnation.expect("incarnation file"), "1\n");
}

#[test]
fn lines_before_init_are_answered_as_without_a_state_dir() {
    let dir = TempDir::new("before-init");
    let input = format!(
        "{}\nnot json\n{}\n{INIT0}\n{}\n{}\n",
        read0(7),
        add0(8, 2),
        add0(2, 3),
        read0(3)
    );
    let (result, plain) = run_bytes(Config::default(), input.as_bytes());
    result.expect("runs");
    let (result, stored) = run_restarting(Some(&dir.0), Config::default(), input.as_bytes());
    result.expect("runs");
    assert_eq!(stored, plain);
    assert!(plain[0].contains(r#""code":11"#), "{plain:?}");
}

#[test]
fn an_unreadable_state_stops_the_node_before_init_ok_naming_the_file() {
    let dir = TempDir::new("unreadable");
    std::fs::create_dir(gcounter_state::state_path(&dir.0, "n0")).expect("a directory");
    let input = format!("{}\n{INIT0}\n{}\n", read0(7), add0(2, 3));
    let (result, lines) = run_restarting(Some(&dir.0), Config::default(), input.as_bytes());
    match result {
        Err(Error::State(e)) => assert!(e.to_string().contains("n0.state"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(lines.len(), 1, "only the reply before init: {lines:?}");
    assert!(lines[0].contains(r#""code":11"#), "{lines:?}");
}

/// Input that does something when it is reached, then ends.
struct Then<F>(Option<F>);

impl<F: FnOnce() + Unpin> AsyncRead for Then<F> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(f) = self.0.take() {
            f();
        }
        Poll::Ready(Ok(0))
    }
}

#[test]
fn a_state_that_cannot_be_stored_holds_back_what_follows() {
    let dir = TempDir::new("unwritable");
    // The first write of a life goes through this file.
    let tmp = dir.0.join("n0.state.tmp");
    std::fs::create_dir(&tmp).expect("a directory");
    let first = format!("{INIT0}\n{}\n{}\n", add0(2, 3), read0(3));
    let pause = EndsAfter(Some(Timer::after(Duration::from_millis(50))));
    let unblock = Then(Some(|| std::fs::remove_dir(&tmp).expect("removed")));
    let second = format!("{}\n{}\n", add0(4, 1), read0(5));
    let input = first
        .as_bytes()
        .chain(pause)
        .chain(unblock)
        .chain(second.as_bytes());
    let (result, lines) = run_restarting(Some(&dir.0), Config::default(), input);
    result.expect("runs");
    assert_eq!(
        lines,
        [
            // Before the state: it may go.
            r#"{"src":"n0","dest":"c0","body":{"type":"init_ok","in_reply_to":1,"msg_id":0}}"#,
            // The add_ok and read_ok that followed it were dropped; once
            // the state could be stored, what followed went out.
            r#"{"src":"n0","dest":"c1","body":{"type":"add_ok","in_reply_to":4,"msg_id":3}}"#,
            r#"{"src":"n0","dest":"c1","body":{"type":"read_ok","in_reply_to":5,"msg_id":4,"value":4}}"#,
        ]
    );
    let stored = gcounter_state::read_state(&dir.0, "n0", |_| Ok(())).expect("readable");
    assert_eq!(stored, Some(stored_counts(4)));
}

#[test]
fn without_a_state_dir_nothing_is_written_and_each_life_gossips_in_a_fresh_slot() {
    let cwd = std::env::current_dir().expect("working directory");
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(&cwd)
            .expect("listable")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let config = Config {
        gossip_interval: Duration::from_millis(20),
        ..Config::default()
    };
    let input = format!("{INIT0}\n{}\n", add0(2, 5));
    let open = EndsAfter(Some(Timer::after(Duration::from_millis(200))));
    let (result, lines) = run_restarting(None, config, input.as_bytes().chain(open));
    result.expect("runs");
    assert_eq!(listing(), before);
    // The wall clock, in milliseconds, names the slot.
    let gossip = lines.get(2).expect("gossip");
    let slot = gossip
        .strip_prefix(r#"{"src":"n0","dest":"n1","body":{"type":"gossip","counts":{"n0#"#)
        .and_then(|rest| rest.strip_suffix(r#"":5}}}"#))
        .unwrap_or_else(|| panic!("{gossip}"));
    assert!(slot.parse::<u64>().is_ok_and(|ms| ms > 1), "{gossip}");
}
