//! The page's "Why it is invalid" section: the explanation's lines, the
//! tables of overwrites (each told in words), stale final reads and
//! unwritten adds, a glossary of the words they use, the most overwritten
//! key's value over time with its erasures and the acknowledged sum
//! marked, and the message-flow diagram of the first loss (see
//! [`super::flow`]).

use super::svg::Chart;
use super::{escape, increments};
use crate::checker::CheckResult;
use crate::explain::{Change, Explanation, KeySeries, Overwrite};
use crate::testcore::Trace;
use serde_json::Value;
use std::fmt::Write;

/// Rows shown per table; the rest are in results.json.
const ROWS: usize = 30;

/// The words the section and the terminal's `why:` lines use, explained
/// once, for a reader who has not met them.
const GLOSSARY: &str = r#"<h3>Words used here</h3><dl id="glossary">
<dt>state</dt><dd>The KV store keeps the counter's key as a sequence of versions: each write that lands makes a new one, numbered 1, 2, 3, ... A read is answered from one state.</dd>
<dt>behind</dt><dd>How many states older than the newest the state a read was answered from was. <code>seq-kv</code> may answer from an old state: the node then sees a value that misses the latest adds (a stale read).</dd>
<dt>basis</dt><dd>The read a node computed its write from: it read the value, added its client's delta, and wrote the sum back.</dd>
<dt>overwrite, erased</dt><dd>A write replaces the whole value. Every change that landed after the write's basis and before the write itself is gone: its increments are erased, though their adds were acknowledged.</dd>
<dt>stale read, concurrent</dt><dd>Why the basis was old: it was already behind the newest state when read (stale read), or another write landed between the read and the write (concurrent).</dd>
<dt>a write that never landed</dt><dd>A write the store acknowledged that made no new state: the state it ran against already held the value it wrote, so the add it carried counts nowhere.</dd>
</dl>"#;

