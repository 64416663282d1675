#!/usr/bin/env python3
"""Bug class: none — baseline: a G-Counter CRDT that sends its whole map to
every peer every interval, whether anything changed or not, and answers
nothing back: the simplest whole-state node, to compare `gossip`'s messages
with (issue 21, item 8; BENCHMARKS.md "Messages against freshness").

The interval is GCOUNTER_GOSSIP_INTERVAL in ms, as `gcounter test
--gossip-interval MS` sets it for every node (default 300, as ours). At 0
(eager) it sends its map to every peer right after every add, and also
every 300 ms, so that a lost message is repaired as ours repairs it.
"""

import os

from maelstrom import GCounterState, Node

node = Node()
counter = GCounterState(node)
node.handler("read")(counter.handle_read)
interval_ms = int(os.environ.get("GCOUNTER_GOSSIP_INTERVAL", "300"))
EAGER_RETRY_MS = 300

node.every((interval_ms or EAGER_RETRY_MS) / 1000.0, counter.gossip)


@node.handler("add")
def add(msg):
    counter.handle_add(msg)
    if interval_ms == 0:
        counter.gossip()


if __name__ == "__main__":
    node.run()
