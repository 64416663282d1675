//! `gcounter test`: Maelstrom's g-counter test for any node binary, run as
//! real processes. Flags are named as Maelstrom names them.

use super::run::{run_test, NetObserved, TestConfig, TestRun};
use super::store::{new_run_dir, write_error, write_results};
use super::tcp::{run_tcp_test, TcpTestConfig};
use super::NodeCommand;
use crate::params::{parse_strategy, RunParams};
use crate::stats::Quantiles;
use crate::testcore::Progress;
use gcounter_core::{Config, KvKind, StrategyKind};
use gcounter_transport_tcp::EtcdBackend;
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// How the test reaches the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Transport {
    /// Node processes on stdin/stdout, the runner routing every message,
    /// as Maelstrom does.
    #[default]
    Stdio,
    /// A TCP cluster of this binary's `gcounter node`s and a `gcounter kv`
    /// on loopback, which the runner starts and partitions.
    Tcp,
}

/// Where the KV strategies keep the counter on `--transport tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KvBackend {
    /// `gcounter kv`, the model of Maelstrom's `seq-kv`.
    #[default]
    Gcounter,
    /// etcd v3: three local members from the `etcd` binary on PATH (or the
    /// running etcd at --etcd-endpoints); reads are serializable, as
    /// `seq-kv` allows.
    Etcd,
}

/// Runs Maelstrom's g-counter test against node processes that speak
/// Maelstrom's protocol on stdin/stdout (this binary by default), or
/// against a TCP cluster of this binary (`--transport tcp`).
#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// The workload. Only g-counter.
    #[arg(short = 'w', long = "workload", default_value = "g-counter", value_parser = ["g-counter"])]
    pub workload: String,
    /// The node program and its arguments (default: this gcounter binary).
    #[arg(long = "bin", value_name = "PATH [ARGS]...", num_args = 1..)]
    pub bin: Vec<String>,
    #[command(flatten)]
    pub params: RunParams,
    /// Clients: a number, or `Nn` for N per node (default: one per node).
    #[arg(long, value_name = "N|Nn")]
    pub concurrency: Option<String>,
    /// Copy every node's stderr to ours (it is always kept in node-logs/).
    #[arg(long)]
    pub log_stderr: bool,
    /// Where results go: <STORE>/g-counter/<timestamp>/, and <STORE>/latest.
    #[arg(long, value_name = "DIR", default_value = "store")]
    pub store: PathBuf,
    /// Sets GCOUNTER_STRATEGY for the nodes (for the gcounter binary);
    /// otherwise the environment is passed through as it is. With
    /// `--transport tcp`: the nodes' --strategy (default gossip).
    #[arg(long, value_parser = parse_strategy)]
    pub strategy: Option<StrategyKind>,
    /// Run the test N times, seeds --seed, --seed + 1, ..., and summarize
    /// (a page per run and an index page over them). Unless --latency is
    /// given, the runs cycle through network latencies from 0 to 200 ms,
    /// constant, uniform and exponential, which open the race windows a
    /// single zero-latency run keeps shut. Exit 1 if any run is invalid.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub runs: Option<u64>,
    /// stdio: node processes on stdin/stdout, as Maelstrom runs them. tcp:
    /// a local TCP cluster of this binary (`gcounter cluster`'s), started
    /// by the test, partitioned through the nodes' control messages; no
    /// --bin, --latency or --log-stderr.
    #[arg(long, value_enum, default_value_t = Transport::Stdio)]
    pub transport: Transport,
    /// With --transport tcp: where the KV strategies keep the counter.
    #[arg(long, value_enum, default_value_t = KvBackend::Gcounter)]
    pub kv: KvBackend,
    /// With --kv etcd: a running etcd's members (HOST:PORT,...) instead of
    /// three started for the test.
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
}

impl TestArgs {
    fn concurrency(&self) -> Result<usize, String> {
        let nodes = self.params.node_count as usize;
        match self.concurrency.as_deref() {
            None => Ok(nodes),
            Some(c) => {
                let (n, per_node) = match c.strip_suffix('n') {
                    Some(n) => (n, true),
                    None => (c, false),
                };
                let n: usize = n
                    .parse()
                    .map_err(|_| format!("--concurrency {c}: not N or Nn"))?;
                let total = if per_node { n * nodes } else { n };
                if total == 0 {
                    return Err("--concurrency must be at least 1".into());
                }
                Ok(total)
            }
        }
    }

