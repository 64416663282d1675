//! `gcounter cluster`: a KV service and N nodes as child processes on
//! loopback, in the foreground until Ctrl-C or SIGTERM; and the
//! `restart` / `kill` / `start` / `status` requests another terminal sends
//! it.

use crate::tcp_args::{etcd_backend, etcd_endpoint, fail, strategy, Consistency, KvBackendArg};
use gcounter_core::StrategyKind;
use gcounter_transport_tcp::cluster::{self, Notice};
use gcounter_transport_tcp::{Client, Cluster, ClusterSpec};
use serde_json::Value;
use smol::stream::StreamExt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const CLUSTER_HELP: &str =
    "The cluster writes DIR/cluster.json (its members and control address), \
DIR/<id>.log for each member and DIR/cluster.secret (0600; peers and partition/heal prove they \
hold it), and holds DIR/cluster.lock while it runs (a second cluster in \
DIR is refused). From another terminal:
  gcounter client --node ADDR add 3        send a request to a node
  gcounter client --node ADDR --secret-file DIR/cluster.secret partition n1
                                           cut a node off from peers (heal to undo)
  gcounter cluster restart n1              kill -9 a node and start it again";

/// Run a KV service and N nodes as local processes, until Ctrl-C
#[derive(Debug, clap::Args)]
#[command(after_help = CLUSTER_HELP, args_conflicts_with_subcommands = true)]
pub struct Args {
    /// How many nodes (n0, n1, ...); `--nodes` is kept as another name
    #[arg(long, alias = "nodes", value_name = "N", default_value_t = 3)]
    node_count: usize,
    /// gossip | per-node | cas | naive
    #[arg(long, value_name = "S", default_value = "gossip", value_parser = strategy)]
    strategy: StrategyKind,
    // The help in `help =`: rustdoc reads `[default: ...]` as a link.
    #[arg(
        long,
        value_name = "MS",
        help = "gossip: how long each node may hold a change before sending it, in ms; 0 is eager (a round right after every add). Shorter is fresher reads on other nodes for more messages [default: 300, as `gcounter node`]"
    )]
    gossip_interval: Option<u64>,
    /// With --kv etcd: lin reads linearizably, seq (default) serializably, as seq-kv may
    #[arg(long, value_enum)]
    consistency: Option<Consistency>,
    /// Where the KV strategies keep the counter: seq-kv or lin-kv (a `gcounter kv` modelling that service) or etcd (3 local members, logs and data in DIR, on free ports)
    #[arg(long, value_enum, default_value = "seq-kv")]
    kv: KvBackendArg,
    /// A running etcd to use instead of starting one (with --kv etcd): its members' [https://]HOST:PORT, comma-separated, as etcdctl --endpoints
    // Each address is one value (split at commas, parsed by
    // `etcd_endpoint`): clap derive reads an `Option<Vec<T>>` as many
    // values of `T`, so a parser returning the whole Vec<String> panicked
    // when the flag was given.
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',', value_parser = etcd_endpoint)]
    etcd_endpoints: Option<Vec<String>>,
    /// With --kv etcd and no --etcd-endpoints: start the members on plain http without users, for a quick look (by default they run with TLS, client certificates and authentication, certificates in DIR/pki)
    #[arg(long)]
    insecure: bool,
    #[command(flatten)]
    etcd_creds: gcounter_harness::process::EtcdCredArgs,
    /// The KV service listens on P, node `n<i>` on P+1+i, the control address on P+N+1 (0: free ports)
    #[arg(long, value_name = "P", default_value_t = 7400)]
    base_port: u16,
    // The help in `help =`, not a doc comment: rustdoc reads `[default:
    // ...]` as a link and `<P>` as HTML.
    #[arg(
        long,
        value_name = "DIR",
        help = "Where logs, state files and cluster.json go; refused while another cluster runs there [default: <temp dir>/gcounter-cluster-<P>, or a fresh <temp dir>/gcounter-cluster-free-<pid> with --base-port 0]"
    )]
    dir: Option<PathBuf>,
    /// Seed of the KV service [default: from the clock]
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    #[command(subcommand)]
    action: Option<Action>,
}

