//! A local cluster of real processes: `gcounter cluster`, and the API a
//! test runner uses to start one, drive it and break it.
//!
//! [`Cluster::start`] runs a KV service and N nodes as child processes of
//! the calling process (each `gcounter kv` / `gcounter node` with the flags
//! it needs), each logging to its own file in the cluster's directory, and
//! returns once every one of them accepts connections. From then on:
//!
//! - [`Cluster::client`] connects a [`Client`] to a node;
//! - [`Cluster::partition`] / [`Cluster::heal`] cut and restore links
//!   between nodes (the KV service is never cut off);
//! - [`Cluster::kill`] kills a node with SIGKILL, [`Cluster::start_node`]
//!   starts it again on the same address (with a fresh incarnation, the
//!   state it stored in the cluster's directory, and the cut it was
//!   under), [`Cluster::restart`] does both;
//! - [`Cluster::reap`] reports members that exited on their own;
//! - [`Cluster::stop`], or dropping the cluster, stops every child.
//!
//! Children are started with `--stop-on-stdin-eof` and a pipe on standard
//! input whose other end the cluster holds: however the parent ends (a
//! panicking test, SIGKILL), the pipe closes and the children stop.
//!
//! ```no_run
//! use gcounter_transport_tcp::{Cluster, ClusterSpec};
//! use std::time::Duration;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut spec = ClusterSpec::new("target/debug/gcounter", "/tmp/my-cluster");
//! spec.nodes = 3;
//! let mut cluster = Cluster::start(spec)?;
//! smol::block_on(async {
//!     let mut c1 = cluster.client("n0", "c1").await?;
//!     c1.add(2, Duration::from_secs(5)).await?;
//!     cluster.partition(&[vec!["n0".into()], vec!["n1".into(), "n2".into()]]).await?;
//!     cluster.heal().await?;
//!     Ok::<_, gcounter_transport_tcp::ClientError>(())
//! })?;
//! cluster.restart("n1")?;
//! cluster.stop();
//! # Ok(())
//! # }
//! ```

use crate::client::{Client, ClientError};
use crate::conn::{accept_loop, Conns, Event, Limits, Source};
use crate::control::{self, Request};
use crate::etcd::{EtcdCluster, EtcdCreds, EtcdTarget};
use crate::local::{free_ports, log_tail};
use gcounter_core::{ErrorCode, KvKind, StrategyKind};
use serde_json::{json, Value};
use smol::future::{or, Future};
use smol::net::TcpListener;
use smol::Timer;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a member may take to accept connections after it is started.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Cluster::stop`] waits for children to exit before killing them.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long a control request to a node may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// What cluster to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// The `gcounter` binary the members run.
    pub program: PathBuf,
    pub nodes: usize,
    pub strategy: StrategyKind,
    /// The members' `--gossip-interval` in ms; `None`: their default.
    pub gossip_interval: Option<u64>,
    pub kv: KvKind,
    /// The address every member listens on.
    pub host: IpAddr,
    /// The KV service listens on this port and node `n<i>` on the port
    /// `1 + i` after it. `None`: free ports chosen by the system.
    pub base_port: Option<u16>,
    /// Logs (`<id>.log`) and the nodes' incarnation and state files go
    /// here. Starting a cluster removes the nodes' state files an earlier
    /// cluster left; a directory a running cluster holds (its
    /// `cluster.lock`) is refused instead.
    pub dir: PathBuf,
    /// The KV service's seed.
    pub seed: u64,
    /// `RUST_LOG` for the members; `None`: the caller's, or `info`.
    pub log_filter: Option<String>,
    /// More flags for every member, such as `--idle-timeout 5` or
    /// `--max-connections 100` (both `gcounter kv` and `gcounter node`
    /// take the limit flags).
    pub member_args: Vec<String>,
    /// etcd in place of `gcounter kv`; `None`: `gcounter kv`.
    pub etcd: Option<EtcdBackend>,
}

/// Where a cluster's nodes keep the counter when it is etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcdBackend {
    /// Members started by the cluster, in `<dir>/etcd<i>.data`, logging to
    /// `<dir>/etcd<i>.log`; `secure`: with TLS, client certificates and
    /// authentication (certificates and the nodes' password in
    /// `<dir>/pki/`), as etcd is run outside a laptop.
    Local { members: usize, secure: bool },
    /// A running etcd, by its members' client addresses as `etcdctl
    /// --endpoints` takes them (`https://` for TLS), and what the nodes
    /// prove themselves with.
    External {
        endpoints: Vec<String>,
        creds: EtcdCreds,
    },
}

