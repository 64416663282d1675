//! Issue 23, item 3: what crosses the wire between our nodes, and who
//! gets served. Real `gcounter node` processes on loopback; the tests sit
//! where an attacker on the network would: between two nodes, in place of
//! a peer, or as a client.

use crate::common::gcounter;
use gcounter_transport_tcp::{Client, Secret};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

/// A directory of its own, kept (with the nodes' logs) if the test fails.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("gcounter-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    /// The cluster's secret, written as `gcounter cluster` writes it.
    fn secret(&self) -> PathBuf {
        let path = self.0.join("cluster.secret");
        if !path.exists() {
            Secret::generate().unwrap().write(&path).unwrap();
        }
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A `gcounter node` process, killed when dropped (and stopping on its own
/// when this process dies: its standard input closes).
struct NodeProc {
    child: Child,
    log: PathBuf,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now (the system's pick, released).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Starts node `id` on `listen` with `args`, and waits until it accepts.
fn node(dir: &Dir, id: &str, listen: SocketAddr, args: &[String]) -> NodeProc {
    let log = dir.0.join(format!("{id}.log"));
    let child = Command::new(gcounter())
        .args(["node", "--id", id, "--listen", &listen.to_string()])
        .arg("--stop-on-stdin-eof")
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + T;
    while TcpStream::connect(listen).is_err() {
        assert!(Instant::now() < deadline, "{id} never listened on {listen}");
        std::thread::sleep(Duration::from_millis(20));
    }
    NodeProc { child, log }
}

fn peer_args(dir: &Dir, peer: &str, at: SocketAddr) -> Vec<String> {
    vec![
        "--peer".into(),
        format!("{peer}={at}"),
        "--secret-file".into(),
        dir.secret().display().to_string(),
    ]
}

/// Reads `addr` until `ok` holds for its value, or panics after `T`.
fn read_until(addr: SocketAddr, ok: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + T;
    smol::block_on(async {
        let mut last = None;
        while Instant::now() < deadline {
            if let Ok(mut c) = Client::connect(&addr.to_string(), "checker").await {
                last = c.read(T).await.ok();
                if last.is_some_and(&ok) {
                    return last.unwrap();
                }
            }
            smol::Timer::after(Duration::from_millis(50)).await;
        }
        panic!("{addr} never read what was expected: last {last:?}")
    })
}

fn add(addr: SocketAddr, delta: u64) {
    smol::block_on(async {
        let mut c = Client::connect(&addr.to_string(), "c1").await.unwrap();
        c.add(delta, T).await.unwrap();
    })
}

fn log_mentions(proc: &NodeProc, needle: &str) {
    let deadline = Instant::now() + T;
    loop {
        let log = std::fs::read_to_string(&proc.log).unwrap_or_default();
        if log.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the log never says {needle:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Everything that went through one relayed connection, per direction.
#[derive(Default)]
struct Recording {
    from_dialer: Vec<u8>,
    from_acceptor: Vec<u8>,
}

/// Copies `from` into `to` and into `record` until either side closes.
fn pump(mut from: TcpStream, mut to: TcpStream, record: impl Fn(&[u8])) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        record(&buf[..n]);
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// A relay that forwards every connection made to `listener` to `target`
/// and records both directions of each.
fn recording_relay(listener: TcpListener, target: SocketAddr) -> Arc<Mutex<Vec<Recording>>> {
    let recordings: Arc<Mutex<Vec<Recording>>> = Arc::default();
    let all = recordings.clone();
    std::thread::spawn(move || {
        for dialer in listener.incoming() {
            let Ok(dialer) = dialer else { return };
            let Ok(acceptor) = TcpStream::connect(target) else {
                continue;
            };
            let i = {
                let mut all = all.lock().unwrap();
                all.push(Recording::default());
                all.len() - 1
            };
            // A test that fails while holding the lock poisons it; the
            // relay goes on recording for the one that reports it.
            let record = move |all: &Arc<Mutex<Vec<Recording>>>, b: &[u8], up: bool| {
                let mut all = all.lock().unwrap_or_else(|e| e.into_inner());
                let r = &mut all[i];
                if up {
                    r.from_dialer.extend_from_slice(b)
                } else {
                    r.from_acceptor.extend_from_slice(b)
                }
            };
            let (up, down) = (all.clone(), all.clone());
            let (d2, a2) = (dialer.try_clone().unwrap(), acceptor.try_clone().unwrap());
            std::thread::spawn(move || pump(dialer, acceptor, |b| record(&up, b, true)));
            std::thread::spawn(move || pump(a2, d2, |b| record(&down, b, false)));
        }
    });
    recordings
}

/// The first `n` lines of `bytes` and the rest.
fn split_lines(bytes: &[u8], n: usize) -> (String, &[u8]) {
    let mut at = 0;
    for _ in 0..n {
        match bytes[at..].iter().position(|&b| b == b'\n') {
            Some(i) => at += i + 1,
            None => return (String::from_utf8_lossy(bytes).into_owned(), &[]),
        }
    }
    (
        String::from_utf8_lossy(&bytes[..at]).into_owned(),
        &bytes[at..],
    )
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// n1 reaches n0 only through a relay that records every byte; adds on
/// both nodes (distinctive deltas) converge, so n1's gossip, which carries
/// every count by its key, went through the relay. Past the handshake's
/// two lines each way, none of it is in the clear. With sealing turned
/// off (the lines written as they are), this fails on the first needle.
#[test]
fn the_bytes_between_two_nodes_show_no_count_key_or_field_name() {
    let dir = Dir::new("sealed-links");
    let (a0, a1) = (free_addr(), free_addr());
    let relay = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_addr = relay.local_addr().unwrap();
    let recordings = recording_relay(relay, a0);
    let _n0 = node(&dir, "n0", a0, &peer_args(&dir, "n1", a1));
    let _n1 = node(&dir, "n1", a1, &peer_args(&dir, "n0", relay_addr));
    let (d0, d1) = (271_828, 314_159);
    add(a0, d0);
    add(a1, d1);
    let sum = d0 + d1;
    assert_eq!(read_until(a0, |v| v == sum), sum);
    assert_eq!(read_until(a1, |v| v == sum), sum);

    let recordings = recordings.lock().unwrap();
    assert!(
        !recordings.is_empty(),
        "n1 never dialed n0 through the relay"
    );
    let needles = [
        d0.to_string(),
        d1.to_string(),
        sum.to_string(),
        "\"n0\"".into(),
        "\"n1\"".into(),
        "counts".into(),
        "gossip".into(),
        "\"src\"".into(),
        "\"dest\"".into(),
        "\"body\"".into(),
        "\"type\"".into(),
        "msg_id".into(),
    ];
    let mut sealed = 0;
    for (i, r) in recordings.iter().enumerate() {
        let (hello, after_dialer) = split_lines(&r.from_dialer, 2);
        let (answer, after_acceptor) = split_lines(&r.from_acceptor, 2);
        assert!(
            hello.contains("peer_hello") && hello.contains("peer_proof"),
            "connection {i} did not open with the handshake: {hello:?}"
        );
        assert!(
            answer.contains("peer_proof_ok"),
            "connection {i}: {answer:?}"
        );
        for rest in [after_dialer, after_acceptor] {
            for needle in &needles {
                assert!(
                    !contains(rest, needle),
                    "connection {i} carries {needle} in the clear: {:?}",
                    String::from_utf8_lossy(rest)
                );
            }
        }
        sealed += after_dialer.len();
    }
    // n1's gossip to n0 (every 100 ms or so) crossed the relay.
    assert!(sealed > 0, "nothing crossed the relay past the handshake");
}

/// A process without the secret in the place of n1: n0 dials it, it
/// answers the hello with a made-up MAC, and gets nothing but n0's hello
/// (no count, no gossip) before n0 closes the connection. And dialing n0
/// with another cluster's secret gets no further than the handshake.
#[test]
fn a_process_without_the_secret_gets_nothing_from_a_node() {
    let dir = Dir::new("no-secret");
    let a0 = free_addr();
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let n0 = node(&dir, "n0", a0, &peer_args(&dir, "n1", fake_addr));
    add(a0, 271_828);

    let (mut from_n0, _) = fake.accept().unwrap();
    from_n0.set_read_timeout(Some(T)).unwrap();
    let mut hello = Vec::new();
    let mut byte = [0u8; 1];
    while from_n0.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        hello.push(byte[0]);
    }
    let hello = String::from_utf8(hello).unwrap();
    assert!(hello.contains("peer_hello"), "{hello}");
    let forged = format!(
        "{{\"src\":\"n1\",\"dest\":\"n0\",\"body\":{{\"type\":\"peer_hello_ok\",\"nonce\":\"{}\",\"mac\":\"{}\"}}}}\n",
        "ab".repeat(16),
        "cd".repeat(32)
    );
    from_n0.write_all(forged.as_bytes()).unwrap();
    // n0 closes without a byte more: no proof, no gossip.
    let mut rest = Vec::new();
    let _ = from_n0.read_to_end(&mut rest);
    assert_eq!(
        String::from_utf8_lossy(&rest),
        "",
        "n0 sent a process without the secret more than its hello"
    );
    log_mentions(&n0, "n1 did not prove it holds the cluster secret");

    // The other way round: a process that dials n0 with another secret is
    // closed after the handshake, and what it sends as n1 is not taken.
    let other = dir.0.join("other.secret");
    Secret::generate().unwrap().write(&other).unwrap();
    let out = Command::new(gcounter())
        .args(["client", "--node", &a0.to_string(), "--secret-file"])
        .arg(&other)
        .arg("heal")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(read_until(a0, |_| true), 271_828);
}

fn token_file(dir: &Path, name: &str, token: &str) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    writeln!(f, "{token}").unwrap();
    path
}

fn client(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(gcounter())
        .arg("client")
        .args(args)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

/// `--client-token-file`: a client without the token, or with another
/// one, is refused with one line naming the cause; with it, served. The
/// node's own peers and operator prove the secret instead.
#[test]
fn a_node_with_a_client_token_serves_only_clients_that_present_it() {
    let dir = Dir::new("client-token");
    let token = token_file(&dir.0, "client.token", "7f3e9c1a-the-token");
    let wrong = token_file(&dir.0, "wrong.token", "7f3e9c1a-the-tokem");
    let a0 = free_addr();
    let args = vec![
        "--client-token-file".into(),
        token.display().to_string(),
        "--secret-file".into(),
        dir.secret().display().to_string(),
    ];
    let _n0 = node(&dir, "n0", a0, &args);
    let n0 = a0.to_string();

    let (code, out, err) = client(&["--node", &n0, "add", "5"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        err,
        "error 10: this node requires a client token (gcounter client --client-token-file FILE)\n"
    );
    let wrong = wrong.display().to_string();
    let (code, out, err) = client(&["--node", &n0, "--client-token-file", &wrong, "add", "5"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        err,
        "gcounter: error 10 (not-supported): wrong client token\n"
    );

    let token = token.display().to_string();
    let (code, out, err) = client(&["--node", &n0, "--client-token-file", &token, "add", "5"]);
    assert_eq!((code, out.as_str()), (Some(0), "ok\n"), "{err}");
    let (code, out, err) = client(&["--node", &n0, "--client-token-file", &token, "read"]);
    assert_eq!((code, out.as_str()), (Some(0), "5\n"), "{err}");
    // The operator proves the secret, no token needed.
    let secret = dir.secret().display().to_string();
    let (code, out, err) = client(&["--node", &n0, "--secret-file", &secret, "heal"]);
    assert_eq!(code, Some(0), "{out}{err}");
}
