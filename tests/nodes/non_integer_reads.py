#!/usr/bin/env python3
# Bug class: a node whose read_ok values are not integers (issue 24, item
# 6). Maelstrom's client takes a value through Clojure's `long`: 170.5
# reads as 170, and a number outside 64 bits throws, making that read
# `info`. The runner made every such read indeterminate, so the final read
# was lost and the verdict `unknown`, without a warning.
"""A single-node counter that answers every read with its total plus 0.5,
except the third read, answered with 2^64 + 117."""

import threading

from maelstrom import GCounterState, Node

node = Node()
counter = GCounterState(node)
node.handler("add")(counter.handle_add)
lock = threading.Lock()
reads = 0


@node.handler("read")
def read(msg):
    global reads
    with lock:
        reads += 1
        third = reads == 3
    value = 2**64 + 117 if third else counter.total() + 0.5
    node.reply(msg, {"type": "read_ok", "value": value})


if __name__ == "__main__":
    node.run()
