//! The g-counter test against a TCP cluster that the runner starts itself
//! (`gcounter test --transport tcp`).
//!
//! The same sans-IO workload, nemesis and checker as over stdio, moved by
//! the wall clock, but the network is real: a [`Cluster`] of `gcounter
//! node` processes and a `gcounter kv` on loopback, talking to each other
//! on their own sockets. The runner holds one TCP connection per workload
//! client to that client's node, writes each request on it and hands each
//! line read from it to the workload. The nemesis acts through the nodes'
//! control messages: a partition becomes [`Cluster::cut`], a heal
//! [`Cluster::heal`].
//!
//! What differs from the stdio runner, and why:
//!
//! - There is no added latency: the network is the loopback interface.
//! - Node-to-node and node-to-KV messages travel on sockets the runner
//!   does not see, so it counts client messages only (at its own end of
//!   each connection), and cannot count messages dropped by partitions:
//!   the results say so ([`NetObserved::ClientsOnly`]) rather than show
//!   numbers it does not have.
//! - A node's cut is two-way (it drops traffic to and from the peers it is
//!   cut off from), while Maelstrom's grudge is one-way (`dest` ignores
//!   `src`). The partitions Jepsen draws as clean groups are symmetric and
//!   come out the same; in a "majorities ring" a link that one side holds
//!   a grudge against is cut both ways, so the ring cuts a little more
//!   than Maelstrom's.
//!
//! A connection that breaks, a node (or the KV service) that exits, or a
//! line from a node that breaks the protocol ends the test with an error
//! naming the node.

use crate::testcore::{check_line, shown, BadLine};
use super::procs::MAX_LINE;
use super::run::{typed_reply, NetObserved, Progress, TestRun};
use crate::checker::check;
use crate::nemesis::{Nemesis, NemesisConfig, NemesisEvent, NemesisRecord};
use crate::stats::{NetTally, Stats};
use crate::workload::{node_ids, Step, Workload, WorkloadConfig};
use async_channel::{Receiver, Sender};
use gcounter_core::protocol::{parse_line, to_line};
use gcounter_core::{StrategyKind, Time};
use gcounter_transport_tcp::{Cluster, ClusterSpec};
use smol::future::FutureExt;
use smol::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use smol::net::TcpStream;
use smol::{Task, Timer};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Everything one test against a TCP cluster needs.
#[derive(Debug, Clone)]
pub struct TcpTestConfig {
    /// The `gcounter` binary the cluster's members run.
    pub program: PathBuf,
    pub strategy: StrategyKind,
    pub node_count: usize,
    /// Clients; client `i` talks to node `i mod node_count`, each on a
    /// connection of its own.
    pub concurrency: usize,
    pub workload: WorkloadConfig,
    pub nemesis: Option<NemesisConfig>,
    pub seed: u64,
    /// The cluster's directory: its members' logs and the nodes' state.
    pub cluster_dir: PathBuf,
    /// Where each member's log is linked (or copied) as `<id>.log` once
    /// the cluster has stopped.
    pub log_dir: PathBuf,
}

/// Why a test against a TCP cluster could not be judged.
#[derive(Debug)]
pub enum TcpTestError {
    /// The cluster did not start.
    Start(io::Error),
    /// A client could not connect to its node.
    Connect {
        node: String,
        client: String,
        error: io::Error,
    },
    /// A client's connection broke (the node stayed up).
    Broken {
        node: String,
        client: String,
        why: String,
    },
    /// A member of the cluster exited before the test ended.
    Exited { node: String, status: String },
    /// A node sent a line that breaks the protocol.
    BadLine(BadLine),
    /// A node sent a line over the 1 MiB limit.
    Oversized { node: String, len: usize },
    /// The nemesis could not cut or heal the cluster.
    Nemesis(String),
}

