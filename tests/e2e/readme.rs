//! Every shell command block of README.md, run as written (issue 20,
//! item 2): a README command that fails, or whose sample output is no
//! longer what it prints, fails this test naming the README line.
//!
//! What the test reads in the README:
//! - A block fenced ```` ```sh ```` is a command block. Each command (a
//!   line, with its `\` continuations and here-document) runs in `sh -c`,
//!   the `gcounter` this target built first on PATH, in a fresh directory
//!   per block, with TMPDIR there too (so `gcounter cluster`'s default
//!   directory, and `gcounter client --node n1` finding it, stay inside).
//!   Comment and blank lines are skipped.
//! - A plain ```` ``` ```` block whose lines start with `$ ` is a
//!   transcript: each `$ ` line is a command, and the lines under it (but
//!   `...`) must be lines of what it prints, in that order.
//! - A comment `# exits N` on a command's last line: it must exit N (a
//!   command without one must exit 0).
//! - A comment `# runs until Ctrl-C`: it runs in the background while the
//!   block's later commands use it, and at the end of the block gets
//!   SIGINT, as Ctrl-C sends it, and must stop.
//!
//! No command's output may say "the nemesis never acted": the examples
//! with a nemesis are there to show it.
//!
//! Blocks with a long-running command hold fixed ports (the cluster's
//! 7400 and up, etcd's 2379, a node's `--listen`), as a user's would, so
//! they run one after another; the other blocks run beside them.
//! "A cluster across machines" runs on one machine: 10.0.0.1-3 become the
//! loopback addresses 127.0.0.1-3 (all of 127.0.0.0/8 is loopback on
//! Linux), as the README says. Blocks that run etcd, or make a secret
//! with openssl, are skipped, in one line, without it (see
//! `common::requires`).

use crate::common::{gcounter, requires, run_with_limit};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Commands the test does not run as written, each with the reason.
const EXCEPTIONS: &[(&str, &str)] = &[(
    "cargo test --workspace --locked",
    "it is the suite this test belongs to; .ci/run runs it as written",
)];

/// `cargo run --release -- ARGS` runs the `gcounter` this target built
/// instead (the same code; a release build would add minutes to CI).
const CARGO_RUN: &str = "cargo run --release -- ";

/// The section run on loopback, and the addresses it swaps.
const ACROSS_MACHINES: &str = "A cluster across machines";
const HOSTS: (&str, &str) = ("10.0.0.", "127.0.0.");

/// The longest a command may take; the longest a background command may
/// take to be ready, or to stop after Ctrl-C.
const COMMAND_LIMIT: Duration = Duration::from_secs(300);
const READY_LIMIT: Duration = Duration::from_secs(60);
const STOP_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Cmd {
    /// README line of the command's first line.
    line: usize,
    text: String,
    exit: i32,
    background: bool,
    /// A transcript's sample output (`...` lines left out).
    sample: Vec<String>,
}

#[derive(Debug, Clone)]
struct Block {
    line: usize,
    section: String,
    cmds: Vec<Cmd>,
}

impl Block {
    fn uses_etcd(&self) -> bool {
        self.cmds.iter().any(|c| {
            c.text.starts_with("etcd ")
                || c.text.contains("--kv etcd")
                || c.text.contains("etcd://")
        })
    }

    fn uses_openssl(&self) -> bool {
        self.cmds.iter().any(|c| c.text.contains("openssl "))
    }

    fn holds_ports(&self) -> bool {
        self.cmds.iter().any(|c| c.background)
    }
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(&path).expect("README.md")
}

/// The command blocks and transcripts of `text`, in order.
fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut section = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(title) = line.strip_prefix("## ") {
            section = title.trim().to_string();
        }
        let Some(info) = line.trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .expect("every fence of README.md is closed");
        // (0-based index, text) of the body's lines.
        let body: Vec<(usize, &str)> = (start..end).map(|j| (j, lines[j])).collect();
        let cmds = match info.trim() {
            "sh" => commands(&body),
            "" => transcript(&body),
            _ => Vec::new(),
        };
        if !cmds.is_empty() {
            out.push(Block {
                line: i + 1,
                section: section.clone(),
                cmds,
            });
        }
        i = end + 1;
    }
    out
}

