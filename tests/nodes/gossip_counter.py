#!/usr/bin/env python3
"""A correct grow-only counter node in plain Python, for `gcounter test --bin`.

It speaks Maelstrom's protocol on stdin/stdout through maelstrom.py: a G-Counter
CRDT (one count per node, merged by maximum), acknowledged locally and
gossiped to every peer every 200 ms. It exists to show that `gcounter test`
runs any Maelstrom node, not just ours.
"""

from maelstrom import GCounterState, Node

node = Node()
counter = GCounterState(node)
node.handler("add")(counter.handle_add)
node.handler("read")(counter.handle_read)

node.every(0.2, counter.gossip)


if __name__ == "__main__":
    node.run()
