//! The message-flow (Lamport) diagram of one overwrite, drawn as
//! Maelstrom's `messages.svg` draws them: one vertical line per
//! participant, time going down, one arrow per message; with the client
//! `add`s whose increments the write erased, and the erasure marked.
//!
//! What each arrow says is written in a column right of every lane, where
//! no arrow runs, one line per arrow at the height it leaves its sender;
//! on the picture an arrow carries only its number, put where no arrow
//! crosses it (or left off when there is no such place). Text laid along
//! diagonal arrows is what made each label look struck through by its own
//! arrow.

use super::escape;
use super::place::{first_free, Segment, TextBox, TEXT_H};
use crate::explain::{Change, Overwrite};
use crate::testcore::{Fate, Trace, TraceEntry};
use std::fmt::Write;

/// Messages drawn, at most.
const ARROWS: usize = 40;
/// Client adds looked for per erased change: a change sums at most this
/// many adds.
const ADDS_PER_CHANGE: usize = 3;

const LANE: f64 = 150.0;
const ROW: f64 = 30.0;
const LEFT: f64 = 50.0;
const TOP: f64 = 50.0;
/// Room right of the last lane for the "erased here" mark, before the
/// column of labels.
const MARK_ROOM: f64 = 130.0;
/// What an arrow stands for in the story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    /// The write that erased.
    Erasing,
    /// A client's add (or its reply) whose increment the write erased.
    Erased,
}

/// The diagram laid out: what [`render`] draws, and what the tests check.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub lanes: Vec<(String, f64)>,
    pub width: f64,
    pub height: f64,
    pub arrows: Vec<(Segment, &'static str)>,
    /// Text on the picture: its box, the text and its colour.
    pub labels: Vec<(TextBox, String, &'static str)>,
    /// A red ring where the erasing write landed.
    pub mark: Option<(f64, f64)>,
}

/// The messages of the story: the overwrite's reads and writes with their
/// replies, the client adds (and add_oks) that carried the increments it
/// erased, and the add the erasing node was serving; in the order sent.
fn story<'a>(o: &Overwrite, trace: &'a Trace) -> (Vec<&'a TraceEntry>, Vec<u64>) {
    let entry = |id: u64| trace.entries.get(usize::try_from(id).ok()?);
    let mut ids: Vec<u64> = o.trace_ids.clone();
    let mut erased_ids = Vec::new();
    for c in o
        .erased
        .iter()
        .filter(|c| c.increment.is_some_and(|i| i > 0))
    {
        for add in carried(c, trace) {
            erased_ids.push(add.id);
            erased_ids.extend(reply(add, trace).map(|r| r.id));
        }
    }
    let own = Change {
        state: 0,
        node: o.node.clone(),
        time_s: o.time_s,
        value: serde_json::Value::Null,
        increment: None,
    };
    for add in carried(&own, trace).into_iter().take(1) {
        ids.push(add.id);
        ids.extend(reply(add, trace).map(|r| r.id));
    }
    ids.extend(&erased_ids);
    ids.sort_unstable();
    ids.dedup();
    let entries = ids.into_iter().filter_map(entry).take(ARROWS).collect();
    (entries, erased_ids)
}

/// The client adds a change's write carried: the last ones its node
/// received before it wrote, until their deltas reach the increment.
fn carried<'a>(c: &Change, trace: &'a Trace) -> Vec<&'a TraceEntry> {
    let want = c.increment.unwrap_or(1);
    let mut adds = Vec::new();
    let mut sum = 0;
    for e in trace.entries.iter().rev() {
        let Some(d) = e.delivered else { continue };
        if e.dest != c.node || e.kind() != "add" || d.as_secs_f64() > c.time_s {
            continue;
        }
        adds.push(e);
        sum += e
            .body
            .get("delta")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        if sum >= want || adds.len() == ADDS_PER_CHANGE {
            break;
        }
    }
    adds
}

