//! The bounds of a search: the configuration explored and how far the
//! adversary (network, scheduler, `seq-kv`) may go. Everything outside them
//! is not claimed.

use gcounter_core::{Config, KvKind, StrategyKind};
use gcounter_harness::workload::{WorkloadKind, CLIENT_TIMEOUT, RECOVERY};
use std::fmt;
use std::time::Duration;

/// Rounds of recovery (every armed timer fires once, everything in
/// flight is delivered) before a schedule that still sends is called a
/// livelock. Gossip settles in two: one that spreads, one that is silent.
pub const RECOVERY_ROUNDS: u32 = 4;

/// Firings per node past `--timers`, allowed only during the final reads
/// when nothing else can happen, so that a read waiting on a retry timer
/// is answered rather than reported missing: in a real run time passes.
pub const FORCED_FIRINGS: u32 = 3;

/// Which schedules may be skipped, because an equivalent one is explored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// [`StatesSleep`](Reduction::StatesSleep), and from a state where
    /// one node's steps are a persistent set (see
    /// [`persistent`](crate::persistent)), only those: counts end
    /// states, not schedules. The default.
    StatesPersistent,
    /// Each distinct state explored once (by fingerprint), with sleep
    /// sets kept per state so that steps that commute are not run in
    /// both orders, and merged `seq-kv` answers: counts end states, not
    /// schedules.
    StatesSleep,
    /// Each distinct state explored once (by fingerprint), and merged
    /// `seq-kv` answers.
    States,
    /// Source-DPOR with sleep sets, and merged `seq-kv` answers.
    Dpor,
    /// Sleep sets alone, and merged `seq-kv` answers: simpler, slower, a
    /// cross-check of DPOR.
    SleepSets,
    /// Every interleaving and every `seq-kv` state: a cross-check of both
    /// reductions, for tiny bounds only.
    None,
}

impl Reduction {
    pub const NAMES: [&'static str; 6] = [
        "states-persistent",
        "states-sleep",
        "states",
        "dpor",
        "sleep-sets",
        "none",
    ];

    /// Whether it is one of the state searches ([`states`](crate::states)),
    /// which report how many distinct states they met.
    pub fn searches_states(self) -> bool {
        matches!(
            self,
            Reduction::States | Reduction::StatesSleep | Reduction::StatesPersistent
        )
    }

    /// Whether the search keeps a sleep set with each state, and so
    /// counts end states rather than schedules.
    pub fn counts_end_states(self) -> bool {
        matches!(self, Reduction::StatesPersistent | Reduction::StatesSleep)
    }

    pub fn name(self) -> &'static str {
        match self {
            Reduction::StatesPersistent => "states-persistent",
            Reduction::StatesSleep => "states-sleep",
            Reduction::States => "states",
            Reduction::Dpor => "dpor",
            Reduction::SleepSets => "sleep-sets",
            Reduction::None => "none",
        }
    }

    /// In words; `seq_kv` says whether a `seq-kv` is in the search at all
    /// (the bounds mention only what the strategy uses).
    fn describe(self, seq_kv: bool) -> String {
        let (what, merged) = match self {
            Reduction::StatesPersistent => (
                "each distinct state explored once, with sleep sets and persistent sets (steps that \
                 commute run in one order; a node whose next steps nothing else can touch runs alone)",
                true,
            ),
            Reduction::StatesSleep => (
                "each distinct state explored once, with sleep sets (steps that commute run in one order)",
                true,
            ),
            Reduction::States => ("each distinct state explored once", true),
            Reduction::Dpor => ("source-DPOR with sleep sets", true),
            Reduction::SleepSets => ("sleep sets only", true),
            Reduction::None => ("none: every interleaving", false),
        };
        match (seq_kv, merged) {
            (false, _) => what.to_string(),
            (true, true) => format!("{what}; seq-kv answers that differ only in staleness merged"),
            (true, false) => format!("{what}, every seq-kv state"),
        }
    }
}

impl std::str::FromStr for Reduction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Reduction::StatesPersistent,
            Reduction::StatesSleep,
            Reduction::States,
            Reduction::Dpor,
            Reduction::SleepSets,
            Reduction::None,
        ]
        .into_iter()
        .find(|r| r.name() == s)
        .ok_or_else(|| {
            format!(
                "unknown reduction `{s}` (valid: {})",
                Reduction::NAMES.join(", ")
            )
        })
    }
}

/// Why `per-node` on `seq-kv` is the slowest default: every write it makes
/// lands on the newest `seq-kv` state, so the two nodes' writes never
/// commute, each call may time out anywhere, and a read that times out is
/// sent again beside the first (a hedged call). DPOR would run millions of
/// schedules; the state search meets 92,961 distinct states (184,380
/// without persistent sets).
pub const LARGEST: &str = "per-node on seq-kv is the largest default search: 0.1 million \
     states, under a second on a quiet 2-core machine";

/// What is explored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    pub strategy: StrategyKind,
    pub kv: KvKind,
    pub node_count: usize,
    /// Adds per client, issued one at a time.
    pub adds: usize,
    /// Node-to-node messages that may be lost, in all, during the adds.
    pub losses: u32,
    /// Timer firings per node outside recovery (a gossip round, a retry,
    /// a KV call's deadline passing).
    pub timers: u32,
    /// How much of the schedule tree to skip (see the module docs).
    pub reduction: Reduction,
    /// Steps in one schedule before it is called a livelock.
    pub max_steps: usize,
    /// Under `pn-counter` every other delta is negative.
    pub workload: WorkloadKind,
}

