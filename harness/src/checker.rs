//! The g-counter and pn-counter checker (SPEC.md section 2), after
//! Maelstrom's `pn-counter` checker.
//!
//! Let S be the sum of the deltas of acknowledged adds and I the deltas of
//! indeterminate adds (`info`, or never completed), negative ones included.
//! Every final read must equal S plus the sum of some subset of I. The
//! acceptable values are kept as Maelstrom keeps them, a set of integer
//! ranges ([`acceptable`]): start with {S}, and for each indeterminate
//! delta take the union of the set with itself shifted by the delta.
//!
//! Verdicts: `invalid` if any final read is outside the acceptable set;
//! otherwise `unknown` if some client has no successful final read (there
//! is then nothing to judge it by); otherwise `valid`.

use crate::history::History;
use crate::ledger::Ledger;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The checker's judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }

    /// Maelstrom's exit status: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
        }
    }
}

pub use crate::ledger::FinalRead;

/// Beyond this many ranges the acceptable set is not enumerated (the
/// verdict is then `unknown` unless a read is outside its outer bounds).
/// Deltas of -5..=4 keep it to a handful; it takes many distinct deltas
/// far apart to get here.
const MAX_RANGES: usize = 1 << 20;

/// What the checker found. Sums are `i128`: acknowledged adds that a node
/// should never have taken (past what an `i64` holds) are summed exactly,
/// so no read can match a wrapped total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub verdict: Verdict,
    /// S: the sum of acknowledged deltas.
    pub definite_sum: i128,
    /// The part of S that acknowledged decrements took off (their sum,
    /// as a positive number): 0, and left out, under g-counter.
    #[serde(skip_serializing_if = "is_zero")]
    pub definite_decrements: i128,
    /// How many adds are indeterminate, and the sum of their deltas.
    pub indeterminate_adds: usize,
    pub indeterminate_sum: i128,
    /// The acceptable final values, as closed `[low, high]` ranges.
    pub acceptable: Vec<[i128; 2]>,
    /// Every successful final read, in history order.
    pub final_reads: Vec<FinalRead>,
    /// The final reads outside the acceptable set.
    pub errors: Vec<FinalRead>,
    /// Clients with no successful final read.
    pub missing_final_reads: Vec<String>,
    /// S minus the lowest final read, when that is positive: acknowledged
    /// increments (or, under pn-counter, fewer decrements than that) that
    /// no final read reflects.
    pub lost: u64,
    /// Why the verdict is `unknown`, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn is_zero(n: &i128) -> bool {
    *n == 0
}

impl CheckResult {
    /// Whether `value` is an acceptable final value.
    pub fn accepts(&self, value: i64) -> bool {
        let v = i128::from(value);
        self.acceptable.iter().any(|&[lo, hi]| lo <= v && v <= hi)
    }

    /// The highest acceptable value (S if nothing is acceptable).
    pub fn highest(&self) -> i128 {
        self.acceptable.last().map_or(self.definite_sum, |r| r[1])
    }
}

/// Every value `definite` plus the sum of a subset of `deltas` can take,
/// as sorted, disjoint, non-adjacent closed ranges; `None` past
/// `max_ranges` ranges.
///
/// Maelstrom's algorithm (a `TreeRangeSet`): for each delta d, the set
/// becomes its union with itself shifted by d. Equal deltas are taken
/// together: `k` copies of `d` reach the same sums as the items `d`, `2d`,
/// `4d`, ... and what remains of `k`, so the set takes one shift per such
/// item, about `log2(k)` per distinct delta. Once a few small deltas have
/// run together the set is one range and a shift costs O(1).
pub fn acceptable(
    definite: i128,
    deltas: impl IntoIterator<Item = i64>,
    max_ranges: usize,
) -> Option<Vec<[i128; 2]>> {
    let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
    for d in deltas.into_iter().filter(|&d| d != 0) {
        *counts.entry(d).or_default() += 1;
    }
    let mut set = vec![[definite, definite]];
    let mut next = Vec::new();
    for (d, mut k) in counts {
        let mut take = 1u64;
        while k > 0 {
            let n = take.min(k);
            union_shifted(&set, i128::from(d) * i128::from(n), &mut next);
            std::mem::swap(&mut set, &mut next);
            if set.len() > max_ranges {
                return None;
            }
            k -= n;
            take *= 2;
        }
    }
    Some(set)
}

