//! The page's "Why it is invalid" section: the explanation's lines, the
//! tables of overwrites, stale final reads and unwritten adds, the most
//! overwritten key's value over time with its erasures marked, and a
//! message-flow (Lamport) diagram of the messages around the first loss,
//! drawn as Maelstrom's `messages.svg` draws them: one vertical line per
//! participant, time going down, one arrow per message.

use super::escape;
use crate::explain::{Explanation, KeySeries, Overwrite};
use crate::testcore::{Fate, Trace, TraceEntry};
use std::fmt::Write;

/// Rows shown per table; the rest are in results.json.
const ROWS: usize = 30;

/// Messages drawn in the diagram, at most.
const ARROWS: usize = 40;

/// The section, or nothing for a run with no explanation.
pub fn why_section(e: &Explanation, trace: &Trace) -> String {
    let mut out = String::from(r#"<section id="why"><h2>Why it is invalid</h2><pre>"#);
    for line in e.lines() {
        let _ = writeln!(out, "{}", escape(&line));
    }
    out.push_str("</pre>");
    if !e.overwrites.is_empty() {
        let _ = write!(
            out,
            "<h3>Overwrites ({} in all; the first {} here)</h3><table><tr><th>time (s)</th><th>node</th><th>key</th><th>read (basis)</th><th>replaced</th><th>wrote</th><th>cause</th><th>erased (increments)</th><th>lost (net)</th></tr>",
            e.overwrites.len(),
            e.overwrites.len().min(ROWS)
        );
        for o in e.overwrites.iter().take(ROWS) {
            let erased: Vec<String> = o
                .erased
                .iter()
                .map(|c| match c.increment {
                    Some(i) => format!("{} at {:.3} s: {i:+}", c.node, c.time_s),
                    None => format!("{} at {:.3} s", c.node, c.time_s),
                })
                .collect();
            let _ = write!(
                out,
                "<tr><td>{:.3}</td><td>{}</td><td>{}</td><td>{} (state {}, {} behind)</td><td>{} (state {})</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                o.time_s,
                escape(&o.node),
                escape(&o.key),
                escape(&o.basis.value.to_string()),
                o.basis.state,
                o.basis.behind,
                escape(&o.replaced_value.to_string()),
                o.replaced_state,
                escape(&o.wrote.to_string()),
                o.cause.name(),
                escape(&erased.join("; ")),
                o.lost
            );
        }
        out.push_str("</table>");
    }
    if !e.stale_final_reads.is_empty() {
        out.push_str("<h3>Stale final reads</h3><table><tr><th>client</th><th>node</th><th>answered</th><th>KV reads: key, state, behind, read, newest</th><th>short by</th><th>its sync</th></tr>");
        for s in &e.stale_final_reads {
            let reads: Vec<String> = s
                .reads
                .iter()
                .map(|r| {
                    format!(
                        "{}: state {} ({} behind) read {}, newest {}",
                        r.key, r.state, r.behind, r.value, r.newest_value
                    )
                })
                .collect();
            let sync = s
                .noop_sync
                .as_ref()
                .map_or(String::new(), |n| n.describe(&s.node));
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.client),
                escape(&s.node),
                s.value,
                escape(&reads.join("; ")),
                s.shortfall,
                escape(&sync)
            );
        }
        out.push_str("</table>");
    }
    if let Some(over) = e.over_count.as_ref().filter(|o| !o.writers.is_empty()) {
        out.push_str("<h3>Nodes that added more than they acknowledged</h3><table><tr><th>node</th><th>its changes added</th><th>per key</th><th>acknowledged</th><th>indeterminate</th><th>too many</th></tr>");
        for w in &over.writers {
            let keys: Vec<String> = w.by_key.iter().map(|(k, n)| format!("{k} {n:+}")).collect();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&w.node),
                w.added,
                escape(&keys.join(", ")),
                w.acknowledged_sum,
                w.indeterminate_sum,
                w.extra
            );
        }
        out.push_str("</table>");
    }
    if !e.unwritten.is_empty() {
        out.push_str("<h3>Acknowledged, never written</h3><table><tr><th>node</th><th>acknowledged</th><th>its writes added</th><th>missing</th></tr>");
        for u in &e.unwritten {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&u.node),
                u.acknowledged_sum,
                u.written_sum,
                u.missing
            );
        }
        out.push_str("</table>");
    }
    if let Some(series) = &e.series {
        let _ = write!(
            out,
            "<h3>The value of {} over time</h3><figure>{}<figcaption>Each step is a change that landed; a red mark is a write that replaced the value above it with a lower one computed from an older read.</figcaption></figure>",
            escape(&series.key),
            value_chart(series)
        );
    }
    if let Some(first) = crate::explain::example_overwrite(&e.overwrites) {
        let _ = write!(
            out,
            "<h3>The messages around the first loss</h3><figure>{}<figcaption>Time goes down; each arrow is a message, from when it was sent to when it arrived. The erasing write is red.</figcaption></figure>",
            lamport(first, trace)
        );
    }
    out.push_str("</section>\n");
    out
}

