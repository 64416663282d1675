//! `gcounter client`: one request to one node; prints the reply.

use crate::tcp_args::{addr, fail};
use gcounter_transport_tcp::{Client, ClientError, Secret};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const EXIT_HELP: &str = "Exit status: 0 the node acknowledged; 1 it answered with an error; \
3 no answer (cannot connect, connection lost, or timeout).";

/// Send one request to a node and print its reply (a JSON line)
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_HELP)]
pub struct Args {
    /// The node's address, such as 127.0.0.1:7401
    #[arg(long, value_name = "ADDR", value_parser = addr)]
    node: String,
    /// The client id to send as [default: c<pid>]
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// Seconds to wait for the reply
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    timeout: f64,
    /// The cluster's secret (DIR/cluster.secret of `gcounter cluster`): proves this client may send partition and heal
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    #[command(subcommand)]
    request: Request,
}

#[derive(Debug, clap::Subcommand)]
enum Request {
    /// Add DELTA to the counter
    Add { delta: u64 },
    /// Read the counter
    Read,
    /// Cut the node off from these peers (replacing any earlier cut); the KV service is never cut off
    Partition {
        #[arg(required = true, value_name = "ID")]
        peers: Vec<String>,
    },
    /// Reconnect the node with every peer
    Heal,
}

pub fn run(args: Args) -> ExitCode {
    let Ok(timeout) = Duration::try_from_secs_f64(args.timeout) else {
        return fail(2, format!("--timeout {} is not a duration", args.timeout));
    };
    let id = args
        .id
        .unwrap_or_else(|| format!("c{}", std::process::id()));
    let (ty, fields): (&str, Vec<(&str, Value)>) = match &args.request {
        Request::Add { delta } => ("add", vec![("delta", (*delta).into())]),
        Request::Read => ("read", Vec::new()),
        Request::Partition { peers } => ("partition", vec![("peers", peers.clone().into())]),
        Request::Heal => ("heal", Vec::new()),
    };
    let secret = match args.secret_file.as_deref().map(Secret::read).transpose() {
        Ok(secret) => secret,
        Err(e) => return fail(2, format!("client: {e}")),
    };
    let result = smol::block_on(async {
        let mut client = Client::connect(&args.node, id).await?;
        if let Some(secret) = &secret {
            client.authenticate(secret, timeout).await?;
        }
        client.request(ty, fields, timeout).await
    });
    match result {
        Ok(reply) => {
            let _ = writeln!(std::io::stdout().lock(), "{}", reply.line);
            if reply.ty() == "error" {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e @ ClientError::Error { .. }) => fail(1, e),
        Err(e) => fail(3, format!("{}: {e}", args.node)),
    }
}