/// The commands of a ```` ```sh ```` block's body.
fn commands(body: &[(usize, &str)]) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    let mut k = 0;
    while k < body.len() {
        let (index, first) = body[k];
        k += 1;
        if first.trim().is_empty() || first.trim_start().starts_with('#') {
            continue;
        }
        let mut text = first.to_string();
        while text.ends_with('\\') && k < body.len() {
            text.push('\n');
            text.push_str(body[k].1);
            k += 1;
        }
        if let Some(tag) = heredoc_tag(&text) {
            while k < body.len() {
                let line = body[k].1;
                text.push('\n');
                text.push_str(line);
                k += 1;
                if line == tag {
                    break;
                }
            }
        }
        cmds.push(command(index + 1, text));
    }
    cmds
}

/// The commands of a transcript: `$ ` lines, each with its sample output.
fn transcript(body: &[(usize, &str)]) -> Vec<Cmd> {
    let mut cmds: Vec<Cmd> = Vec::new();
    for &(index, line) in body {
        if let Some(text) = line.strip_prefix("$ ") {
            cmds.push(command(index + 1, text.to_string()));
        } else if let Some(cmd) = cmds.last_mut() {
            if line.trim() != "..." {
                cmd.sample.push(line.to_string());
            }
        }
    }
    cmds
}

fn command(line: usize, text: String) -> Cmd {
    let last = text.lines().last().unwrap_or_default();
    let comment = last.find(" #").map_or("", |at| &last[at..]);
    let exit = comment.split("# exits ").nth(1).map(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("README.md:{line}: `# exits` takes a number"))
    });
    Cmd {
        line,
        exit: exit.unwrap_or(0),
        background: comment.contains("# runs until Ctrl-C"),
        text,
        sample: Vec::new(),
    }
}

/// `TAG` of a here-document `<<'TAG'`, `<<"TAG"` or `<<TAG`.
fn heredoc_tag(text: &str) -> Option<String> {
    let after = text
        .split("<<")
        .nth(1)?
        .trim_start_matches('-')
        .trim_start();
    let word: String = after
        .chars()
        .filter(|c| *c != '\'' && *c != '"')
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// What `cmd` runs: the README's text, but for the named rewrites.
fn as_run(block: &Block, cmd: &Cmd) -> Result<String, &'static str> {
    if let Some((_, why)) = EXCEPTIONS.iter().find(|(text, _)| cmd.text == *text) {
        return Err(why);
    }
    let mut text = cmd.text.replace(CARGO_RUN, "gcounter ");
    if block.section == ACROSS_MACHINES {
        text = text.replace(HOSTS.0, HOSTS.1);
    }
    Ok(text)
}

fn shell(text: &str, dir: &Path) -> Command {
    let bin = gcounter().parent().expect("the binary's directory");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    // Ctrl-C must reach the command as it would from a terminal, even when
    // this test runs in a background job, whose commands inherit SIGINT and
    // SIGQUIT ignored (POSIX, for `&` without job control); a node, which
    // leaves SIGINT to its default action, would then never stop. GNU env
    // restores the default (the test is Linux-only already: 127.0.0.2-3).
    let mut cmd = Command::new("env");
    cmd.args(["--default-signal=INT,QUIT", "sh", "-c"])
        .arg(text)
        .current_dir(dir)
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("TMPDIR", dir)
        // A group of its own, as a terminal gives a job: Ctrl-C (SIGINT to
        // the group) and the time limit reach the command's children too.
        .process_group(0);
    for var in [
        "GCOUNTER_STRATEGY",
        "GCOUNTER_KV",
        "GCOUNTER_GOSSIP_INTERVAL",
        "GCOUNTER_STATE_DIR",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A command left running in the background, its output in files.
struct Background {
    cmd: Cmd,
    text: String,
    child: Child,
    out: PathBuf,
    err: PathBuf,
    ready: bool,
}

impl Background {
    fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            tail(&read(&self.out)),
            tail(&read(&self.err))
        )
    }

    /// Whether it serves what the next commands need, as a user would
    /// check: `gcounter cluster` has printed its members (the table ends
    /// with the control address); etcd answers `/health`; a node accepts
    /// connections on its `--listen` address.
    fn is_ready(&self) -> bool {
        let words: Vec<&str> = self.text.split_whitespace().collect();
        let flag = |name: &str| {
            let at = words.iter().position(|w| *w == name)?;
            words.get(at + 1).copied()
        };
        if self.text.starts_with("gcounter cluster") {
            let out = std::fs::read_to_string(&self.out).unwrap_or_default();
            out.lines().any(|l| l.starts_with("control "))
        } else if self.text.starts_with("etcd ") {
            let url = flag("--listen-client-urls").unwrap_or("http://127.0.0.1:2379");
            let addr = url.trim_start_matches("http://").split(',').next();
            addr.is_some_and(etcd_healthy)
        } else if let Some(addr) = flag("--listen") {
            connects(addr)
        } else {
            true
        }
    }

    /// Ctrl-C, then the wait for it to stop; `Err` says what went wrong.
    fn stop(mut self) -> Result<(), String> {
        let name = format!("README.md:{}: `{}`", self.cmd.line, self.cmd.text);
        if let Some(status) = self.child.try_wait().expect("wait") {
            return Err(format!(
                "{name} was to run until Ctrl-C but ended first ({status})\n{}",
                self.output()
            ));
        }
        signal_group("-INT", self.child.id());
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if self.child.try_wait().expect("wait").is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        signal_group("-KILL", self.child.id());
        let _ = self.child.wait();
        Err(format!(
            "{name} did not stop within {STOP_LIMIT:?} of Ctrl-C (SIGINT)\n{}",
            self.output()
        ))
    }
}

