//! The g-counter test against a TCP cluster that the runner starts itself
//! (`gcounter test --transport tcp`): a driver of the [test
//! core](crate::testcore).
//!
//! The network is real: a [`Cluster`] of `gcounter node` processes and a
//! `gcounter kv` on loopback, talking to each other on their own sockets.
//! The driver holds one TCP connection per workload client to that
//! client's node, writes each request the core delivers on it and hands
//! the core each line read from it. The nemesis acts through the cluster:
//! a partition becomes the nodes' control messages ([`Cluster::cut`]), a
//! kill [`Cluster::kill`] and a fresh start [`Cluster::start_node`] (the
//! node keeps its state directory, and its clients connect again), a pause
//! [`Cluster::pause`] and [`Cluster::resume`].
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
//! With `--kv etcd` the cluster starts three etcd members instead of
//! `gcounter kv` (or uses a running etcd) and the nodes keep the counter
//! there; the nemesis never touches etcd.
//!
//! A connection that breaks, a node (or the KV service, or an etcd member)
//! that exits unless the nemesis killed it, or a line from a node that
//! breaks the protocol ends the test with an error naming the node.

use super::procs::MAX_LINE;
use super::run::{Pace, TestRun};
use crate::history_file::HistoryFile;
use crate::nemesis::NemesisConfig;
use crate::testcore::{
    shown, CoreConfig, CoreError, FaultAction, Input, NetObserved, Output, Progress, TestCore,
};
use crate::workload::{node_ids, WorkloadConfig};
use async_channel::{Receiver, Sender};
use gcounter_core::{KvKind, StrategyKind};
use gcounter_transport_tcp::{Cluster, ClusterSpec, EtcdBackend};
use smol::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use smol::net::TcpStream;
use smol::{Task, Timer};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// etcdctl's credential flags, for every command that reaches etcd
/// (`gcounter node`, `cluster` and `test`): see
/// [`gcounter_transport_tcp::etcd::creds`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EtcdCredArgs {
    /// etcd's CA certificate (PEM), for https:// endpoints, as etcdctl --cacert
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// A client certificate (PEM) for etcd's --client-cert-auth, with --key
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// etcd user to log in as; the password comes from --password-file or GCOUNTER_ETCD_PASSWORD, never the command line
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// A file whose first line is the --user's password
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
}

impl EtcdCredArgs {
    pub fn creds(&self) -> gcounter_transport_tcp::EtcdCreds {
        gcounter_transport_tcp::EtcdCreds {
            cacert: self.cacert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            user: self.user.clone(),
            password_file: self.password_file.clone(),
        }
    }
}

/// Everything one test against a TCP cluster needs.
#[derive(Debug, Clone)]
pub struct TcpTestConfig {
    /// The `gcounter` binary the cluster's members run.
    pub program: PathBuf,
    pub strategy: StrategyKind,
    /// The nodes' `--gossip-interval` in ms; `None`: their default.
    pub gossip_interval: Option<u64>,
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
    /// etcd in place of `gcounter kv`.
    pub etcd: Option<EtcdBackend>,
    /// Which service `gcounter kv` models and the nodes ask for.
    pub kv: KvKind,
    /// Where operations stream as they complete (see
    /// [`super::run::TestConfig::history_file`]).
    pub history_file: Option<PathBuf>,
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
    /// The KV service exited before the test ended.
    Exited { node: String, status: String },
    /// The nemesis could not cut, heal, start or resume.
    Nemesis(String),
    /// A node broke the rules (a bad line, an exit nobody caused).
    Test(CoreError),
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
                "{node} exited before the test ended ({status}); see its log"
            ),
            TcpTestError::Nemesis(e) => write!(f, "the nemesis could not act: {e}"),
            TcpTestError::Test(e) => write!(f, "{e}"),
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
    let mut spec = ClusterSpec::new(&cfg.program, &cfg.cluster_dir);
    spec.nodes = cfg.node_count;
    spec.strategy = cfg.strategy;
    spec.gossip_interval = cfg.gossip_interval;
    spec.seed = cfg.seed;
    spec.etcd = cfg.etcd.clone();
    spec.kv = cfg.kv;
    let mut ids = vec![spec.kv.name().to_string()];
    ids.extend(node_ids(cfg.node_count));
    if let Some(EtcdBackend::Local { members, .. }) = cfg.etcd {
        ids.extend((0..members).map(|i| format!("etcd{i}")));
    }
    let file = match &cfg.history_file {
        Some(path) => Some(HistoryFile::create(path).map_err(TcpTestError::Start)?),
        None => None,
    };
    let result = match Cluster::start(spec) {
        Ok(mut cluster) => {
            // One thread: the connections' readers run on this executor,
            // beside the runner, so a reply costs no wake-up of another
            // thread.
            let ex = smol::LocalExecutor::new();
            let runner = TcpRunner::new(cfg, file);
            let result = smol::block_on(ex.run(runner.run(&ex, &mut cluster, every, progress)));
            cluster.stop();
            // A finished test keeps the members' logs, not their data:
            // etcd preallocates 64 MB WAL segments, hundreds of MB a run.
            for m in cluster.etcd().map(|e| e.members()).unwrap_or_default() {
                if let Err(e) = std::fs::remove_dir_all(&m.data_dir) {
                    log::warn!("cannot remove {}: {e}", m.data_dir.display());
                }
            }
            result
        }
        Err(e) => Err(TcpTestError::Start(e)),
    };
    link_logs(&cfg.cluster_dir, &cfg.log_dir, &ids);
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

