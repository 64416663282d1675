#!/usr/bin/env python3
"""A correct single-node counter with a noisy stderr: at init it writes a
byte that is not UTF-8 and one huge line (`stderr_noise.py [MB] [COUNT]`:
COUNT lines of MB megabytes, default one of 4), then a short line per
request. `gcounter test --log-stderr` must run it to a valid verdict,
its stderr whole in the log and cut on the terminal."""

import sys

from maelstrom import GCounterState, Node

size_mb = float(sys.argv[1]) if len(sys.argv) > 1 else 4
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
err = sys.stderr.buffer
node = Node()
counter = GCounterState(node)


@node.on_init
def noise():
    # Run by the thread that reads stdin: a node that lost its stderr dies
    # here, as a real one would.
    err.write(b"starting \xff\xfe not UTF-8\n")
    for _ in range(count):
        err.write(b"y" * int(size_mb * 1_000_000) + b"\n")
    err.flush()


def served(msg):
    err.write(f"served {msg['body']['type']} {msg['body']['msg_id']}\n".encode())
    err.flush()


@node.handler("add")
def add(msg):
    counter.handle_add(msg)
    served(msg)


@node.handler("read")
def read(msg):
    counter.handle_read(msg)
    served(msg)


if __name__ == "__main__":
    node.run()
