#!/usr/bin/env python3
"""Bug class: over-counting. Per-node keys in seq-kv, but each node also
merges its own count into its neighbour's key (by max, as a G-Counter
merges an entry), so a key holds the larger of two nodes' counts and the
sum counts one node's adds twice.

A stand-in for a public solution that writes one node's count into another
node's key, in plain Python (Maelstrom plumbing in maelstrom.py), for
`gcounter test --bin`: its final reads land ABOVE every acceptable value,
which the explanation must name as an over-count rather than "lost: 0".

How it works. Node n keeps its acknowledged total in memory and, every
FLUSH_INTERVAL seconds, raises `counter-<n>` to it by compare-and-set from
the value read (so a key only ever grows). A `read` writes a fresh random
value to `sync-<n>` (which brings this node's view of seq-kv up to date)
and answers the sum of every node's key.

The bug. The flush also raises the NEXT node's key to this node's total: a
misreading of the G-Counter merge (max per entry) that applies this node's
count to an entry that is not its own. That key then holds max(own count,
neighbour's count), and whenever the neighbour has counted less, the sum
is too high by the difference.

The fix. Write a node's count to its own key only.
"""

from maelstrom import GCounterState, Node, counter_key

node = Node()
counter = GCounterState(node)  # only its own count: acknowledged adds
node.handler("add")(counter.handle_add)

KV = "seq-kv"
FLUSH_INTERVAL = 0.05
ABSENT = object()


def raise_to(key, value):
    """Raises `key` to `value` by cas from what was read; a failed cas is
    tried again at the next flush."""
    current = node.kv_read(KV, key, missing=ABSENT)
    if current is None:
        return
    if current is ABSENT:
        node.kv_cas(KV, key, 0, value, create=True)
    elif current < value:
        node.kv_cas(KV, key, current, value)


@node.every(FLUSH_INTERVAL)
def flush():
    mine = counter.own()
    raise_to(counter_key(node.id), mine)
    # BUG: this node's count is not its neighbour's.
    ids = sorted(node.node_ids)
    neighbour = ids[(ids.index(node.id) + 1) % len(ids)]
    if neighbour != node.id:
        raise_to(counter_key(neighbour), mine)


@node.handler("read")
def read(msg):
    if not node.kv_synced(msg, KV):
        return
    node.reply_read(msg, node.kv_sum_counters(KV), "every key")


if __name__ == "__main__":
    node.run()
