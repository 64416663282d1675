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
