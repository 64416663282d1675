//! Which strategies lose acknowledged adds, over hundreds of adversarial
//! simulated runs: `per-node`, `cas` and `gossip` never do; `naive` almost
//! always does.

mod common;

use common::{assert_none_invalid, evaluation, five_nodes_with_latency, replay, run_seeds};
use gcounter_core::StrategyKind;
use gcounter_harness::checker::Verdict;
use gcounter_harness::sim;

fn never_invalid(strategy: StrategyKind) {
    let cfg = evaluation(strategy);
    let outcomes = run_seeds(&cfg, 0..300);
    assert_none_invalid(&cfg, &outcomes);
    // Correct and useful: the nodes really served the clients.
    let (ok, all) = outcomes
        .iter()
        .fold((0, 0), |(ok, all), o| (ok + o.ok_ops, all + o.ops));
    assert!(
        ok * 10 >= all * 9,
        "{strategy}: only {ok} of {all} operations ok"
    );
}

fn never_invalid_with_latency(strategy: StrategyKind) {
    let cfg = five_nodes_with_latency(strategy);
    let outcomes = run_seeds(&cfg, 0..100);
    assert_none_invalid(&cfg, &outcomes);
}

#[test]
fn gossip_never_loses_an_acknowledged_add() {
    never_invalid(StrategyKind::Gossip);
}

#[test]
fn per_node_never_loses_an_acknowledged_add() {
    never_invalid(StrategyKind::PerNode);
}

#[test]
fn cas_never_loses_an_acknowledged_add() {
    never_invalid(StrategyKind::Cas);
}

#[test]
fn gossip_never_loses_an_add_with_five_nodes_and_latency() {
    never_invalid_with_latency(StrategyKind::Gossip);
}

#[test]
fn per_node_never_loses_an_add_with_five_nodes_and_latency() {
    never_invalid_with_latency(StrategyKind::PerNode);
}

#[test]
fn cas_never_loses_an_add_with_five_nodes_and_latency() {
    never_invalid_with_latency(StrategyKind::Cas);
}

#[test]
fn naive_loses_updates_in_almost_every_run() {
    let cfg = evaluation(StrategyKind::Naive);
    let outcomes = run_seeds(&cfg, 0..300);
    let invalid = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Invalid)
        .count();
    let lost: Vec<u64> = outcomes.iter().map(|o| o.lost).collect();
    eprintln!(
        "naive: {invalid} of {} runs invalid; lost min {:?} max {:?}",
        outcomes.len(),
        lost.iter().min(),
        lost.iter().max()
    );
    for o in outcomes.iter().filter(|o| o.verdict != Verdict::Invalid) {
        eprintln!(
            "  {:?}: seed {}: {}",
            o.verdict,
            o.seed,
            replay(&cfg, o.seed)
        );
    }
    assert!(
        invalid * 10 >= outcomes.len() * 9,
        "only {invalid} of {} runs invalid",
        outcomes.len()
    );
}

/// The anomaly, pinned: on seed 7 of the evaluation, 1258 is acknowledged
/// and every final read says 841. (The number follows the strategy and the
/// simulator exactly; if either changes on purpose, take the new one from
/// the failure message.)
#[test]
fn naive_loses_a_known_number_of_updates_on_a_pinned_seed() {
    const SEED: u64 = 7;
    const LOST: u64 = 417;
    let cfg = evaluation(StrategyKind::Naive);
    eprintln!("replay: {}", replay(&cfg, SEED));
    let run = sim::run(&cfg, SEED).unwrap();
    assert_eq!(run.check.verdict, Verdict::Invalid, "{:?}", run.check);
    assert_eq!(run.check.lost, LOST, "{:?}", run.check);
    assert_eq!(run.check.definite_sum, 1258);
    assert!(
        run.check.final_reads.iter().all(|r| r.value == 841),
        "{:?}",
        run.check.final_reads
    );
}
