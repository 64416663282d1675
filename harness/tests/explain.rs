//! The explanation of an invalid run accounts for what the checker says
//! was lost, from the message trace alone: for `naive` (read, then write
//! value + delta) on `seq-kv` and on `lin-kv`, with and without latency,
//! every run with no indeterminate add is explained exactly.

mod common;

use common::{evaluation, replay};
use gcounter_core::{KvKind, StrategyKind};
use gcounter_harness::checker::Verdict;
use gcounter_harness::explain::{explain, Cause};
use gcounter_harness::nemesis::{Latency, LatencyDist};
use gcounter_harness::sim::{self, SimConfig};
use gcounter_harness::testcore::trace::DEFAULT_CAP;
use std::time::Duration;

fn traced(mut cfg: SimConfig) -> SimConfig {
    cfg.trace = DEFAULT_CAP;
    cfg
}

/// Runs `seeds` and checks every invalid run's explanation; returns how
/// many overwrites of each cause were found.
fn explained_exactly(cfg: &SimConfig, seeds: std::ops::RangeInclusive<u64>) -> (usize, usize) {
    let (mut stale, mut concurrent) = (0, 0);
    for seed in seeds {
        let run = sim::run(cfg, seed).unwrap();
        let e = explain(&run.history, &run.check, &run.trace, &run.nemesis);
        if run.check.verdict != Verdict::Invalid {
            assert!(e.is_none());
            continue;
        }
        let e = e.expect("an invalid run is explained");
        if run.check.indeterminate_adds == 0 {
            assert_eq!(
                (e.explained, e.unexplained),
                (run.check.lost, 0),
                "seed {seed}: {:?}\nreplay: {}",
                e.lines(),
                replay(cfg, seed)
            );
        }
        assert!(
            !e.overwrites.is_empty() || !e.stale_final_reads.is_empty(),
            "seed {seed}: no cause found"
        );
        stale += e
            .overwrites
            .iter()
            .filter(|o| o.cause == Cause::StaleRead)
            .count();
        concurrent += e
            .overwrites
            .iter()
            .filter(|o| o.cause == Cause::Concurrent)
            .count();
    }
    (stale, concurrent)
}

#[test]
fn naive_on_seq_kv_loses_mostly_to_stale_reads() {
    let cfg = traced(evaluation(StrategyKind::Naive));
    let (stale, concurrent) = explained_exactly(&cfg, 1..=20);
    // At zero latency a read-then-write is atomic in virtual time: only a
    // stale read can make it erase anything.
    assert!(stale > 0);
    assert_eq!(concurrent, 0);
}

#[test]
fn naive_with_latency_also_loses_to_concurrent_writes() {
    let mut cfg = traced(evaluation(StrategyKind::Naive));
    cfg.latency = Latency::new(Duration::from_millis(20), LatencyDist::Exponential);
    let (stale, concurrent) = explained_exactly(&cfg, 1..=10);
    assert!(
        stale > 0 && concurrent > 0,
        "{stale} stale, {concurrent} concurrent"
    );
    // lin-kv has no stale reads: what is lost is lost to concurrency.
    cfg.node.kv = KvKind::LinKv;
    let (stale, concurrent) = explained_exactly(&cfg, 1..=10);
    assert_eq!(stale, 0);
    assert!(concurrent > 0);
}

#[test]
fn the_first_overwrite_is_told_as_a_story() {
    let cfg = traced(evaluation(StrategyKind::Naive));
    let run = sim::run(&cfg, 7).unwrap();
    let e = explain(&run.history, &run.check, &run.trace, &run.nemesis).unwrap();
    let story = e.example.clone().unwrap();
    assert!(
        story.contains(" read ") && story.contains(" wrote ") && story.ends_with("erased"),
        "{story}"
    );
    assert!(e.fixes.iter().any(|f| f.contains("cas")));
    assert!(e
        .lines()
        .iter()
        .any(|l| l.starts_with("why: 417 acknowledged")));
    // The story's messages are in the trace.
    let first = &e.overwrites[0];
    assert!(first.trace_ids.len() >= 4);
    assert!(first
        .trace_ids
        .iter()
        .all(|&id| (id as usize) < run.trace.entries.len()));
}

#[test]
fn a_valid_run_has_no_explanation_and_an_untraced_run_says_what_it_can() {
    let cfg = traced(evaluation(StrategyKind::Cas));
    let run = sim::run(&cfg, 1).unwrap();
    assert!(explain(&run.history, &run.check, &run.trace, &run.nemesis).is_none());
    // Without a trace, naive's loss is all unexplained, per node.
    let cfg = evaluation(StrategyKind::Naive);
    let run = sim::run(&cfg, 7).unwrap();
    let e = explain(&run.history, &run.check, &run.trace, &run.nemesis).unwrap();
    assert_eq!((e.explained, e.unexplained), (0, 417));
    assert_eq!(e.per_node.len(), 3);
}