/// The node's reply to a client's request.
fn reply<'a>(req: &TraceEntry, trace: &'a Trace) -> Option<&'a TraceEntry> {
    let id = req.msg_id()?;
    trace
        .entries
        .iter()
        .skip(usize::try_from(req.id).unwrap_or(0))
        .find(|e| e.src == req.dest && e.dest == req.src && e.in_reply_to() == Some(id))
}

/// What an arrow says: the type and the values that matter to a counter.
fn label(e: &TraceEntry) -> String {
    let b = &e.body;
    let mut text = e.kind().to_string();
    for k in ["delta", "key", "value", "from", "to"] {
        if let Some(v) = b.get(k) {
            let v = v.as_str().map_or(v.to_string(), str::to_string);
            let _ = write!(text, " {k}={v}");
        }
    }
    if let Some(kv) = e.kv {
        let _ = write!(text, " [state {}", kv.state);
        if kv.behind > 0 {
            let _ = write!(text, ", {} behind the newest", kv.behind);
        }
        text.push(']');
    }
    text
}

/// Lanes left to right: clients, nodes, then services, so a client's add
/// is a short arrow to its node and a node's KV calls go right.
fn lane_order(id: &str) -> (u8, String) {
    let rank = match id.as_bytes().first() {
        Some(b'c') => 0,
        Some(b'n') => 1,
        _ => 2,
    };
    (rank, id.to_string())
}

