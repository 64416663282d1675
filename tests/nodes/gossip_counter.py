#!/usr/bin/env python3
"""A grow-only counter node in plain Python, for `gcounter test --bin`.

It speaks Maelstrom's protocol on stdin/stdout through maelstrom.py: a G-Counter
CRDT (one count per node, merged by maximum), acknowledged locally and
gossiped to every peer every 200 ms. It exists to show that `gcounter test`
runs any Maelstrom node, not just ours.
"""

import threading

from maelstrom import Node

node = Node()
lock = threading.Lock()
counts = {}


@node.on_init
def start():
    node.every(0.2, gossip)


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
