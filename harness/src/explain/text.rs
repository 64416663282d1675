//! The explanation in words: the lines printed after the verdict, and the
//! main cause a table of runs shows.

use super::overcount::shown;
use super::{Cause, Explanation, NoopSync, OverCount};

impl Explanation {
    /// The cause that accounts for the most lost increments, in a few
    /// words (for a table of runs).
    pub fn main_cause(&self) -> String {
        if let Some(cause) = self.signed.as_ref().and_then(|s| s.main_cause()) {
            return cause;
        }
        // `lost` splits in two: what the store lost (the acknowledged sum
        // minus the newest value) and how far the lowest final read fell
        // short of the newest value. Erasures a later write restored count
        // for neither, so the store's part is named by its largest cause
        // only when it is the larger part.
        if let Some(over) = self.over_count.as_ref().filter(|_| self.lost == 0) {
            return format!("over-count ({})", over.above);
        }
        let store_lost = self.lost.saturating_sub(self.final_shortfall);
        if self.final_shortfall > 0 && self.final_shortfall >= store_lost {
            let after = if self.stale_final_reads.iter().any(|s| s.noop_sync.is_some()) {
                " after a no-op sync"
            } else {
                ""
            };
            return format!("stale final reads{after} ({})", self.final_shortfall);
        }
        let erased = |c: Cause| -> i64 {
            self.overwrites
                .iter()
                .filter(|o| o.cause == c)
                .map(|o| o.lost)
                .sum()
        };
        let mut causes: Vec<(i64, String)> = vec![
            (
                erased(Cause::StaleRead),
                "overwrites after stale reads".into(),
            ),
            (erased(Cause::Concurrent), "concurrent overwrites".into()),
            (
                self.noop_writes.iter().filter_map(|n| n.lost).sum(),
                "writes that never landed".into(),
            ),
            (
                self.unwritten.iter().map(|u| u.missing).sum(),
                "acknowledged adds never written".into(),
            ),
        ];
        let unexplained = i64::try_from(self.unexplained).unwrap_or(i64::MAX);
        let rest = if self.kills.is_empty() {
            "unexplained".to_string()
        } else {
            format!("unexplained, around {} kill(s)", self.kills.len())
        };
        causes.push((unexplained, rest));
        causes
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .max_by_key(|(n, _)| *n)
            .map_or("-".into(), |(n, what)| format!("{what} ({n})"))
    }

    /// A few lines for the terminal, after the verdict.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(signed) = &self.signed {
            signed.lines(&mut lines);
        }
        if self.lost > 0 || self.over_count.is_none() {
            lines.push(format!(
                "why: {} acknowledged increment(s) lost; {} explained, {} unexplained",
                self.lost, self.explained, self.unexplained
            ));
        }
        if let Some(over) = &self.over_count {
            over.lines(&mut lines);
        }
        if !self.overwrites.is_empty() {
            let count = |c| self.overwrites.iter().filter(|o| o.cause == c).count();
            let erased: usize = self.overwrites.iter().map(|o| o.erased.len()).sum();
            let sum: i64 = self.overwrites.iter().map(|o| o.lost).sum();
            lines.push(format!(
                "  {} overwrite(s) erased {erased} write(s), {sum} increment(s) in all: {} overwrite(s) after a stale read, {} concurrent",
                self.overwrites.len(),
                count(Cause::StaleRead),
                count(Cause::Concurrent)
            ));
        }
        let noop_lost: i64 = self.noop_writes.iter().filter_map(|n| n.lost).sum();
        // Writes that meant to add nothing (an add of 0, a sync) and lost
        // nothing are no cause: results.json still lists them.
        if noop_lost != 0 {
            let sum = noop_lost;
            lines.push(format!(
                "  {} write(s) acknowledged but never landed (the state they ran against already held their value): {sum} increment(s)",
                self.noop_writes.len()
            ));
        }
        for u in &self.unwritten {
            lines.push(format!(
                "  {} acknowledged {} increment(s) but its writes added only {}: {} increment(s) never reached the store",
                u.node, u.acknowledged_sum, u.written_sum, u.missing
            ));
        }
        for s in self.stale_final_reads.iter().take(3) {
            let worst = s.reads.iter().map(|r| r.behind).max().unwrap_or(0);
            lines.push(format!(
                "  final read of {} on {} was {} increment(s) short: served up to {worst} state(s) behind the newest",
                s.client, s.node, s.shortfall
            ));
            if let Some(sync) = &s.noop_sync {
                lines.push(format!("    {}", sync.describe(&s.node)));
            }
        }
        if self.overwrites.is_empty() && self.noop_writes.is_empty() && !self.per_node.is_empty() {
            let accounts: Vec<String> = self
                .per_node
                .iter()
                .map(|a| {
                    let read = a
                        .final_read
                        .map_or("no final read".into(), |v| format!("final read {v}"));
                    format!(
                        "{} acknowledged {} increment(s) ({read})",
                        a.node, a.acknowledged_sum
                    )
                })
                .collect();
            lines.push(format!(
                "  no KV writes to follow; per node: {}",
                accounts.join(", ")
            ));
        }
        for k in &self.kills {
            lines.push(format!("  {}", k.describe()));
        }
        if self.unexplained > 0 && !self.faults.is_empty() {
            let shown: Vec<String> = self
                .faults
                .iter()
                .map(|w| format!("{} ({:.1}-{:.1} s)", w.label, w.start, w.end))
                .collect();
            lines.push(format!("  faults during the run: {}", shown.join("; ")));
        }
        if let Some(example) = &self.example {
            lines.push(format!("  e.g. {example}"));
        }
        for fix in &self.fixes {
            lines.push(format!("  fix: {fix}"));
        }
        for note in &self.notes {
            lines.push(format!("  note: {note}"));
        }
        lines
    }
}

