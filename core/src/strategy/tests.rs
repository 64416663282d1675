//! Every strategy against the seq-kv model, stale reads included.

use super::testkit::{config, Cluster};
use crate::config::{Config, KvKind, StrategyKind};
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
        ids.push((
            c.request(
                node,
                Payload::Add {
                    delta: delta as i64,
                },
            ),
            delta,
        ));
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
                            delta: rng.i64(1..=4),
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
        // A strategy where each node counts its own share lets a node
        // count up to its share; one shared key, up to the whole total.
        let big = match kind {
            StrategyKind::Gossip | StrategyKind::GossipMax | StrategyKind::PerNode => {
                super::share_limit(3)
            }
            StrategyKind::Cas | StrategyKind::Naive => super::MAX_TOTAL,
        };
        let first = c.request(0, Payload::Add { delta: big as i64 });
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
    let id = c.request(
        0,
        Payload::Gossip {
            counts,
            decrements: Default::default(),
        },
    );
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

/// `gossip` node `i` of `c` crashes and starts again as incarnation
/// `incarnation`, given what it had stored, if `restore`.
fn restart_gossip(c: &mut Cluster, i: usize, incarnation: u64, restore: bool) {
    let mut config = config(StrategyKind::Gossip, KvKind::SeqKv, incarnation);
    if restore {
        config.restored = c.stored[i].clone();
    }
    c.nodes[i] = Node::new(config);
    c.init(i);
}

fn is_gossip_from(m: &crate::Envelope, node: &str) -> bool {
    m.src == node
        && matches!(
            m.body.payload,
            Payload::Gossip { .. } | Payload::GossipAck { .. }
        )
}

#[test]
fn gossip_restarted_from_its_stored_state_keeps_adds_it_never_gossiped() {
    for seed in 0..30 {
        let mut c = Cluster::new(StrategyKind::Gossip, 3, seed);
        // Nothing n0 knows leaves it before it crashes.
        c.drop_if = Box::new(|m| is_gossip_from(m, "n0"));
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut ids = Vec::new();
        for _ in 0..20 {
            let delta = rng.u64(1..=4);
            let node = rng.usize(0..3);
            ids.push((
                c.request(
                    node,
                    Payload::Add {
                        delta: delta as i64,
                    },
                ),
                delta,
                node,
            ));
            for _ in 0..rng.usize(0..4) {
                c.step();
            }
        }
        c.settle(Duration::from_secs(5));
        let mut acked = 0;
        let mut acked_on_n0 = 0;
        for (id, delta, node) in ids {
            assert_eq!(c.reply(id), Some(&Payload::AddOk), "seed {seed}");
            acked += delta;
            if node == 0 {
                acked_on_n0 += delta;
            }
        }
        assert_eq!(c.read(1), acked - acked_on_n0, "seed {seed}: n0 gossiped");

        restart_gossip(&mut c, 0, 1, true);
        c.drop_if = Box::new(|_| false);
        let id = c.request(0, Payload::Add { delta: 3 });
        c.settle(Duration::from_secs(5));
        assert_eq!(c.reply(id), Some(&Payload::AddOk), "seed {seed}");
        for node in 0..3 {
            assert_eq!(c.read(node), acked + 3, "seed {seed} node n{node}");
        }
        // It kept counting in its first life's slot.
        let stored = c.stored[0].as_deref().expect("n0 stored its state");
        let stored: serde_json::Value = serde_json::from_str(stored).unwrap();
        assert_eq!(stored["slot"], "n0", "seed {seed}");
        assert_eq!(stored["counts"]["n0"], acked_on_n0 + 3, "seed {seed}");
    }
}

/// Issue 20, item 7: a node restarted from its stored state never reads
/// lower than it answered before it stopped, even when what it answered
/// came from its peers' counts (merged after its own last add) and the
/// peers cannot reach it after the restart.
#[test]
fn gossip_restarted_from_its_state_never_reads_lower_than_it_answered() {
    for seed in 0..30 {
        let mut c = Cluster::new(StrategyKind::Gossip, 3, seed);
        c.request(0, Payload::Add { delta: 1 });
        for _ in 0..4 {
            c.request(1, Payload::Add { delta: 2 });
            c.request(2, Payload::Add { delta: 3 });
        }
        c.settle(Duration::from_secs(5));
        let before = c.read(0);
        assert_eq!(before, 21, "seed {seed}");
        restart_gossip(&mut c, 0, 1, true);
        // Nothing from the peers reaches it again.
        c.drop_if =
            Box::new(|m| m.dest == "n0" && (is_gossip_from(m, "n1") || is_gossip_from(m, "n2")));
        assert!(
            c.read(0) >= before,
            "seed {seed}: n0 read {} after {before}",
            c.read(0)
        );
    }
}

