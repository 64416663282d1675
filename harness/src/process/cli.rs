//! `gcounter test`: Maelstrom's g-counter test for any node binary, run as
//! real processes. Flags are named as Maelstrom names them.

use super::ran::{describe, shell_word, warnings, Choice, Ran};
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

/// Where the KV strategies keep the counter: `--kv`, named as
/// `gcounter sim` and `gcounter explore` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KvChoice {
    /// Maelstrom's sequentially consistent store (the runner's model over
    /// stdio; `gcounter kv` on TCP).
    #[value(name = "seq-kv")]
    SeqKv,
    /// Maelstrom's linearizable store.
    #[value(name = "lin-kv")]
    LinKv,
    /// etcd v3 (`--transport tcp` only): three local members from the
    /// `etcd` binary on PATH, or the running etcd at --etcd-endpoints;
    /// reads are serializable, as `seq-kv` allows.
    Etcd,
}

impl KvChoice {
    fn name(self) -> &'static str {
        match self {
            KvChoice::SeqKv => "seq-kv",
            KvChoice::LinKv => "lin-kv",
            KvChoice::Etcd => "etcd",
        }
    }

    /// The Maelstrom service the nodes are told to use.
    fn service(self) -> KvKind {
        match self {
            KvChoice::LinKv => KvKind::LinKv,
            KvChoice::SeqKv | KvChoice::Etcd => KvKind::SeqKv,
        }
    }
}

/// Runs Maelstrom's g-counter test against node processes that speak
/// Maelstrom's protocol on stdin/stdout (this binary by default), or
/// against a TCP cluster of this binary (`--transport tcp`).
#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// The node program and its arguments (default: this gcounter binary).
    /// It takes the rest of the command line, dashes and all
    /// (`--bin java -Xmx256M -jar node.jar`), so put it last.
    #[arg(long = "bin", value_name = "PATH [ARGS]...", num_args = 1.., allow_hyphen_values = true)]
    pub bin: Vec<String>,
    #[command(flatten)]
    pub params: RunParams,
    /// Copy every node's stderr to ours, each line prefixed with the node's
    /// id and cut at 64 KiB (node-logs/ always keeps every byte).
    #[arg(long)]
    pub log_stderr: bool,
    /// Where results go: `<STORE>/g-counter/<timestamp>/`, and `<STORE>/latest`.
    #[arg(long, value_name = "DIR", default_value = "store")]
    pub store: PathBuf,
    /// gossip, per-node, cas, naive or gossip-max: sets GCOUNTER_STRATEGY for the
    /// nodes (for the gcounter binary); otherwise the environment is passed
    /// through as it is (default gossip). With `--transport tcp`: the
    /// nodes' --strategy.
    #[arg(long, value_parser = parse_strategy, value_name = "STRATEGY")]
    pub strategy: Option<StrategyKind>,
    /// gossip: how long a node may hold a change before sending it, in ms
    /// (default 300; 0 is eager, a round right after every add). Shorter
    /// is fresher reads for more messages: a round sends at most one
    /// message to each peer. Sets GCOUNTER_GOSSIP_INTERVAL for the nodes
    /// over stdio (a --bin node may read it too); with `--transport tcp`,
    /// the nodes' --gossip-interval.
    #[arg(long, value_name = "MS")]
    pub gossip_interval: Option<u64>,
    /// Run the test N times, seeds --seed, --seed + 1, ..., and summarize
    /// (a page per run and an index page over them). Unless --latency is
    /// given, the runs cycle through network latencies from 0 to 200 ms,
    /// constant, uniform and exponential, which open the race windows a
    /// single zero-latency run keeps shut; unless --adversary is given,
    /// run 1 keeps Maelstrom's random choices and runs 2, 3 and 4 take
    /// the adversaries stale,adds-first, slow-kv and
    /// reorder,kill-after-ack in turn, so `--runs 4` tries each once. A hunt: it stops at the first invalid run (exit
    /// 1), unless --keep-going.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub runs: Option<u64>,
    /// With --runs: run all N even after one is invalid (to see how often
    /// a node fails, rather than whether it does).
    #[arg(long, requires = "runs")]
    pub keep_going: bool,
    /// stdio: node processes on stdin/stdout, as Maelstrom runs them. tcp:
    /// a local TCP cluster of this binary (`gcounter cluster`'s), started
    /// by the test, partitioned through the nodes' control messages; no
    /// --bin, --latency or --log-stderr.
    #[arg(long, value_enum, default_value_t = Transport::Stdio)]
    pub transport: Transport,
    /// Where the KV strategies keep the counter: seq-kv, lin-kv (sets
    /// GCOUNTER_KV for the nodes over stdio; without it the environment is
    /// passed through, default seq-kv) or etcd (--transport tcp only).
    #[arg(long, value_enum, value_name = "KV")]
    pub kv: Option<KvChoice>,
    /// With --kv etcd: a running etcd's members ([https://]HOST:PORT,...)
    /// instead of three started for the test.
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
    /// With --kv etcd and no --etcd-endpoints: start the etcd members on
    /// plain http without authentication, for a quick look (by default
    /// they run with TLS, client certificates and users).
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub etcd_creds: super::EtcdCredArgs,
}