impl NoopSync {
    /// What the sync was and why it synced nothing.
    pub fn describe(&self, node: &str) -> String {
        let key = plain_key(&self.key);
        let what = if self.kind == "cas" {
            format!("a cas of {key} from {0} to {0}", self.value)
        } else {
            format!(
                "a write of {} to {key}, the value state {} already held",
                self.value, self.state
            )
        };
        format!(
            "{node} synced with {what}, which changes nothing: seq-kv answered it from state {}, \
             {} state(s) behind the newest (state {}), and left {node}'s view there, so the reads after it were \
             stale too",
            self.state, self.behind, self.newest
        )
    }
}

impl OverCount {
    fn lines(&self, lines: &mut Vec<String>) {
        lines.push(format!(
            "why: over-count: {} final read(s) above every acceptable value (at most {}), the \
             highest {}'s {} on {}, {} increment(s) over; {} explained, {} unexplained",
            self.count,
            self.highest_acceptable,
            self.client,
            self.value,
            self.node,
            self.above,
            self.explained,
            self.above.saturating_sub(self.explained)
        ));
        if !self.reads.is_empty() {
            let parts: Vec<String> = self
                .reads
                .iter()
                .map(|k| {
                    let by = k
                        .written_by
                        .as_ref()
                        .map_or(String::new(), |n| format!(" (written by {n})"));
                    format!("{} = {}{by}", plain_key(&k.key), shown(&k.value))
                })
                .collect();
            lines.push(format!(
                "  {}'s final read of {} read {}",
                self.node,
                self.value,
                parts.join(", ")
            ));
        }
        if let Some(d) = self.added_by_node {
            lines.push(format!(
                "  {} answered {} where its reads sum to {}: {d:+} of its own",
                self.node,
                self.value,
                self.value - d
            ));
        }
        for w in &self.writers {
            let keys: Vec<String> = w
                .by_key
                .iter()
                .map(|(k, n)| format!("{} {n:+}", plain_key(k)))
                .collect();
            let indeterminate = if w.indeterminate_sum > 0 {
                format!(" (and {} indeterminate)", w.indeterminate_sum)
            } else {
                String::new()
            };
            lines.push(format!(
                "  {}'s changes added {} increment(s) to the keys read ({}), more than the {} it acknowledged{indeterminate}: {} too many",
                w.node,
                w.added,
                keys.join(", "),
                w.acknowledged_sum,
                w.extra
            ));
        }
        let extras: i64 = self.writers.iter().map(|w| w.extra).sum();
        if u64::try_from(extras).is_ok_and(|e| e > self.above) {
            // The rest of the lineage's account: the sum over all nodes
            // of added minus acknowledged is what the store holds too much.
            lines.push(format!(
                "  note: those add up to {extras} increment(s), more than the {} over: other nodes' changes \
                 added less than they acknowledged",
                self.above
            ));
        }
    }
}

/// A key as a person writes it: a string key without its JSON quotes.
pub(super) fn plain_key(key: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(key) {
        Ok(serde_json::Value::String(s)) => s,
        _ => key.to_string(),
    }
}
