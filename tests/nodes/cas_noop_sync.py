#!/usr/bin/env python3
"""Bug class: a cas counter that "syncs" with a cas from v to v.

A wrong node on purpose, for `gcounter test --bin` (a public Go solution
of Fly.io's challenge 4 does this; plumbing in maelstrom.py).

How it works. All nodes share one key, `counter`, in `seq-kv`. An `add`
reads it and asks `cas from=value to=value+delta` (with
`create_if_not_exists`) until `cas_ok`, then answers `add_ok`. A `read`
first "syncs": it reads `counter` and asks `cas from=value to=value`,
meant to force `seq-kv` to bring this node up to date, then reads
`counter` again and answers that.

The bug. A cas from v to v changes nothing, and `seq-kv` answers an
operation that changes nothing from the state it drew, stale or not
(SPEC.md section 4): it runs against the newest state only when it would
change something. So the "sync" syncs nothing, and the read after it may
still be served from a state older than another node's last add. After
the workload nobody changes `seq-kv`, so a short final read stays short.

Why a random run often misses it. Each of the three requests moves the
node's position to the state it drew, at random between its position and
the newest, so the final read is stale only if all three draws stay
behind: rarer than for a plain read, and often no node is behind at all.

The fix. Sync with a write that changes a value: a fresh unique value to
a key of the node's own (`sync-<node_id>`) runs against the newest state.
"""

from maelstrom import Node

node = Node()

KV = "seq-kv"
KEY = "counter"


@node.handler("add")
def add(msg):
    node.serve_kv_add(msg, KV, KEY)


def sync():
    """Meant to bring this node's view of seq-kv up to date."""
    current = node.kv_read(KV, KEY)
    if current is not None:
        # BUG: a cas that changes nothing is answered from whatever state
        # seq-kv drew, however stale: it moves nobody forward.
        node.kv_cas(KV, KEY, current, current, create=True)


@node.handler("read")
def read(msg):
    sync()
    node.reply_read(msg, node.kv_read(KV, KEY), KEY)


if __name__ == "__main__":
    node.run()
