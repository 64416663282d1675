//! Same seed, same run, bit for bit; different seeds, different runs.

mod common;

use gcounter_core::StrategyKind;
use gcounter_harness::sim::{self, SimConfig};

fn assert_deterministic(cfg: &SimConfig, seed: u64) {
    eprintln!("replay: {}", common::replay(cfg, seed));
    let a = sim::run(cfg, seed).unwrap();
    let b = sim::run(cfg, seed).unwrap();
    assert_eq!(a.history, b.history, "seed {seed}: histories differ");
    assert_eq!(a.history.to_jsonl(), b.history.to_jsonl());
    assert_eq!(a.nemesis, b.nemesis);
    assert_eq!(a.stats, b.stats);
    assert_eq!((a.steps, a.end, a.dropped), (b.steps, b.end, b.dropped));
    let c = sim::run(cfg, seed + 1).unwrap();
    assert_ne!(
        a.history,
        c.history,
        "seeds {seed} and {} gave the same history",
        seed + 1
    );
}

#[test]
fn one_seed_replays_bit_for_bit() {
    for strategy in StrategyKind::ALL {
        assert_deterministic(&common::evaluation(strategy), 11);
    }
}

#[test]
fn one_seed_replays_bit_for_bit_with_latency() {
    for strategy in StrategyKind::ALL {
        assert_deterministic(&common::five_nodes_with_latency(strategy), 5);
    }
}

#[test]
fn the_nemesis_really_partitions() {
    let cfg = common::evaluation(StrategyKind::Gossip);
    let run = sim::run(&cfg, 2).unwrap();
    assert!(!run.nemesis.is_empty());
    assert!(run.dropped > 0, "no message was dropped by a partition");
}