fn signal_group(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pid}")])
        .status();
}

fn connects(addr: &str) -> bool {
    let Some(addr) = addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// etcd's own readiness check: `GET /health` answers `"health":"true"`
/// once the member's cluster has a leader.
fn etcd_healthy(addr: &str) -> bool {
    let Some(addr) = addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
    let mut answer = String::new();
    conn.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_ok()
        && conn.read_to_string(&mut answer).is_ok()
        && answer.contains(r#""health":"true""#)
}

/// The last lines of `text`, enough to see why a command failed.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(25);
    let mut out = lines[from..].join("\n");
    out.push('\n');
    out
}

/// Runs `block` in a fresh directory under `root`; the failures, each
/// naming the README line and the command.
fn run_block(block: &Block, root: &Path) -> Vec<String> {
    let dir = root.join(format!("line-{}", block.line));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the block's directory");
    let logs = root.join(format!("logs-{}", block.line));
    std::fs::create_dir_all(&logs).expect("the block's log directory");
    let mut failures = Vec::new();
    let mut background: Vec<Background> = Vec::new();
    for cmd in &block.cmds {
        let text = match as_run(block, cmd) {
            Ok(text) => text,
            Err(why) => {
                eprintln!("README.md:{}: `{}` not run: {why}", cmd.line, cmd.text);
                continue;
            }
        };
        let name = format!("README.md:{}: `{}`", cmd.line, cmd.text);
        if cmd.background {
            let out = logs.join(format!("{}.out", cmd.line));
            let err = logs.join(format!("{}.err", cmd.line));
            let child = shell(&format!("exec {text}"), &dir)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&out).expect("log file"))
                .stderr(std::fs::File::create(&err).expect("log file"))
                .spawn()
                .expect("sh starts");
            background.push(Background {
                cmd: cmd.clone(),
                text,
                child,
                out,
                err,
                ready: false,
            });
            continue;
        }
        // The commands that follow a long-running one use it: wait, as a
        // user would, until each serves.
        if let Err(why) = wait_ready(&mut background) {
            failures.extend(why);
            break;
        }
        let began = Instant::now();
        let output = run_with_limit(
            {
                let mut c = shell(&text, &dir);
                c.stdin(Stdio::null());
                c
            },
            COMMAND_LIMIT,
        );
        eprintln!("{name}: {:?} in {:.1?}", output.status, began.elapsed());
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let shown = format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            tail(&stdout),
            tail(&stderr)
        );
        if output.status.code() != Some(cmd.exit) {
            failures.push(format!(
                "{name} exited {}, the README expects {}\n{shown}",
                output
                    .status
                    .code()
                    .map_or_else(|| format!("by {:?}", output.status), |c| c.to_string()),
                cmd.exit
            ));
            break;
        }
        if stdout.contains("the nemesis never acted") {
            failures.push(format!(
                "{name}: its nemesis never acted, yet the README shows it\n{shown}"
            ));
        }
        if let Some(missing) = missing_sample_line(&cmd.sample, &stdout) {
            failures.push(format!(
                "{name}: the README's sample line {missing:?} is not in what it printed (in order)\n{shown}"
            ));
        }
    }
    // Ctrl-C, the newest first, as a user would close their terminals.
    while let Some(bg) = background.pop() {
        if let Err(why) = bg.stop() {
            failures.push(why);
        }
    }
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&logs);
    }
    failures
}

