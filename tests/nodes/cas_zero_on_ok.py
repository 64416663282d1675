#!/usr/bin/env python3
"""A deliberately buggy grow-only counter: one shared key in seq-kv, fed by
a buffered compare-and-swap loop that zeroes its buffer on success.

This is a classic public solution of Fly.io's "Gossip Glomers" challenge 4,
with its classic bug, in plain Python (Maelstrom plumbing in maelstrom.py), for `gcounter test
--bin`. It exists so that the test can be shown to catch it.

How it works. All nodes share one key, `counter`, in `seq-kv`. An `add` is
acknowledged at once and its delta added to a local buffer. A background
loop wakes every FLUSH_INTERVAL seconds and, if the buffer is not empty,
reads `counter` (a missing key counts as 0), then asks `cas from=value
to=value+buffer` with `create_if_not_exists`. A stale read just makes the
cas fail (precondition-failed), and the loop tries again at its next
wake-up with the buffer intact. A `read` first writes a fresh random value
to a key of its own, `sync-<node_id>` (a write that changes a value runs
against seq-kv's newest state and brings this node's view up to date), then
reads `counter`; so reads are not stale, and the lost adds below are the
only thing wrong.

The bug. On `cas_ok` the loop sets the buffer to ZERO instead of
subtracting the amount that cas carried. An `add` acknowledged while the
cas was in flight went into the buffer after the cas was built, was not
part of it, and is then wiped: an acknowledged increment that no read will
ever see. The final reads all agree, and are all short.

Why a single run often passes. An add is lost only if it reaches this node
in the window between building the cas and its `cas_ok`: one round trip to
`seq-kv`, a fraction of a millisecond on a local machine without latency,
against ~11 adds per second per node, and a fifth of the adds are of 0
anyway. With FLUSH_INTERVAL at 250 ms a zero-latency run has a few hundred
such windows and, in our runs, usually lost nothing (2 of 7 invalid, each
a few increments short); with a 100 ms flush more windows open and 5 of 7
zero-latency runs lost an add or two. With message latency the window is a
round trip of it, tens of milliseconds, and every run we tried lost adds,
often dozens.

The fix. Remember what the cas carried and, on `cas_ok`, subtract exactly
that (`buffer -= delta`), so that adds that arrived in between stay in the
buffer for the next round.
"""

import random
import threading

from maelstrom import Node

node = Node()
lock = threading.Lock()
buffer = 0  # acknowledged adds not yet in seq-kv

KV = "seq-kv"
KEY = "counter"
FLUSH_INTERVAL = 0.25  # seconds between two flushes of the buffer


@node.on_init
def start():
    node.every(FLUSH_INTERVAL, flush)


def flush():
    global buffer
    with lock:
        if buffer == 0:
            return
    current = node.kv_read(KV, KEY)
    if current is None:
        return
    with lock:
        delta = buffer
    if node.kv_cas(KV, KEY, current, current + delta, create=True):
        with lock:
            buffer = 0  # BUG: should be `buffer -= delta`
    # Otherwise precondition-failed (a stale read, or another node got
    # there first) or no answer: keep the buffer, try again next time.


@node.handler("add")
def add(msg):
    global buffer
    with lock:
        buffer += msg["body"]["delta"]
    node.reply(msg, {"type": "add_ok"})


@node.handler("read")
def read(msg):
    # seq-kv may serve a stale state; a write that changes a value runs
    # against the newest state and brings this node's view up to date.
    if not node.kv_write(KV, f"sync-{node.id}", random.getrandbits(62)):
        node.error(msg, 11, "could not sync")
        return
    value = node.kv_read(KV, KEY)
    if value is None:
        node.error(msg, 11, f"could not read {KEY}")
    else:
        node.reply(msg, {"type": "read_ok", "value": value})


if __name__ == "__main__":
    node.run()
