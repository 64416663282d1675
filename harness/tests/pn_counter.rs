//! Maelstrom's pn-counter workload (issue 22): `gossip`, `per-node` and
//! `cas` count every acknowledged add of either sign; `gossip-max`, which
//! merges a signed total per slot by its maximum, cannot be told from
//! `gossip` under g-counter and erases decrements under pn-counter, and
//! the explanation names the gossip that shows it.

mod common;

use common::{assert_none_invalid, evaluation, five_nodes_with_latency, run_seeds};
use gcounter_core::StrategyKind;
use gcounter_harness::checker::Verdict;
use gcounter_harness::explain::explain;
use gcounter_harness::sim::{self, SimConfig};
use gcounter_harness::testcore::trace::DEFAULT_CAP;
use gcounter_harness::workload::WorkloadKind;

fn pn(mut cfg: SimConfig) -> SimConfig {
    cfg.workload.kind = WorkloadKind::PnCounter;
    cfg
}

#[test]
fn the_right_strategies_count_every_signed_add() {
    for strategy in [
        StrategyKind::Gossip,
        StrategyKind::PerNode,
        StrategyKind::Cas,
    ] {
        let cfg = pn(evaluation(strategy));
        let outcomes = run_seeds(&cfg, 0..100);
        assert_none_invalid(&cfg, &outcomes);
        let cfg = pn(five_nodes_with_latency(strategy));
        let outcomes = run_seeds(&cfg, 0..40);
        assert_none_invalid(&cfg, &outcomes);
    }
}

#[test]
fn the_workload_draws_both_signs() {
    let run = sim::run(&pn(evaluation(StrategyKind::Gossip)), 1).unwrap();
    let deltas: Vec<i64> = run.history.iter().filter_map(|op| op.delta).collect();
    assert!((-5..=4).all(|d| deltas.contains(&d)));
    assert!(deltas.iter().all(|d| (-5..=4).contains(d)));
    assert!(run.check.definite_decrements > 0);
}

#[test]
fn gossip_max_passes_g_counter_and_erases_decrements_under_pn_counter() {
    let g = evaluation(StrategyKind::GossipMax);
    assert_none_invalid(&g, &run_seeds(&g, 0..50));
    let mut cfg = pn(evaluation(StrategyKind::GossipMax));
    let outcomes = run_seeds(&cfg, 0..50);
    let invalid = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Invalid)
        .count();
    assert!(invalid >= 45, "gossip-max invalid in only {invalid} of 50");
    cfg.trace = DEFAULT_CAP;
    let run = sim::run(&cfg, 1).unwrap();
    assert_eq!(run.check.verdict, Verdict::Invalid);
    let e = explain(&run.history, &run.check, &run.trace, &run.nemesis).unwrap();
    let signed = e.signed.as_ref().expect("a pn-counter account");
    assert!(
        signed.too_high > 0 && signed.decrements_erased > 0,
        "{signed:?}"
    );
    let kept = signed
        .kept_higher
        .first()
        .expect("the gossip that kept a higher total");
    assert!(kept.sent > kept.received);
    assert!(
        e.main_cause().starts_with("erased decrements"),
        "{}",
        e.main_cause()
    );
    // The same seed under `gossip` is valid.
    let mut right = pn(evaluation(StrategyKind::Gossip));
    right.trace = DEFAULT_CAP;
    let run = sim::run(&right, 1).unwrap();
    assert_eq!(run.check.verdict, Verdict::Valid);
}
