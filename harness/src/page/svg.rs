//! Three charts as SVG text: latency of every operation over time, latency
//! quantiles per second, and the request rate per second.

use super::{escape, fault_colour, outcome_colour, OpView};
use crate::faults::FaultWindow;
use std::fmt::Write;

const W: f64 = 900.0;
const H: f64 = 320.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 120.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 45.0;

/// A chart frame: axes, ticks and labels, with data drawn by the caller
/// into `data`, which is clipped to the plot area: a point past the axes
/// (the last second's bucket, a value above the top tick) must not draw
/// over the labels and legend.
pub(super) struct Chart {
    out: String,
    /// What is drawn inside the axes.
    pub(super) data: String,
    /// Text beside the plot area (legend, labelled lines).
    side: String,
    /// The clip path's id: unique per title, since a page inlines several
    /// charts and SVG ids share the page's namespace.
    clip: String,
    /// Where the last label beside the plot ends, to keep the next below.
    side_bottom: f64,
    x_max: f64,
    y_min: f64,
    y_max: f64,
    log_y: bool,
}

impl Chart {
    pub(super) fn new(
        title: &str,
        x_max: f64,
        y_min: f64,
        y_max: f64,
        log_y: bool,
        y_label: &str,
    ) -> Chart {
        let clip: String = title
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let mut c = Chart {
            out: String::new(),
            data: String::new(),
            side: String::new(),
            clip: format!("plot-{clip}"),
            side_bottom: 0.0,
            x_max: x_max.max(1.0),
            y_min,
            y_max,
            log_y,
        };
        let _ = write!(
            c.out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = write!(
            c.out,
            r#"<rect width="{W}" height="{H}" fill="white"/><text x="{}" y="18" font-size="14" text-anchor="middle">{}</text>"#,
            W / 2.0,
            escape(title)
        );
        c.axes(y_label);
        c
    }

    pub(super) fn x(&self, v: f64) -> f64 {
        LEFT + v / self.x_max * (W - LEFT - RIGHT)
    }

    pub(super) fn y(&self, v: f64) -> f64 {
        let (lo, hi, v) = if self.log_y {
            (
                self.y_min.max(1e-3).log10(),
                self.y_max.max(1e-2).log10(),
                v.max(1e-3).log10(),
            )
        } else {
            (self.y_min, self.y_max, v)
        };
        let frac = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
        H - BOTTOM - frac.clamp(0.0, 1.0) * (H - TOP - BOTTOM)
    }

    fn axes(&mut self, y_label: &str) {
        let (x0, x1, y0, y1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
        let _ = write!(
            self.out,
            r##"<path d="M{x0},{y1} L{x0},{y0} L{x1},{y0}" stroke="#333" fill="none"/>"##
        );
        let step = nice_step(self.x_max / 5.0);
        for v in (0..)
            .map(|i| i as f64 * step)
            .take_while(|v| *v <= self.x_max + 1e-9)
        {
            let x = self.x(v);
            let _ = write!(
                self.out,
                r##"<line x1="{x}" y1="{y0}" x2="{x}" y2="{}" stroke="#333"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
                y0 + 4.0,
                y0 + 18.0,
                short(v)
            );
        }
        for v in self.y_ticks() {
            let y = self.y(v);
            let _ = write!(
                self.out,
                r##"<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                x0 - 6.0,
                y + 4.0,
                short(v)
            );
        }
        let _ = write!(
            self.out,
            r#"<text x="{}" y="{}" text-anchor="middle">time (s)</text><text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
            (x0 + x1) / 2.0,
            H - 8.0,
            (y0 + y1) / 2.0,
            escape(y_label)
        );
    }

    fn y_ticks(&self) -> Vec<f64> {
        if self.log_y {
            let lo = self.y_min.max(1e-3).log10().floor() as i32;
            let hi = self.y_max.max(1e-2).log10().ceil() as i32;
            (lo..=hi).map(|e| 10f64.powi(e)).collect()
        } else {
            let step = nice_step((self.y_max - self.y_min) / 4.0);
            let first = (self.y_min / step).ceil() * step;
            (0..)
                .map(|i| first + step * i as f64)
                .take_while(|v| *v <= self.y_max + 1e-9)
                .collect()
        }
    }

    /// Shades the time each fault was in force, behind the data, with
    /// what it was on hover.
    fn shade(&mut self, faults: &[FaultWindow]) {
        for w in faults {
            let (x0, x1) = (self.x(w.start), self.x(w.end.min(self.x_max)));
            let _ = write!(
                self.data,
                r#"<rect x="{x0:.1}" y="{TOP}" width="{:.1}" height="{}" fill="{}" fill-opacity="0.15"><title>{} ({:.1}-{:.1} s)</title></rect>"#,
                (x1 - x0).max(1.0),
                H - TOP - BOTTOM,
                fault_colour(w.fault),
                escape(&w.label),
                w.start,
                w.end
            );
        }
    }

    fn legend(&mut self, entries: &[(&str, &str)]) {
        for (i, (label, colour)) in entries.iter().enumerate() {
            let y = TOP + 10.0 + i as f64 * 18.0;
            let x = W - RIGHT + 12.0;
            let _ = write!(
                self.side,
                r#"<rect x="{x}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
                y - 9.0,
                x + 15.0,
                y,
                escape(label)
            );
        }
    }

    /// A line through `points` (one per second), broken where seconds
    /// are missing: a second with no operation (the idle recovery, say)
    /// has no latency, and a line across it would draw one.
    fn polyline(&mut self, points: &[(f64, f64)], colour: &str) {
        if points.is_empty() {
            return;
        }
        let mut d = String::new();
        let joined = |i: usize| i > 0 && points[i].0 - points[i - 1].0 <= 1.0 + 1e-9;
        for (i, (x, y)) in points.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1} ",
                if joined(i) { "L" } else { "M" },
                self.x(*x),
                self.y(*y)
            );
        }
        let _ = write!(
            self.data,
            r#"<path d="{d}" stroke="{colour}" fill="none" stroke-width="1.5"/>"#
        );
        // A second with no neighbour (the final reads after the idle
        // recovery) would be a line of no length: mark it with a dot.
        for i in 0..points.len() {
            let continued = i + 1 < points.len() && joined(i + 1);
            if !joined(i) && !continued {
                let (x, y) = points[i];
                let _ = write!(
                    self.data,
                    r#"<circle class="lone" cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"/>"#,
                    self.x(x),
                    self.y(y)
                );
            }
        }
    }

    /// A labelled horizontal line across the plot at value `v`, its label
    /// (lines split at `\n`) beside the plot on the right, where no data
    /// is drawn, moved down below the previous one's if they would meet.
    pub(super) fn level(&mut self, v: f64, colour: &str, dash: bool, label: &str) {
        const LINE: f64 = 14.0;
        let y = self.y(v);
        let dash = if dash {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            self.data,
            r#"<line class="level" x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="{colour}" stroke-width="1.5"{dash}/>"#,
            W - RIGHT
        );
        let lines: Vec<&str> = label.split('\n').collect();
        let baseline = (y + 4.0).max(self.side_bottom + LINE);
        self.side_bottom = baseline + LINE * (lines.len() - 1) as f64 + 4.0;
        let x = W - RIGHT + 6.0;
        let _ = write!(
            self.side,
            r#"<text class="level-label" x="{x}" y="{baseline:.1}" fill="{colour}">"#
        );
        for (i, line) in lines.iter().enumerate() {
            let dy = if i == 0 { 0.0 } else { LINE };
            let _ = write!(
                self.side,
                r#"<tspan x="{x}" dy="{dy}">{}</tspan>"#,
                escape(line)
            );
        }
        self.side.push_str("</text>");
    }

    pub(super) fn finish(mut self) -> String {
        let (w, h) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let _ = write!(
            self.out,
            r#"<defs><clipPath id="{0}"><rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}"/></clipPath></defs><g clip-path="url(#{0})">{1}</g>{2}</svg>"#,
            self.clip, self.data, self.side
        );
        self.out.push('\n');
        self.out
    }
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(raw)
}

