#!/usr/bin/env python3
"""A deliberately buggy grow-only counter: per-node keys in seq-kv, summed
without a sync write.

This is one of the most common public solutions of Fly.io's "Gossip
Glomers" challenge 4, in plain Python (Maelstrom plumbing in maelstrom.py), for `gcounter test
--bin`. It exists so that the test can be shown to catch it.

How it works. Every node owns one key in `seq-kv`, `counter-<node_id>`, and
is the only node that writes it. An `add` is added to the node's local
running total and acknowledged at once; a background loop writes the total
to the node's key every FLUSH_INTERVAL seconds when it has grown (one
writer, so the writes land in order and none is lost; a node killed between
an add and the next flush would forget the add, but partitions kill
nobody). A `read` reads every node's key from `seq-kv`, all at once (a
missing key counts as 0), and answers the sum.

The bug. `seq-kv` is only sequentially consistent: a read may be served
from an older state than the newest, anywhere between the newest state this
node has already observed and the newest of all. The node's own key is
always current to itself (its own writes moved it forward), but the other
nodes' keys may be read as they were a few states ago. Nothing forces the
node's view forward before a `read`, so the sum can miss adds that other
nodes have long acknowledged and written -- and this holds for the final
reads too: once the workload stops nobody changes `seq-kv` any more, so a
node whose view is behind stays behind, however long the recovery.

Why a single run often passes. A final read is short only if another node
changed its key after this node last talked to `seq-kv` -- in practice, a
node still had an unwritten add when the workload stopped, and its last
flush landed after the others' last reads -- and the random state seq-kv
picks for this node's read of that key predates that write. Both are
chance: in our runs (3 nodes, rate 100, 20 s, partitions, FLUSH_INTERVAL
50 ms) about one run in four was invalid at zero latency and about one in
three with latency, each time one final read a few increments short while
the others were right. The flush interval moves the odds: writing on every
add keeps each node's view close to the newest state (about one run in five
was invalid), while a 100 ms flush made every zero-latency run we tried
invalid.

The fix. Before reading the keys, write a fresh, unique value (a counter or
a random number) to a key of the node's own, e.g. `sync-<node_id>`: a write
that changes a value always runs against the newest state and moves this
node's position there, so the reads that follow cannot be older than it.
"""

import threading

from maelstrom import Node

node = Node()
lock = threading.Lock()
total = 0  # our running total, acknowledged or about to be
written = 0  # the last total seq-kv acknowledged for our key (flusher only)

KV = "seq-kv"
FLUSH_INTERVAL = 0.05  # seconds between two writes of our total


def key_of(n):
    return f"counter-{n}"


@node.on_init
def start():
    node.every(FLUSH_INTERVAL, flush)


@node.handler("add")
def add(msg):
    global total
    with lock:
        total += msg["body"]["delta"]
    node.reply(msg, {"type": "add_ok"})


def flush():
    """Write our running total to our key when it has grown. One writer,
    so the writes land in order."""
    global written
    with lock:
        value = total
    if value == written:
        return
    if node.kv_write(KV, key_of(node.id), value):
        written = value
    else:
        node.log(f"write {value} failed; again later")


@node.handler("read")
def read(msg):
    # BUG: no write of a fresh value first, so every one of these reads may
    # be served from a stale state of seq-kv.
    values = {}

    def read_one(n):
        values[n] = node.kv_read(KV, key_of(n))

    readers = [threading.Thread(target=read_one, args=(n,)) for n in node.node_ids]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    missing = [key_of(n) for n, v in values.items() if v is None]
    if missing:
        node.error(msg, 11, f"could not read {missing}")
    else:
        node.reply(msg, {"type": "read_ok", "value": sum(values.values())})


if __name__ == "__main__":
    node.run()