#[test]
fn gossip_restarted_without_its_state_keeps_the_peers_view_of_its_old_slot() {
    for seed in 0..30 {
        let mut c = Cluster::new(StrategyKind::Gossip, 3, seed);
        for _ in 0..5 {
            c.request(0, Payload::Add { delta: 2 });
        }
        c.settle(Duration::from_secs(5));
        assert_eq!(c.read(2), 10, "seed {seed}");

        restart_gossip(&mut c, 0, 1, false);
        let id = c.request(0, Payload::Add { delta: 3 });
        c.settle(Duration::from_secs(5));
        assert_eq!(c.reply(id), Some(&Payload::AddOk), "seed {seed}");
        for node in 0..3 {
            assert_eq!(c.read(node), 13, "seed {seed} node n{node}");
        }
        let stored = c.stored[0].as_deref().expect("n0 stored its state");
        let stored: serde_json::Value = serde_json::from_str(stored).unwrap();
        assert_eq!(stored["slot"], "n0#1", "seed {seed}");
    }
}

/// A two-node `gossip` node given an `init` and then an add of each of
/// `deltas` from a client: what it output, in order (`send <type>` or
/// `persist <state>`).
fn gossip_outputs(config: Config, deltas: &[u64]) -> Vec<String> {
    use crate::node::{Input, Output};
    use crate::protocol::{Body, Envelope};
    let mut node = Node::new(config);
    let message = |msg_id, payload| {
        Input::Message(Envelope {
            src: "c1".into(),
            dest: "n0".into(),
            body: Body {
                msg_id: Some(msg_id),
                in_reply_to: None,
                payload,
            },
        })
    };
    let init = Payload::Init {
        node_id: "n0".into(),
        node_ids: vec!["n0".into(), "n1".into()],
    };
    node.handle(message(1, init), Duration::ZERO);
    for (id, &delta) in (2..).zip(deltas) {
        node.handle(
            message(
                id,
                Payload::Add {
                    delta: delta as i64,
                },
            ),
            Duration::ZERO,
        );
    }
    let mut out = Vec::new();
    loop {
        match node.poll_output() {
            Output::Wait(_) => return out,
            Output::Send(msg) => out.push(format!("send {}", msg.body.payload.type_name())),
            Output::Persist(state) => out.push(format!("persist {state}")),
        }
    }
}

#[test]
fn gossip_stores_its_state_before_the_add_ok_it_covers() {
    let config = config(StrategyKind::Gossip, KvKind::SeqKv, 0);
    assert_eq!(
        gossip_outputs(config, &[2, 0, 3]),
        [
            "send init_ok",
            r#"persist {"slot":"n0","counts":{"n0":2}}"#,
            "send add_ok",
            // An add of 0 changes nothing to store.
            "send add_ok",
            r#"persist {"slot":"n0","counts":{"n0":5}}"#,
            "send add_ok",
        ]
    );
}

#[test]
fn gossip_builds_no_state_for_a_transport_that_stores_none() {
    let config = Config {
        persist: false,
        ..config(StrategyKind::Gossip, KvKind::SeqKv, 0)
    };
    assert_eq!(
        gossip_outputs(config, &[2, 0, 3]),
        ["send init_ok", "send add_ok", "send add_ok", "send add_ok"]
    );
}

