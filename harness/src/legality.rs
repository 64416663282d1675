//! Did a run stay inside Maelstrom's rules? Checked from the run's trace
//! and nemesis log alone, whatever policy made its choices
//! ([`crate::choice`]), so an adversary is held to the rules by evidence,
//! not by its own word:
//!
//! - every `seq-kv` answer came from the client's window at that moment:
//!   no older than the newest state the client had observed, nor than the
//!   oldest of the [`SEQ_KV_WINDOW`] kept, and a change made the next
//!   state (SPEC.md section 4); every `lin-kv` answer from the newest;
//! - client traffic took no time (unless its node was paused);
//! - no message was lost outside a partition: a dropped one arrived while
//!   a partition cut its link, a lost one while its node was killed, and
//!   none sent long before the end was still on its way.

use crate::nemesis::{NemesisEvent, NemesisRecord, Partition};
use crate::testcore::{Fate, Trace};
use crate::workload::is_client;
use gcounter_core::service::SEQ_KV_WINDOW;
use gcounter_core::Time;
use std::collections::BTreeMap;
use std::time::Duration;

/// The rules broken, one line each (empty: none).
pub fn audit(trace: &Trace, nemesis: &[NemesisRecord], in_flight_limit: Duration) -> Vec<String> {
    let mut broken = Vec::new();
    if trace.cut > 0 {
        broken.push(format!(
            "the trace was cut ({} messages not recorded): cannot tell",
            trace.cut
        ));
    }
    let faults = Faults::of(nemesis);
    let end = trace
        .entries
        .iter()
        .map(|e| e.delivered.or(e.arrived).unwrap_or(e.sent))
        .max()
        .unwrap_or_default();
    // Per (store, client), the newest state the client has observed.
    let mut positions: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for e in &trace.entries {
        let what = |rule: &str| format!("message {} {} -> {}: {rule}", e.id, e.src, e.dest);
        if let Some(kv) = e.kv {
            let position = positions.entry((&e.src, &e.dest)).or_insert(0);
            let ok = match (e.src.as_str(), kv.changed) {
                (_, true) => kv.state == kv.newest + 1,
                ("seq-kv", false) => {
                    let oldest = kv.newest.saturating_sub(SEQ_KV_WINDOW as u64 - 1);
                    (oldest.max(*position)..=kv.newest).contains(&kv.state)
                }
                (_, false) => kv.state == kv.newest,
            };
            if !ok {
                broken.push(what(&format!(
                    "served from state {} outside the client's window (observed {}, newest {})",
                    kv.state, position, kv.newest
                )));
            }
            *position = kv.state;
        }
        match e.fate {
            Fate::Delivered => {
                let delivered = e.delivered.unwrap_or(e.sent);
                let client = is_client(&e.src) || is_client(&e.dest);
                if client && delivered != e.sent && !faults.paused(&e.dest, e.sent) {
                    broken.push(what(&format!(
                        "client traffic delayed {:?}",
                        delivered.saturating_sub(e.sent)
                    )));
                }
            }
            Fate::Dropped => {
                let at = e.arrived.unwrap_or(e.sent);
                if !faults.cut(&e.src, &e.dest, at) {
                    broken.push(what(&format!(
                        "dropped at {at:?} with no partition cutting it"
                    )));
                }
            }
            Fate::Lost => {
                let at = e.arrived.unwrap_or(e.sent);
                if !faults.down(&e.dest, at) {
                    broken.push(what(&format!("lost at {at:?} while its node was up")));
                }
            }
            Fate::InFlight => {
                if e.sent + in_flight_limit < end {
                    broken.push(what(&format!(
                        "sent at {:?} and never delivered by the end ({end:?})",
                        e.sent
                    )));
                }
            }
            Fate::Undeliverable => {}
        }
    }
    broken
}

/// The nemesis' windows: when each partition and each kill and pause held
/// (ends inclusive: events at one instant are taken messages first).
struct Faults {
    partitions: Vec<(Time, Option<Time>, Partition)>,
    /// (node, kill or pause, from, until)
    nodes: Vec<(String, bool, Time, Option<Time>)>,
}

