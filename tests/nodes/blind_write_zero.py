#!/usr/bin/env python3
"""Bug class: a blind `write 0` when the key is missing.

A wrong node on purpose, for `gcounter test --bin` (plumbing in
maelstrom.py).

How it works. All nodes share one key, `counter`, in `seq-kv`, created
lazily: whoever finds it missing (error 20) writes 0 to it first. An
`add` then asks `cas from=value to=value+delta` until `cas_ok`, and only
then answers `add_ok`. A `read` writes a fresh value to `sync-<node_id>`
(which brings the node's view up to date) and reads `counter`.

The bug. "Missing" may be a stale answer: `seq-kv` can serve a node's
read from a state older than the one where another node created the
counter (any state since the newest this node has observed, and a node
that never asked has observed none). The `write 0` that follows changes
the value, so it runs against the newest state, and erases everything
the other nodes had added. Their adds were acknowledged: the final reads
are all short.

Why a random run often misses it. A node can be fooled only until it
first observes the counter, so only its first request to `seq-kv` can
erase: it must be an `add`, come after another node's add of more than
0, and draw, at random, a state older than the counter.

The fix. Create the key without a blind write: `cas from=0 to=delta`
with `create_if_not_exists` creates a missing key and fails (to be read
again) if the key exists, whatever this node saw.
"""


from maelstrom import Node

node = Node()

KV = "seq-kv"
KEY = "counter"
MISSING = "missing"


def counter():
    """The counter's value (None if seq-kv did not say), creating the key
    if it is missing."""
    value = node.kv_read(KV, KEY, missing=MISSING)
    if value == MISSING:
        # BUG: "missing" may come from a stale state; the key may well
        # exist, and this write erases it.
        return 0 if node.kv_write(KV, KEY, 0) else None
    return value


@node.handler("add")
def add(msg):
    delta = msg["body"]["delta"]
    while True:
        current = counter()
        if current is not None and node.kv_cas(
            KV, KEY, current, current + delta
        ):
            break
        # A stale read, or another node got there first: read again.
    node.reply(msg, {"type": "add_ok"})


@node.handler("read")
def read(msg):
    if not node.kv_synced(msg, KV):
        return
    node.reply_read(msg, counter(), KEY)


if __name__ == "__main__":
    node.run()