/// `out` = `set` ∪ (`set` + `shift`), coalesced. Both inputs are sorted,
/// so this is one merge.
fn union_shifted(set: &[[i128; 2]], shift: i128, out: &mut Vec<[i128; 2]>) {
    out.clear();
    let shifted = set.iter().map(|&[lo, hi]| [lo + shift, hi + shift]);
    let (mut a, mut b) = (set.iter().copied().peekable(), shifted.peekable());
    loop {
        let r = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x[0] <= y[0] => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        let Some([lo, hi]) = r else { break };
        match out.last_mut() {
            Some(last) if lo <= last[1] + 1 => last[1] = last[1].max(hi),
            _ => out.push([lo, hi]),
        }
    }
}

/// Checks a history.
pub fn check(history: &History) -> CheckResult {
    check_ledger(&Ledger::of(history.iter()))
}

/// Checks what a history comes to: the acknowledged sum, the
/// indeterminate deltas and the final reads (a runner folds them as
/// operations complete, so a run of any length is checked in a bounded
/// amount of memory).
pub fn check_ledger(ledger: &Ledger) -> CheckResult {
    let clients: BTreeSet<&str> = ledger.clients.iter().map(String::as_str).collect();
    judge(
        ledger.definite_sum,
        ledger.definite_decrements,
        &ledger.indeterminate,
        ledger.final_reads.clone(),
        &clients,
    )
}