/// The key's value as steps over time, erasures marked.
fn value_chart(s: &KeySeries) -> String {
    const W: f64 = 900.0;
    const H: f64 = 260.0;
    const PAD: f64 = 50.0;
    let t_max = s
        .values
        .iter()
        .map(|(t, _)| *t)
        .chain(s.erasures.iter().map(|(t, _, _)| *t))
        .fold(1.0, f64::max);
    let v_max = s
        .values
        .iter()
        .map(|(_, v)| *v)
        .chain(s.erasures.iter().map(|(_, r, _)| *r))
        .fold(1, i64::max) as f64;
    let x = |t: f64| PAD + t / t_max * (W - 2.0 * PAD);
    let y = |v: i64| H - PAD + -(v as f64) / v_max * (H - 2.0 * PAD);
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11"><rect width="{W}" height="{H}" fill="white"/><path d="M{PAD},{PAD} L{PAD},{b} L{r},{b}" stroke="#333" fill="none"/><text x="{PAD}" y="{t}" text-anchor="middle">{v_max}</text><text x="{r}" y="{l}" text-anchor="end">{t_max:.1} s</text>"##,
        b = H - PAD,
        r = W - PAD,
        t = PAD - 8.0,
        l = H - PAD + 16.0,
    );
    let mut d = String::new();
    let mut last = 0;
    for (i, (t, v)) in s.values.iter().enumerate() {
        let (px, py) = (x(*t), y(*v));
        if i == 0 {
            let _ = write!(d, "M{:.1},{:.1} ", x(0.0), y(0));
        }
        let _ = write!(d, "L{px:.1},{:.1} L{px:.1},{py:.1} ", y(last));
        last = *v;
    }
    let _ = write!(
        out,
        r##"<path d="{d}" stroke="#1f77b4" fill="none" stroke-width="1.2"/>"##
    );
    for (t, replaced, wrote) in &s.erasures {
        let (px, top, bottom) = (x(*t), y(*replaced), y(*wrote));
        let _ = write!(
            out,
            r##"<line x1="{px:.1}" y1="{top:.1}" x2="{px:.1}" y2="{bottom:.1}" stroke="#c0392b" stroke-width="2"><title>{t:.3} s: {replaced} overwritten with {wrote}</title></line><circle cx="{px:.1}" cy="{bottom:.1}" r="2.5" fill="#c0392b"/>"##
        );
    }
    out.push_str("</svg>");
    out
}

/// What an arrow says: the type and the values that matter to a counter.
fn label(e: &TraceEntry) -> String {
    let b = &e.body;
    let field = |k: &str| b.get(k).map(|v| v.to_string());
    let mut text = e.kind().to_string();
    for k in ["delta", "key", "value", "from", "to"] {
        if let Some(v) = field(k) {
            let _ = write!(text, " {k}={v}");
        }
    }
    if let Some(kv) = e.kv {
        let _ = write!(text, " [state {}", kv.state);
        if kv.behind > 0 {
            let _ = write!(text, ", {} behind", kv.behind);
        }
        text.push(']');
    }
    text
}

/// The story of one overwrite: the reads and writes involved, with their
/// replies. Rows follow the order messages were sent; a message arrives
/// on the row before its receiver's next send or the first message sent
/// after it arrived, so arrows point down the way causality runs even when
/// everything happened in one instant.
fn lamport(o: &Overwrite, trace: &Trace) -> String {
    let arrows: Vec<&TraceEntry> = o
        .trace_ids
        .iter()
        .filter_map(|id| trace.entries.get(usize::try_from(*id).ok()?))
        .take(ARROWS)
        .collect();
    let mut lanes: Vec<String> = Vec::new();
    for e in &arrows {
        for id in [&e.src, &e.dest] {
            if !lanes.contains(id) {
                lanes.push(id.clone());
            }
        }
    }
    lanes.sort_by_key(|id| (!id.starts_with('n'), id.clone()));
    const LANE: f64 = 220.0;
    const ROW: f64 = 34.0;
    let w = 120.0 + LANE * lanes.len() as f64;
    let h = 80.0 + ROW * (arrows.len() as f64 + 1.0);
    let x = |id: &str| 80.0 + LANE * lanes.iter().position(|l| l == id).unwrap_or(0) as f64;
    let row = |r: f64| 50.0 + ROW * r;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11"><rect width="{w}" height="{h}" fill="white"/><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>"#
    );
    for id in &lanes {
        let _ = write!(
            out,
            r##"<text x="{x}" y="24" text-anchor="middle" font-weight="bold">{}</text><line x1="{x}" y1="32" x2="{x}" y2="{}" stroke="#999"/>"##,
            escape(id),
            h - 10.0,
            x = x(id)
        );
    }
    let last = arrows.len() as f64;
    for (i, e) in arrows.iter().enumerate() {
        let delivered = e.delivered.unwrap_or(e.sent);
        let arrives = arrows
            .iter()
            .skip(i + 1)
            .position(|n| n.src == e.dest || n.sent > delivered)
            .map_or(last, |k| (i + 1 + k) as f64 - 0.35);
        let (y1, y2) = (row(i as f64), row(arrives.max(i as f64 + 0.6)));
        let erasing = e.src == o.node && e.kind() == "write" && e.sent.as_secs_f64() == o.time_s;
        let colour = match (erasing, e.fate) {
            (true, _) => "#c0392b",
            (false, Fate::Delivered) => "#333",
            _ => "#bbb",
        };
        let (x1, x2) = (x(&e.src), x(&e.dest));
        let _ = write!(
            out,
            r##"<line x1="{x1}" y1="{y1:.1}" x2="{x2}" y2="{y2:.1}" stroke="{colour}" marker-end="url(#arrow)"/><text x="{:.1}" y="{:.1}" text-anchor="start" fill="{colour}">{:.3} s {}</text>"##,
            x1.min(x2) + 6.0,
            y1 + (y2 - y1) * 0.35 - 4.0,
            e.sent.as_secs_f64(),
            escape(&label(e))
        );
    }
    out.push_str("</svg>");
    out
}
