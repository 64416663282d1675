//! `gcounter client`: one request to one node; prints what it answered:
//! the value of a read, `ok` for the rest, or the reply line with
//! `--json`.

use crate::tcp_args::{addr, fail};
use gcounter_transport_tcp::{Client, ClientError, ClientToken, Secret};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const EXIT_HELP: &str = "Exit status: 0 the node acknowledged; 1 it answered with an error; \
3 no answer (cannot connect, connection lost, or timeout); 64 a usage error.";

/// Send one request to a node and print the answer (a read's value, `ok`, or the reply line with --json)
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_HELP)]
pub struct Args {
    /// The node: its address (127.0.0.1:7401, or a port), or its id (n1) in the running cluster of --dir
    #[arg(long, value_name = "ADDR|ID")]
    node: String,
    /// With a node id: the running cluster's directory [default: the one `gcounter cluster` uses on port 7400]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print the reply line as the node sent it
    #[arg(long)]
    json: bool,
    // The help in `help =`, not a doc comment: rustdoc reads `[default:
    // c<pid>]` as a link and `<pid>` as HTML.
    #[arg(
        long,
        value_name = "ID",
        help = "The client id to send as [default: c<pid>]"
    )]
    id: Option<String>,
    /// Seconds to wait for the reply
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    timeout: f64,
    /// The cluster's secret (DIR/cluster.secret of `gcounter cluster`): proves this client may send partition and heal [default with a node id: the cluster's]
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// The token the node requires from clients (its --client-token-file), presented before the request
    #[arg(long, value_name = "FILE")]
    client_token_file: Option<PathBuf>,
    #[command(subcommand)]
    request: Request,
}

#[derive(Debug, clap::Subcommand)]
enum Request {
    /// Add DELTA to the counter
    Add {
        /// How much to add: a whole number, 0 or more (a g-counter only grows)
        #[arg(allow_negative_numbers = true, value_parser = delta)]
        delta: u64,
    },
    /// Read the counter
    Read,
    /// Cut the node off from these peers (replacing any earlier cut); the KV service is never cut off
    Partition {
        /// The ids of the peers to cut the node off from (n1 n2 ...)
        #[arg(required = true, value_name = "ID")]
        peers: Vec<String>,
    },
    /// Reconnect the node with every peer
    Heal,
}

/// An add's delta: a negative one is refused by name, not as a flag clap
/// does not know or "invalid digit found in string".
fn delta(s: &str) -> Result<u64, String> {
    match s.parse::<i128>() {
        Ok(d) if d < 0 => Err(format!(
            "{d} is negative: a g-counter only grows, so an add's delta is 0 or more"
        )),
        Ok(d) => u64::try_from(d).map_err(|_| format!("{d} is more than a counter holds")),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// Where `--node` is (an address, or a member of the cluster in `dir`),
/// the member's id when it names one (the handshake then checks that this
/// node answered), and that cluster's secret file.
fn resolve(node: &str, dir: Option<PathBuf>) -> Result<Resolved, String> {
    if let Ok(a) = addr(node) {
        return Ok((a, None, None));
    }
    let dir = dir.unwrap_or_else(|| crate::cluster::default_dir(7400));
    let json = crate::cluster::read_description(&dir.join("cluster.json"))
        .map_err(|e| format!("`{node}` is not an address, and {e}"))?;
    let addr = json["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"] == node)
        .and_then(|m| m["addr"].as_str())
        .ok_or_else(|| format!("the cluster in {} has no member {node}", dir.display()))?;
    let secret = dir.join("cluster.secret");
    Ok((
        addr.to_string(),
        Some(node.to_string()),
        secret.exists().then_some(secret),
    ))
}

type Resolved = (String, Option<String>, Option<PathBuf>);

/// What a person wants to see of a reply: a read's value, or `ok`.
fn plain(reply: &Value) -> String {
    match &reply["body"]["value"] {
        Value::Null => "ok".to_string(),
        v => v.to_string(),
    }
}

pub fn run(args: Args) -> ExitCode {
    let usage = gcounter_harness::USAGE;
    let Ok(timeout) = Duration::try_from_secs_f64(args.timeout) else {
        return fail(
            usage,
            format!("--timeout {} is not a duration", args.timeout),
        );
    };
    let (node, member, cluster_secret) = match resolve(&args.node, args.dir) {
        Ok(found) => found,
        Err(e) => return fail(usage, format!("client: {e}")),
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
    // Only the control requests need the handshake.
    let control = matches!(args.request, Request::Partition { .. } | Request::Heal);
    let secret_file = args.secret_file.or(cluster_secret.filter(|_| control));
    let secret = match secret_file.as_deref().map(Secret::read).transpose() {
        Ok(secret) => secret,
        Err(e) => return fail(usage, format!("client: {e}")),
    };
    let token = match args
        .client_token_file
        .as_deref()
        .map(ClientToken::read)
        .transpose()
    {
        Ok(token) => token,
        Err(e) => return fail(usage, format!("client: {e}")),
    };
    let result = smol::block_on(async {
        let mut client = Client::connect(&node, id).await?;
        if let Some(member) = member {
            client = client.with_dest(member);
        }
        if let Some(secret) = &secret {
            client.authenticate(secret, timeout).await?;
        } else if let Some(token) = &token {
            client.present_token(token, timeout).await?;
        }
        client.request(ty, fields, timeout).await
    });
    match result {
        Ok(reply) => {
            let parsed: Value = serde_json::from_str(reply.line.trim()).unwrap_or(Value::Null);
            let error = reply.ty() == "error";
            let mut out = std::io::stdout().lock();
            if args.json {
                let _ = writeln!(out, "{}", reply.line);
            } else if error {
                let body = &parsed["body"];
                eprintln!(
                    "error {}: {}",
                    body["code"],
                    body["text"].as_str().unwrap_or("")
                );
            } else {
                let _ = writeln!(out, "{}", plain(&parsed));
            }
            if error {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e @ ClientError::Error { .. }) => fail(1, e),
        Err(e) => fail(3, format!("{node}: {e}")),
    }
}