    /// The etcd the TCP cluster uses, if any.
    pub(super) fn etcd(&self) -> Option<EtcdBackend> {
        match (self.kv, self.etcd_endpoints.is_empty()) {
            (KvBackend::Gcounter, _) => None,
            (KvBackend::Etcd, true) => Some(EtcdBackend::Local { members: 3 }),
            (KvBackend::Etcd, false) => Some(EtcdBackend::External(self.etcd_endpoints.clone())),
        }
    }

    /// Refuses what the transport cannot do.
    fn check_transport(&self) -> Result<(), String> {
        if !self.etcd_endpoints.is_empty() && self.kv != KvBackend::Etcd {
            return Err("--etcd-endpoints needs --kv etcd".into());
        }
        if self.transport != Transport::Tcp {
            if self.kv == KvBackend::Etcd {
                return Err("--kv etcd needs --transport tcp: over stdio the KV \
                            services are the runner's models"
                    .into());
            }
            return Ok(());
        }
        if let Some(EtcdBackend::Local { .. }) = self.etcd() {
            gcounter_transport_tcp::etcd::cluster::find_etcd()?;
        }
        if !self.bin.is_empty() {
            return Err(
                "--bin is not supported with --transport tcp: the cluster runs this \
                 gcounter binary's `gcounter node` (use --strategy to pick its strategy)"
                    .into(),
            );
        }
        if self.params.latency > 0.0 {
            return Err(
                "--latency cannot apply with --transport tcp: the nodes talk over \
                 real loopback sockets, which the test does not delay"
                    .into(),
            );
        }
        if self.log_stderr {
            return Err(
                "--log-stderr is not supported with --transport tcp: each member \
                 logs to its own file, kept in node-logs/ of the results"
                    .into(),
            );
        }
        Ok(())
    }

    /// The command line that replays this test's configuration with
    /// `seed` (over stdio).
    fn replay(&self, seed: u64) -> String {
        let mut cmd = String::from("gcounter test");
        if let Some(s) = self.strategy {
            cmd += &format!(" --strategy {s}");
        }
        if let Some(c) = &self.concurrency {
            cmd += &format!(" --concurrency {c}");
        }
        cmd += &format!(" {}", self.params.flags(seed));
        if !self.bin.is_empty() {
            cmd += &format!(" --bin {}", self.bin.join(" "));
        }
        cmd
    }

    fn command(&self, self_exe: &Path) -> NodeCommand {
        let (program, args) = match self.bin.split_first() {
            Some((p, rest)) => (PathBuf::from(p), rest.to_vec()),
            None => (self_exe.to_path_buf(), Vec::new()),
        };
        let env = self
            .strategy
            .map(|s| (Config::STRATEGY_VAR.to_string(), s.to_string()))
            .into_iter()
            .collect();
        NodeCommand { program, args, env }
    }
}