/// The section, or nothing for a run with no explanation.
pub fn why_section(e: &Explanation, trace: &Trace, check: &CheckResult) -> String {
    let mut out = String::from(r#"<section id="why"><h2>Why it is invalid</h2><pre>"#);
    for line in e.lines() {
        let _ = writeln!(out, "{}", escape(&line));
    }
    out.push_str("</pre>");
    out.push_str(GLOSSARY);
    if !e.overwrites.is_empty() {
        let _ = write!(
            out,
            "<h3>Overwrites ({} in all; the first {} here)</h3><table id=\"overwrites\"><tr><th>time (s)</th><th>node</th><th>what the write did</th><th>acknowledged increments it erased</th></tr>",
            e.overwrites.len(),
            e.overwrites.len().min(ROWS)
        );
        for o in e.overwrites.iter().take(ROWS) {
            let _ = write!(
                out,
                "<tr><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                o.time_s,
                escape(&o.node),
                escape(&told(o)),
                escape(&net(o.lost))
            );
        }
        out.push_str("</table>");
    }
    if !e.stale_final_reads.is_empty() {
        out.push_str("<h3>Stale final reads</h3><table><tr><th>client</th><th>node</th><th>answered</th><th>KV reads: key, state, behind, read, newest</th><th>short by (increments)</th><th>its sync</th></tr>");
        for s in &e.stale_final_reads {
            let reads: Vec<String> = s
                .reads
                .iter()
                .map(|r| {
                    format!(
                        "{}: state {} ({} behind the newest) read {}, newest {}",
                        plain_key(&r.key),
                        r.state,
                        r.behind,
                        r.value,
                        r.newest_value
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
            "<h3>The value of {0} over time</h3><figure>{1}<figcaption>Each step up is a change that landed. A red mark is a write that replaced the value with a lower one computed from an older read: the increments in between are erased. Where {0} holds the whole counter, the dashed line is the sum of the acknowledged adds and the solid one the final reads: the gap between them is what was lost.</figcaption></figure>",
            escape(&plain_key(&series.key)),
            value_chart(series, check)
        );
    }
    if let Some(first) = crate::explain::example_overwrite(&e.overwrites) {
        let _ = write!(
            out,
            "<h3>The messages around the first loss</h3><figure>{}<figcaption>Time goes down; each arrow is a message, from when it was sent to when it arrived, numbered as in the list on its right. Orange: the client's add whose increment is erased, and its reply. Red: the erasing write, ringed where it landed.</figcaption></figure>",
            super::flow::lamport(first, trace)
        );
    }
    out.push_str("</section>\n");
    out
}

/// A key as a person writes it: a string key without its JSON quotes.
fn plain_key(key: &str) -> String {
    match serde_json::from_str::<Value>(key) {
        Ok(Value::String(s)) => s,
        _ => key.to_string(),
    }
}

/// What an overwrite lost, with no negative number: a write whose basis
/// was higher than what it replaced put back what an earlier overwrite had
/// erased.
fn net(lost: i64) -> String {
    match lost {
        0 => "none in the end: what it erased adds up to nothing".into(),
        l if l > 0 => increments(l.unsigned_abs()),
        l => format!(
            "none: it put back {} an earlier overwrite had erased",
            increments(l.unsigned_abs())
        ),
    }
}

/// One erased change, in words.
fn erased_change(c: &Change) -> String {
    match c.increment {
        Some(i) if i > 0 => format!("{}'s +{i} (written at {:.3} s)", c.node, c.time_s),
        Some(0) => format!(
            "{}'s write at {:.3} s, which changed nothing",
            c.node, c.time_s
        ),
        Some(i) => format!(
            "{}'s write at {:.3} s, itself an overwrite that had set the value back by {}",
            c.node,
            c.time_s,
            i.unsigned_abs()
        ),
        None => format!("{}'s write at {:.3} s", c.node, c.time_s),
    }
}

/// An overwrite told as a sentence: what the node read, what it wrote,
/// what it replaced and whose increments that erased.
fn told(o: &Overwrite) -> String {
    let behind = match o.basis.behind {
        0 => "the newest then".to_string(),
        1 => "1 state behind the newest".to_string(),
        n => format!("{n} states behind the newest"),
    };
    // A read of a key not yet written answers nothing: the node counts
    // from 0.
    let basis = o
        .basis
        .value
        .as_i64()
        .or(o.basis.value.is_null().then_some(0));
    let read = if o.basis.value.is_null() {
        "nothing (the key did not exist yet)".to_string()
    } else {
        o.basis.value.to_string()
    };
    let own = match (o.wrote.as_i64(), basis) {
        (Some(w), Some(b)) if w == b => ", added nothing of its own".to_string(),
        (Some(w), Some(b)) if w > b => format!(", added its client's +{}", w - b),
        _ => String::new(),
    };
    let erased: Vec<String> = o.erased.iter().map(erased_change).collect();
    format!(
        "read {read} from {} at {:.3} s (state {}, {behind}){own} and wrote {} over {} (state {}) of {}: it erased {}",
        plain_key(&o.key),
        o.basis.read_at_s,
        o.basis.state,
        o.wrote,
        o.replaced_value,
        o.replaced_state,
        plain_key(&o.key),
        erased.join("; ")
    )
}

/// The key's value as steps over time, erasures marked; and, when the key
/// holds the whole counter (no final read is above its last value), the
/// acknowledged sum and the final reads as lines, so the gap shows.
pub(super) fn value_chart(s: &KeySeries, check: &CheckResult) -> String {
    let last = s.values.last().map_or(0, |(_, v)| *v);
    let finals: Vec<i64> = check.final_reads.iter().map(|r| r.value).collect();
    let whole = !finals.is_empty() && finals.iter().all(|f| *f <= last);
    let acknowledged = i64::try_from(check.definite_sum).unwrap_or(i64::MAX);
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
        .chain(whole.then_some(acknowledged))
        .fold(1, i64::max) as f64;
    let key = plain_key(&s.key);
    let mut c = Chart::new(
        &format!("The value of {key} over time"),
        t_max,
        0.0,
        v_max * 1.05,
        false,
        &format!("value of {key}"),
    );
    let mut d = format!("M{:.1},{:.1} ", c.x(0.0), c.y(0.0));
    let mut prev = 0;
    for (t, v) in &s.values {
        let px = c.x(*t);
        let _ = write!(
            d,
            "L{px:.1},{:.1} L{px:.1},{:.1} ",
            c.y(prev as f64),
            c.y(*v as f64)
        );
        prev = *v;
    }
    let _ = write!(
        c.data,
        r##"<path d="{d}" stroke="#1f77b4" fill="none" stroke-width="1.2"/>"##
    );
    for (t, replaced, wrote) in &s.erasures {
        let (px, top, bottom) = (c.x(*t), c.y(*replaced as f64), c.y(*wrote as f64));
        let _ = write!(
            c.data,
            r##"<line x1="{px:.1}" y1="{top:.1}" x2="{px:.1}" y2="{bottom:.1}" stroke="#c0392b" stroke-width="2"><title>{t:.3} s: {replaced} overwritten with {wrote}</title></line><circle cx="{px:.1}" cy="{bottom:.1}" r="2.5" fill="#c0392b"/>"##
        );
    }
    if whole {
        let low = finals.iter().copied().min().unwrap_or(0);
        let high = finals.iter().copied().max().unwrap_or(0);
        let reads = if low == high {
            format!("final reads {low}")
        } else {
            format!("final reads {low}-{high}")
        };
        c.level(
            acknowledged as f64,
            "#2e8b57",
            true,
            &format!("acknowledged sum\n{acknowledged} increments"),
        );
        let short = acknowledged - low;
        let gap = if short > 0 {
            format!("{reads}\n{} short", increments(short.unsigned_abs()))
        } else {
            reads
        };
        c.level(low as f64, "#c0392b", false, &gap);
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers with a minus sign in `text`, outside tags.
    fn negatives(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        for (i, w) in chars.windows(2).enumerate() {
            if w[0] == '-' && w[1].is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric()) {
                found.push(chars[i..].iter().take(12).collect());
            }
        }
        found
    }

    #[test]
    fn the_overwrite_table_has_no_negative_number() {
        // Seeds of short `naive` runs; some erase an overwrite (a negative
        // increment) or put back what another erased (negative net).
        let mut signed = 0;
        for seed in 1..=12 {
            let (run, Some(e)) = crate::page::naive_run(seed) else {
                continue;
            };
            signed += e
                .overwrites
                .iter()
                .take(ROWS)
                .filter(|o| {
                    o.lost < 0 || o.erased.iter().any(|c| c.increment.is_some_and(|i| i < 0))
                })
                .count();
            let page = why_section(&e, &run.trace, &run.check);
            let table = page
                .split(r#"<table id="overwrites">"#)
                .nth(1)
                .and_then(|t| t.split("</table>").next())
                .expect("an overwrite table");
            assert!(
                negatives(table).is_empty(),
                "seed {seed}: {:?}",
                negatives(table)
            );
        }
        assert!(
            signed > 0,
            "no seed erased an overwrite: the test shows nothing"
        );
    }

    #[test]
    fn an_erased_overwrite_and_a_restoring_write_are_told_in_words() {
        let c = Change {
            state: 7,
            node: "n2".into(),
            time_s: 1.5,
            value: Value::from(35),
            increment: Some(-2),
        };
        assert_eq!(
            erased_change(&c),
            "n2's write at 1.500 s, itself an overwrite that had set the value back by 2"
        );
        assert_eq!(
            net(-2),
            "none: it put back 2 increments an earlier overwrite had erased"
        );
        assert_eq!(net(1), "1 increment");
    }

    #[test]
    fn an_overwrite_from_a_read_of_no_key_counts_from_zero() {
        let o = Overwrite {
            key: "\"counter\"".into(),
            node: "n2".into(),
            time_s: 0.2,
            wrote: Value::from(3),
            basis: crate::explain::Basis {
                state: 0,
                value: Value::Null,
                behind: 1,
                read_at_s: 0.1,
            },
            replaced_state: 1,
            replaced_value: Value::from(2),
            cause: crate::explain::Cause::StaleRead,
            erased: vec![Change {
                state: 1,
                node: "n1".into(),
                time_s: 0.15,
                value: Value::from(2),
                increment: Some(2),
            }],
            lost: 2,
            trace_ids: Vec::new(),
        };
        assert_eq!(
            told(&o),
            "read nothing (the key did not exist yet) from counter at 0.100 s (state 0, 1 state \
             behind the newest), added its client's +3 and wrote 3 over 2 (state 1) of counter: \
             it erased n1's +2 (written at 0.150 s)"
        );
    }

    #[test]
    fn the_value_chart_draws_the_acknowledged_sum_and_the_final_reads() {
        let (run, e) = crate::page::naive_run(3);
        let e = e.expect("seed 3 of naive loses increments");
        let series = e.series.as_ref().expect("a key's series");
        let svg = value_chart(series, &run.check);
        let acknowledged = run.check.definite_sum;
        assert!(
            svg.contains(&format!(">{acknowledged} increments</tspan>")),
            "{svg}"
        );
        assert_eq!(svg.matches(r#"class="level""#).count(), 2, "{svg}");
        assert!(svg.contains(">time (s)</text>") && svg.contains(">value of counter</text>"));
        // The acknowledged line is above the final reads' (SVG y grows down).
        let ys: Vec<f64> = svg
            .split(r#"class="level" x1="70" y1=""#)
            .skip(1)
            .filter_map(|t| t.split('"').next()?.parse().ok())
            .collect();
        assert!(ys.len() == 2 && ys[0] < ys[1], "{ys:?}");
    }
}