impl Bounds {
    /// The defaults of `gcounter explore` for `strategy` on `kv`.
    pub fn new(strategy: StrategyKind, kv: KvKind) -> Self {
        Bounds {
            strategy,
            kv,
            node_count: 2,
            adds: 2,
            losses: 1,
            timers: 1,
            reduction: Reduction::StatesPersistent,
            max_steps: 2_000,
            workload: WorkloadKind::GCounter,
        }
    }

    /// The configuration every node starts with.
    pub fn node_config(&self) -> Config {
        Config {
            strategy: self.strategy,
            kv: self.kv,
            ..Config::default()
        }
    }

    /// The delta of add `j` (0-based) of client `i`: a distinct power of
    /// two, so a counter value names exactly the adds it includes.
    /// Distinct powers of two, so that a value names the adds it holds;
    /// under `pn-counter` every other one negative (each client's second
    /// add, with two adds each), so that a lost decrement and a lost
    /// increment cannot cancel out: a sum of distinct powers of two, each
    /// taken with its sign, still names its terms.
    pub fn delta(&self, client: usize, j: usize) -> i64 {
        let i = client * self.adds + j;
        let magnitude = 1i64 << i;
        match self.workload {
            WorkloadKind::PnCounter if i % 2 == 1 => -magnitude,
            _ => magnitude,
        }
    }

    /// The deltas of client `i`'s adds.
    pub fn deltas(&self, client: usize) -> Vec<i64> {
        (0..self.adds).map(|j| self.delta(client, j)).collect()
    }

    /// Whether the strategy talks to the KV service at all (a one-node
    /// cluster keeps its counter in memory whatever the strategy).
    pub fn uses_kv(&self) -> bool {
        self.strategy.uses_kv() && self.node_count > 1
    }

    /// Whether nodes send messages to one another: only `gossip`'s do
    /// (the KV strategies talk to the service alone). The persistent sets
    /// rest on this, and the search checks it as it goes.
    pub fn nodes_talk(&self) -> bool {
        self.node_count > 1 && !self.strategy.uses_kv()
    }

    /// One line: the bounds a verdict holds within.
    pub fn short(&self) -> String {
        format!(
            "{}{} x {}, {}, {} per node{}",
            match self.workload {
                WorkloadKind::GCounter => "",
                WorkloadKind::PnCounter => "pn-counter, ",
            },
            count(self.node_count as u64, "node", "nodes"),
            count(self.adds as u64, "add", "adds"),
            count(u64::from(self.losses), "loss", "losses"),
            count(u64::from(self.timers), "timer firing", "timer firings"),
            match self.reduction {
                Reduction::StatesPersistent => "",
                Reduction::StatesSleep => ", no persistent sets",
                Reduction::States => ", every state",
                Reduction::Dpor => ", DPOR",
                Reduction::SleepSets => ", sleep sets only",
                Reduction::None => ", no reduction",
            },
        )
    }
}

/// `1 add`, `2 adds`, `16,859,278,561,250 schedules`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// `16859278561250` as `16,859,278,561,250`: schedule counts run to
/// fourteen digits.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.uses_kv() {
            writeln!(f, "strategy {}, kv {}", self.strategy, self.kv.name())?;
        } else {
            writeln!(f, "strategy {} (no KV service)", self.strategy)?;
        }
        writeln!(f, "bounds:")?;
        writeln!(
            f,
            "  {}, one client each; {} per client, one at a time",
            count(self.node_count as u64, "node", "nodes"),
            count(self.adds as u64, "add", "adds")
        )?;
        let deltas: Vec<String> = (0..self.node_count)
            .map(|i| {
                let d: Vec<String> = self.deltas(i).iter().map(i64::to_string).collect();
                format!(
                    "c{}: {}",
                    i + 1,
                    if d.is_empty() {
                        "-".into()
                    } else {
                        d.join(", ")
                    }
                )
            })
            .collect();
        writeln!(
            f,
            "  deltas {} (powers of two{}: a value names the adds it holds)",
            deltas.join("; "),
            match self.workload {
                WorkloadKind::GCounter => "",
                WorkloadKind::PnCounter => ", each with its sign; pn-counter",
            }
        )?;
        let served = match (self.uses_kv(), self.kv) {
            (false, _) => "",
            (true, KvKind::SeqKv) => "; every state seq-kv may serve",
            (true, KvKind::LinKv) => "; lin-kv serves its one state",
        };
        writeln!(
            f,
            "  any delivery order{served}; up to {} lost",
            count(
                u64::from(self.losses),
                "node-to-node message",
                "node-to-node messages"
            )
        )?;
        let timers = if self.uses_kv() {
            "a KV retry or call deadline"
        } else {
            "a gossip round"
        };
        writeln!(
            f,
            "  up to {} per node ({timers}), at any point while armed",
            count(u64::from(self.timers), "timer firing", "timer firings")
        )?;
        writeln!(
            f,
            "  then recovery: time +{}, clients time out after {}, every armed timer fires until quiet \
             (at most {RECOVERY_ROUNDS} rounds), nothing lost; then one final read per client",
            secs(RECOVERY),
            secs(CLIENT_TIMEOUT)
        )?;
        let seq_kv = self.uses_kv() && self.kv == KvKind::SeqKv;
        write!(f, "  reduction: {}", self.reduction.describe(seq_kv))
    }
}