/// Requests to a running `gcounter cluster`.
#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Kill a node with SIGKILL and start it again on the same address
    Restart(Target),
    /// Kill a node with SIGKILL
    Kill(Target),
    /// Start a node that was killed
    Start(Target),
    /// List the members and whether they run
    Status(Which),
}

#[derive(Debug, clap::Args)]
struct Target {
    /// The node, such as n1
    id: String,
    #[command(flatten)]
    which: Which,
}

/// Which running cluster a request is for.
#[derive(Debug, clap::Args)]
struct Which {
    /// The running cluster's directory [default: the one `gcounter cluster --base-port P` uses]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The --base-port the cluster was started with, to find its default directory
    #[arg(long, value_name = "P", default_value_t = 7400)]
    base_port: u16,
}

impl Which {
    fn dir(self) -> PathBuf {
        self.dir.unwrap_or_else(|| default_dir(self.base_port))
    }
}

/// One directory per base port: two clusters on different ports never
/// share state files or `cluster.json`. With free ports there is no port
/// to name it by, so it is this process's own (printed).
pub fn default_dir(base_port: u16) -> PathBuf {
    let name = match base_port {
        0 => format!("gcounter-cluster-free-{}", std::process::id()),
        port => format!("gcounter-cluster-{port}"),
    };
    std::env::temp_dir().join(name)
}

pub fn run(args: Args) -> ExitCode {
    match args.action {
        Some(Action::Restart(t)) => request(t.which.dir(), "restart", Some(t.id)),
        Some(Action::Kill(t)) => request(t.which.dir(), "kill", Some(t.id)),
        Some(Action::Start(t)) => request(t.which.dir(), "start", Some(t.id)),
        Some(Action::Status(which)) => request(which.dir(), "status", None),
        None => foreground(args),
    }
}

