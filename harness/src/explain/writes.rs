//! Writes that erased others (overwrites) and writes that never landed
//! (no-op writes), the most overwritten key's value over time, and the
//! first overwrite told as a story.

use super::lineage::{num, read_value, secs, KvOp, Lineage, Reads};
use super::{Basis, Cause, Change, KeySeries, NoopWrite, Overwrite};
use serde_json::Value;
use std::collections::BTreeMap;

/// The overwrites and the no-op writes among the trace's writes.
pub(super) fn writes<'a>(
    ops: &'a [KvOp<'a>],
    lineage: &Lineage<'a>,
    reads: &Reads<'a>,
) -> (Vec<Overwrite>, Vec<NoopWrite>) {
    let mut overwrites = Vec::new();
    let mut noops = Vec::new();
    for w in ops {
        if w.kind() != "write" || w.reply.kind() != "write_ok" || !lineage.is_read(w) {
            continue;
        }
        let Some(wrote) = w.req.body.get("value") else {
            continue;
        };
        let basis_op = reads.basis(w);
        let basis = basis_op.as_ref().map(|(r, value)| Basis {
            state: r.served.state,
            value: value.clone(),
            behind: r.served.behind,
            read_at_s: secs(r.answered()),
        });
        if !w.served.changed {
            {
                noops.push(NoopWrite {
                    key: w.key.to_string(),
                    node: w.node().to_string(),
                    time_s: secs(w.req.sent),
                    wrote: wrote.clone(),
                    state: w.served.state,
                    newest: w.served.newest,
                    // A node's own key is written from what the node knows:
                    // a write that changed nothing added nothing.
                    lost: basis
                        .as_ref()
                        .filter(|_| !lineage.single_writer(w))
                        .and_then(|b| Some(num(wrote)? - num(&b.value)?)),
                });
            }
            continue;
        }
        let replaced = w.served.newest;
        // A node's own key holds what the node knows, so its write's basis
        // is the state it replaced: only a write that lowers the value (an
        // older total landing after a newer one) erases anything.
        let basis = if lineage.single_writer(w) {
            let r = lineage.value_at(w, replaced);
            match (num(wrote), num(&r)) {
                (Some(v), Some(rv)) if v < rv => {
                    let changes = lineage.of_key(w);
                    let upto = changes.partition_point(|(s, _)| *s <= replaced);
                    // The basis: the last state holding at most what it wrote.
                    let below = changes[..upto]
                        .iter()
                        .rev()
                        .find(|(_, c)| c.new_value().and_then(num).is_some_and(|x| x <= v));
                    Some(Basis {
                        state: below.map_or(0, |(s, _)| *s),
                        value: below
                            .and_then(|(_, c)| c.new_value().cloned())
                            .unwrap_or(Value::Null),
                        behind: 0,
                        read_at_s: secs(w.req.sent),
                    })
                }
                _ => None,
            }
        } else {
            basis
        };
        let Some(basis) = basis else { continue };
        if basis.state >= replaced {
            continue;
        }
        let replaced_value = lineage.value_at(w, replaced);
        let lost = num(&replaced_value)
            .zip(num(&basis.value))
            .map_or(0, |(r, b)| r - b);
        let key_changes = lineage.of_key(w);
        let range = lineage.between(w, basis.state, replaced);
        let erased: Vec<Change> = key_changes[range.clone()]
            .iter()
            .zip(range.clone())
            .map(|((s, c), j)| {
                let before = j
                    .checked_sub(1)
                    .and_then(|k| key_changes[k].1.new_value())
                    .and_then(num)
                    .unwrap_or(0);
                let value = c.new_value().cloned().unwrap_or(Value::Null);
                Change {
                    state: *s,
                    node: c.node().to_string(),
                    time_s: secs(c.req.sent),
                    increment: num(&value).map(|v| v - before),
                    value,
                }
            })
            .collect();
        if erased.is_empty() {
            continue;
        }
        // The story's messages: each write with the read it came from.
        let mut trace_ids = Vec::new();
        let mut tell = |op: &KvOp<'_>| {
            if let Some((r, _)) = reads.basis(op) {
                trace_ids.extend([r.req.id, r.reply.id]);
            }
            trace_ids.extend([op.req.id, op.reply.id]);
        };
        for (_, c) in &key_changes[range] {
            tell(c);
        }
        tell(w);
        trace_ids.sort_unstable();
        trace_ids.dedup();
        overwrites.push(Overwrite {
            key: w.key.to_string(),
            node: w.node().to_string(),
            time_s: secs(w.req.sent),
            wrote: wrote.clone(),
            cause: if basis.behind > 0 {
                Cause::StaleRead
            } else {
                Cause::Concurrent
            },
            basis,
            replaced_state: replaced,
            replaced_value,
            erased,
            lost,
            trace_ids,
        });
    }
    (overwrites, noops)
}

