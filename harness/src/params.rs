//! The flags `gcounter sim` and `gcounter test` share, named as Maelstrom
//! names them, and what they mean for the workload, nemesis and network.

use crate::choice::Adversaries;
use crate::nemesis::{Fault, Latency, LatencyDist, NemesisConfig};
use crate::workload::{WorkloadConfig, WorkloadKind, CLIENT_TIMEOUT};
use gcounter_core::StrategyKind;
use std::time::Duration;

/// The shape of one g-counter test.
#[derive(Debug, Clone, clap::Args)]
pub struct RunParams {
    /// The workload: g-counter (deltas 0..=4) or pn-counter (deltas
    /// -5..=4), as Maelstrom draws them.
    #[arg(short = 'w', long = "workload", default_value = "g-counter")]
    pub workload: WorkloadKind,
    /// How many server nodes (and clients: one per node).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub node_count: u64,
    /// Client operations per second over the whole cluster.
    #[arg(long, default_value_t = 100.0, value_parser = non_negative)]
    pub rate: f64,
    /// Seconds of operations (with the nemesis active), before the final phase.
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = non_negative)]
    pub time_limit: f64,
    /// Faults to inject, a comma list: `partition` (network partitions
    /// between servers), `kill` (SIGKILL a minority of nodes, then start
    /// them again with the same ids and `init` them), `pause` (SIGSTOP a
    /// minority, then SIGCONT). They take turns on one schedule.
    #[arg(long, value_name = "FAULTS", value_parser = parse_faults)]
    pub nemesis: Option<Faults>,
    /// Mean seconds between nemesis events (a cut, then a heal, ...).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = positive)]
    pub nemesis_interval: f64,
    /// Mean latency of messages between servers and to services, in ms.
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = non_negative)]
    pub latency: f64,
    /// How latency is distributed: constant, uniform or exponential.
    #[arg(long, default_value = "constant", value_parser = parse_dist)]
    pub latency_dist: LatencyDist,
    /// Seconds to wait after healing before the final reads.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = non_negative)]
    pub recovery: f64,
    /// Clients: a number, or `Nn` for N per node (default: one per node).
    #[arg(long, value_name = "N|Nn")]
    pub concurrency: Option<String>,
    /// Make the worst choices Maelstrom could make, on purpose, so a race
    /// a node has shows in one run: a comma list of `stale` (seq-kv serves
    /// the stalest state the client's window allows), `slow-kv` (20 ms to
    /// 1 s, heavy-tailed, on node<->service links, and a node's write or
    /// cas held until that node acknowledges an add), `reorder`
    /// (node<->node messages delayed and overtaken, a few held until just
    /// before the final reads), `adds-first` (each client's first operation
    /// an add, the other nodes' first requests to the store held until one
    /// is acknowledged), `kill-after-ack` (a kill strikes just after an
    /// add is acknowledged), or `none` (Maelstrom's random choices, the
    /// default). Each stays inside Maelstrom's rules: see the README's "Why
    /// did it fail, and was it luck?".
    #[arg(long, value_name = "NAME,...", value_parser = Adversaries::parse)]
    pub adversary: Option<Adversaries>,
    /// The seed of the workload, nemesis and services (`gcounter sim`: of a
    /// single run, or with --seeds the first seed). Without it, a random
    /// seed, printed so the run can be replayed.
    #[arg(long)]
    pub seed: Option<u64>,
}

impl RunParams {
    pub fn workload(&self) -> WorkloadConfig {
        WorkloadConfig {
            kind: self.workload,
            rate: self.rate,
            time_limit: Duration::from_secs_f64(self.time_limit),
            recovery: Duration::from_secs_f64(self.recovery),
            client_timeout: CLIENT_TIMEOUT,
            adds_first: self.adversaries().has(crate::choice::Adversary::AddsFirst),
        }
    }

    pub fn nemesis(&self) -> Option<NemesisConfig> {
        self.nemesis.as_ref().map(|faults| NemesisConfig {
            interval: Duration::from_secs_f64(self.nemesis_interval),
            faults: faults.0.clone(),
            ..NemesisConfig::default()
        })
    }

    /// The adversaries asked for (none: Maelstrom's random choices).
    pub fn adversaries(&self) -> Adversaries {
        self.adversary.clone().unwrap_or_default()
    }

    pub fn latency(&self) -> Latency {
        Latency::new(
            Duration::from_secs_f64(self.latency / 1000.0),
            self.latency_dist,
        )
    }

    /// How many clients `--concurrency` asks for.
    pub fn concurrency(&self) -> Result<usize, String> {
        let nodes = self.node_count as usize;
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
                let total = if per_node { n.saturating_mul(nodes) } else { n };
                if total == 0 {
                    return Err("--concurrency must be at least 1".into());
                }
                Ok(total)
            }
        }
    }

    /// These flags as they would be typed, to replay a run with `seed`.
    pub fn flags(&self, seed: u64) -> String {
        let mut cmd = match self.workload {
            WorkloadKind::GCounter => String::new(),
            w => format!("-w {w} "),
        };
        cmd += &format!(
            "--node-count {} --rate {} --time-limit {}",
            self.node_count, self.rate, self.time_limit
        );
        if let Some(c) = &self.concurrency {
            cmd += &format!(" --concurrency {c}");
        }
        if let Some(faults) = &self.nemesis {
            cmd += &format!(
                " --nemesis {} --nemesis-interval {}",
                Fault::list(&faults.0),
                self.nemesis_interval
            );
        }
        if self.latency > 0.0 {
            cmd += &format!(
                " --latency {} --latency-dist {}",
                self.latency, self.latency_dist
            );
        }
        if let Some(a) = &self.adversary {
            cmd += &format!(" --adversary {a}");
        }
        cmd += &format!(" --recovery {} --seed {seed}", self.recovery);
        cmd
    }
}

/// The faults `--nemesis` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faults(pub Vec<Fault>);

fn parse_faults(s: &str) -> Result<Faults, String> {
    Fault::parse_list(s).map(Faults)
}

pub fn parse_strategy(s: &str) -> Result<StrategyKind, String> {
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
