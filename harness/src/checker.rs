//! The g-counter checker (SPEC.md section 2), after Maelstrom's
//! `pn-counter` checker.
//!
//! Let S be the sum of the deltas of acknowledged adds and I the deltas of
//! indeterminate adds (`info`, or never completed). Every final read must
//! equal S plus the sum of some subset of I. The reachable subset sums are
//! computed exactly with a bitset (deltas are small, so the set of sums is
//! bounded by the sum of I), then reported as closed ranges, as Maelstrom
//! reports its acceptable set.
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

/// Beyond this many bits the acceptable set is not enumerated (the verdict
/// is then `unknown`). With deltas of at most 4 it takes more than 30
/// million indeterminate adds to get there.
const MAX_BITS: u64 = 1 << 27;

/// What the checker found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub verdict: Verdict,
    /// S: the sum of acknowledged deltas.
    pub definite_sum: u64,
    /// How many adds are indeterminate, and the sum of their deltas.
    pub indeterminate_adds: usize,
    pub indeterminate_sum: u64,
    /// The acceptable final values, as closed `[low, high]` ranges.
    pub acceptable: Vec<[u64; 2]>,
    /// Every successful final read, in history order.
    pub final_reads: Vec<FinalRead>,
    /// The final reads outside the acceptable set.
    pub errors: Vec<FinalRead>,
    /// Clients with no successful final read.
    pub missing_final_reads: Vec<String>,
    /// S minus the lowest final read, when that is positive: acknowledged
    /// increments that no final read reflects.
    pub lost: u64,
    /// Why the verdict is `unknown`, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CheckResult {
    /// Whether `value` is an acceptable final value.
    pub fn accepts(&self, value: i64) -> bool {
        u64::try_from(value)
            .is_ok_and(|v| self.acceptable.iter().any(|&[lo, hi]| lo <= v && v <= hi))
    }
}

/// The set of sums of subsets of a multiset of non-negative deltas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsetSums {
    bits: Vec<u64>,
    max: u64,
}

impl SubsetSums {
    /// Only the empty subset: {0}.
    pub fn new() -> Self {
        SubsetSums {
            bits: vec![1],
            max: 0,
        }
    }

    /// Every subset sum of `deltas`, or `None` if their total exceeds
    /// `max_bits`.
    ///
    /// Equal deltas are taken together: `k` copies of `d` reach the same
    /// sums as the items `d`, `2d`, `4d`, ... and what remains of `k`, so
    /// the set takes one shift of the bitset per such item, about
    /// `log2(k)` per distinct delta, rather than one per delta. (Deltas
    /// are 0..=4, so one shift per delta made the work grow with the
    /// square of the indeterminate adds: 8 s for 500,000 of them.)
    pub fn of(deltas: impl IntoIterator<Item = u64>, max_bits: u64) -> Option<Self> {
        let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
        let mut total = 0u64;
        for d in deltas.into_iter().filter(|&d| d > 0) {
            total = total.checked_add(d)?;
            *counts.entry(d).or_default() += 1;
        }
        if total >= max_bits {
            return None;
        }
        let mut sums = SubsetSums {
            bits: vec![0; (total / 64 + 1) as usize],
            max: 0,
        };
        sums.bits[0] = 1;
        for (d, mut k) in counts {
            let mut take = 1;
            while k > 0 {
                let n = take.min(k);
                sums.add(d * n);
                k -= n;
                take *= 2;
            }
        }
        Some(sums)
    }

    /// Allows `d` to be added or not: `self ∪ (self + d)`. The bitset must
    /// already be large enough.
    fn add(&mut self, d: u64) {
        let words = (d / 64) as usize;
        let shift = (d % 64) as u32;
        let top = ((self.max + d) / 64) as usize;
        for i in (words..=top.min(self.bits.len() - 1)).rev() {
            let lo = self.bits[i - words] << shift;
            let carry = if shift > 0 && i > words {
                self.bits[i - words - 1] >> (64 - shift)
            } else {
                0
            };
            self.bits[i] |= lo | carry;
        }
        self.max += d;
    }

    pub fn contains(&self, v: u64) -> bool {
        v <= self.max && self.bits[(v / 64) as usize] >> (v % 64) & 1 == 1
    }

    /// The sums as closed ranges, ascending.
    pub fn ranges(&self) -> Vec<[u64; 2]> {
        let mut out: Vec<[u64; 2]> = Vec::new();
        for v in 0..=self.max {
            if !self.contains(v) {
                continue;
            }
            match out.last_mut() {
                Some(last) if last[1] + 1 == v => last[1] = v,
                _ => out.push([v, v]),
            }
        }
        out
    }
}

