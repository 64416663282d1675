//! Kills and pauses in the simulator, over hundreds of seeds: `per-node`
//! and `cas` keep their state in the KV service and `gossip` given a disk
//! keeps its own, so none of them loses an acknowledged add; `gossip`
//! without a disk does (what it had not gossiped dies with the node), and
//! `naive` still loses updates. Every seed is logged with the command that
//! replays it.

mod common;

use common::{assert_none_invalid, evaluation, replay, run_seeds};
use gcounter_core::StrategyKind;
use gcounter_harness::checker::Verdict;
use gcounter_harness::nemesis::{Fault, NemesisConfig};
use gcounter_harness::sim::{self, SimConfig};

/// The evaluation with every fault taking turns.
fn all_faults(strategy: StrategyKind, persist: bool) -> SimConfig {
    let mut cfg = evaluation(strategy);
    cfg.nemesis = Some(NemesisConfig {
        faults: Fault::ALL.to_vec(),
        ..NemesisConfig::default()
    });
    cfg.persist = persist;
    cfg
}

fn never_invalid(strategy: StrategyKind, persist: bool) {
    let cfg = all_faults(strategy, persist);
    let outcomes = run_seeds(&cfg, 0..300);
    assert_none_invalid(&cfg, &outcomes);
}

#[test]
fn gossip_with_a_disk_survives_kills_and_pauses() {
    never_invalid(StrategyKind::Gossip, true);
}

#[test]
fn per_node_survives_kills_and_pauses_without_a_disk() {
    never_invalid(StrategyKind::PerNode, false);
}

#[test]
fn cas_survives_kills_and_pauses_without_a_disk() {
    never_invalid(StrategyKind::Cas, false);
}

#[test]
fn gossip_without_a_disk_loses_adds_to_kills() {
    let cfg = all_faults(StrategyKind::Gossip, false);
    let outcomes = run_seeds(&cfg, 0..100);
    let invalid: Vec<u64> = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Invalid)
        .map(|o| o.seed)
        .collect();
    eprintln!("gossip without a disk: invalid seeds {invalid:?}");
    assert!(
        invalid.len() >= 10,
        "only {} of 100 runs invalid",
        invalid.len()
    );
    // Each loss comes with a kill: the report names it.
    let seed = invalid[0];
    let run = sim::run(&cfg, seed).unwrap();
    let kills = gcounter_harness::faults::kills(&run.history, &run.nemesis);
    assert!(!kills.is_empty(), "{}", replay(&cfg, seed));
}

#[test]
fn naive_still_loses_updates() {
    let cfg = all_faults(StrategyKind::Naive, false);
    let outcomes = run_seeds(&cfg, 0..50);
    let invalid = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Invalid)
        .count();
    assert!(invalid >= 45, "only {invalid} of 50 runs invalid");
}

#[test]
fn a_killed_node_gets_nothing_and_a_paused_one_gets_it_late() {
    // Seed 4 at one event a second kills n0 and pauses n2 (see the e2e
    // test of the same schedule).
    let mut cfg = all_faults(StrategyKind::PerNode, false);
    if let Some(n) = cfg.nemesis.as_mut() {
        n.interval = std::time::Duration::from_secs(1);
    }
    cfg.workload.time_limit = std::time::Duration::from_secs(6);
    let run = sim::run(&cfg, 4).unwrap();
    assert_eq!(run.check.verdict, Verdict::Valid, "{}", replay(&cfg, 4));
    assert!(run.lost_to_kills > 0, "nothing reached a killed node");
    let took = |f: &str| {
        run.nemesis
            .iter()
            .filter(|r| !r.event.is_noop() && r.event.to_string().starts_with(f))
            .count()
    };
    assert!(took("kill") > 0 && took("start") > 0 && took("pause") > 0 && took("resume") > 0);
    // Operations sent to the paused node waited for it: some took about as
    // long as the pause, which a zero-latency run otherwise never sees.
    let slowest = run
        .history
        .iter()
        .filter_map(|op| op.latency())
        .max()
        .unwrap_or_default();
    assert!(
        slowest > std::time::Duration::from_millis(100),
        "{slowest:?}"
    );
}