impl TestArgs {
    /// The etcd the TCP cluster uses, if any.
    pub(super) fn etcd(&self) -> Option<EtcdBackend> {
        match (self.kv, self.etcd_endpoints.is_empty()) {
            (Some(KvChoice::Etcd), true) => Some(EtcdBackend::Local {
                members: 3,
                secure: !self.insecure,
            }),
            (Some(KvChoice::Etcd), false) => Some(EtcdBackend::External {
                endpoints: self.etcd_endpoints.clone(),
                creds: self.etcd_creds.creds(),
            }),
            _ => None,
        }
    }

    /// Refuses what the transport cannot do.
    fn check_transport(&self) -> Result<(), String> {
        if !self.etcd_endpoints.is_empty() && self.kv != Some(KvChoice::Etcd) {
            return Err("--etcd-endpoints needs --kv etcd".into());
        }
        if !self.etcd_creds.creds().is_empty() && self.etcd_endpoints.is_empty() {
            return Err("--cacert, --cert, --key and --user are for a running etcd \
                        (--etcd-endpoints); the etcd a test starts makes its own"
                .into());
        }
        if self.insecure && (self.kv != Some(KvChoice::Etcd) || !self.etcd_endpoints.is_empty()) {
            return Err(
                "--insecure is for the etcd the test starts (--kv etcd without \
                        --etcd-endpoints)"
                    .into(),
            );
        }
        if self.transport != Transport::Tcp {
            if self.kv == Some(KvChoice::Etcd) {
                return Err("--kv etcd needs --transport tcp: over stdio the KV \
                            services are the runner's models"
                    .into());
            }
            return Ok(());
        }
        let strategy = self.strategy.unwrap_or(StrategyKind::Gossip);
        if self.kv == Some(KvChoice::Etcd) && !strategy.uses_kv() {
            return Err(format!(
                "--kv etcd with --strategy {strategy}: {strategy} keeps the counter without a \
                 KV service and would never touch etcd; use --strategy per-node, cas or naive"
            ));
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
        if self
            .params
            .adversary
            .as_ref()
            .is_some_and(|a| !a.is_empty())
        {
            return Err(
                "--adversary is not supported with --transport tcp: the servers talk on \
                 sockets of their own and `gcounter kv` draws its own states, so the test \
                 has no choice to make (use the default --transport stdio, or gcounter sim)"
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
    fn replay(&self, seed: u64, ran: &Ran) -> String {
        let mut cmd = format!("{}gcounter test", ran.replay_env());
        if let Some(s) = ran.strategy_flag() {
            cmd += &format!(" {s}");
        }
        if let Some(k) = self.kv {
            cmd += &format!(" --kv {}", k.name());
        }
        if let Some(ms) = self.gossip_interval {
            cmd += &format!(" --gossip-interval {ms}");
        }
        cmd += &format!(" {}", self.params.flags(seed));
        if !self.bin.is_empty() {
            let words: Vec<String> = self.bin.iter().map(|w| shell_word(w)).collect();
            cmd += &format!(" --bin {}", words.join(" "));
        }
        cmd
    }

    fn command(&self, self_exe: &Path) -> NodeCommand {
        let (program, args) = match self.bin.split_first() {
            Some((p, rest)) => (PathBuf::from(p), rest.to_vec()),
            None => (self_exe.to_path_buf(), Vec::new()),
        };
        let strategy = self
            .strategy
            .map(|s| (Config::STRATEGY_VAR.to_string(), s.to_string()));
        let kv = self
            .kv
            .filter(|k| *k != KvChoice::Etcd)
            .map(|k| (Config::KV_VAR.to_string(), k.name().to_string()));
        let interval = self
            .gossip_interval
            .map(|ms| (Config::GOSSIP_INTERVAL_VAR.to_string(), ms.to_string()));
        let env = strategy.into_iter().chain(kv).chain(interval).collect();
        NodeCommand { program, args, env }
    }

    /// What the nodes will run: over stdio, the command's strategy and
    /// environment; on TCP, this binary's nodes with the strategy given by
    /// the flag or the environment, and the cluster's own `seq-kv`.
    fn ran(&self, self_exe: &Path) -> Result<Ran, String> {
        match self.transport {
            Transport::Stdio => {
                let mut ran = Ran::of(&self.command(self_exe), self.strategy, self.bin.is_empty())?;
                if let Some(k) = self.kv {
                    ran.kv = Some(Choice {
                        value: k.name().to_string(),
                        from: "--kv",
                    });
                }
                Ok(ran)
            }
            Transport::Tcp => {
                let mut ran = Ran::of(
                    &NodeCommand {
                        program: self_exe.to_path_buf(),
                        args: vec![],
                        env: vec![],
                    },
                    self.strategy,
                    true,
                )?;
                let from = if self.kv.is_some() { "--kv" } else { "default" };
                ran.kv = Some(match self.kv.unwrap_or(KvChoice::SeqKv) {
                    KvChoice::Etcd => Choice {
                        value: "etcd (serializable reads, as seq-kv)".to_string(),
                        from,
                    },
                    k => Choice {
                        value: format!("{} (gcounter kv)", k.name()),
                        from,
                    },
                });
                Ok(ran)
            }
        }
    }
}

/// Checks what `gcounter test` was asked (a usage error, exit 64, names
/// the problem), warns of what it cannot honour, and watches for Ctrl-C;
/// the number of clients.
pub(super) fn prepare(args: &TestArgs, self_exe: &Path) -> Result<usize, ExitCode> {
    super::interrupt::watch();
    let checked = args
        .params
        .concurrency()
        .and_then(|c| args.check_transport().map(|()| c))
        .and_then(|c| args.ran(self_exe).map(|_| c));
    let concurrency = match checked {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gcounter test: {e}");
            return Err(ExitCode::from(crate::USAGE));
        }
    };
    for w in warnings(&args.params) {
        eprintln!("gcounter test: warning: {w}");
    }
    Ok(concurrency)
}

/// One run of `gcounter test` (not `--runs`), with `concurrency` clients,
/// after [`prepare`].
pub(super) fn run_one(args: &TestArgs, self_exe: &Path, concurrency: usize) -> ExitCode {
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
    new_run_dir(&args.store, args.params.workload.name()).map_err(|e| {
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
    let ran = match args.ran(self_exe) {
        Ok(r) => r,
        Err(e) => return (Value::Null, Err(e)),
    };
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
        adversary: args.params.adversaries(),
        history_file: Some(dir.join("history.jsonl")),
    };
    let mut settings = json!({
        "workload": args.params.workload.name(),
        "transport": "stdio",
        "bin": std::iter::once(command.program.display().to_string()).chain(command.args.clone()).collect::<Vec<_>>(),
        "node_count": cfg.node_count,
        "concurrency": concurrency,
        "workload_config": cfg.workload,
        "nemesis": cfg.nemesis,
        "latency": cfg.latency,
        "adversary": cfg.adversary,
        "seed": seed,
        "replay": args.replay(seed, &ran),
        "warnings": warnings(&args.params),
    });
    merge(&mut settings, ran.json());
    eprintln!("gcounter test: {}", describe(&settings));
    eprintln!("gcounter test: results in {}", dir.display());
    let total = cfg.workload.time_limit + cfg.workload.recovery + cfg.workload.client_timeout;
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
    let ran = match args.ran(self_exe) {
        Ok(r) => r,
        Err(e) => return (Value::Null, Err(e)),
    };
    let strategy = ran
        .strategy
        .as_ref()
        .and_then(|c| c.value.parse().ok())
        .unwrap_or(StrategyKind::Gossip);
    let cfg = TcpTestConfig {
        program: self_exe.to_path_buf(),
        strategy,
        gossip_interval: args.gossip_interval,
        node_count: args.params.node_count as usize,
        concurrency,
        workload: args.params.workload(),
        nemesis: args.params.nemesis(),
        seed,
        cluster_dir: dir.join("cluster"),
        log_dir: dir.join("node-logs"),
        etcd: args.etcd(),
        kv: args.kv.map_or(KvKind::SeqKv, KvChoice::service),
        history_file: Some(dir.join("history.jsonl")),
    };
    let mut replay = format!("gcounter test --transport tcp --strategy {strategy}");
    if let Some(k) = args.kv {
        replay += &format!(" --kv {}", k.name());
    }
    match &cfg.etcd {
        Some(EtcdBackend::External { endpoints, creds }) => {
            replay += &format!(" --etcd-endpoints {}", endpoints.join(","));
            for arg in creds.args() {
                replay += &format!(" {}", shell_word(&arg));
            }
        }
        Some(EtcdBackend::Local { secure: false, .. }) => replay += " --insecure",
        _ => {}
    }
    let mut settings = json!({
        "workload": args.params.workload.name(),
        "transport": "tcp",
        "bin": [cfg.program.display().to_string()],
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
        "warnings": warnings(&args.params),
    });
    merge(&mut settings, ran.json());
    eprintln!("gcounter test: {}", describe(&settings));
    eprintln!("gcounter test: results in {}", dir.display());
    let total = cfg.workload.time_limit + cfg.workload.recovery + cfg.workload.client_timeout;
    let result = with_progress(total, |every, report| run_tcp_test(&cfg, every, report));
    (settings, result.map_err(|e| e.to_string()))
}

/// Adds `more`'s keys to `settings`.
fn merge(settings: &mut Value, more: Value) {
    if let (Value::Object(s), Value::Object(m)) = (settings, more) {
        s.extend(m);
    }
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
            let _ = print_summary(&mut std::io::stdout().lock(), &run, settings, dir);
            if run.interrupted {
                eprintln!(
                    "gcounter test: interrupted; the results so far are in {}",
                    dir.display()
                );
                return ExitCode::from(super::interrupt::EXIT);
            }
            ExitCode::from(run.check.verdict.exit_code())
        }
        Err(text) => {
            let _ = write_error(dir, &text, settings);
            eprintln!("gcounter test: error: {text}");
            // What the nodes said last is usually why: show a few lines
            // here, more on the page.
            for (node, tail) in super::store::log_tails(&dir.join("node-logs")) {
                eprintln!("{node}'s stderr ends:");
                for line in super::store::excerpt(tail.as_str().unwrap_or_default(), 5) {
                    eprintln!("  | {line}");
                }
            }
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
        "{:.0} s of at most {:.0} s ({})  ok {}  info {}  fail {}  pending {}  faults: {}",
        p.elapsed.as_secs_f64(),
        p.expected.as_secs_f64(),
        p.phase,
        p.ok,
        p.info,
        p.fail,
        p.pending,
        p.nemesis
    )
}

/// The rate the clients reached, when it is well below the rate asked
/// for: the clients wait for each reply before their next request, so a
/// slow node (or too few clients) caps it, and a run that says "rate
/// 100000" should not be read as having had it.
fn rate_shortfall(run: &TestRun, settings: &Value) -> Option<String> {
    let asked = settings["workload_config"]["rate"].as_f64()?;
    let limit = settings["workload_config"]["time_limit"].as_f64()?;
    if asked <= 0.0 || limit <= 0.0 || run.interrupted {
        return None;
    }
    let finals = run.check.final_reads.len() + run.check.missing_final_reads.len();
    let sent = run.stats.ops.all.count.saturating_sub(finals as u64) as f64;
    let reached = sent / limit;
    (reached < 0.8 * asked).then(|| {
        format!(
            "the clients reached {reached:.0} operations/s of the {asked} asked: each waits for \
             its reply before the next request (more --concurrency, or a faster node, gets closer)"
        )
    })
}

fn quantiles(q: &Option<Quantiles>) -> String {
    q.map_or("-".into(), |q| {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            q.p50, q.p99, q.max
        )
    })
}

/// After a valid run on Maelstrom's random choices, what to run to try
/// the worst legal ones: one random run rarely opens a race.
fn adversary_hint(run: &TestRun, settings: &Value) -> Option<String> {
    let none = settings["adversary"]
        .as_array()
        .is_some_and(|a| a.is_empty());
    (none && run.check.verdict == crate::Verdict::Valid && !run.interrupted).then(|| {
        "note: this run used Maelstrom's random choices, which rarely open a race; \
         try the worst legal ones: `gcounter test --runs 4` (each adversary once) \
         or --adversary stale,adds-first"
            .to_string()
    })
}

/// The short human summary printed at the end.
pub fn print_summary(
    out: &mut impl Write,
    run: &TestRun,
    settings: &Value,
    dir: &Path,
) -> std::io::Result<()> {
    let c = &run.check;
    let s = &run.stats;
    crate::report::write_check(out, c, Some(&describe(settings)))?;
    if run.nemesis.is_empty() && !settings["nemesis"].is_null() {
        writeln!(out, "  faults: none (the nemesis never acted)")?;
    }
    if !run.nemesis.is_empty() {
        let dropped = match run.net_observed {
            NetObserved::All => format!("{} message(s) dropped by partitions", run.dropped),
            NetObserved::ClientsOnly => "messages dropped: not observed".to_string(),
        };
        writeln!(
            out,
            "  faults: {}; {dropped}",
            crate::faults::counts(&run.nemesis)
        )?;
        let windows = crate::faults::windows(&run.nemesis, run.elapsed);
        if !windows.is_empty() {
            writeln!(out, "    {}", super::store::fault_summary(&windows))?;
        }
    }
    for w in settings["warnings"].as_array().into_iter().flatten() {
        writeln!(out, "  warning: {}", w.as_str().unwrap_or_default())?;
    }
    if let Some(short) = rate_shortfall(run, settings) {
        writeln!(out, "  warning: {short}")?;
    }
    for w in run.replies.warnings() {
        writeln!(out, "  warning: {w}")?;
    }
    if !run.replies.warnings().is_empty() {
        for example in &run.replies.examples {
            writeln!(out, "    {example}")?;
        }
    }
    if let Some(e) = run.explain() {
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
    if let Some(lag) = &s.read_lag {
        writeln!(out, "  read lag: {}", lag.line())?;
    }
    if let Some(hint) = adversary_hint(run, settings) {
        writeln!(out, "  {hint}")?;
    }
    writeln!(out, "  add latency: {}", quantiles(&s.latency_ms.add))?;
    writeln!(out, "  read latency: {}", quantiles(&s.latency_ms.read))?;
    writeln!(out, "  results: {}", dir.display())?;
    writeln!(out, "  open {}", dir.join("index.html").display())?;
    Ok(())
}
