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

from maelstrom import GCounterState, Node

node = Node()
# BUG: in memory only; a killed node starts again from an empty map.
counter = GCounterState(node)
node.handler("add")(counter.handle_add)
node.handler("read")(counter.handle_read)

GOSSIP_INTERVAL = 0.2  # seconds between two gossip rounds

node.every(GOSSIP_INTERVAL, counter.gossip)


if __name__ == "__main__":
    node.run()
