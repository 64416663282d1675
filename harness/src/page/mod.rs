//! The files a person opens after a test: SVG plots and an `index.html`
//! that shows the verdict, the figures, the plots and a per-client timeline
//! of operations. Everything is inlined, so the page works offline.
//!
//! The plots are drawn as plain SVG here rather than with a plotting crate:
//! plotters needs system fonts (or an embedded TTF) to lay out text, and
//! these are three simple charts.

mod flow;
mod html;
pub mod place;
mod svg;
mod why;

pub use html::index_html;
pub use svg::{latency_over_time, latency_quantiles, request_rate, request_rate_sampled};
pub use why::why_section;

/// One client operation, as the page draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpView {
    pub client: String,
    /// `add` or `read`.
    pub kind: String,
    /// Seconds since the test started.
    pub start: f64,
    /// Seconds since the test started; `None` if it never completed.
    pub end: Option<f64>,
    /// `ok`, `info` or `fail`.
    pub outcome: String,
    /// What the operation carried: a delta or the value read.
    pub value: Option<i64>,
}

impl OpView {
    /// Latency in milliseconds, for operations that completed.
    pub fn latency_ms(&self) -> Option<f64> {
        self.end.map(|e| (e - self.start) * 1000.0)
    }
}

/// The most operations the page draws one by one (timeline bars, points
/// of the raw latency plot): beyond it, a page of a fast run would run to
/// tens of megabytes (18 MB at rate 100000) and a browser would crawl.
pub const DRAWN_OPS: usize = 5000;

/// At most `max` of `ops` to draw, and a note saying what was left out
/// when some were: every operation that was not `ok` (they are the ones to
/// look at), then `ok` ones evenly spaced in time. The quantile and rate
/// plots take every operation; only what is drawn one by one is sampled.
pub fn sample(ops: &[OpView], max: usize) -> (Vec<OpView>, Option<String>) {
    if ops.len() <= max {
        return (ops.to_vec(), None);
    }
    let not_ok = ops.iter().filter(|o| o.outcome != "ok").count();
    let ok = ops.len() - not_ok;
    let room = max.saturating_sub(not_ok).max(1);
    // Every `step`-th ok operation, in invocation order.
    let step = ok.div_ceil(room);
    let mut seen = 0;
    let kept: Vec<OpView> = ops
        .iter()
        .filter(|o| {
            if o.outcome != "ok" {
                return true;
            }
            seen += 1;
            (seen - 1) % step == 0
        })
        .cloned()
        .collect();
    let note = format!(
        "{} of {} operations drawn: every one not ok, and 1 in {step} of the ok ones \
         (history.jsonl has them all)",
        kept.len(),
        ops.len()
    );
    (kept, Some(note))
}

/// A headline figure for the page: a label and its value.
pub type Figure = (String, String);

/// Colours shared by the plots and the timeline, per outcome.
pub fn outcome_colour(outcome: &str) -> &'static str {
    match outcome {
        "ok" => "#2e8b57",
        "info" => "#e0a000",
        _ => "#c0392b",
    }
}

/// Colours of the shading for each fault, on the plots and the timeline.
pub fn fault_colour(fault: crate::nemesis::Fault) -> &'static str {
    match fault {
        crate::nemesis::Fault::Partition => "#3b7dd8",
        crate::nemesis::Fault::Kill => "#c0392b",
        crate::nemesis::Fault::Pause => "#8e44ad",
    }
}

/// A count of increments with its unit: a figure without one ("lost
/// 380") leaves a learner guessing whether it counts adds or their sum.
pub fn increments(n: impl Into<i128>) -> String {
    let n: i128 = n.into();
    if n == 1 {
        "1 increment".into()
    } else {
        format!("{n} increments")
    }
}

/// Escapes text for HTML and SVG.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A short simulated `naive` run with its trace kept, and its
/// explanation: the page's tests draw real losses, seeded.
#[cfg(test)]
fn naive_run(seed: u64) -> (crate::sim::SimRun, Option<crate::explain::Explanation>) {
    let mut cfg = crate::sim::SimConfig::evaluation(gcounter_core::StrategyKind::Naive);
    cfg.workload.time_limit = std::time::Duration::from_secs(2);
    cfg.workload.recovery = std::time::Duration::from_secs(1);
    cfg.trace = 1_000_000;
    let run = crate::sim::run(&cfg, seed).expect("the simulation completes");
    let e = crate::explain::explain(&run.history, &run.check, &run.trace, &run.nemesis);
    (run, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(i: usize, outcome: &str) -> OpView {
        OpView {
            client: "c1".into(),
            kind: "add".into(),
            start: i as f64,
            end: Some(i as f64 + 0.5),
            outcome: outcome.into(),
            value: Some(1),
        }
    }

    #[test]
    fn a_sample_keeps_every_op_that_was_not_ok_and_stays_within_bounds() {
        let ops: Vec<OpView> = (0..10_000)
            .map(|i| op(i, if i % 1000 == 7 { "info" } else { "ok" }))
            .collect();
        let (kept, note) = sample(&ops, 100);
        assert!(kept.len() <= 100, "{}", kept.len());
        assert_eq!(kept.iter().filter(|o| o.outcome == "info").count(), 10);
        assert!(note.is_some_and(|n| n.contains("of 10000 operations drawn")));
        let (all, none) = sample(&ops[..50], 100);
        assert_eq!((all.len(), none), (50, None));
    }
}
