#!/usr/bin/env python3
"""Bug class: an `add_ok` sent before the add is stored.

A wrong node on purpose, for `gcounter test --bin` (plumbing in
maelstrom.py).

How it works. All nodes share one key, `counter`, in `seq-kv`. An `add`
is acknowledged at once; then the node reads `counter` (missing counts as
0) and asks `cas from=value to=value+delta` with `create_if_not_exists`,
reading again after each failure, for at most STORE_DEADLINE seconds (as
a Go solution's `context.WithTimeout` around its retry loop does). A
`read` writes a fresh value to `sync-<node_id>` (which brings the node's
view up to date) and reads `counter`.

The bug. The client was told "ok" before the add was stored. When the
retry loop runs out of time (a slow `seq-kv`, stale reads, other nodes'
cas winning), the node logs it and gives up: an acknowledged increment
that no read will ever see.

Why a random run often misses it. Without latency a read and a cas take
well under a millisecond and the loop succeeds within a few tries, far
inside its deadline; only round trips of hundreds of milliseconds to
`seq-kv`, which Maelstrom's latency allows, make it give up.

The fix. Answer `add_ok` only after `cas_ok`, and keep retrying (the
client's own timeout makes a slow add indeterminate, which is allowed).
"""

import time

from maelstrom import Node

node = Node()

KV = "seq-kv"
KEY = "counter"
STORE_DEADLINE = 1.0  # seconds the node tries to store an add


@node.handler("add")
def add(msg):
    delta = msg["body"]["delta"]
    node.reply(msg, {"type": "add_ok"})  # BUG: not stored yet
    deadline = time.monotonic() + STORE_DEADLINE
    while time.monotonic() < deadline:
        current = node.kv_read(KV, KEY)
        if current is not None and node.kv_cas(
            KV, KEY, current, current + delta, create=True
        ):
            return
        # A stale read, or another node got there first: read again.
    node.log(f"gave up storing an add of {delta}")


@node.handler("read")
def read(msg):
    node.serve_kv_read(msg, KV, KEY)


if __name__ == "__main__":
    node.run()
