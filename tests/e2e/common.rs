//! Helpers shared by the end-to-end tests.

pub mod etcd;
pub mod requires;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The `gcounter` binary under test.
pub fn gcounter() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_gcounter"))
}

/// `../shared/fixtures`, read in place (never copied into the repo).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// `tests/nodes/<node>.py`, the path to hand `--bin python3`.
pub fn node_script(node: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/nodes")
        .join(format!("{node}.py"))
        .display()
        .to_string()
}

/// How long a node fed a finite input may take to exit.
pub const GUARD: Duration = Duration::from_secs(5);

/// What a finished `gcounter` process left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// The stdio node with `args`, and `vars` as its only gcounter variables.
pub fn node_command(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(gcounter());
    // The developer's own settings must not leak into the test.
    for var in [
        "GCOUNTER_STRATEGY",
        "GCOUNTER_KV",
        "GCOUNTER_GOSSIP_INTERVAL",
        "GCOUNTER_STATE_DIR",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(args).envs(vars.iter().copied());
    cmd
}

/// Runs the stdio node with `vars` as its only gcounter variables, feeds
/// it `input`, closes its stdin and waits at most [`GUARD`] for it to exit.
pub fn run_node(vars: &[(&str, &str)], input: &[u8]) -> Finished {
    run_command(node_command(&[], vars), input)
}

/// [`run_node`] for a node started by `cmd` (see [`node_command`]).
pub fn run_command(mut cmd: Command, input: &[u8]) -> Finished {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gcounter starts");

    // Threads on every pipe, or a large input and a large output would
    // block each other.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // A node that exits early (a bad configuration) closes the pipe: fine.
    let writer = thread::spawn(move || drop(stdin.write_all(&input)));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));

    let deadline = Instant::now() + GUARD;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for gcounter") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gcounter did not exit within {GUARD:?} of the end of its input");
        }
        thread::sleep(Duration::from_millis(5));
    };
    writer.join().expect("stdin writer");
    let stdout = stdout.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned();
    Finished {
        status,
        stdout,
        stderr,
    }
}

/// A stdio node that keeps running between requests, so that a test can
/// kill it at a point of its choosing. Killed when dropped.
pub struct LiveNode {
    child: Child,
    stdin: ChildStdin,
    /// Every message it writes, in order, read by a thread of its own.
    stdout: mpsc::Receiver<Value>,
}

impl LiveNode {
    /// Starts `cmd` (see [`node_command`]); its stderr is the test's.
    pub fn spawn(mut cmd: Command) -> LiveNode {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("gcounter starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                let msg = parse_message(&line);
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
        LiveNode {
            child,
            stdin,
            stdout: rx,
        }
    }

    /// Sends `line`, a request from `src` with `msg_id`, and returns the
    /// body of its reply, waiting at most [`GUARD`]. Other messages (such
    /// as gossip to peers that are not there) are skipped.
    pub fn request(&mut self, line: &str) -> Value {
        let sent: Value = serde_json::from_str(line).expect("a request is JSON");
        writeln!(self.stdin, "{line}").expect("the node reads its stdin");
        self.stdin.flush().expect("the node reads its stdin");
        let deadline = Instant::now() + GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .stdout
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no reply to {line} ({e})"));
            if msg["dest"] == sent["src"] && msg["body"]["in_reply_to"] == sent["body"]["msg_id"] {
                return msg["body"].clone();
            }
        }
    }

    /// The next message the node sends to `dest`, waiting at most
    /// [`GUARD`]; messages to others are skipped.
    pub fn next_message_to(&mut self, dest: &str) -> Value {
        let deadline = Instant::now() + GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .stdout
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no message to {dest} ({e})"));
            if msg["dest"] == dest {
                return msg;
            }
        }
    }

    /// Kills the process with SIGKILL (`Child::kill`): no chance to store
    /// or flush anything more.
    pub fn kill(mut self) {
        self.child.kill().expect("kill gcounter");
        self.child.wait().expect("wait for gcounter");
    }
}

impl Drop for LiveNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Parses stdout into messages, failing the test on anything Maelstrom
/// would reject: a line that is not a complete `{src, dest, body}` object
/// with a string `type` and integer ids.
pub fn messages(stdout: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(stdout).expect("stdout is UTF-8");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "stdout ends mid-line: {text:?}"
    );
    text.lines().map(parse_message).collect()
}

/// One stdout line as [`messages`] checks it.
fn parse_message(line: &str) -> Value {
    let msg: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
    assert_well_formed(&msg, line);
    msg
}

fn assert_well_formed(msg: &Value, line: &str) {
    let obj = msg
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {line}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["body", "dest", "src"], "envelope keys: {line}");
    assert!(
        msg["src"].is_string() && msg["dest"].is_string(),
        "src/dest: {line}"
    );
    let body = &msg["body"];
    assert!(body.is_object(), "body is not an object: {line}");
    assert!(
        body["type"].is_string(),
        "body without a string type: {line}"
    );
    for id in ["msg_id", "in_reply_to"] {
        assert!(
            body.get(id).is_none_or(Value::is_u64),
            "{id} is not an integer: {line}"
        );
    }
    if body["type"] == "error" {
        assert!(
            body["code"].is_u64() && body["text"].is_string(),
            "error body: {line}"
        );
    }
}