impl fmt::Display for TcpTestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpTestError::Start(e) => write!(f, "the TCP cluster did not start: {e}"),
            TcpTestError::Connect {
                node,
                client,
                error,
            } => write!(f, "client {client} cannot connect to node {node}: {error}"),
            TcpTestError::Broken { node, client, why } => write!(
                f,
                "the connection of client {client} to node {node} broke before the test ended \
                 ({why}); see its log"
            ),
            TcpTestError::Exited { node, status } => write!(
                f,
                "node {node} exited before the test ended ({status}); see its log"
            ),
            TcpTestError::BadLine(b) => write!(f, "{b}"),
            TcpTestError::Oversized { node, len } => write!(
                f,
                "node {node} sent a line of over {len} bytes, past the 1 MiB limit"
            ),
            TcpTestError::Nemesis(e) => write!(f, "the nemesis could not act: {e}"),
        }
    }
}

impl std::error::Error for TcpTestError {}

/// Starts the cluster, runs one test against it, stops it and links its
/// logs into `log_dir`. `progress` is called about every `every`.
pub fn run_tcp_test(
    cfg: &TcpTestConfig,
    every: Duration,
    progress: &mut dyn FnMut(&Progress),
) -> Result<TestRun, TcpTestError> {
    let start = Instant::now();
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    let mut spec = ClusterSpec::new(&cfg.program, &cfg.cluster_dir);
    spec.nodes = cfg.node_count;
    spec.strategy = cfg.strategy;
    spec.seed = rng.u64(..);
    let cluster = Cluster::start(spec);
    let result = match cluster {
        Ok(mut cluster) => {
            // One thread: the connections' readers run on this executor,
            // beside the runner, so a reply costs no wake-up of another
            // thread.
            let ex = smol::LocalExecutor::new();
            let runner = TcpRunner::new(cfg, rng, start);
            let result = smol::block_on(ex.run(runner.run(&ex, &mut cluster, every, progress)));
            cluster.stop();
            let mut ids = vec![cluster.kv().id.clone()];
            ids.extend(cluster.node_ids());
            link_logs(&cfg.cluster_dir, &cfg.log_dir, &ids);
            result
        }
        Err(e) => {
            let mut ids = vec![gcounter_core::KvKind::SeqKv.name().to_string()];
            ids.extend(node_ids(cfg.node_count));
            link_logs(&cfg.cluster_dir, &cfg.log_dir, &ids);
            Err(TcpTestError::Start(e))
        }
    };
    result.map(|mut run| {
        run.elapsed = start.elapsed();
        run
    })
}

/// Hard-links (or copies) `<from>/<id>.log` to `<to>/<id>.log` for each id
/// whose log exists.
fn link_logs(from: &Path, to: &Path, ids: &[String]) {
    if let Err(e) = std::fs::create_dir_all(to) {
        log::warn!("cannot create {}: {e}", to.display());
        return;
    }
    for id in ids {
        let name = format!("{id}.log");
        let (src, dest) = (from.join(&name), to.join(&name));
        if !src.exists() {
            continue;
        }
        let _ = std::fs::remove_file(&dest);
        if std::fs::hard_link(&src, &dest).is_err() {
            if let Err(e) = std::fs::copy(&src, &dest) {
                log::warn!("cannot copy {} to {}: {e}", src.display(), dest.display());
            }
        }
    }
}

/// Something a client's connection did.
#[derive(Debug)]
enum ConnEvent {
    /// A line, without its newline, and when it was read.
    Line {
        client: usize,
        line: Vec<u8>,
        at: Instant,
    },
    Oversized {
        client: usize,
        len: usize,
    },
    /// The connection ended (closed, reset, or cut mid-line).
    Ended {
        client: usize,
        why: String,
    },
}

