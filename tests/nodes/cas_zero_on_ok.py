#!/usr/bin/env python3
"""Bug class: a buffered cas that zeroes its buffer on cas_ok.

A wrong node on purpose, for `gcounter test --bin` (a classic public
solution of Fly.io's challenge 4; plumbing in maelstrom.py).

How it works. All nodes share one key, `counter`, in `seq-kv`. An `add`
is acknowledged at once and its delta added to a local buffer. Every
FLUSH_INTERVAL seconds a loop reads `counter` (missing counts as 0) and
asks `cas from=value to=value+buffer` with `create_if_not_exists`; a stale
read just makes the cas fail, and the next round tries again with the
buffer intact. A `read` first writes a fresh value to `sync-<node_id>`
(which brings the node's view up to date), then reads `counter`.

The bug. On `cas_ok` the loop sets the buffer to zero instead of
subtracting what that cas carried. An add acknowledged while the cas was
in flight was not part of it, and is wiped: every final read agrees, and
every one is short.

Why a random run often misses it. An add is lost only if it arrives
between building the cas and its `cas_ok`: one round trip to `seq-kv`,
microseconds without latency, against ~11 adds a second per node (a fifth
of them of 0). In our zero-latency runs 2 of 7 were invalid; with message
latency the window is tens of milliseconds and every run lost adds.

The fix. Remember what the cas carried and subtract exactly that on
`cas_ok` (`buffer -= delta`), so later adds stay for the next round.
"""

import threading

from maelstrom import Node

node = Node()
lock = threading.Lock()
buffer = 0  # acknowledged adds not yet in seq-kv

KV = "seq-kv"
KEY = "counter"
FLUSH_INTERVAL = 0.25  # seconds between two flushes of the buffer


@node.every(FLUSH_INTERVAL)
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
    node.serve_kv_read(msg, KV, KEY)


if __name__ == "__main__":
    node.run()
