//! A schedule as a message-flow (Lamport) diagram in SVG, in the manner
//! of Maelstrom's `messages.svg`: one vertical line per client, node and
//! service, time (steps) going down, one arrow per message from the step
//! it was sent to the step it was delivered. Written by hand, like the
//! results page's plots (see `page::svg`): it is lines and text.

use super::event::{Actor, Event};
use super::trace::{Fate, Trace, Why};
use gcounter_harness::page::escape;
use gcounter_harness::page::place::{beside, first_free, Segment, TextBox, TEXT_H};
use std::fmt::Write;

const COL: f64 = 170.0;
const ROW: f64 = 30.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 70.0;

/// A final read shown under its client's line: text, and whether the
/// checker accepted it.
#[derive(Debug, Clone)]
pub struct Footnote {
    pub actor: Actor,
    pub text: String,
    pub ok: bool,
}

/// The columns, left to right: the first half of the nodes with their
/// clients outside them, the service in the middle, the rest mirrored,
/// so that most arrows are short.
fn columns(trace: &Trace) -> Vec<Actor> {
    let n = trace.node_count;
    let left = n.div_ceil(2);
    let mut cols = Vec::new();
    for i in 0..left {
        cols.push(Actor::Client(i));
        cols.push(Actor::Node(i));
    }
    if trace.kv.is_some() {
        cols.push(Actor::Service);
    }
    for i in left..n {
        cols.push(Actor::Node(i));
        cols.push(Actor::Client(i));
    }
    cols
}

fn colour(src: Actor, dest: Actor, lost: bool) -> &'static str {
    match (src, dest) {
        _ if lost => "red",
        (Actor::Client(_), _) | (_, Actor::Client(_)) => "blue",
        (Actor::Node(_), Actor::Node(_)) => "purple",
        _ => "grey",
    }
}

fn hex(name: &str) -> &'static str {
    match name {
        "red" => "#c0392b",
        "blue" => "#1f77b4",
        "purple" => "#8e44ad",
        _ => "#555555",
    }
}

