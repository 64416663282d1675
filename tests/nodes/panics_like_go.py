#!/usr/bin/env python3
"""Bug class: a node that crashes, as a Go node does on a runtime error: it
prints `panic: ...` to stderr, then a goroutine dump far longer than the
few lines a summary shows, and exits with status 2.

It exists so that the test runner can be shown to report WHY a node died:
the `panic:` line sits above the dump, so the last lines of stderr alone
(the dump's frames and `exit status 2`) do not say it.

How it works. Adds are counted in memory and reads answer the count, until
the CRASH_AFTER-th add, which indexes past the end of a three-element list
the way the Go original did, and dies.
"""

import os
import sys
import threading

from maelstrom import GCounterState, Node

node = Node()
counter = GCounterState(node)  # never gossiped: each node counts its own
node.handler("read")(counter.handle_read)
lock = threading.Lock()
adds = 0

CRASH_AFTER = 20
GOROUTINES = 40  # enough dump to push the panic line far out of any tail


def panic(text):
    """Dies like a Go program: the panic, the goroutine dump, status 2."""
    out = [f"panic: {text}", ""]
    for g in range(1, GOROUTINES + 1):
        out += [
            f"goroutine {g} [{'running' if g == 1 else 'chan receive'}]:",
            "main.(*server).handleAdd(0xc000126000, {0xc00011e0c0, 0x3c})",
            "\t/home/learner/counter/main.go:87 +0x2a5",
            "github.com/jepsen-io/maelstrom/demo/go.(*Node).handleMessage(0xc000132000, {0xc00011e0c0, 0x3c})",
            "\t/home/learner/go/pkg/mod/github.com/jepsen-io/maelstrom/demo/go@v0.0.0/node.go:176 +0x1b7",
            "created by github.com/jepsen-io/maelstrom/demo/go.(*Node).Run in goroutine 1",
            "\t/home/learner/go/pkg/mod/github.com/jepsen-io/maelstrom/demo/go@v0.0.0/node.go:134 +0x5f",
            "",
        ]
    out.append("exit status 2")
    sys.stderr.write("\n".join(out) + "\n")
    sys.stderr.flush()
    os._exit(2)


@node.handler("add")
def add(msg):
    global adds
    with lock:
        adds += 1
        if adds == CRASH_AFTER:
            shards = [0, 0, 0]
            panic(f"runtime error: index out of range [{len(shards)}] with length {len(shards)}")
    counter.handle_add(msg)


if __name__ == "__main__":
    node.run()