/// Something a client's connection did, in which of its lives (a client
/// connects again when its node is started anew).
#[derive(Debug)]
enum ConnEvent {
    /// A line, without its newline.
    Line {
        client: usize,
        life: u64,
        line: Vec<u8>,
    },
    Oversized {
        client: usize,
        life: u64,
        len: usize,
    },
    /// The connection ended (closed, reset, or cut mid-line).
    Ended {
        client: usize,
        life: u64,
        why: String,
    },
}

/// Reads `stream` line by line until it ends, onto `events`.
async fn read_lines(client: usize, life: u64, stream: TcpStream, events: Sender<ConnEvent>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        let ended = |why: String| ConnEvent::Ended { client, life, why };
        let event = match read {
            Err(e) => ended(e.to_string()),
            Ok(0) => ended("closed by the node".into()),
            Ok(_) if line.last() == Some(&b'\n') => {
                line.pop();
                ConnEvent::Line { client, life, line }
            }
            Ok(n) if n > MAX_LINE => ConnEvent::Oversized {
                client,
                life,
                len: n,
            },
            Ok(_) => ended(format!(
                "closed by the node in the middle of {}",
                shown(&line)
            )),
        };
        let last = !matches!(event, ConnEvent::Line { .. });
        if events.send(event).await.is_err() || last {
            return;
        }
    }
}

/// One workload client and its connection, while it has one.
#[derive(Debug)]
struct Conn {
    client: String,
    node: usize,
    life: u64,
    writer: Option<TcpStream>,
    reader: Option<Task<()>>,
}

/// How often the runner looks for members that exited.
const REAP_EVERY: Duration = Duration::from_millis(200);

/// How long a restarted node's clients keep trying to connect.
const RECONNECT_FOR: Duration = Duration::from_secs(5);

struct TcpRunner {
    core: TestCore,
    ids: Vec<String>,
    conns: Vec<Conn>,
    file: Option<HistoryFile>,
}

impl TcpRunner {
    fn new(cfg: &TcpTestConfig, file: Option<HistoryFile>) -> Self {
        let core = TestCore::new(CoreConfig {
            node_count: cfg.node_count,
            concurrency: cfg.concurrency,
            workload: cfg.workload.clone(),
            nemesis: cfg.nemesis.clone(),
            latency: Default::default(),
            seed: cfg.seed,
            observed: NetObserved::ClientsOnly,
            // The cluster's nodes know their ids from their flags.
            init: None,
            limits: None,
            trace: crate::testcore::trace::DEFAULT_CAP,
            // The servers' traffic does not pass through the core, and
            // `gcounter kv` draws its own states: no choice to make here.
            adversary: crate::choice::Adversaries::none(),
            history_keep: cfg
                .history_file
                .as_ref()
                .map(|_| crate::journal::DEFAULT_KEEP),
        });
        let ids: Vec<String> = core.servers().map(str::to_string).collect();
        let conns = core
            .clients()
            .map(|(client, node)| Conn {
                client: client.to_string(),
                node: ids.iter().position(|id| id == node).unwrap_or(0),
                life: 0,
                writer: None,
                reader: None,
            })
            .collect();
        TcpRunner {
            core,
            ids,
            conns,
            file,
        }
    }