/// Reads `stream` line by line until it ends, onto `events`.
async fn read_lines(client: usize, stream: TcpStream, events: Sender<ConnEvent>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        let event = match read {
            Err(e) => ConnEvent::Ended {
                client,
                why: e.to_string(),
            },
            Ok(0) => ConnEvent::Ended {
                client,
                why: "closed by the node".into(),
            },
            Ok(_) if line.last() == Some(&b'\n') => {
                line.pop();
                ConnEvent::Line {
                    client,
                    line,
                    at: Instant::now(),
                }
            }
            Ok(n) if n > MAX_LINE => ConnEvent::Oversized { client, len: n },
            Ok(_) => ConnEvent::Ended {
                client,
                why: format!("closed by the node in the middle of {}", shown(&line)),
            },
        };
        let last = !matches!(event, ConnEvent::Line { .. });
        if events.send(event).await.is_err() || last {
            return;
        }
    }
}

/// One workload client's connection.
#[derive(Debug)]
struct Conn {
    client: String,
    node: String,
    writer: TcpStream,
}

/// How often the runner looks for members that exited.
const REAP_EVERY: Duration = Duration::from_millis(200);

struct TcpRunner {
    start: Instant,
    /// When every client was connected: time zero of the workload.
    t0: Instant,
    workload: Workload,
    workload_wake: Option<Time>,
    nemesis: Option<Nemesis>,
    nemesis_log: Vec<NemesisRecord>,
    nemesis_now: String,
    conns: Vec<Conn>,
    by_client: BTreeMap<String, usize>,
    readers: Vec<Task<()>>,
    tally: NetTally,
    next_id: u64,
}

impl TcpRunner {
    fn new(cfg: &TcpTestConfig, mut rng: fastrand::Rng, start: Instant) -> Self {
        let servers = node_ids(cfg.node_count);
        let workload =
            Workload::with_concurrency(cfg.workload.clone(), &servers, cfg.concurrency, rng.fork());
        let nemesis = cfg
            .nemesis
            .clone()
            .map(|n| Nemesis::new(n, servers, cfg.workload.time_limit, rng.fork()));
        TcpRunner {
            start,
            t0: Instant::now(),
            workload,
            workload_wake: Some(Time::ZERO),
            nemesis,
            nemesis_log: Vec::new(),
            nemesis_now: "healed".into(),
            conns: Vec::new(),
            by_client: BTreeMap::new(),
            readers: Vec::new(),
            tally: NetTally::default(),
            next_id: 0,
        }
    }

    /// Time as the workload and nemesis count it: from when every client
    /// was connected.
    fn test_time(&self) -> Time {
        self.t0.elapsed()
    }