/// The checker's core, over what it needs of a history: S (and how much
/// of it is acknowledged decrements), the deltas of the indeterminate
/// adds (delta -> how many adds carried it), the final reads that
/// succeeded, and every client (those without a final read make the
/// verdict `unknown`).
pub fn judge(
    definite_sum: i128,
    definite_decrements: i128,
    indeterminate: &BTreeMap<i64, u64>,
    final_reads: Vec<FinalRead>,
    clients: &BTreeSet<&str>,
) -> CheckResult {
    let sum_where = |keep: fn(i64) -> bool| -> i128 {
        indeterminate
            .iter()
            .filter(|(&d, _)| keep(d))
            .map(|(&d, &k)| i128::from(d) * i128::from(k))
            .sum()
    };
    let indeterminate_sum = sum_where(|_| true);
    let read_by: BTreeSet<&str> = final_reads.iter().map(|r| r.client.as_str()).collect();
    let missing_final_reads: Vec<String> = clients
        .difference(&read_by)
        .map(|c| c.to_string())
        .collect();
    let lowest = final_reads.iter().map(|r| r.value).min();
    // No more than every acknowledged increment can be lost: a read
    // below zero under g-counter lost what S holds, not more.
    let increments = definite_sum + definite_decrements;
    let lost = lowest.map_or(0, |low| {
        let short = (definite_sum - i128::from(low)).clamp(0, increments.max(0));
        u64::try_from(short).unwrap_or(u64::MAX)
    });
    // The outer bounds: every decrement and no increment, and the reverse.
    let outer = [
        definite_sum + sum_where(|d| d < 0),
        definite_sum + sum_where(|d| d > 0),
    ];
    let deltas = indeterminate
        .iter()
        .flat_map(|(&d, &k)| std::iter::repeat_n(d, usize::try_from(k).unwrap_or(usize::MAX)));
    let sets = acceptable(definite_sum, deltas, MAX_RANGES);
    let mut result = CheckResult {
        verdict: Verdict::Valid,
        definite_sum,
        definite_decrements,
        indeterminate_adds: usize::try_from(indeterminate.values().sum::<u64>())
            .unwrap_or(usize::MAX),
        indeterminate_sum,
        acceptable: sets.clone().unwrap_or_else(|| vec![outer]),
        final_reads,
        errors: Vec::new(),
        missing_final_reads,
        lost,
        note: None,
    };
    let errors: Vec<FinalRead> = result
        .final_reads
        .iter()
        .filter(|r| !result.accepts(r.value))
        .cloned()
        .collect();
    result.errors = errors;
    if sets.is_none() {
        // Only the outer bounds are known: a read outside them is
        // certainly wrong, which `accepts` already judged; one inside
        // cannot be judged.
        if result.errors.is_empty() {
            result.verdict = Verdict::Unknown;
            result.note = Some(format!(
                "{} indeterminate adds: too many to enumerate their subset sums",
                result.indeterminate_adds
            ));
        }
    }
    if !result.errors.is_empty() {
        result.verdict = Verdict::Invalid;
    } else if clients.is_empty() {
        result.verdict = Verdict::Unknown;
        result.note = Some("the history is empty".into());
    } else if !result.missing_final_reads.is_empty() {
        result.verdict = Verdict::Unknown;
        result.note = Some(format!(
            "no successful final read from {}",
            result.missing_final_reads.join(", ")
        ));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Invocation, OpKind, Outcome};
    use std::time::Duration;

    fn naive_sums(deltas: &[i64]) -> BTreeSet<i128> {
        let mut sums = BTreeSet::from([0]);
        for &d in deltas {
            let next: Vec<i128> = sums.iter().map(|s| s + i128::from(d)).collect();
            sums.extend(next);
        }
        sums
    }

    #[test]
    fn acceptable_ranges_match_enumeration() {
        let mut rng = fastrand::Rng::with_seed(5);
        for round in 0..600 {
            // Some rounds repeat a few deltas many times: equal deltas are
            // taken together, in powers of two.
            let n = if round % 4 == 0 {
                rng.usize(0..300)
            } else {
                rng.usize(0..40)
            };
            let (big, signed) = (rng.bool(), round % 3 != 0);
            let deltas: Vec<i64> = (0..n)
                .map(|_| match (big, signed) {
                    (true, true) => rng.i64(-200..200),
                    (true, false) => rng.i64(0..200),
                    (false, true) => rng.i64(-5..=4),
                    (false, false) => rng.i64(0..=4),
                })
                .collect();
            let s = rng.i64(-50..50);
            let ranges = acceptable(s.into(), deltas.iter().copied(), MAX_RANGES).unwrap();
            let expected: BTreeSet<i128> = naive_sums(&deltas)
                .iter()
                .map(|v| v + i128::from(s))
                .collect();
            let from_ranges: BTreeSet<i128> = ranges.iter().flat_map(|&[lo, hi]| lo..=hi).collect();
            assert_eq!(from_ranges, expected, "{s} {deltas:?}");
            // Maximal ranges: neither overlapping nor adjacent.
            assert!(
                ranges.windows(2).all(|w| w[0][1] + 1 < w[1][0]),
                "{ranges:?}"
            );
        }
        assert_eq!(
            acceptable(0, [4, 4], MAX_RANGES).unwrap(),
            vec![[0, 0], [4, 4], [8, 8]]
        );
        assert_eq!(
            acceptable(10, [-3, 2], MAX_RANGES).unwrap(),
            vec![[7, 7], [9, 10], [12, 12]]
        );
        let far: Vec<i64> = (0..12).map(|i| 1 << (i * 3)).collect();
        assert!(acceptable(0, far, 64).is_none());
    }

    #[test]
    fn signed_indeterminate_adds_bound_the_final_reads_both_ways() {
        let mut h = H::new();
        h.add("c1", 3, Some(Outcome::Ok))
            .add("c2", -5, Some(Outcome::Ok))
            .add("c1", -4, Some(Outcome::Info))
            .add("c2", 2, None)
            .fin("c1", -2)
            .fin("c2", -6);
        let r = check(&h.0);
        assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
        assert_eq!(r.definite_sum, -2);
        assert_eq!((r.indeterminate_adds, r.indeterminate_sum), (2, -2));
        assert_eq!(r.acceptable, vec![[-6, -6], [-4, -4], [-2, -2], [0, 0]]);
        assert_eq!(r.definite_decrements, 5);
        // An erased decrement reads high, an erased increment low.
        h.fin("c1", 1).fin("c2", -7).fin("c1", -3);
        let r = check(&h.0);
        assert_eq!(r.verdict, Verdict::Invalid);
        let wrong: Vec<i64> = r.errors.iter().map(|e| e.value).collect();
        assert_eq!(wrong, vec![1, -7, -3]);
        // -7 is 5 below S, more than the 3 acknowledged increments.
        assert_eq!(r.lost, 3);
    }

    #[test]
    fn half_a_million_indeterminate_signed_adds_are_checked_exactly() {
        let mut rng = fastrand::Rng::with_seed(22);
        let deltas: Vec<i64> = (0..500_000).map(|_| rng.i64(-5..=4)).collect();
        let ranges = acceptable(0, deltas.iter().copied(), MAX_RANGES).unwrap();
        let down: i128 = deltas
            .iter()
            .filter(|&&d| d < 0)
            .map(|&d| i128::from(d))
            .sum();
        let up: i128 = deltas
            .iter()
            .filter(|&&d| d > 0)
            .map(|&d| i128::from(d))
            .sum();
        assert_eq!(ranges, vec![[down, up]]);
    }

    struct H(History);
    impl H {
        fn new() -> Self {
            H(History::default())
        }
        fn op(
            &mut self,
            client: &str,
            kind: OpKind,
            delta: Option<i64>,
            fin: bool,
            out: Option<Outcome>,
            value: Option<i64>,
        ) -> &mut Self {
            let t = Duration::from_millis(self.0.len() as u64);
            let i = self.0.invoke(Invocation {
                client,
                node: "n0",
                kind,
                delta,
                final_read: fin,
                at: t,
            });
            if let Some(out) = out {
                self.0.complete(i, out, value, None, t);
            }
            self
        }
        fn add(&mut self, client: &str, d: i64, out: Option<Outcome>) -> &mut Self {
            self.op(client, OpKind::Add, Some(d), false, out, None)
        }
        fn fin(&mut self, client: &str, v: i64) -> &mut Self {
            self.op(client, OpKind::Read, None, true, Some(Outcome::Ok), Some(v))
        }
    }

    #[test]
    fn acknowledged_and_indeterminate_adds_bound_the_final_reads() {
        let mut h = H::new();
        h.add("c1", 3, Some(Outcome::Ok))
            .add("c2", 4, Some(Outcome::Info))
            .add("c1", 2, Some(Outcome::Fail))
            .add("c2", 1, None)
            .op(
                "c1",
                OpKind::Read,
                None,
                false,
                Some(Outcome::Ok),
                Some(100),
            )
            .fin("c1", 3)
            .fin("c2", 8);
        let r = check(&h.0);
        assert_eq!(r.verdict, Verdict::Valid, "{r:?}");
        assert_eq!(r.definite_sum, 3);
        assert_eq!((r.indeterminate_adds, r.indeterminate_sum), (2, 5));
        assert_eq!(r.acceptable, vec![[3, 4], [7, 8]]);
        assert_eq!(r.lost, 0);

        h.fin("c1", 5);
        let r = check(&h.0);
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].value, 5);
    }

    #[test]
    fn lost_counts_acknowledged_adds_missing_from_the_lowest_read() {
        let mut h = H::new();
        h.add("c1", 4, Some(Outcome::Ok))
            .add("c2", 4, Some(Outcome::Ok))
            .add("c1", 1, Some(Outcome::Ok));
        h.fin("c1", 5).fin("c2", 9);
        let r = check(&h.0);
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.lost, 4);
        assert_eq!(r.final_reads.len(), 2);
    }

    #[test]
    fn a_client_without_a_final_read_makes_it_unknown() {
        let mut h = H::new();
        h.add("c1", 4, Some(Outcome::Ok)).fin("c1", 4);
        h.op("c2", OpKind::Read, None, true, Some(Outcome::Info), None);
        let r = check(&h.0);
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.missing_final_reads, vec!["c2".to_string()]);
        // An invalid read still wins over a missing one.
        h.fin("c1", 2);
        assert_eq!(check(&h.0).verdict, Verdict::Invalid);
        assert_eq!(check(&History::default()).verdict, Verdict::Unknown);
    }

    #[test]
    fn negative_reads_are_never_acceptable() {
        let mut h = H::new();
        h.fin("c1", -1);
        let r = check(&h.0);
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.lost, 0);
    }

    #[test]
    fn a_wrapped_total_is_never_acceptable() {
        // Issue 11: three acknowledged adds of i64::MAX, read back as the
        // sum wrapped past 2^64. The sums saturate, never wrap, so no read
        // can match them.
        let big = i64::MAX;
        let mut h = H::new();
        for _ in 0..3 {
            h.add("c1", big, Some(Outcome::Ok));
        }
        h.add("c1", big, None);
        h.fin("c1", 9223372036854775805);
        let r = check(&h.0);
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.definite_sum, 3 * i128::from(i64::MAX));
    }
}
