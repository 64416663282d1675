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

import threading

from maelstrom import Node

node = Node()
lock = threading.Lock()
counts = {}
snapshot = 0


@node.on_init
def start():
    node.every(0.1, gossip)
    node.every(1.0, refresh)


def gossip():
    with lock:
        state = dict(counts)
    for peer in node.peers:
        node.send(peer, {"type": "py_gossip", "counts": state})


def refresh():
    global snapshot
    with lock:
        snapshot = sum(counts.values())


@node.handler("add")
def add(msg):
    with lock:
        counts[node.id] = counts.get(node.id, 0) + msg["body"]["delta"]
    node.reply(msg, {"type": "add_ok"})


@node.handler("read")
def read(msg):
    with lock:
        value = snapshot
    node.reply(msg, {"type": "read_ok", "value": value})


@node.handler("py_gossip")
def merge(msg):
    with lock:
        for n, c in msg["body"]["counts"].items():
            counts[n] = max(counts.get(n, 0), c)


if __name__ == "__main__":
    node.run()
