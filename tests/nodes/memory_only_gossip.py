#!/usr/bin/env python3
"""Bug class: a count kept only in memory, under `--nemesis kill`.

A wrong node on purpose, for `gcounter test --bin --nemesis kill`
(plumbing in maelstrom.py). Without kills it is correct: it is
gossip_counter.py's design.

How it works. A G-Counter CRDT: one count per node, merged by maximum.
An `add` goes into the node's own count and is acknowledged at once;
every GOSSIP_INTERVAL seconds the node sends its whole map to every peer,
which merges it. A `read` answers the sum of the map.

The bug. The map lives only in the process's memory. When the nemesis
kills a node (SIGKILL) and starts it again, the node starts from an
empty map: the adds it acknowledged since its last gossip round never
reached anyone and are gone. Its peers still hold its older count and
gossip it back, but merging by maximum then also hides the adds the
restarted node took before that gossip arrived (its new, smaller count
loses to the old one).

Why a random run often misses it. Only a kill shows it, and `--nemesis
kill` is not in the challenge's command; with kills, a loss needs an add
of more than 0 in the fraction of a second around a kill.

The fix. Store the node's own count on disk (write, fsync, rename) before
acknowledging, and load it at start (the nemesis keeps a node's working
directory across kills, as it keeps a disk); or keep the count in
`seq-kv`, which a kill does not touch.
"""

import threading

from maelstrom import Node

node = Node()
lock = threading.Lock()
counts = {}  # BUG: in memory only; a killed node starts again from {}

GOSSIP_INTERVAL = 0.2  # seconds between two gossip rounds


@node.on_init
def start():
    node.every(GOSSIP_INTERVAL, gossip)


def gossip():
    with lock:
        state = dict(counts)
    for peer in node.peers:
        node.send(peer, {"type": "counts", "counts": state})


@node.handler("add")
def add(msg):
    with lock:
        counts[node.id] = counts.get(node.id, 0) + msg["body"]["delta"]
    node.reply(msg, {"type": "add_ok"})


@node.handler("counts")
def merge(msg):
    with lock:
        for n, c in msg["body"]["counts"].items():
            counts[n] = max(counts.get(n, 0), c)


@node.handler("read")
def read(msg):
    with lock:
        value = sum(counts.values())
    node.reply(msg, {"type": "read_ok", "value": value})


if __name__ == "__main__":
    node.run()