    async fn run(
        mut self,
        ex: &smol::LocalExecutor<'static>,
        cluster: &mut Cluster,
        every: Duration,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<TestRun, TcpTestError> {
        let (tx, rx) = async_channel::bounded(1024);
        self.connect(ex, cluster, &tx).await?;
        drop(tx);
        self.drive(cluster, rx, every, progress).await?;
        self.readers.clear();
        let history = self.workload.into_history();
        Ok(TestRun {
            check: check(&history),
            stats: Stats::compute(&history, &self.tally),
            history,
            nemesis: self.nemesis_log,
            dropped: 0,
            elapsed: self.start.elapsed(),
            net_observed: NetObserved::ClientsOnly,
        })
    }

    /// One connection per client to its node, each with a reader task.
    async fn connect(
        &mut self,
        ex: &smol::LocalExecutor<'static>,
        cluster: &Cluster,
        events: &Sender<ConnEvent>,
    ) -> Result<(), TcpTestError> {
        let clients: Vec<(String, String)> = self
            .workload
            .clients()
            .map(|(c, n)| (c.to_string(), n.to_string()))
            .collect();
        for (i, (client, node)) in clients.into_iter().enumerate() {
            let addr = match cluster.node(&node) {
                Some(member) => member.addr,
                None => {
                    return Err(TcpTestError::Connect {
                        node,
                        client,
                        error: io::Error::new(io::ErrorKind::NotFound, "no such node"),
                    })
                }
            };
            let stream = match TcpStream::connect(addr).await {
                Ok(stream) => stream,
                Err(error) => {
                    return Err(TcpTestError::Connect {
                        node,
                        client,
                        error,
                    })
                }
            };
            let _ = stream.set_nodelay(true);
            self.readers
                .push(ex.spawn(read_lines(i, stream.clone(), events.clone())));
            self.by_client.insert(client.clone(), i);
            self.conns.push(Conn {
                client,
                node,
                writer: stream,
            });
        }
        self.t0 = Instant::now();
        log::info!(
            "{} client(s) connected; the workload starts",
            self.conns.len()
        );
        Ok(())
    }

    async fn drive(
        &mut self,
        cluster: &mut Cluster,
        rx: Receiver<ConnEvent>,
        every: Duration,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(), TcpTestError> {
        let mut next_progress = Time::ZERO;
        let mut next_reap = Time::ZERO;
        loop {
            let t = self.test_time();
            self.step_nemesis(cluster, t).await?;
            if self.step_workload(cluster, t).await? {
                return Ok(());
            }
            let t = self.test_time();
            if t >= next_reap {
                if let Some((node, status)) = cluster.reap().into_iter().next() {
                    return Err(TcpTestError::Exited {
                        node,
                        status: status.to_string(),
                    });
                }
                next_reap = t + REAP_EVERY;
            }
            if t >= next_progress {
                progress(&self.progress());
                next_progress = t + every;
            }
            let wake = self.next_wake().min(next_progress).min(next_reap);
            let deadline = self.t0 + wake;
            let event = async { rx.recv().await.ok() }
                .or(async {
                    Timer::at(deadline).await;
                    None
                })
                .await;
            if let Some(event) = event {
                self.on_event(cluster, event).await?;
                while let Ok(event) = rx.try_recv() {
                    self.on_event(cluster, event).await?;
                }
            }
        }
    }

    fn next_wake(&self) -> Time {
        let mut wake = self.test_time() + Duration::from_millis(250);
        if let Some(at) = self.nemesis.as_ref().and_then(Nemesis::next_at) {
            wake = wake.min(at);
        }
        if let Some(at) = self.workload_wake {
            wake = wake.min(at);
        }
        wake
    }

    fn progress(&self) -> Progress {
        Progress::of(&self.workload, self.test_time(), &self.nemesis_now)
    }

    async fn step_nemesis(&mut self, cluster: &mut Cluster, t: Time) -> Result<(), TcpTestError> {
        let Some(nemesis) = self.nemesis.as_mut() else {
            return Ok(());
        };
        while let Some(event) = nemesis.poll(t) {
            self.nemesis_now = match &event {
                NemesisEvent::StartPartition { partition } => partition.to_string(),
                NemesisEvent::StopPartition => "healed".into(),
                _ => "healed".into(),
            };
            log::info!("{t:?}: nemesis: {}", self.nemesis_now);
            let done = match &event {
                // The grudge (receiver -> senders it ignores) as cuts: a
                // node cut off from a peer drops traffic both ways.
                NemesisEvent::StartPartition { partition } => {
                    cluster.cut(partition.grudge.clone()).await
                }
                NemesisEvent::StopPartition => cluster.heal().await,
                _ => Ok(()),
            };
            if let Err(e) = done {
                return Err(self.nemesis_failed(cluster, e.to_string()));
            }
            self.nemesis_log.push(NemesisRecord { time: t, event });
        }
        Ok(())
    }

    /// A member that exited explains a failed cut best.
    fn nemesis_failed(&self, cluster: &mut Cluster, error: String) -> TcpTestError {
        match cluster.reap().into_iter().next() {
            Some((node, status)) => TcpTestError::Exited {
                node,
                status: status.to_string(),
            },
            None => TcpTestError::Nemesis(error),
        }
    }

    /// Moves the workload on; true once it is done.
    async fn step_workload(
        &mut self,
        cluster: &mut Cluster,
        t: Time,
    ) -> Result<bool, TcpTestError> {
        loop {
            match self.workload.poll(t) {
                Step::Send(msg) => self.send(cluster, &msg).await?,
                Step::Heal => {
                    if let Some(n) = self.nemesis.as_mut() {
                        n.stop();
                    }
                    if self.nemesis_now != "healed" {
                        let event = NemesisEvent::StopPartition;
                        self.nemesis_log.push(NemesisRecord { time: t, event });
                    }
                    // Heal whatever the last cut was, even if the log says
                    // healed: it costs one control message per node.
                    if let Err(e) = cluster.heal().await {
                        return Err(self.nemesis_failed(cluster, e.to_string()));
                    }
                    self.nemesis_now = "healed".into();
                }
                Step::Wait(at) => {
                    self.workload_wake = at;
                    return Ok(false);
                }
                Step::Done => return Ok(true),
            }
        }
    }

    /// Writes a client's request on its connection.
    async fn send(
        &mut self,
        cluster: &mut Cluster,
        msg: &gcounter_core::Envelope,
    ) -> Result<(), TcpTestError> {
        let Some(&i) = self.by_client.get(&msg.src) else {
            log::warn!("no connection for client {}", msg.src);
            return Ok(());
        };
        let mut line = to_line(msg).into_bytes();
        line.push(b'\n');
        let id = self.next_id;
        self.next_id += 1;
        self.tally.sent(id, &msg.src, &msg.dest);
        let conn = &mut self.conns[i];
        let written = async {
            conn.writer.write_all(&line).await?;
            conn.writer.flush().await
        }
        .await;
        match written {
            // Loopback TCP delivers what was written unless the connection
            // breaks, which ends the test: a written request is received.
            Ok(()) => {
                self.tally.received(id, &msg.src, &msg.dest);
                Ok(())
            }
            Err(e) => Err(self.broken(cluster, i, e.to_string()).await),
        }
    }

    /// The error for a connection that broke: the node's exit if it
    /// exited (waiting a moment for it to be reaped), the break otherwise.
    async fn broken(&self, cluster: &mut Cluster, i: usize, why: String) -> TcpTestError {
        let conn = &self.conns[i];
        for _ in 0..20 {
            if let Some((node, status)) = cluster.reap().into_iter().next() {
                return TcpTestError::Exited {
                    node,
                    status: status.to_string(),
                };
            }
            Timer::after(Duration::from_millis(25)).await;
        }
        TcpTestError::Broken {
            node: conn.node.clone(),
            client: conn.client.clone(),
            why,
        }
    }

    async fn on_event(
        &mut self,
        cluster: &mut Cluster,
        event: ConnEvent,
    ) -> Result<(), TcpTestError> {
        match event {
            ConnEvent::Line { client, line, at } => {
                let conn = &self.conns[client];
                let msg = match parse_line(&line) {
                    Ok(msg) if msg.src == conn.node && msg.dest == conn.client => msg,
                    // Say what is wrong if the line breaks the protocol;
                    // otherwise it is a reply the workload cannot read.
                    _ => {
                        check_line(&conn.node, &line, |d| d == conn.client)
                            .map_err(TcpTestError::BadLine)?;
                        typed_reply(&conn.node, &conn.client, &line)
                    }
                };
                let (src, dest) = (conn.node.clone(), conn.client.clone());
                let id = self.next_id;
                self.next_id += 1;
                self.tally.sent(id, &src, &dest);
                self.tally.received(id, &src, &dest);
                let now = at.saturating_duration_since(self.t0);
                if !self.workload.on_reply(&msg, now) {
                    log::debug!("reply nobody waits for: {}", shown(&line));
                }
                Ok(())
            }
            ConnEvent::Oversized { client, len } => Err(TcpTestError::Oversized {
                node: self.conns[client].node.clone(),
                len,
            }),
            ConnEvent::Ended { client, why } => Err(self.broken(cluster, client, why).await),
        }
    }
}