fn foreground(args: Args) -> ExitCode {
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(e) => return fail(1, format!("cluster: cannot find this program: {e}")),
    };
    let dir = args.dir.unwrap_or_else(|| default_dir(args.base_port));
    let mut spec = ClusterSpec::new(program, &dir);
    spec.nodes = args.node_count;
    spec.strategy = args.strategy;
    spec.gossip_interval = args.gossip_interval;
    if args.kv == KvBackendArg::Etcd && !args.strategy.uses_kv() {
        let s = args.strategy;
        return fail(
            gcounter_harness::USAGE,
            format!(
                "cluster: --kv etcd with --strategy {s}: {s} keeps the counter without a KV \
                 service and would never touch etcd; use --strategy per-node, cas or naive"
            ),
        );
    }
    spec.kv = match args.kv.service(args.consistency) {
        Ok(kv) => kv,
        Err(e) => return fail(gcounter_harness::USAGE, format!("cluster: {e}")),
    };
    spec.etcd = match etcd_backend(
        args.kv,
        args.etcd_endpoints,
        args.etcd_creds.creds(),
        args.insecure,
    ) {
        Ok(etcd) => etcd,
        Err(e) => return fail(2, format!("cluster: {e}")),
    };
    spec.base_port = (args.base_port != 0).then_some(args.base_port);
    if let Some(seed) = args.seed {
        spec.seed = seed;
    }
    let control_port = match spec.base_port {
        Some(base) => match u16::try_from(base as usize + args.node_count + 1) {
            Ok(port) => port,
            Err(_) => return fail(2, "cluster: --base-port is too high for that many nodes"),
        },
        None => 0,
    };
    // Registered before any child starts, so a signal during the start is
    // not lost.
    let signals = async_signal::Signals::new([
        async_signal::Signal::Int,
        async_signal::Signal::Term,
        async_signal::Signal::Hup,
    ]);
    let mut signals = match signals {
        Ok(signals) => signals,
        Err(e) => return fail(1, format!("cluster: cannot watch signals: {e}")),
    };
    let control = match std::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::LOCALHOST), control_port))
    {
        Ok(control) => control,
        Err(e) => return fail(1, format!("cluster: control port {control_port}: {e}")),
    };
    let control_addr = match control.local_addr() {
        Ok(addr) => addr,
        Err(e) => return fail(1, format!("cluster: {e}")),
    };
    let mut cluster = match Cluster::start(spec) {
        Ok(cluster) => cluster,
        Err(e) => return fail(1, format!("cluster: {e}")),
    };
    let state = dir.join("cluster.json");
    let control_text = control_addr.to_string();
    let write_state = |cluster: &Cluster| {
        let mut description = cluster.describe();
        description["control"] = control_text.clone().into();
        description["pid"] = std::process::id().into();
        // Written beside and renamed over it: `cluster.json` is rewritten
        // while the cluster runs, and a reader (status, `client --node n1`)
        // must never see it truncated.
        let fresh = state.with_extension("json.new");
        std::fs::write(&fresh, format!("{description:#}\n"))?;
        std::fs::rename(&fresh, &state)
    };
    if let Err(e) = write_state(&cluster) {
        return fail(1, format!("cluster: cannot write {}: {e}", state.display()));
    }
    if let Some(target) = cluster.etcd_target() {
        // etcdctl's --endpoints form, for pointing another command (or
        // etcdctl) at the cluster's etcd with the files of DIR/pki.
        let scheme = if target.tls { "https" } else { "http" };
        let endpoints: Vec<String> = target
            .endpoints
            .iter()
            .map(|e| format!("{scheme}://{e}"))
            .collect();
        let file = dir.join("etcd-endpoints");
        if let Err(e) = std::fs::write(&file, endpoints.join(",") + "\n") {
            return fail(1, format!("cluster: cannot write {}: {e}", file.display()));
        }
    }
    print_table(&cluster, &control_addr.to_string());
    if !cluster.started_over().is_empty() {
        eprintln!(
            "gcounter cluster: starting over: {} held the state of an earlier cluster's {}, \
             now removed (a new cluster is a new counter, on an empty KV service)",
            cluster.spec().dir.display(),
            cluster.started_over().join(", ")
        );
    }

    let stop = async {
        if let Some(Ok(signal)) = signals.next().await {
            let name = match signal {
                async_signal::Signal::Int => "interrupted (Ctrl-C)",
                async_signal::Signal::Term => "terminated",
                _ => "signalled",
            };
            eprintln!("gcounter cluster: {name}: stopping every member");
        }
    };
    let notice = |n: Notice| {
        match n {
        // Only nodes can be started again (etcd members are `etcd<i>`).
        Notice::Exited { id, status } if id.starts_with("etcd") => eprintln!(
            "gcounter cluster: {id} exited on its own ({status}); see its log in the cluster's directory"
        ),
        Notice::Exited { id, status } => eprintln!(
            "gcounter cluster: {id} exited on its own ({status}); `gcounter cluster start {id}` starts it again"
        ),
        Notice::Done { action, node } => eprintln!("gcounter cluster: {action} {node}: done"),
        Notice::Failed { action, node, error } => {
            eprintln!("gcounter cluster: {action} {node}: failed: {error}")
        }
    }
    };
    // Restarts change pids: keep cluster.json true, as `cluster status`
    // and scripts read it.
    let rewrite = |cluster: &Cluster| {
        if let Err(e) = write_state(cluster) {
            eprintln!("gcounter cluster: cannot update {}: {e}", state.display());
        }
    };
    let served = smol::block_on(cluster::supervise(
        &mut cluster,
        control,
        stop,
        notice,
        rewrite,
    ));
    cluster.stop();
    let _ = std::fs::remove_file(&state);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, format!("cluster: {e}")),
    }
}

