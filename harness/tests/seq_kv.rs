//! The simulator's `seq-kv` is the core's model, and it is really stale:
//! strategies that read a shared key get values older than the newest state.

mod common;

use gcounter_core::StrategyKind;
use gcounter_harness::sim;

/// Stale reads served and requests answered over three seeds.
fn seq_kv_traffic(strategy: StrategyKind) -> (u64, u64) {
    let cfg = common::evaluation(strategy);
    let (mut stale, mut requests) = (0, 0);
    for seed in 0..3 {
        eprintln!("replay: {}", common::replay(&cfg, seed));
        let run = sim::run(&cfg, seed).unwrap();
        stale += run.stale_reads();
        requests += run.services.iter().map(|(_, c)| c.requests).sum::<u64>();
    }
    eprintln!("{strategy}: {stale} stale reads in {requests} seq-kv requests");
    (stale, requests)
}

#[test]
fn seq_kv_serves_stale_reads_in_the_simulator() {
    // `naive` reads the shared key before every write: seq-kv hands it old
    // states (which is why it loses updates).
    let (stale, requests) = seq_kv_traffic(StrategyKind::Naive);
    assert!(requests > 0, "naive never called seq-kv");
    assert!(stale > 0, "seq-kv never served naive a stale read");
    // The other KV strategies talk to the same model.
    for strategy in [StrategyKind::PerNode, StrategyKind::Cas] {
        let (_, requests) = seq_kv_traffic(strategy);
        assert!(requests > 0, "{strategy} never called seq-kv");
    }
}

#[test]
fn gossip_needs_no_service() {
    let cfg = common::evaluation(StrategyKind::Gossip);
    let run = sim::run(&cfg, 0).unwrap();
    assert!(
        run.services.iter().all(|(_, c)| c.requests == 0),
        "{:?}",
        run.services
    );
}