impl Faults {
    fn of(log: &[NemesisRecord]) -> Self {
        let mut partitions: Vec<(Time, Option<Time>, Partition)> = Vec::new();
        let mut nodes: Vec<(String, bool, Time, Option<Time>)> = Vec::new();
        let close = |nodes: &mut Vec<(String, bool, Time, Option<Time>)>,
                     ids: &[String],
                     killed: bool,
                     t: Time| {
            for w in nodes.iter_mut() {
                if w.1 == killed && w.3.is_none() && ids.contains(&w.0) {
                    w.3 = Some(t);
                }
            }
        };
        for r in log {
            match &r.event {
                NemesisEvent::StartPartition { partition } => {
                    partitions.push((r.time, None, partition.clone()))
                }
                NemesisEvent::StopPartition => {
                    for p in partitions.iter_mut().filter(|p| p.1.is_none()) {
                        p.1 = Some(r.time);
                    }
                }
                NemesisEvent::Kill { nodes: ids } | NemesisEvent::Pause { nodes: ids } => {
                    let killed = matches!(r.event, NemesisEvent::Kill { .. });
                    nodes.extend(ids.iter().map(|id| (id.clone(), killed, r.time, None)));
                }
                NemesisEvent::Start { nodes: ids } => close(&mut nodes, ids, true, r.time),
                NemesisEvent::Resume { nodes: ids } => close(&mut nodes, ids, false, r.time),
            }
        }
        Faults { partitions, nodes }
    }

    fn during(from: Time, until: Option<Time>, at: Time) -> bool {
        from <= at && until.is_none_or(|u| at <= u)
    }

    fn cut(&self, src: &str, dest: &str, at: Time) -> bool {
        self.partitions
            .iter()
            .any(|(from, until, p)| Self::during(*from, *until, at) && p.drops(src, dest))
    }

    fn node(&self, id: &str, killed: bool, at: Time) -> bool {
        self.nodes
            .iter()
            .any(|(n, k, from, until)| n == id && *k == killed && Self::during(*from, *until, at))
    }

    fn down(&self, id: &str, at: Time) -> bool {
        self.node(id, true, at)
    }

