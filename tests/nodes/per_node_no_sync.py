#!/usr/bin/env python3
"""Bug class: per-node keys summed without a sync write.

A wrong node on purpose, for `gcounter test --bin` (one of the most common
public solutions of Fly.io's challenge 4; plumbing in maelstrom.py).

How it works. Every node owns one key in `seq-kv`, `counter-<node_id>`,
and is its only writer. An `add` goes into the node's running total and is
acknowledged at once; every FLUSH_INTERVAL seconds a loop writes the total
to the node's key if it has grown (one writer: the writes land in order).
A `read` reads every node's key (a missing key counts as 0) and answers
the sum.

The bug. `seq-kv` may serve a read from any state between the newest this
node has observed and the newest of all. The node's own key is current to
itself, but the others' keys may be read as they were a few states ago,
and nothing moves the node's view forward before a `read`. Once the
workload stops nobody changes `seq-kv`, so a node whose view is behind
stays behind: its final read misses adds that were acknowledged long ago.

Why a random run often misses it. A final read is short only if another
node's last flush landed after this node last talked to `seq-kv`, and the
state drawn for the read predates it. In our runs (3 nodes, rate 100,
20 s, partitions, 50 ms flush) about one run in four was invalid at zero
latency and one in three with latency.

The fix. Before reading, write a fresh unique value to a key of the
node's own (`sync-<node_id>`): a write that changes a value runs against
the newest state and moves the node's position there.
"""

from maelstrom import GCounterState, Node, counter_key

node = Node()
counter = GCounterState(node)  # only its own count: our running total
node.handler("add")(counter.handle_add)
written = 0  # the last total seq-kv acknowledged for our key (flusher only)

KV = "seq-kv"
FLUSH_INTERVAL = 0.05  # seconds between two writes of our total


@node.every(FLUSH_INTERVAL)
def flush():
    """Write our running total to our key when it has grown. One writer,
    so the writes land in order."""
    global written
    value = counter.own()
    if value == written:
        return
    if node.kv_write(KV, counter_key(node.id), value):
        written = value
    else:
        node.log(f"write {value} failed; again later")


@node.handler("read")
def read(msg):
    # BUG: no write of a fresh value first, so every one of these reads may
    # be served from a stale state of seq-kv.
    node.reply_read(msg, node.kv_sum_counters(KV), "every key")


if __name__ == "__main__":
    node.run()
