#!/usr/bin/env python3
"""Bug class: read-then-write of an object value: one shared key in seq-kv
holds `{"counter": n, "last_node": id}`, and an add reads it and writes
`counter + delta` back blindly, erasing whatever landed since its read.

A stand-in for a public solution that keeps `{counter, last_node}` under
one key, in plain Python (Maelstrom plumbing in maelstrom.py), for
`gcounter test --bin`: the explanation must follow the key's lineage
through object values (the count is the object's `counter` field) and
account for what was lost, as it does for a plain number.

How it works. An `add` reads `counter` (missing: a count of 0), writes
`{"counter": count + delta, "last_node": <this node>}` and acknowledges
once `write_ok` comes back. A `read` writes a fresh random value to
`sync-<node id>` (which brings this node's view of seq-kv up to date) and
answers the `counter` field.

The bug. The write is not conditional: an add that landed between this
node's read and its write is erased, and a read served from a stale state
erases every add since that state.

The fix. A cas from the object read to the new object, retried on
precondition-failed (or per-node keys, or gossip).
"""


from maelstrom import Node

node = Node()

KV = "seq-kv"
KEY = "counter"
MISSING = {"counter": 0, "last_node": None}  # what a missing key counts as


@node.handler("add")
def add(msg):
    current = node.kv_read(KV, KEY, missing=MISSING)
    if current is None:
        node.error(msg, 11, f"could not read {KEY}")
        return
    new = {"counter": current["counter"] + msg["body"]["delta"], "last_node": node.id}
    # BUG: a blind write, computed from a read that may be old.
    if node.kv_write(KV, KEY, new):
        node.reply(msg, {"type": "add_ok"})
    else:
        node.error(msg, 11, f"could not write {KEY}")


@node.handler("read")
def read(msg):
    if not node.kv_synced(msg, KV):
        return
    current = node.kv_read(KV, KEY, missing=MISSING)
    node.reply_read(msg, None if current is None else current["counter"], KEY)


if __name__ == "__main__":
    node.run()
