//! Final reads served by stale states.

use super::lineage::{num, read_value, KvOp, Lineage};
use super::{KvRead, StaleFinalRead};
use crate::history::{History, OpKind, Outcome};

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
        let reads: Vec<KvRead> = ops
            .iter()
            .filter(|r| {
                r.kind() == "read"
                    && r.node() == op.node
                    && r.req.sent >= op.invoke
                    && r.answered() <= done
                    && r.served.behind > 0
            })
            .filter(|r| read_value(r) != Some(lineage.value_at(r, r.served.newest)))
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
        });
    }
    stale
}
