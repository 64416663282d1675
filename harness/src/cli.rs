//! `gcounter sim`: the simulator on the command line. The binary only
//! flattens [`SimArgs`] into its subcommand and calls [`run`].

use crate::params::RunParams;
use crate::report::{RunDigest, RunReport, Settings, Summary};
use crate::sim::{self, SimConfig, SimError};
use crate::stats::{LatencyHistograms, LatencyStats};
use gcounter_core::{Config, KvKind, StrategyKind};
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

/// Runs the g-counter test in the deterministic simulator: real strategy
/// code, the core's seq-kv model, virtual time. Flags are named as
/// Maelstrom names them.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// How the nodes keep the counter: gossip, per-node, cas, naive or gossip-max.
    #[arg(long, default_value = "gossip", value_parser = crate::params::parse_strategy)]
    pub strategy: StrategyKind,
    /// gossip: how long a node may hold a change before sending it, in ms
    /// (default 300; 0 is eager, a round right after every add). Shorter
    /// is fresher reads for more messages: a round sends at most one
    /// message to each peer.
    #[arg(long, value_name = "MS")]
    pub gossip_interval: Option<u64>,
    #[command(flatten)]
    pub params: RunParams,
    /// The KV service the KV strategies use: seq-kv or lin-kv.
    #[arg(long, default_value = "seq-kv", value_parser = parse_kv)]
    pub kv: KvKind,
    /// Run this many seeds (from --seed, default 0) and summarize.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub seeds: Option<u64>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Nodes keep what they store across kills (`--nemesis kill`), as our
    /// node does given `--state-dir`; without it a killed node starts
    /// again empty, as under Maelstrom by default.
    #[arg(long)]
    pub persist: bool,
    /// Also write the run's results directory, as `gcounter test` does
    /// (results.json, history.jsonl, messages.jsonl, plots, index.html), in
    /// `<DIR>/g-counter/<timestamp>/` and `<DIR>/latest`. One seed only.
    #[arg(long, value_name = "DIR", conflicts_with = "seeds")]
    pub store: Option<std::path::PathBuf>,
    /// Threads for --seeds (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
}

fn parse_kv(s: &str) -> Result<KvKind, String> {
    s.parse()
        .map_err(|e: gcounter_core::config::UnknownValue| e.to_string())
}

impl SimArgs {
    /// The simulator's configuration these flags describe.
    pub fn to_config(&self) -> SimConfig {
        SimConfig {
            node_count: self.params.node_count as usize,
            node: Config {
                strategy: self.strategy,
                kv: self.kv,
                gossip_interval: self
                    .gossip_interval
                    .map(std::time::Duration::from_millis)
                    .unwrap_or(Config::default().gossip_interval),
                ..Config::default()
            },
            workload: self.params.workload(),
            nemesis: self.params.nemesis(),
            latency: self.params.latency(),
            persist: self.persist,
            concurrency: self.params.concurrency().ok(),
            adversary: self.params.adversaries(),
            ..SimConfig::default()
        }
    }

    /// The command line that replays `seed` alone.
    pub fn replay_command(&self, seed: u64) -> String {
        format!(
            "gcounter sim --strategy {} --kv {}{}{} {}",
            self.strategy,
            self.kv,
            match self.gossip_interval {
                Some(ms) => format!(" --gossip-interval {ms}"),
                None => String::new(),
            },
            if self.persist { " --persist" } else { "" },
            self.params.flags(seed)
        )
    }
}

/// Runs `gcounter sim`. Exit status: 0 every run valid, 1 any invalid, 2
/// any unknown and none invalid, 255 a run could not be completed.
pub fn run(args: &SimArgs) -> ExitCode {
    match run_to(args, &mut std::io::stdout().lock()) {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(0),
        Err(e) => {
            log::error!("writing the report: {e}");
            ExitCode::from(255)
        }
    }
}

/// Runs `gcounter sim`, writing the report to `out`; returns the exit
/// status.
pub fn run_to(args: &SimArgs, out: &mut impl Write) -> std::io::Result<u8> {
    if let Err(e) = args.params.concurrency() {
        eprintln!("gcounter sim: {e}");
        return Ok(crate::USAGE);
    }
    let cfg = args.to_config();
    let settings = Settings::of(&cfg);
    match args.seeds {
        None => {
            let seed = args.params.seed.unwrap_or_else(|| fastrand::u64(..));
            single(args, &cfg, settings, seed, out)
        }
        Some(n) => {
            let first = args.params.seed.unwrap_or(0);
            let seeds: Vec<u64> = (0..n).map(|i| first.wrapping_add(i)).collect();
            many(args, &cfg, settings, &seeds, out)
        }
    }
}

