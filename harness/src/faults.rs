//! What the nemesis did to a run, as a person reads it: the windows in
//! which each fault was in force (shaded on the page's plots and
//! timeline), and, for each kill, the adds its node had acknowledged just
//! before (what a node that keeps them only in memory can lose). The
//! nemesis log and the history say all of it; nothing is guessed.

use crate::history::{History, OpKind, Outcome};
use crate::nemesis::{Fault, NemesisEvent, NemesisRecord};
use gcounter_core::Time;
use serde::Serialize;
use std::time::Duration;

/// How far back from a kill acknowledged adds are counted: a few gossip
/// rounds, the usual time an add spends only in its node's memory.
pub const BEFORE_KILL: Duration = Duration::from_secs(1);

/// One fault in force, in seconds of test time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultWindow {
    pub fault: Fault,
    /// What it did, e.g. `kill n1` or `partition one [n0] | [n1 n2]`.
    pub label: String,
    pub start: f64,
    pub end: f64,
}

/// The windows of every fault in `log`; a fault never ended is in force
/// until `end`.
pub fn windows(log: &[NemesisRecord], end: Time) -> Vec<FaultWindow> {
    let mut open: Vec<FaultWindow> = Vec::new();
    let mut done = Vec::new();
    for r in log {
        let fault = r.event.fault();
        let t = r.time.as_secs_f64();
        if let Some(i) = open.iter().position(|w| w.fault == fault) {
            let mut w = open.remove(i);
            w.end = t;
            done.push(w);
        }
        if r.event.starts() && !r.event.is_noop() {
            open.push(FaultWindow {
                fault,
                label: r.event.to_string(),
                start: t,
                end: t,
            });
        }
    }
    for mut w in open {
        w.end = end.as_secs_f64().max(w.start);
        done.push(w);
    }
    done.sort_by(|a, b| a.start.total_cmp(&b.start));
    done
}

/// How many faults of each kind a run had, and how many did nothing, in
/// one line: `3 partitions (1 cut nothing), 2 kills`. A schedule can be
/// faithful and harmless at once (with 3 nodes, Jepsen's `minority-third`
/// cuts nobody off), and a reader should not take "nemesis: partition" for
/// "was partitioned".
pub fn counts(log: &[NemesisRecord]) -> String {
    let mut shown = Vec::new();
    for fault in [Fault::Partition, Fault::Kill, Fault::Pause] {
        let started: Vec<&NemesisEvent> = log
            .iter()
            .map(|r| &r.event)
            .filter(|e| e.fault() == fault && e.starts())
            .collect();
        if started.is_empty() {
            continue;
        }
        let idle = started
            .iter()
            .filter(|e| match e {
                NemesisEvent::StartPartition { partition } => !partition.cuts_anything(),
                e => e.is_noop(),
            })
            .count();
        let noun = match fault {
            Fault::Partition => ("partition", "partitions", "cut nothing"),
            Fault::Kill => ("kill", "kills", "found no minority to take"),
            Fault::Pause => ("pause", "pauses", "found no minority to take"),
        };
        let mut line = format!(
            "{} {}",
            started.len(),
            if started.len() == 1 { noun.0 } else { noun.1 }
        );
        if idle > 0 {
            line += &format!(" ({idle} {})", noun.2);
        }
        shown.push(line);
    }
    if shown.is_empty() {
        "none".into()
    } else {
        shown.join(", ")
    }
}

/// A node the nemesis killed, and what it had just acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KillNote {
    pub node: String,
    pub killed_at_s: f64,
    /// When it was started again, if it was.
    pub started_at_s: Option<f64>,
    /// Adds acknowledged by the node in the [`BEFORE_KILL`] before it was
    /// killed, and the sum of their deltas.
    pub adds_just_before: usize,
    pub sum_just_before: i64,
}

impl KillNote {
    /// One line for a person.
    pub fn describe(&self) -> String {
        let started = self
            .started_at_s
            .map_or("never started again".to_string(), |s| {
                format!("started again at {s:.3} s")
            });
        format!(
            "{} killed at {:.3} s ({started}); it had acknowledged {} add(s) summing to {} \
             in the {} s before",
            self.node,
            self.killed_at_s,
            self.adds_just_before,
            self.sum_just_before,
            BEFORE_KILL.as_secs_f64()
        )
    }
}