impl Default for SubsetSums {
    fn default() -> Self {
        Self::new()
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
    let definite_sum = ledger.definite_sum;
    let indeterminate_sum = ledger
        .indeterminate
        .iter()
        .fold(0u64, |a, (&d, &k)| a.saturating_add(d.saturating_mul(k)));
    let final_reads = ledger.final_reads.clone();
    let clients: BTreeSet<&str> = ledger.clients.iter().map(String::as_str).collect();
    let read_by: BTreeSet<&str> = final_reads.iter().map(|r| r.client.as_str()).collect();
    let missing_final_reads: Vec<String> = clients
        .difference(&read_by)
        .map(|c| c.to_string())
        .collect();
    let lowest = final_reads.iter().map(|r| r.value).min();
    let lost = lowest.map_or(0, |low| {
        let low = u64::try_from(low).unwrap_or(0);
        definite_sum.saturating_sub(low)
    });

    let sums = SubsetSums::of(ledger.indeterminate_deltas(), MAX_BITS);
    let acceptable = match &sums {
        Some(sums) => sums
            .ranges()
            .into_iter()
            .map(|[lo, hi]| {
                [
                    lo.saturating_add(definite_sum),
                    hi.saturating_add(definite_sum),
                ]
            })
            .collect(),
        None => vec![[definite_sum, definite_sum.saturating_add(indeterminate_sum)]],
    };
    let mut result = CheckResult {
        verdict: Verdict::Valid,
        definite_sum,
        indeterminate_adds: usize::try_from(ledger.indeterminate_adds()).unwrap_or(usize::MAX),
        indeterminate_sum,
        acceptable,
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
    let in_outer_range = |v: i64| {
        u64::try_from(v)
            .is_ok_and(|v| definite_sum <= v && v <= definite_sum.saturating_add(indeterminate_sum))
    };
    if sums.is_none() {
        // Only the outer bounds are known: a read outside them is still
        // certainly wrong; one inside cannot be judged.
        result.errors.retain(|r| !in_outer_range(r.value));
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
    use crate::history::{OpKind, Outcome};
    use std::time::Duration;

    fn naive_sums(deltas: &[u64]) -> BTreeSet<u64> {
        let mut sums = BTreeSet::from([0]);
        for &d in deltas {
            let next: Vec<u64> = sums.iter().map(|s| s + d).collect();
            sums.extend(next);
        }
        sums
    }

    #[test]
    fn subset_sums_match_enumeration() {
        let mut rng = fastrand::Rng::with_seed(5);
        for round in 0..400 {
            // Some rounds repeat a few deltas many times: equal deltas are
            // taken together, in powers of two.
            let n = if round % 4 == 0 {
                rng.usize(0..300)
            } else {
                rng.usize(0..40)
            };
            let big = rng.bool();
            let deltas: Vec<u64> = (0..n)
                .map(|_| if big { rng.u64(0..200) } else { rng.u64(0..=4) })
                .collect();
            let sums = SubsetSums::of(deltas.iter().copied(), MAX_BITS).unwrap();
            let expected = naive_sums(&deltas);
            let total: u64 = deltas.iter().sum();
            for v in 0..=total + 70 {
                assert_eq!(sums.contains(v), expected.contains(&v), "{deltas:?}: {v}");
            }
            let from_ranges: BTreeSet<u64> =
                sums.ranges().iter().flat_map(|&[lo, hi]| lo..=hi).collect();
            assert_eq!(from_ranges, expected);
        }
        assert!(SubsetSums::of([u64::MAX, 1], MAX_BITS).is_none());
        assert_eq!(
            SubsetSums::of([4, 4], 64).unwrap().ranges(),
            vec![[0, 0], [4, 4], [8, 8]]
        );
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
            delta: Option<u64>,
            fin: bool,
            out: Option<Outcome>,
            value: Option<i64>,
        ) -> &mut Self {
            let t = Duration::from_millis(self.0.len() as u64);
            let i = self.0.invoke(client, "n0", kind, delta, fin, t);
            if let Some(out) = out {
                self.0.complete(i, out, value, None, t);
            }
            self
        }
        fn add(&mut self, client: &str, d: u64, out: Option<Outcome>) -> &mut Self {
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
        let big = i64::MAX as u64;
        let mut h = H::new();
        for _ in 0..3 {
            h.add("c1", big, Some(Outcome::Ok));
        }
        h.add("c1", big, None);
        h.fin("c1", 9223372036854775805);
        let r = check(&h.0);
        assert_eq!(r.verdict, Verdict::Invalid);
        assert_eq!(r.definite_sum, u64::MAX);
    }
}