/// Runs `gcounter test`; `self_exe` is the node to run without `--bin`
/// (and the cluster's binary with `--transport tcp`).
/// Exit status as Maelstrom's: 0 valid, 1 invalid, 2 unknown; 255 when the
/// test could not run (a node broke the protocol, exited, or never started).
pub fn run(args: &TestArgs, self_exe: &Path) -> ExitCode {
    let checked = args
        .concurrency()
        .and_then(|c| args.check_transport().map(|()| c));
    let concurrency = match checked {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gcounter test: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(n) = args.runs {
        return super::runs::run(args, self_exe, concurrency, n);
    }
    let seed = args.params.seed.unwrap_or_else(|| fastrand::u64(..));
    let dir = match run_dir(args) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let node_count = args.params.node_count as usize;
    let common = Common {
        concurrency,
        seed,
        dir,
    };
    let (settings, result) = test_once(args, self_exe, &common);
    finish(&common.dir, &settings, node_count, result)
}

/// A new results directory in the store, or the exit status for a store
/// where none can be made (said on stderr).
pub(super) fn run_dir(args: &TestArgs) -> Result<PathBuf, ExitCode> {
    new_run_dir(&args.store, &args.workload).map_err(|e| {
        eprintln!(
            "gcounter test: cannot create a results directory in {}: {e}",
            args.store.display()
        );
        ExitCode::from(255)
    })
}

/// What every transport's test takes from the flags the same way.
pub(super) struct Common {
    pub concurrency: usize,
    pub seed: u64,
    /// The results directory.
    pub dir: PathBuf,
}

/// One test on the chosen transport: the settings to record, and the run
/// or the error.
pub(super) fn test_once(
    args: &TestArgs,
    self_exe: &Path,
    common: &Common,
) -> (Value, Result<TestRun, String>) {
    match args.transport {
        Transport::Stdio => stdio_test(args, self_exe, common),
        Transport::Tcp => tcp_test(args, self_exe, common),
    }
}

/// The test over stdio: the settings to record, and the run or the error.
fn stdio_test(
    args: &TestArgs,
    self_exe: &Path,
    common: &Common,
) -> (Value, Result<TestRun, String>) {
    let Common {
        concurrency,
        seed,
        ref dir,
    } = *common;
    let command = args.command(self_exe);
    let cfg = TestConfig {
        command: command.clone(),
        node_count: args.params.node_count as usize,
        concurrency,
        workload: args.params.workload(),
        nemesis: args.params.nemesis(),
        latency: args.params.latency(),
        seed,
        log_dir: dir.join("node-logs"),
        work_dir: dir.join("nodes"),
        log_stderr: args.log_stderr,
        init_timeout: Duration::from_secs(10),
    };
    let settings = json!({
        "workload": args.workload,
        "transport": "stdio",
        "bin": std::iter::once(command.program.display().to_string()).chain(command.args.clone()).collect::<Vec<_>>(),
        "env": command.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "node_count": cfg.node_count,
        "concurrency": concurrency,
        "workload_config": cfg.workload,
        "nemesis": cfg.nemesis,
        "latency": cfg.latency,
        "seed": seed,
        "replay": args.replay(seed),
    });
    eprintln!(
        "gcounter test: {} node(s) of {}, seed {seed}, results in {}",
        cfg.node_count,
        command.program.display(),
        dir.display()
    );
    let total = cfg.workload.time_limit + cfg.workload.recovery;
    let result = with_progress(total, |every, report| run_test(&cfg, every, report));
    (settings, result.map_err(|e| e.to_string()))
}

/// The test against a TCP cluster of `self_exe`: the settings to record,
/// and the run or the error.
fn tcp_test(args: &TestArgs, self_exe: &Path, common: &Common) -> (Value, Result<TestRun, String>) {
    let Common {
        concurrency,
        seed,
        ref dir,
    } = *common;
    let strategy = args.strategy.unwrap_or(StrategyKind::Gossip);
    let cfg = TcpTestConfig {
        program: self_exe.to_path_buf(),
        strategy,
        node_count: args.params.node_count as usize,
        concurrency,
        workload: args.params.workload(),
        nemesis: args.params.nemesis(),
        seed,
        cluster_dir: dir.join("cluster"),
        log_dir: dir.join("node-logs"),
        etcd: args.etcd(),
    };
    let mut replay = format!("gcounter test --transport tcp --strategy {strategy}");
    if let Some(etcd) = &cfg.etcd {
        replay += " --kv etcd";
        if let EtcdBackend::External(endpoints) = etcd {
            replay += &format!(" --etcd-endpoints {}", endpoints.join(","));
        }
    }
    if let Some(c) = &args.concurrency {
        replay += &format!(" --concurrency {c}");
    }
    let settings = json!({
        "workload": args.workload,
        "transport": "tcp",
        "bin": [cfg.program.display().to_string()],
        "strategy": strategy.name(),
        "kv": KvKind::SeqKv.name(),
        "kv_backend": if cfg.etcd.is_some() { "etcd" } else { "gcounter kv" },
        "node_count": cfg.node_count,
        "concurrency": concurrency,
        "workload_config": cfg.workload,
        "nemesis": cfg.nemesis,
        "partitions": "a node cut off from a peer drops traffic both ways, \
            so a one-way grudge (majorities ring) cuts its link both ways",
        "latency": "none added: loopback TCP",
        "cluster_dir": cfg.cluster_dir.display().to_string(),
        "seed": seed,
        "replay": format!("{replay} {}", args.params.flags(seed)),
    });
    eprintln!(
        "gcounter test: a TCP cluster of {} {strategy} node(s) and {}, seed {seed}, results in {}",
        cfg.node_count,
        if cfg.etcd.is_some() {
            "etcd (serializable reads)"
        } else {
            KvKind::SeqKv.name()
        },
        dir.display()
    );
    let total = cfg.workload.time_limit + cfg.workload.recovery;
    let result = with_progress(total, |every, report| run_tcp_test(&cfg, every, report));
    (settings, result.map_err(|e| e.to_string()))
}

/// Writes the results (or the error) and prints the summary; the exit
/// status.
fn finish(
    dir: &Path,
    settings: &Value,
    node_count: usize,
    result: Result<TestRun, String>,
) -> ExitCode {
    let nodes = crate::workload::node_ids(node_count);
    match result {
        Ok(run) => {
            if let Err(e) = write_results(dir, &run, settings, &nodes) {
                eprintln!("gcounter test: writing results to {}: {e}", dir.display());
            }
            let _ = print_summary(&mut std::io::stdout().lock(), &run, dir);
            ExitCode::from(run.check.verdict.exit_code())
        }
        Err(text) => {
            let _ = write_error(dir, &text, settings);
            eprintln!("gcounter test: error: {text}");
            eprintln!("node logs: {}", dir.join("node-logs").display());
            ExitCode::from(255)
        }
    }
}

/// Runs `f` with a progress bar on a terminal, or a plain line every few
/// seconds when stderr is not one. `total` is the expected length of the
/// test.
fn with_progress<T>(
    total: Duration,
    f: impl FnOnce(Duration, &mut dyn FnMut(&Progress)) -> T,
) -> T {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total.as_millis() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let result = f(Duration::from_millis(200), &mut |p| {
            bar.set_position(p.elapsed.as_millis() as u64);
            bar.set_message(line(p));
        });
        bar.finish_and_clear();
        result
    } else {
        f(Duration::from_secs(5), &mut |p| {
            eprintln!("gcounter test: {}", line(p))
        })
    }
}

