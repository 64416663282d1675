//! A stdio node killed with SIGKILL and started again with the same id, as
//! Maelstrom's `kill` faults do: with a state directory (`--state-dir` or
//! `GCOUNTER_STATE_DIR`) it comes back with the adds it acknowledged; with
//! none it writes nothing anywhere.

use crate::common::{gcounter, node_command, run_command, LiveNode, Store};
use std::fs;
use std::process::Command;

use crate::common::n0::{add, read, utf8, INIT};

/// One life of n0: init, then `requests`, then SIGKILL. Returns the
/// reply to each request: its type and, for a read, its value.
fn life(cmd: Command, requests: &[String]) -> Vec<String> {
    let mut node = LiveNode::spawn(cmd);
    assert_eq!(node.request(INIT)["type"], "init_ok");
    let replies = requests
        .iter()
        .map(|request| {
            let body = node.request(request);
            match body.get("value") {
                Some(value) => format!("{} {value}", body["type"].as_str().unwrap_or("?")),
                None => body["type"].as_str().unwrap_or("?").to_owned(),
            }
        })
        .collect();
    node.kill();
    replies
}

fn adds_survive_a_kill(cmd: impl Fn() -> Command) {
    assert_eq!(life(cmd(), &[add(2, 3), add(3, 4)]), ["add_ok", "add_ok"]);
    assert_eq!(life(cmd(), &[read(2), add(3, 1)]), ["read_ok 7", "add_ok"]);
    assert_eq!(life(cmd(), &[read(2)]), ["read_ok 8"]);
}

#[test]
fn adds_survive_a_kill_with_state_dir() {
    let dir = Store::new("restart-flag");
    adds_survive_a_kill(|| node_command(&["--state-dir", utf8(&dir.0)], &[]));
    assert!(dir.0.join("n0.state").exists());
}

#[test]
fn adds_survive_a_kill_with_gcounter_state_dir() {
    let dir = Store::new("restart-var");
    adds_survive_a_kill(|| node_command(&[], &[("GCOUNTER_STATE_DIR", utf8(&dir.0))]));
    assert!(dir.0.join("n0.state").exists());
}

#[test]
fn the_flag_wins_over_the_variable() {
    let flag = Store::new("restart-wins-flag");
    let var = Store::new("restart-wins-var");
    let cmd = node_command(
        &["--state-dir", utf8(&flag.0)],
        &[("GCOUNTER_STATE_DIR", utf8(&var.0))],
    );
    assert_eq!(life(cmd, &[add(2, 3)]), ["add_ok"]);
    assert!(flag.0.join("n0.state").exists());
    assert!(!var.0.exists());
}

#[test]
fn without_a_state_dir_nothing_is_written_and_each_life_has_a_slot_of_its_own() {
    let cwd = Store::new("restart-none");
    fs::create_dir_all(&cwd.0).expect("working directory");
    let cmd = || {
        let mut cmd = node_command(&[], &[]);
        cmd.current_dir(&cwd.0);
        cmd
    };
    let mut node = LiveNode::spawn(cmd());
    assert_eq!(node.request(INIT)["type"], "init_ok");
    assert_eq!(node.request(&add(2, 3))["type"], "add_ok");
    // A slot of this life's own, named by the wall clock, which the next
    // life will not reuse.
    let gossip = node.next_message_to("n1");
    let counts = gossip["body"]["counts"].as_object().expect("counts");
    let slots: Vec<&String> = counts.keys().collect();
    assert_eq!(slots.len(), 1, "{gossip}");
    let ms = slots[0].strip_prefix("n0#").map(str::parse::<u64>);
    assert!(matches!(ms, Some(Ok(ms)) if ms > 1), "{gossip}");
    node.kill();
    // What n0 had not gossiped is gone: the price of keeping nothing.
    assert_eq!(life(cmd(), &[read(2)]), ["read_ok 0"]);
    let written: Vec<_> = fs::read_dir(&cwd.0).expect("listable").collect();
    assert!(written.is_empty(), "{written:?}");
}

#[test]
fn an_unusable_state_dir_exits_2_naming_it_before_init_ok() {
    let dir = Store::new("restart-unusable");
    fs::create_dir_all(&dir.0).expect("a directory");
    let file = dir.0.join("a-file");
    fs::write(&file, "").expect("a file");
    let state_dir = file.join("state");
    let cmd = node_command(&["--state-dir", utf8(&state_dir)], &[]);
    let run = run_command(cmd, format!("{INIT}\n").as_bytes());
    assert_eq!(run.status.code(), Some(2), "stderr: {}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&run.stdout)
    );
    assert_eq!(run.stderr.lines().count(), 1, "{:?}", run.stderr);
    assert!(run.stderr.contains(utf8(&file)), "{:?}", run.stderr);
}

#[test]
fn an_empty_gcounter_state_dir_exits_2() {
    let cmd = node_command(&[], &[("GCOUNTER_STATE_DIR", "")]);
    let run = run_command(cmd, format!("{INIT}\n").as_bytes());
    assert_eq!(run.status.code(), Some(2), "stderr: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{:?}", run.stderr);
    assert!(
        run.stderr.contains("GCOUNTER_STATE_DIR"),
        "{:?}",
        run.stderr
    );
}

#[test]
fn help_names_the_flag_and_the_variable() {
    let out = Command::new(gcounter())
        .arg("--help")
        .output()
        .expect("gcounter --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--state-dir <DIR>"), "{help}");
    assert!(help.contains("GCOUNTER_STATE_DIR  "), "{help}");
}