fn print_table(cluster: &Cluster, control: &str) {
    let spec = cluster.spec();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "gcounter cluster: {} nodes, strategy {}, {}, in {}; Ctrl-C stops them all",
        spec.nodes,
        spec.strategy,
        // With etcd, `spec.kv` is only the stand-in's model; say what holds the keys.
        if cluster.etcd_target().is_some() {
            "etcd".to_string()
        } else {
            spec.kv.to_string()
        },
        spec.dir.display()
    );
    let _ = writeln!(out, "{:<8} {:<22} {:<8} LOG", "ID", "ADDRESS", "PID");
    // With etcd the KV service is a stand-in that runs nothing.
    let kv = cluster.etcd_target().is_none().then(|| cluster.kv());
    for m in kv.into_iter().chain(cluster.nodes()) {
        let pid = m.pid().map(|p| p.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<8} {:<22} {:<8} {}",
            m.id,
            m.addr,
            pid,
            m.log.display()
        );
    }
    if let Some(target) = cluster.etcd_target() {
        let user = cluster.etcd_creds().and_then(|c| c.user.as_deref());
        let _ = writeln!(
            out,
            "etcd at {}, keys under {}{}{}",
            target.endpoints.join(","),
            target.prefix,
            if target.tls {
                ", over TLS"
            } else {
                ", plain http"
            },
            user.map_or(String::new(), |u| format!(", as user {u}")),
        );
    }
    for m in cluster.etcd().into_iter().flat_map(|e| e.members()) {
        let _ = writeln!(
            out,
            "{:<8} {:<22} {:<8} {}",
            m.name,
            m.client_addr,
            "",
            m.log.display()
        );
    }
    let _ = writeln!(
        out,
        "{:<8} {:<22} {:<8} {}",
        "control",
        control,
        "",
        spec.dir.join("cluster.json").display()
    );
    let _ = out.flush();
}

/// Sends one control request to the cluster whose directory is `dir`.
fn request(dir: PathBuf, action: &str, node: Option<String>) -> ExitCode {
    let state = dir.join("cluster.json");
    let control = match read_control(&state) {
        Ok(control) => control,
        Err(e) => return fail(3, e),
    };
    let fields_node = node.clone();
    let fields: Vec<(&str, Value)> = node.map(|n| ("node", n.into())).into_iter().collect();
    let result = smol::block_on(async {
        let mut client = Client::connect(&control, "ctl").await?.with_dest("cluster");
        // A restart waits for the node to listen again: allow for it.
        client
            .request(
                action,
                fields,
                cluster::START_TIMEOUT + Duration::from_secs(5),
            )
            .await
    });
    let reply = match result {
        Ok(reply) => reply,
        Err(e) => return fail(3, format!("cluster at {control}: {e}")),
    };
    let mut out = std::io::stdout().lock();
    if reply.ty() == "status_ok" {
        let _ = writeln!(
            out,
            "{:<8} {:<22} {:<8} {:<8} LOG",
            "ID", "ADDRESS", "RUNNING", "PID"
        );
        for m in reply.body["members"].as_array().into_iter().flatten() {
            let s = |k: &str| match &m[k] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                v => v.to_string(),
            };
            let _ = writeln!(
                out,
                "{:<8} {:<22} {:<8} {:<8} {}",
                s("id"),
                s("addr"),
                s("running"),
                s("pid"),
                s("log")
            );
        }
    } else if reply.ty() == "error" {
        let text = reply.body["text"].as_str().unwrap_or(reply.line.trim());
        let _ = writeln!(out, "error: {text}");
    } else {
        // restart_ok, kill_ok, start_ok: what was done, in words.
        let done = match action {
            "restart" => "restarted",
            "kill" => "killed",
            "start" => "started",
            other => other,
        };
        let who = reply.body["node"].as_str().map(str::to_owned);
        let who = who.or_else(|| fields_node.clone()).unwrap_or_default();
        let _ = writeln!(out, "{who} {done}");
    }
    if reply.ty() == "error" {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// What a running cluster wrote of itself in `state` (its
/// `cluster.json`): members, addresses, the control address.
pub fn read_description(state: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(state).map_err(|e| {
        format!(
            "no cluster running with that directory ({}: {e}); give --dir",
            state.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", state.display()))
}

fn read_control(state: &Path) -> Result<String, String> {
    let json = read_description(state)?;
    json["control"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} has no control address", state.display()))
}