fn line(p: &Progress) -> String {
    format!(
        "{:.0}/{:.0} s  ok {}  info {}  fail {}  {}  nemesis: {}",
        p.elapsed.as_secs_f64(),
        p.time_limit.as_secs_f64(),
        p.ok,
        p.info,
        p.fail,
        p.phase,
        p.nemesis
    )
}

fn quantiles(q: &Option<Quantiles>) -> String {
    q.map_or("-".into(), |q| {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            q.p50, q.p99, q.max
        )
    })
}

/// The short human summary printed at the end.
pub fn print_summary(out: &mut impl Write, run: &TestRun, dir: &Path) -> std::io::Result<()> {
    let c = &run.check;
    let s = &run.stats;
    writeln!(out, "verdict: {}", c.verdict.name())?;
    let finals: Vec<String> = c
        .final_reads
        .iter()
        .map(|r| format!("{} {}", r.node, r.value))
        .collect();
    let acceptable = crate::report::ranges(&c.acceptable);
    writeln!(
        out,
        "  acknowledged sum {}, {} indeterminate add(s); acceptable {}; final reads: {}",
        c.definite_sum,
        c.indeterminate_adds,
        acceptable,
        finals.join(", ")
    )?;
    if !c.missing_final_reads.is_empty() {
        writeln!(
            out,
            "  no final read from: {}",
            c.missing_final_reads.join(", ")
        )?;
    }
    writeln!(out, "  lost: {} (a sum of increments)", c.lost)?;
    let windows = crate::faults::windows(&run.nemesis, run.elapsed);
    if !windows.is_empty() {
        writeln!(out, "  faults: {}", super::store::fault_summary(&windows))?;
    }
    if let Some(e) = crate::explain::explain(&run.history, c, &run.trace, &run.nemesis) {
        for line in e.lines() {
            writeln!(out, "  {line}")?;
        }
    }
    if run.lost_to_kills > 0 {
        writeln!(
            out,
            "  messages lost with killed nodes: {}",
            run.lost_to_kills
        )?;
    }
    writeln!(
        out,
        "  operations ok {} / info {} / fail {}",
        s.ops.all.ok, s.ops.all.info, s.ops.all.fail
    )?;
    let mpo = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
    match run.net_observed {
        NetObserved::All => writeln!(
            out,
            "  msgs-per-op: all {}, servers {}",
            mpo(s.net.all.msgs_per_op),
            mpo(s.net.servers.msgs_per_op)
        )?,
        NetObserved::ClientsOnly => writeln!(
            out,
            "  msgs-per-op: not observed (servers talk on sockets the runner does not see); \
             client messages: {}",
            s.net.clients.msg_count
        )?,
    }
    writeln!(out, "  add latency: {}", quantiles(&s.latency_ms.add))?;
    writeln!(out, "  read latency: {}", quantiles(&s.latency_ms.read))?;
    writeln!(out, "  results: {}", dir.display())?;
    writeln!(out, "  open {}", dir.join("index.html").display())?;
    Ok(())
}
