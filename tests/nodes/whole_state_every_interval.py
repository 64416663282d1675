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
import threading

from maelstrom import Node

node = Node()
lock = threading.Lock()
counts = {}
interval_ms = int(os.environ.get("GCOUNTER_GOSSIP_INTERVAL", "300"))
EAGER_RETRY_MS = 300


@node.on_init
def start():
    node.every((interval_ms or EAGER_RETRY_MS) / 1000.0, gossip)


def gossip():
    with lock:
        state = dict(counts)
    for peer in node.peers:
        node.send(peer, {"type": "py_gossip", "counts": state})


@node.handler("add")
def add(msg):
    with lock:
        counts[node.id] = counts.get(node.id, 0) + msg["body"]["delta"]
    node.reply(msg, {"type": "add_ok"})
    if interval_ms == 0:
        gossip()


@node.handler("read")
def read(msg):
    with lock:
        value = sum(counts.values())
    node.reply(msg, {"type": "read_ok", "value": value})


@node.handler("py_gossip")
def merge(msg):
    with lock:
        for n, c in msg["body"]["counts"].items():
            counts[n] = max(counts.get(n, 0), c)


if __name__ == "__main__":
    node.run()
