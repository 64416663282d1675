//! The TCP cluster: real `gcounter kv` and `gcounter node` processes on
//! loopback ports the system picks.
//!
//! Every cluster is a `gcounter_transport_tcp::Cluster`, whose `Drop` kills
//! its children; they also stop on their own when this process dies (their
//! standard input closes). Each test works in a directory of its own,
//! removed when the test passes and kept, with the members' logs, when it
//! fails.

use crate::common::gcounter;
use gcounter_core::{KvKind, StrategyKind};
use gcounter_transport_tcp::{Client, ClientError, Cluster, ClusterSpec};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

/// A directory for one test: removed if the test passes, kept otherwise.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("gcounter-e2e-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Declared after the cluster it belongs to, so the cluster (and its
/// processes) go first.
struct Setup {
    cluster: Cluster,
    _dir: TestDir,
}

fn cluster(name: &str, nodes: usize, strategy: StrategyKind, kv: KvKind, args: &[&str]) -> Setup {
    let dir = TestDir::new(name);
    let mut spec = ClusterSpec::new(gcounter(), &dir.0);
    spec.nodes = nodes;
    spec.strategy = strategy;
    spec.kv = kv;
    spec.seed = 7;
    spec.member_args = args.iter().map(|s| s.to_string()).collect();
    let cluster = Cluster::start(spec).unwrap_or_else(|e| panic!("cluster start: {e}"));
    Setup { cluster, _dir: dir }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    smol::block_on(f)
}

async fn sleep(d: Duration) {
    smol::Timer::after(d).await;
}

/// Reads every node until `ok` holds for all of them (each read through a
/// fresh connection), or panics with the last values after `within`.
fn converge(cluster: &Cluster, within: Duration, ok: impl Fn(u64) -> bool) -> Vec<u64> {
    converge_or(cluster, within, ok, String::new)
}

/// [`converge`], with more to say when it fails.
fn converge_or(
    cluster: &Cluster,
    within: Duration,
    ok: impl Fn(u64) -> bool,
    context: impl Fn() -> String,
) -> Vec<u64> {
    let deadline = Instant::now() + within;
    block_on(async {
        loop {
            let mut values = Vec::new();
            for id in cluster.node_ids() {
                let value = match cluster.client(&id, "checker").await {
                    Ok(mut c) => c.read(T).await.ok(),
                    Err(_) => None,
                };
                values.push(value);
            }
            if values.iter().all(|v| v.is_some_and(&ok)) {
                return values.into_iter().flatten().collect();
            }
            assert!(
                Instant::now() < deadline,
                "reads did not converge: {values:?} {}",
                context()
            );
            sleep(Duration::from_millis(100)).await;
        }
    })
}

fn log_path(cluster: &Cluster, id: &str) -> PathBuf {
    match cluster.node(id) {
        Some(m) => m.log.clone(),
        None => cluster.kv().log.clone(),
    }
}

fn log_of(cluster: &Cluster, id: &str) -> String {
    std::fs::read_to_string(log_path(cluster, id)).unwrap_or_default()
}

/// Waits until `id`'s log contains `needle`.
fn log_mentions(cluster: &Cluster, id: &str, needle: &str) {
    log_says(log_path(cluster, id), needle);
}