impl ClusterSpec {
    /// Three `gossip` nodes and a `seq-kv` on free loopback ports.
    pub fn new(program: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        let seed = crate::kv::clock_seed();
        ClusterSpec {
            program: program.into(),
            nodes: 3,
            strategy: StrategyKind::Gossip,
            gossip_interval: None,
            kv: KvKind::SeqKv,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            base_port: None,
            dir: dir.into(),
            seed,
            log_filter: None,
            member_args: Vec::new(),
            etcd: None,
        }
    }
}

/// One process of the cluster.
#[derive(Debug)]
pub struct Member {
    /// `n0`, `n1`, ... or the KV service's name.
    pub id: String,
    pub addr: SocketAddr,
    /// Its standard error (and output), appended to across restarts.
    pub log: PathBuf,
    /// How many times it was started again.
    pub restarts: u32,
    /// Stopped with SIGSTOP: it answers nothing until resumed.
    pub paused: bool,
    child: Option<Child>,
}

impl Member {
    /// Whether the process was started and has not been seen to exit.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn kill(&mut self) -> io::Result<()> {
        self.paused = false;
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    fn describe(&self) -> Value {
        json!({
            "id": self.id,
            "addr": self.addr.to_string(),
            "log": self.log.display().to_string(),
            "running": self.running(),
            "pid": self.pid(),
            "restarts": self.restarts,
        })
    }
}

/// A running cluster. Dropping it kills every member.
#[derive(Debug)]
pub struct Cluster {
    spec: ClusterSpec,
    /// The KV service; with etcd, a stand-in that runs nothing (its
    /// address is the first endpoint).
    kv: Member,
    /// The local etcd members, when the cluster started them.
    etcd: Option<EtcdCluster>,
    /// Where the nodes find etcd (endpoints and this cluster's prefix),
    /// and what they prove themselves with.
    etcd_target: Option<(EtcdTarget, EtcdCreds)>,
    nodes: Vec<Member>,
    /// Per node, the peers it is cut off from.
    cuts: BTreeMap<String, BTreeSet<String>>,
    /// Held while the cluster lives: the directory is this cluster's.
    _lock: File,
    /// What its nodes, and its nemesis, prove they belong with.
    secret: crate::Secret,
    /// Nodes whose state an earlier cluster in this directory left, and
    /// which this one removed at start: a new cluster is a new counter.
    started_over: Vec<String>,
}

/// The lock file that marks a directory as a running cluster's.
pub const LOCK_FILE: &str = "cluster.lock";

/// Takes `dir` for one cluster. The lock is the kernel's (`flock`), so a
/// cluster that dies by any means, `kill -9` included, frees its
/// directory without anyone deciding whether a recorded pid is stale.
pub fn lock_dir(dir: &Path) -> io::Result<File> {
    match gcounter_state::pid_lock(&dir.join(LOCK_FILE), Duration::ZERO)? {
        gcounter_state::PidLock::Taken(mut file) => {
            gcounter_state::record_pid(&mut file)?;
            Ok(file)
        }
        gcounter_state::PidLock::Held { pid } => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} is in use by a running cluster{}: give another directory, or stop that cluster",
                dir.display(),
                pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
            ),
        )),
    }
}

fn other(text: String) -> io::Error {
    io::Error::other(text)
}