    async fn run(
        mut self,
        ex: &smol::LocalExecutor<'static>,
        cluster: &mut Cluster,
        every: Duration,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<TestRun, TcpTestError> {
        let (tx, rx) = async_channel::bounded(1024);
        for node in 0..self.ids.len() {
            self.connect(ex, cluster, node, &tx, Duration::ZERO).await?;
        }
        log::info!(
            "{} client(s) connected; the workload starts",
            self.conns.len()
        );
        let mut pace = Pace::new(Instant::now(), every);
        let interrupted = self
            .drive(ex, cluster, &tx, &rx, &mut pace, progress)
            .await?;
        self.conns.clear();
        let out = self.core.finish().map_err(TcpTestError::Test)?;
        let run = TestRun::of(out, pace.now(), NetObserved::ClientsOnly, self.file);
        Ok(if interrupted { run.interrupted() } else { run })
    }

    /// Connects every client of node `node` to it, each with a reader task,
    /// trying for up to `patience` (a node just started may not listen yet).
    async fn connect(
        &mut self,
        ex: &smol::LocalExecutor<'static>,
        cluster: &Cluster,
        node: usize,
        events: &Sender<ConnEvent>,
        patience: Duration,
    ) -> Result<(), TcpTestError> {
        let id = &self.ids[node];
        let addr = cluster.node(id).map(|m| m.addr);
        let until = Instant::now() + patience;
        for (i, conn) in self.conns.iter_mut().enumerate() {
            if conn.node != node {
                continue;
            }
            let error = |error| TcpTestError::Connect {
                node: id.clone(),
                client: conn.client.clone(),
                error,
            };
            let addr =
                addr.ok_or_else(|| error(io::Error::new(io::ErrorKind::NotFound, "no such node")))?;
            let stream = loop {
                match TcpStream::connect(addr).await {
                    Ok(stream) => break stream,
                    Err(_) if Instant::now() < until => {
                        Timer::after(Duration::from_millis(20)).await;
                    }
                    Err(e) => return Err(error(e)),
                }
            };
            let _ = stream.set_nodelay(true);
            conn.life += 1;
            conn.reader = Some(ex.spawn(read_lines(i, conn.life, stream.clone(), events.clone())));
            conn.writer = Some(stream);
        }
        Ok(())
    }

    async fn drive(
        &mut self,
        ex: &smol::LocalExecutor<'static>,
        cluster: &mut Cluster,
        tx: &Sender<ConnEvent>,
        rx: &Receiver<ConnEvent>,
        pace: &mut Pace,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<bool, TcpTestError> {
        let mut next_reap = Duration::ZERO;
        loop {
            if let Some(f) = &mut self.file {
                f.write(self.core.take_completed());
            }
            let wake = loop {
                match self.core.poll_output() {
                    Output::Deliver { msg, .. } => {
                        self.send(cluster, msg.src(), &msg.line()).await?
                    }
                    Output::Wake { .. } => {}
                    Output::Fault(fault) => self.act(ex, cluster, tx, fault).await?,
                    Output::Wait(at) => break at,
                    Output::Done => return Ok(false),
                }
            };
            if super::interrupt::requested() {
                return Ok(true);
            }
            pace.report(|| progress(&self.core.progress()));
            if pace.now() >= next_reap {
                self.reap(cluster)?;
                next_reap = pace.now() + REAP_EVERY;
            }
            for event in pace.wait(rx, wake.map(|w| w.min(next_reap))).await {
                self.on_event(cluster, event, pace).await?;
            }
            self.core.handle(Input::Tick, pace.now());
        }
    }

    /// Carries out what the nemesis decided.
    async fn act(
        &mut self,
        ex: &smol::LocalExecutor<'static>,
        cluster: &mut Cluster,
        tx: &Sender<ConnEvent>,
        fault: FaultAction,
    ) -> Result<(), TcpTestError> {
        let failed = |e: &dyn fmt::Display| TcpTestError::Nemesis(e.to_string());
        match fault {
            // The grudge (receiver -> senders it ignores) as cuts: a node
            // cut off from a peer drops traffic both ways.
            FaultAction::Cut(p) => cluster.cut(p.grudge).await.map_err(|e| failed(&e)),
            FaultAction::Heal => cluster.heal().await.map_err(|e| failed(&e)),
            FaultAction::Kill(node) => {
                for conn in self.conns.iter_mut().filter(|c| c.node == node) {
                    conn.writer = None;
                    conn.reader = None;
                }
                cluster.kill(&self.ids[node]).map_err(|e| failed(&e))
            }
            FaultAction::Start(node) => {
                cluster
                    .start_node(&self.ids[node])
                    .map_err(|e| failed(&e))?;
                self.connect(ex, cluster, node, tx, RECONNECT_FOR).await
            }
            FaultAction::Pause(node) => cluster.pause(&self.ids[node]).map_err(|e| failed(&e)),
            FaultAction::Resume(node) => cluster
                .resume(&self.ids[node])
                .await
                .map_err(|e| failed(&e)),
        }
    }

    /// Members that exited: a node is the core's to judge (the nemesis may
    /// have killed it), the KV service ends the test.
    fn reap(&mut self, cluster: &mut Cluster) -> Result<(), TcpTestError> {
        for (id, status) in cluster.reap() {
            match self.ids.iter().position(|n| *n == id) {
                Some(node) => {
                    let status = status.to_string();
                    self.core
                        .handle(Input::Exited { node, status }, Duration::ZERO);
                }
                None => {
                    return Err(TcpTestError::Exited {
                        node: id,
                        status: status.to_string(),
                    })
                }
            }
        }
        Ok(())
    }

    /// Writes a client's request on its connection.
    async fn send(
        &mut self,
        cluster: &mut Cluster,
        client: &str,
        line: &[u8],
    ) -> Result<(), TcpTestError> {
        let Some(i) = self.conns.iter().position(|c| c.client == client) else {
            log::warn!("no connection for client {client}");
            return Ok(());
        };
        let Some(writer) = self.conns[i].writer.as_mut() else {
            return Ok(());
        };
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        let written = async {
            writer.write_all(&buf).await?;
            writer.flush().await
        }
        .await;
        match written {
            Ok(()) => Ok(()),
            Err(e) => self.broken(cluster, i, e.to_string()).await,
        }
    }

    /// A connection broke: the node's exit, for the core to judge, if it
    /// exited (waiting a moment for it to be reaped); an error otherwise.
    async fn broken(
        &mut self,
        cluster: &mut Cluster,
        i: usize,
        why: String,
    ) -> Result<(), TcpTestError> {
        for _ in 0..20 {
            let gone = cluster.reap();
            if !gone.is_empty() {
                for (id, status) in gone {
                    if let Some(node) = self.ids.iter().position(|n| *n == id) {
                        let status = status.to_string();
                        self.core
                            .handle(Input::Exited { node, status }, Duration::ZERO);
                    }
                }
                return Ok(());
            }
            Timer::after(Duration::from_millis(25)).await;
        }
        let conn = &self.conns[i];
        Err(TcpTestError::Broken {
            node: self.ids[conn.node].clone(),
            client: conn.client.clone(),
            why,
        })
    }

    async fn on_event(
        &mut self,
        cluster: &mut Cluster,
        event: ConnEvent,
        pace: &Pace,
    ) -> Result<(), TcpTestError> {
        let (client, life) = match &event {
            ConnEvent::Line { client, life, .. }
            | ConnEvent::Oversized { client, life, .. }
            | ConnEvent::Ended { client, life, .. } => (*client, *life),
        };
        let conn = &self.conns[client];
        // A connection of an earlier life of the node, or one the nemesis
        // closed with its kill.
        if conn.life != life || conn.writer.is_none() {
            return Ok(());
        }
        let node = conn.node;
        match event {
            ConnEvent::Line { line, .. } => {
                self.core
                    .handle(Input::Line { node, line: &line }, pace.now());
            }
            ConnEvent::Oversized { len, .. } => {
                self.core.handle(Input::Oversized { node, len }, pace.now());
            }
            ConnEvent::Ended { why, .. } => self.broken(cluster, client, why).await?,
        }
        Ok(())
    }
}