/// The diagram of `trace`, titled `title`, with `footnotes` under the
/// client lines; `why`'s message and step (the write that erased adds)
/// drawn in red, as the results page draws an erasing write.
pub fn svg(trace: &Trace, title: &str, footnotes: &[Footnote], why: Option<&Why>) -> String {
    let cols = columns(trace);
    let x = |a: Actor| {
        let i = cols.iter().position(|&c| c == a).unwrap_or(0);
        LEFT + COL / 2.0 + i as f64 * COL
    };
    let y = |step: usize| TOP + step as f64 * ROW;
    let steps = trace.steps.len();
    let width = LEFT + cols.len() as f64 * COL + 20.0;
    let bottom = y(steps) + ROW;
    let height = bottom + BOTTOM;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    out.push_str("<defs>");
    for name in ["red", "blue", "purple", "grey"] {
        let _ = write!(
            out,
            r#"<marker id="arrow-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker>"#,
            hex(name)
        );
    }
    out.push_str("</defs>");
    let _ = write!(
        out,
        r#"<rect width="{width}" height="{height}" fill="white"/><text x="{}" y="20" font-size="14" text-anchor="middle">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    // Lifelines.
    for &a in &cols {
        let _ = write!(
            out,
            r##"<text x="{x}" y="{}" font-size="13" font-weight="bold" text-anchor="middle">{}</text><line x1="{x}" y1="{}" x2="{x}" y2="{bottom}" stroke="#999"/>"##,
            TOP - 22.0,
            escape(&trace.name(a)),
            TOP - 12.0,
            x = x(a)
        );
    }
    // Step numbers and phase markers.
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" text-anchor="end" fill="#888">init</text>"##,
        LEFT - 10.0,
        y(0) + 4.0
    );
    // Text drawn with the steps, which message labels must not cover.
    let mut fixed: Vec<TextBox> = Vec::new();
    for (i, step) in trace.steps.iter().enumerate() {
        let yy = y(i + 1);
        let culprit = why.is_some_and(|w| w.step == i + 1);
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" fill="{}"{}>{}<title>{}</title></text>"##,
            LEFT - 10.0,
            yy + 4.0,
            if culprit { hex("red") } else { "#888" },
            if culprit {
                r#" font-weight="bold""#
            } else {
                ""
            },
            i + 1,
            escape(&step.text)
        );
        match step.event {
            Event::Recover => {
                fixed.push(TextBox::of(
                    "recovery: time jumps to 10.0 s",
                    LEFT + 4.0,
                    yy - 4.0 - TEXT_H + 3.0,
                ));
                let _ = write!(
                    out,
                    r##"<line x1="{LEFT}" y1="{yy}" x2="{width}" y2="{yy}" stroke="#e0a000" stroke-dasharray="6,4"/><text x="{}" y="{}" fill="#b07800">recovery: time jumps to {:.1} s</text>"##,
                    LEFT + 4.0,
                    yy - 4.0,
                    step.time.as_secs_f64()
                );
            }
            Event::Fire { node } => {
                let xx = x(Actor::Node(node));
                fixed.push(TextBox::of(
                    "timer (0.000 s)",
                    xx + 9.0,
                    yy - 6.0 - TEXT_H + 3.0,
                ));
                let _ = write!(
                    out,
                    r##"<circle cx="{xx}" cy="{yy}" r="6" fill="#f5c542" stroke="#b07800"/><text x="{}" y="{}" fill="#b07800">timer ({:.3} s)</text>"##,
                    xx + 9.0,
                    yy - 6.0,
                    step.time.as_secs_f64()
                );
            }
            _ => {}
        }
    }
    // Messages: every arrow first, then each label where no arrow
    // crosses it (see `page::place`); a label with no free place beside
    // its arrow goes to a column right of every lifeline, at its height.
    let culprit = why.and_then(|w| w.msg);
    let mut segments = Vec::new();
    let mut labels: Vec<(String, &'static str, bool, Segment)> = Vec::new();
    for (index, m) in trace.msgs.iter().enumerate() {
        let erasing = culprit == Some(index);
        let (x1, x2) = (x(m.src), x(m.dest));
        let mut y1 = y(m.sent);
        if matches!(m.src, Actor::Client(_)) && m.sent > 0 {
            // A client sends after taking the reply of the same step.
            y1 += ROW / 2.0;
        }
        let (x_end, y_end, lost, dashed, note) = match m.fate {
            Fate::Delivered(d) if d == m.sent => (x2, y1 + ROW / 2.0, false, false, ""),
            Fate::Delivered(d) => (x2, y(d), false, false, ""),
            Fate::Lost(d) => ((x1 + x2) / 2.0, y(d), true, true, " (lost)"),
            Fate::InFlight => (x2, bottom, false, true, " (never delivered)"),
        };
        let name = colour(m.src, m.dest, lost || erasing);
        let width = if erasing { 2.6 } else { 1.3 };
        let dash = if dashed {
            r#" stroke-dasharray="4,3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x_end:.1}" y2="{y_end:.1}" stroke="{}" stroke-width="{width}"{dash} marker-end="url(#arrow-{name})"/>"#,
            hex(name)
        );
        if lost {
            let _ = write!(
                out,
                r#"<text x="{x_end:.1}" y="{:.1}" text-anchor="middle" fill="{}" font-size="14">✕</text>"#,
                y_end + 5.0,
                hex("red")
            );
        }
        let seg = Segment {
            x1,
            y1,
            x2: x_end,
            y2: y_end,
        };
        segments.push(seg);
        labels.push((format!("{}{note}", m.label), hex(name), false, seg));
        if let (true, Some(w)) = (erasing, why) {
            let erased: Vec<String> = w.erased.iter().map(|d| format!("+{d}")).collect();
            labels.push((
                format!("erases {}", erased.join(", ")),
                hex("red"),
                true,
                seg,
            ));
        }
    }
    let column = LEFT + cols.len() as f64 * COL + 10.0;
    let mut taken: Vec<TextBox> = fixed;
    let mut right = width;
    for (text, fill, bold, seg) in &labels {
        let b = first_free(
            &beside(text, seg.x1, seg.y1, seg.x2, seg.y2),
            &segments,
            &taken,
        )
        .unwrap_or_else(|| {
            let mut b = TextBox::of(text, column, seg.y1 - TEXT_H / 2.0);
            while taken.iter().any(|t| t.overlaps(&b)) {
                b.y += TEXT_H;
            }
            b
        });
        taken.push(b);
        right = right.max(b.x + b.w + 10.0);
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}" fill="{fill}" stroke="white" stroke-width="3" paint-order="stroke"{}>{}</text>"#,
            b.x + 2.0,
            b.y + TEXT_H - 3.0,
            if *bold { r#" font-weight="bold""# } else { "" },
            escape(text)
        );
    }
    if right > width {
        // Labels moved to the column widen the picture.
        out = out.replacen(
            &format!(r#"viewBox="0 0 {width} {height}" width="{width}""#),
            &format!(r#"viewBox="0 0 {right} {height}" width="{right}""#),
            1,
        );
    }
    for f in footnotes {
        let xx = x(f.actor);
        let fill = if f.ok { "#2e8b57" } else { "#c0392b" };
        let _ = write!(
            out,
            r#"<text x="{xx}" y="{}" text-anchor="middle" fill="{fill}" font-weight="bold">{}</text>"#,
            bottom + 20.0,
            escape(&f.text)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounds::Bounds;
    use crate::event::MsgId;
    use crate::search;
    use gcounter_core::{KvKind, StrategyKind};
    use std::time::Duration;

    #[test]
    fn every_fate_of_a_message_is_drawn() {
        let mut t = Trace::new(None, 2);
        let id = |src, dest, n| MsgId { src, dest, n };
        let (n0, n1) = (Actor::Node(0), Actor::Node(1));
        t.begin(
            Event::Fire { node: 0 },
            "n0's timer fires".into(),
            Duration::ZERO,
        );
        t.clock(Duration::from_millis(300));
        t.sent(id(n0, n1, 0), n1, "gossip {n0: 1}".into());
        t.sent(id(n0, n1, 1), n1, "gossip {n0: 1}".into());
        t.begin(
            Event::Lose { msg: id(n0, n1, 0) },
            "lost".into(),
            Duration::ZERO,
        );
        t.ended(id(n0, n1, 0), Fate::Lost(2));
        t.begin(Event::Recover, "recovery".into(), Duration::from_secs(10));
        t.sent_and_delivered(n1, Actor::Client(1), "read_ok 1".into());
        let svg = svg(&t, "a <test>", &[], None);
        assert!(svg.contains("✕"), "a lost message is crossed out");
        assert!(svg.contains("(never delivered)"));
        assert!(svg.contains("timer (0.300 s)"));
        assert!(svg.contains("recovery: time jumps to"));
        assert!(svg.contains("a &lt;test&gt;"));
        // No service column when nothing used one.
        assert!(!svg.contains(">kv</text>"));
        assert_eq!(svg.matches("marker-end").count(), 3);
    }

    /// The lines and the label boxes of a diagram, read back from its SVG.
    fn geometry(svg: &str) -> (Vec<Segment>, Vec<(TextBox, String)>) {
        let num = |t: &str, name: &str| -> f64 {
            t.split(&format!(" {name}=\""))
                .nth(1)
                .and_then(|v| v.split('"').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {t}"))
        };
        let mut segments = Vec::new();
        let mut labels = Vec::new();
        for t in svg.split('<') {
            if t.starts_with("line ") && t.contains("marker-end") {
                segments.push(Segment {
                    x1: num(t, "x1"),
                    y1: num(t, "y1"),
                    x2: num(t, "x2"),
                    y2: num(t, "y2"),
                });
            }
            if let Some(rest) = t.strip_prefix(r#"text class="label""#) {
                let text = rest.split_once('>').map_or("", |(_, x)| x).to_string();
                let b = TextBox::of(&text, num(t, "x") - 2.0, num(t, "y") - TEXT_H + 3.0);
                labels.push((b, text));
            }
        }
        (segments, labels)
    }

    #[test]
    fn no_arrow_crosses_a_label_of_the_naive_story() {
        // The story `gcounter explore --strategy naive --adds 1` prints,
        // found by the real search: both nodes read `counter` before
        // either writes, so the arrows of the middle steps cross.
        let mut bounds = Bounds::new(StrategyKind::Naive, KvKind::SeqKv);
        bounds.adds = 1;
        let report = crate::explore(&bounds, Duration::from_secs(120)).expect("explores");
        let (path, _) = report.shortest.expect("naive fails");
        let world = search::replay(&bounds, &path, true).expect("replays");
        let trace = world.into_trace().expect("a trace");
        let why = trace.why().expect("a why");
        let svg = svg(&trace, "naive", &[], Some(&why));
        let (segments, labels) = geometry(&svg);
        assert_eq!(segments.len(), trace.msgs.len(), "{svg}");
        assert!(
            labels.iter().any(|(_, t)| t.starts_with("erases +")),
            "{svg}"
        );
        for (b, text) in &labels {
            for s in &segments {
                assert!(!b.hit_by(s), "`{text}` {b:?} crossed by {s:?}");
            }
            for (o, t2) in &labels {
                assert!(
                    std::ptr::eq(b, o) || !b.overlaps(o),
                    "`{text}` meets `{t2}`"
                );
            }
        }
    }
}
