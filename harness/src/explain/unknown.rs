//! Why a verdict is `unknown`, and what Maelstrom would have said: its
//! checker looks only at the final reads that answered (SPEC.md section
//! 2), so a run whose answered final reads are all acceptable is one
//! Maelstrom calls valid. A learner told "unknown" should know that the
//! missing reads, not the counter, stopped the verdict.

use crate::checker::{CheckResult, Verdict};

/// The reason for an `unknown` verdict, in one line; `None` for any
/// other verdict.
pub fn unknown_reason(check: &CheckResult) -> Option<String> {
    if check.verdict != Verdict::Unknown {
        return None;
    }
    let note = check.note.clone().unwrap_or_else(|| "unknown".into());
    if check.missing_final_reads.is_empty() || !check.errors.is_empty() {
        return Some(note);
    }
    let answered = check.final_reads.len();
    Some(if answered == 0 {
        format!(
            "{note}; Maelstrom's checker looks only at the final reads that answered, and with \
             none it has nothing to reject: Maelstrom would call this run valid"
        )
    } else {
        format!(
            "{note}; Maelstrom's checker looks only at the final reads that answered, and the \
             {answered} that did are acceptable: Maelstrom would call this run valid"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::check;
    use crate::history::{History, Invocation, Outcome};
    use std::time::Duration;

    #[test]
    fn a_missing_final_read_says_maelstrom_would_call_the_run_valid() {
        let mut h = History::default();
        let t = Duration::from_millis;
        let a = h.invoke(Invocation::add("c1", "n0", 3, t(1)));
        h.complete(a, Outcome::Ok, None, None, t(2));
        let r = h.invoke(Invocation::read("c1", "n0", true, t(10)));
        h.complete(r, Outcome::Ok, Some(3), None, t(11));
        let r = h.invoke(Invocation::read("c2", "n1", true, t(10)));
        h.complete(r, Outcome::Info, None, None, t(5010));
        let c = check(&h);
        assert_eq!(c.verdict, Verdict::Unknown);
        let reason = unknown_reason(&c).unwrap();
        assert_eq!(
            reason,
            "no successful final read from c2; Maelstrom's checker looks only at the final \
             reads that answered, and the 1 that did are acceptable: Maelstrom would call this \
             run valid"
        );
        assert_eq!(
            unknown_reason(&check(&History::default())).as_deref(),
            Some("the history is empty")
        );
    }
}