/// Waits until every background command is ready; `Err(None)` when one
/// ended instead (its [`Background::stop`] says so).
fn wait_ready(background: &mut [Background]) -> Result<(), Option<String>> {
    let deadline = Instant::now() + READY_LIMIT;
    for bg in background.iter_mut().filter(|bg| !bg.ready) {
        loop {
            if bg.child.try_wait().expect("wait").is_some() {
                return Err(None);
            }
            if bg.is_ready() {
                bg.ready = true;
                break;
            }
            if Instant::now() > deadline {
                return Err(Some(format!(
                    "README.md:{}: `{}` was not ready within {READY_LIMIT:?}\n{}",
                    bg.cmd.line,
                    bg.cmd.text,
                    bg.output()
                )));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

/// The first line of `sample` that is not a line of `stdout` after the
/// previous one's.
fn missing_sample_line(sample: &[String], stdout: &str) -> Option<String> {
    let mut lines = stdout.lines();
    sample
        .iter()
        .find(|want| !lines.any(|got| got == want.as_str()))
        .cloned()
}

#[test]
fn every_readme_command_block_runs_as_written() {
    let blocks = blocks(&readme());
    assert!(
        blocks.len() >= 5,
        "README.md has command blocks: found {blocks:#?}"
    );
    for (text, _) in EXCEPTIONS {
        assert!(
            blocks.iter().flat_map(|b| &b.cmds).any(|c| c.text == *text),
            "the exception `{text}` is no longer in README.md: remove it"
        );
    }
    // Asked once each, so a skip is one line.
    let (mut etcd, mut openssl) = (None, None);
    let mut runnable = Vec::new();
    for block in blocks {
        if block.uses_etcd() && !*etcd.get_or_insert_with(|| requires::etcd().is_some()) {
            continue;
        }
        if block.uses_openssl() && !*openssl.get_or_insert_with(|| requires::openssl().is_some()) {
            continue;
        }
        runnable.push(block);
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("readme");
    let (sequential, alongside): (Vec<Block>, Vec<Block>) =
        runnable.into_iter().partition(Block::holds_ports);
    let started = Instant::now();
    let failures: Vec<String> = thread::scope(|s| {
        let mut runs = vec![s.spawn(|| {
            sequential
                .iter()
                .flat_map(|b| run_block(b, &root))
                .collect::<Vec<_>>()
        })];
        runs.extend(alongside.iter().map(|b| s.spawn(|| run_block(b, &root))));
        runs.into_iter()
            .flat_map(|r| r.join().expect("a block's thread"))
            .collect()
    });
    eprintln!("README command blocks ran in {:?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "{} README command(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_readme_extractor_reads_continuations_heredocs_and_markers() {
    let text = "## S\n```sh\n# a comment\nfoo --a \\\n  --b    # exits 1\ncat > f <<'TXT'\nx\nTXT\nsrv   # runs until Ctrl-C\n```\n```\n$ bar\nout 1\n...\nout 2\n```\n```\nplain output\n```\n";
    let blocks = blocks(text);
    assert_eq!(blocks.len(), 2, "{blocks:#?}");
    let cmds = &blocks[0].cmds;
    assert_eq!(cmds[0].text, "foo --a \\\n  --b    # exits 1");
    assert_eq!((cmds[0].line, cmds[0].exit), (4, 1));
    assert_eq!(cmds[1].text, "cat > f <<'TXT'\nx\nTXT");
    assert!(cmds[2].background && cmds[2].exit == 0);
    assert_eq!(blocks[1].cmds[0].sample, ["out 1", "out 2"]);
    assert_eq!(
        missing_sample_line(&blocks[1].cmds[0].sample, "out 1\nz\nout 2\n"),
        None
    );
    assert_eq!(
        missing_sample_line(&blocks[1].cmds[0].sample, "out 2\nout 1\n"),
        Some("out 2".to_string())
    );
}
