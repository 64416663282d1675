//! A stdio node's state file damaged between two lives, and two processes
//! on one state (issue 24, items 3 and 4).
//!
//! Before: after 42 acknowledged adds, one line of garbage appended to
//! `n0.state` made the next life warn, answer `init_ok` and read 0, and
//! its first add renamed a fresh file over the valid line; a file cut
//! short inside its first line, or emptied, read 0 without a word; and a
//! second process with the same directory and id ran beside the first,
//! each overwriting the other's states.

use crate::common::{node_command, run_command, LiveNode, Store};
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::n0::{add, read, utf8, INIT};

fn node(dir: &Path) -> Command {
    node_command(&["--state-dir", utf8(dir)], &[])
}

/// A state directory whose n0 acknowledged 42 adds of 1 in one life (all
/// sent in one go, as a burst of requests is, so the file holds one line
/// per batch the node wrote), then was killed.
fn dir_after_42_adds(name: &str) -> Store {
    let dir = Store::new(name);
    let mut node = LiveNode::spawn(node(&dir.0));
    assert_eq!(node.request(INIT)["type"], "init_ok");
    for i in 0..42 {
        assert_eq!(node.request(&add(10 + i, 1))["type"], "add_ok");
    }
    assert_eq!(node.request(&read(99))["value"], 42);
    node.kill();
    dir
}

fn append(path: &Path, bytes: &[u8]) {
    let mut all = fs::read(path).expect("the state file");
    all.extend_from_slice(bytes);
    fs::write(path, all).expect("written");
}

/// One garbage line appended: the next life takes the last valid state
/// (42), says which line it skipped in a warning naming the file, and its
/// next add keeps it: a third life reads 43.
fn garbage_line_keeps_the_last_valid_state(name: &str, garbage: &[u8]) {
    let dir = dir_after_42_adds(name);
    let path = dir.0.join("n0.state");
    append(&path, garbage);
    let out = run_command(
        node(&dir.0),
        format!("{INIT}\n{}\n{}\n", read(2), add(3, 1)).as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", out.stderr);
    let replies = crate::common::messages(&out.stdout);
    let value = replies
        .iter()
        .find(|m| m["body"]["in_reply_to"] == 2)
        .map(|m| m["body"]["value"].clone());
    assert_eq!(value, Some(42.into()), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("WARN") && out.stderr.contains(utf8(&path)),
        "no warning naming {}: {}",
        path.display(),
        out.stderr
    );
    // The damaged file is kept beside the state for whoever looks into it.
    let kept = fs::read(dir.0.join("n0.state.damaged")).expect("a copy of the damaged file");
    assert!(kept.ends_with(garbage), "{kept:?}");
    let out = run_command(node(&dir.0), format!("{INIT}\n{}\n", read(2)).as_bytes());
    let replies = crate::common::messages(&out.stdout);
    let value = replies
        .iter()
        .find(|m| m["body"]["in_reply_to"] == 2)
        .map(|m| m["body"]["value"].clone());
    assert_eq!(value, Some(43.into()), "stderr: {}", out.stderr);
}

#[test]
fn a_line_of_nul_bytes_appended_keeps_the_last_valid_state() {
    garbage_line_keeps_the_last_valid_state("damage-nul", b"\0\0\0\0\0\0\n");
}

#[test]
fn a_line_that_is_not_utf8_appended_keeps_the_last_valid_state() {
    garbage_line_keeps_the_last_valid_state("damage-utf8", b"{\"slot\":\"n0\xff\xfe\"}\n");
}

#[test]
fn another_nodes_slot_appended_keeps_the_last_valid_state() {
    garbage_line_keeps_the_last_valid_state(
        "damage-slot",
        b"{\"slot\":\"n1\",\"counts\":{\"n1\":1000}}\n",
    );
}

#[test]
fn a_count_as_a_string_appended_keeps_the_last_valid_state() {
    garbage_line_keeps_the_last_valid_state(
        "damage-string",
        b"{\"slot\":\"n0\",\"counts\":{\"n0\":\"43\"}}\n",
    );
}

/// No complete valid state at all: exit 2 without `init_ok`, one line
/// naming the file and the line, and the file left as it was.
#[test]
fn a_file_cut_short_inside_its_first_line_refuses_to_start() {
    let dir = dir_after_42_adds("damage-truncated");
    let path = dir.0.join("n0.state");
    let all = fs::read(&path).expect("the state file");
    let first = all.iter().position(|&b| b == b'\n').expect("a line");
    fs::write(&path, &all[..first / 2]).expect("cut");
    let before = fs::read(&path).expect("the state file");
    let out = run_command(node(&dir.0), format!("{INIT}\n{}\n", add(2, 1)).as_bytes());
    assert_eq!(out.status.code(), Some(2), "stderr: {}", out.stderr);
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!("{}: line 1", path.display())),
        "not naming the file and the line: {}",
        out.stderr
    );
    assert_eq!(fs::read(&path).expect("the state file"), before);
}

