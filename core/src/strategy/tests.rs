//! Every strategy against the seq-kv model, stale reads included.

use super::testkit::{config, Cluster};
use crate::config::{KvKind, StrategyKind};
use crate::node::Node;
use crate::protocol::Payload;
use crate::ErrorCode;
use std::time::Duration;

const SAFE: [StrategyKind; 3] = [
    StrategyKind::PerNode,
    StrategyKind::Cas,
    StrategyKind::Gossip,
];

/// Concurrent adds on every node; returns (sum acknowledged, cluster).
fn concurrent_adds(kind: StrategyKind, seed: u64, adds: usize) -> (u64, Cluster) {
    let mut c = Cluster::new(kind, 3, seed);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ids = Vec::new();
    for _ in 0..adds {
        let delta = rng.u64(0..=4);
        let node = rng.usize(0..3);
        ids.push((c.request(node, Payload::Add { delta }), delta));
        // Interleave: deliver a few messages between requests.
        for _ in 0..rng.usize(0..4) {
            c.step();
        }
    }
    c.settle(Duration::from_secs(5));
    let mut acked = 0;
    for (id, delta) in ids {
        match c.reply(id) {
            Some(Payload::AddOk) => acked += delta,
            other => panic!("{kind} seed {seed}: add {id} answered {other:?}"),
        }
    }
    (acked, c)
}

#[test]
fn safe_strategies_count_every_acknowledged_add() {
    for kind in SAFE {
        for seed in 0..150 {
            let (acked, mut c) = concurrent_adds(kind, seed, 30);
            for node in 0..3 {
                assert_eq!(c.read(node), acked, "{kind} seed {seed} node n{node}");
            }
        }
    }
}

#[test]
fn naive_loses_updates_under_concurrent_adds() {
    let lossy = (0..100)
        .filter(|&seed| {
            let (acked, mut c) = concurrent_adds(StrategyKind::Naive, seed, 30);
            c.read(0) < acked
        })
        .count();
    assert!(
        lossy > 50,
        "naive lost updates in only {lossy} of 100 seeds"
    );
}

#[test]
fn reads_never_go_backwards_on_a_node() {
    for kind in [StrategyKind::PerNode, StrategyKind::Cas] {
        for seed in 0..50 {
            let mut c = Cluster::new(kind, 3, seed);
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut reads = Vec::new();
            for _ in 0..60 {
                let node = rng.usize(0..3);
                if rng.bool() {
                    c.request(
                        node,
                        Payload::Add {
                            delta: rng.u64(1..=4),
                        },
                    );
                } else {
                    reads.push(c.request(0, Payload::Read { key: None }));
                }
                for _ in 0..rng.usize(0..6) {
                    c.step();
                }
            }
            c.settle(Duration::from_secs(5));
            // In the order the node sent the answers.
            let mut last = 0;
            let answered: Vec<u64> = c
                .sent
                .iter()
                .filter_map(|r| match &r.body.payload {
                    Payload::ReadOk { value } => value.as_u64(),
                    _ => None,
                })
                .collect();
            assert_eq!(answered.len(), reads.len(), "{kind} seed {seed}");
            for v in answered {
                assert!(
                    v >= last,
                    "{kind} seed {seed}: read went from {last} to {v}"
                );
                last = v;
            }
        }
    }
}

#[test]
fn per_node_keeps_one_write_in_flight_and_coalesces() {
    let mut c = Cluster::new(StrategyKind::PerNode, 3, 1);
    c.settle(Duration::from_secs(1));
    for _ in 0..10 {
        c.request(0, Payload::Add { delta: 1 });
    }
    let is_cas =
        |m: &crate::Envelope| m.src == "n0" && matches!(m.body.payload, Payload::Cas { .. });
    let mut max_in_flight = 0;
    while c.step() {
        max_in_flight = max_in_flight.max(c.net.iter().filter(|m| is_cas(m)).count());
    }
    let cas_sent = c.sent.iter().filter(|m| is_cas(m)).count();
    assert_eq!(max_in_flight, 1);
    assert!(
        cas_sent < 10,
        "adds were not coalesced: {cas_sent} cas for 10 adds"
    );
    assert_eq!(c.read(1), 10);
}

#[test]
fn per_node_recovers_its_total_after_a_restart() {
    for seed in 0..30 {
        let mut c = Cluster::new(StrategyKind::PerNode, 3, seed);
        for _ in 0..5 {
            c.request(0, Payload::Add { delta: 2 });
        }
        c.settle(Duration::from_secs(5));
        // n0 crashes and comes back as a new process.
        c.nodes[0] = Node::new(config(StrategyKind::PerNode, KvKind::SeqKv, 1));
        c.init(0);
        let id = c.request(0, Payload::Add { delta: 3 });
        c.settle(Duration::from_secs(5));
        assert_eq!(c.reply(id), Some(&Payload::AddOk));
        assert_eq!(c.read(1), 13, "seed {seed}");
    }
}

