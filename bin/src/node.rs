//! `gcounter node`: one counter node over TCP.

use crate::tcp_args::{addr, fail, kv_addr, peer, strategy, Consistency, LimitArgs};
use gcounter_core::{Config, StrategyKind};
use gcounter_transport_tcp::{next_incarnation, NodeOptions, NodeServer};
use std::path::PathBuf;
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
    /// The KV service's address, or etcd's members as etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (keys go under PREFIX, default gcounter/; --consistency lin reads linearizably, seq serializably) (needed by every strategy but gossip)
    #[arg(long, value_name = "ADDR", value_parser = kv_addr)]
    kv: Option<String>,
    /// Which KV service runs at --kv (its name is the dest of KV requests)
    #[arg(long, value_enum, default_value = "seq")]
    consistency: Consistency,
    /// gossip | per-node | cas | naive
    #[arg(long, value_name = "S", default_value = "gossip", value_parser = strategy)]
    strategy: StrategyKind,
    /// Directory for the incarnation counter and what the node stores to survive a crash (needed for gossip to keep acknowledged adds across kill -9) [default: the wall clock gives the incarnation, nothing is stored]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Start cut off from this peer, as after `partition` (repeat for each)
    #[arg(long, value_name = "ID")]
    cut: Vec<String>,
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
    let mut options = NodeOptions::new(args.id, args.listen);
    options.peers = args.peer;
    options.kv = args.kv;
    options.config = Config {
        strategy: args.strategy,
        kv: args.consistency.into(),
        ..Config::default()
    };
    options.state_dir = args.state_dir.clone();
    options.cut = args.cut;
    options.limits = limits;
    options.stop_on_stdin_eof = args.stop_on_stdin_eof;
    if let Err(e) = options.check() {
        return fail(2, format!("node: {e}"));
    }
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