/// Asserts the process exited normally: status 0 and no panic.
pub fn assert_clean_exit(run: &Finished) {
    assert!(
        !run.stderr.contains("panicked"),
        "gcounter panicked:\n{}",
        run.stderr
    );
    assert!(
        run.status.success(),
        "gcounter exited with {}:\n{}",
        run.status,
        run.stderr
    );
}

/// A directory of its own under the temp dir, removed afterwards: a
/// results store for a `gcounter test` run, a node's state directory.
/// Names must differ between tests (they share a process id). It does not
/// exist until something creates it.
pub struct Store(pub PathBuf);

impl Store {
    pub fn new(name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("gcounter-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Store(dir)
    }

    pub fn latest(&self) -> PathBuf {
        self.0.join("latest")
    }

    pub fn results(&self) -> Value {
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

/// The short evaluation the `gcounter test` tests run: 3 nodes at rate 100
/// for 5 s with partitions about every 2 s, then 3 s of recovery.
pub const SHORT_RUN: [&str; 12] = [
    "--node-count",
    "3",
    "--rate",
    "100",
    "--time-limit",
    "5",
    "--recovery",
    "3",
    "--nemesis",
    "partition",
    "--nemesis-interval",
    "2",
];

/// Runs `gcounter test` with [`SHORT_RUN`] and `extra` flags (which
/// replace the same flags of the short run), its results in `store`; kills
/// it (and so its nodes) after `limit`.
pub fn gcounter_test(store: &Store, extra: &[&str], limit: Duration) -> std::process::Output {
    gcounter_test_with_env(store, extra, &[], limit)
}

/// [`gcounter_test`] with `env` set for it (and so for its nodes).
pub fn gcounter_test_with_env(
    store: &Store,
    extra: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> std::process::Output {
    let short = SHORT_RUN
        .chunks(2)
        .filter(|flag| !extra.contains(&flag[0]))
        .flatten();
    let mut cmd = Command::new(gcounter());
    cmd.arg("test")
        .args(short)
        .arg("--store")
        .arg(&store.0)
        .args(extra)
        .env_remove("GCOUNTER_STRATEGY")
        // The nodes would inherit it, and each run take up the last one's
        // counts.
        .env_remove("GCOUNTER_STATE_DIR")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied());
    run_with_limit(cmd, limit)
}

/// `gcounter test` with exactly `args` (no [`SHORT_RUN`]: Maelstrom's
/// defaults stand unless `args` says otherwise), its results in `store`;
/// killed (and so its nodes) after `limit`.
pub fn gcounter_test_exact(store: &Store, args: &[&str], limit: Duration) -> std::process::Output {
    let mut cmd = Command::new(gcounter());
    cmd.arg("test")
        .arg("--store")
        .arg(&store.0)
        .args(args)
        .env_remove("GCOUNTER_STRATEGY")
        .env_remove("GCOUNTER_STATE_DIR")
        .env_remove("RUST_LOG");
    run_with_limit(cmd, limit)
}

/// Runs `cmd` to the end, its output captured; SIGKILLs it after `limit`,
/// and its process group too when it leads one (a shell's children).
pub fn run_with_limit(mut cmd: Command, limit: Duration) -> std::process::Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("gcounter test starts");
    let pid = child.id();
    let deadline = Instant::now() + limit;
    let watchdog = thread::spawn(move || {
        while Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        // `-PID` names a group only if the child leads one; else it fails.
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    });
    let out = child.wait_with_output().expect("gcounter test finishes");
    let _ = watchdog.join();
    out
}

/// A finished process's status and output, for assertion messages.
pub fn describe(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A `gcounter test` run that must have caught lost updates: exit 1, an
/// invalid verdict, and `lost` above 0 both in results.json and on stdout.
pub fn assert_reports_lost_updates(store: &Store, out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(1), "{}", describe(out));
    let results = store.results();
    assert_eq!(results["verdict"], "invalid");
    let lost = results["workload"]["lost"]
        .as_u64()
        .expect("lost is a number");
    assert!(lost > 0, "{results}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("lost: {lost}")));
}

/// Lines for one stdio node, n0 of a cluster whose n1 is absent (gossip
/// goes to stdout, unanswered), as the restart and state tests feed it.
pub mod n0 {
    use std::path::Path;

    pub const INIT: &str = r#"{"src":"c0","dest":"n0","body":{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0","n1"]}}"#;

    pub fn add(msg_id: u64, delta: u64) -> String {
        format!(
            r#"{{"src":"c1","dest":"n0","body":{{"type":"add","msg_id":{msg_id},"delta":{delta}}}}}"#
        )
    }

    pub fn read(msg_id: u64) -> String {
        format!(r#"{{"src":"c1","dest":"n0","body":{{"type":"read","msg_id":{msg_id}}}}}"#)
    }

    pub fn utf8(dir: &Path) -> &str {
        dir.to_str().expect("the temp dir is UTF-8")
    }
}
