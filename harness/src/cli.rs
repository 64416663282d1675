//! `gcounter sim`: the simulator on the command line. The binary only
//! flattens [`SimArgs`] into its subcommand and calls [`run`].

use crate::nemesis::{Latency, LatencyDist, NemesisConfig};
use crate::report::{RunDigest, RunReport, Settings, Summary};
use crate::sim::{self, SimConfig, SimError};
use crate::workload::{WorkloadConfig, CLIENT_TIMEOUT};
use gcounter_core::{Config, KvKind, StrategyKind};
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Runs the g-counter test in the deterministic simulator: real strategy
/// code, the core's seq-kv model, virtual time. Flags are named as
/// Maelstrom names them.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// How the nodes keep the counter: gossip, per-node, cas or naive.
    #[arg(long, default_value = "gossip", value_parser = parse_strategy)]
    pub strategy: StrategyKind,
    /// How many server nodes (and clients: one per node).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub node_count: u64,
    /// Client operations per second over the whole cluster.
    #[arg(long, default_value_t = 100.0, value_parser = non_negative)]
    pub rate: f64,
    /// Seconds of operations (with the nemesis active), before the final phase.
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = non_negative)]
    pub time_limit: f64,
    /// Faults to inject: `partition` (network partitions between servers).
    #[arg(long, value_name = "FAULTS", value_parser = ["partition"])]
    pub nemesis: Option<String>,
    /// Mean seconds between nemesis events (a cut, then a heal, ...).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = positive)]
    pub nemesis_interval: f64,
    /// Mean latency of messages between servers and to services, in ms.
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = non_negative)]
    pub latency: f64,
    /// How latency is distributed: constant, uniform or exponential.
    #[arg(long, default_value = "constant", value_parser = parse_dist)]
    pub latency_dist: LatencyDist,
    /// The KV service the KV strategies use: seq-kv or lin-kv.
    #[arg(long, default_value = "seq-kv", value_parser = parse_kv)]
    pub kv: KvKind,
    /// Seconds to wait after healing before the final reads.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = non_negative)]
    pub recovery: f64,
    /// The seed of a single run (full report); with --seeds, the first seed.
    /// Without either, one run with a random seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run this many seeds (from --seed, default 0) and summarize.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub seeds: Option<u64>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Threads for --seeds (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
}

fn parse_strategy(s: &str) -> Result<StrategyKind, String> {
    s.parse()
        .map_err(|e: gcounter_core::config::UnknownValue| e.to_string())
}

fn parse_kv(s: &str) -> Result<KvKind, String> {
    s.parse()
        .map_err(|e: gcounter_core::config::UnknownValue| e.to_string())
}

fn parse_dist(s: &str) -> Result<LatencyDist, String> {
    s.parse()
}

fn number(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v <= 1e9 {
        Ok(v)
    } else {
        Err(format!("`{s}` is out of range"))
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    number(s).and_then(|v| {
        if v >= 0.0 {
            Ok(v)
        } else {
            Err(format!("`{s}` must not be negative"))
        }
    })
}

fn positive(s: &str) -> Result<f64, String> {
    number(s).and_then(|v| {
        if v > 0.0 {
            Ok(v)
        } else {
            Err(format!("`{s}` must be positive"))
        }
    })
}

impl SimArgs {
    /// The simulator's configuration these flags describe.
    pub fn to_config(&self) -> SimConfig {
        SimConfig {
            node_count: self.node_count as usize,
            node: Config {
                strategy: self.strategy,
                kv: self.kv,
                ..Config::default()
            },
            workload: WorkloadConfig {
                rate: self.rate,
                time_limit: Duration::from_secs_f64(self.time_limit),
                recovery: Duration::from_secs_f64(self.recovery),
                client_timeout: CLIENT_TIMEOUT,
            },
            nemesis: self.nemesis.as_ref().map(|_| NemesisConfig {
                interval: Duration::from_secs_f64(self.nemesis_interval),
                ..NemesisConfig::default()
            }),
            latency: Latency::new(
                Duration::from_secs_f64(self.latency / 1000.0),
                self.latency_dist,
            ),
            ..SimConfig::default()
        }
    }

    /// The command line that replays `seed` alone.
    pub fn replay_command(&self, seed: u64) -> String {
        let mut cmd = format!(
            "gcounter sim --strategy {} --node-count {} --rate {} --time-limit {}",
            self.strategy, self.node_count, self.rate, self.time_limit
        );
        if let Some(n) = &self.nemesis {
            cmd += &format!(
                " --nemesis {n} --nemesis-interval {}",
                self.nemesis_interval
            );
        }
        if self.latency > 0.0 {
            cmd += &format!(
                " --latency {} --latency-dist {}",
                self.latency, self.latency_dist
            );
        }
        cmd += &format!(
            " --kv {} --recovery {} --seed {seed}",
            self.kv, self.recovery
        );
        cmd
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
    let cfg = args.to_config();
    let settings = Settings::of(&cfg);
    match args.seeds {
        None => {
            let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
            single(args, &cfg, settings, seed, out)
        }
        Some(n) => {
            let first = args.seed.unwrap_or(0);
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
    let result = sim::run(cfg, seed);
    let digest = result.as_ref().map(RunDigest::of).map_err(SimError::clone);
    let summary = Summary::of(settings.clone(), std::slice::from_ref(&digest));
    let report = result
        .as_ref()
        .ok()
        .map(|run| RunReport::of(&settings, run));
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

fn many(
    args: &SimArgs,
    cfg: &SimConfig,
    settings: Settings,
    seeds: &[u64],
    out: &mut impl Write,
) -> std::io::Result<u8> {
    let jobs = args.jobs.map_or_else(sim::default_jobs, |j| j as usize);
    let started = Instant::now();
    let results = sim::run_many(cfg, seeds, jobs, |seed, r| {
        log::debug!("seed {seed} done");
        r.as_ref().map(RunDigest::of).map_err(SimError::clone)
    });
    let elapsed = started.elapsed();
    let summary = Summary::of(settings, &results);
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
