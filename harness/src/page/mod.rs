//! The files a person opens after a test: SVG plots and an `index.html`
//! that shows the verdict, the figures, the plots and a per-client timeline
//! of operations. Everything is inlined, so the page works offline.
//!
//! The plots are drawn as plain SVG here rather than with a plotting crate:
//! plotters needs system fonts (or an embedded TTF) to lay out text, and
//! these are three simple charts.

mod html;
mod svg;
mod why;

pub use html::index_html;
pub use svg::{latency_over_time, latency_quantiles, request_rate};
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
    pub value: Option<u64>,
}

impl OpView {
    /// Latency in milliseconds, for operations that completed.
    pub fn latency_ms(&self) -> Option<f64> {
        self.end.map(|e| (e - self.start) * 1000.0)
    }
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
