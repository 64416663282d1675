#!/usr/bin/env python3
"""Bug class: none — correct but slow to show changes: a G-Counter CRDT
(one count per node, merged by maximum, gossiped to every peer every
100 ms) that answers reads from a snapshot of its total taken once a
second, as a node caching an expensive read might.

Its final reads are right (the snapshot catches up long before them), so
its runs are valid; it exists so that `gcounter test` can be shown to
measure read lag for any node: its reads fall up to about a second behind
the adds acknowledged before them.
"""

from maelstrom import GCounterState, Node

node = Node()
counter = GCounterState(node)
node.handler("add")(counter.handle_add)
snapshot = 0  # the total as it was at the last refresh

node.every(0.1, counter.gossip)


@node.every(1.0)
def refresh():
    global snapshot
    snapshot = counter.total()


@node.handler("read")
def read(msg):
    node.reply(msg, {"type": "read_ok", "value": snapshot})


if __name__ == "__main__":
    node.run()