/// Sends `signal` to process `pid`.
fn signal(pid: u32, signal: rustix::process::Signal) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| other(format!("no such process: {pid}")))?;
    rustix::process::kill_process(pid, signal).map_err(io::Error::from)
}

impl Cluster {
    /// Starts the KV service, then every node, and waits until each accepts
    /// connections. With free ports, a start that fails (a port taken in
    /// the meantime) is tried again with new ports, twice.
    pub fn start(spec: ClusterSpec) -> io::Result<Cluster> {
        if spec.nodes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a cluster needs a node",
            ));
        }
        if let Some(EtcdBackend::Local { .. }) = spec.etcd {
            crate::etcd::cluster::find_etcd()
                .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?;
        }
        fs::create_dir_all(&spec.dir)?;
        // Before anything in the directory is touched: another cluster's
        // state files must never be removed under it.
        let lock = lock_dir(&spec.dir)?;
        let attempts = if spec.base_port.is_some() { 1 } else { 3 };
        let mut last_error = None;
        for attempt in 1..=attempts {
            let ports = match spec.base_port {
                Some(base) => (0..=spec.nodes)
                    .map(|i| {
                        u16::try_from(base as usize + i)
                            .map_err(|_| other(format!("port {base} + {i} is past 65535")))
                    })
                    .collect::<io::Result<Vec<u16>>>()?,
                None => free_ports(spec.host, spec.nodes + 1)?,
            };
            match Cluster::start_on(spec.clone(), &ports, &lock) {
                Ok(cluster) => return Ok(cluster),
                // Credentials or flags that etcd refused: other ports
                // will not help.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::InvalidInput | io::ErrorKind::PermissionDenied
                    ) =>
                {
                    return Err(e)
                }
                Err(e) => {
                    if attempt < attempts {
                        log::warn!("cluster start failed ({e}); trying other ports");
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| other("cluster start failed".into())))
    }

    fn start_on(spec: ClusterSpec, ports: &[u16], lock: &File) -> io::Result<Cluster> {
        let member = |id: &str, port: u16| Member {
            id: id.to_owned(),
            addr: SocketAddr::new(spec.host, port),
            log: spec.dir.join(format!("{id}.log")),
            restarts: 0,
            paused: false,
            child: None,
        };
        let mut kv = member(spec.kv.name(), ports[0]);
        let (etcd, etcd_target) = match &spec.etcd {
            None => (None, None),
            Some(backend) => {
                let (etcd, endpoints, tls, creds) = match backend {
                    EtcdBackend::Local { members, secure } => {
                        let etcd = if *secure {
                            EtcdCluster::start_secure(&spec.dir, *members, spec.host, &[])?
                        } else {
                            EtcdCluster::start(&spec.dir, *members, spec.host)?
                        };
                        let endpoints = etcd.endpoints();
                        let creds = etcd.node_creds();
                        (Some(etcd), endpoints, *secure, creds)
                    }
                    EtcdBackend::External { endpoints, creds } => {
                        let (tls, endpoints) = crate::etcd::parse_endpoints(endpoints)
                            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                        (None, endpoints, tls, creds.clone())
                    }
                };
                kv.id = "etcd".into();
                if let Some(addr) = endpoints
                    .first()
                    .and_then(|e| std::net::ToSocketAddrs::to_socket_addrs(e).ok()?.next())
                {
                    kv.addr = addr;
                }
                // A new cluster is a new counter: its keys go under a
                // prefix no earlier cluster used, in a shared etcd too.
                let prefix = format!("gcounter/{:x}/", crate::kv::clock_seed());
                let target = EtcdTarget::new(endpoints, prefix).with_tls(tls);
                // Bad credentials are one line now, not every node's
                // KV calls failing later.
                check_etcd(&target, &creds)?;
                (etcd, Some((target, creds)))
            }
        };
        let nodes = (0..spec.nodes)
            .map(|i| member(&format!("n{i}"), ports[1 + i]))
            .collect();
        let mut cluster = Cluster {
            spec,
            kv,
            etcd,
            etcd_target,
            nodes,
            cuts: BTreeMap::new(),
            _lock: lock.try_clone()?,
            secret: crate::Secret::generate()?,
            started_over: Vec::new(),
        };
        // A new cluster, a new secret: nodes of an earlier cluster in this
        // directory, or anyone who read its secret, are strangers to it.
        cluster.secret.write(&cluster.secret_file())?;
        let kv = cluster.etcd_target.is_none().then_some(&cluster.kv);
        for member in kv.into_iter().chain(&cluster.nodes) {
            File::create(&member.log)?;
        }
        // A new cluster is a new counter (its KV service starts empty):
        // its nodes must not take up what an earlier cluster in the same
        // directory stored. Restarted nodes do (see `start_node`).
        for node in &cluster.nodes {
            match fs::remove_file(crate::state_path(&cluster.spec.dir, &node.id)) {
                Ok(()) => cluster.started_over.push(node.id.clone()),
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                Err(_) => {}
            }
        }
        // A cluster that fails half way is dropped here, killing what ran.
        if cluster.etcd_target.is_none() {
            cluster.spawn(None)?;
        }
        for i in 0..cluster.nodes.len() {
            cluster.spawn(Some(i))?;
        }
        Ok(cluster)
    }

    /// The nodes whose state, left in the directory by an earlier
    /// cluster, this one removed at start (it starts a new counter: its
    /// KV service starts empty), for the operator to be told.
    pub fn started_over(&self) -> &[String] {
        &self.started_over
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The file with the cluster's secret (owner-only), which its nodes
    /// are given with `--secret-file` and `gcounter client` needs for
    /// `partition` / `heal`.
    pub fn secret_file(&self) -> PathBuf {
        self.spec.dir.join(crate::auth::SECRET_FILE)
    }

    /// The KV service (with etcd, a stand-in that runs nothing).
    pub fn kv(&self) -> &Member {
        &self.kv
    }

    /// The etcd members the cluster started.
    pub fn etcd(&self) -> Option<&EtcdCluster> {
        self.etcd.as_ref()
    }

    /// The etcd members the cluster started, to kill and start them.
    pub fn etcd_mut(&mut self) -> Option<&mut EtcdCluster> {
        self.etcd.as_mut()
    }

    /// Where the nodes find etcd, if they use it.
    pub fn etcd_target(&self) -> Option<&EtcdTarget> {
        self.etcd_target.as_ref().map(|(target, _)| target)
    }

    /// What the nodes prove themselves to etcd with, if they use it.
    pub fn etcd_creds(&self) -> Option<&EtcdCreds> {
        self.etcd_target.as_ref().map(|(_, creds)| creds)
    }

    /// The nodes, `n0` first.
    pub fn nodes(&self) -> &[Member] {
        &self.nodes
    }

    pub fn node(&self, id: &str) -> Option<&Member> {
        self.nodes.iter().find(|m| m.id == id)
    }

    pub fn node_ids(&self) -> Vec<String> {
        self.nodes.iter().map(|m| m.id.clone()).collect()
    }

    fn index(&self, id: &str) -> io::Result<usize> {
        if id == self.kv.id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{id} holds the cluster's only copy of the counter: it is never killed"),
            ));
        }
        self.nodes
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no node {id}")))
    }

    /// Starts member `index` (`None`: the KV service) and waits until it
    /// accepts connections.
    fn spawn(&mut self, index: Option<usize>) -> io::Result<()> {
        let args = match index {
            None => self.kv_args(),
            Some(i) => self.node_args(i),
        };
        let spec = &self.spec;
        let member = match index {
            None => &mut self.kv,
            Some(i) => &mut self.nodes[i],
        };
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)?;
        if member.restarts > 0 {
            writeln!(log, "--- gcounter cluster: {} started again ---", member.id)?;
        }
        let mut command = Command::new(&spec.program);
        command
            .args(&args)
            .args(&spec.member_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        // Its own process group: a Ctrl-C in the terminal reaches the
        // cluster, which then stops its members in order.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        match &spec.log_filter {
            Some(filter) => {
                command.env("RUST_LOG", filter);
            }
            None if std::env::var_os("RUST_LOG").is_none() => {
                command.env("RUST_LOG", "info");
            }
            None => {}
        }
        let child = command
            .spawn()
            .map_err(|e| other(format!("cannot run {}: {e}", spec.program.display())))?;
        member.child = Some(child);
        wait_listening(member)
    }

    fn kv_args(&self) -> Vec<String> {
        let consistency = match self.spec.kv {
            KvKind::SeqKv => "seq",
            KvKind::LinKv => "lin",
        };
        vec![
            "kv".into(),
            "--listen".into(),
            self.kv.addr.to_string(),
            "--consistency".into(),
            consistency.into(),
            "--seed".into(),
            self.spec.seed.to_string(),
            "--stop-on-stdin-eof".into(),
        ]
    }

    fn node_args(&self, i: usize) -> Vec<String> {
        let me = &self.nodes[i];
        let consistency = match self.spec.kv {
            KvKind::SeqKv => "seq",
            KvKind::LinKv => "lin",
        };
        let mut args = vec![
            "node".into(),
            "--id".into(),
            me.id.clone(),
            "--listen".into(),
            me.addr.to_string(),
            "--kv-addr".into(),
            match &self.etcd_target {
                Some((target, _)) => target.url(),
                None => self.kv.addr.to_string(),
            },
            "--consistency".into(),
            consistency.into(),
            "--strategy".into(),
            self.spec.strategy.name().into(),
            "--state-dir".into(),
            self.spec.dir.display().to_string(),
            "--secret-file".into(),
            self.secret_file().display().to_string(),
            "--stop-on-stdin-eof".into(),
        ];
        if let Some(ms) = self.spec.gossip_interval {
            args.extend(["--gossip-interval".into(), ms.to_string()]);
        }
        if let Some((_, creds)) = &self.etcd_target {
            args.extend(creds.args());
        }
        for peer in self.nodes.iter().filter(|m| m.id != me.id) {
            args.push("--peer".into());
            args.push(format!("{}={}", peer.id, peer.addr));
        }
        for cut in self.cuts.get(&me.id).into_iter().flatten() {
            args.push("--cut".into());
            args.push(cut.clone());
        }
        args
    }

    /// Kills node `id` with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self, id: &str) -> io::Result<()> {
        let i = self.index(id)?;
        self.nodes[i].kill()
    }

    /// Starts node `id` again (it must not be running) on its address, and
    /// waits until it accepts connections. It starts cut off from whatever
    /// the last partition cut it off from.
    pub fn start_node(&mut self, id: &str) -> io::Result<()> {
        let i = self.index(id)?;
        if self.nodes[i].running() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{id} is running"),
            ));
        }
        self.nodes[i].restarts += 1;
        self.spawn(Some(i))
    }

    /// [`kill`](Cluster::kill), then [`start_node`](Cluster::start_node).
    pub fn restart(&mut self, id: &str) -> io::Result<()> {
        self.kill(id)?;
        self.start_node(id)
    }

    /// Members that exited on their own since the last call, with how.
    pub fn reap(&mut self) -> Vec<(String, ExitStatus)> {
        let mut gone = Vec::new();
        for member in std::iter::once(&mut self.kv).chain(&mut self.nodes) {
            if let Some(child) = &mut member.child {
                if let Ok(Some(status)) = child.try_wait() {
                    gone.push((member.id.clone(), status));
                    member.child = None;
                }
            }
        }
        if let Some(etcd) = &mut self.etcd {
            gone.extend(etcd.reap());
        }
        gone
    }

    /// Stops every member: closes their standard input (they exit on
    /// their own), waits up to [`STOP_GRACE`], then kills what is left.
    pub fn stop(&mut self) {
        let mut members: Vec<&mut Member> = std::iter::once(&mut self.kv)
            .chain(&mut self.nodes)
            .collect();
        for member in &mut members {
            if let Some(child) = &mut member.child {
                drop(child.stdin.take());
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            members.retain_mut(|m| {
                let exited = match &mut m.child {
                    Some(child) => matches!(child.try_wait(), Ok(Some(_))),
                    None => true,
                };
                if exited {
                    m.child = None;
                }
                !exited
            });
            if members.is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for member in members {
            log::warn!(
                "{} did not stop within {STOP_GRACE:?}: killing it",
                member.id
            );
            let _ = member.kill();
        }
        // Last: the nodes needed it until they stopped.
        if let Some(etcd) = &mut self.etcd {
            etcd.stop();
        }
    }

    /// A client of node `id`, speaking as `client_id`.
    pub async fn client(&self, id: &str, client_id: &str) -> Result<Client, ClientError> {
        let i = self.index(id).map_err(ClientError::Connect)?;
        let addr = self.nodes[i].addr.to_string();
        Ok(Client::connect(&addr, client_id).await?.with_dest(id))
    }

    /// Splits the nodes into `groups`: each node then talks only to the
    /// nodes that share a group with it (groups may overlap, as in
    /// Maelstrom's "majorities ring"; a node in no group is alone).
    pub async fn partition(&mut self, groups: &[Vec<String>]) -> Result<(), ClientError> {
        let ids = self.node_ids();
        let cuts = ids
            .iter()
            .map(|id| {
                let reachable: BTreeSet<&String> =
                    groups.iter().filter(|g| g.contains(id)).flatten().collect();
                let cut = ids
                    .iter()
                    .filter(|n| *n != id && !reachable.contains(n))
                    .cloned();
                (id.clone(), cut.collect())
            })
            .collect();
        self.cut(cuts).await
    }

    /// Sets, per node, exactly which peers it is cut off from (a node not
    /// named is cut off from nobody). Nodes that are down or paused get
    /// theirs when they start or resume.
    pub async fn cut(
        &mut self,
        cuts: BTreeMap<String, BTreeSet<String>>,
    ) -> Result<(), ClientError> {
        self.cuts = cuts;
        for member in self.nodes.iter().filter(|m| m.running() && !m.paused) {
            self.send_cut(member).await?;
        }
        Ok(())
    }

    /// Tells `member` which peers it is cut off from now.
    async fn send_cut(&self, member: &Member) -> Result<(), ClientError> {
        let peers: Vec<String> = self
            .cuts
            .get(&member.id)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let mut client = Client::connect(&member.addr.to_string(), "nemesis")
            .await?
            .with_dest(&member.id);
        client.authenticate(&self.secret, CONTROL_TIMEOUT).await?;
        if peers.is_empty() {
            client.heal(CONTROL_TIMEOUT).await
        } else {
            client.partition(&peers, CONTROL_TIMEOUT).await
        }
    }

    /// Stops node `id` with SIGSTOP, as a long pause (GC, VM migration)
    /// would: it holds its connections and answers nothing.
    pub fn pause(&mut self, id: &str) -> io::Result<()> {
        let i = self.index(id)?;
        let member = &mut self.nodes[i];
        if let Some(pid) = member.pid() {
            signal(pid, rustix::process::Signal::STOP)?;
            member.paused = true;
        }
        Ok(())
    }

    /// Continues node `id` with SIGCONT, and gives it the cut it missed.
    pub async fn resume(&mut self, id: &str) -> Result<(), ClientError> {
        let i = self.index(id).map_err(ClientError::Connect)?;
        let member = &mut self.nodes[i];
        let Some(pid) = member.pid().filter(|_| member.paused) else {
            return Ok(());
        };
        signal(pid, rustix::process::Signal::CONT).map_err(ClientError::Connect)?;
        member.paused = false;
        self.send_cut(&self.nodes[i]).await
    }

    /// Restores every link.
    pub async fn heal(&mut self) -> Result<(), ClientError> {
        self.cut(BTreeMap::new()).await
    }

    /// The cluster as JSON: `strategy`, `kv`, `etcd` (`{endpoints,
    /// prefix}` or null), `dir` and `members` (`{id, addr, log, running,
    /// pid, restarts}`: the KV service, the nodes, then the etcd members
    /// the cluster started).
    pub fn describe(&self) -> Value {
        let kv = self.etcd_target.is_none().then_some(&self.kv);
        let mut members: Vec<Value> = kv
            .into_iter()
            .chain(&self.nodes)
            .map(Member::describe)
            .collect();
        members.extend(self.etcd.iter().flat_map(|e| e.members()).map(|m| {
            json!({
                "id": m.name,
                "addr": m.client_addr.to_string(),
                "log": m.log.display().to_string(),
                "running": m.running(),
                "pid": null,
                "restarts": 0,
            })
        }));
        let etcd = self.etcd_target.as_ref().map(|(t, creds)| {
            json!({"endpoints": t.endpoints, "prefix": t.prefix, "tls": t.tls,
                       "user": creds.user})
        });
        json!({
            "strategy": self.spec.strategy.name(),
            "kv": self.spec.kv.name(),
            "etcd": etcd,
            "dir": self.spec.dir.display().to_string(),
            "members": members,
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in std::iter::once(&mut self.kv).chain(&mut self.nodes) {
            let _ = member.kill();
        }
    }
}

/// Waits until `member` accepts connections, or fails if it exits first.
fn wait_listening(member: &mut Member) -> io::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let Some(child) = &mut member.child else {
            return Err(other(format!("{} is not running", member.id)));
        };
        if let Some(status) = child.try_wait()? {
            member.child = None;
            return Err(other(format!(
                "{} exited ({status}) before listening on {}; the end of {}:\n{}",
                member.id,
                member.addr,
                member.log.display(),
                log_tail(&member.log)
            )));
        }
        if TcpStream::connect_timeout(&member.addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = member.kill();
            return Err(other(format!(
                "{} did not listen on {} within {START_TIMEOUT:?}; see {}",
                member.id,
                member.addr,
                member.log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What [`supervise`] was told to do, for the caller to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A member exited without being asked to.
    Exited { id: String, status: String },
    /// A control request was carried out (`restart n1`, ...).
    Done { action: String, node: String },
    /// A control request failed.
    Failed {
        action: String,
        node: String,
        error: String,
    },
}

/// Serves `gcounter cluster`'s control requests (see the `control`
/// module) on `listener`, and watches the members, until `stop`
/// completes. `notice` hears about members that exited on their own and
/// about every request served.
/// `changed` is called whenever a member may have started, stopped or
/// exited, so that what describes the cluster (`cluster.json`) can be
/// written again: a pid recorded at start is wrong after a restart.
pub async fn supervise(
    cluster: &mut Cluster,
    listener: std::net::TcpListener,
    stop: impl Future<Output = ()>,
    mut notice: impl FnMut(Notice),
    mut changed: impl FnMut(&Cluster),
) -> io::Result<()> {
    let listener = TcpListener::try_from(listener)?;
    let limits = Limits {
        max_connections: 16,
        ..Limits::default()
    };
    let (events, inbox) = async_channel::bounded(64);
    smol::spawn(accept_loop(listener, events.clone(), limits.clone())).detach();
    drop(events);
    let mut conns = Conns::new(&limits);
    let mut stop = pin!(stop);
    enum Next {
        Stop,
        Event(Event),
        Tick,
    }
    loop {
        let next = or(
            async {
                stop.as_mut().await;
                Next::Stop
            },
            or(
                async { inbox.recv().await.map(Next::Event).unwrap_or(Next::Stop) },
                async {
                    Timer::after(Duration::from_millis(200)).await;
                    Next::Tick
                },
            ),
        )
        .await;
        match next {
            Next::Stop => break,
            Next::Tick => {
                let exited = cluster.reap();
                let any = !exited.is_empty();
                for (id, status) in exited {
                    notice(Notice::Exited {
                        id,
                        status: status.to_string(),
                    });
                }
                if any {
                    changed(cluster);
                }
            }
            Next::Event(Event::Opened { conn, peer, handle }) => {
                conns.opened(conn, peer, handle);
            }
            Next::Event(Event::Closed { conn }) => {
                conns.closed(conn);
            }
            Next::Event(Event::Line {
                from: Source::Conn(conn),
                line,
            }) => {
                if conns.touch(conn) {
                    let reply = control_request(cluster, &line, &mut notice);
                    conns.send(conn, reply);
                    changed(cluster);
                }
            }
            Next::Event(_) => {}
        }
    }
    inbox.close();
    Ok(())
}

/// Carries out one control request line; the reply line.
fn control_request(cluster: &mut Cluster, line: &[u8], notice: &mut impl FnMut(Notice)) -> Vec<u8> {
    const ME: &str = "cluster";
    let types = [
        control::RESTART,
        control::KILL,
        control::START,
        control::STATUS,
    ];
    let Some(req) = Request::parse(line, &types) else {
        let text = format!(
            "not a control request: one of {types:?} in a message envelope, such as \
             {{\"src\":\"ctl\",\"dest\":\"cluster\",\"body\":{{\"type\":\"restart\",\"msg_id\":1,\"node\":\"n1\"}}}}"
        );
        let req = Request {
            src: "?".into(),
            dest: ME.into(),
            msg_id: None,
            ty: String::new(),
            body: Default::default(),
        };
        return req.error(ME, ErrorCode::MALFORMED_REQUEST, &text);
    };
    if req.ty == control::STATUS {
        let members = cluster.describe()["members"].take();
        return req.ok(ME, vec![("members", members)]);
    }
    let node = match req.string("node") {
        Ok(node) => node,
        Err(text) => return req.error(ME, ErrorCode::MALFORMED_REQUEST, &text),
    };
    let result = match req.ty.as_str() {
        control::RESTART => cluster.restart(&node),
        control::KILL => cluster.kill(&node),
        _ => cluster.start_node(&node),
    };
    match result {
        Ok(()) => {
            notice(Notice::Done {
                action: req.ty.clone(),
                node,
            });
            req.ok(ME, Vec::new())
        }
        Err(e) => {
            notice(Notice::Failed {
                action: req.ty.clone(),
                node,
                error: e.to_string(),
            });
            let code = match e.kind() {
                io::ErrorKind::NotFound => ErrorCode::NODE_NOT_FOUND,
                io::ErrorKind::InvalidInput => ErrorCode::NOT_SUPPORTED,
                io::ErrorKind::AlreadyExists => ErrorCode::PRECONDITION_FAILED,
                _ => ErrorCode::CRASH,
            };
            req.error(ME, code, &e.to_string())
        }
    }
}

/// One call to etcd as a node would make it (TLS, login, a read under the
/// counter's keys): a wrong CA, password or scheme is refused here, in
/// one line, instead of in every node's KV calls.
fn check_etcd(target: &EtcdTarget, creds: &EtcdCreds) -> io::Result<()> {
    let security = creds
        .load(target.tls)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut client = crate::etcd::EtcdClient::new(
        target.endpoints.clone(),
        0,
        crate::etcd::cluster::HEALTHY_TIMEOUT / 4,
    )
    .with_security(&security);
    let key = crate::etcd::base64::encode(format!("{}check", target.prefix).as_bytes());
    smol::block_on(client.call("/v3/kv/range", &json!({ "key": key })))
        .map(|_| ())
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("cannot use etcd at {}: {e}", target.endpoints.join(",")),
            )
        })
}
