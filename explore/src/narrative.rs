//! A schedule told as numbered steps, ending with the final reads and
//! what the checker expected of them.

use super::bounds::Bounds;
use super::trace::Trace;
use super::world::Leaf;
use gcounter_harness::checker::Verdict;
use gcounter_harness::history::{OpKind, Outcome};
use std::fmt::Write;

/// The adds a counter value holds, if each add counts at most once (the
/// deltas are distinct powers of two, each with its sign, so the answer is
/// unique: the lowest power a value holds is the lowest bit it has set,
/// whatever the signs).
pub fn adds_in(value: i64, bounds: &Bounds) -> Option<Vec<i64>> {
    let all: Vec<i64> = (0..bounds.node_count)
        .flat_map(|i| bounds.deltas(i))
        .collect();
    let mut rest = value;
    let mut parts = Vec::new();
    for &d in &all {
        if rest & d.abs() != 0 {
            parts.push(d);
            rest -= d;
        }
    }
    (rest == 0).then_some(parts)
}

fn sum_text(parts: &[i64]) -> String {
    match parts.split_first() {
        None => "0".into(),
        Some((first, rest)) => rest.iter().fold(first.to_string(), |s, d| match *d < 0 {
            true => format!("{s} - {}", d.unsigned_abs()),
            false => format!("{s} + {d}"),
        }),
    }
}

fn list(values: &[i64]) -> String {
    if values.is_empty() {
        "none".into()
    } else {
        values
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The numbered steps of `trace`, then the verdict on `leaf`.
pub fn narrative(trace: &Trace, leaf: &Leaf, bounds: &Bounds) -> String {
    let mut out = String::new();
    let width = trace.steps.len().to_string().len();
    for (i, step) in trace.steps.iter().enumerate() {
        let _ = writeln!(out, "{:>width$}. {}", i + 1, step.text);
        for note in &step.notes {
            let _ = writeln!(out, "{:>width$}  {note}", "");
        }
    }
    out.push_str(&verdict(leaf, bounds));
    out
}

/// The final reads against what the checker accepts, and why it fails.
pub fn verdict(leaf: &Leaf, bounds: &Bounds) -> String {
    let mut out = String::new();
    let check = &leaf.check;
    let adds = |outcome: Option<Outcome>| -> Vec<i64> {
        leaf.history
            .iter()
            .filter(|op| op.kind == OpKind::Add && op.outcome == outcome)
            .filter_map(|op| op.delta)
            .collect()
    };
    let mut acked = adds(Some(Outcome::Ok));
    acked.sort_unstable();
    let mut indeterminate = adds(Some(Outcome::Info));
    indeterminate.extend(adds(None));
    indeterminate.sort_unstable();
    let mut failed = adds(Some(Outcome::Fail));
    failed.sort_unstable();
    let reads: Vec<String> = check
        .final_reads
        .iter()
        .map(|r| {
            let parts = adds_in(r.value, bounds)
                .filter(|p| p.len() > 1)
                .map(|p| format!(" (= {})", sum_text(&p)))
                .unwrap_or_default();
            format!("{} read {}{parts} on {}", r.client, r.value, r.node)
        })
        .collect();
    let _ = writeln!(
        out,
        "final reads: {}",
        if reads.is_empty() {
            "none".into()
        } else {
            reads.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "adds: acknowledged {} (sum {}); indeterminate {}; failed {}",
        list(&acked),
        check.definite_sum,
        list(&indeterminate),
        list(&failed)
    );
    let acceptable: Vec<String> = check
        .acceptable
        .iter()
        .map(gcounter_harness::report::range)
        .collect();
    let _ = writeln!(
        out,
        "checker: every final read must be {} plus a subset of the indeterminate deltas: {}",
        check.definite_sum,
        acceptable.join(", ")
    );
    if let Some(problem) = &leaf.problem {
        let _ = writeln!(out, "the schedule did not finish: {problem}");
    }
    match check.verdict {
        Verdict::Invalid => {
            for r in &check.errors {
                let have = adds_in(r.value, bounds);
                let why = match have {
                    Some(have) => {
                        let missing: Vec<i64> = acked
                            .iter()
                            .copied()
                            .filter(|d| !have.contains(d))
                            .collect();
                        if missing.is_empty() {
                            "holds adds that were never acknowledged nor pending".to_string()
                        } else {
                            let down = missing.iter().filter(|d| **d < 0).count();
                            format!(
                                "is missing acknowledged add{} {}{}",
                                if missing.len() == 1 { "" } else { "s" },
                                list(&missing),
                                match (down, missing.len()) {
                                    (0, _) => "",
                                    (1, 1) => " (a decrement: the read is too high)",
                                    (d, n) if d == n => " (decrements: the read is too high)",
                                    _ => " (increments and decrements)",
                                }
                            )
                        }
                    }
                    None => "is more than every add put together".into(),
                };
                let _ = writeln!(
                    out,
                    "invalid: {}'s final read of {} on {} {why}",
                    r.client, r.value, r.node
                );
            }
        }
        Verdict::Unknown => {
            let _ = writeln!(
                out,
                "unknown: {}",
                check.note.as_deref().unwrap_or("no verdict")
            );
        }
        Verdict::Valid => {
            let _ = writeln!(out, "valid");
        }
    }
    out
}