/// The most overwritten key's values over time.
pub(super) fn series(lineage: &Lineage<'_>, overwrites: &[Overwrite]) -> Option<KeySeries> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in overwrites {
        *counts.entry(&o.key).or_default() += 1;
    }
    let (key, _) = counts.into_iter().max_by_key(|(_, n)| *n)?;
    let changes = lineage
        .changes
        .iter()
        .find(|((_, k), _)| k == key)
        .map(|(_, c)| c)?;
    let values = changes
        .iter()
        .filter_map(|(_, op)| Some((secs(op.reply.sent), num(op.new_value()?)?)))
        .collect();
    let erasures = overwrites
        .iter()
        .filter(|o| o.key == key)
        .filter_map(|o| Some((o.time_s, num(&o.replaced_value)?, num(&o.wrote)?)))
        .collect();
    Some(KeySeries {
        key: key.to_string(),
        values,
        erasures,
    })
}

/// The first overwrite as a story: who read what, who wrote what, what
/// was erased.
pub(super) fn narrate(o: &Overwrite, ops: &[KvOp<'_>]) -> String {
    let fresh = |behind: u64| match behind {
        0 => "newest".to_string(),
        1 => "1 state behind the newest".to_string(),
        n => format!("{n} states behind the newest"),
    };
    let mut steps = vec![(
        o.basis.read_at_s,
        format!(
            "{} read {} ({})",
            o.node,
            o.basis.value,
            fresh(o.basis.behind)
        ),
    )];
    for c in &o.erased {
        // The erased writer's own read, if it came after ours.
        let read = ops.iter().rev().find(|r| {
            r.kind() == "read"
                && r.node() == c.node
                && *r.key.to_string() == *o.key
                && secs(r.answered()) <= c.time_s
        });
        if let Some((r, value)) = read
            .filter(|r| secs(r.answered()) >= o.basis.read_at_s)
            .and_then(|r| Some((r, read_value(r)?)))
        {
            steps.push((
                secs(r.answered()),
                format!("{} read {value} ({})", c.node, fresh(r.served.behind)),
            ));
        }
        steps.push((
            c.time_s,
            format!("{} wrote {}{}", c.node, c.value, signed(c.increment)),
        ));
    }
    let mine = num(&o.wrote).zip(num(&o.basis.value)).map(|(w, b)| w - b);
    steps.push((
        o.time_s,
        format!("{} wrote {}{}", o.node, o.wrote, signed(mine)),
    ));
    steps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let erased: Vec<String> = o
        .erased
        .iter()
        .map(|c| match c.increment {
            Some(i) => format!("{}'s {i:+}", c.node),
            None => format!("{}'s write of {}", c.node, c.value),
        })
        .collect();
    let told: Vec<String> = steps.into_iter().map(|(_, s)| s).collect();
    format!("{}: {} erased", told.join(", "), erased.join(" and "))
}

fn signed(inc: Option<i64>) -> String {
    inc.map_or(String::new(), |i| format!(" ({i:+})"))
}
