//! Final reads served by stale states, and the no-op syncs before them.
//!
//! A node that knows `seq-kv` may serve a stale state often "syncs" before
//! reading, and a sync that changes nothing (a cas from v to v, a write of
//! the value already there) syncs nothing: `seq-kv` answers an operation
//! that would not change the state it drew from that state, and moves the
//! client's position there, not to the newest. The trace shows it: the
//! reply to the sync carries the state that served it and how far behind
//! the newest that was.

use super::lineage::{num, read_value, KvOp, Lineage};
use super::{KvRead, NoopSync, StaleFinalRead};
use crate::history::{History, OpKind, Outcome};
use std::collections::BTreeMap;

/// The final reads that KV reads from stale states served.
pub(super) fn final_reads<'a>(
    history: &History,
    ops: &'a [KvOp<'a>],
    lineage: &Lineage<'a>,
) -> Vec<StaleFinalRead> {
    let mut stale = Vec::new();
    for op in history
        .iter()
        .filter(|op| op.final_read && op.kind == OpKind::Read && op.outcome == Some(Outcome::Ok))
    {
        let (Some(done), Some(value)) = (op.complete, op.value) else {
            continue;
        };
        // The answer comes from the last read of each key: an earlier
        // read of the same key (before a sync, say) does not count.
        let mut last: BTreeMap<String, &KvOp<'a>> = BTreeMap::new();
        for r in reads_during(ops, &op.node, op.invoke, done) {
            last.insert(r.key.to_string(), r);
        }
        let stale_ops: Vec<&KvOp<'a>> = last
            .into_values()
            .filter(|r| r.served.behind > 0)
            .filter(|r| read_value(r) != Some(lineage.value_at(r, r.served.newest)))
            .collect();
        let reads: Vec<KvRead> = stale_ops
            .iter()
            .filter_map(|r| {
                Some(KvRead {
                    key: r.key.to_string(),
                    state: r.served.state,
                    behind: r.served.behind,
                    value: read_value(r)?,
                    newest_value: lineage.value_at(r, r.served.newest),
                })
            })
            .collect();
        if reads.is_empty() {
            continue;
        }
        // The sync that should have made the last stale read current.
        let last_stale = stale_ops.iter().map(|r| r.req.sent).max();
        let noop_sync = ops
            .iter()
            .filter(|s| {
                s.node() == op.node
                    && s.req.sent >= op.invoke
                    && last_stale.is_some_and(|t| s.answered() <= t)
            })
            .rev()
            .find_map(|s| noop_sync(s, lineage));
        let shortfall = reads
            .iter()
            .filter_map(|r| Some(num(&r.newest_value)? - num(&r.value)?))
            .sum();
        stale.push(StaleFinalRead {
            client: op.client.clone(),
            node: op.node.clone(),
            value,
            reads,
            shortfall,
            noop_sync,
        });
    }
    stale
}

/// `s` as a sync that synced nothing: an acknowledged cas from v to v, or
/// write of the value its state already held, answered from a state
/// behind the newest. `None` for anything else (a read, a change that
/// landed, a no-op that the newest state answered and so did bring the
/// node up to date).
/// The KV reads `node` made while a client's read on it was open (sent
/// from `invoke`, answered by `done`), in the order they were answered.
pub(super) fn reads_during<'o, 'a>(
    ops: &'o [KvOp<'a>],
    node: &str,
    invoke: gcounter_core::Time,
    done: gcounter_core::Time,
) -> Vec<&'o KvOp<'a>> {
    let mut window: Vec<&KvOp<'a>> = ops
        .iter()
        .filter(|r| {
            r.kind() == "read" && r.node() == node && r.req.sent >= invoke && r.answered() <= done
        })
        .collect();
    window.sort_by_key(|r| r.answered());
    window
}

fn noop_sync(s: &KvOp<'_>, lineage: &Lineage<'_>) -> Option<NoopSync> {
    if s.served.changed || s.served.behind == 0 {
        return None;
    }
    let value = match (s.kind(), s.reply.kind()) {
        ("cas", "cas_ok") => {
            let from = s.req.body.get("from")?;
            (Some(from) == s.req.body.get("to")).then(|| from.clone())?
        }
        ("write", "write_ok") => s.req.body.get("value")?.clone(),
        _ => return None,
    };
    // What the serving state held, from the key's lineage: for a write it
    // is the value written (that is why nothing changed).
    let held = lineage.value_at(s, s.served.state);
    Some(NoopSync {
        kind: s.kind().to_string(),
        key: s.key.to_string(),
        value,
        held,
        state: s.served.state,
        newest: s.served.newest,
        behind: s.served.behind,
        trace_ids: vec![s.req.id, s.reply.id],
    })
}