    fn paused(&self, id: &str, at: Time) -> bool {
        self.node(id, false, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Verdict;
    use crate::choice::{Adversaries, Adversary, Delay, Link, Policy};
    use crate::nemesis::{Fault, NemesisConfig};
    use crate::sim::{self, SimConfig, SimRun};
    use crate::workload::Phase;
    use gcounter_core::StrategyKind;
    use std::ops::RangeInclusive;

    /// The evaluation (3 nodes, 100 ops/s, partitions) shortened to 8 s,
    /// every message kept.
    fn traced(strategy: StrategyKind, faults: &[Fault], adversary: Adversaries) -> SimConfig {
        let mut cfg = SimConfig::evaluation(strategy);
        cfg.workload.time_limit = Duration::from_secs(8);
        cfg.nemesis = Some(NemesisConfig {
            interval: Duration::from_secs(2),
            faults: faults.to_vec(),
            ..NemesisConfig::default()
        });
        cfg.trace = usize::MAX;
        cfg.adversary = adversary;
        cfg
    }

    fn audited(run: &SimRun) -> Vec<String> {
        audit(&run.trace, &run.nemesis, Duration::from_secs(5))
    }

    #[test]
    fn every_adversary_stays_inside_the_rules() {
        let sets = Adversary::ALL.into_iter().map(Adversaries::one).chain([
            Adversaries::none(),
            Adversaries::parse("stale,slow-kv,reorder,adds-first").unwrap(),
        ]);
        for set in sets {
            for strategy in [
                StrategyKind::PerNode,
                StrategyKind::Cas,
                StrategyKind::Gossip,
                StrategyKind::Naive,
            ] {
                for (seed, faults) in [
                    (1, vec![Fault::Partition]),
                    (2, vec![Fault::Partition, Fault::Kill, Fault::Pause]),
                ] {
                    let cfg = traced(strategy, &faults, set.clone());
                    eprintln!("{strategy} --adversary {set}, seed {seed}, {faults:?}");
                    let run = sim::run(&cfg, seed).expect("the run completes");
                    assert_eq!(audited(&run), Vec::<String>::new());
                    assert!(
                        run.trace.entries.iter().any(|e| e.kv.is_some())
                            || strategy == StrategyKind::Gossip
                    );
                }
            }
        }
    }

    /// `kill-after-ack`: a kill strikes the instant an add_ok from one of
    /// its nodes reaches a client (unless the hold runs out first).
    #[test]
    fn kill_after_ack_strikes_just_after_an_acknowledgement() {
        let set = Adversaries::one(Adversary::KillAfterAck);
        for seed in 1..4 {
            let run = sim::run(
                &traced(StrategyKind::Gossip, &[Fault::Kill], set.clone()),
                seed,
            )
            .expect("the run completes");
            let kills: Vec<_> = run
                .nemesis
                .iter()
                .filter_map(|r| match &r.event {
                    crate::nemesis::NemesisEvent::Kill { nodes } => Some((r.time, nodes)),
                    _ => None,
                })
                .collect();
            assert!(!kills.is_empty(), "seed {seed}: no kill");
            let after_ack = kills
                .iter()
                .filter(|(t, nodes)| {
                    run.trace.entries.iter().any(|e| {
                        e.kind() == "add_ok" && nodes.contains(&e.src) && e.delivered == Some(*t)
                    })
                })
                .count();
            assert_eq!(after_ack, kills.len(), "seed {seed}: {kills:?}");
        }
    }

    /// `adds-first`: every node but the one that reached for the store
    /// first has its first request to it arrive only after an add was
    /// acknowledged, so that request meets a store another node changed.
    #[test]
    fn adds_first_holds_the_other_nodes_first_requests_until_an_add_is_acknowledged() {
        let set = Adversaries::parse("stale,adds-first").unwrap();
        for seed in 1..6 {
            let run = sim::run(&traced(StrategyKind::Cas, &[], set.clone()), seed)
                .expect("the run completes");
            let acked = run
                .trace
                .entries
                .iter()
                .filter(|e| e.kind() == "add_ok" && e.dest.starts_with('c'))
                .filter_map(|e| e.delivered)
                .min()
                .expect("an add acknowledged");
            let mut firsts: BTreeMap<&str, &crate::testcore::TraceEntry> = BTreeMap::new();
            for e in &run.trace.entries {
                if e.src.starts_with('n') && e.dest == "seq-kv" {
                    firsts.entry(&e.src).or_insert(e);
                }
            }
            let opener = firsts.values().map(|e| e.sent).min().expect("requests");
            let late: Vec<_> = firsts
                .values()
                .filter(|e| e.sent != opener)
                .map(|e| (&e.src, e.delivered))
                .collect();
            assert_eq!(late.len(), 2, "seed {seed}: {firsts:?}");
            assert!(
                late.iter().all(|(_, at)| at.is_some_and(|at| at >= acked)),
                "seed {seed}: first add_ok at {acked:?}, first requests {late:?}"
            );
        }
    }

    /// Serves from before the client's position: what no seq-kv may do.
    #[derive(Debug)]
    struct Backwards;
    impl Policy for Backwards {
        fn kv_state(&mut self, _: &str, window: RangeInclusive<u64>) -> Option<u64> {
            Some(window.start().saturating_sub(3))
        }
    }

    /// Holds node<->node messages for an hour: lost, in all but name.
    #[derive(Debug)]
    struct Forever;
    impl Policy for Forever {
        fn delay(&mut self, link: Link, _: Phase, sampled: Duration) -> Delay {
            match link {
                Link::Peer => Delay::After(Duration::from_secs(3600)),
                _ => Delay::After(sampled),
            }
        }
    }

    #[test]
    fn an_illegal_policy_is_caught() {
        let cfg = traced(
            StrategyKind::Naive,
            &[Fault::Partition],
            Adversaries::none(),
        );
        let run = sim::run_with_policy(&cfg, 1, Box::new(Backwards)).expect("completes");
        let broken = audited(&run);
        assert!(
            broken
                .iter()
                .any(|b| b.contains("outside the client's window")),
            "{broken:?}"
        );

        let cfg = traced(
            StrategyKind::Gossip,
            &[Fault::Partition],
            Adversaries::none(),
        );
        let run = sim::run_with_policy(&cfg, 1, Box::new(Forever)).expect("completes");
        let broken = audited(&run);
        assert!(
            broken.iter().any(|b| b.contains("never delivered")),
            "{broken:?}"
        );
    }

    #[test]
    fn a_message_dropped_or_lost_outside_a_fault_is_caught() {
        let cfg = traced(
            StrategyKind::Gossip,
            &[Fault::Partition],
            Adversaries::none(),
        );
        let run = sim::run(&cfg, 1).expect("completes");
        assert_eq!(run.check.verdict, Verdict::Valid);
        let mut trace = run.trace.clone();
        // A gossip delivered after the final heal, made "dropped", then
        // "lost".
        let last = trace
            .entries
            .iter()
            .rposition(|e| {
                e.fate == Fate::Delivered && e.src.starts_with('n') && e.dest.starts_with('n')
            })
            .expect("gossip");
        let at = trace.entries[last].delivered;
        trace.entries[last].fate = Fate::Dropped;
        trace.entries[last].arrived = at;
        let broken = audit(&trace, &run.nemesis, Duration::from_secs(5));
        assert!(
            broken.iter().any(|b| b.contains("no partition")),
            "{broken:?}"
        );
        trace.entries[last].fate = Fate::Lost;
        let broken = audit(&trace, &run.nemesis, Duration::from_secs(5));
        assert!(
            broken.iter().any(|b| b.contains("while its node was up")),
            "{broken:?}"
        );
    }
}
