//! `gcounter kv`: the KV service (the core's seq-kv or lin-kv model) over TCP.

use crate::tcp_args::{addr, fail, Consistency, LimitArgs};
use gcounter_transport_tcp::{KvOptions, KvServer};
use std::process::ExitCode;

/// Serve Maelstrom's seq-kv or lin-kv over TCP, to any number of clients
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on, such as 127.0.0.1:7400 (a bare port means 127.0.0.1)
    #[arg(long, value_name = "ADDR", value_parser = addr)]
    listen: String,
    /// Which service to be
    #[arg(long, value_enum, default_value = "seq")]
    consistency: Consistency,
    /// Seed for seq-kv's choice of stale states [default: from the clock; logged]
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Exit when standard input closes (supervisors use this so the service never outlives them)
    #[arg(long)]
    stop_on_stdin_eof: bool,
}

pub fn run(args: Args) -> ExitCode {
    let limits = match args.limits.limits() {
        Ok(limits) => limits,
        Err(e) => return fail(2, e),
    };
    let seed = args
        .seed
        .unwrap_or_else(gcounter_transport_tcp::kv::clock_seed);
    let mut options = KvOptions::new(args.listen, args.consistency.into(), seed);
    options.limits = limits;
    options.stop_on_stdin_eof = args.stop_on_stdin_eof;
    let server = match KvServer::bind(options) {
        Ok(server) => server,
        Err(e) => return fail(1, format!("kv: cannot listen: {e}")),
    };
    match smol::block_on(server.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, format!("kv: {e}")),
    }
}
