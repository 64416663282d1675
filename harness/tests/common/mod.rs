//! Helpers shared by the simulator's tests: configurations, and many seeds
//! spread over the machine's cores, every seed logged so that a failure can
//! be replayed with `gcounter sim --seed N`.

#![allow(dead_code)]

use gcounter_core::{KvKind, StrategyKind};
use gcounter_harness::checker::Verdict;
use gcounter_harness::nemesis::{Latency, LatencyDist};
use gcounter_harness::sim::{self, SimConfig, SimError, SimRun};
use std::time::Duration;

/// Maelstrom's evaluation: 3 nodes, 100 ops/s, 20 s, partitions, seq-kv.
pub fn evaluation(strategy: StrategyKind) -> SimConfig {
    SimConfig::evaluation(strategy)
}

/// The evaluation with 5 nodes and uniform latency of mean 50 ms.
pub fn five_nodes_with_latency(strategy: StrategyKind) -> SimConfig {
    SimConfig {
        node_count: 5,
        latency: Latency::new(Duration::from_millis(50), LatencyDist::Uniform),
        ..SimConfig::evaluation(strategy)
    }
}

/// The `gcounter sim` flags that replay `seed` of `cfg`.
pub fn replay(cfg: &SimConfig, seed: u64) -> String {
    let mut s = format!(
        "gcounter sim{} --strategy {} --node-count {} --rate {} --time-limit {}",
        match cfg.workload.kind {
            gcounter_harness::workload::WorkloadKind::GCounter => "",
            gcounter_harness::workload::WorkloadKind::PnCounter => " -w pn-counter",
        },
        cfg.node.strategy,
        cfg.node_count,
        cfg.workload.rate,
        cfg.workload.time_limit.as_secs_f64()
    );
    if cfg.persist {
        s += " --persist";
    }
    if let Some(n) = &cfg.nemesis {
        s += &format!(
            " --nemesis {} --nemesis-interval {}",
            gcounter_harness::nemesis::Fault::list(&n.faults),
            n.interval.as_secs_f64()
        );
    }
    if !cfg.latency.mean.is_zero() {
        s += &format!(
            " --latency {} --latency-dist {}",
            cfg.latency.mean.as_secs_f64() * 1000.0,
            cfg.latency.dist
        );
    }
    if cfg.node.kv != KvKind::SeqKv {
        s += &format!(" --kv {}", cfg.node.kv);
    }
    s + &format!(
        " --recovery {} --seed {seed}",
        cfg.workload.recovery.as_secs_f64()
    )
}

/// What the tests keep of a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub seed: u64,
    pub verdict: Verdict,
    pub lost: u64,
    pub stale_reads: u64,
    pub ok_ops: u64,
    pub ops: u64,
}

/// Runs `seeds` of `cfg` on every core. Panics, naming the seed and the
/// command that replays it, if the simulator itself fails.
pub fn run_seeds(cfg: &SimConfig, seeds: std::ops::Range<u64>) -> Vec<RunOutcome> {
    eprintln!(
        "running seeds {}..{} of: {}",
        seeds.start,
        seeds.end,
        replay(cfg, seeds.start)
    );
    let seeds: Vec<u64> = seeds.collect();
    let results = sim::run_many(
        cfg,
        &seeds,
        sim::default_jobs(),
        |seed, r: Result<SimRun, SimError>| {
            r.map(|run| RunOutcome {
                seed,
                verdict: run.check.verdict,
                lost: run.check.lost,
                stale_reads: run.stale_reads(),
                ok_ops: run.stats.ops.all.ok,
                ops: run.stats.ops.all.count,
            })
        },
    );
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}\nreplay: {}", replay(cfg, e.seed()))))
        .collect()
}

/// Asserts that no run was invalid, listing the seeds that were.
pub fn assert_none_invalid(cfg: &SimConfig, outcomes: &[RunOutcome]) {
    let invalid: Vec<&RunOutcome> = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Invalid)
        .collect();
    let unknown = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Unknown)
        .count();
    eprintln!(
        "{}: {} runs, {} invalid, {unknown} unknown, {} stale seq-kv reads",
        cfg.node.strategy,
        outcomes.len(),
        invalid.len(),
        outcomes.iter().map(|o| o.stale_reads).sum::<u64>()
    );
    for o in &invalid {
        eprintln!(
            "  invalid: seed {} lost {}: {}",
            o.seed,
            o.lost,
            replay(cfg, o.seed)
        );
    }
    assert!(
        invalid.is_empty(),
        "{} of {} runs invalid",
        invalid.len(),
        outcomes.len()
    );
}
