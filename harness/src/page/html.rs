//! `index.html`: verdict, figures, plots and a per-client timeline, in one
//! self-contained file.

use super::{escape, fault_colour, outcome_colour, Figure, OpView};
use crate::faults::FaultWindow;
use crate::nemesis::Fault;
use std::collections::BTreeMap;
use std::fmt::Write;

const LANE: f64 = 22.0;
const TIMELINE_W: f64 = 1100.0;
const LABEL_W: f64 = 60.0;
/// Room right of the last second, so its tick label is not cut off at
/// the picture's edge.
const TIMELINE_PAD: f64 = 30.0;

/// Figures whose values are files of the run directory, separated by
/// `, `: shown as links.
const LINKED: [&str; 2] = ["node logs", "files"];

/// The page. `verdict` is `valid`, `invalid` or `unknown`; `settings` is
/// what ran (strategy, KV, nodes, workload, faults, seed, replay line);
/// `plots` are (caption, SVG text) pairs drawn inline.
#[allow(clippy::too_many_arguments)]
pub fn index_html(
    title: &str,
    verdict: &str,
    settings: &[Figure],
    figures: &[Figure],
    plots: &[(&str, String)],
    ops: &[OpView],
    faults: &[FaultWindow],
    why: &str,
) -> String {
    let banner = match verdict {
        "valid" => "#2e8b57",
        "invalid" => "#c0392b",
        _ => "#e0a000",
    };
    let mut page = String::new();
    let _ = write!(
        page,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
#verdict {{ display: inline-block; padding: .4em 1em; color: white; background: {banner}; font-size: 1.6em; border-radius: 4px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: .25em .7em; text-align: left; }}
figure {{ margin: 1em 0; }}
.timeline {{ overflow-x: auto; border: 1px solid #ddd; }}
tr.warning td {{ background: #fff3cd; }}
#glossary dt {{ font-weight: bold; margin-top: .4em; }}
#why pre {{ white-space: pre-wrap; background: #fbeeee; padding: .6em; border-left: 4px solid #c0392b; }}
</style></head><body>
<h1>{title}</h1>
<p>Verdict: <span id="verdict">{verdict}</span></p>
{why}<h2>Figures</h2>
<table>
"#,
        title = escape(title),
        verdict = escape(verdict),
    );
    rows(&mut page, figures);
    page.push_str("</table>\n");
    if !settings.is_empty() {
        page.push_str("<h2>Settings</h2>\n<table id=\"settings\">\n");
        rows(&mut page, settings);
        page.push_str("</table>\n");
    }
    page.push_str("<h2>Plots</h2>\n");
    for (caption, svg) in plots {
        let _ = writeln!(
            page,
            "<figure>{svg}<figcaption>{}</figcaption></figure>",
            escape(caption)
        );
    }
    page.push_str("<h2>Timeline of operations per client</h2>\n");
    page.push_str(r#"<p>Each bar is one operation, from invocation to completion, coloured by outcome: <b style="color:#2e8b57">ok</b>, <b style="color:#e0a000">info</b> (indeterminate), <b style="color:#c0392b">fail</b>. Hover for details."#);
    if !faults.is_empty() {
        page.push_str(" Shaded, here and on the plots, while a fault was in force:");
        for fault in Fault::ALL {
            let _ = write!(
                page,
                r#" <span style="background:{};opacity:.6;color:white;padding:0 .3em">{fault}</span>"#,
                fault_colour(fault)
            );
        }
        page.push('.');
    }
    page.push_str("</p>\n");
    page.push_str(&timeline(ops, faults));
    page.push_str("\n</body></html>\n");
    page
}

/// Table rows, with the files of [`LINKED`] figures as links.
fn rows(page: &mut String, figures: &[Figure]) {
    for (label, value) in figures {
        let cell = if LINKED.contains(&label.as_str()) {
            value
                .split(", ")
                .map(|f| format!(r#"<a href="{0}">{0}</a>"#, escape(f)))
                .collect::<Vec<_>>()
                .join(", ")
        } else if value.contains('\n') {
            // Log lines and the like keep their lines.
            format!("<pre>{}</pre>", escape(value))
        } else {
            escape(value)
        };
        // Warnings stand out: they say the nodes did something the verdict
        // does not judge.
        let class = if label == "warnings" {
            r#" id="warnings" class="warning""#
        } else {
            ""
        };
        let _ = writeln!(
            page,
            "<tr{class}><th>{}</th><td>{cell}</td></tr>",
            escape(label)
        );
    }
}

/// One lane per client; one bar per operation.
fn timeline(ops: &[OpView], faults: &[FaultWindow]) -> String {
    let mut lanes: BTreeMap<&str, Vec<&OpView>> = BTreeMap::new();
    for op in ops {
        lanes.entry(op.client.as_str()).or_default().push(op);
    }
    let end = ops
        .iter()
        .map(|o| o.end.unwrap_or(o.start))
        .fold(1.0, f64::max);
    let scale = (TIMELINE_W - LABEL_W - TIMELINE_PAD) / end;
    let height = lanes.len() as f64 * LANE + 30.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<div class="timeline"><svg xmlns="http://www.w3.org/2000/svg" width="{TIMELINE_W}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    for s in 0..=(end.ceil() as usize) {
        if s % 5 != 0 {
            continue;
        }
        let x = LABEL_W + s as f64 * scale;
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="0" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{s} s</text>"##,
            height - 20.0,
            height - 6.0
        );
    }
    for w in faults {
        let x = LABEL_W + w.start * scale;
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="0" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="0.15"><title>{} ({:.1}-{:.1} s)</title></rect>"#,
            ((w.end - w.start) * scale).max(1.0),
            height - 22.0,
            fault_colour(w.fault),
            escape(&w.label),
            w.start,
            w.end
        );
    }
    for (lane, (client, ops)) in lanes.iter().enumerate() {
        let y = lane as f64 * LANE + 4.0;
        let _ = write!(
            out,
            r#"<text x="4" y="{:.1}">{}</text>"#,
            y + 12.0,
            escape(client)
        );
        for op in ops {
            let x = LABEL_W + op.start * scale;
            let w = (op.end.unwrap_or(end) - op.start).max(0.0) * scale;
            let detail = match (op.kind.as_str(), op.value) {
                ("add", Some(d)) => format!("add {d}"),
                ("read", Some(v)) => format!("read → {v}"),
                (kind, _) => kind.to_string(),
            };
            let latency = op
                .latency_ms()
                .map_or("never completed".to_string(), |l| format!("{l:.1} ms"));
            let _ = write!(
                out,
                r#"<rect x="{x:.2}" y="{y:.1}" width="{:.2}" height="{}" fill="{}"><title>{} {}: {} at {:.3}s, {}</title></rect>"#,
                w.max(1.0),
                LANE - 6.0,
                outcome_colour(&op.outcome),
                escape(client),
                escape(&detail),
                escape(&op.outcome),
                op.start,
                latency
            );
        }
    }
    out.push_str("</svg></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_shows_verdict_figures_and_a_bar_per_op() {
        let ops = vec![
            OpView {
                client: "c1".into(),
                kind: "add".into(),
                start: 0.0,
                end: Some(0.1),
                outcome: "ok".into(),
                value: Some(3),
            },
            OpView {
                client: "c2".into(),
                kind: "read".into(),
                start: 0.5,
                end: None,
                outcome: "info".into(),
                value: None,
            },
        ];
        let figures = vec![
            ("lost".to_string(), "0".to_string()),
            (
                "node logs".to_string(),
                "node-logs/n0.log, node-logs/n1.log".to_string(),
            ),
        ];
        let settings = vec![("strategy".to_string(), "naive (--strategy)".to_string())];
        let page = index_html(
            "g-counter <test>",
            "valid",
            &settings,
            &figures,
            &[("a plot", "<svg></svg>".into())],
            &ops,
            &[],
            "",
        );
        assert!(page.contains(r#"<span id="verdict">valid</span>"#));
        assert!(page.contains("<th>lost</th><td>0</td>"));
        assert!(page.contains(r#"<a href="node-logs/n1.log">node-logs/n1.log</a>"#));
        assert!(page.contains("<th>strategy</th><td>naive (--strategy)</td>"));
        assert!(page.contains("g-counter &lt;test&gt;"));
        assert_eq!(page.matches("<rect x=").count(), 2);
        assert!(page.contains("add 3"));
    }

    #[test]
    fn every_timeline_tick_label_fits_in_the_picture() {
        // A run of 30 s: today's last tick, "30 s", used to be cut to "3(".
        let ops: Vec<OpView> = [0.0, 12.0, 30.0]
            .into_iter()
            .map(|t| OpView {
                client: "c1".into(),
                kind: "read".into(),
                start: t,
                end: Some(t),
                outcome: "ok".into(),
                value: Some(1),
            })
            .collect();
        let svg = timeline(&ops, &[]);
        let ticks: Vec<(f64, &str)> = svg
            .split("<text x=\"")
            .skip(1)
            .filter_map(|t| {
                let (x, rest) = t.split_once('"')?;
                let label = rest.split_once('>')?.1.split_once('<')?.0;
                label
                    .ends_with(" s")
                    .then(|| (x.parse().ok(), label))
                    .and_then(|(x, l)| Some((x?, l)))
            })
            .collect();
        assert_eq!(ticks.last().map(|t| t.1), Some("30 s"), "{svg}");
        for (x, label) in ticks {
            // 11 px sans-serif: a character is at most about 7 px wide.
            let half = label.len() as f64 * 7.0 / 2.0;
            assert!(x - half >= 0.0 && x + half <= TIMELINE_W, "{label} at {x}");
        }
    }
}
