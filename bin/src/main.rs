//! The `gcounter` binary. With no subcommand it is a Maelstrom node on
//! stdin/stdout, which is how Maelstrom runs it (`--bin gcounter`).
//!
//! Adding a subcommand takes a variant in [`Command`], its arm in `main`
//! and a module of its own beside `stdio_node`.

mod client;
mod cluster;
mod explore;
mod kv;
mod node;
mod sim;
mod stdio_node;
mod tcp_args;
mod test_cmd;

/// See the workspace's Cargo.toml for why.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

const ABOUT: &str = "A grow-only counter for Maelstrom's g-counter workload";

const LONG_ABOUT: &str = "A grow-only counter for Maelstrom's g-counter workload.

With no subcommand, runs one node that reads Maelstrom messages on stdin, \
writes messages (and nothing else) on stdout and logs on stderr.";

const ENV_HELP: &str = "Environment:
  GCOUNTER_STRATEGY   gossip (default) | per-node | cas | naive
  GCOUNTER_KV         seq-kv (default) | lin-kv: the service the KV strategies use
  GCOUNTER_GOSSIP_INTERVAL  ms gossip may hold a change (default 300; 0 eager):
                      shorter is fresher reads for more messages
  GCOUNTER_STATE_DIR  the stdio node's --state-dir, when the flag is not given
  RUST_LOG            stderr log filter, e.g. info or gcounter_core=debug (default: warn)";

#[derive(Debug, Parser)]
#[command(name = "gcounter", version, about = ABOUT, long_about = LONG_ABOUT, after_help = ENV_HELP)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    /// Where the stdio node keeps what it needs after being killed and started again (`<ID>.state`, `<ID>.incarnation`) [env: GCOUNTER_STATE_DIR] [default: nowhere; the wall clock gives the incarnation]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the g-counter test in the deterministic simulator (virtual time, seeded).
    Sim(gcounter_harness::SimArgs),
    /// Try every schedule of a small configuration (model checking): exit 0 all valid, 1 a failing schedule, 2 incomplete.
    Explore(gcounter_explore::ExploreArgs),
    /// Run Maelstrom's g-counter test against node processes (this binary by default).
    Test(gcounter_harness::process::TestArgs),
    /// Serve the KV service (seq-kv or lin-kv) over TCP.
    Kv(kv::Args),
    /// Run one node over TCP.
    Node(node::Args),
    /// Run a KV service and N nodes as local processes; restart one of them.
    Cluster(cluster::Args),
    /// Send one request (add, read, partition, heal) to a node over TCP.
    Client(client::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and --version go to stdout with status 0; a usage error
        // gets its own status, apart from the verdicts' 0, 1 and 2.
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(gcounter_harness::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    match cli.command {
        None => stdio_node::run(cli.state_dir),
        Some(command) => match command {
            Command::Sim(args) => sim::run(&args),
            Command::Explore(args) => explore::run(&args),
            Command::Test(args) => test_cmd::run(&args),
            Command::Kv(args) => kv::run(args),
            Command::Node(args) => node::run(args),
            Command::Cluster(args) => cluster::run(args),
            Command::Client(args) => client::run(args),
        },
    }
}

/// Logs go to stderr: stdout carries messages only.
fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .target(env_logger::Target::Stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::{CommandFactory, Parser};

    /// clap checks a definition only when it builds the command, and a
    /// value's type only when it is read: this catches the first for every
    /// subcommand and flag at once.
    #[test]
    fn the_command_line_is_well_defined() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("gcounter").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Every command that takes `--etcd-endpoints`, with the flag given, so
    /// its value is read. `cluster`'s once panicked here ("Mismatch between
    /// definition and access of `etcd_endpoints`"). (`gcounter node` names
    /// etcd in `--kv etcd://...`, parsed below too.)
    #[test]
    fn etcd_endpoints_parse_wherever_they_are_taken() {
        let cli = parse(&[
            "cluster",
            "--kv",
            "etcd",
            "--etcd-endpoints",
            "127.0.0.1:2379,localhost:2381",
        ]);
        let Some(Command::Cluster(args)) = cli.command else {
            panic!("not cluster")
        };
        assert!(
            format!("{args:?}")
                .contains(r#"etcd_endpoints: Some(["127.0.0.1:2379", "localhost:2381"])"#),
            "{args:?}"
        );
        // A bare port is loopback, as everywhere else; a bad one is a usage error.
        let cli = parse(&["cluster", "--kv", "etcd", "--etcd-endpoints", "2379"]);
        assert!(
            format!("{cli:?}").contains(r#"["127.0.0.1:2379"]"#),
            "{cli:?}"
        );
        assert!(Cli::try_parse_from(["gcounter", "cluster", "--etcd-endpoints", "a:b"]).is_err());

        let cli = parse(&[
            "test",
            "--transport",
            "tcp",
            "--kv",
            "etcd",
            "--etcd-endpoints",
            "127.0.0.1:2379,127.0.0.1:2381",
        ]);
        let Some(Command::Test(args)) = cli.command else {
            panic!("not test")
        };
        assert_eq!(args.etcd_endpoints, ["127.0.0.1:2379", "127.0.0.1:2381"]);

        let cli = parse(&[
            "node",
            "--id",
            "n0",
            "--listen",
            "7401",
            "--strategy",
            "cas",
            "--kv-addr",
            "etcd://127.0.0.1:2379,127.0.0.1:2381/x/",
        ]);
        assert!(matches!(cli.command, Some(Command::Node(_))));
    }
}