/// An empty file holds no state to keep: the node starts without one, but
/// says so, naming the file (our writer never leaves it empty: it writes
/// a whole file aside and renames it).
#[test]
fn an_emptied_file_starts_afresh_with_a_warning() {
    let dir = dir_after_42_adds("damage-empty");
    let path = dir.0.join("n0.state");
    fs::write(&path, b"").expect("emptied");
    let out = run_command(node(&dir.0), format!("{INIT}\n{}\n", read(2)).as_bytes());
    assert_eq!(out.status.code(), Some(0), "stderr: {}", out.stderr);
    let replies = crate::common::messages(&out.stdout);
    assert!(replies.iter().any(|m| m["body"]["value"] == 0));
    assert!(
        out.stderr.contains("WARN") && out.stderr.contains(&format!("{} is empty", path.display())),
        "no warning naming {}: {}",
        path.display(),
        out.stderr
    );
}

/// Issue 24 item 4: a second process with the same directory and id is
/// refused (exit 2, naming the lock and the holder), and the first keeps
/// its state.
#[test]
fn a_second_process_on_the_same_state_is_refused() {
    let dir = Store::new("damage-two");
    let mut first = LiveNode::spawn(node(&dir.0));
    assert_eq!(first.request(INIT)["type"], "init_ok");
    assert_eq!(first.request(&add(2, 5))["type"], "add_ok");
    let out = run_command(node(&dir.0), format!("{INIT}\n{}\n", add(3, 7)).as_bytes());
    assert_eq!(out.status.code(), Some(2), "stderr: {}", out.stderr);
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stderr.contains("n0.lock") && out.stderr.contains("another process"),
        "{}",
        out.stderr
    );
    assert_eq!(first.request(&add(4, 1))["type"], "add_ok");
    first.kill();
    // The lock went with the process: the next life starts, with all 6.
    let out = run_command(node(&dir.0), format!("{INIT}\n{}\n", read(2)).as_bytes());
    assert_eq!(out.status.code(), Some(0), "stderr: {}", out.stderr);
    let replies = crate::common::messages(&out.stdout);
    assert!(
        replies.iter().any(|m| m["body"]["value"] == 6),
        "{replies:?}"
    );
}

/// The same for `gcounter node` (the TCP node of `gcounter cluster`): the
/// second exits 2 naming the lock while the first serves on.
#[test]
fn a_second_tcp_node_on_the_same_state_is_refused() {
    let dir = Store::new("damage-two-tcp");
    let start = || {
        let mut cmd = Command::new(crate::common::gcounter());
        cmd.args([
            "node",
            "--id",
            "n0",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
        ])
        .arg(&dir.0)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("gcounter node starts")
    };
    let mut first = start();
    // The first holds the lock once it has written its incarnation.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !dir.0.join("n0.incarnation").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = start();
    let second = wait_with_limit(second, std::time::Duration::from_secs(5));
    let still_running = first.try_wait().expect("wait").is_none();
    let _ = first.kill();
    let _ = first.wait();
    let (status, stderr) = second.expect("the second node exits");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("n0.lock") && stderr.contains("another process"),
        "{stderr}"
    );
    assert!(still_running, "the first node stopped");
}

/// Waits at most `limit` for `child` to exit: its status and stderr (if
/// piped), or `None` after killing it.
fn wait_with_limit(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> Option<(std::process::ExitStatus, String)> {
    use std::io::Read;
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            return Some((status, stderr));
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