fn short(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn duration(ops: &[OpView]) -> f64 {
    ops.iter()
        .map(|o| o.end.unwrap_or(o.start))
        .fold(1.0, f64::max)
}

/// Each completed operation as a point: time against latency (log scale),
/// coloured by outcome, shaped by kind.
pub fn latency_over_time(ops: &[OpView], faults: &[FaultWindow]) -> String {
    let lats: Vec<f64> = ops.iter().filter_map(OpView::latency_ms).collect();
    let max = lats.iter().copied().fold(1.0, f64::max);
    let min = lats
        .iter()
        .copied()
        .filter(|&l| l > 0.0)
        .fold(max, f64::min)
        .min(0.1);
    let mut c = Chart::new(
        "Latency of every operation",
        duration(ops),
        min,
        max,
        true,
        "latency (ms)",
    );
    c.shade(faults);
    for op in ops {
        let Some(l) = op.latency_ms() else { continue };
        let (x, y) = (c.x(op.start), c.y(l.max(min)));
        let colour = outcome_colour(&op.outcome);
        let shape = if op.kind == "add" {
            format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="2" fill="{colour}"/>"#)
        } else {
            format!(
                r#"<rect x="{:.1}" y="{:.1}" width="4" height="4" fill="none" stroke="{colour}"/>"#,
                x - 2.0,
                y - 2.0
            )
        };
        c.data.push_str(&shape);
    }
    c.legend(&[
        ("ok", outcome_colour("ok")),
        ("info", outcome_colour("info")),
        ("fail", outcome_colour("fail")),
        ("o add / □ read", "#fff"),
    ]);
    c.finish()
}

/// Operations grouped by the whole second they started in, up to the
/// last second any started in (a bucket after it would draw a line of
/// zeros past the end of the run).
fn per_second(ops: &[OpView]) -> Vec<Vec<&OpView>> {
    let last = ops.iter().map(|o| o.start.max(0.0)).fold(0.0, f64::max);
    let secs = last as usize + 1;
    let mut buckets = vec![Vec::new(); secs];
    for op in ops {
        let i = (op.start.max(0.0) as usize).min(secs - 1);
        buckets[i].push(op);
    }
    buckets
}

/// The q-quantile (nearest rank) of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The x axis of a per-second chart: the run, and every bucket's point
/// (drawn at the middle of its second).
fn per_second_span(ops: &[OpView], buckets: usize) -> f64 {
    duration(ops).max(buckets as f64)
}

/// Latency quantiles (0.5, 0.95, 0.99, max) of each second's operations.
pub fn latency_quantiles(ops: &[OpView], faults: &[FaultWindow]) -> String {
    const QS: [(f64, &str, &str); 4] = [
        (0.5, "0.5", "#1f77b4"),
        (0.95, "0.95", "#ff7f0e"),
        (0.99, "0.99", "#9467bd"),
        (1.0, "max", "#d62728"),
    ];
    let buckets = per_second(ops);
    let mut lines: Vec<Vec<(f64, f64)>> = vec![Vec::new(); QS.len()];
    let mut max = 1.0f64;
    for (sec, bucket) in buckets.iter().enumerate() {
        let mut lats: Vec<f64> = bucket.iter().filter_map(|o| o.latency_ms()).collect();
        if lats.is_empty() {
            continue;
        }
        lats.sort_by(f64::total_cmp);
        for (line, (q, _, _)) in lines.iter_mut().zip(QS) {
            let v = quantile(&lats, q);
            max = max.max(v);
            line.push((sec as f64 + 0.5, v.max(0.01)));
        }
    }
    let mut c = Chart::new(
        "Latency quantiles per second",
        per_second_span(ops, buckets.len()),
        0.01,
        max,
        true,
        "latency (ms)",
    );
    c.shade(faults);
    for (line, (_, _, colour)) in lines.iter().zip(QS) {
        c.polyline(line, colour);
    }
    let legend: Vec<(&str, &str)> = QS.iter().map(|(_, l, col)| (*l, *col)).collect();
    c.legend(&legend);
    c.finish()
}

/// Operations started per second, by kind.
pub fn request_rate(ops: &[OpView], faults: &[FaultWindow]) -> String {
    request_rate_sampled(ops, faults, 1)
}

/// [`request_rate`] of one in `stride` of the operations, evenly spaced
/// (a long run's sample): each stands for `stride`.
pub fn request_rate_sampled(ops: &[OpView], faults: &[FaultWindow], stride: u64) -> String {
    let buckets = per_second(ops);
    let series = [("add", "#1f77b4"), ("read", "#2ca02c")];
    let mut lines: Vec<Vec<(f64, f64)>> = vec![Vec::new(); series.len()];
    let mut max = 1.0f64;
    for (sec, bucket) in buckets.iter().enumerate() {
        for (line, (kind, _)) in lines.iter_mut().zip(series) {
            let n = (bucket.iter().filter(|o| o.kind == kind).count() as u64 * stride) as f64;
            max = max.max(n);
            line.push((sec as f64 + 0.5, n));
        }
    }
    let mut c = Chart::new(
        "Requests started per second",
        per_second_span(ops, buckets.len()),
        0.0,
        max,
        false,
        "ops/s",
    );
    c.shade(faults);
    for (line, (_, colour)) in lines.iter().zip(series) {
        c.polyline(line, colour);
    }
    c.legend(&series);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(start: f64, end: Option<f64>, outcome: &str) -> OpView {
        OpView {
            client: "c1".into(),
            kind: "add".into(),
            start,
            end,
            outcome: outcome.into(),
            value: Some(1),
        }
    }

    #[test]
    fn charts_are_svg_with_a_mark_per_completed_op() {
        let ops = vec![
            op(0.1, Some(0.2), "ok"),
            op(1.5, None, "info"),
            op(2.0, Some(2.5), "fail"),
        ];
        let svg = latency_over_time(&ops, &[]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(latency_quantiles(&ops, &[]).contains("<path"));
        assert!(request_rate(&ops, &[]).contains("<path"));
    }

    #[test]
    fn a_quantile_line_breaks_over_seconds_without_operations() {
        // Operations in seconds 0, 1 and 9: one line for 0-1, another at 9.
        let ops = vec![
            op(0.1, Some(0.2), "ok"),
            op(1.1, Some(1.2), "ok"),
            op(9.1, Some(9.3), "ok"),
        ];
        let svg = latency_quantiles(&ops, &[]);
        let line = svg
            .split("<path d=\"")
            .nth(2)
            .expect("a quantile line after the axes");
        let d = line.split('"').next().unwrap_or_default();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(d.matches('L').count(), 1, "{d}");
        // Second 9 stands alone: a dot per quantile line shows it.
        assert_eq!(svg.matches(r#"class="lone""#).count(), 4, "{svg}");
    }

    #[test]
    fn an_empty_history_still_draws() {
        for svg in [
            latency_over_time(&[], &[]),
            latency_quantiles(&[], &[]),
            request_rate(&[], &[]),
        ] {
            assert!(svg.contains("</svg>"));
            assert!(!svg.contains("NaN"));
        }
    }

    /// Every point the data of `svg` draws: path vertices and circle
    /// centres inside the clipped group.
    fn data_points(svg: &str) -> Vec<(f64, f64)> {
        let data = svg
            .split(r#"<g clip-path="url(#plot-"#)
            .nth(1)
            .and_then(|g| g.split("</g>").next())
            .expect("a clipped data group");
        let attr = |t: &str, name: &str| -> Option<f64> {
            t.split(&format!(" {name}=\""))
                .nth(1)?
                .split('"')
                .next()?
                .parse()
                .ok()
        };
        let mut points = Vec::new();
        for t in data.split('<') {
            if let Some(d) = t.split(" d=\"").nth(1).and_then(|d| d.split('"').next()) {
                for p in d.split_whitespace() {
                    let (x, y) = p
                        .trim_start_matches(['M', 'L'])
                        .split_once(',')
                        .expect("x,y");
                    points.push((x.parse().expect("x"), y.parse().expect("y")));
                }
            }
            if let (Some(x), Some(y)) = (attr(t, "cx"), attr(t, "cy")) {
                points.push((x, y));
            }
        }
        points
    }

    #[test]
    fn every_line_and_point_stays_inside_the_axes() {
        // A run of 9.95 s: the per-second charts used to draw a tenth
        // second's bucket at 10.5 s, past the x axis's end.
        let ops: Vec<OpView> = (0..33)
            .map(|i| {
                op(
                    0.1 + f64::from(i) * 0.3,
                    Some(0.15 + f64::from(i) * 0.3),
                    "ok",
                )
            })
            .collect();
        for svg in [
            latency_over_time(&ops, &[]),
            latency_quantiles(&ops, &[]),
            request_rate(&ops, &[]),
        ] {
            let clip = format!(
                r#"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}"/></clipPath>"#,
                W - LEFT - RIGHT,
                H - TOP - BOTTOM
            );
            assert!(svg.contains(&clip), "{svg}");
            let points = data_points(&svg);
            assert!(!points.is_empty(), "{svg}");
            for (x, y) in points {
                assert!(
                    (LEFT..=W - RIGHT).contains(&x) && (TOP..=H - BOTTOM).contains(&y),
                    "({x}, {y}) outside the axes in {svg}"
                );
            }
        }
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(nice_step(2.6), 5.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(14.6), 20.0);
        assert_eq!(nice_step(10.0), 10.0);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.0);
        assert_eq!(quantile(&v, 0.99), 4.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
    }
}
