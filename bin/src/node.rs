//! `gcounter node`: one counter node over TCP.

use crate::tcp_args::{addr, fail, kv_addr, peer, strategy, Consistency, LimitArgs};
use gcounter_core::{Config, StrategyKind};
use gcounter_transport_tcp::{next_incarnation, NodeOptions, NodeServer};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Run one node over TCP: clients and peers connect to --listen; it dials its peers and the KV service
#[derive(Debug, clap::Args)]
pub struct Args {
    /// This node's id, such as n0
    #[arg(long, value_name = "ID")]
    id: String,
    /// Address to listen on for clients, peers and control messages, such as 127.0.0.1:7401 (a bare port means 127.0.0.1)
    #[arg(long, value_name = "ADDR", value_parser = addr)]
    listen: String,
    /// Another node: its id and address (repeat for each)
    #[arg(long, value_name = "ID=ADDR", value_parser = peer)]
    peer: Vec<(String, String)>,
    /// The cluster's nodes from a file, one ID=HOST:PORT a line (blank lines and # comments skipped); this node's own line is skipped, so every host can be given the same file
    #[arg(long, value_name = "FILE")]
    peers_file: Option<PathBuf>,
    /// Where the KV service is: `gcounter kv`'s address, or etcd's members as `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` (`etcds://` over TLS, with --cacert; keys go under PREFIX, default `gcounter/`; --consistency lin reads linearizably, seq serializably) (needed by every strategy but gossip). `--kv` is kept as another name; elsewhere `--kv` names a kind of service, not an address
    #[arg(long = "kv-addr", alias = "kv", value_name = "ADDR", value_parser = kv_addr)]
    kv: Option<String>,
    /// Which KV service runs at --kv-addr (its name is the dest of KV requests)
    #[arg(long, value_enum, default_value = "seq")]
    consistency: Consistency,
    /// gossip | per-node | cas | naive
    #[arg(long, value_name = "S", default_value = "gossip", value_parser = strategy)]
    strategy: StrategyKind,
    /// gossip: how long the node may hold a change before sending it, in ms; 0 is eager (a round right after every add). Shorter is fresher reads on other nodes for more messages: a round sends at most one message to each peer
    #[arg(long, value_name = "MS", default_value_t = 300)]
    gossip_interval: u64,
    /// Directory for the incarnation counter and what the node stores to survive a crash (needed for gossip to keep acknowledged adds across kill -9) [default: the wall clock gives the incarnation, nothing is stored]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The cluster's secret (a file only its owner may read, such as DIR/cluster.secret of `gcounter cluster`; any 32+ hex digits, the same on every node): peers prove they hold it before the node takes their messages. Required with --peer / --peers-file
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Serve only clients that present the token on this file's first line (a file only its owner may read; gcounter client --client-token-file): a connection without it is answered with one error and closed. Peers prove the cluster secret instead [default: any client is served]
    #[arg(long, value_name = "FILE")]
    client_token_file: Option<PathBuf>,
    /// Start cut off from this peer, as after `partition` (repeat for each)
    #[arg(long, value_name = "ID")]
    cut: Vec<String>,
    #[command(flatten)]
    etcd_creds: gcounter_harness::process::EtcdCredArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Exit when standard input closes (supervisors use this so nodes never outlive them)
    #[arg(long)]
    stop_on_stdin_eof: bool,
}

pub fn run(args: Args) -> ExitCode {
    let limits = match args.limits.limits() {
        Ok(limits) => limits,
        Err(e) => return fail(2, e),
    };
    let mut peers = args.peer;
    if let Some(file) = &args.peers_file {
        match peers_from_file(file, &args.id) {
            Ok(more) => peers.extend(more),
            Err(e) => return fail(2, format!("node: {e}")),
        }
    }
    let mut options = NodeOptions::new(args.id, args.listen);
    options.peers = peers;
    if let Some(target) = args
        .kv
        .as_deref()
        .and_then(|kv| gcounter_transport_tcp::EtcdTarget::parse(kv).ok().flatten())
    {
        match args.etcd_creds.creds().load(target.tls) {
            Ok(security) => options.etcd_security = security,
            Err(e) => return fail(2, format!("node: {e}")),
        }
    } else if !args.etcd_creds.creds().is_empty() {
        return fail(2, "node: --cacert, --cert, --key and --user are for etcd (--kv-addr etcd://... or etcds://...)");
    }
    options.kv = args.kv;
    options.config = Config {
        strategy: args.strategy,
        kv: args.consistency.into(),
        gossip_interval: std::time::Duration::from_millis(args.gossip_interval),
        ..Config::default()
    };
    options.state_dir = args.state_dir.clone();
    options.cut = args.cut;
    if let Some(file) = &args.secret_file {
        match gcounter_transport_tcp::Secret::read(file) {
            Ok(secret) => options.secret = Some(secret),
            Err(e) => return fail(2, format!("node: {e}")),
        }
    }
    if let Some(file) = &args.client_token_file {
        match gcounter_transport_tcp::ClientToken::read(file) {
            Ok(token) => options.client_token = Some(token),
            Err(e) => return fail(2, format!("node: {e}")),
        }
    }
    options.limits = limits;
    options.stop_on_stdin_eof = args.stop_on_stdin_eof;
    if let Err(e) = options.check() {
        return fail(2, format!("node: {e}"));
    }
    // Held until this function returns, that is for the node's life: a
    // second process on the same state is refused before it takes an
    // incarnation or reads the state (see `gcounter_state::lock_state`).
    let _lock = match &args.state_dir {
        Some(dir) => match gcounter_transport_tcp::lock_state(
            dir,
            &options.id,
            gcounter_transport_tcp::LOCK_WAIT,
        ) {
            Ok(lock) => Some(lock),
            Err(e) => return fail(2, format!("node: {e}")),
        },
        None => None,
    };
    options.config.incarnation = match next_incarnation(args.state_dir.as_deref(), &options.id) {
        Ok(incarnation) => incarnation,
        Err(e) => return fail(1, format!("node: cannot record the incarnation: {e}")),
    };
    let server = match NodeServer::bind(options) {
        Ok(server) => server,
        Err(e) => return fail(1, format!("node: cannot listen: {e}")),
    };
    match smol::block_on(server.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, format!("node: {e}")),
    }
}

/// The peers a `--peers-file` lists, without `me`.
fn peers_from_file(file: &Path, me: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut peers = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (id, addr) = peer(line).map_err(|e| format!("{}:{}: {e}", file.display(), n + 1))?;
        if id != me {
            peers.push((id, addr));
        }
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_file_skips_this_node_blank_lines_and_comments() {
        let file = std::env::temp_dir().join(format!("gcounter-peers-{}", std::process::id()));
        std::fs::write(
            &file,
            "# the cluster\nn0=10.0.0.1:7401\n\nn1=10.0.0.2:7401 # b\n",
        )
        .unwrap();
        let peers = peers_from_file(&file, "n0");
        std::fs::write(&file, "n0=10.0.0.1:7401\nn1 10.0.0.2\n").unwrap();
        let bad = peers_from_file(&file, "n0");
        let _ = std::fs::remove_file(&file);
        assert_eq!(peers.unwrap(), [("n1".into(), "10.0.0.2:7401".into())]);
        assert!(bad
            .unwrap_err()
            .ends_with(":2: `n1 10.0.0.2` is not ID=ADDR (such as n1=127.0.0.1:7402)"));
    }
}