/// Every kill in `log`, with the adds its node acknowledged just before.
pub fn kills(history: &History, log: &[NemesisRecord]) -> Vec<KillNote> {
    let mut notes: Vec<KillNote> = Vec::new();
    for r in log {
        match &r.event {
            NemesisEvent::Kill { nodes } => {
                for node in nodes {
                    let from = r.time.saturating_sub(BEFORE_KILL);
                    let acked: Vec<i64> = history
                        .iter()
                        .filter(|op| {
                            op.node == *node
                                && op.kind == OpKind::Add
                                && op.outcome == Some(Outcome::Ok)
                                && op.complete.is_some_and(|c| from <= c && c <= r.time)
                        })
                        .filter_map(|op| op.delta)
                        .collect();
                    notes.push(KillNote {
                        node: node.clone(),
                        killed_at_s: r.time.as_secs_f64(),
                        started_at_s: None,
                        adds_just_before: acked.len(),
                        sum_just_before: acked.iter().sum(),
                    });
                }
            }
            NemesisEvent::Start { nodes } => {
                for note in notes
                    .iter_mut()
                    .filter(|n| n.started_at_s.is_none() && nodes.contains(&n.node))
                {
                    note.started_at_s = Some(r.time.as_secs_f64());
                }
            }
            _ => {}
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{History, Invocation};

    fn at(secs: u64, event: NemesisEvent) -> NemesisRecord {
        NemesisRecord {
            time: Duration::from_secs(secs),
            event,
        }
    }

    #[test]
    fn windows_pair_each_fault_with_its_end() {
        let n1 = vec!["n1".to_string()];
        let log = [
            at(1, NemesisEvent::Kill { nodes: n1.clone() }),
            at(
                2,
                NemesisEvent::Pause {
                    nodes: vec!["n2".into()],
                },
            ),
            at(3, NemesisEvent::Start { nodes: n1 }),
        ];
        let w = windows(&log, Duration::from_secs(9));
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].fault, w[0].start, w[0].end), (Fault::Kill, 1.0, 3.0));
        assert_eq!(w[0].label, "kill n1");
        // The pause never ended: it runs to the end.
        assert_eq!((w[1].fault, w[1].start, w[1].end), (Fault::Pause, 2.0, 9.0));
    }

    #[test]
    fn counts_say_how_many_faults_did_nothing() {
        assert_eq!(counts(&[]), "none");
        let log = [
            at(1, NemesisEvent::Kill { nodes: vec![] }),
            at(2, NemesisEvent::Start { nodes: vec![] }),
            at(
                3,
                NemesisEvent::Kill {
                    nodes: vec!["n1".into()],
                },
            ),
            at(
                4,
                NemesisEvent::Pause {
                    nodes: vec!["n2".into()],
                },
            ),
        ];
        assert_eq!(
            counts(&log),
            "2 kills (1 found no minority to take), 1 pause"
        );
    }

    #[test]
    fn a_kill_counts_the_adds_its_node_acknowledged_just_before() {
        let mut h = History::default();
        let t = Duration::from_millis;
        for (node, delta, done) in [
            ("n1", 3, 9_500),
            ("n1", 2, 9_900),
            ("n1", 4, 7_000),
            ("n2", 1, 9_800),
        ] {
            let op = h.invoke(Invocation::add("c", node, delta, t(done - 1)));
            h.complete(op, Outcome::Ok, None, None, t(done));
        }
        let log = [
            at(
                10,
                NemesisEvent::Kill {
                    nodes: vec!["n1".into()],
                },
            ),
            at(
                15,
                NemesisEvent::Start {
                    nodes: vec!["n1".into()],
                },
            ),
        ];
        let k = kills(&h, &log);
        assert_eq!(k.len(), 1);
        assert_eq!((k[0].adds_just_before, k[0].sum_just_before), (2, 5));
        assert_eq!(k[0].started_at_s, Some(15.0));
        assert!(k[0]
            .describe()
            .starts_with("n1 killed at 10.000 s (started again at 15.000 s)"));
    }
}
