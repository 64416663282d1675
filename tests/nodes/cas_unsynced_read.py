#!/usr/bin/env python3
"""Bug class: a cas counter whose `read` is a plain seq-kv read.

A wrong node on purpose, for `gcounter test --bin` (plumbing in
maelstrom.py).

How it works. All nodes share one key, `counter`, in `seq-kv`. An `add`
reads it (missing counts as 0) and asks `cas from=value to=value+delta`
with `create_if_not_exists`, again and again until `cas_ok`, and only then
answers `add_ok`: no acknowledged add is ever lost. A `read` reads
`counter` and answers its value.

The bug. `seq-kv` may serve a read from any state between the newest this
node has observed and the newest of all. If another node's cas landed
after this node last talked to `seq-kv`, the read may predate it; after
the workload nobody changes `seq-kv`, so the final read can be short
however long the recovery.

Why a random run often misses it. A final read is short only if another
node's add was the last change this node did not see, and the state drawn
at random for the read is older than it: about a coin flip for one node in
one run, and often no node is behind at all.

The fix. Before reading, write a fresh unique value to a key of the
node's own (`sync-<node_id>`): a write that changes a value runs against
the newest state and moves the node's position there.
"""

from maelstrom import Node

node = Node()

KV = "seq-kv"
KEY = "counter"


@node.handler("add")
def add(msg):
    node.serve_kv_add(msg, KV, KEY)


@node.handler("read")
def read(msg):
    # BUG: a plain read may be served from a stale state.
    node.reply_read(msg, node.kv_read(KV, KEY), KEY)


if __name__ == "__main__":
    node.run()
