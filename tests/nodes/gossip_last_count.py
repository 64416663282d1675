#!/usr/bin/env python3
"""Bug class: a gossip that keeps the last count received, not the max.

A wrong node on purpose, for `gcounter test --bin` (plumbing in
maelstrom.py).

How it works. Each node keeps its own total in memory and the last total
it heard from each peer; a `read` answers the sum. An `add` is added to
the total and acknowledged, and the new total is sent to every peer as a
`total` message, again every RETRY seconds until the peer answers
`total_ok` (so a partition delays it but loses nothing). A peer stores
the total it receives under the sender's name.

The bug. It stores the total it received LAST, not the largest. Two
totals from one sender can be delivered out of order: with latency, or
when a partition heals and the copies waiting to be sent again go out in
whatever order their timers fire. A smaller, older total delivered last
overwrites the newer one; it is acknowledged, so nobody sends the newer
one again, and the peer's final read is short.

Why a random run often misses it. Any later add from the sender sends a
larger total that repairs it, so only the last totals a node sends before
the workload stops matter, and they have to be overtaken: without
latency, only if a partition held them until the end.

The fix. Keep the maximum (`totals[src] = max(totals[src], value)`): a
node's total only grows, so merging by maximum makes order irrelevant.
"""

import threading

from maelstrom import Node

node = Node()
lock = threading.Lock()
total = 0  # our own adds
totals = {}  # the last total heard from each peer

RETRY = 0.5  # seconds before a total not acknowledged is sent again


@node.handler("add")
def add(msg):
    global total
    with lock:
        total += msg["body"]["delta"]
        value = total
    node.reply(msg, {"type": "add_ok"})
    for peer in node.peers:
        node.spawn(tell, peer, value)


def tell(peer, value):
    """Sends our total to `peer` until it acknowledges it."""
    while node.rpc(peer, {"type": "total", "value": value}, RETRY) is None:
        pass


@node.handler("total")
def receive(msg):
    with lock:
        totals[msg["src"]] = msg["body"]["value"]  # BUG: should be max
    node.reply(msg, {"type": "total_ok"})


@node.handler("read")
def read(msg):
    with lock:
        value = total + sum(totals.values())
    node.reply(msg, {"type": "read_ok", "value": value})


if __name__ == "__main__":
    node.run()