/// Waits until the log at `path` contains `needle`.
fn log_says(path: impl AsRef<Path>, needle: &str) {
    let path = path.as_ref();
    let deadline = Instant::now() + T;
    while !std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(needle)
    {
        assert!(
            Instant::now() < deadline,
            "{} never mentions {needle:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ----- a 3-node cluster per strategy ------------------------------------

fn adds_through_every_node_converge(strategy: StrategyKind, kv: KvKind) {
    let name = format!("converge-{strategy}-{kv}");
    let setup = cluster(&name, 3, strategy, kv, &[]);
    let c = &setup.cluster;
    let mut sum = 0;
    block_on(async {
        for (i, id) in c.node_ids().iter().enumerate() {
            let mut client = c.client(id, &format!("c{i}")).await.unwrap();
            for delta in [1, 2, 3] {
                client
                    .add(delta + i as u64, T)
                    .await
                    .unwrap_or_else(|e| panic!("add on {id}: {e}"));
                sum += delta + i as u64;
            }
        }
    });
    let values = converge(c, T, |v| v == sum);
    assert_eq!(values, vec![sum; 3]);
}

#[test]
fn gossip_cluster_converges() {
    adds_through_every_node_converge(StrategyKind::Gossip, KvKind::SeqKv);
}

#[test]
fn per_node_cluster_converges() {
    adds_through_every_node_converge(StrategyKind::PerNode, KvKind::SeqKv);
}

#[test]
fn cas_cluster_converges() {
    adds_through_every_node_converge(StrategyKind::Cas, KvKind::SeqKv);
}

/// `naive` loses updates only when adds overlap; one at a time against a
/// linearizable store it adds up.
#[test]
fn naive_cluster_converges_when_adds_do_not_overlap() {
    adds_through_every_node_converge(StrategyKind::Naive, KvKind::LinKv);
}

// ----- partitions ---------------------------------------------------------

fn adds_on_both_sides_of_a_partition(strategy: StrategyKind) {
    let mut setup = cluster(
        &format!("partition-{strategy}"),
        3,
        strategy,
        KvKind::SeqKv,
        &[],
    );
    let c = &mut setup.cluster;
    let groups = vec![
        vec!["n0".to_string()],
        vec!["n1".to_string(), "n2".to_string()],
    ];
    block_on(c.partition(&groups)).unwrap();
    let mut sum = 0;
    let (mut lone, mut many) = (0, 0);
    block_on(async {
        let mut a = c.client("n0", "c1").await.unwrap();
        let mut b = c.client("n2", "c2").await.unwrap();
        for round in 0..5u64 {
            // The KV strategies keep acknowledging adds throughout.
            a.add(1 + round, T)
                .await
                .unwrap_or_else(|e| panic!("add on n0 (cut off): {e}"));
            b.add(10 + round, T)
                .await
                .unwrap_or_else(|e| panic!("add on n2: {e}"));
            lone += 1 + round;
            many += 10 + round;
            sum += 11 + 2 * round;
            sleep(Duration::from_millis(50)).await;
        }
    });
    if strategy == StrategyKind::Gossip {
        // Several gossip rounds later, each side still sees only its own.
        std::thread::sleep(Duration::from_millis(1000));
        block_on(async {
            let seen = c.client("n0", "c1").await.unwrap().read(T).await.unwrap();
            assert_eq!(seen, lone, "n0 saw across the partition");
            let seen = c.client("n1", "c3").await.unwrap().read(T).await.unwrap();
            assert_eq!(seen, many, "n1 saw across the partition");
        });
    }
    block_on(c.heal()).unwrap();
    converge(c, T, |v| v == sum);
}

#[test]
fn gossip_converges_after_a_partition_heals() {
    adds_on_both_sides_of_a_partition(StrategyKind::Gossip);
}

#[test]
fn per_node_acknowledges_adds_through_a_partition() {
    adds_on_both_sides_of_a_partition(StrategyKind::PerNode);
}

#[test]
fn cas_acknowledges_adds_through_a_partition() {
    adds_on_both_sides_of_a_partition(StrategyKind::Cas);
}

// ----- kill -9 and restart -------------------------------------------------

#[derive(Debug, Default)]
struct Tally {
    acked: u64,
    /// Adds that may or may not have happened.
    unsure: u64,
    attempts: u32,
}

/// Adds through `addr` as fast as replies come until `until`,
/// reconnecting whenever the node goes away.
async fn add_until(addr: SocketAddr, id: String, until: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut client: Option<Client> = None;
    let mut n = 0u64;
    while Instant::now() < until {
        let conn = match &mut client {
            Some(conn) => conn,
            None => match Client::connect(&addr.to_string(), id.clone()).await {
                Ok(conn) => client.insert(conn),
                Err(_) => {
                    sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        n += 1;
        let delta = 1 + n % 4;
        tally.attempts += 1;
        match conn.add(delta, Duration::from_secs(2)).await {
            Ok(()) => tally.acked += delta,
            Err(e) if e.is_definite() => {}
            Err(_) => {
                tally.unsure += delta;
                client = None;
            }
        }
        sleep(Duration::from_millis(5)).await;
    }
    tally
}

fn survives_kill_9(strategy: StrategyKind) {
    let mut setup = cluster(&format!("kill-{strategy}"), 3, strategy, KvKind::SeqKv, &[]);
    let c = &mut setup.cluster;
    let addrs: Vec<SocketAddr> = c.nodes().iter().map(|m| m.addr).collect();
    let start = Instant::now();
    let until = start + Duration::from_millis(3000);
    let workers = addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| smol::spawn(add_until(*addr, format!("c{i}"), until)))
        .collect::<Vec<_>>();
    std::thread::sleep(Duration::from_millis(1000));
    c.kill("n1").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c.start_node("n1").unwrap();
    let tallies: Vec<Tally> = block_on(async {
        let mut tallies = Vec::new();
        for w in workers {
            tallies.push(w.await);
        }
        tallies
    });
    let acked: u64 = tallies.iter().map(|t| t.acked).sum();
    let unsure: u64 = tallies.iter().map(|t| t.unsure).sum();
    assert!(
        tallies.iter().all(|t| t.acked > 0),
        "some node acknowledged nothing: {tallies:?}"
    );
    // Every final read must count every acknowledged add, and nothing
    // beyond what may have happened.
    let context = || format!("(acknowledged {acked}, unsure {unsure}: {tallies:?})");
    let values = converge_or(
        c,
        Duration::from_secs(10),
        |v| v >= acked && v <= acked + unsure,
        context,
    );
    assert!(
        values.windows(2).all(|w| w[0] == w[1]),
        "nodes disagree: {values:?} (acknowledged {acked}, unsure {unsure}, {tallies:?})"
    );
}

#[test]
fn per_node_survives_kill_9() {
    survives_kill_9(StrategyKind::PerNode);
}

#[test]
fn cas_survives_kill_9() {
    survives_kill_9(StrategyKind::Cas);
}

#[test]
fn gossip_survives_kill_9() {
    survives_kill_9(StrategyKind::Gossip);
}

/// A restarted gossip node counts its new adds on top of its old count
/// (in the slot it stored, or a new one): they are neither lost to its old
/// count nor swallowed by the peers' maximum.
#[test]
fn a_restarted_gossip_node_counts_on_top_of_its_old_count() {
    let mut setup = cluster(
        "restart-gossip",
        2,
        StrategyKind::Gossip,
        KvKind::SeqKv,
        &[],
    );
    let c = &mut setup.cluster;
    block_on(async {
        let mut a = c.client("n0", "c1").await.unwrap();
        for _ in 0..5 {
            a.add(4, T).await.unwrap();
        }
    });
    converge(c, T, |v| v == 20);
    c.restart("n0").unwrap();
    block_on(async {
        let mut a = c.client("n0", "c1").await.unwrap();
        a.add(1, T).await.unwrap();
    });
    converge(c, T, |v| v == 21);
}

/// Issue 20, item 7: after `restart`, a node never reads lower than it
/// answered before, even when what it answered came from its peers and
/// they cannot reach it after the restart (it stays cut off).
#[test]
fn a_restarted_gossip_node_never_reads_lower_than_before() {
    let mut setup = cluster("restart-lower", 3, StrategyKind::Gossip, KvKind::SeqKv, &[]);
    let c = &mut setup.cluster;
    block_on(async {
        for id in ["n0", "n2"] {
            let mut a = c.client(id, "c1").await.unwrap();
            for _ in 0..4 {
                a.add(3, T).await.unwrap();
            }
        }
    });
    let before = converge(c, T, |v| v == 24)[1];
    let groups = vec![
        vec!["n1".to_string()],
        vec!["n0".to_string(), "n2".to_string()],
    ];
    block_on(c.partition(&groups)).unwrap();
    c.restart("n1").unwrap();
    let after = block_on(async { c.client("n1", "c2").await.unwrap().read(T).await.unwrap() });
    assert!(
        after >= before,
        "n1 read {after} after its restart, {before} before"
    );
}

/// Issue 20, item 7: a new cluster in a directory where an earlier one
/// left its nodes' state starts a new counter, and says so (`gcounter
/// cluster` prints "starting over" with the nodes whose state it removed).
#[test]
fn a_new_cluster_in_an_old_clusters_directory_says_it_starts_over() {
    let dir = TestDir::new("start-over");
    let spec = || {
        let mut spec = ClusterSpec::new(gcounter(), &dir.0);
        spec.nodes = 2;
        spec.strategy = StrategyKind::Gossip;
        spec
    };
    let first = Cluster::start(spec()).unwrap();
    assert!(first.started_over().is_empty());
    block_on(async {
        first
            .client("n0", "c1")
            .await
            .unwrap()
            .add(4, T)
            .await
            .unwrap()
    });
    drop(first);
    let second = Cluster::start(spec()).unwrap();
    assert_eq!(second.started_over(), ["n0".to_string()]);
    assert_eq!(converge(&second, T, |v| v == 0), [0, 0]);
}

/// A node started again comes back under the cut it was under.
#[test]
fn a_restarted_node_stays_partitioned_until_healed() {
    let mut setup = cluster("restart-cut", 2, StrategyKind::Gossip, KvKind::SeqKv, &[]);
    let c = &mut setup.cluster;
    let groups = vec![vec!["n0".to_string()], vec!["n1".to_string()]];
    block_on(c.partition(&groups)).unwrap();
    c.restart("n1").unwrap();
    block_on(async {
        c.client("n1", "c1").await.unwrap().add(3, T).await.unwrap();
        sleep(Duration::from_millis(1000)).await;
        let seen = c.client("n0", "c2").await.unwrap().read(T).await.unwrap();
        assert_eq!(seen, 0, "n0 saw n1's add across the partition");
    });
    block_on(c.heal()).unwrap();
    converge(c, T, |v| v == 3);
}

// ----- bad input, on a node and on the KV service ----------------------

/// A one-node cluster: its node and its KV service are both under test.
fn single(name: &str, args: &[&str]) -> Setup {
    cluster(name, 1, StrategyKind::Gossip, KvKind::SeqKv, args)
}

/// Proves a server still answers: a read on the node, a KV read on the
/// service (any reply will do).
fn still_serves(c: &Cluster, addr: SocketAddr) {
    block_on(async {
        let mut client = Client::connect(&addr.to_string(), "c9").await.unwrap();
        if addr == c.kv().addr {
            let key = vec![("key", "k".into())];
            client = client.with_dest("seq-kv");
            client.request("read", key, T).await.unwrap();
        } else {
            client.read(T).await.unwrap();
        }
    });
}

/// Whether the server closed `stream` within `within` (reading until EOF
/// or an error).
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

fn servers(c: &Cluster) -> Vec<(String, SocketAddr)> {
    vec![
        ("n0".into(), c.nodes()[0].addr),
        (c.kv().id.clone(), c.kv().addr),
    ]
}

#[test]
fn a_line_longer_than_1_mib_closes_only_its_connection() {
    let setup = single("long-line", &[]);
    let c = &setup.cluster;
    for (id, addr) in servers(c) {
        let mut bystander = Client::connect_blocking(addr);
        let mut bad = TcpStream::connect(addr).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..(2 * 1024 * 1024 / chunk.len()) {
            if bad.write_all(&chunk).is_err() {
                break; // already closed: that is the point
            }
        }
        assert!(
            closed_by_server(&mut bad, T),
            "{id} kept a connection sending a 2 MiB line"
        );
        log_mentions(c, &id, "line longer than 1048576 bytes");
        bystander.roundtrip(c, addr);
        still_serves(c, addr);
    }
}

#[test]
fn invalid_json_is_answered_or_dropped_and_the_connection_stays() {
    let setup = single("invalid-json", &[]);
    let c = &setup.cluster;
    for (id, addr) in servers(c) {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(T)).unwrap();
        let bad = format!(
            "not json at all\n\u{1}\u{2}\n{{\"src\":\"c1\",\"dest\":\"{id}\",\"body\":{{\"type\":\"add\",\"msg_id\":5,\"delta\":\"x\"}}}}\n"
        );
        conn.write_all(bad.as_bytes()).unwrap();
        let reply = read_reply(&mut conn);
        assert!(
            reply.contains("\"in_reply_to\":5") && reply.contains("\"code\":12"),
            "{id}: {reply}"
        );
        // The same connection still works.
        let key = if id == "n0" { "" } else { ",\"key\":\"k\"" };
        let ok = format!("{{\"src\":\"c1\",\"dest\":\"{id}\",\"body\":{{\"type\":\"read\",\"msg_id\":6{key}}}}}\n");
        conn.write_all(ok.as_bytes()).unwrap();
        let reply = read_reply(&mut conn);
        assert!(reply.contains("\"in_reply_to\":6"), "{id}: {reply}");
        log_mentions(c, &id, "not JSON");
        still_serves(c, addr);
    }
}

fn read_reply(conn: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while conn.read(&mut byte).map(|n| n == 1).unwrap_or(false) && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

#[test]
fn an_idle_connection_is_closed_and_harms_no_one() {
    let setup = single("idle", &["--idle-timeout", "1"]);
    let c = &setup.cluster;
    for (id, addr) in servers(c) {
        let mut idle = TcpStream::connect(addr).unwrap();
        let mut busy = Client::connect_blocking(addr);
        let started = Instant::now();
        // A connection that keeps talking is not idle.
        while started.elapsed() < Duration::from_millis(1500) {
            busy.roundtrip(c, addr);
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            closed_by_server(&mut idle, T),
            "{id} kept an idle connection"
        );
        busy.roundtrip(c, addr);
        log_mentions(c, &id, "closed as idle");
    }
}

#[test]
fn thousands_of_connections_do_not_lock_out_others() {
    let setup = single("many", &["--max-connections", "100"]);
    let c = &setup.cluster;
    for (id, addr) in servers(c) {
        let mut flood = Vec::new();
        for _ in 0..2000 {
            match TcpStream::connect(addr) {
                Ok(s) => flood.push(s),
                // Out of file descriptors here: enough of a flood.
                Err(_) => break,
            }
        }
        assert!(
            flood.len() >= 500,
            "could open only {} connections",
            flood.len()
        );
        // Newcomers get in (the quietest connections make room)...
        still_serves(c, addr);
        // ... and the server holds no more than its limit, plus a few
        // descriptors of its own.
        let pid = if id == "n0" {
            c.nodes()[0].pid()
        } else {
            c.kv().pid()
        };
        if let Some(pid) = pid.filter(|p| Path::new(&format!("/proc/{p}/fd")).exists()) {
            let open = || {
                std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .map(|d| d.count())
                    .unwrap_or(0)
            };
            let deadline = Instant::now() + T;
            while open() > 120 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(open() <= 120, "{id} holds {} file descriptors", open());
        }
        log_mentions(c, &id, "the limit is 100");
        drop(flood);
        still_serves(c, addr);
    }
}

#[test]
fn a_peer_vanishing_mid_line_harms_no_one() {
    let setup = cluster("mid-line", 2, StrategyKind::Gossip, KvKind::SeqKv, &[]);
    let c = &setup.cluster;
    let n0 = c.nodes()[0].addr;
    {
        // A client (only a peer that proved the cluster secret may speak as
        // one): one whole add, then half of the next.
        let mut fake = TcpStream::connect(n0).unwrap();
        fake.write_all(b"{\"src\":\"c9\",\"dest\":\"n0\",\"body\":{\"type\":\"add\",\"msg_id\":1,\"delta\":5}}\n")
            .unwrap();
        // Its reply taken first: one left unread would make the close a
        // reset, not the end of a stream.
        fake.set_read_timeout(Some(T)).unwrap();
        assert!(read_reply(&mut fake).contains("add_ok"));
        fake.write_all(
            b"{\"src\":\"c9\",\"dest\":\"n0\",\"body\":{\"type\":\"add\",\"msg_id\":2,\"delta\":7",
        )
        .unwrap();
        // ... and vanishes.
    }
    log_mentions(c, "n0", "in the middle of a line");
    // The whole line counted, the half line did not; the real n1 is fine.
    block_on(async {
        let mut b = c.client("n1", "c2").await.unwrap();
        b.add(1, T).await.unwrap();
    });
    converge(c, T, |v| v == 6);
    // The KV service too.
    let kv = c.kv().addr;
    {
        let mut fake = TcpStream::connect(kv).unwrap();
        fake.write_all(b"{\"src\":\"n1\",\"dest\":\"seq-kv\",\"body\":{\"type\":\"write\",\"msg_id\":1,\"key\":\"k\",\"val").unwrap();
    }
    log_mentions(c, "seq-kv", "in the middle of a line");
    still_serves(c, kv);
}

/// A blocking client for the bad-input tests: one connection that must
/// stay usable while others misbehave.
trait Blocking {
    fn connect_blocking(addr: SocketAddr) -> Self;
    fn roundtrip(&mut self, c: &Cluster, addr: SocketAddr);
}

impl Blocking for Client {
    fn connect_blocking(addr: SocketAddr) -> Client {
        block_on(Client::connect(&addr.to_string(), "bystander")).unwrap()
    }

    fn roundtrip(&mut self, c: &Cluster, addr: SocketAddr) {
        let result = block_on(async {
            if addr == c.kv().addr {
                let reply = self.request("read", vec![("key", "k".into())], T).await?;
                Ok::<_, ClientError>(reply.line)
            } else {
                self.read(T).await.map(|v| v.to_string())
            }
        });
        result.unwrap_or_else(|e| panic!("the bystander on {addr} was harmed: {e}"));
    }
}

// ----- the commands ------------------------------------------------------

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(gcounter()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_client_command_prints_the_reply_and_says_how_it_went() {
    let setup = cluster("client", 2, StrategyKind::Gossip, KvKind::SeqKv, &[]);
    let c = &setup.cluster;
    let n0 = c.nodes()[0].addr.to_string();
    let (code, out, _) = run(&["client", "--node", &n0, "--id", "c1", "--json", "add", "3"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(
            "{\"src\":\"n0\",\"dest\":\"c1\",\"body\":{\"type\":\"add_ok\",\"in_reply_to\":1"
        ),
        "{out}"
    );
    // Plain by default: a read prints its value, anything else `ok`.
    let (code, out, _) = run(&["client", "--node", &n0, "read"]);
    assert_eq!((code, out.as_str()), (0, "3\n"));
    let (code, out, _) = run(&["client", "--node", &n0, "--json", "read"]);
    assert_eq!(code, 0);
    assert!(out.contains("\"value\":3"), "{out}");
    let secret = c.secret_file();
    let ctl = [
        "client",
        "--node",
        &n0,
        "--secret-file",
        secret.to_str().unwrap(),
    ];
    let (code, out, _) = run(&[&ctl[..], &["partition", "n1"]].concat());
    assert_eq!((code, out.as_str()), (0, "ok\n"));
    let (code, out, _) = run(&[&ctl[..], &["--json", "heal"]].concat());
    assert_eq!((code, out.contains("heal_ok")), (0, true), "{out}");
    // An error reply: exit 1, said on stderr (the reply line with --json).
    let (code, _, err) = run(&[&ctl[..], &["partition", "n7"]].concat());
    assert_eq!((code, err.starts_with("error 12:")), (1, true), "{err}");
    let (code, out, _) = run(&[&ctl[..], &["--json", "partition", "n7"]].concat());
    assert_eq!((code, out.contains("\"code\":12")), (1, true), "{out}");
    // A negative delta is named as such (issue 20, item 6), not taken for
    // a flag.
    let (code, _, err) = run(&["client", "--node", &n0, "add", "-3"]);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("-3 is negative: a g-counter only grows"),
        "{err}"
    );
    // Nobody there: exit 3.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (code, _, err) = run(&["client", "--node", &nobody, "read"]);
    assert_eq!(code, 3, "{err}");
    // Somebody there who never answers: exit 3 after the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let (code, _, err) = run(&["client", "--node", &silent_addr, "--timeout", "0.3", "read"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no reply"), "{err}");
}

#[test]
fn the_cluster_command_serves_restarts_and_stops_every_child() {
    let dir = TestDir::new("cluster-command");
    let d = dir.0.to_str().unwrap();
    let mut child = Command::new(gcounter())
        .args([
            "cluster",
            "--node-count",
            "2",
            "--base-port",
            "0",
            "--gossip-interval",
            "1500",
            "--dir",
            d,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
    // The table ends with the control line.
    let mut table = String::new();
    let mut byte = [0u8; 1];
    while !table.lines().any(|l| l.starts_with("control")) {
        assert_eq!(
            stdout.read(&mut byte).unwrap(),
            1,
            "the cluster exited: {table}"
        );
        table.push(byte[0] as char);
    }
    let row = |id: &str| -> Vec<String> {
        let line = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap();
        line.split_whitespace().map(str::to_owned).collect()
    };
    let n0 = row("n0")[1].clone();
    let n1 = row("n1")[1].clone();
    assert!(Path::new(&row("n1")[3]).exists(), "{table}");
    // --gossip-interval reaches every node.
    for id in ["n0", "n1"] {
        log_says(
            &row(id)[3],
            "strategy gossip (holding changes up to 1500 ms)",
        );
    }

    assert_eq!(run(&["client", "--node", &n0, "add", "2"]).0, 0);
    let (code, out, err) = run(&["cluster", "restart", "n1", "--dir", d]);
    assert_eq!(code, 0, "{out}{err}");
    // Plain words, not the control reply's JSON (issue 20, item 6).
    assert_eq!(out.trim(), "n1 restarted", "{out}");
    // ID ADDRESS RUNNING PID LOG
    let (code, status, _) = run(&["cluster", "status", "--dir", d]);
    assert_eq!(code, 0);
    let pids: Vec<String> = status
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap().to_owned())
        .collect();
    assert_eq!(pids.len(), 3, "{status}");
    assert!(
        status.lines().skip(1).all(|l| l.contains(" true ")),
        "{status}"
    );
    assert!(!pids.contains(&row("n1")[2]), "n1 kept its pid: {status}");
    // cluster.json follows the restart: n1's new pid, as status shows it.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("cluster.json")).unwrap())
            .unwrap();
    let recorded = json["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "n1")
        .map(|m| m["pid"].to_string())
        .unwrap();
    assert_eq!(recorded, pids[2], "cluster.json: {json}; status: {status}");
    // A node by its id, in the cluster of --dir.
    assert_eq!(
        run(&["client", "--node", "n1", "--dir", d, "add", "5"]).0,
        0
    );
    let deadline = Instant::now() + T;
    loop {
        let (_, out, _) = run(&["client", "--node", &n1, "read"]);
        if out.trim() == "7" {
            break;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, _, err) = run(&["cluster", "restart", "n9", "--dir", d]);
    assert_eq!(code, 1, "{err}");

    // SIGTERM: the cluster stops every child and exits 0.
    let pid = proc.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let mut proc = proc;
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(status) = proc.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the cluster did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(&pid),
            "member {pid} still runs"
        );
    }
    assert!(!dir.0.join("cluster.json").exists());
}

/// A process that exited but was not yet reaped (its parent is gone, and
/// PID 1 in a container may be slow to reap) no longer runs.
fn is_zombie(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

// ----- one directory per cluster ----------------------------------------

#[test]
fn a_second_cluster_in_a_running_clusters_directory_is_refused_and_cleans_nothing() {
    let setup = cluster("dir-in-use", 1, StrategyKind::Gossip, KvKind::SeqKv, &[]);
    let c = &setup.cluster;
    let dir = c.spec().dir.clone();
    block_on(async {
        let mut client = c.client("n0", "c1").await.unwrap();
        client.add(2, T).await.unwrap();
    });
    let state = gcounter_transport_tcp::state_path(&dir, "n0");
    assert!(state.exists(), "no {}", state.display());

    // Through the API, as a test runner would.
    let mut spec = ClusterSpec::new(gcounter(), &dir);
    spec.nodes = 1;
    let err = Cluster::start(spec).expect_err("a second cluster in the same directory");
    assert!(err.to_string().contains("in use"), "{err}");
    // Through the command, as a person would.
    let (code, _, err) = run(&[
        "cluster",
        "--base-port",
        "0",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("in use by a running cluster"), "{err}");

    assert!(state.exists(), "the first cluster's state file was removed");
    assert_eq!(converge(c, T, |v| v == 2), [2]);
}

// ----- peers prove they belong --------------------------------------------

#[test]
fn a_forged_gossip_from_an_outsider_is_refused_and_changes_nothing() {
    let mut setup = cluster("forged-gossip", 2, StrategyKind::Gossip, KvKind::SeqKv, &[]);
    let c = &mut setup.cluster;
    let n0 = c.nodes()[0].addr;
    // The peers found each other through the handshake: an add converges.
    block_on(async { c.client("n1", "c1").await.unwrap().add(3, T).await.unwrap() });
    assert_eq!(converge(c, T, |v| v == 3), [3, 3]);

    // An outsider speaking as n1, with counts that fit (the core's own
    // overflow check would let them through).
    let mut outsider = TcpStream::connect(n0).unwrap();
    let forged = "{\"src\":\"n1\",\"dest\":\"n0\",\"body\":{\"type\":\"gossip\",\
                  \"counts\":{\"n0\":1000000000000,\"n1\":1000000000000}}}\n";
    // A read behind it on the same connection: had the gossip been taken,
    // its reply would show it.
    let read = "{\"src\":\"c9\",\"dest\":\"n0\",\"body\":{\"type\":\"read\",\"msg_id\":1}}\n";
    let _ = outsider.write_all(format!("{forged}{read}").as_bytes());
    outsider.set_read_timeout(Some(T)).unwrap();
    let reply = read_reply(&mut outsider);
    assert_eq!(reply, "", "n0 took the forged gossip");
    assert!(closed_by_server(&mut outsider, T), "n0 kept the forger");
    log_mentions(c, "n0", "without proving it holds the cluster secret");
    // Nor may a stranger cut links.
    let mut stranger = TcpStream::connect(n0).unwrap();
    stranger.set_read_timeout(Some(T)).unwrap();
    let cut = "{\"src\":\"c9\",\"dest\":\"n0\",\"body\":{\"type\":\"partition\",\"msg_id\":1,\"peers\":[\"n1\"]}}\n";
    stranger.write_all(cut.as_bytes()).unwrap();
    let reply = read_reply(&mut stranger);
    assert!(reply.contains("\"code\":10"), "{reply}");
    // Nor pass the handshake with another cluster's secret.
    let other = std::env::temp_dir().join(format!("gcounter-e2e-other-{}", std::process::id()));
    gcounter_transport_tcp::Secret::generate()
        .unwrap()
        .write(&other)
        .unwrap();
    let (code, _, err) = run(&[
        "client",
        "--node",
        &n0.to_string(),
        "--secret-file",
        other.to_str().unwrap(),
        "heal",
    ]);
    let _ = std::fs::remove_file(&other);
    assert_eq!(code, 3, "{err}");

    assert_eq!(converge(c, T, |v| v == 3), [3, 3]);
    // And the cluster's own secret still works for its operator.
    let secret = c.secret_file();
    let (code, out, err) = run(&[
        "client",
        "--node",
        &n0.to_string(),
        "--secret-file",
        secret.to_str().unwrap(),
        "partition",
        "n1",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Issue 24, item 1: a process without the secret takes a down peer's
/// port and, when n0 (or n1) dials "n2", relays its handshake to the other
/// node and the answers back. Each MAC names both ends, so the dialer sees
/// that n1 answered where it dialed n2 (and n1 would see a proof meant for
/// n2): the relay never gets a `peer_proof_ok`, and its forged gossip "as
/// n0" is refused. Before the fix, n1 answered `peer_proof_ok`.
#[test]
fn a_relay_without_the_secret_cannot_pass_as_another_peer() {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    let mut setup = cluster("relay", 3, StrategyKind::Gossip, KvKind::SeqKv, &[]);
    let c = &mut setup.cluster;
    block_on(async { c.client("n0", "c1").await.unwrap().add(6, T).await.unwrap() });
    assert_eq!(converge(c, T, |v| v == 6), [6, 6, 6]);
    let n2 = c.node("n2").unwrap().addr;
    c.kill("n2").unwrap();
    let deadline = Instant::now() + T;
    let listener = loop {
        match TcpListener::bind(n2) {
            Ok(l) => break l,
            Err(e) => {
                assert!(Instant::now() < deadline, "n2's port stays taken: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    // n0 and n1 both dial "n2" again within their backoff (at most 2 s):
    // whichever comes first is relayed to the other.
    let (from_dialer, _) = listener.accept().unwrap();
    from_dialer.set_read_timeout(Some(T)).unwrap();
    let mut dialer_lines = BufReader::new(from_dialer.try_clone().unwrap());
    let mut to_dialer = from_dialer;
    let line = |r: &mut BufReader<TcpStream>| {
        let mut l = String::new();
        let _ = r.read_line(&mut l);
        l
    };
    let hello = line(&mut dialer_lines);
    assert!(hello.contains("peer_hello"), "the dialer sent {hello:?}");
    let (dialer, other) = if hello.contains("\"src\":\"n0\"") {
        ("n0", "n1")
    } else {
        ("n1", "n0")
    };
    let mut to_other = TcpStream::connect(c.node(other).unwrap().addr).unwrap();
    to_other.set_read_timeout(Some(T)).unwrap();
    let mut other_lines = BufReader::new(to_other.try_clone().unwrap());
    // Readdressed, so that the other node does not refuse a hello meant
    // for n2.
    let hello = hello.replace("\"dest\":\"n2\"", &format!("\"dest\":\"{other}\""));
    to_other.write_all(hello.as_bytes()).unwrap();
    let hello_ok = line(&mut other_lines);
    let _ = to_dialer.write_all(hello_ok.as_bytes());
    let proof = line(&mut dialer_lines);
    let _ = to_other.write_all(proof.as_bytes());
    let proof_ok = line(&mut other_lines);
    assert!(
        hello_ok.contains("peer_hello_ok"),
        "{other} answered {hello_ok:?}"
    );
    log_mentions(c, dialer, &format!("{other} answered where we dialed n2"));
    assert!(
        !proof_ok.contains("peer_proof_ok"),
        "{other} took a relayed handshake as {dialer}'s: {hello_ok:?} {proof:?} {proof_ok:?}"
    );
    // Whatever the relay did, its connection speaks as nobody.
    let forged = format!(
        "{{\"src\":\"{dialer}\",\"dest\":\"{other}\",\"body\":{{\"type\":\"gossip\",\
         \"counts\":{{\"{dialer}\":1000000000000}}}}}}\n"
    );
    let _ = to_other.write_all(forged.as_bytes());
    drop((to_dialer, to_other, listener));
    std::thread::sleep(Duration::from_millis(300));
    let values = block_on(async {
        let mut values = Vec::new();
        for id in ["n0", "n1"] {
            values.push(c.client(id, "c2").await.unwrap().read(T).await.unwrap());
        }
        values
    });
    assert_eq!(values, [6, 6], "the relay's forged gossip was taken");
}

// ----- back-pressure: a burst of replies is not a client that does not read

/// Sends `n` adds of 1 on one connection as fast as it can, while reading
/// the replies as they come; the distinct requests answered, by reply
/// type.
fn pipeline_adds(
    addr: SocketAddr,
    n: u64,
    within: Duration,
) -> std::collections::BTreeMap<String, u64> {
    let stream = TcpStream::connect(addr).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let mut batch = String::new();
        for id in 1..=n {
            batch.push_str(&format!(
                "{{\"src\":\"p1\",\"dest\":\"n0\",\"body\":{{\"type\":\"add\",\"msg_id\":{id},\"delta\":1}}}}\n"
            ));
            if id % 500 == 0 || id == n {
                if writer.write_all(batch.as_bytes()).is_err() {
                    return;
                }
                batch.clear();
            }
        }
    });
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut acked = std::collections::BTreeSet::new();
    let mut types = std::collections::BTreeMap::new();
    let deadline = Instant::now() + within;
    let mut line = String::new();
    while (acked.len() as u64) < n && Instant::now() < deadline {
        match std::io::BufRead::read_line(&mut reader, &mut line) {
            Ok(0) => break, // closed by the node
            Ok(_) => {
                if !line.ends_with('\n') {
                    continue; // the rest of it is still coming
                }
                let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
                if acked.insert(reply["body"]["in_reply_to"].as_u64().unwrap()) {
                    let ty = match reply["body"]["code"].as_u64() {
                        Some(code) => format!("error {code}"),
                        None => reply["body"]["type"].as_str().unwrap().to_owned(),
                    };
                    *types.entry(ty).or_insert(0) += 1;
                }
                line.clear();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = sending.join();
    types
}

fn a_pipelining_client_gets_every_acknowledgement(strategy: StrategyKind) {
    let setup = cluster(
        &format!("pipeline-{strategy}"),
        2,
        strategy,
        KvKind::SeqKv,
        &[],
    );
    let c = &setup.cluster;
    let n = 20_000;
    let started = Instant::now();
    let replies = pipeline_adds(c.nodes()[0].addr, n, Duration::from_secs(120));
    eprintln!(
        "{n} pipelined adds under {strategy}: {replies:?} in {:?}",
        started.elapsed()
    );
    let expected = std::collections::BTreeMap::from([("add_ok".to_owned(), n)]);
    assert_eq!(replies, expected, "replies to {n} pipelined adds");
    assert!(!log_of(c, "n0").contains("not reading its replies"));
}

#[test]
fn a_pipelining_client_gets_every_acknowledgement_under_per_node() {
    a_pipelining_client_gets_every_acknowledgement(StrategyKind::PerNode);
}

#[test]
fn a_pipelining_client_gets_every_acknowledgement_under_cas() {
    a_pipelining_client_gets_every_acknowledgement(StrategyKind::Cas);
}

#[test]
fn a_client_that_never_reads_its_replies_is_still_cut_off() {
    let setup = single("never-reads", &["--idle-timeout", "2"]);
    let c = &setup.cluster;
    let addr = c.nodes()[0].addr;
    let mut deaf = TcpStream::connect(addr).unwrap();
    // Far more replies than the socket buffers on both sides hold.
    let sending = std::thread::spawn(move || {
        let mut batch = String::new();
        for id in 1..=400_000u64 {
            batch.push_str(&format!(
                "{{\"src\":\"d1\",\"dest\":\"n0\",\"body\":{{\"type\":\"read\",\"msg_id\":{id}}}}}\n"
            ));
            if id % 1000 == 0 && deaf.write_all(batch.as_bytes()).is_err() {
                return true; // cut off
            }
            if id % 1000 == 0 {
                batch.clear();
            }
        }
        false
    });
    // Polled, with a bound: how long the node takes to fill the socket
    // buffers depends on the machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sending.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the deaf client is still connected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        sending.join().unwrap(),
        "all sent: the node never pushed back"
    );
    log_mentions(c, "n0", "not reading its replies");
    still_serves(c, addr);
}