/// Places `text` near `(x, y)` (an arrow's tail, where the erasing
/// write landed) where no arrow passes and no other label is.
fn place(
    text: &str,
    x: f64,
    y: f64,
    arrows: &[(Segment, &'static str)],
    taken: &[(TextBox, String, &'static str)],
) -> Option<TextBox> {
    let segments: Vec<Segment> = arrows.iter().map(|(s, _)| *s).collect();
    let boxes: Vec<TextBox> = taken.iter().map(|(b, _, _)| *b).collect();
    let w = TextBox::of(text, 0.0, 0.0).w;
    let candidates = [
        (x + 6.0, y - TEXT_H - 2.0),
        (x - w - 6.0, y - TEXT_H - 2.0),
        (x + 6.0, y + 2.0),
        (x - w - 6.0, y + 2.0),
        (x + 6.0, y - TEXT_H / 2.0),
        (x - w - 6.0, y - TEXT_H / 2.0),
        (x + 6.0, y - 2.0 * TEXT_H - 2.0),
        (x - w - 6.0, y - 2.0 * TEXT_H - 2.0),
    ]
    .map(|(bx, by)| TextBox::of(text, bx, by));
    first_free(&candidates, &segments, &boxes).filter(|b| b.x >= 0.0 && b.y >= TOP - 10.0)
}

/// Lays the story out.
pub(super) fn layout(o: &Overwrite, trace: &Trace) -> Layout {
    let (entries, erased_ids) = story(o, trace);
    let mut lanes: Vec<String> = Vec::new();
    for e in &entries {
        for id in [&e.src, &e.dest] {
            if !lanes.contains(id) {
                lanes.push(id.clone());
            }
        }
    }
    lanes.sort_by_key(|id| lane_order(id));
    let lane_x = |id: &str| LEFT + LANE * lanes.iter().position(|l| l == id).unwrap_or(0) as f64;
    let row = |r: f64| TOP + 10.0 + ROW * r;
    let last = entries.len() as f64;
    let mut arrows = Vec::new();
    let mut mark = None;
    let mut texts = Vec::new();
    let erased: Vec<String> = o
        .erased
        .iter()
        .filter_map(|c| {
            Some(format!(
                "{}'s {:+}",
                c.node,
                c.increment.filter(|i| *i > 0)?
            ))
        })
        .collect();
    for (i, e) in entries.iter().enumerate() {
        // A message arrives on the row before its receiver's next send or
        // the first message sent after it arrived, so arrows point down
        // the way causality runs even when all happened in one instant.
        let delivered = e.delivered.unwrap_or(e.sent);
        let arrives = entries
            .iter()
            .skip(i + 1)
            .position(|n| n.src == e.dest || n.sent > delivered)
            .map_or(last, |k| (i + 1 + k) as f64 - 0.35);
        let (y1, y2) = (row(i as f64), row(arrives.max(i as f64 + 0.6)));
        let erasing = e.src == o.node && e.kind() == "write" && e.sent.as_secs_f64() == o.time_s;
        let role = if erasing {
            Role::Erasing
        } else if erased_ids.contains(&e.id) {
            Role::Erased
        } else {
            Role::Plain
        };
        let colour = match (role, e.fate) {
            (Role::Erasing, _) => "#c0392b",
            (Role::Erased, _) => "#d35400",
            (Role::Plain, Fate::Delivered) => "#333",
            _ => "#bbb",
        };
        let seg = Segment {
            x1: lane_x(&e.src),
            y1,
            x2: lane_x(&e.dest),
            y2,
        };
        if erasing {
            mark = Some((seg.x2, seg.y2));
        }
        arrows.push((seg, colour));
        let mut text = format!(
            "{}. {:.3} s {} → {}: {}",
            i + 1,
            e.sent.as_secs_f64(),
            e.src,
            e.dest,
            label(e)
        );
        match role {
            Role::Erasing if !erased.is_empty() => {
                let _ = write!(text, " (erases {})", erased.join(", "));
            }
            Role::Erased if e.kind() == "add" => text.push_str(" (erased later)"),
            _ => {}
        }
        texts.push(text);
    }
    let column = LEFT + LANE * lanes.len().saturating_sub(1) as f64 + MARK_ROOM;
    let mut labels: Vec<(TextBox, String, &'static str)> = Vec::new();
    // The column: right of every lane and of every arrow.
    for (text, (seg, colour)) in texts.iter().zip(&arrows) {
        labels.push((
            TextBox::of(text, column, seg.y1 - TEXT_H + 4.0),
            text.clone(),
            colour,
        ));
    }
    // The erasure, on the picture where the erasing write landed.
    if let Some((x, y)) = mark {
        let text = if erased.is_empty() {
            "erased here".to_string()
        } else {
            format!("{} erased here", erased.join(", "))
        };
        if let Some(b) = place(&text, x, y, &arrows, &labels) {
            labels.push((b, text, "#c0392b"));
        }
    }
    // Each arrow's number by its tail.
    for (i, (seg, colour)) in arrows.iter().enumerate() {
        let text = (i + 1).to_string();
        if let Some(b) = place(&text, seg.x1, seg.y1, &arrows, &labels) {
            labels.push((b, text, colour));
        }
    }
    let width = labels
        .iter()
        .map(|(b, _, _)| b.x + b.w)
        .fold(column, f64::max)
        + 10.0;
    let height = row(last + 1.0) + 10.0;
    let lanes = lanes.iter().map(|l| (l.clone(), lane_x(l))).collect();
    Layout {
        lanes,
        width,
        height,
        arrows,
        labels,
        mark,
    }
}

/// The diagram as SVG.
pub(super) fn render(l: &Layout) -> String {
    let (w, h) = (l.width, l.height);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" font-family="sans-serif" font-size="11"><rect width="{w:.0}" height="{h:.0}" fill="white"/>"#
    );
    // One arrowhead per colour: a marker takes its fill from its own
    // definition, not from the line it ends.
    let mut colours: Vec<&str> = l.arrows.iter().map(|(_, c)| *c).collect();
    colours.sort_unstable();
    colours.dedup();
    out.push_str("<defs>");
    for c in &colours {
        let _ = write!(
            out,
            r#"<marker id="head-{0}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>"#,
            c.trim_start_matches('#')
        );
    }
    out.push_str("</defs>");
    for (id, x) in &l.lanes {
        let _ = write!(
            out,
            r##"<text x="{x}" y="24" text-anchor="middle" font-weight="bold">{}</text><line x1="{x}" y1="32" x2="{x}" y2="{}" stroke="#999"/>"##,
            escape(id),
            h - 10.0,
        );
    }
    for (s, colour) in &l.arrows {
        let width = if *colour == "#c0392b" { 2.0 } else { 1.0 };
        let _ = write!(
            out,
            r#"<line class="arrow" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="{width}" marker-end="url(#head-{})"/>"#,
            s.x1,
            s.y1,
            s.x2,
            s.y2,
            colour.trim_start_matches('#')
        );
    }
    if let Some((x, y)) = l.mark {
        let _ = write!(
            out,
            r##"<circle class="erased" cx="{x:.1}" cy="{y:.1}" r="7" fill="none" stroke="#c0392b" stroke-width="2"/>"##
        );
    }
    for (b, text, colour) in &l.labels {
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}" fill="{colour}" stroke="white" stroke-width="3" paint-order="stroke">{}</text>"#,
            b.x + 2.0,
            b.y + TEXT_H - 3.0,
            escape(text)
        );
    }
    out.push_str("</svg>");
    out
}

/// The diagram of one overwrite's story.
pub(super) fn lamport(o: &Overwrite, trace: &Trace) -> String {
    render(&layout(o, trace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::example_overwrite;

    /// The first loss of a short simulated `naive` run, seeded.
    fn first_loss(seed: u64) -> Option<(Overwrite, Trace)> {
        let (run, e) = super::super::naive_run(seed);
        let o = example_overwrite(&e?.overwrites)?.clone();
        Some((o, run.outcome.trace))
    }

    #[test]
    fn no_arrow_crosses_a_label_and_no_labels_meet() {
        // Seeds of short `naive` runs, each with a loss; each seed is
        // named in the failure message.
        let mut drawn = 0;
        for seed in 1..=12 {
            let Some((o, trace)) = first_loss(seed) else {
                continue;
            };
            drawn += 1;
            let l = layout(&o, &trace);
            assert!(l.arrows.len() >= 4, "seed {seed}: {l:?}");
            for (b, text, _) in &l.labels {
                for (s, _) in &l.arrows {
                    assert!(!b.hit_by(s), "seed {seed}: `{text}` {b:?} crossed by {s:?}");
                }
                for (other, t2, _) in &l.labels {
                    assert!(
                        std::ptr::eq(b, other) || !b.overlaps(other),
                        "seed {seed}: `{text}` meets `{t2}`"
                    );
                }
            }
            assert!(l.labels.iter().all(|(b, _, _)| b.x + b.w <= l.width));
        }
        assert!(drawn >= 6, "only {drawn} of 12 seeds lost an increment");
    }

    #[test]
    fn the_client_add_of_an_erased_increment_is_drawn_and_the_erasure_marked() {
        let (o, trace) = (1..=12)
            .find_map(|seed| first_loss(seed).filter(|(o, _)| o.lost > 0))
            .expect("a seed that loses an increment");
        let l = layout(&o, &trace);
        let texts: Vec<&str> = l.labels.iter().map(|(_, t, _)| t.as_str()).collect();
        let erased = o
            .erased
            .iter()
            .find(|c| c.increment.is_some_and(|i| i > 0))
            .expect("an erased increment");
        let add = texts.iter().find(|t| {
            t.contains(&format!("→ {}: add delta=", erased.node)) && t.contains("(erased later)")
        });
        assert!(
            add.is_some(),
            "no client add to {} in {texts:?}",
            erased.node
        );
        assert!(texts.iter().any(|t| t.contains(": add_ok")), "{texts:?}");
        let mark = format!("{}'s {:+}", erased.node, erased.increment.unwrap_or(0));
        assert!(
            texts
                .iter()
                .any(|t| t.ends_with("erased here") && t.contains(&mark)),
            "no `{mark} ... erased here` in {texts:?}"
        );
        assert!(l.mark.is_some());
        let svg = render(&l);
        assert!(svg.contains(r#"class="erased""#) && svg.contains("#c0392b"));
    }
}
