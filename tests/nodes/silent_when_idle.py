#!/usr/bin/env python3
"""Bug class: a node that stops answering: once no add has arrived for
IDLE seconds it leaves reads unanswered (as a read handler stuck behind a
lock held by a finished worker would), so the final reads, which come
after the adds stop, time out.

For a single-node cluster it counts correctly: every read it answers is
right. It exists so that `gcounter test` can be shown to say why such a run
is `unknown` rather than valid: Maelstrom's checker looks only at the final
reads that answered, so Maelstrom would call this run valid.
"""

import threading
import time

from maelstrom import Node

node = Node()
lock = threading.Lock()
count = 0
last_add = time.monotonic()

IDLE = 1.0


@node.handler("add")
def add(msg):
    global count, last_add
    with lock:
        count += msg["body"]["delta"]
        last_add = time.monotonic()
    node.reply(msg, {"type": "add_ok"})


@node.handler("read")
def read(msg):
    with lock:
        value, idle = count, time.monotonic() - last_add
    if idle < IDLE:
        node.reply(msg, {"type": "read_ok", "value": value})
    # BUG: otherwise no answer at all.


if __name__ == "__main__":
    node.run()