fn single(
    args: &SimArgs,
    cfg: &SimConfig,
    settings: Settings,
    seed: u64,
    out: &mut impl Write,
) -> std::io::Result<u8> {
    // One run keeps its messages, to explain its verdict, and a bounded
    // history: a long run's memory stays flat, its operations streamed to
    // the results directory's history.jsonl (made before the run).
    let dir = match &args.store {
        Some(store) => Some(crate::process::new_run_dir(store, "g-counter")?),
        None => None,
    };
    let cfg = &SimConfig {
        trace: crate::testcore::trace::DEFAULT_CAP,
        history_keep: Some(crate::journal::DEFAULT_KEEP),
        history_file: dir.as_ref().map(|d| d.join("history.jsonl")),
        ..cfg.clone()
    };
    let result = sim::run(cfg, seed);
    let digest = result.as_ref().map(RunDigest::of).map_err(SimError::clone);
    let latency = result
        .as_ref()
        .map_or_else(|_| LatencyStats::default(), |run| run.stats.latency_ms);
    let summary = Summary::of(settings.clone(), std::slice::from_ref(&digest), latency);
    let report = result
        .as_ref()
        .ok()
        .map(|run| RunReport::of(&settings, run));
    if let (Some(dir), Ok(run)) = (&dir, &result) {
        store_run(dir, args, run)?;
        eprintln!("gcounter sim: results in {}", dir.display());
    }
    if args.json {
        let mut value = serde_json::to_value(&summary).map_err(std::io::Error::other)?;
        if let (Some(obj), Some(report)) = (value.as_object_mut(), &report) {
            obj.insert(
                "run".into(),
                serde_json::to_value(report).map_err(std::io::Error::other)?,
            );
        }
        writeln!(out, "{value}")?;
    } else {
        match (&report, &result) {
            (Some(report), _) => report.write(out)?,
            (None, Err(e)) => writeln!(out, "gcounter sim: {e}")?,
            (None, Ok(_)) => {}
        }
    }
    Ok(summary.exit_code())
}

/// Writes one simulated run's results into `dir` (its history.jsonl the
/// run wrote).
fn store_run(dir: &std::path::Path, args: &SimArgs, run: &sim::SimRun) -> std::io::Result<()> {
    use crate::process::{write_results, TestRun};
    let cfg = args.to_config();
    let settings = serde_json::json!({
        "workload": args.params.workload.name(),
        "transport": "simulator",
        "strategy": args.strategy.name(),
        "kv": args.kv.name(),
        "node_count": cfg.node_count,
        "concurrency": cfg.concurrency.unwrap_or(cfg.node_count),
        "workload_config": cfg.workload,
        "nemesis": cfg.nemesis,
        "latency": cfg.latency,
        "persist": cfg.persist,
        "adversary": cfg.adversary,
        "seed": run.seed,
        "replay": args.replay_command(run.seed),
    });
    let test_run = TestRun::of_sim(run, true);
    let nodes = crate::workload::node_ids(cfg.node_count);
    write_results(dir, &test_run, &settings, &nodes)
}

fn many(
    args: &SimArgs,
    cfg: &SimConfig,
    settings: Settings,
    seeds: &[u64],
    out: &mut impl Write,
) -> std::io::Result<u8> {
    let jobs = args.jobs.map_or_else(sim::default_jobs, |j| j as usize);
    let started = Instant::now();
    let latencies = std::sync::Mutex::new(LatencyHistograms::default());
    let results = sim::run_many(cfg, seeds, jobs, |seed, r| {
        log::debug!("seed {seed} done");
        if let (Ok(run), Ok(mut pooled)) = (&r, latencies.lock()) {
            pooled.record(&run.history);
        }
        r.as_ref().map(RunDigest::of).map_err(SimError::clone)
    });
    let elapsed = started.elapsed();
    let latency = latencies
        .into_inner()
        .map_or_else(|_| LatencyStats::default(), |h| h.stats());
    let summary = Summary::of(settings, &results, latency);
    if args.json {
        let json = serde_json::to_string(&summary).map_err(std::io::Error::other)?;
        writeln!(out, "{json}")?;
    } else {
        writeln!(
            out,
            "seeds {}..={} on {jobs} threads in {:.2} s",
            seeds.first().copied().unwrap_or(0),
            seeds.last().copied().unwrap_or(0),
            elapsed.as_secs_f64()
        )?;
        summary.write(out)?;
        let failing = summary
            .invalid_seeds
            .iter()
            .chain(&summary.unknown_seeds)
            .chain(&summary.error_seeds);
        let failing: Vec<u64> = failing.copied().collect();
        if !failing.is_empty() {
            writeln!(out)?;
            let list = |v: &[u64]| {
                const SHOWN: usize = 20;
                let mut s: Vec<String> = v.iter().take(SHOWN).map(u64::to_string).collect();
                if v.len() > SHOWN {
                    s.push(format!("... ({} in all)", v.len()));
                }
                s.join(", ")
            };
            for (name, seeds) in [
                ("invalid", &summary.invalid_seeds),
                ("unknown", &summary.unknown_seeds),
                ("failed", &summary.error_seeds),
            ] {
                if !seeds.is_empty() {
                    writeln!(out, "{name} seeds: {}", list(seeds))?;
                }
            }
            writeln!(out, "replay one with: {}", args.replay_command(failing[0]))?;
        }
    }
    Ok(summary.exit_code())
}