#[test]
fn gossip_counts_in_a_fresh_slot_when_the_stored_state_is_unusable() {
    let unusable = [
        "",
        "not json",
        r#"{"slot":"n0"}"#,
        r#"{"slot":"n1","counts":{"n1":5}}"#,
        r#"{"slot":"n0#x","counts":{"n0#x":5}}"#,
        r#"{"slot":"n01","counts":{"n01":5}}"#,
        r#"{"slot":"n0","counts":{"n0":9223372036854775807,"n1":1}}"#,
        r#"{"slot":"n0","counts":{"n0":-1}}"#,
    ];
    for state in unusable {
        let mut c = Cluster::new(StrategyKind::Gossip, 2, 0);
        c.stored[0] = Some(state.to_string());
        restart_gossip(&mut c, 0, 4, true);
        c.request(0, Payload::Add { delta: 1 });
        c.settle(Duration::from_secs(5));
        assert_eq!(c.read(0), 1, "{state}");
        assert_eq!(c.read(1), 1, "{state}");
        let stored = c.stored[0].as_deref().expect("n0 stored its state");
        assert_eq!(stored, r#"{"slot":"n0#4","counts":{"n0#4":1}}"#, "{state}");
    }
}

#[test]
fn gossip_takes_up_a_stored_slot_of_an_earlier_incarnation() {
    let mut c = Cluster::new(StrategyKind::Gossip, 2, 0);
    c.stored[0] = Some(r#"{"slot":"n0#2","counts":{"n0":4,"n0#2":5}}"#.into());
    restart_gossip(&mut c, 0, 3, true);
    c.request(0, Payload::Add { delta: 1 });
    c.settle(Duration::from_secs(5));
    assert_eq!(c.read(0), 10);
    assert_eq!(c.read(1), 10);
    assert_eq!(
        c.stored[0].as_deref(),
        Some(r#"{"slot":"n0#2","counts":{"n0":4,"n0#2":6}}"#)
    );
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

/// Every add of `adds` (node, delta) is answered `add_ok` or refused
/// definitely; returns the sum of those acknowledged.
fn acked_sum(c: &Cluster, adds: &[(u64, u64)]) -> u64 {
    let mut acked = 0u64;
    for &(id, delta) in adds {
        match c.reply(id) {
            Some(Payload::AddOk) => {
                acked = acked.checked_add(delta).expect("acknowledged past u64")
            }
            Some(Payload::Error { code, .. }) if code.is_definite() => {}
            other => panic!("add {id} of {delta}: {other:?}"),
        }
    }
    acked
}

#[test]
fn per_node_never_acknowledges_adds_whose_total_cannot_fit() {
    // Issue 11: three nodes each acknowledged i64::MAX and every node then
    // read 9223372036854775805, the sum wrapped past 2^64.
    let mut c = Cluster::new(StrategyKind::PerNode, 3, 0);
    c.settle(Duration::from_secs(1));
    let adds: Vec<(u64, u64)> = (0..3)
        .map(|i| {
            (
                c.request(i, Payload::Add { delta: i64::MAX }),
                i64::MAX as u64,
            )
        })
        .collect();
    c.settle(Duration::from_secs(5));
    let acked = acked_sum(&c, &adds);
    assert!(acked <= super::MAX_TOTAL);
    for node in 0..3 {
        assert_eq!(c.read(node), acked, "n{node}");
    }
}

#[test]
fn gossip_never_acknowledges_adds_that_overflow_once_a_partition_heals() {
    // Issue 11: cut off from each other, nodes acknowledged adds that each
    // fit locally; after the heal the merged counts added past 2^64 and a
    // node read 10.
    let mut c = Cluster::new(StrategyKind::Gossip, 3, 0);
    c.drop_if = Box::new(|m| m.src.starts_with('n') && m.dest.starts_with('n'));
    let big = i64::MAX as u64;
    let adds = vec![
        (c.request(0, Payload::Add { delta: big as i64 }), big),
        (c.request(1, Payload::Add { delta: big as i64 }), big),
        (c.request(2, Payload::Add { delta: 12 }), 12),
    ];
    c.settle(Duration::from_secs(2));
    c.drop_if = Box::new(|_| false);
    c.settle(Duration::from_secs(5));
    let acked = acked_sum(&c, &adds);
    assert!(acked <= super::MAX_TOTAL);
    for node in 0..3 {
        assert_eq!(c.read(node), acked, "n{node}");
    }
}

#[test]
fn gossip_rejects_a_peer_state_that_would_overflow() {
    let mut c = Cluster::new(StrategyKind::Gossip, 3, 0);
    let id = c.request(0, Payload::Add { delta: 5 });
    c.settle(Duration::from_secs(1));
    assert_eq!(c.reply(id), Some(&Payload::AddOk));
    let big = i64::MAX as u64;
    let counts = [("n1".to_string(), big), ("n2".to_string(), big)].into();
    c.net.push(crate::Envelope {
        src: "n1".into(),
        dest: "n0".into(),
        body: crate::protocol::Body {
            msg_id: None,
            in_reply_to: None,
            payload: Payload::Gossip {
                counts,
                decrements: Default::default(),
            },
        },
    });
    c.step();
    c.drop_if = Box::new(|m| m.src.starts_with('n') && m.dest.starts_with('n'));
    assert_eq!(c.read(0), 5);
}

#[test]
fn cas_never_acknowledges_a_batch_whose_sum_overflows() {
    // Issue 11: `batch.sum += delta` wrapped; an add of 1 in flight, then
    // three of i64::MAX, were all acknowledged and the key became
    // 9223372036854775806.
    let mut c = Cluster::new(StrategyKind::Cas, 3, 0);
    c.settle(Duration::from_secs(1));
    let big = i64::MAX as u64;
    let mut adds = vec![(c.request(0, Payload::Add { delta: 1 }), 1)];
    c.deliver_where(|m| m.src.starts_with('c'));
    // Its cas is in flight: the big adds wait and ride on the next one.
    for _ in 0..3 {
        adds.push((c.request(0, Payload::Add { delta: big as i64 }), big));
    }
    c.deliver_where(|m| m.src.starts_with('c'));
    c.settle(Duration::from_secs(5));
    let acked = acked_sum(&c, &adds);
    assert!(acked <= super::MAX_TOTAL);
    for node in 0..3 {
        assert_eq!(c.read(node), acked, "n{node}");
    }
}

#[test]
fn with_the_kv_unreachable_every_request_is_answered_in_bounded_time() {
    // Issue 11, item 5: per-node kept every request and answered none;
    // cas never answered reads.
    for kind in [StrategyKind::PerNode, StrategyKind::Cas] {
        let mut c = Cluster::new(kind, 3, 0);
        c.settle(Duration::from_secs(1));
        c.drop_if = Box::new(|m| m.dest == "seq-kv");
        let mut ids = Vec::new();
        for i in 0..200 {
            let payload = match i % 2 {
                0 => Payload::Add { delta: 1 },
                _ => Payload::Read { key: None },
            };
            ids.push(c.request(0, payload));
        }
        c.settle(Duration::from_secs(10));
        for id in ids {
            let replies: Vec<_> = c
                .replies
                .iter()
                .filter(|r| r.body.in_reply_to == Some(id))
                .collect();
            assert_eq!(replies.len(), 1, "{kind}: request {id}: {replies:?}");
            let code = match &replies[0].body.payload {
                Payload::Error { code, .. } => *code,
                other => panic!("{kind}: request {id}: {other:?}"),
            };
            assert!(
                code == ErrorCode::TEMPORARILY_UNAVAILABLE || !code.is_definite(),
                "{kind}: request {id}: {code}"
            );
        }
        // And the node serves again once the KV is back.
        c.drop_if = Box::new(|_| false);
        c.settle(Duration::from_secs(5));
        let add = c.request(0, Payload::Add { delta: 2 });
        c.settle(Duration::from_secs(10));
        assert_eq!(c.reply(add), Some(&Payload::AddOk), "{kind}");
        let value = c.read(1);
        assert!(value >= 2, "{kind}: {value}");
    }
}

#[test]
fn with_the_kv_unreachable_what_waits_is_bounded() {
    // Issue 11, item 5: per-node kept every request (1M requests: RSS 5 ->
    // 87 MB). Past the bound a request is refused at once.
    let extra = 5;
    for kind in [StrategyKind::PerNode, StrategyKind::Cas] {
        // The first add leaves at once in a write, so it does not wait.
        assert_eq!(refused_past_the_bound(kind, extra), extra - 1, "{kind}");
    }
}

/// With the KV unreachable, how many of `MAX_WAITING + extra` adds a
/// `kind` node refuses at once (error 11).
fn refused_past_the_bound(kind: StrategyKind, extra: usize) -> usize {
    let mut c = Cluster::new(kind, 3, 0);
    c.settle(Duration::from_secs(1));
    c.drop_if = Box::new(|m| m.dest == "seq-kv");
    for _ in 0..super::kv_calls::MAX_WAITING + extra {
        c.request(0, Payload::Add { delta: 1 });
    }
    c.deliver_where(|m| m.src.starts_with('c'));
    c.net
        .iter()
        .filter(|m| {
            matches!(
                m.body.payload,
                Payload::Error {
                    code: ErrorCode::TEMPORARILY_UNAVAILABLE,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn cas_never_lands_a_batch_twice_after_a_reread_times_out() {
    // Issue 14: after a refused cas, a reread whose reply was lost timed
    // out, the service's silence refused the batch, and the reread was
    // sent again while the next add started a cas: from then on two
    // attempts ran side by side, and both landed the same add.
    use std::cell::RefCell;
    use std::rc::Rc;
    let mut c = Cluster::new(StrategyKind::Cas, 2, 0);
    c.request(1, Payload::Add { delta: 1 });
    c.settle(Duration::ZERO);
    // n0 does not know the key holds 1: its cas from 0 is refused.
    let first = c.request(0, Payload::Add { delta: 1 });
    c.deliver_where(|m| m.dest == "n0");
    c.deliver_where(|m| m.dest == "seq-kv");
    c.deliver_where(|m| m.dest == "n0");
    // Its reread goes unanswered past a timeout.
    c.drop_if = Box::new(|m| m.src == "seq-kv" && m.dest == "n0");
    c.settle(Duration::from_millis(1500));
    c.now += Duration::from_millis(500);
    let second = c.request(0, Payload::Add { delta: 1 });
    c.deliver_where(|m| m.src == "c1");
    let first_cas: Vec<_> = c.net.drain(..).collect();
    // The next reread finds 1 and its cas lands, unacknowledged yet...
    let held = Rc::new(RefCell::new(Vec::new()));
    let hold = Rc::clone(&held);
    c.drop_if = Box::new(move |m| {
        let ok = m.src == "seq-kv" && m.body.payload == Payload::CasOk;
        if ok {
            hold.borrow_mut().push(m.clone());
        }
        ok
    });
    c.settle(Duration::from_millis(700));
    c.drop_if = Box::new(|_| false);
    // ...when an older attempt is refused and rereads.
    c.net.extend(first_cas);
    c.settle(Duration::ZERO);
    c.net.extend(held.borrow_mut().drain(..));
    c.settle(Duration::from_secs(30));
    let could_count =
        |id| !matches!(c.reply(id), Some(Payload::Error { code, .. }) if code.is_definite());
    let most = 1 + u64::from(could_count(first)) + u64::from(could_count(second));
    let value = c.read(1);
    assert!(value <= most, "read {value}, at most {most} added");
}

#[test]
fn naive_with_the_kv_unreachable_answers_in_bounded_time_and_bounded_work() {
    // Issue 11, item 5: naive retried every waiting request every call
    // timeout, forever (200,000 adds: no reply in 3 s, 18 million reads).
    let mut c = Cluster::new(StrategyKind::Naive, 3, 0);
    c.settle(Duration::from_secs(1));
    c.drop_if = Box::new(|m| m.dest == "seq-kv");
    let before = c.sent.iter().filter(|m| m.dest == "seq-kv").count();
    let mut ids = Vec::new();
    for i in 0..200 {
        let payload = match i % 2 {
            0 => Payload::Add { delta: 1 },
            _ => Payload::Read { key: None },
        };
        ids.push(c.request(0, payload));
    }
    c.settle(Duration::from_secs(10));
    for &id in &ids {
        let replies: Vec<_> = c
            .replies
            .iter()
            .filter(|r| r.body.in_reply_to == Some(id))
            .collect();
        assert_eq!(replies.len(), 1, "request {id}: {replies:?}");
        match &replies[0].body.payload {
            // None of these reads reached the service, so no write went.
            Payload::Error { code, .. } => {
                assert_eq!(*code, ErrorCode::TEMPORARILY_UNAVAILABLE, "request {id}")
            }
            other => panic!("request {id}: {other:?}"),
        }
    }
    // One read per request, and then one retry per call timeout, not one
    // per request per timeout.
    let reads = c.sent.iter().filter(|m| m.dest == "seq-kv").count() - before;
    assert!(
        reads <= ids.len() + 10,
        "{reads} KV calls for {} requests",
        ids.len()
    );
    // And the node serves again once the KV is back.
    c.drop_if = Box::new(|_| false);
    c.settle(Duration::from_secs(5));
    let add = c.request(0, Payload::Add { delta: 2 });
    c.settle(Duration::from_secs(10));
    assert_eq!(c.reply(add), Some(&Payload::AddOk));
    assert!(c.read(0) >= 2);

    // Past the bound a request is refused at once.
    let extra = 5;
    assert_eq!(refused_past_the_bound(StrategyKind::Naive, extra), extra);
}

// pn-counter (issue 22): adds may be negative.

/// Concurrent signed adds on every node, drawn as Maelstrom's pn-counter
/// draws them (-5..=4); returns (sum acknowledged, cluster).
fn concurrent_signed_adds(kind: StrategyKind, seed: u64, adds: usize) -> (i64, Cluster) {
    let mut c = Cluster::new(kind, 3, seed);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ids = Vec::new();
    for _ in 0..adds {
        let delta = rng.i64(-5..=4);
        let node = rng.usize(0..3);
        ids.push((c.request(node, Payload::Add { delta }), delta));
        for _ in 0..rng.usize(0..4) {
            c.step();
        }
    }
    c.settle(Duration::from_secs(5));
    let mut acked = 0;
    for (id, delta) in ids {
        match c.reply(id) {
            Some(Payload::AddOk) => acked += delta,
            other => panic!("{kind} seed {seed}: add {id} of {delta} answered {other:?}"),
        }
    }
    (acked, c)
}

#[test]
fn safe_strategies_count_every_acknowledged_signed_add() {
    for kind in SAFE {
        for seed in 0..150 {
            let (acked, mut c) = concurrent_signed_adds(kind, seed, 30);
            for node in 0..3 {
                assert_eq!(
                    c.read_signed(node),
                    acked,
                    "{kind} seed {seed} node n{node}"
                );
            }
        }
    }
}

#[test]
fn gossip_max_erases_a_decrement_that_gossip_keeps() {
    for kind in [StrategyKind::Gossip, StrategyKind::GossipMax] {
        let mut c = Cluster::new(kind, 3, 0);
        c.request(0, Payload::Add { delta: 4 });
        c.settle(Duration::from_secs(2));
        assert_eq!(c.read_signed(1), 4, "{kind}");
        c.request(0, Payload::Add { delta: -3 });
        c.settle(Duration::from_secs(2));
        let (n0, n1) = (c.read_signed(0), c.read_signed(1));
        match kind {
            StrategyKind::Gossip => assert_eq!((n0, n1), (1, 1)),
            // n1 keeps n0's slot at 4, the higher total: the decrement
            // never reaches it, and never would.
            _ => assert_eq!((n0, n1), (1, 4), "{kind}"),
        }
    }
}

#[test]
fn gossip_max_cannot_be_told_apart_from_gossip_without_decrements() {
    for seed in 0..50 {
        let (acked, mut c) = concurrent_adds(StrategyKind::GossipMax, seed, 30);
        for node in 0..3 {
            assert_eq!(c.read(node), acked, "seed {seed} node n{node}");
        }
    }
}

#[test]
fn a_count_only_ever_up_sends_what_a_g_counter_sends() {
    // Gossip leaves `decrements` off, per-node writes a plain number.
    for kind in [StrategyKind::Gossip, StrategyKind::PerNode] {
        let mut c = Cluster::new(kind, 3, 0);
        c.request(0, Payload::Add { delta: 3 });
        c.settle(Duration::from_secs(2));
        let lines: Vec<String> = c.sent.iter().map(crate::protocol::to_line).collect();
        assert!(
            lines
                .iter()
                .all(|l| !l.contains("decrements") && !l.contains('[')),
            "{kind}: {lines:?}"
        );
        c.request(0, Payload::Add { delta: -1 });
        c.settle(Duration::from_secs(2));
        let lines: Vec<String> = c.sent.iter().map(crate::protocol::to_line).collect();
        let wanted = match kind {
            StrategyKind::Gossip => r#""decrements":{"n0":1}"#,
            _ => r#""to":[3,1]"#,
        };
        assert!(
            lines.iter().any(|l| l.contains(wanted)),
            "{kind}: {lines:?}"
        );
        assert_eq!(c.read_signed(2), 2, "{kind}");
    }
}

#[test]
fn adds_that_would_take_a_count_below_the_lowest_total_are_refused() {
    for kind in StrategyKind::ALL {
        let mut c = Cluster::new(kind, 3, 0);
        let big = match kind {
            StrategyKind::Cas | StrategyKind::Naive => super::MAX_TOTAL,
            _ => super::share_limit(3),
        } as i64;
        let first = c.request(0, Payload::Add { delta: -big });
        c.settle(Duration::from_secs(5));
        assert_eq!(c.reply(first), Some(&Payload::AddOk), "{kind}");
        let second = c.request(0, Payload::Add { delta: -1 });
        c.settle(Duration::from_secs(5));
        match c.reply(second) {
            Some(Payload::Error { code, .. }) => {
                assert_eq!(*code, ErrorCode::MALFORMED_REQUEST, "{kind}")
            }
            other => panic!("{kind}: {other:?}"),
        }
        assert_eq!(c.read_signed(0), -big, "{kind}");
    }
}

/// Issue 21 item 8: with adds at every node every round, `gossip` sends at
/// most one message per ordered pair of nodes per round, as a node that
/// sends its whole state to every peer every round would; an answer sent
/// at once (a `gossip_ack` per `gossip`) made it two. And once the adds
/// stop, the cluster converges and goes quiet.
#[test]
fn gossip_sends_at_most_one_message_per_pair_per_round() {
    for seed in 0..5 {
        let mut c = Cluster::new(StrategyKind::Gossip, 3, seed);
        let interval = Config::default().gossip_interval;
        let mut added = 0;
        for round in 0..20 {
            for node in 0..3 {
                c.request(node, Payload::Add { delta: 1 });
                added += 1;
            }
            while c.step() {}
            let before = c.sent.len();
            // Every node's gossip timer fires once, at the same instant.
            c.settle(interval);
            let mut per_pair = std::collections::BTreeMap::new();
            for m in &c.sent[before..] {
                if is_gossip_from(m, &m.src) {
                    *per_pair.entry((m.src.clone(), m.dest.clone())).or_insert(0) += 1;
                }
            }
            for (pair, n) in per_pair {
                assert!(n <= 1, "seed {seed} round {round}: {pair:?} carried {n}");
            }
        }
        c.settle(interval * 10);
        for i in 0..3 {
            assert_eq!(c.read(i), added, "seed {seed}: node {i}");
        }
        let before = c.sent.len();
        c.settle(interval * 10);
        assert!(
            c.sent[before..].iter().all(|m| !is_gossip_from(m, &m.src)),
            "seed {seed}: an idle cluster still gossips"
        );
    }
}

/// `gossip_interval` zero is eager: an add is on its way to every peer
/// before any time passes, and the cluster still goes quiet.
#[test]
fn eager_gossip_sends_an_add_at_once_and_goes_quiet() {
    let mut c = Cluster::new(StrategyKind::Gossip, 3, 7);
    for i in 0..3 {
        let mut cfg = config(StrategyKind::Gossip, KvKind::SeqKv, 0);
        cfg.gossip_interval = Duration::ZERO;
        c.nodes[i] = Node::new(cfg);
        c.init(i);
    }
    c.request(0, Payload::Add { delta: 3 });
    // No time passes: only the messages in flight and timers due now.
    c.settle(Duration::ZERO);
    assert_eq!(c.now, crate::Time::ZERO);
    for peer in ["n1", "n2"] {
        assert!(
            c.sent
                .iter()
                .any(|m| is_gossip_from(m, "n0") && m.dest == peer),
            "n0's add did not leave for {peer} at once"
        );
    }
    assert_eq!((c.read(1), c.read(2)), (3, 3));
    c.settle(Duration::from_secs(5));
    let before = c.sent.len();
    c.settle(Duration::from_secs(5));
    assert!(c.sent[before..].iter().all(|m| !is_gossip_from(m, &m.src)));
}

/// The model checker leaves the sync keys out of a state's fingerprint
/// (`SYNC_KEY_PREFIX`): every write a read round makes current with goes
/// to one, and no request reads one.
#[test]
fn reads_are_made_current_by_writes_to_sync_keys_that_nothing_reads() {
    for kind in [StrategyKind::PerNode, StrategyKind::Cas] {
        let mut c = Cluster::new(kind, 3, 4);
        c.request(1, Payload::Add { delta: 2 });
        c.settle(Duration::from_secs(1));
        assert_eq!(c.read(0), 2, "{kind}");
        let mut synced = false;
        for m in c.sent.iter().filter(|m| m.dest == "seq-kv") {
            match &m.body.payload {
                Payload::Write { key, .. } => synced |= super::is_sync_key(key),
                Payload::Read { key: Some(key) } | Payload::Cas { key, .. } => {
                    assert!(!super::is_sync_key(key), "{kind}: {m:?}")
                }
                _ => {}
            }
        }
        assert!(synced, "{kind}: no sync write");
    }
}
