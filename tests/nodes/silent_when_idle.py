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

import time

from maelstrom import GCounterState, Node

node = Node()
counter = GCounterState(node)
last_add = time.monotonic()

IDLE = 1.0


@node.handler("add")
def add(msg):
    global last_add
    last_add = time.monotonic()
    counter.handle_add(msg)


@node.handler("read")
def read(msg):
    if time.monotonic() - last_add < IDLE:
        counter.handle_read(msg)
    # BUG: otherwise no answer at all.


if __name__ == "__main__":
    node.run()