#[test]
fn per_node_settles_a_lost_cas_reply_without_double_counting() {
    for seed in 0..30 {
        let mut c = Cluster::new(StrategyKind::PerNode, 3, seed);
        c.settle(Duration::from_secs(1));
        let mut dropped = false;
        c.drop_if = Box::new(move |m| {
            let hit = !dropped && m.dest == "n0" && m.body.payload == Payload::CasOk;
            dropped |= hit;
            hit
        });
        let id = c.request(0, Payload::Add { delta: 4 });
        c.settle(Duration::from_secs(10));
        assert_eq!(c.reply(id), Some(&Payload::AddOk), "seed {seed}");
        assert_eq!(c.read(2), 4, "seed {seed}");
    }
}

#[test]
fn cas_answers_an_unconfirmed_write_indefinitely() {
    let mut c = Cluster::new(StrategyKind::Cas, 3, 5);
    c.drop_if = Box::new(|m| m.body.payload == Payload::CasOk);
    let id = c.request(0, Payload::Add { delta: 2 });
    c.settle(Duration::from_secs(10));
    match c.reply(id) {
        Some(Payload::Error { code, .. }) => assert!(!code.is_definite(), "{code}"),
        other => panic!("expected an indefinite error, got {other:?}"),
    }
    // The write did land, and the counter says so.
    c.drop_if = Box::new(|_| false);
    assert_eq!(c.read(1), 2);
}

#[test]
fn a_single_node_cluster_sends_nothing_but_replies() {
    for kind in StrategyKind::ALL {
        let mut c = Cluster::new(kind, 1, 0);
        c.request(0, Payload::Add { delta: 3 });
        c.request(0, Payload::Add { delta: 4 });
        c.settle(Duration::from_secs(60));
        assert!(
            c.sent.iter().all(|r| r.dest.starts_with('c')),
            "{kind}: {:?}",
            c.sent
        );
        assert_eq!(c.sent.len(), 2, "{kind}");
        assert_eq!(c.read(0), 7, "{kind}");
    }
}

#[test]
fn overflowing_adds_are_refused_definitely() {
    for kind in StrategyKind::ALL {
        let mut c = Cluster::new(kind, 3, 0);
        let big = super::MAX_TOTAL;
        let first = c.request(0, Payload::Add { delta: big });
        c.settle(Duration::from_secs(5));
        assert_eq!(c.reply(first), Some(&Payload::AddOk), "{kind}");
        let second = c.request(0, Payload::Add { delta: 1 });
        c.settle(Duration::from_secs(5));
        match c.reply(second) {
            Some(Payload::Error { code, .. }) => {
                assert_eq!(*code, ErrorCode::MALFORMED_REQUEST, "{kind}")
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
}

#[test]
fn a_client_cannot_gossip_into_the_counter() {
    let mut c = Cluster::new(StrategyKind::Gossip, 3, 0);
    let counts = [("zz".to_string(), 100)].into();
    let id = c.request(0, Payload::Gossip { counts });
    c.settle(Duration::from_secs(1));
    assert!(matches!(
        c.reply(id),
        Some(Payload::Error {
            code: ErrorCode::NOT_SUPPORTED,
            ..
        })
    ));
    assert_eq!(c.read(0), 0);
}

#[test]
fn reads_soon_after_a_round_are_answered_from_it_and_later_ones_ask_again() {
    for kind in [StrategyKind::PerNode, StrategyKind::Cas] {
        let mut c = Cluster::new(kind, 3, 4);
        c.request(1, Payload::Add { delta: 2 });
        c.settle(Duration::from_secs(1));
        assert_eq!(c.read(0), 2, "{kind}");
        let to_kv = |c: &Cluster| c.sent.iter().filter(|m| m.dest == "seq-kv").count();
        let before = to_kv(&c);
        assert_eq!(c.read(0), 2, "{kind}");
        assert_eq!(to_kv(&c), before, "{kind}: a fresh view was not used");
        // Past half the bound, the read is still answered from the view,
        // and a round starts in the background to renew it.
        let staleness = crate::Config::default().read_staleness;
        c.request(2, Payload::Add { delta: 3 });
        c.settle(Duration::ZERO);
        c.now += staleness * 3 / 4;
        assert_eq!(c.read(0), 2, "{kind}");
        assert!(to_kv(&c) > before, "{kind}: no background refresh");
        assert_eq!(c.read(0), 5, "{kind}: the refresh did not land");
        // Later than the bound, the read waits for the service.
        let before = to_kv(&c);
        c.request(2, Payload::Add { delta: 1 });
        c.settle(Duration::ZERO);
        c.now += staleness * 2;
        assert_eq!(c.read(0), 6, "{kind}");
        assert!(to_kv(&c) > before, "{kind}");
    }
}
